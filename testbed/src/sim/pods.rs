//! What [`super::FargateSim`] does to one pod: placed by [`crate::fargate`] once, bound to a
//! Fargate node of its own and started as its kubelet starts it, or left Pending with the
//! scheduler's `FailedScheduling` Event; removed as its kubelet removes it when deleted; and the
//! Fargate nodes that outlive their pod.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Event, Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::{Shared, lock};
use crate::fargate::{self, Placement, Profile};

/// How EKS names a Fargate node: `fargate-ip-10-0-X-Y.<region>.compute.internal`.
const NODE_PREFIX: &str = "fargate-ip-";
/// The label (and taint) key and value EKS puts on every Fargate node.
const COMPUTE_TYPE_FARGATE: (&str, &str) = (fargate::COMPUTE_TYPE, "fargate");
/// The kubelet version the nodes report: the test bed's control plane's.
const KUBELET_VERSION: &str = "v1.37.2";

/// Whether `node` is named as EKS names Fargate nodes.
pub(super) fn is_fargate_node(node: &str) -> bool {
    node.starts_with(NODE_PREFIX)
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

pub(super) fn running(pod: &Pod) -> bool {
    phase(pod) == Some("Running")
}

pub(super) fn finished(pod: &Pod) -> bool {
    matches!(phase(pod), Some("Succeeded" | "Failed"))
}

/// Whether a scheduler marked it unschedulable (`PodScheduled=False`, `Unschedulable`).
pub(super) fn unschedulable(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
        })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The IP of the `n`-th node (and of its pod): `10.0.X.Y`, X in 1..=250, Y in 2..=251.
fn address(n: u32) -> String {
    format!("10.0.{}.{}", 1 + (n / 250) % 250, 2 + n % 250)
}

/// The zone of the `n`-th node: `a` and `b` of `region` in turn (the profiles' subnets are not
/// read; the seeded clusters have a subnet in each).
fn zone(region: &str, n: u32) -> String {
    format!("{region}{}", if n.is_multiple_of(2) { 'a' } else { 'b' })
}

/// `ip-10-0-X-Y.<region>.compute.internal`: the node's host name.
fn host_name(ip: &str, region: &str) -> String {
    format!("ip-{}.{region}.compute.internal", ip.replace('.', "-"))
}

/// `fargate-ip-10-0-X-Y.<region>.compute.internal`.
fn node_name(ip: &str, region: &str) -> String {
    format!("fargate-{}", host_name(ip, region))
}

/// A Fargate node as EKS registers it for one pod: labelled `eks.amazonaws.com/compute-type:
/// fargate` with its host name, region and zone, tainted so that only Fargate pods go there,
/// Ready, with the pod's IP as its InternalIP.
fn node_object(ip: &str, region: &str, zone: &str, at: &str) -> Value {
    let name = node_name(ip, region);
    let host = host_name(ip, region);
    let (key, value) = COMPUTE_TYPE_FARGATE;
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": at, "lastTransitionTime": at})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                key: value,
                "failure-domain.beta.kubernetes.io/region": region,
                "failure-domain.beta.kubernetes.io/zone": zone,
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": host,
                "kubernetes.io/os": "linux",
                "topology.kubernetes.io/region": region,
                "topology.kubernetes.io/zone": zone,
            },
        },
        "spec": {
            "taints": [{"key": key, "value": value, "effect": "NoSchedule"}],
        },
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "InternalDNS", "address": host},
                {"type": "Hostname", "address": host},
            ],
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                          "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID",
                          "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "nodeInfo": {
                "architecture": "amd64", "operatingSystem": "linux",
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                "bootID": "", "machineID": "", "systemUUID": "", "kernelVersion": "",
                "osImage": "", "containerRuntimeVersion": "",
            },
        },
    })
}

/// The `v1 Binding` a scheduler posts to `pods/{name}/binding`; the pod's uid makes it a
/// precondition (a pod made again under the same name is not bound by mistake).
fn binding(pod: &Pod, node: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod.name_any(), "namespace": pod.namespace(), "uid": pod.uid()},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    })
}

fn init_status(c: &Container, at: &str) -> Value {
    // A sidecar (an init container that restarts always) keeps running; the others ran to
    // completion before the containers started, and the kubelet calls them ready.
    if c.restart_policy.as_deref() == Some("Always") {
        return container_status(c, at);
    }
    json!({
        "name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": "",
        "ready": true, "started": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                 "startedAt": at, "finishedAt": at}},
    })
}

fn container_status(c: &Container, at: &str) -> Value {
    json!({
        "name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": "",
        "ready": true, "started": true, "restartCount": 0,
        "state": {"running": {"startedAt": at}},
    })
}

/// The status the kubelet writes once every container of `pod` runs on the node at `ip`.
fn running_status(pod: &Pod, ip: &str, at: &str) -> Value {
    let spec = pod.spec.clone().unwrap_or_default();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": at});
    let mut status = json!({
        "phase": "Running",
        "hostIP": ip, "hostIPs": [{"ip": ip}],
        "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": at,
        "conditions": [
            condition("PodReadyToStartContainers"), condition("Initialized"),
            condition("Ready"), condition("ContainersReady"), condition("PodScheduled"),
        ],
        "containerStatuses": spec.containers.iter().map(|c| container_status(c, at)).collect::<Vec<_>>(),
    });
    if let Some(init) = spec.init_containers.as_ref().filter(|i| !i.is_empty()) {
        status["initContainerStatuses"] = init.iter().map(|c| init_status(c, at)).collect();
    }
    json!({ "status": status })
}

/// The status a scheduler writes for a pod it cannot place.
fn unschedulable_status(message: &str, at: &str) -> Value {
    json!({"status": {"conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": message, "lastProbeTime": null, "lastTransitionTime": at,
    }]}})
}

/// The `FailedScheduling` Event `scheduler` records for `pod` (`serial` tells apart Events made
/// in the same nanosecond).
fn failed_scheduling(pod: &Pod, scheduler: &str, message: &str, at: &str, serial: u32) -> Value {
    let namespace = pod.namespace().unwrap_or_default();
    let nanos = chrono::Utc::now().timestamp_subsec_nanos();
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{}.{:08x}{:08x}", pod.name_any(), nanos, serial),
            "namespace": namespace,
        },
        "involvedObject": {
            "apiVersion": "v1", "kind": "Pod", "namespace": namespace,
            "name": pod.name_any(), "uid": pod.uid(),
            "resourceVersion": pod.resource_version(),
        },
        "reason": "FailedScheduling",
        "message": message,
        "type": "Warning",
        "source": {"component": scheduler},
        "reportingComponent": scheduler,
        "reportingInstance": "",
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
    })
}

/// Whether `error` may pass if the request is sent again: no answer, or 429/5xx.
fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) => false,
        _ => true,
    }
}

fn code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// How long a request is sent again while it fails transiently.
const PERSEVERANCE: Duration = Duration::from_secs(30);

/// Sends a request until it is answered other than transiently, for at most [`PERSEVERANCE`]
/// (backing off from 100 ms to 2 s): a pod is placed once, so a passing fault must not leave it
/// half done.
async fn retrying<T, F: Future<Output = Result<T, kube::Error>>>(
    mut send: impl FnMut() -> F,
) -> Result<T, kube::Error> {
    let began = tokio::time::Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        match send().await {
            Err(e) if transient(&e) && began.elapsed() < PERSEVERANCE => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

fn complain(pod: &Pod, what: &str, error: &kube::Error) {
    eprintln!(
        "fargate sim: {what} {}/{}: {error}",
        pod.namespace().unwrap_or_default(),
        pod.name_any()
    );
}

/// The pod as it is now, when it is still the same pod (same uid).
async fn current(shared: &Shared, pod: &Pod) -> Result<Option<Pod>, kube::Error> {
    let pods: Api<Pod> =
        Api::namespaced(shared.client.clone(), &pod.namespace().unwrap_or_default());
    let name = pod.name_any();
    let now = retrying(|| pods.get_opt(&name)).await?;
    Ok(now.filter(|p| p.uid() == pod.uid()))
}

/// The profiles now; read again (backing off) while they cannot be read and the pod waits.
async fn profiles_now(shared: &Shared, pod: &Pod) -> Option<Vec<Profile>> {
    let mut wait = Duration::from_millis(200);
    let mut told = false;
    loop {
        match shared.profiles.current().await {
            Ok(profiles) => return Some(profiles),
            Err(e) if !told => {
                eprintln!("fargate sim: the Fargate profiles cannot be read (tried again): {e}");
                told = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
        match current(shared, pod).await {
            Ok(Some(p)) if p.metadata.deletion_timestamp.is_some() => return None,
            Ok(None) => return None,
            // Still there, or unknown for now: it still waits.
            Ok(Some(_)) | Err(_) => {}
        }
    }
}

/// Places `pod` once, by the profiles now (the Fargate scheduler and EKS's admission).
pub(super) async fn place(shared: Arc<Shared>, pod: Pod) {
    let Some(profiles) = profiles_now(&shared, &pod).await else {
        return;
    };
    let namespace = pod.namespace().unwrap_or_default();
    let none = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&none);
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&none);
    let spec = pod.spec.clone().unwrap_or_default();
    // Fargate's only when EKS's admission made it so at the pod's creation.
    let placement = if spec.scheduler_name.as_deref() == Some(fargate::FARGATE_SCHEDULER) {
        fargate::place(
            &namespace,
            labels,
            annotations,
            &spec,
            &profiles,
            shared.picks.next(),
        )
    } else {
        Placement::Unselected
    };
    let done = match placement {
        Placement::Fargate { profile } => on_fargate(&shared, &pod, &profile).await.map(|run| {
            if run {
                shared.count(&namespace, |c| c.on_fargate += 1);
            }
        }),
        Placement::Refused { profile, message } => {
            async {
                label(&shared, &pod, &profile).await?;
                refuse(&shared, &pod, fargate::FARGATE_SCHEDULER, &message).await?;
                shared.count(&namespace, |c| c.refused += 1);
                Ok::<(), kube::Error>(())
            }
            .await
        }
        Placement::Unselected => {
            async {
                let message = fargate::unschedulable_message(fargate_nodes(&shared).await?);
                refuse(&shared, &pod, fargate::DEFAULT_SCHEDULER, &message).await?;
                shared.count(&namespace, |c| c.unselected += 1);
                Ok::<(), kube::Error>(())
            }
            .await
        }
    };
    match done {
        Ok(()) => {}
        // Gone meanwhile: nothing more to do for it.
        Err(e) if code(&e) == Some(404) => {}
        Err(e) => complain(&pod, "cannot place", &e),
    }
}

/// The label EKS's admission puts on a pod a profile selects (the profile is then one whose
/// deletion evicts pods, [`evict_deleted_profiles`]).
async fn label(shared: &Shared, pod: &Pod, profile: &str) -> Result<(), kube::Error> {
    lock(&shared.profiles_used).insert(profile.to_owned());
    let pods: Api<Pod> =
        Api::namespaced(shared.client.clone(), &pod.namespace().unwrap_or_default());
    let name = pod.name_any();
    let patch = Patch::Merge(json!({"metadata": {"labels": {fargate::PROFILE_LABEL: profile}}}));
    let params = PatchParams::default();
    retrying(|| pods.patch(&name, &params, &patch)).await?;
    Ok(())
}

/// How many Fargate nodes the cluster has (what kube-scheduler would count).
async fn fargate_nodes(shared: &Shared) -> Result<usize, kube::Error> {
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let (key, value) = COMPUTE_TYPE_FARGATE;
    let selector = ListParams::default().labels(&format!("{key}={value}"));
    Ok(retrying(|| nodes.list(&selector)).await?.items.len())
}

/// `PodScheduled=False` with `message`, and the `FailedScheduling` Event of `scheduler`.
async fn refuse(
    shared: &Shared,
    pod: &Pod,
    scheduler: &str,
    message: &str,
) -> Result<(), kube::Error> {
    let namespace = pod.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
    let at = now();
    let name = pod.name_any();
    let status = Patch::Strategic(unschedulable_status(message, &at));
    let params = PatchParams::default();
    retrying(|| pods.patch_status(&name, &params, &status)).await?;
    let serial = shared.next_event.fetch_add(1, Ordering::Relaxed);
    let event: Event =
        serde_json::from_value(failed_scheduling(pod, scheduler, message, &at, serial))
            .map_err(kube::Error::SerdeError)?;
    let events: Api<Event> = Api::namespaced(shared.client.clone(), &namespace);
    let params = PostParams::default();
    match retrying(|| events.create(&params, &event)).await {
        // A repeat of a create whose answer was lost.
        Err(e) if code(&e) == Some(409) => Ok(()),
        other => other.map(drop),
    }
}

/// Runs `pod` on a Fargate node of its own; false when it went meanwhile (or was bound
/// elsewhere), its node then deleted.
async fn on_fargate(shared: &Shared, pod: &Pod, profile: &str) -> Result<bool, kube::Error> {
    label(shared, pod, profile).await?;
    let (node, ip) = make_node(shared).await?;
    let bound = async {
        tokio::time::sleep(shared.delay).await;
        bind(shared, pod, &node).await
    }
    .await;
    lock(&shared.unbound_nodes).remove(&node);
    match bound {
        Ok(true) => {}
        other => {
            delete_node(shared, &node).await?;
            return other;
        }
    }
    write_running(shared, pod, &ip).await?;
    Ok(true)
}

/// Deletes every pod running on Fargate that was placed with `profile` (label
/// [`fargate::PROFILE_LABEL`], bound to a Fargate node), as EKS does when the profile is
/// deleted; pods being deleted already are left to finish. How many it deleted.
pub async fn evict_profile_pods(
    client: &kube::Client,
    profile: &str,
) -> Result<usize, kube::Error> {
    let pods: Api<Pod> = Api::all(client.clone());
    let placed = ListParams::default().labels(&format!("{}={profile}", fargate::PROFILE_LABEL));
    let mut evicted = 0;
    for pod in retrying(|| pods.list(&placed)).await?.items {
        let on_fargate = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(is_fargate_node);
        if pod.metadata.deletion_timestamp.is_some() || !on_fargate {
            continue;
        }
        let namespaced: Api<Pod> =
            Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let name = pod.name_any();
        match retrying(|| namespaced.delete(&name, &params)).await {
            Ok(_) => evicted += 1,
            Err(e) if matches!(code(&e), Some(404 | 409)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(evicted)
}

/// EKS's part of a profile's deletion: the pods placed with a profile that is no longer ACTIVE
/// (deleting, or gone) are evicted. Looks at the profiles pods were placed with only.
pub(super) async fn evict_deleted_profiles(shared: Arc<Shared>) {
    let used: Vec<String> = lock(&shared.profiles_used).iter().cloned().collect();
    if used.is_empty() {
        return;
    }
    // Unreadable for now: looked at again on the next round.
    let Ok(active) = shared.profiles.current().await else {
        return;
    };
    for name in used {
        if active.iter().any(|p| p.name == name) {
            continue;
        }
        match evict_profile_pods(&shared.client, &name).await {
            Ok(count) => {
                lock(&shared.profiles_used).remove(&name);
                if count > 0 {
                    eprintln!(
                        "fargate sim: Fargate profile {name} is no longer ACTIVE: evicted its {count} pod(s)"
                    );
                }
            }
            Err(e) => {
                eprintln!("fargate sim: cannot evict the pods of Fargate profile {name}: {e}")
            }
        }
    }
}

/// Makes a Fargate node with the next free address; its name and IP. Kept from the node sweep
/// until [`on_fargate`] binds the pod (or gives up).
async fn make_node(shared: &Shared) -> Result<(String, String), kube::Error> {
    let nodes: Api<Node> = Api::all(shared.client.clone());
    loop {
        let n = shared.next_address.fetch_add(1, Ordering::Relaxed);
        let ip = address(n);
        let body = node_object(&ip, &shared.region, &zone(&shared.region, n), &now());
        let node: Node = serde_json::from_value(body).map_err(kube::Error::SerdeError)?;
        let name = node.name_any();
        lock(&shared.unbound_nodes).insert(name.clone());
        let mut sent = 0;
        let params = PostParams::default();
        let made = retrying(|| {
            sent += 1;
            nodes.create(&params, &node)
        })
        .await;
        let outcome = match made {
            Ok(_) => ready(&nodes, &node).await,
            // Made by the first try, whose answer was lost.
            Err(e) if code(&e) == Some(409) && sent > 1 => ready(&nodes, &node).await,
            // Someone else's (a simulator before this one): the next address.
            Err(e) if code(&e) == Some(409) => {
                lock(&shared.unbound_nodes).remove(&name);
                continue;
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            lock(&shared.unbound_nodes).remove(&name);
            let _ = delete_node(shared, &name).await;
            return Err(e);
        }
        return Ok((name, ip));
    }
}

/// The node lifecycle controller's part, which the test bed's KCM does not run: the API server
/// taints every new node `node.kubernetes.io/not-ready:NoSchedule` (admission plugin
/// `TaintNodesByCondition`) and the controller lifts it once the node is Ready, leaving
/// the taints the node registered with (Fargate's).
async fn ready(nodes: &Api<Node>, node: &Node) -> Result<(), kube::Error> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone());
    let patch = Patch::Merge(json!({"spec": {"taints": taints}}));
    let params = PatchParams::default();
    let name = node.name_any();
    retrying(|| nodes.patch(&name, &params, &patch)).await?;
    Ok(())
}

/// Binds `pod` to `node` (the `binding` subresource; setting `spec.nodeName` otherwise is
/// refused). Ok(false) when the pod went, is being deleted or is bound elsewhere.
async fn bind(shared: &Shared, pod: &Pod, node: &str) -> Result<bool, kube::Error> {
    let pods: Api<Pod> =
        Api::namespaced(shared.client.clone(), &pod.namespace().unwrap_or_default());
    let name = pod.name_any();
    let body = binding(pod, node);
    let params = PostParams::default();
    let answer: Result<Value, _> =
        retrying(|| pods.create_subresource("binding", &name, &params, &body)).await;
    let Err(error) = answer else {
        return Ok(true);
    };
    // Refused (a lost answer repeated, the pod gone or being deleted): the pod tells.
    match current(shared, pod).await? {
        Some(now) if now.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node) => {
            Ok(true)
        }
        Some(now)
            if now.metadata.deletion_timestamp.is_none()
                && now
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_none() =>
        {
            Err(error)
        }
        _ => Ok(false),
    }
}

/// The kubelet's status of a pod whose containers all run, on the node at `ip`.
async fn write_running(shared: &Shared, pod: &Pod, ip: &str) -> Result<(), kube::Error> {
    let pods: Api<Pod> =
        Api::namespaced(shared.client.clone(), &pod.namespace().unwrap_or_default());
    let name = pod.name_any();
    let status = Patch::Strategic(running_status(pod, ip, &now()));
    let params = PatchParams::default();
    retrying(|| pods.patch_status(&name, &params, &status)).await?;
    Ok(())
}

/// Starts a pod bound to a Fargate node whose start was cut short (a simulator stopped between
/// the binding and the status).
pub(super) async fn start(shared: Arc<Shared>, pod: Pod) {
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return;
    };
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let found = retrying(|| nodes.get_opt(&node)).await;
    let ip = found.ok().flatten().and_then(|n| {
        n.status?
            .addresses?
            .into_iter()
            .find(|a| a.type_ == "InternalIP")
            .map(|a| a.address)
    });
    // No node (or no address): no kubelet to start it.
    let Some(ip) = ip else {
        return;
    };
    match write_running(&shared, &pod, &ip).await {
        Ok(()) => shared.count(&pod.namespace().unwrap_or_default(), |c| c.on_fargate += 1),
        Err(e) if code(&e) == Some(404) => {}
        Err(e) => complain(&pod, "cannot start", &e),
    }
}

/// The kubelet's part of a deletion: after the delay (the containers stopping), the pod is
/// deleted with grace period 0, on the condition that it is still the same pod.
pub(super) async fn terminate(shared: Arc<Shared>, pod: Pod) {
    tokio::time::sleep(shared.delay).await;
    let namespace = pod.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let name = pod.name_any();
    match retrying(|| pods.delete(&name, &params)).await {
        Ok(_) => shared.count(&namespace, |c| c.terminated += 1),
        // Gone already, or another pod under the name.
        Err(e) if matches!(code(&e), Some(404 | 409)) => {}
        Err(e) => complain(&pod, "cannot finish deleting", &e),
    }
}

/// Deletes the Fargate node `node` when no pod is bound to it any more.
pub(super) async fn release_node(shared: Arc<Shared>, node: String) {
    if lock(&shared.unbound_nodes).contains(&node) {
        return;
    }
    let pods: Api<Pod> = Api::all(shared.client.clone());
    let on_it = ListParams::default().fields(&format!("spec.nodeName={node}"));
    match retrying(|| pods.list(&on_it)).await {
        Ok(list) if list.items.is_empty() => {}
        Ok(_) => return,
        Err(e) => {
            eprintln!("fargate sim: cannot list the pods of node {node}: {e}");
            return;
        }
    }
    if let Err(e) = delete_node(&shared, &node).await {
        eprintln!("fargate sim: cannot delete node {node}: {e}");
    }
}

async fn delete_node(shared: &Shared, node: &str) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let params = DeleteParams::default();
    match retrying(|| nodes.delete(node, &params)).await {
        Err(e) if code(&e) != Some(404) => Err(e),
        _ => Ok(()),
    }
}

/// After a listing of pods whose nodes were `bound`: deletes the Fargate nodes no pod is bound
/// to (a deletion the watch did not show, a simulator stopped between a node and its binding).
pub(super) async fn sweep_nodes(shared: Arc<Shared>, bound: BTreeSet<String>) {
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let (key, value) = COMPUTE_TYPE_FARGATE;
    let selector = ListParams::default().labels(&format!("{key}={value}"));
    let Ok(list) = retrying(|| nodes.list(&selector)).await else {
        return;
    };
    for node in list.items {
        let name = node.name_any();
        if is_fargate_node(&name) && !bound.contains(&name) {
            release_node(shared.clone(), name).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn nodes_are_named_and_addressed_as_eks_does() {
        assert_eq!(address(0), "10.0.1.2");
        assert_eq!(address(249), "10.0.1.251");
        assert_eq!(address(250), "10.0.2.2");
        assert_eq!(address(250 * 250 - 1), "10.0.250.251", "62500 addresses");
        assert_eq!(
            node_name("10.0.1.2", "us-east-2"),
            "fargate-ip-10-0-1-2.us-east-2.compute.internal"
        );
        assert!(is_fargate_node(&node_name("10.0.3.4", "eu-west-1")));
        assert!(!is_fargate_node("ip-10-0-3-4.eu-west-1.compute.internal"));
        assert_eq!(zone("us-east-2", 0), "us-east-2a");
        assert_eq!(zone("us-east-2", 1), "us-east-2b");

        let node: Node =
            serde_json::from_value(node_object("10.0.1.2", "us-east-2", "us-east-2b", &now()))
                .expect("a valid Node");
        let labels = node.labels();
        assert_eq!(labels["eks.amazonaws.com/compute-type"], "fargate");
        assert_eq!(
            labels["kubernetes.io/hostname"],
            "ip-10-0-1-2.us-east-2.compute.internal"
        );
        assert_eq!(labels["topology.kubernetes.io/zone"], "us-east-2b");
        assert_eq!(labels["topology.kubernetes.io/region"], "us-east-2");
        let taint = &node.spec.as_ref().unwrap().taints.as_ref().unwrap()[0];
        assert_eq!(
            (
                taint.key.as_str(),
                taint.value.as_deref(),
                taint.effect.as_str()
            ),
            (
                "eks.amazonaws.com/compute-type",
                Some("fargate"),
                "NoSchedule"
            )
        );
        let status = node.status.unwrap();
        let ready = status
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        let internal = status
            .addresses
            .unwrap()
            .into_iter()
            .find(|a| a.type_ == "InternalIP")
            .unwrap();
        assert_eq!(internal.address, "10.0.1.2");
    }

    #[test]
    fn the_binding_names_the_pod_its_uid_and_the_node() {
        let p = pod(
            json!({"metadata": {"name": "web-1", "namespace": "apps", "uid": "u-1"},
            "spec": {"containers": [{"name": "c"}]}}),
        );
        let b = binding(&p, "fargate-ip-10-0-1-2.us-east-2.compute.internal");
        assert_eq!(b["kind"], "Binding");
        assert_eq!(b["metadata"]["name"], "web-1");
        assert_eq!(b["metadata"]["uid"], "u-1");
        assert_eq!(
            b["target"],
            json!({"apiVersion": "v1", "kind": "Node",
                   "name": "fargate-ip-10-0-1-2.us-east-2.compute.internal"})
        );
    }

    #[test]
    fn a_running_pod_is_ready_with_the_nodes_ip() {
        let p = pod(json!({"metadata": {"name": "web-1"},
            "spec": {
                "initContainers": [{"name": "setup", "image": "busybox"},
                                   {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
                "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}]}}));
        let patch = running_status(&p, "10.0.1.2", "2026-01-01T00:00:00Z");
        let status: k8s_openapi::api::core::v1::PodStatus =
            serde_json::from_value(patch["status"].clone()).expect("a valid PodStatus");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.0.1.2"));
        assert_eq!(status.host_ip.as_deref(), Some("10.0.1.2"));
        assert_eq!(status.pod_ips.unwrap()[0].ip, "10.0.1.2");
        assert_eq!(status.host_ips.unwrap()[0].ip, "10.0.1.2");
        let conditions = status.conditions.unwrap();
        for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert!(
                conditions
                    .iter()
                    .any(|c| c.type_ == kind && c.status == "True"),
                "{kind}"
            );
        }
        let containers = status.container_statuses.unwrap();
        assert_eq!(
            containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(containers.iter().all(|c| c.ready
            && c.started == Some(true)
            && c.state.as_ref().unwrap().running.is_some()));
        let init = status.init_container_statuses.unwrap();
        let setup = init[0].state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(
            (setup.exit_code, setup.reason.as_deref()),
            (0, Some("Completed"))
        );
        assert!(
            init[1].state.as_ref().unwrap().running.is_some(),
            "a sidecar runs"
        );

        let plain = pod(json!({"metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "a", "image": "nginx"}]}}));
        let patch = running_status(&plain, "10.0.1.2", "2026-01-01T00:00:00Z");
        assert!(patch["status"].get("initContainerStatuses").is_none());
    }

    #[test]
    fn unschedulable_pods_are_told_apart() {
        let at = "2026-01-01T00:00:00Z";
        let mut p = pod(
            json!({"metadata": {"name": "web-1", "namespace": "apps", "uid": "u"},
            "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}}),
        );
        assert!(!unschedulable(&p));
        p.status =
            serde_json::from_value(unschedulable_status("no nodes", at)["status"].clone()).unwrap();
        assert!(unschedulable(&p));
        assert!(!running(&p) && !finished(&p));

        let event: Event = serde_json::from_value(failed_scheduling(
            &p,
            fargate::FARGATE_SCHEDULER,
            "Pod not supported on Fargate: fields not supported: HostNetwork",
            at,
            7,
        ))
        .expect("a valid Event");
        assert_eq!(event.reason.as_deref(), Some("FailedScheduling"));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.involved_object.name.as_deref(), Some("web-1"));
        assert_eq!(event.involved_object.uid.as_deref(), Some("u"));
        assert_eq!(event.metadata.namespace.as_deref(), Some("apps"));
        assert_eq!(
            event.reporting_component.as_deref(),
            Some("fargate-scheduler")
        );
        assert!(event.metadata.name.unwrap().starts_with("web-1."));
    }

    #[test]
    fn only_unanswered_or_overloaded_requests_are_sent_again() {
        let status = |code| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..Default::default()
            }))
        };
        assert!(transient(&status(429)));
        assert!(transient(&status(503)));
        assert!(!transient(&status(404)));
        assert!(!transient(&status(409)));
        assert!(!transient(&kube::Error::SerdeError(
            serde_json::from_str::<Value>("{").unwrap_err()
        )));
        assert!(transient(&kube::Error::Service("connection reset".into())));
    }
}
