//! The EKS token path of `eks-deploy` (no `--kubeconfig`: the cluster's endpoint and CA from the
//! state, a bearer token presigned from the AWS credentials) against the real API server, which
//! serves TLS with a CA of its own and asks the test bed's EKS authenticator (a TokenReview
//! webhook) about each token; like aws-iam-authenticator it refuses tokens older than a given age.
//! The real API server keeps a successful token authentication for 10 s (its token cache), so
//! the run must go on past the token's age plus that: pods take 15 s to run here.
//! Here the age is 3 s and the run lasts longer (pods take 5 s to run), so a token made once per
//! run is refused part-way; the client must sign a new one.

use std::time::Duration;

use testbed::controlplane::authn::Refusal;
use testbed::controlplane::{ControlPlane, Settings};
use testbed::fargate::Profiles;
use testbed::run::assert_exit;
use testbed::sim::FargateSim;
use testbed::{Moto, REGION};

mod fixtures;

const BIN: &str = env!("CARGO_BIN_EXE_eks-deploy");

/// What follows the game namespace and Deployment: a ConfigMap applied after the wait.
const AFTER_GAME: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: after-the-wait, namespace: game}
data: {applied: "after the Deployment is available"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_longer_than_the_token_s_life_signs_a_new_token() {
    let moto = Moto::start();
    let kube = ControlPlane::start_with(Settings {
        eks_token_max_age: Duration::from_secs(3),
        sts_endpoint: Some(moto.endpoint.clone()),
        ..Settings::default()
    });
    assert!(kube.url.starts_with("https://127.0.0.1:"), "{}", kube.url);
    let _pods = FargateSim::start_with(
        kube.simulator_client().await,
        Duration::from_secs(15),
        Profiles::namespaces(&["game"]),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), fixtures::game_and(AFTER_GAME)).unwrap();
    let state = serde_json::json!({
        "schemaVersion": 1,
        "cluster": {
            "name": "demo",
            "region": REGION,
            "endpoint": kube.url,
            "certificateAuthorityData": kube.ca_data(),
            "fargateProfiles": ["fp-default"],
            "fargateNamespaces": ["game"],
        }
    });

    let mut cmd = moto.command(BIN);
    cmd.args([
        "--region",
        REGION,
        "apply",
        "--timeout",
        "60s",
        "--manifests",
        dir.path().to_str().unwrap(),
    ]);
    let input = state.to_string();
    let applied = tokio::task::spawn_blocking(move || testbed::run::run(&mut cmd, &input))
        .await
        .unwrap();
    assert_exit(&applied, 0);
    assert!(
        applied.stderr.contains("signing a new one"),
        "the refused token was replaced: {}",
        applied.stderr
    );
    let refused = kube.refused_tokens();
    assert!(
        refused.iter().any(|r| matches!(r, Refusal::Expired { .. })),
        "the authenticator refused the aged token: {refused:?}"
    );
    let requests = kube.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.user.starts_with("arn:aws:") && r.code == 200),
        "the EKS token's caller is who moto's STS says: {:?}",
        requests
            .iter()
            .map(|r| &r.user)
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert!(
        requests.iter().any(|r| r.method == "PATCH"
            && r.path.ends_with("/configmaps/after-the-wait")
            && r.code < 300),
        "the write after the wait went through"
    );
    let state = applied.json();
    assert_eq!(
        state["deploy"]["appliedObjects"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_refuses_what_is_not_a_valid_token() {
    let kube = ControlPlane::start_with(Settings {
        eks_token_max_age: Duration::from_secs(3),
        ..Settings::default()
    });
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), fixtures::game_and(AFTER_GAME)).unwrap();
    // A kubeconfig with a token neither the static list nor the EKS authenticator accepts: 401,
    // said as such.
    let kubeconfig = dir.path().join("kubeconfig");
    let text = std::fs::read_to_string(kube.kubeconfig())
        .unwrap()
        .replace("token: testbed-token", "token: not-a-token");
    std::fs::write(&kubeconfig, text).unwrap();
    let mut cmd = moto.command(BIN);
    cmd.args([
        "--region",
        REGION,
        "apply",
        "--cluster",
        "demo",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--manifests",
        dir.path().to_str().unwrap(),
    ]);
    let state = serde_json::json!({"schemaVersion": 1, "cluster": {"name": "demo",
        "fargateProfiles": ["fp-default"], "fargateNamespaces": ["game"]}});
    let input = state.to_string();
    let refused = tokio::task::spawn_blocking(move || testbed::run::run(&mut cmd, &input))
        .await
        .unwrap();
    assert_exit(&refused, 1);
    assert!(
        refused.stderr.contains("Unauthorized"),
        "{}",
        refused.stderr
    );
    assert!(kube.objects_made().await.is_empty());
}
