//! Simulated cluster behaviour, written as ordinary kube-rs clients so they work against any API
//! server: what EKS does for the objects our steps make that a bare control plane does not.
//!
//! The test bed's control plane ([`crate::controlplane`]) runs the real kube-apiserver and
//! kube-controller-manager: the Deployment and ReplicaSet controllers make the pods and write the
//! Deployments' status from the pods' readiness, the EndpointSlice controller makes the slices
//! from the pods' IPs and readiness, the garbage collector and the namespace controller delete.
//! Nothing there schedules a pod or runs it: [`FargateSim`] is EKS's Fargate scheduler and the
//! kubelet of each Fargate node.
//!
//! A simulator is a tokio task started inside a runtime; it stops when its handle's `stop` is
//! called or the handle is dropped (so a test can stop it to make a wait time out).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::fargate::Profiles;

mod admission;
mod pods;

pub use admission::WEBHOOK as FARGATE_ADMISSION_WEBHOOK;
pub use pods::evict_profile_pods;

/// How often the simulator looks whether a profile it placed pods with is still ACTIVE.
const PROFILE_CHECK: Duration = Duration::from_secs(1);

/// The annotation the Deployment controller keeps on a Deployment: its revision, one more for
/// each pod template it rolled out.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// What [`FargateSim`] did with the pods of one namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placements {
    /// Pods it bound to a Fargate node of their own and marked Running and Ready.
    pub on_fargate: u32,
    /// Pods a profile selected that the Fargate scheduler refused: Pending, `PodScheduled=False`
    /// and a `FailedScheduling` Event from `fargate-scheduler`.
    pub refused: u32,
    /// Pods no profile selected (or pinned to EC2): Pending, `PodScheduled=False` and a
    /// `FailedScheduling` Event from `default-scheduler`.
    pub unselected: u32,
    /// Pods being deleted that it removed from the API as their node's kubelet
    /// (`gracePeriodSeconds=0`).
    pub terminated: u32,
}

type Counts = Arc<Mutex<BTreeMap<String, Placements>>>;

struct Shared {
    client: Client,
    delay: Duration,
    profiles: Profiles,
    region: String,
    counts: Counts,
    /// Pods (uid) it took in hand to place or to start: each is placed once, whatever comes.
    taken: Mutex<BTreeSet<String>>,
    /// Pods (uid) being deleted whose kubelet's part it took in hand.
    terminating: Mutex<BTreeSet<String>>,
    /// Nodes it made for a pod that is not bound to them yet (kept by the node sweep).
    unbound_nodes: Mutex<BTreeSet<String>>,
    next_address: AtomicU32,
    next_event: AtomicU32,
    /// Where several profiles select a pod, which one takes it.
    picks: crate::fargate::Picks,
    /// The profiles pods were placed with (their label): a deleted one evicts its pods.
    profiles_used: Mutex<BTreeSet<String>>,
    /// A look at the profiles is under way.
    checking: std::sync::atomic::AtomicBool,
}

/// EKS's Fargate scheduler and the kubelet of each Fargate node, for the pods of every
/// namespace (a kube-runtime watcher of Pods):
///
/// - **Placement, once per pod**, when it first sees a pod with no `spec.nodeName` that is not
///   being deleted, by the rules of [`crate::fargate::place`] against the profiles its
///   [`Profiles`] source gives at that moment:
///   - *On Fargate:* it labels the pod with its profile ([`crate::fargate::PROFILE_LABEL`], as
///     EKS's admission does), makes a Node of its own (`fargate-ip-10-0-X-Y.<region>.compute.internal`,
///     labelled and tainted as EKS's Fargate nodes are, Ready, InternalIP `10.0.X.Y`), and after
///     the delay binds the pod to it through the `pods/binding` subresource (as a scheduler
///     does; the API server sets `PodScheduled=True`), then writes the pod's status through
///     `pods/status` as the kubelet does: Running, `podIP` = `hostIP` = the node's IP (a Fargate
///     pod has an ENI of its own), every container running and ready, `Initialized`,
///     `ContainersReady` and `Ready` True. KCM then counts it ready and available, and its
///     EndpointSlice controller lists its IP as a ready endpoint.
///   - *Refused by Fargate* or *not selected*: status condition `PodScheduled=False`, reason
///     `Unschedulable`, with the scheduler's message, and a `FailedScheduling` Event from
///     `fargate-scheduler` or `default-scheduler`. Never placed again (a profile made later does
///     not help: the pod must be made again, e.g. by a rollout).
///
///   What it cannot do is EKS's mutating admission: a pod keeps the `spec.schedulerName` it was
///   made with (`default-scheduler`), since that field is immutable after creation. On EKS a pod
///   a profile selects carries `fargate-scheduler`; here the profile label and the
///   `FailedScheduling` Event's source say which scheduler took it.
/// - **The kubelet's part of deletion.** A pod bound to a node leaves the API only once its
///   kubelet confirms. When a pod on a Fargate node gets a `deletionTimestamp`, it deletes it
///   after the delay (the containers stopping) with `gracePeriodSeconds=0` and the pod's uid as
///   precondition, as the kubelet does; once the pod is gone, its node goes (a Fargate node
///   serves one pod). Pods never bound are deleted by the API server at once.
/// - After every (re)list of pods it deletes the Fargate nodes no pod is bound to (missed
///   deletions, nodes of a simulator stopped halfway).
/// - **A deleted profile evicts its pods.** Every second it reads the profiles again (when pods
///   run with one) and deletes the pods running on Fargate with a profile that is no longer
///   ACTIVE ([`evict_profile_pods`]), as EKS does once a profile is deleted; their controllers
///   make them again, placed by the profiles left.
/// - **Several profiles:** a pod that several ACTIVE profiles select goes on one of them at
///   random (a deterministic sequence), unless it carries the profile label: then on that
///   profile only, and on none when that one does not select it.
///
/// It never makes pods, never deletes them but as above, and never writes a Deployment: an idle
/// cluster stays unwritten.
#[derive(Debug)]
pub struct FargateSim {
    task: tokio::task::JoinHandle<()>,
    counts: Counts,
    _admission: Option<admission::FargateAdmission>,
}

impl FargateSim {
    /// The delay [`FargateSim::start`] uses before a Fargate pod runs (and before a deleted
    /// pod's containers are stopped).
    pub const DEFAULT_DELAY: Duration = Duration::from_millis(200);

    /// Starts the simulator with [`FargateSim::DEFAULT_DELAY`], placing pods by the Fargate
    /// profiles `profiles` gives. Call inside a tokio runtime.
    pub async fn start(client: Client, profiles: Profiles) -> FargateSim {
        FargateSim::start_with(client, FargateSim::DEFAULT_DELAY, profiles).await
    }

    /// Starts the simulator; a Fargate pod is bound and runs `delay` after it was placed, and a
    /// deleted one is removed `delay` after its deletion began. Call inside a tokio runtime.
    ///
    /// First it registers EKS's Fargate admission webhook ([`FARGATE_ADMISSION_WEBHOOK`]),
    /// served by this simulator: pods a profile selects at their creation get `schedulerName:
    /// fargate-scheduler`, and only those are Fargate's to place.
    pub async fn start_with(client: Client, delay: Duration, profiles: Profiles) -> FargateSim {
        let admission = match admission::FargateAdmission::start(profiles.clone()) {
            Ok(admission) => match admission.register(&client).await {
                Ok(()) => Some(admission),
                Err(e) => {
                    eprintln!("fargate simulator: cannot register its admission webhook: {e}");
                    None
                }
            },
            Err(e) => {
                eprintln!("fargate simulator: cannot serve its admission webhook: {e}");
                None
            }
        };
        let counts: Counts = Arc::default();
        let region = match &profiles {
            Profiles::Eks { eks, .. } => eks
                .config()
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| crate::REGION.to_owned()),
            Profiles::Static(_) => crate::REGION.to_owned(),
        };
        let shared = Arc::new(Shared {
            client,
            delay,
            profiles,
            region,
            counts: counts.clone(),
            taken: Mutex::default(),
            terminating: Mutex::default(),
            unbound_nodes: Mutex::default(),
            next_address: AtomicU32::new(0),
            next_event: AtomicU32::new(0),
            picks: crate::fargate::Picks::default(),
            profiles_used: Mutex::default(),
            checking: std::sync::atomic::AtomicBool::new(false),
        });
        let task = tokio::spawn(run(shared));
        FargateSim {
            task,
            counts,
            _admission: admission,
        }
    }

    /// Stops the simulator (and any change it was about to make). Idempotent.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// False once stopped (or if it ended).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// What it did so far with the pods of `namespace`.
    pub fn placements(&self, namespace: &str) -> Placements {
        lock(&self.counts)
            .get(namespace)
            .copied()
            .unwrap_or_default()
    }

    /// What it did so far, by namespace.
    pub fn all_placements(&self) -> BTreeMap<String, Placements> {
        lock(&self.counts).clone()
    }
}

impl Drop for FargateSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many pod templates the Deployment controller rolled out for `namespace/name`: its
/// [`REVISION_ANNOTATION`] (1 for the first template, +1 for each change such as a restart;
/// a scale is none). 0 when the Deployment is missing or not synced yet.
pub async fn rollouts(client: &Client, namespace: &str, name: &str) -> Result<u32, kube::Error> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    Ok(deployments
        .get_opt(name)
        .await?
        .and_then(|d| d.annotations().get(REVISION_ANNOTATION)?.parse().ok())
        .unwrap_or(0))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn count(&self, namespace: &str, what: impl FnOnce(&mut Placements)) {
        what(lock(&self.counts).entry(namespace.to_owned()).or_default());
    }
}

/// What a pod, as the watch shows it, asks of the Fargate scheduler and kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// Not bound, not being deleted, never marked unschedulable: place it.
    Place,
    /// Bound to a Fargate node but not running (its start was cut short): start it.
    Start,
    /// Bound to a Fargate node and being deleted: the kubelet's part.
    Terminate,
    Nothing,
}

fn action(pod: &Pod) -> Action {
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let on_fargate = node.is_some_and(pods::is_fargate_node);
    if pod.metadata.deletion_timestamp.is_some() {
        return if on_fargate {
            Action::Terminate
        } else {
            Action::Nothing
        };
    }
    match node {
        None if !pods::unschedulable(pod) => Action::Place,
        Some(_) if on_fargate && !pods::running(pod) && !pods::finished(pod) => Action::Start,
        _ => Action::Nothing,
    }
}

async fn run(shared: Arc<Shared>) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // Workers in flight; dropped (aborted) with this task.
    let mut workers = tokio::task::JoinSet::new();
    // The nodes of the pods of the listing under way (between `Init` and `InitDone`).
    let mut listing: Option<BTreeSet<String>> = None;
    let mut profile_check = tokio::time::interval(PROFILE_CHECK);
    profile_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = profile_check.tick() => {
                if !shared.checking.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    let shared = shared.clone();
                    workers.spawn(async move {
                        pods::evict_deleted_profiles(shared.clone()).await;
                        shared.checking.store(false, std::sync::atomic::Ordering::SeqCst);
                    });
                }
            }
            next = events.next() => match next {
                Some(Ok(watcher::Event::Init)) => listing = Some(BTreeSet::new()),
                Some(Ok(watcher::Event::InitApply(pod))) => {
                    if let (Some(nodes), Some(node)) =
                        (listing.as_mut(), pod.spec.as_ref().and_then(|s| s.node_name.clone()))
                    {
                        nodes.insert(node);
                    }
                    dispatch(&shared, &mut workers, pod);
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    if let Some(bound) = listing.take() {
                        workers.spawn(pods::sweep_nodes(shared.clone(), bound));
                    }
                }
                Some(Ok(watcher::Event::Apply(pod))) => dispatch(&shared, &mut workers, pod),
                Some(Ok(watcher::Event::Delete(pod))) => {
                    if let Some(uid) = pod.uid() {
                        lock(&shared.taken).remove(&uid);
                        lock(&shared.terminating).remove(&uid);
                    }
                    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone())
                        && pods::is_fargate_node(&node)
                    {
                        workers.spawn(pods::release_node(shared.clone(), node));
                    }
                }
                // The backoff retries; a server that went away just ends the stream.
                Some(Err(_)) => {}
                None => return,
            },
            Some(_) = workers.join_next(), if !workers.is_empty() => {}
        }
    }
}

fn dispatch(shared: &Arc<Shared>, workers: &mut tokio::task::JoinSet<()>, pod: Pod) {
    let Some(uid) = pod.uid() else {
        return;
    };
    // A pod running on Fargate (placed by an earlier simulator, too) ties its profile.
    if pod.metadata.deletion_timestamp.is_none()
        && pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(pods::is_fargate_node)
        && let Some(profile) = pod.labels().get(crate::fargate::PROFILE_LABEL)
    {
        lock(&shared.profiles_used).insert(profile.clone());
    }
    match action(&pod) {
        Action::Place => {
            if lock(&shared.taken).insert(uid) {
                workers.spawn(pods::place(shared.clone(), pod));
            }
        }
        Action::Start => {
            if lock(&shared.taken).insert(uid) {
                workers.spawn(pods::start(shared.clone(), pod));
            }
        }
        Action::Terminate => {
            if lock(&shared.terminating).insert(uid) {
                workers.spawn(pods::terminate(shared.clone(), pod));
            }
        }
        Action::Nothing => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn what_each_pod_asks_for() {
        let containers = json!([{"name": "c", "image": "x"}]);
        let new = pod(json!({"metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": containers}, "status": {"phase": "Pending"}}));
        assert_eq!(action(&new), Action::Place);

        let refused = pod(json!({"metadata": {"name": "p"},
            "spec": {"containers": containers},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
                "status": "False", "reason": "Unschedulable", "message": "no nodes"}]}}));
        assert_eq!(action(&refused), Action::Nothing, "never placed again");

        let bound = pod(json!({"metadata": {"name": "p"},
            "spec": {"containers": containers,
                     "nodeName": "fargate-ip-10-0-1-2.us-east-2.compute.internal"},
            "status": {"phase": "Pending"}}));
        assert_eq!(
            action(&bound),
            Action::Start,
            "bound, but its start was cut short"
        );

        let running = pod(json!({"metadata": {"name": "p"},
            "spec": {"containers": containers,
                     "nodeName": "fargate-ip-10-0-1-2.us-east-2.compute.internal"},
            "status": {"phase": "Running"}}));
        assert_eq!(action(&running), Action::Nothing);

        let elsewhere = pod(json!({"metadata": {"name": "p"},
            "spec": {"containers": containers, "nodeName": "ip-10-0-1-2.ec2.internal"},
            "status": {"phase": "Pending"}}));
        assert_eq!(action(&elsewhere), Action::Nothing, "not a node of ours");

        let deleting = pod(json!({"metadata": {"name": "p",
                "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": containers,
                     "nodeName": "fargate-ip-10-0-1-2.us-east-2.compute.internal"},
            "status": {"phase": "Running"}}));
        assert_eq!(action(&deleting), Action::Terminate);

        let deleting_unbound = pod(json!({"metadata": {"name": "p",
                "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["x/y"]},
            "spec": {"containers": containers}, "status": {"phase": "Pending"}}));
        assert_eq!(
            action(&deleting_unbound),
            Action::Nothing,
            "the API server deletes unbound pods itself; nothing to place either"
        );

        let done = pod(json!({"metadata": {"name": "p"},
            "spec": {"containers": containers,
                     "nodeName": "fargate-ip-10-0-1-2.us-east-2.compute.internal"},
            "status": {"phase": "Succeeded"}}));
        assert_eq!(action(&done), Action::Nothing);
    }
}
