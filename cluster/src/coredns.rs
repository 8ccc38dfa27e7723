//! CoreDNS onto Fargate. EKS makes the `kube-system/coredns` Deployment with the pod template
//! annotation `eks.amazonaws.com/compute-type: ec2`, which keeps its pods off Fargate (they stay
//! Pending on a cluster with no nodes). Removing it rolls the Deployment; its new pods match the
//! Fargate profile's `kube-system` selector.

use std::time::Duration;

use common::wait::{Poll, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::Error;

/// The annotation that pins CoreDNS to EC2.
pub const COMPUTE_TYPE: &str = "eks.amazonaws.com/compute-type";
/// How long to wait at most for CoreDNS to be available again.
pub const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// What happened to CoreDNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The annotation was removed and the new pods are available.
    Moved,
    /// No annotation to remove; the Deployment is available.
    AlreadyOnFargate,
    /// There is no coredns Deployment.
    Absent,
}

/// The compute-type annotation of the pod template, if any.
pub fn pinned(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(COMPUTE_TYPE)
        .cloned()
}

/// True when the Deployment's current generation is rolled out and Available.
pub fn available(deployment: &Deployment) -> bool {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let Some(status) = &deployment.status else {
        return false;
    };
    status.observed_generation.unwrap_or(0) >= generation
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Available" && c.status == "True")
}

/// Removes the annotation (when present) and waits until `kube-system/coredns` is available.
pub async fn move_to_fargate(
    client: kube::Client,
    cluster: &str,
    timeout: Duration,
) -> Result<Outcome, Error> {
    let api: Api<Deployment> = Api::namespaced(client, "kube-system");
    let get_error = |source| Error::GetCoreDns {
        cluster: cluster.to_owned(),
        source,
    };
    let Some(current) = api.get_opt("coredns").await.map_err(get_error)? else {
        tracing::info!(
            "cluster {cluster} has no kube-system/coredns Deployment; nothing to move onto Fargate"
        );
        return Ok(Outcome::Absent);
    };
    let outcome = match pinned(&current) {
        Some(value) => {
            tracing::info!(
                "removing the pod template annotation {COMPUTE_TYPE}={value} from kube-system/coredns so its pods run on Fargate"
            );
            let patch = json!({ "spec": { "template": { "metadata": { "annotations": { COMPUTE_TYPE: null } } } } });
            api.patch("coredns", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|source| Error::PatchCoreDns {
                    cluster: cluster.to_owned(),
                    source,
                })?;
            Outcome::Moved
        }
        None => Outcome::AlreadyOnFargate,
    };
    let bound = timeout.min(MAX_WAIT);
    wait_for::<_, Error, _, _>("kube-system/coredns to be available", bound, || async {
        let Some(d) = api.get_opt("coredns").await.map_err(get_error)? else {
            return Ok(Poll::Ready(()));
        };
        if available(&d) {
            Ok(Poll::Ready(()))
        } else {
            let s = d.status.clone().unwrap_or_default();
            Ok(Poll::Pending(format!(
                "{} of {} replicas available",
                s.available_replicas.unwrap_or(0),
                d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            )))
        }
    })
    .await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(value: serde_json::Value) -> Deployment {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn pinned_and_available() {
        let d = deployment(json!({
            "metadata": {"name": "coredns", "generation": 2},
            "spec": {"selector": {}, "template": {"metadata": {"annotations": {COMPUTE_TYPE: "ec2"}}}},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Available", "status": "True"}]}
        }));
        assert_eq!(pinned(&d).as_deref(), Some("ec2"));
        assert!(!available(&d), "an old generation does not count");
        let d = deployment(json!({
            "metadata": {"name": "coredns", "generation": 2},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "conditions": [{"type": "Available", "status": "True"}]}
        }));
        assert_eq!(pinned(&d), None);
        assert!(available(&d));
    }
}
