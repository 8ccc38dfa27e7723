//! CoreDNS onto Fargate. EKS makes the `kube-system/coredns` Deployment before any Fargate
//! profile exists, so its pods are made with no profile to select them: they get
//! `default-scheduler` and stay Pending on a cluster with no nodes, and a profile made later does
//! not move them (EKS places a pod only when it is made). Older clusters also carry the pod
//! template annotation `eks.amazonaws.com/compute-type: ec2`, which keeps every CoreDNS pod off
//! Fargate. So whenever a CoreDNS pod (label `k8s-app=kube-dns`) was not given to the Fargate
//! scheduler, or the annotation is there, CoreDNS is rolled out again: the annotation removed
//! and the pod template annotation `kubectl.kubernetes.io/restartedAt` set, in one merge patch;
//! the new pods match the Fargate profile's `kube-system` selector. A CoreDNS whose pods are all
//! on Fargate is left as it is.

use std::time::Duration;

use common::wait::{Poll, wait_for_kube};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::Error;

/// The annotation that pins CoreDNS to EC2.
pub const COMPUTE_TYPE: &str = "eks.amazonaws.com/compute-type";
/// The label of CoreDNS's pods.
pub const POD_SELECTOR: &str = "k8s-app=kube-dns";
/// The scheduler EKS gives to the pods a Fargate profile selects.
pub const FARGATE_SCHEDULER: &str = "fargate-scheduler";
/// How long to wait at most for CoreDNS to be available again.
pub const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// What happened to CoreDNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was rolled out again (annotation removed, restarted) and the new pods are available.
    Moved,
    /// Its pods were all on Fargate already; the Deployment is available.
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

/// True when EKS gave the pod to the Fargate scheduler (it runs on Fargate, or is starting
/// there).
pub fn on_fargate(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()) == Some(FARGATE_SCHEDULER)
}

/// Why CoreDNS must be rolled out again to reach Fargate, or `None` when it need not be.
pub fn why_roll(deployment: &Deployment, pods: &[Pod]) -> Option<String> {
    if let Some(value) = pinned(deployment) {
        return Some(format!(
            "its pod template carries the annotation {COMPUTE_TYPE}={value}"
        ));
    }
    let off: Vec<String> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && !on_fargate(p))
        .map(|p| p.name_any())
        .collect();
    (!off.is_empty()).then(|| {
        format!(
            "{} of its {} pods are not on Fargate ({}; made before a Fargate profile selected kube-system)",
            off.len(),
            pods.len(),
            off.join(", ")
        )
    })
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

/// The Pending pods and why, for the wait's progress and its timeout message.
pub fn pending_pods(pods: &[Pod]) -> String {
    let pending: Vec<String> = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running"))
        .map(|p| {
            let why = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| {
                    c.iter()
                        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                })
                .and_then(|c| c.message.clone())
                .unwrap_or_else(|| "not running yet".to_owned());
            format!("{} ({why})", p.name_any())
        })
        .collect();
    if pending.is_empty() {
        String::new()
    } else {
        format!("; Pending: {}", pending.join(", "))
    }
}

/// Rolls CoreDNS onto Fargate when it is not there, and waits until `kube-system/coredns` is
/// available.
pub async fn move_to_fargate(
    client: kube::Client,
    cluster: &str,
    timeout: Duration,
) -> Result<Outcome, Error> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), "kube-system");
    let pods: Api<Pod> = Api::namespaced(client, "kube-system");
    let get_error = |source| Error::GetCoreDns {
        cluster: cluster.to_owned(),
        source,
    };
    let list_pods = || async {
        pods.list(&ListParams::default().labels(POD_SELECTOR))
            .await
            .map(|l| l.items)
            .map_err(|source| Error::GetCoreDns {
                cluster: cluster.to_owned(),
                source,
            })
    };
    let Some(current) = api.get_opt("coredns").await.map_err(get_error)? else {
        tracing::info!(
            "cluster {cluster} has no kube-system/coredns Deployment; nothing to move onto Fargate"
        );
        return Ok(Outcome::Absent);
    };
    let outcome = match why_roll(&current, &list_pods().await?) {
        Some(why) => {
            tracing::info!(
                "rolling kube-system/coredns out again so its pods run on Fargate: {why}"
            );
            // The restart's stamp carries milliseconds (see `restart_stamp`): a roll repeated
            // within the same second must still make a new pod template.
            common::workload::restart(&api, "coredns", &[(COMPUTE_TYPE, None)])
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
    wait_for_kube::<_, Error, _, _>("kube-system/coredns to be available", bound, || async {
        let Some(d) = api.get_opt("coredns").await.map_err(get_error)? else {
            return Ok(Poll::Ready(()));
        };
        if available(&d) {
            Ok(Poll::Ready(()))
        } else {
            let s = d.status.clone().unwrap_or_default();
            Ok(Poll::Pending(format!(
                "{} of {} replicas available{}",
                s.available_replicas.unwrap_or(0),
                d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                pending_pods(&list_pods().await?)
            )))
        }
    })
    .await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    fn pod(name: &str, scheduler: &str, phase: &str, why: Option<&str>) -> Pod {
        let conditions =
            why.map(|m| json!([{"type": "PodScheduled", "status": "False", "message": m}]));
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"schedulerName": scheduler, "containers": [{"name": "coredns"}]},
            "status": {"phase": phase, "conditions": conditions}
        }))
        .unwrap()
    }

    #[test]
    fn rolls_when_pinned_or_a_pod_is_off_fargate() {
        let plain = deployment(json!({
            "metadata": {"name": "coredns"},
            "spec": {"selector": {}, "template": {}}
        }));
        let pinned_one = deployment(json!({
            "metadata": {"name": "coredns"},
            "spec": {"selector": {}, "template": {"metadata": {"annotations": {COMPUTE_TYPE: "ec2"}}}}
        }));
        let fargate = [
            pod("a", FARGATE_SCHEDULER, "Running", None),
            pod("b", FARGATE_SCHEDULER, "Pending", None),
        ];
        assert_eq!(
            why_roll(&plain, &fargate),
            None,
            "on Fargate, or starting there"
        );
        assert_eq!(why_roll(&plain, &[]), None);
        assert!(
            why_roll(&pinned_one, &fargate)
                .unwrap()
                .contains(COMPUTE_TYPE)
        );
        let stuck = [
            pod("a", FARGATE_SCHEDULER, "Running", None),
            pod(
                "old",
                "default-scheduler",
                "Pending",
                Some("no nodes available to schedule pods"),
            ),
        ];
        let why = why_roll(&plain, &stuck).unwrap();
        assert!(
            why.starts_with("1 of its 2 pods are not on Fargate (old;"),
            "{why}"
        );
        assert_eq!(
            pending_pods(&stuck),
            "; Pending: old (no nodes available to schedule pods)"
        );
        assert_eq!(pending_pods(&fargate[..1]), "");
    }
}
