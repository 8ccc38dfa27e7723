//! Simulated cluster behaviour, written as ordinary kube-rs clients so they work against any API
//! server (the [`crate::kubeapi`] stand-in or a real one): what the cluster's controllers
//! would do for the objects our steps make.
//!
//! A simulator is a tokio task started inside a runtime; it stops when its handle's `stop` is
//! called or the handle is dropped (so a test can stop it to make a wait time out).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::fargate::{self, Profiles};

mod pods;
use pods::{
    bind, collect_garbage, delete_pod, fargate_nodes, make_pod, now, owned_pods, refused, running,
};

/// The label the Deployment controller puts on each pod: its pod template's hash.
pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// What the Deployment simulator saw of one Deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentSeen {
    /// How many rollouts it saw: 1 for the first pod template, +1 each time the template
    /// changed (e.g. a restart annotation).
    pub rollouts: u32,
    /// The last generation it marked available (`status.observedGeneration` with
    /// `Available=True`), 0 before.
    pub marked_generation: i64,
    /// How many times it wrote the status.
    pub status_updates: u32,
    template_hash: u64,
}

type Key = (String, String);
type Seen = Arc<Mutex<BTreeMap<Key, DeploymentSeen>>>;

/// Per Deployment: a worker runs; another pass is wanted after it.
#[derive(Debug, Default, Clone, Copy)]
struct Queued {
    running: bool,
    dirty: bool,
}

struct Shared {
    client: Client,
    delay: Duration,
    profiles: Profiles,
    region: String,
    seen: Seen,
    queue: Mutex<BTreeMap<Key, Queued>>,
    next_address: AtomicU32,
}

/// The Deployment controller, the ReplicaSet controller, EKS's Fargate admission and the
/// Fargate scheduler together, for every Deployment (all namespaces):
///
/// - When a pod template rolls out, it makes one Pod per replica (named
///   `<deployment>-<pod-template-hash>-<random>`, owned by the Deployment, with the template's
///   labels and `pod-template-hash`). Each pod is placed at the moment it is made, by the rules
///   of [`crate::fargate`] against the profiles its [`Profiles`] source gives then: on Fargate
///   (`fargate-scheduler`; after a delay bound to a node `fargate-ip-10-0-X-Y.<region>.compute.internal`,
///   phase Running, Ready), refused by the Fargate scheduler, or left to `default-scheduler` with
///   no node. A pod that cannot run stays Pending with `PodScheduled=False` and a `FailedScheduling`
///   Event carrying the message; it is never placed again (a profile made later does not help).
/// - A scale makes or deletes pods of the current template. Old pods that do not run go at once;
///   running ones once every pod of the new template runs.
/// - The status follows the pods: `replicas`, `updatedReplicas`, `readyReplicas`,
///   `availableReplicas`, `unavailableReplicas`, `observedGeneration`; `Available=True` only
///   when at least `replicas - maxUnavailable` pods run (25% rounded down by default), and
///   `Progressing` with reason `NewReplicaSetAvailable` once every pod of the new template runs.
///   A status that would not change is not written.
/// - A deleted Deployment's pods are deleted (the garbage collector).
#[derive(Debug)]
pub struct DeploymentSim {
    task: tokio::task::JoinHandle<()>,
    seen: Seen,
}

impl DeploymentSim {
    /// The delay [`DeploymentSim::start`] uses before a Fargate pod runs.
    pub const DEFAULT_DELAY: Duration = Duration::from_millis(200);

    /// Starts the simulator with [`DeploymentSim::DEFAULT_DELAY`], placing pods by the Fargate
    /// profiles `profiles` gives. Call inside a tokio runtime.
    pub fn start(client: Client, profiles: Profiles) -> DeploymentSim {
        DeploymentSim::start_with(client, DeploymentSim::DEFAULT_DELAY, profiles)
    }

    /// Starts the simulator; a Fargate pod runs `delay` after it was made. Call inside a tokio
    /// runtime.
    pub fn start_with(client: Client, delay: Duration, profiles: Profiles) -> DeploymentSim {
        let seen: Seen = Arc::default();
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
            seen: seen.clone(),
            queue: Mutex::default(),
            next_address: AtomicU32::new(0),
        });
        let task = tokio::spawn(run(shared));
        DeploymentSim { task, seen }
    }

    /// Stops the simulator (and any change it was about to make). Idempotent.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// False once stopped (or if it ended).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// What it saw of the Deployment `namespace/name`, if anything.
    pub fn seen(&self, namespace: &str, name: &str) -> Option<DeploymentSeen> {
        lock(&self.seen)
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// How many rollouts (distinct consecutive pod templates) it saw of `namespace/name`; 0
    /// when it never saw it.
    pub fn rollouts(&self, namespace: &str, name: &str) -> u32 {
        self.seen(namespace, name).map_or(0, |s| s.rollouts)
    }
}

impl Drop for DeploymentSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn template_hash(deployment: &Deployment) -> u64 {
    let template = deployment
        .spec
        .as_ref()
        .map(|s| serde_json::to_string(&s.template).unwrap_or_default())
        .unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    template.hash(&mut hasher);
    hasher.finish()
}

/// The `pod-template-hash` label value: ten characters of the alphabet Kubernetes uses.
fn hash_label(hash: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = hash;
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Records a rollout when the template changed; true when the Deployment needs a pass.
fn observe(seen: &Seen, deployment: &Deployment) -> bool {
    let key = (
        deployment.namespace().unwrap_or_default(),
        deployment.name_any(),
    );
    let hash = template_hash(deployment);
    let mut seen = lock(seen);
    let entry = seen.entry(key).or_default();
    if entry.rollouts == 0 || entry.template_hash != hash {
        entry.rollouts += 1;
        entry.template_hash = hash;
    }
    deployment.metadata.deletion_timestamp.is_none()
}

async fn run(shared: Arc<Shared>) {
    let api: Api<Deployment> = Api::all(shared.client.clone());
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // Workers in flight; dropped (aborted) with this task.
    let mut workers = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            next = events.next() => match next {
                Some(Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d))) => {
                    if observe(&shared.seen, &d) {
                        let key = (d.namespace().unwrap_or_default(), d.name_any());
                        if enqueue(&shared, &key) {
                            workers.spawn(work(shared.clone(), key));
                        }
                    }
                }
                Some(Ok(watcher::Event::Delete(d))) => {
                    workers.spawn(collect_garbage(shared.clone(), d));
                }
                Some(Ok(_)) => {}
                // The backoff retries; a stand-in that went away just ends the stream.
                Some(Err(_)) => {}
                None => return,
            },
            Some(_) = workers.join_next(), if !workers.is_empty() => {}
        }
    }
}

/// Marks `key` as wanting a pass; true when no worker runs for it (start one).
fn enqueue(shared: &Shared, key: &Key) -> bool {
    let mut queue = lock(&shared.queue);
    let entry = queue.entry(key.clone()).or_default();
    entry.dirty = true;
    if entry.running {
        false
    } else {
        entry.running = true;
        true
    }
}

/// Passes over one Deployment until nothing more was asked for meanwhile.
async fn work(shared: Arc<Shared>, key: Key) {
    let mut failures = 0;
    loop {
        {
            let mut queue = lock(&shared.queue);
            let entry = queue.entry(key.clone()).or_default();
            if !entry.dirty {
                entry.running = false;
                return;
            }
            entry.dirty = false;
        }
        if reconcile(&shared, &key).await.is_err() {
            // A passing error (the stand-in busy, a conflict): try again, a few times.
            failures += 1;
            if failures < 5 {
                lock(&shared.queue).entry(key.clone()).or_default().dirty = true;
                tokio::time::sleep(shared.delay).await;
            }
        }
    }
}

/// `maxUnavailable` of a rolling update (25% of the replicas rounded down by default; 0 for
/// `Recreate`).
fn max_unavailable(deployment: &Deployment, replicas: i32) -> i32 {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let strategy = deployment.spec.as_ref().and_then(|s| s.strategy.as_ref());
    if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        return 0;
    }
    let value = strategy
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(IntOrString::String("25%".into()));
    match value {
        IntOrString::Int(n) => n.clamp(0, replicas),
        IntOrString::String(text) => {
            let percent: i32 = text.trim_end_matches('%').parse().unwrap_or(25);
            (replicas * percent / 100).clamp(0, replicas)
        }
    }
}

async fn reconcile(shared: &Shared, key: &Key) -> Result<(), kube::Error> {
    let (namespace, name) = key;
    let deployments: Api<Deployment> = Api::namespaced(shared.client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), namespace);
    let Some(deployment) = deployments.get_opt(name).await? else {
        return Ok(());
    };
    if deployment.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let Some(uid) = deployment.uid() else {
        return Ok(());
    };
    let spec = deployment.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let selector = spec
        .selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let hash = hash_label(template_hash(&deployment));
    let is_current = |p: &Pod| p.labels().get(TEMPLATE_HASH_LABEL) == Some(&hash);

    let live = owned_pods(&pods, &selector, &uid).await?;
    let current: Vec<&Pod> = live.iter().filter(|p| is_current(p)).collect();
    let wanted = usize::try_from(replicas).unwrap_or(0);
    if current.len() < wanted {
        let Ok(profiles) = shared.profiles.current().await else {
            // The profiles cannot be read now: make nothing; the next pass tries again.
            return Err(kube::Error::Service("Fargate profiles unreadable".into()));
        };
        let nodes = fargate_nodes(shared).await?;
        for _ in current.len()..wanted {
            make_pod(shared, &pods, &deployment, &uid, &hash, &profiles, nodes).await?;
        }
    } else if current.len() > wanted {
        // Scale down: pods that do not run go first.
        let mut extra: Vec<&&Pod> = current.iter().collect();
        extra.sort_by_key(|p| running(p));
        for pod in extra.into_iter().take(current.len() - wanted) {
            delete_pod(&pods, pod).await?;
        }
    }
    for old in live.iter().filter(|p| !is_current(p) && !running(p)) {
        delete_pod(&pods, old).await?;
    }

    tokio::time::sleep(shared.delay).await;

    // The Fargate scheduler binds what it accepted; each pod gets a node of its own.
    for pod in owned_pods(&pods, &selector, &uid).await? {
        let scheduler = pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref());
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some();
        if is_current(&pod)
            && scheduler == Some(fargate::FARGATE_SCHEDULER)
            && !bound
            && !refused(&pod)
        {
            bind(shared, &pods, &pod).await?;
        }
    }

    let live = owned_pods(&pods, &selector, &uid).await?;
    let current_running = live.iter().filter(|p| is_current(p) && running(p)).count();
    if current_running >= wanted {
        for old in live.iter().filter(|p| !is_current(p)) {
            delete_pod(&pods, old).await?;
        }
    }
    let live = owned_pods(&pods, &selector, &uid).await?;
    write_status(shared, &deployments, &deployment, &live, &hash, replicas).await
}

/// The fields of a Deployment status that matter, to tell whether a write would change it.
fn essence(status: &Value) -> Value {
    let conditions: Vec<Value> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!([c["type"], c["status"], c["reason"]]))
        .collect();
    json!([
        status["observedGeneration"],
        status["replicas"],
        status["updatedReplicas"],
        status["readyReplicas"],
        status["availableReplicas"],
        status["unavailableReplicas"],
        conditions,
    ])
}

async fn write_status(
    shared: &Shared,
    deployments: &Api<Deployment>,
    deployment: &Deployment,
    live: &[Pod],
    hash: &str,
    replicas: i32,
) -> Result<(), kube::Error> {
    let name = deployment.name_any();
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(live.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let is_current =
        |p: &Pod| p.labels().get(TEMPLATE_HASH_LABEL).map(String::as_str) == Some(hash);
    let total = count(&|_| true);
    let updated = count(&is_current);
    let available = count(&running);
    let current_running = count(&|p| is_current(p) && running(p));
    let minimum = replicas - max_unavailable(deployment, replicas);
    let generation = deployment.metadata.generation.unwrap_or(1);
    let previous = serde_json::to_value(&deployment.status).unwrap_or(Value::Null);
    let at = now();
    let since = |kind: &str, status: &str| {
        previous["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == kind && c["status"] == status)
            .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_owned))
            .unwrap_or_else(|| at.clone())
    };
    let replica_set = format!("{name}-{hash}");
    let (avail_status, avail_reason, avail_message) = if available >= minimum {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let (progress_reason, progress_message) = if current_running >= replicas && total == updated {
        (
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{replica_set}\" has successfully progressed."),
        )
    } else {
        (
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{replica_set}\" is progressing."),
        )
    };
    let status = json!({
        "observedGeneration": generation,
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": available,
        "availableReplicas": available,
        "unavailableReplicas": (replicas.max(total) - available).max(0),
        "conditions": [
            {
                "type": "Available", "status": avail_status, "reason": avail_reason,
                "message": avail_message, "lastUpdateTime": at,
                "lastTransitionTime": since("Available", avail_status),
            },
            {
                "type": "Progressing", "status": "True", "reason": progress_reason,
                "message": progress_message, "lastUpdateTime": at,
                "lastTransitionTime": since("Progressing", "True"),
            },
        ],
    });
    if essence(&status) == essence(&previous) {
        return Ok(());
    }
    match deployments
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
    {
        Ok(_) => {}
        // Gone meanwhile: nothing to mark.
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    }
    let mut seen = lock(&shared.seen);
    if let Some(entry) = seen.get_mut(&(deployment.namespace().unwrap_or_default(), name)) {
        entry.status_updates += 1;
        if avail_status == "True" {
            entry.marked_generation = entry.marked_generation.max(generation);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentSpec;
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deployment(replicas: i32, annotation: &str, strategy: Value) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: serde_json::from_value(strategy).unwrap(),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        annotations: Some(
                            [("restartedAt".to_owned(), annotation.to_owned())].into(),
                        ),
                        ..ObjectMeta::default()
                    }),
                    spec: None,
                },
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn observes_rollouts() {
        let seen: Seen = Arc::default();
        assert!(observe(&seen, &deployment(3, "a", Value::Null)));
        assert!(observe(&seen, &deployment(3, "a", Value::Null)));
        let key = ("ns".to_owned(), "web".to_owned());
        assert_eq!(lock(&seen)[&key].rollouts, 1);
        // A replica change is not a rollout; a restart annotation on the template is.
        observe(&seen, &deployment(5, "a", Value::Null));
        assert_eq!(lock(&seen)[&key].rollouts, 1);
        observe(&seen, &deployment(5, "b", Value::Null));
        assert_eq!(lock(&seen)[&key].rollouts, 2);
    }

    #[test]
    fn hash_labels_are_stable_and_follow_the_template() {
        let a = hash_label(template_hash(&deployment(1, "a", Value::Null)));
        assert_eq!(a.len(), 10);
        assert_eq!(
            a,
            hash_label(template_hash(&deployment(4, "a", Value::Null)))
        );
        assert_ne!(
            a,
            hash_label(template_hash(&deployment(1, "b", Value::Null)))
        );
    }

    #[test]
    fn max_unavailable_as_the_deployment_controller_counts_it() {
        assert_eq!(max_unavailable(&deployment(4, "a", Value::Null), 4), 1);
        assert_eq!(max_unavailable(&deployment(2, "a", Value::Null), 2), 0);
        assert_eq!(max_unavailable(&deployment(1, "a", Value::Null), 1), 0);
        let fixed = json!({"rollingUpdate": {"maxUnavailable": 2}});
        assert_eq!(max_unavailable(&deployment(4, "a", fixed), 4), 2);
        let half = json!({"rollingUpdate": {"maxUnavailable": "50%"}});
        assert_eq!(max_unavailable(&deployment(5, "a", half), 5), 2);
        let recreate = json!({"type": "Recreate"});
        assert_eq!(max_unavailable(&deployment(4, "a", recreate), 4), 0);
    }
}
