//! Deployments: restarting one as `kubectl rollout restart` does, and whether its rollout is
//! done. The one place for both, for `eks-cluster` (CoreDNS, workloads moved between Fargate
//! profiles), `irsa` (`--restart`) and `eks-deploy` (its waits).

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Map, Value, json};

/// The pod template annotation a restart sets (as `kubectl rollout restart` does).
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The value of [`RESTARTED_AT`] now: RFC 3339 in UTC with milliseconds. kubectl writes
/// seconds; milliseconds make a restart repeated within the same second (a re-run right after a
/// run stopped mid-way) still a new pod template, else the Deployment would keep waiting for the
/// pods of the template it has.
pub fn restart_stamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The merge patch of a restart at `stamp`: [`RESTARTED_AT`] on the pod template, with the
/// other pod template annotation changes of `also` in the same patch (`None` removes one).
pub fn restart_patch(stamp: &str, also: &[(&str, Option<&str>)]) -> Value {
    let mut annotations = Map::new();
    for (key, value) in also {
        annotations.insert((*key).to_owned(), json!(value));
    }
    annotations.insert(RESTARTED_AT.to_owned(), json!(stamp));
    json!({ "spec": { "template": { "metadata": { "annotations": annotations } } } })
}

/// Restarts Deployment `name` as `kubectl rollout restart` does (a new [`RESTARTED_AT`] on its
/// pod template, so it rolls its pods), with the pod template annotation changes of `also` in
/// the same merge patch.
pub async fn restart(
    api: &Api<Deployment>,
    name: &str,
    also: &[(&str, Option<&str>)],
) -> Result<Deployment, kube::Error> {
    let patch = restart_patch(&restart_stamp(), also);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// Where a Deployment's rollout stands, in the order `kubectl rollout status` looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// The controller has not seen the current generation (its pod template) yet.
    NotObserved,
    /// Fewer replicas than wanted run the current pod template.
    Updating { updated: i32, wanted: i32 },
    /// Pods beyond the wanted count are left (of an older pod template, or not yet scaled down).
    OldPodsLeft { replicas: i32, wanted: i32 },
    /// Not every wanted replica is available.
    Unavailable { available: i32, wanted: i32 },
    /// Rolled out: observed, every replica updated and available, nothing else left.
    Done,
}

impl Rollout {
    /// True when the rollout is done.
    pub fn is_done(self) -> bool {
        self == Rollout::Done
    }
}

/// Where `deployment`'s rollout stands, from its status.
pub fn rollout(deployment: &Deployment) -> Rollout {
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < deployment.metadata.generation.unwrap_or(0) {
        return Rollout::NotObserved;
    }
    let updated = status.updated_replicas.unwrap_or(0);
    if updated < wanted {
        return Rollout::Updating { updated, wanted };
    }
    let replicas = status.replicas.unwrap_or(0);
    if replicas != wanted || updated != wanted {
        return Rollout::OldPodsLeft { replicas, wanted };
    }
    // The Available condition says no more: the controller sets it from these same counts
    // (available >= wanted - maxUnavailable) in the same status write.
    let available = status.available_replicas.unwrap_or(0);
    if available < wanted {
        return Rollout::Unavailable { available, wanted };
    }
    Rollout::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(generation: i64, status: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": generation},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}, "template": {}},
            "status": status
        }))
        .unwrap()
    }

    fn status(observed: i64, replicas: i32, updated: i32, available: i32) -> Value {
        json!({
            "observedGeneration": observed, "replicas": replicas,
            "updatedReplicas": updated, "availableReplicas": available
        })
    }

    #[test]
    fn a_new_generation_not_observed_is_not_done() {
        assert_eq!(
            rollout(&deployment(4, status(3, 2, 2, 2))),
            Rollout::NotObserved
        );
        let no_status: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": 1},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap();
        assert_eq!(rollout(&no_status), Rollout::NotObserved);
    }

    #[test]
    fn fewer_updated_than_wanted_is_updating() {
        assert_eq!(
            rollout(&deployment(3, status(3, 3, 1, 2))),
            Rollout::Updating {
                updated: 1,
                wanted: 2
            }
        );
    }

    #[test]
    fn a_pod_of_the_old_template_left_is_not_done() {
        assert_eq!(
            rollout(&deployment(3, status(3, 3, 2, 2))),
            Rollout::OldPodsLeft {
                replicas: 3,
                wanted: 2
            }
        );
    }

    #[test]
    fn unavailable_replicas_are_not_done() {
        assert_eq!(
            rollout(&deployment(3, status(3, 2, 2, 1))),
            Rollout::Unavailable {
                available: 1,
                wanted: 2
            }
        );
    }

    #[test]
    fn observed_updated_and_available_is_done() {
        assert!(rollout(&deployment(3, status(3, 2, 2, 2))).is_done());
        assert!(rollout(&deployment(3, status(5, 2, 2, 2))).is_done());
    }

    #[test]
    fn the_restart_patch_sets_the_stamp_with_the_other_changes() {
        let p = restart_patch(
            "2026-01-02T03:04:05.678Z",
            &[("eks.amazonaws.com/compute-type", None)],
        );
        assert_eq!(
            p,
            json!({"spec": {"template": {"metadata": {"annotations": {
                "eks.amazonaws.com/compute-type": null,
                RESTARTED_AT: "2026-01-02T03:04:05.678Z"
            }}}}})
        );
        let stamp = restart_stamp();
        assert!(
            chrono::DateTime::parse_from_rfc3339(&stamp).is_ok() && stamp.ends_with('Z'),
            "{stamp}"
        );
        assert_eq!(
            stamp.split('.').nth(1).map(str::len),
            Some(4),
            "milliseconds: {stamp}"
        );
    }
}
