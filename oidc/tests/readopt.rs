//! A provider `eks-oidc ensure` made in a run that was stopped before it wrote the state: the
//! next run finds it existing. It carries the tags this tool puts on what it makes, so it is
//! still ours, and `delete` removes it; one tagged for another cluster is not ours.

#[path = "support/tls.rs"]
mod tls;

use testbed::run::{Run, assert_exit};
use testbed::{Moto, REGION, seed};

const BIN: &str = env!("CARGO_BIN_EXE_eks-oidc");

fn run(moto: &Moto, args: &[&str], stdin: &str) -> Run {
    let mut command = moto.command(BIN);
    command.env(
        "HTTPS_PROXY",
        format!("http://127.0.0.1:{}", tls::closed_port()),
    );
    testbed::run::run(command.args(args), stdin)
}

/// Makes the provider of `cluster`'s issuer as an earlier run would have, tagged for `tagged_for`.
async fn leftover_provider(moto: &Moto, cluster: &str, tagged_for: &str) -> String {
    let config = moto.sdk_config(REGION).await;
    let issuer = aws_sdk_eks::Client::new(&config)
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .unwrap()
        .cluster()
        .and_then(|c| c.identity())
        .and_then(|i| i.oidc())
        .and_then(|o| o.issuer())
        .unwrap()
        .to_owned();
    let tag = |k: &str, v: &str| {
        aws_sdk_iam::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .unwrap()
    };
    aws_sdk_iam::Client::new(&config)
        .create_open_id_connect_provider()
        .url(issuer)
        .client_id_list("sts.amazonaws.com")
        .tags(tag(eks_oidc::CLUSTER_TAG, tagged_for))
        .tags(tag(eks_oidc::STEP_TAG, "oidc"))
        .send()
        .await
        .unwrap()
        .open_id_connect_provider_arn()
        .unwrap()
        .to_owned()
}

async fn exists(moto: &Moto, arn: &str) -> bool {
    eks_oidc::provider::get(
        &aws_sdk_iam::Client::new(&moto.sdk_config(REGION).await),
        arn,
    )
    .await
    .unwrap()
    .is_some()
}

#[tokio::test]
async fn a_provider_with_our_tags_is_ours_after_a_stopped_run() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "demo", false).await;
    let arn = leftover_provider(&moto, "demo", "demo").await;

    let again = run(
        &moto,
        &["--region", REGION, "ensure", "--cluster", "demo"],
        "",
    );
    assert_exit(&again, 0);
    let state = again.json();
    assert_eq!(state["oidc"]["providerArn"], arn.as_str());
    assert_eq!(
        state["oidc"]["createdByUs"], true,
        "our tags make it ours: {}",
        again.stderr
    );

    let deleted = run(&moto, &["delete"], &again.stdout);
    assert_exit(&deleted, 0);
    assert!(!exists(&moto, &arn).await, "delete removes it");
}

#[tokio::test]
async fn a_provider_tagged_for_another_cluster_is_not_ours() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "demo", false).await;
    let arn = leftover_provider(&moto, "demo", "another").await;

    // Not ours: ensure refuses it, nothing changed; --adopt takes it over, and delete keeps it.
    let refused = run(
        &moto,
        &["--region", REGION, "ensure", "--cluster", "demo"],
        "",
    );
    assert_exit(&refused, 2);
    assert!(
        refused
            .stderr
            .contains("its tags say step oidc made it for cluster another"),
        "{}",
        refused.stderr
    );
    let adopted = run(
        &moto,
        &["--region", REGION, "ensure", "--cluster", "demo", "--adopt"],
        "",
    );
    assert_exit(&adopted, 0);
    assert_eq!(adopted.json()["oidc"]["createdByUs"], false);
    assert_eq!(adopted.json()["oidc"]["adopted"], true);
    let kept = run(&moto, &["delete"], &adopted.stdout);
    assert_exit(&kept, 0);
    assert!(exists(&moto, &arn).await, "not ours: kept");
}
