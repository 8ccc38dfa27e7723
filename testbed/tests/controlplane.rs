//! The real control plane of the test bed: it starts, answers as v1.37.2, its controllers make
//! pods of a Deployment, its audit log tells who did what, and EKS tokens go through our
//! TokenReview webhook.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use testbed::controlplane::{ControlPlane, Settings, TESTBED_USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_is_the_real_one_and_its_controllers_run() {
    let started = Instant::now();
    let cluster = ControlPlane::start();
    eprintln!("control plane ready in {:?}", started.elapsed());
    let client = cluster.client().await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.37.2");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for builtin in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.iter().any(|n| n == builtin), "{names:?}");
    }

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    // The Deployment and ReplicaSet controllers make the pods; nothing schedules them here.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(30);
    let made = loop {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        if list.items.len() == 2 || Instant::now() > deadline {
            break list.items;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(made.len(), 2, "the controllers made one pod per replica");
    assert!(
        made.iter()
            .all(|p| p.spec.as_ref().unwrap().node_name.is_none())
    );

    let writes = cluster.writes_by_testbed();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "POST");
    assert_eq!(
        writes[0].path,
        "/apis/apps/v1/namespaces/default/deployments"
    );
    assert_eq!(writes[0].code, 201);
    assert!(
        cluster
            .requests()
            .iter()
            .any(|r| r.user == "system:kube-controller-manager"
                && r.method == "POST"
                && r.path.ends_with("/pods")),
        "the audit log names the controller manager's pod creations"
    );
    assert_eq!(TESTBED_USER, "testbed");

    // What the test made is told apart from what the controllers made.
    let left: Vec<String> = cluster
        .left_by_testbed()
        .await
        .iter()
        .map(testbed::controlplane::objects::key)
        .collect();
    assert_eq!(left, ["apps/v1/Deployment/default/web"]);
    let made: Vec<String> = cluster
        .objects_made()
        .await
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(made.iter().filter(|k| *k == "Pod").count(), 2, "{made:?}");
    assert!(made.iter().any(|k| k == "ReplicaSet"), "{made:?}");
    let versions = cluster.versions().await;
    assert_eq!(
        cluster.versions().await,
        versions,
        "nothing changes at rest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_tokens_are_checked_by_the_webhook() {
    let cluster = ControlPlane::start_with(Settings {
        eks_token_max_age: Duration::from_secs(60),
        controller_manager: false,
        ..Settings::default()
    });
    let kubeconfig = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    let with = |token: &str| kubeconfig.replace("token: testbed-token", &format!("token: {token}"));
    let dir = tempfile::tempdir().unwrap();
    let eks = |date: &str| {
        let url = format!(
            "https://sts.us-east-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261202%2Fus-east-2%2Fsts%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=abcd"
        );
        format!(
            "k8s-aws-v1.{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, url)
        )
    };
    let fresh = eks(&chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string());
    let old = eks(&(chrono::Utc::now() - chrono::Duration::minutes(5))
        .format("%Y%m%dT%H%M%SZ")
        .to_string());
    for (name, token, accepted) in [
        ("fresh", fresh.as_str(), true),
        ("old", old.as_str(), false),
        ("other", "not-a-token", false),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, with(token)).unwrap();
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&path).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let namespaces: Api<Namespace> = Api::all(client);
        let answer = namespaces.list(&ListParams::default()).await;
        match (accepted, answer) {
            (true, Ok(_)) => {}
            (false, Err(kube::Error::Api(status))) => {
                assert_eq!(status.code, 401, "{name}: {status:?}")
            }
            (_, other) => panic!("{name}: {other:?}"),
        }
    }
    let refused = cluster.refused_tokens();
    assert!(
        refused
            .iter()
            .any(|r| matches!(r, testbed::controlplane::authn::Refusal::Expired { age_seconds } if *age_seconds >= 300)),
        "{refused:?}"
    );
    let users: Vec<String> = cluster.requests().into_iter().map(|r| r.user).collect();
    assert!(users.iter().any(|u| u == "aws:AKIAEXAMPLE"), "{users:?}");
}
