//! The pods of the Deployment simulator: made, placed by [`crate::fargate`] at the moment they
//! are made, bound to a Fargate node of their own, or left Pending with the scheduler's
//! `FailedScheduling` Event; listed and deleted by owner.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::{Shared, TEMPLATE_HASH_LABEL};
use crate::fargate::{self, Placement};

pub(super) fn running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

pub(super) fn refused(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "PodScheduled" && c.status == "False")
        })
}

pub(super) fn owned_by(pod: &Pod, uid: &str) -> bool {
    pod.owner_references().iter().any(|o| o.uid == uid)
}

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The live pods of a Deployment (by its selector and owner uid), not being deleted.
pub(super) async fn owned_pods(
    pods: &Api<Pod>,
    selector: &str,
    uid: &str,
) -> Result<Vec<Pod>, kube::Error> {
    Ok(pods
        .list(&ListParams::default().labels(selector))
        .await?
        .items
        .into_iter()
        .filter(|p| owned_by(p, uid) && p.metadata.deletion_timestamp.is_none())
        .collect())
}

pub(super) async fn delete_pod(pods: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    match pods.delete(&pod.name_any(), &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The pods of a deleted Deployment go with it.
pub(super) async fn collect_garbage(shared: Arc<Shared>, deployment: Deployment) {
    let namespace = deployment.namespace().unwrap_or_default();
    let Some(uid) = deployment.uid() else {
        return;
    };
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
    if let Ok(list) = pods.list(&ListParams::default()).await {
        for pod in list.items.iter().filter(|p| owned_by(p, &uid)) {
            let _ = delete_pod(&pods, pod).await;
        }
    }
}

/// How many Fargate nodes the cluster has: one per running Fargate pod.
pub(super) async fn fargate_nodes(shared: &Shared) -> Result<usize, kube::Error> {
    let all: Api<Pod> = Api::all(shared.client.clone());
    Ok(all
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|p| {
            running(p)
                && p.spec.as_ref().and_then(|s| s.scheduler_name.as_deref())
                    == Some(fargate::FARGATE_SCHEDULER)
        })
        .count())
}

pub(super) async fn make_pod(
    shared: &Shared,
    pods: &Api<Pod>,
    deployment: &Deployment,
    uid: &str,
    hash: &str,
    profiles: &[fargate::Profile],
    nodes: usize,
) -> Result<(), kube::Error> {
    let namespace = deployment.namespace().unwrap_or_default();
    let name = deployment.name_any();
    let template = deployment
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(TEMPLATE_HASH_LABEL.to_owned(), hash.to_owned());
    let annotations = meta.annotations.unwrap_or_default();
    let spec = template.spec.unwrap_or_default();
    let placement = fargate::place(&namespace, &labels, &annotations, &spec, profiles);
    let scheduler = match &placement {
        Placement::Fargate { profile } | Placement::Refused { profile, .. } => {
            labels.insert(fargate::PROFILE_LABEL.to_owned(), profile.clone());
            fargate::FARGATE_SCHEDULER
        }
        Placement::Unselected => fargate::DEFAULT_SCHEDULER,
    };
    let mut spec = serde_json::to_value(&spec).unwrap_or_else(|_| json!({}));
    spec["schedulerName"] = json!(scheduler);
    let body = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{name}-{hash}-"),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid,
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    });
    let pod: Pod = serde_json::from_value(body).map_err(kube::Error::SerdeError)?;
    let made = pods.create(&Default::default(), &pod).await?;
    let message = match placement {
        Placement::Fargate { .. } => {
            let status = json!({"status": {"phase": "Pending"}});
            pods.patch_status(
                &made.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await?;
            return Ok(());
        }
        Placement::Refused { message, .. } => message,
        Placement::Unselected => fargate::unschedulable_message(nodes),
    };
    let at = now();
    let status = json!({"status": {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": message, "lastTransitionTime": at,
    }]}});
    pods.patch_status(
        &made.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await?;
    failed_scheduling(shared, &made, scheduler, &message).await
}

/// The `FailedScheduling` Event the scheduler records for a pod it cannot place.
pub(super) async fn failed_scheduling(
    shared: &Shared,
    pod: &Pod,
    scheduler: &str,
    message: &str,
) -> Result<(), kube::Error> {
    use k8s_openapi::api::core::v1::Event;
    let namespace = pod.namespace().unwrap_or_default();
    let at = now();
    let serial = shared.next_address.fetch_add(1, Ordering::Relaxed);
    let nanos = chrono::Utc::now().timestamp_subsec_nanos();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{}.{:08x}{:08x}", pod.name_any(), nanos, serial),
            "namespace": namespace,
        },
        "involvedObject": {
            "apiVersion": "v1", "kind": "Pod", "namespace": namespace,
            "name": pod.name_any(), "uid": pod.uid(),
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
    });
    let event: Event = serde_json::from_value(event).map_err(kube::Error::SerdeError)?;
    let events: Api<Event> = Api::namespaced(shared.client.clone(), &namespace);
    events.create(&Default::default(), &event).await?;
    Ok(())
}

/// Binds an accepted pod to a Fargate node of its own and marks it Running and Ready.
pub(super) async fn bind(shared: &Shared, pods: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    let n = shared.next_address.fetch_add(1, Ordering::Relaxed);
    let ip = format!("10.0.{}.{}", 1 + (n / 250) % 250, 2 + n % 250);
    let node = format!(
        "fargate-ip-{}.{}.compute.internal",
        ip.replace('.', "-"),
        shared.region
    );
    let name = pod.name_any();
    pods.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"nodeName": node}})),
    )
    .await?;
    let at = now();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": at});
    let containers: Vec<Value> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": "",
                "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": at}},
            })
        })
        .collect();
    let status = json!({"status": {
        "phase": "Running",
        "hostIP": ip, "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": at,
        "conditions": [condition("PodScheduled"), condition("Initialized"),
                       condition("ContainersReady"), condition("Ready")],
        "containerStatuses": containers,
    }});
    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}
