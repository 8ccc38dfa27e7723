//! The cluster facts resolver (`common::facts::Resolver`) against moto: a fact the state has for
//! this cluster costs no AWS call; the facts it lacks cost one `DescribeCluster` together, however
//! many are asked; a state about another cluster counts for nothing; a cluster that does not
//! exist is `DescribeError::NotFound`, naming the cluster and region.

use common::State;
use common::cluster::DescribeError;
use common::facts::{Origin, Resolver};
use testbed::{Moto, REGION};

/// The EKS calls moto saw since recording started (stops the recording).
fn eks_calls(moto: &Moto) -> Vec<String> {
    moto.recorded_calls()
        .into_iter()
        .filter(|c| c.service == "eks")
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

fn state_with(cluster: serde_json::Value) -> State {
    let mut state = State::new();
    state.set_section("cluster", &cluster);
    state
}

#[tokio::test]
async fn facts_in_the_state_cost_no_call() {
    let moto = Moto::start();
    let config = moto.sdk_config(REGION).await;
    let eks = aws_sdk_eks::Client::new(&config);
    let state = state_with(serde_json::json!({
        "name": "demo", "region": REGION,
        "arn": "arn:aws:eks:us-east-2:123456789012:cluster/demo",
        "endpoint": "https://demo.example", "certificateAuthorityData": "Q0E=",
        "oidcIssuer": "https://oidc.example/id/A",
        "vpcId": "vpc-1", "clusterSecurityGroupId": "sg-1",
    }));
    moto.start_recording();
    let mut facts = Resolver::from_state(&state, eks, "demo", REGION).unwrap();
    let issuer = facts.oidc_issuer().await.unwrap().unwrap();
    assert_eq!(
        (issuer.value.as_str(), issuer.origin),
        ("https://oidc.example/id/A", Origin::State)
    );
    assert_eq!(
        facts.arn().await.unwrap().as_deref(),
        Some("arn:aws:eks:us-east-2:123456789012:cluster/demo")
    );
    assert_eq!(
        facts.endpoint_and_ca().await.unwrap(),
        Some(("https://demo.example".to_owned(), "Q0E=".to_owned()))
    );
    assert_eq!(
        facts.endpoint().await.unwrap().as_deref(),
        Some("https://demo.example")
    );
    assert_eq!(
        facts.certificate_authority().await.unwrap().as_deref(),
        Some("Q0E=")
    );
    let network = facts.network().await.unwrap();
    assert_eq!(network.vpc_id.as_deref(), Some("vpc-1"));
    assert_eq!(network.cluster_security_group_id.as_deref(), Some("sg-1"));
    assert_eq!(network.origin, Origin::State);
    assert_eq!(eks_calls(&moto), Vec::<String>::new(), "no AWS call");
}

#[tokio::test]
async fn facts_the_state_lacks_cost_one_describe_cluster() {
    let moto = Moto::start();
    let config = moto.sdk_config(REGION).await;
    let seeded = testbed::seed::cluster(&config, "seeded", false).await;
    let eks = aws_sdk_eks::Client::new(&config);

    // The state knows the issuer only: it costs nothing; the rest comes from one describe.
    let state = state_with(serde_json::json!({
        "name": "seeded", "region": REGION, "oidcIssuer": "https://recorded/id/A",
        "vpcId": "vpc-only",
    }));
    moto.start_recording();
    let mut facts = Resolver::from_state(&state, eks.clone(), "seeded", REGION).unwrap();
    let issuer = facts.oidc_issuer().await.unwrap().unwrap();
    assert_eq!(issuer.origin, Origin::State);
    assert_eq!(issuer.value, "https://recorded/id/A");
    let (endpoint, ca) = facts
        .endpoint_and_ca()
        .await
        .unwrap()
        .expect("moto reports both");
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    assert!(!ca.is_empty());
    assert!(
        facts
            .arn()
            .await
            .unwrap()
            .unwrap()
            .ends_with(":cluster/seeded")
    );
    // One of the two network facts is not enough: both come from the one source.
    let network = facts.network().await.unwrap();
    assert_eq!(network.origin, Origin::DescribeCluster);
    assert_eq!(network.subnet_ids, seeded.subnet_ids);
    assert_eq!(
        eks_calls(&moto),
        ["GET /clusters/seeded"],
        "one DescribeCluster for every fact the state lacks"
    );

    // A state about another cluster says nothing of this one.
    let other = state_with(serde_json::json!({
        "name": "other", "oidcIssuer": "https://other/id/B",
        "endpoint": "https://other.example", "certificateAuthorityData": "Q0E=",
    }));
    moto.start_recording();
    let mut facts = Resolver::from_state(&other, eks.clone(), "seeded", REGION).unwrap();
    let issuer = facts.oidc_issuer().await.unwrap().unwrap();
    assert_eq!(issuer.origin, Origin::DescribeCluster);
    assert_ne!(issuer.value, "https://other/id/B");
    assert_ne!(
        facts.endpoint().await.unwrap().as_deref(),
        Some("https://other.example")
    );
    assert_eq!(eks_calls(&moto).len(), 1);

    // No cluster: the error names it and the region.
    let mut facts = Resolver::from_state(&State::new(), eks, "nosuch", REGION).unwrap();
    let err = facts.oidc_issuer().await.unwrap_err();
    assert!(matches!(err, DescribeError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("cluster nosuch was not found in {REGION}")),
        "{err}"
    );
}

#[test]
fn a_malformed_fact_is_bad_input() {
    let state = state_with(serde_json::json!({"name": "demo", "endpoint": 3}));
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let err = Resolver::from_state(&state, aws_sdk_eks::Client::new(&config), "demo", REGION)
        .unwrap_err();
    assert!(err.to_string().contains("`cluster`"), "{err}");
}
