//! Simulated cluster behaviour, written as ordinary kube-rs clients so they work against any API
//! server (the [`crate::kubeapi`] stand-in or a real one): what the cluster's controllers
//! would do for the objects our steps make.
//!
//! A simulator is a tokio task started inside a runtime; it stops when its handle's `stop` is
//! called or the handle is dropped (so a test can stop it to make a wait time out).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// What the Deployment simulator saw of one Deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentSeen {
    /// How many rollouts it saw: 1 for the first pod template, +1 each time the template
    /// changed (e.g. a restart annotation).
    pub rollouts: u32,
    /// The last generation it marked available (`status.observedGeneration`), 0 before.
    pub marked_generation: i64,
    /// How many times it wrote the status.
    pub status_updates: u32,
    template_hash: u64,
    scheduled_generation: i64,
}

type Seen = Arc<Mutex<BTreeMap<(String, String), DeploymentSeen>>>;

/// Marks Deployments rolled out, as the Deployment controller and kubelet would once the pods
/// run: for every Deployment (all namespaces) whose `metadata.generation` is newer than its
/// `status.observedGeneration`, after a delay, sets through the status subresource
/// `observedGeneration`, `replicas`, `updatedReplicas`, `readyReplicas`, `availableReplicas`
/// (= `spec.replicas`, 1 when absent) and the conditions `Available=True`
/// (MinimumReplicasAvailable) and `Progressing=True` (NewReplicaSetAvailable).
#[derive(Debug)]
pub struct DeploymentSim {
    task: tokio::task::JoinHandle<()>,
    seen: Seen,
}

impl DeploymentSim {
    /// The delay [`DeploymentSim::start`] uses before it marks a Deployment available.
    pub const DEFAULT_DELAY: Duration = Duration::from_millis(200);

    /// Starts the simulator with [`DeploymentSim::DEFAULT_DELAY`]. Call inside a tokio runtime.
    pub fn start(client: Client) -> DeploymentSim {
        DeploymentSim::start_with(client, DeploymentSim::DEFAULT_DELAY)
    }

    /// Starts the simulator; it marks a Deployment available `delay` after it sees a new
    /// generation. Call inside a tokio runtime.
    pub fn start_with(client: Client, delay: Duration) -> DeploymentSim {
        let seen: Seen = Arc::default();
        let task = tokio::spawn(run(client, delay, seen.clone()));
        DeploymentSim { task, seen }
    }

    /// Stops the simulator (and any status update it was about to make). Idempotent.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// False once stopped (or if it ended).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// What it saw of the Deployment `namespace/name`, if anything.
    pub fn seen(&self, namespace: &str, name: &str) -> Option<DeploymentSeen> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
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

async fn run(client: Client, delay: Duration, seen: Seen) {
    let api: Api<Deployment> = Api::all(client.clone());
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    // Status updates in flight; dropped (aborted) with this task.
    let mut updates = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            next = events.next() => match next {
                Some(Ok(deployment)) => {
                    if let Some(update) = observe(&seen, &deployment) {
                        updates.spawn(mark_available(client.clone(), delay, update, seen.clone()));
                    }
                }
                // The backoff retries; a stand-in that went away just ends the stream.
                Some(Err(_)) => {}
                None => return,
            },
            Some(_) = updates.join_next(), if !updates.is_empty() => {}
        }
    }
}

/// What to write for one Deployment.
#[derive(Debug)]
struct Update {
    namespace: String,
    name: String,
    generation: i64,
    replicas: i32,
}

/// Records what a Deployment event shows; returns the status update it needs, if any.
fn observe(seen: &Seen, deployment: &Deployment) -> Option<Update> {
    let namespace = deployment.namespace().unwrap_or_default();
    let name = deployment.name_any();
    let hash = template_hash(deployment);
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let entry = seen.entry((namespace.clone(), name.clone())).or_default();
    if entry.rollouts == 0 || entry.template_hash != hash {
        entry.rollouts += 1;
        entry.template_hash = hash;
    }
    if deployment.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let generation = deployment.metadata.generation.unwrap_or(1);
    let observed = deployment
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0);
    if generation <= observed || generation <= entry.scheduled_generation {
        return None;
    }
    entry.scheduled_generation = generation;
    Some(Update {
        namespace,
        name,
        generation,
        replicas: deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1),
    })
}

async fn mark_available(client: Client, delay: Duration, update: Update, seen: Seen) {
    let api: Api<Deployment> = Api::namespaced(client, &update.namespace);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = json!({
        "status": {
            "observedGeneration": update.generation,
            "replicas": update.replicas,
            "updatedReplicas": update.replicas,
            "readyReplicas": update.replicas,
            "availableReplicas": update.replicas,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": format!("ReplicaSet \"{}\" has successfully progressed.", update.name),
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                },
            ],
        }
    });
    for _ in 0..5 {
        tokio::time::sleep(delay).await;
        match api
            .patch_status(
                &update.name,
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await
        {
            Ok(_) => {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(entry) = seen.get_mut(&(update.namespace.clone(), update.name.clone()))
                {
                    entry.marked_generation = entry.marked_generation.max(update.generation);
                    entry.status_updates += 1;
                }
                return;
            }
            // Gone: nothing to mark.
            Err(kube::Error::Api(status)) if status.code == 404 => return,
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deployment(generation: i64, observed: Option<i64>, annotation: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(3),
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
            status: observed.map(|g| DeploymentStatus {
                observed_generation: Some(g),
                ..DeploymentStatus::default()
            }),
        }
    }

    #[test]
    fn observes_generations_and_rollouts() {
        let seen: Seen = Arc::default();
        let first = observe(&seen, &deployment(1, None, "a")).unwrap();
        assert_eq!((first.generation, first.replicas), (1, 3));
        // Seen again before the status landed: nothing more to do.
        assert!(observe(&seen, &deployment(1, None, "a")).is_none());
        assert!(observe(&seen, &deployment(1, Some(1), "a")).is_none());
        let key = ("ns".to_owned(), "web".to_owned());
        assert_eq!(seen.lock().unwrap()[&key].rollouts, 1);
        // A replica change is a new generation but not a rollout.
        assert!(observe(&seen, &deployment(2, Some(1), "a")).is_some());
        assert_eq!(seen.lock().unwrap()[&key].rollouts, 1);
        // A restart annotation on the template is.
        assert!(observe(&seen, &deployment(3, Some(2), "b")).is_some());
        assert_eq!(seen.lock().unwrap()[&key].rollouts, 2);
    }
}
