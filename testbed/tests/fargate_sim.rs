//! The Deployment simulator's Fargate scheduling, against the Kubernetes stand-in and the
//! Fargate profiles moto holds: pods placed when made, never moved later, refusals worded as
//! EKS words them, availability from the pods, garbage collection, and no write when nothing
//! changes.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use testbed::fargate::Profiles;
use testbed::kubeapi::KubeApi;
use testbed::sim::DeploymentSim;
use testbed::{Moto, REGION, seed};

fn deployment(name: &str, namespace: &str, annotations: Value, container: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"containers": [container]}
            }
        }
    })
}

async fn apply(client: &Client, body: Value) {
    let ns = body["metadata"]["namespace"].as_str().unwrap().to_owned();
    let name = body["metadata"]["name"].as_str().unwrap().to_owned();
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .patch(&name, &PatchParams::apply("test"), &Patch::Apply(body))
        .await
        .unwrap();
}

/// Waits (at most 10 s) until `check` gives something.
async fn until<T, F: Future<Output = Option<T>>>(what: &str, check: impl Fn() -> F) -> T {
    let began = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pods(client: &Client, namespace: &str, app: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
}

fn scheduler(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .unwrap()
        .scheduler_name
        .clone()
        .unwrap_or_default()
}

fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn why(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?
        .message
        .clone()
}

fn available(d: &Deployment) -> bool {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_go_where_the_profiles_in_moto_allow_when_they_are_made() {
    let moto = Moto::start();
    let config = moto.sdk_config(REGION).await;
    let cluster = seed::cluster(&config, "sim", false).await;
    let kube = KubeApi::start();
    let client = kube.client().await;
    let sim = DeploymentSim::start(client.clone(), Profiles::eks(&config));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let plain = json!({"name": "c", "image": "nginx"});

    // No profile yet: Pending under default-scheduler, with kube-scheduler's message and Event.
    apply(
        &client,
        deployment("early", "default", json!({}), plain.clone()),
    )
    .await;
    let early = until("early pods Pending", || async {
        let list = pods(&client, "default", "early").await;
        (list.len() == 2 && list.iter().all(|p| why(p).is_some())).then_some(list)
    })
    .await;
    for pod in &early {
        assert_eq!(scheduler(pod), "default-scheduler");
        assert_eq!(
            why(pod).as_deref(),
            Some("no nodes available to schedule pods")
        );
    }
    let events = Api::<Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("FailedScheduling")
                && e.involved_object.name == early[0].metadata.name
                && e.source.as_ref().and_then(|s| s.component.as_deref())
                    == Some("default-scheduler")),
        "{events:?}"
    );

    // The profile comes; the early pods stay where they are, new ones run on Fargate.
    seed::fargate_profile(
        &config,
        "sim",
        "fp-sim",
        &cluster.subnet_ids,
        &[("default", &[])],
    )
    .await;
    apply(
        &client,
        deployment("late", "default", json!({}), plain.clone()),
    )
    .await;
    let late = until("late Available", || async {
        let d = deployments.get("late").await.unwrap();
        available(&d).then_some(d)
    })
    .await;
    assert_eq!(late.status.unwrap().available_replicas, Some(2));
    for pod in pods(&client, "default", "late").await {
        assert_eq!(scheduler(&pod), "fargate-scheduler");
        assert_eq!(phase(&pod), "Running");
        let node = pod.spec.as_ref().unwrap().node_name.clone().unwrap();
        assert!(
            node.starts_with("fargate-ip-10-0-") && node.ends_with(".us-east-2.compute.internal"),
            "{node}"
        );
        assert_eq!(
            pod.metadata.labels.unwrap()["eks.amazonaws.com/fargate-profile"],
            "fp-sim"
        );
    }
    let still = pods(&client, "default", "early").await;
    assert_eq!(
        still
            .iter()
            .map(|p| p.metadata.name.clone())
            .collect::<Vec<_>>(),
        early
            .iter()
            .map(|p| p.metadata.name.clone())
            .collect::<Vec<_>>(),
        "a profile made later does not move pods that exist"
    );
    assert!(!available(&deployments.get("early").await.unwrap()));

    // A restart makes new pods, which the profile now selects; the stuck ones go.
    deployments
        .patch(
            "early",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}})),
        )
        .await
        .unwrap();
    until("early Available after a restart", || async {
        available(&deployments.get("early").await.unwrap()).then_some(())
    })
    .await;
    let moved = pods(&client, "default", "early").await;
    assert_eq!(moved.len(), 2);
    assert!(
        moved
            .iter()
            .all(|p| scheduler(p) == "fargate-scheduler" && phase(p) == "Running")
    );
    assert_eq!(sim.rollouts("default", "early"), 2);

    // Pinned to EC2, or refused by Fargate: Pending for good, worded as EKS words it.
    apply(
        &client,
        deployment(
            "pinned",
            "default",
            json!({"eks.amazonaws.com/compute-type": "ec2"}),
            plain.clone(),
        ),
    )
    .await;
    let privileged = json!({"name": "c", "image": "x", "securityContext": {"privileged": true}});
    apply(
        &client,
        deployment("root", "default", json!({}), privileged),
    )
    .await;
    let pinned = until("pinned Pending", || async {
        let list = pods(&client, "default", "pinned").await;
        (list.len() == 2 && list.iter().all(|p| why(p).is_some())).then_some(list)
    })
    .await;
    assert_eq!(scheduler(&pinned[0]), "default-scheduler");
    assert!(
        why(&pinned[0])
            .unwrap()
            .contains("untolerated taint {eks.amazonaws.com/compute-type: fargate}")
    );
    let root = until("root refused", || async {
        let list = pods(&client, "default", "root").await;
        (list.len() == 2 && list.iter().all(|p| why(p).is_some())).then_some(list)
    })
    .await;
    assert_eq!(scheduler(&root[0]), "fargate-scheduler");
    assert_eq!(
        why(&root[0]).as_deref(),
        Some("Pod not supported on Fargate: invalid SecurityContext fields: Privileged")
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!available(&deployments.get("root").await.unwrap()));

    // Nothing changes: nothing is written.
    let version = kube.resource_version();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        kube.resource_version(),
        version,
        "an idle simulator writes nothing"
    );

    // A deleted Deployment's pods go with it.
    deployments
        .delete("late", &DeleteParams::default())
        .await
        .unwrap();
    until("late's pods gone", || async {
        pods(&client, "default", "late")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}
