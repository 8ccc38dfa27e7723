//! The Fargate simulator (EKS's Fargate scheduler and the kubelets) on the real control plane,
//! with the Fargate profiles moto holds: kube-controller-manager makes the pods and writes the
//! Deployments' status; the simulator places each pod once when it appears (a node of its own,
//! a refusal worded as EKS words it, or Pending under `default-scheduler`), and finishes the
//! deletion of the pods it runs, so deleting a Deployment or a namespace ends.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use testbed::controlplane::{ControlPlane, Requested};
use testbed::fargate::Profiles;
use testbed::sim::{FargateSim, Placements};
use testbed::{Moto, REGION, seed};

/// The simulators' user in the audit log.
const SIMULATORS: &str = "testbed:simulators";
/// kube-controller-manager's user in the audit log.
const CONTROLLER_MANAGER: &str = "system:kube-controller-manager";

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

/// Polls `check` until it gives something; fails after `limit`.
async fn until<T, F: Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    check: impl Fn() -> F,
) -> T {
    let began = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(began.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const MINUTE: Duration = Duration::from_secs(60);

async fn pods(client: &Client, namespace: &str, app: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
}

fn names(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter().map(|p| p.name_any()).collect()
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref()?.node_name.clone()
}

fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn condition(pod: &Pod, kind: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}

fn why(pod: &Pod) -> Option<String> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    assert_eq!(c.reason.as_deref(), Some("Unschedulable"));
    c.message.clone()
}

fn runs(pod: &Pod) -> bool {
    phase(pod) == "Running" && condition(pod, "Ready").as_deref() == Some("True")
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

/// The Deployment once KCM marked it Available with all its replicas.
async fn until_available(client: &Client, namespace: &str, name: &str) -> Deployment {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    until(&format!("{namespace}/{name} Available"), MINUTE, || async {
        let d = deployments.get(name).await.unwrap();
        let status = d.status.clone().unwrap_or_default();
        (available(&d) && status.available_replicas == Some(2) && status.replicas == Some(2))
            .then_some(d)
    })
    .await
}

/// The `FailedScheduling` Event of `pod`, when there is one: (source component, message).
async fn failed_scheduling(client: &Client, pod: &Pod) -> Option<(String, String)> {
    Api::<Event>::namespaced(client.clone(), &pod.namespace().unwrap())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| {
            e.reason.as_deref() == Some("FailedScheduling")
                && e.involved_object.name.as_deref() == Some(&pod.name_any())
        })
        .map(|e| {
            (
                e.source.and_then(|s| s.component).unwrap_or_default(),
                e.message.unwrap_or_default(),
            )
        })
}

/// Two pods of `app`, each Pending with a `PodScheduled=False` message.
async fn until_pending(client: &Client, namespace: &str, app: &str) -> Vec<Pod> {
    until(&format!("{app} pods Pending"), MINUTE, || async {
        let list = pods(client, namespace, app).await;
        (list.len() == 2 && list.iter().all(|p| why(p).is_some())).then_some(list)
    })
    .await
}

/// Waits until the simulator counted `expected` in `namespace` (its count follows the writes).
async fn until_placements(sim: &FargateSim, namespace: &str, expected: Placements) {
    let began = Instant::now();
    while sim.placements(namespace) != expected && began.elapsed() < MINUTE {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sim.placements(namespace), expected);
}

fn pod_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{name}")
}

fn by<'a>(requests: &'a [Requested], user: &str) -> impl Iterator<Item = &'a Requested> {
    let user = user.to_owned();
    requests.iter().filter(move |r| r.user == user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_go_where_the_profiles_in_moto_allow_when_they_are_made() {
    let moto = Moto::start();
    let config = moto.sdk_config(REGION).await;
    let seeded = seed::cluster(&config, "sim", false).await;
    let cluster = ControlPlane::start();
    let client = cluster.client().await;
    let sim = FargateSim::start(cluster.simulator_client().await, Profiles::eks(&config)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    let plain = json!({"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]});

    // No profile yet: Pending under default-scheduler, with kube-scheduler's message and Event.
    apply(
        &client,
        deployment("early", "default", json!({}), plain.clone()),
    )
    .await;
    let early = until_pending(&client, "default", "early").await;
    for pod in &early {
        assert_eq!(
            why(pod).as_deref(),
            Some("no nodes available to schedule pods")
        );
        assert_eq!(node_of(pod), None);
        assert_eq!(phase(pod), "Pending");
        let event = until("early's FailedScheduling Event", MINUTE, || {
            failed_scheduling(&client, pod)
        })
        .await;
        assert_eq!(
            event,
            (
                "default-scheduler".to_owned(),
                "no nodes available to schedule pods".to_owned()
            )
        );
    }
    until_placements(
        &sim,
        "default",
        Placements {
            unselected: 2,
            ..Placements::default()
        },
    )
    .await;

    // The profile comes; the early pods stay where they are, new ones run on Fargate nodes of
    // their own, and KCM marks the Deployment Available from their readiness.
    seed::fargate_profile(
        &config,
        "sim",
        "fp-sim",
        &seeded.subnet_ids,
        &[("default", &[])],
    )
    .await;
    apply(
        &client,
        deployment("late", "default", json!({}), plain.clone()),
    )
    .await;
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "late"},
        "spec": {"selector": {"app": "late"}, "ports": [{"port": 80, "targetPort": 80}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    until_available(&client, "default", "late").await;
    let late = pods(&client, "default", "late").await;
    assert_eq!(late.len(), 2);
    let mut late_nodes = BTreeSet::new();
    let mut late_ips = BTreeSet::new();
    for pod in &late {
        assert!(runs(pod), "{:?}", pod.status);
        for kind in ["PodScheduled", "Initialized", "ContainersReady"] {
            assert_eq!(condition(pod, kind).as_deref(), Some("True"), "{kind}");
        }
        let status = pod.status.as_ref().unwrap();
        assert!(
            status
                .container_statuses
                .iter()
                .flatten()
                .all(|c| c.ready && c.state.as_ref().unwrap().running.is_some())
        );
        assert_eq!(
            pod.labels()["eks.amazonaws.com/fargate-profile"],
            "fp-sim",
            "labelled with its profile, as EKS's admission does"
        );
        let name = node_of(pod).unwrap();
        assert!(
            name.starts_with("fargate-ip-10-0-") && name.ends_with(".us-east-2.compute.internal"),
            "{name}"
        );
        let node = nodes.get(&name).await.unwrap();
        let labels = node.labels();
        assert_eq!(labels["eks.amazonaws.com/compute-type"], "fargate");
        assert_eq!(labels["topology.kubernetes.io/region"], "us-east-2");
        assert!(labels["topology.kubernetes.io/zone"].starts_with("us-east-2"));
        assert_eq!(
            format!("fargate-{}", labels["kubernetes.io/hostname"]),
            name
        );
        let taints = node.spec.as_ref().unwrap().taints.clone().unwrap();
        assert_eq!(taints.len(), 1, "not-ready taint lifted: {taints:?}");
        assert_eq!(
            (
                taints[0].key.as_str(),
                taints[0].value.as_deref(),
                taints[0].effect.as_str()
            ),
            (
                "eks.amazonaws.com/compute-type",
                Some("fargate"),
                "NoSchedule"
            )
        );
        let node_status = node.status.unwrap();
        assert!(
            node_status
                .conditions
                .unwrap()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        );
        let internal = node_status
            .addresses
            .unwrap()
            .into_iter()
            .find(|a| a.type_ == "InternalIP")
            .unwrap()
            .address;
        assert_eq!(status.pod_ip.as_deref(), Some(internal.as_str()));
        assert_eq!(status.host_ip.as_deref(), Some(internal.as_str()));
        late_nodes.insert(name);
        late_ips.insert(internal);
    }
    assert_eq!(late_nodes.len(), 2, "a node of its own for each pod");
    until_placements(
        &sim,
        "default",
        Placements {
            on_fargate: 2,
            unselected: 2,
            ..Placements::default()
        },
    )
    .await;

    // KCM's EndpointSlice controller lists them as ready endpoints.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    until(
        "late's EndpointSlice lists both pods ready",
        MINUTE,
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=late"))
                .await
                .unwrap();
            let ready: BTreeSet<String> = list
                .items
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .flat_map(|e| e.addresses.iter().cloned())
                .collect();
            (ready == late_ips).then_some(())
        },
    )
    .await;

    let still = pods(&client, "default", "early").await;
    assert_eq!(
        names(&still),
        names(&early),
        "a profile made later does not move pods that exist"
    );
    assert!(still.iter().all(|p| node_of(p).is_none()));
    assert!(!available(&deployments.get("early").await.unwrap()));

    // Who did what: KCM made the pods and wrote the status; the simulator bound each pod once.
    let requests = cluster.requests();
    assert!(
        by(&requests, CONTROLLER_MANAGER).any(|r| r.method != "GET"
            && r.path == "/apis/apps/v1/namespaces/default/deployments/late/status"),
        "KCM wrote late's status"
    );
    let simulated: Vec<&Requested> = by(&requests, SIMULATORS).filter(|r| r.is_write()).collect();
    assert!(
        !simulated
            .iter()
            // (Its dry-run pod, made when it starts, shows its admission webhook is called.)
            .any(|r| r.path.contains("/deployments")
                || (r.path.ends_with("/pods") && !r.query.contains("dryRun=All"))),
        "the simulator neither writes Deployments nor makes pods: {simulated:?}"
    );
    // EKS's admission made them Fargate's at their creation, and only them.
    for pod in &late {
        assert_eq!(
            pod.spec.as_ref().unwrap().scheduler_name.as_deref(),
            Some("fargate-scheduler")
        );
    }
    for pod in &still {
        assert_eq!(
            pod.spec.as_ref().unwrap().scheduler_name.as_deref(),
            Some("default-scheduler")
        );
    }
    for pod in &late {
        let bindings: Vec<u16> = simulated
            .iter()
            .filter(|r| {
                r.method == "POST" && r.path == pod_path("default", &pod.name_any()) + "/binding"
            })
            .map(|r| r.code)
            .collect();
        assert_eq!(bindings, [201], "one binding of {}", pod.name_any());
    }

    // A restart makes new pods (KCM's new ReplicaSet), which the profile now selects; the
    // stuck ones go.
    common::workload::restart(&deployments, "early", &[])
        .await
        .unwrap();
    until_available(&client, "default", "early").await;
    let moved = until("early's old pods gone", MINUTE, || async {
        let list = pods(&client, "default", "early").await;
        (list.len() == 2).then_some(list)
    })
    .await;
    assert!(names(&moved).is_disjoint(&names(&early)));
    assert!(moved.iter().all(runs));
    assert_eq!(
        testbed::sim::rollouts(&client, "default", "early")
            .await
            .unwrap(),
        2
    );

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
    // (A privileged container would be the plainer case, but this kube-apiserver refuses it:
    // it runs without `--allow-privileged`, which EKS's sets.)
    let admin = json!({"name": "c", "image": "x",
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}});
    apply(&client, deployment("root", "default", json!({}), admin)).await;
    let pinned = until_pending(&client, "default", "pinned").await;
    let message = why(&pinned[0]).unwrap();
    assert!(
        message.contains("node(s) had untolerated taint {eks.amazonaws.com/compute-type: fargate}"),
        "{message}"
    );
    let event = until("pinned's FailedScheduling Event", MINUTE, || {
        failed_scheduling(&client, &pinned[0])
    })
    .await;
    assert_eq!(event.0, "default-scheduler");
    let root = until_pending(&client, "default", "root").await;
    for pod in &root {
        assert_eq!(
            why(pod).as_deref(),
            Some(
                "Pod not supported on Fargate: invalid SecurityContext fields: Capabilities added: NET_ADMIN"
            )
        );
        assert_eq!(node_of(pod), None);
        assert_eq!(pod.labels()["eks.amazonaws.com/fargate-profile"], "fp-sim");
        let event = until("root's FailedScheduling Event", MINUTE, || {
            failed_scheduling(&client, pod)
        })
        .await;
        assert_eq!(
            event,
            (
                "fargate-scheduler".to_owned(),
                "Pod not supported on Fargate: invalid SecurityContext fields: Capabilities added: NET_ADMIN"
                    .to_owned()
            )
        );
    }
    // KCM saw both unavailable.
    let root_deployment = until("KCM counted root's pods", MINUTE, || async {
        let d = deployments.get("root").await.unwrap();
        (d.status.as_ref().and_then(|s| s.unavailable_replicas) == Some(2)).then_some(d)
    })
    .await;
    assert!(!available(&root_deployment));
    until_placements(
        &sim,
        "default",
        Placements {
            on_fargate: 4,
            refused: 2,
            unselected: 4,
            terminated: 0,
        },
    )
    .await;

    // A deleted Deployment's pods go (the garbage collector deletes, the kubelet finishes), and
    // so do their nodes.
    deployments
        .delete("late", &DeleteParams::default())
        .await
        .unwrap();
    until("late's pods and nodes gone", MINUTE, || async {
        let mut left = 0;
        for node in &late_nodes {
            left += usize::from(nodes.get_opt(node).await.unwrap().is_some());
        }
        (pods(&client, "default", "late").await.is_empty() && left == 0).then_some(())
    })
    .await;
    let requests = cluster.requests();
    for pod in &late {
        assert!(
            by(&requests, SIMULATORS).any(|r| r.method == "DELETE"
                && r.path == pod_path("default", &pod.name_any())
                && r.code == 200),
            "the kubelet's part: {} deleted by the simulator",
            pod.name_any()
        );
    }
    let placed = Placements {
        on_fargate: 4,
        refused: 2,
        unselected: 4,
        terminated: 2,
    };
    until_placements(&sim, "default", placed).await;

    // Pods never bound are deleted by the API server at once: the simulator has no part.
    deployments
        .delete("root", &DeleteParams::default())
        .await
        .unwrap();
    until("root's pods gone", MINUTE, || async {
        pods(&client, "default", "root")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let requests = cluster.requests();
    for pod in &root {
        assert!(
            !by(&requests, SIMULATORS)
                .any(|r| r.method == "DELETE" && r.path == pod_path("default", &pod.name_any())),
            "{} was never bound: the API server deletes it",
            pod.name_any()
        );
    }
    assert_eq!(sim.placements("default"), placed);
    let refused: Vec<Requested> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.user == SIMULATORS && r.code >= 400)
        .collect();
    assert!(
        refused.is_empty(),
        "the API server refused the simulator: {refused:?}"
    );
    assert!(sim.is_running());
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_finishes() {
    let cluster = ControlPlane::start();
    let client = cluster.client().await;
    let sim = FargateSim::start(
        cluster.simulator_client().await,
        Profiles::namespaces(&["apps"]),
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "apps"}})).unwrap(),
        )
        .await
        .unwrap();
    apply(
        &client,
        deployment(
            "api",
            "apps",
            json!({}),
            json!({"name": "c", "image": "nginx"}),
        ),
    )
    .await;
    until_available(&client, "apps", "api").await;
    let running = pods(&client, "apps", "api").await;
    let bound: BTreeSet<String> = running.iter().filter_map(node_of).collect();
    assert_eq!(bound.len(), 2);

    // Without the kubelet's part the namespace would stay Terminating: its pods would.
    namespaces
        .delete("apps", &DeleteParams::default())
        .await
        .unwrap();
    // The namespace controller looks again after half the pods' grace period (30 s) + 1 s.
    until("namespace apps gone", 2 * MINUTE, || async {
        namespaces
            .get_opt("apps")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    for node in &bound {
        until(&format!("node {node} gone"), MINUTE, || async {
            nodes.get_opt(node).await.unwrap().is_none().then_some(())
        })
        .await;
    }
    until_placements(
        &sim,
        "apps",
        Placements {
            on_fargate: 2,
            terminated: 2,
            ..Placements::default()
        },
    )
    .await;
}

/// The profile each live pod of `app` runs with (`None`: not placed on Fargate).
async fn profiles_of(client: &Client, namespace: &str, app: &str) -> Vec<Option<String>> {
    pods(client, namespace, app)
        .await
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            runs(p)
                .then(|| p.labels().get(testbed::fargate::PROFILE_LABEL).cloned())
                .flatten()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_profiles_a_pod_that_names_one_and_a_deleted_profile_evicting_its_pods() {
    let moto = Moto::start();
    let config = moto.sdk_config(REGION).await;
    let seeded = seed::cluster(&config, "sim", false).await;
    let game: &[(&str, &[(&str, &str)])] = &[("game", &[])];
    seed::fargate_profile(&config, "sim", "fp-a", &seeded.subnet_ids, game).await;
    let cluster = ControlPlane::start();
    let client = cluster.client().await;
    let sim = FargateSim::start(cluster.simulator_client().await, Profiles::eks(&config)).await;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "game"}})).unwrap(),
        )
        .await
        .unwrap();
    let plain = json!({"name": "c", "image": "nginx"});
    apply(&client, deployment("web", "game", json!({}), plain.clone())).await;
    until_available(&client, "game", "web").await;
    assert_eq!(
        profiles_of(&client, "game", "web").await,
        [Some("fp-a".to_owned()), Some("fp-a".to_owned())]
    );

    // A second profile selecting the same namespace: a pod goes on either at random, unless
    // it names one (`eks.amazonaws.com/fargate-profile`); a pod naming a profile that does not
    // exist stays Pending.
    seed::fargate_profile(&config, "sim", "fp-b", &seeded.subnet_ids, game).await;
    let mut many = deployment("many", "game", json!({}), plain.clone());
    many["spec"]["replicas"] = json!(12);
    apply(&client, many).await;
    let mut pinned = deployment("pinned", "game", json!({}), plain.clone());
    pinned["spec"]["template"]["metadata"]["labels"][testbed::fargate::PROFILE_LABEL] =
        json!("fp-b");
    apply(&client, pinned).await;
    let mut nowhere = deployment("nowhere", "game", json!({}), plain.clone());
    nowhere["spec"]["template"]["metadata"]["labels"][testbed::fargate::PROFILE_LABEL] =
        json!("fp-gone");
    apply(&client, nowhere).await;
    let spread = until("the 12 pods of many run", MINUTE, || async {
        let on = profiles_of(&client, "game", "many").await;
        (on.len() == 12 && on.iter().all(Option::is_some)).then_some(on)
    })
    .await;
    let chosen: BTreeSet<Option<String>> = spread.into_iter().collect();
    assert_eq!(
        chosen,
        BTreeSet::from([Some("fp-a".to_owned()), Some("fp-b".to_owned())]),
        "several profiles select the pods: each lands on one of them at random"
    );
    until_available(&client, "game", "pinned").await;
    assert_eq!(
        profiles_of(&client, "game", "pinned").await,
        [Some("fp-b".to_owned()), Some("fp-b".to_owned())]
    );
    let stuck = until_pending(&client, "game", "nowhere").await;
    assert!(
        stuck.iter().all(|p| node_of(p).is_none()),
        "a pod naming a profile that does not exist is placed nowhere"
    );

    // Deleting fp-a evicts every pod it placed (nothing else): their ReplicaSets make them
    // again, and fp-b, the only profile left, takes them.
    let pinned_before = names(&pods(&client, "game", "pinned").await);
    aws_sdk_eks::Client::new(&config)
        .delete_fargate_profile()
        .cluster_name("sim")
        .fargate_profile_name("fp-a")
        .send()
        .await
        .unwrap();
    for app in ["web", "many"] {
        until(&format!("{app} back on fp-b"), MINUTE, || async {
            let on = profiles_of(&client, "game", app).await;
            let want = if app == "web" { 2 } else { 12 };
            (on.len() == want && on.iter().all(|p| p.as_deref() == Some("fp-b"))).then_some(())
        })
        .await;
    }
    assert_eq!(
        names(&pods(&client, "game", "pinned").await),
        pinned_before,
        "the pods of fp-b were left alone"
    );
    let requests = cluster.requests();
    let evicted = by(&requests, SIMULATORS)
        .filter(|r| r.method == "DELETE" && r.path.starts_with("/api/v1/namespaces/game/pods/"))
        .count();
    assert!(evicted >= 2, "the simulator evicted fp-a's pods: {evicted}");
    assert!(sim.is_running());
}
