//! API discovery per group: an aggregated API that is registered but not available (an
//! APIService for `metrics.k8s.io/v1beta1` whose Service does not exist: the real API server
//! lists the group in `/apis` and answers 503 under it, as while metrics-server is down) stops neither `apply` nor `delete` of kinds from
//! other groups. A whole discovery (`kube::Discovery::run`) would fail on that one group.

use std::time::Duration;

use testbed::Moto;
use testbed::controlplane::ControlPlane;
use testbed::fargate::Profiles;
use testbed::run::assert_exit;
use testbed::sim::FargateSim;

mod fixtures;

const METRICS: &str = "metrics.k8s.io/v1beta1";

/// What follows the game namespace and Deployment: a ConfigMap and a custom resource.
const AFTER_GAME: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: game}
data: {a: b}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: game}
spec: {size: 3}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_aggregated_api_stops_neither_apply_nor_delete() {
    let kube = ControlPlane::start();
    let services: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(
        kube.client().await,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "apiregistration.k8s.io",
            "v1",
            "APIService",
        )),
    );
    let registration = serde_json::from_value(serde_json::json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1",
            "service": {"namespace": "kube-system", "name": "metrics-server", "port": 443},
            "insecureSkipTLSVerify": true, "groupPriorityMinimum": 100, "versionPriority": 100}
    }))
    .unwrap();
    services
        .create(&Default::default(), &registration)
        .await
        .unwrap();

    // The API server shows the broken group, and a whole discovery fails on it.
    let client = no_retry_client(&kube).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !client
        .list_api_groups()
        .await
        .unwrap()
        .groups
        .iter()
        .any(|g| g.name == "metrics.k8s.io")
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let groups = client.list_api_groups().await.unwrap();
    assert!(
        groups
            .groups
            .iter()
            .any(|g| g.versions.iter().any(|v| v.group_version == METRICS)),
        "/apis lists {METRICS}"
    );
    // 503 with a plain-text body (no Status), as the aggregator answers for an unavailable
    // APIService.
    match client.list_api_group_resources(METRICS).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 503, "{status:?}"),
        other => panic!("{METRICS} must answer 503: {other:?}"),
    }
    assert!(kube::Discovery::new(client).run().await.is_err());
    let asked_before = kube.requests().len();

    let _pods = FargateSim::start_with(
        kube.simulator_client().await,
        Duration::from_secs(1),
        Profiles::namespaces(&["game"]),
    )
    .await;
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00-crd.yaml"), fixtures::CRD).unwrap();
    std::fs::write(
        dir.path().join("01-app.yaml"),
        fixtures::game_and(AFTER_GAME),
    )
    .unwrap();

    let applied = fixtures::run(
        &moto,
        &kube.kubeconfig(),
        dir.path(),
        &["apply", "--timeout", "60s"],
        fixtures::state(),
    )
    .await;
    assert_exit(&applied, 0);
    let kinds: Vec<String> = applied.json()["deploy"]["appliedObjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "CustomResourceDefinition",
            "Namespace",
            "Deployment",
            "ConfigMap",
            "Widget"
        ]
    );

    let deleted = fixtures::run(
        &moto,
        &kube.kubeconfig(),
        dir.path(),
        &["delete", "--timeout", "15s"],
        applied.stdout.clone(),
    )
    .await;
    // Everything goes but, perhaps, the namespace: the real namespace controller keeps a
    // namespace while discovery of an aggregated API fails (NamespaceDeletionDiscoveryFailure,
    // retried with a backoff), as on any cluster whose metrics-server is down; then eks-deploy
    // says that the namespace is what is left.
    if deleted.code != 0 {
        assert_exit(&deleted, 1);
        assert!(
            deleted.stderr.contains("1 left: Namespace game"),
            "{}",
            deleted.stderr
        );
    }
    // Neither run asked the broken group.
    let asked: Vec<String> = kube.requests()[asked_before..]
        .iter()
        .filter(|r| r.user == "testbed" && r.path.starts_with(&format!("/apis/{METRICS}")))
        .map(|r| format!("{} {} {}", r.method, r.path, r.code))
        .collect();
    assert!(asked.is_empty(), "the broken group was asked: {asked:?}");
}

/// A kube-rs client without kube's retry of 503 answers.
async fn no_retry_client(kube: &ControlPlane) -> kube::Client {
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kube.kubeconfig()).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}
