//! Talking to Kubernetes: server-side apply of any kind through discovery, the readiness checks
//! the apply order waits on, and deletion.

use common::cluster::kube_not_found;
use common::workload::Rollout;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::core::GroupVersion;
use kube::discovery::{ApiCapabilities, ApiGroup, Scope};
use kube::{Api, Client};
use serde_json::json;

use crate::Error;
use crate::manifests::Doc;

/// Our server-side apply field manager.
pub const FIELD_MANAGER: &str = "eks-fargate-alb";

fn kube_error(action: &'static str, target: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube {
        action,
        target,
        source: Box::new(source),
    }
}

/// The API of a document's kind, found through the discovery of its own group and version only
/// (`/api/v1`, `/apis/{group}/{version}`), kept per group-version and asked again when the kind
/// is missing from it (as after its CRD was applied). So a group that is not served right now
/// (an aggregated API whose service is down answers 503, as metrics.k8s.io does while
/// metrics-server is down) stops only the documents of that group, never the others: a whole
/// discovery (`kube::Discovery::run`) fails as soon as one group fails.
pub struct Resolver {
    client: Client,
    /// Each group-version discovered so far, by `apiVersion`.
    groups: std::collections::HashMap<String, ApiGroup>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("discovered", &self.groups.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The kind `gvk` in a discovered group-version.
fn find_kind(group: &ApiGroup, gvk: &GroupVersionKind) -> Option<(ApiResource, ApiCapabilities)> {
    group
        .versioned_resources(&gvk.version)
        .into_iter()
        .find(|(resource, _)| resource.kind == gvk.kind)
}

impl Resolver {
    /// Asks the API server its version, so an unreachable or refusing server fails here, before
    /// anything else; the group-versions are discovered when a document first needs one.
    pub async fn new(client: Client) -> Result<Resolver, Error> {
        client
            .apiserver_version()
            .await
            .map_err(kube_error("reach the API server of", "the cluster".into()))?;
        Ok(Resolver {
            client,
            groups: std::collections::HashMap::new(),
        })
    }

    pub async fn api(&mut self, doc: &Doc) -> Result<Api<DynamicObject>, Error> {
        let (group, version) = doc.group_version();
        let gvk = GroupVersionKind::gvk(group, version, &doc.kind);
        let unknown = || Error::UnknownKind {
            kind: format!("{}/{}", doc.api_version, doc.kind),
            file: doc.file.clone(),
        };
        let known = self
            .groups
            .get(&doc.api_version)
            .and_then(|g| find_kind(g, &gvk));
        let (resource, capabilities) = match known {
            Some(found) => found,
            None => {
                let gv = GroupVersion::gv(group, version);
                let discovered = match kube::discovery::pinned_group(&self.client, &gv).await {
                    Ok(discovered) => discovered,
                    // The group-version is not served (its CRD is not there, or not yet).
                    Err(e) if kube_not_found(&e) => return Err(unknown()),
                    Err(e) => {
                        return Err(kube_error(
                            "discover the API group-version",
                            doc.api_version.clone(),
                        )(e));
                    }
                };
                let found = find_kind(&discovered, &gvk);
                self.groups.insert(doc.api_version.clone(), discovered);
                found.ok_or_else(unknown)?
            }
        };
        Ok(match (&capabilities.scope, &doc.namespace) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            (Scope::Namespaced, None) => {
                Api::default_namespaced_with(self.client.clone(), &resource)
            }
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &resource),
        })
    }
}

/// Applies one document without `force`, or with it to take over the fields another field
/// manager owns (`--adopt`); its resourceVersion after.
pub async fn apply(
    resolver: &mut Resolver,
    doc: &Doc,
    force: bool,
) -> Result<Option<String>, Error> {
    let api = resolver.api(doc).await?;
    let params = if force {
        PatchParams::apply(FIELD_MANAGER).force()
    } else {
        PatchParams::apply(FIELD_MANAGER)
    };
    let applied = api
        .patch(&doc.name, &params, &Patch::Apply(&doc.value))
        .await
        .map_err(kube_error("apply", doc.label()))?;
    Ok(applied.metadata.resource_version)
}

/// The API server's 409 `Conflict` of an apply: another field manager owns a field it would
/// change (the message names the managers and fields).
fn apply_conflict(error: &kube::Error) -> Option<String> {
    match error {
        kube::Error::Api(status) if status.code == 409 && status.reason == "Conflict" => {
            Some(status.message.clone())
        }
        _ => None,
    }
}

/// A server-side apply dry run without `force` (nothing changes): the server's conflict
/// message when another field manager owns a field this document would change.
pub async fn conflict(resolver: &mut Resolver, doc: &Doc) -> Result<Option<String>, Error> {
    let api = resolver.api(doc).await?;
    match api
        .patch(
            &doc.name,
            &PatchParams::apply(FIELD_MANAGER).dry_run(),
            &Patch::Apply(&doc.value),
        )
        .await
    {
        Ok(_) => Ok(None),
        Err(e) => match apply_conflict(&e) {
            Some(message) => Ok(Some(message)),
            None => Err(kube_error(
                "check (server-side dry run) the apply of",
                doc.label(),
            )(e)),
        },
    }
}

/// `get_opt`, with every 404 as "not there": the real API server answers a bare `404 page not
/// found` (no Status, so not kube's `NotFound`) for a kind it no longer serves, as once its CRD
/// is deleted.
pub async fn get_live(
    api: &Api<DynamicObject>,
    name: &str,
) -> Result<Option<DynamicObject>, kube::Error> {
    match api.get_opt(name).await {
        Err(e) if kube_not_found(&e) => Ok(None),
        other => other,
    }
}

/// The live object, if it exists (`None` also while its kind is not served, as before its CRD
/// is applied).
pub async fn live(resolver: &mut Resolver, doc: &Doc) -> Result<Option<DynamicObject>, Error> {
    let api = match resolver.api(doc).await {
        Ok(api) => api,
        Err(Error::UnknownKind { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    get_live(&api, &doc.name)
        .await
        .map_err(kube_error("read", doc.label()))
}

/// The resourceVersion of the live object, if it exists.
pub async fn live_version(resolver: &mut Resolver, doc: &Doc) -> Result<Option<String>, Error> {
    let api = resolver.api(doc).await?;
    Ok(get_live(&api, &doc.name)
        .await
        .map_err(kube_error("read", doc.label()))?
        .and_then(|o| o.metadata.resource_version))
}

/// Deletes one object; false when it was not there.
pub async fn delete(api: &Api<DynamicObject>, doc: &Doc) -> Result<bool, Error> {
    match api.delete(&doc.name, &DeleteParams::foreground()).await {
        Ok(_) => Ok(true),
        Err(e) if kube_not_found(&e) => Ok(false),
        Err(e) => Err(kube_error("delete", doc.label())(e)),
    }
}

/// True once the object is gone (also when its kind is no longer served).
pub async fn is_gone(api: &Api<DynamicObject>, doc: &Doc) -> Result<bool, Error> {
    Ok(get_live(api, &doc.name)
        .await
        .map_err(kube_error("read", doc.label()))?
        .is_none())
}

/// The finalizers still holding an object that is being deleted.
pub async fn finalizers(api: &Api<DynamicObject>, doc: &Doc) -> Result<Vec<String>, Error> {
    Ok(get_live(api, &doc.name)
        .await
        .map_err(kube_error("read", doc.label()))?
        .and_then(|o| o.metadata.finalizers)
        .unwrap_or_default())
}

/// Removes every finalizer of an object (`--force`).
pub async fn drop_finalizers(api: &Api<DynamicObject>, doc: &Doc) -> Result<(), Error> {
    match api
        .patch(
            &doc.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if kube_not_found(&e) => Ok(()),
        Err(e) => Err(kube_error("remove the finalizers of", doc.label())(e)),
    }
}

/// Whether a CRD is Established.
pub async fn crd_established(client: &Client, name: &str) -> Result<Option<String>, Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = api.get_opt(name).await.map_err(kube_error(
        "read",
        format!("CustomResourceDefinition {name}"),
    ))?;
    let established = crd
        .and_then(|c| c.status)
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    Ok((!established).then(|| "not Established yet".to_owned()))
}

/// Whether a Deployment has rolled out: `None` when ready, else what it waits for.
pub async fn deployment_pending(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, Error> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let Some(deployment) = api
        .get_opt(name)
        .await
        .map_err(kube_error("read", format!("Deployment {namespace}/{name}")))?
    else {
        return Ok(Some("not found".into()));
    };
    match common::workload::rollout(&deployment) {
        Rollout::Done => return Ok(None),
        Rollout::NotObserved => return Ok(Some("rollout not observed yet".into())),
        Rollout::Updating { .. } | Rollout::OldPodsLeft { .. } | Rollout::Unavailable { .. } => {}
    }
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.unwrap_or_default();
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.available_replicas.unwrap_or(0);
    let selector = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let pending = if selector.is_empty() {
        String::new()
    } else {
        pending_pods(client, namespace, &selector).await?
    };
    Ok(Some(format!(
        "{ready}/{wanted} available, {updated} updated{pending}"
    )))
}

/// Why a pod that does not run waits: its `PodScheduled=False` message, else the latest
/// Warning Event about it, else its phase.
fn pod_reason(pod: &Pod, events: &[Event]) -> String {
    let condition = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        })
        .and_then(|c| c.message.clone());
    let event = || {
        events
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == pod.metadata.name.as_deref())
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .max_by_key(|e| {
                e.metadata
                    .resource_version
                    .as_deref()
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .and_then(|e| {
                let message = e.message.clone()?;
                Some(match &e.reason {
                    Some(reason) => format!("{reason}: {message}"),
                    None => message,
                })
            })
    };
    condition.or_else(event).unwrap_or_else(|| {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into());
        format!("{phase}, not ready")
    })
}

/// The pods of `selector` that do not run, grouped by why: `; 4 pods not running: a, b, c, d
/// (Pod not supported on Fargate: ...)`; empty when all run.
pub async fn pending_pods(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<String, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(kube_error(
            "list",
            format!("the pods {selector} in {namespace}"),
        ))?;
    let waiting: Vec<&Pod> = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let status = p.status.as_ref();
            status.and_then(|s| s.phase.as_deref()) != Some("Running")
                || !status
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .collect();
    if waiting.is_empty() {
        return Ok(String::new());
    }
    let events: Vec<Event> = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().fields("involvedObject.kind=Pod"))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut by_reason: Vec<(String, Vec<String>)> = Vec::new();
    for pod in waiting {
        let reason = pod_reason(pod, &events);
        let name = pod.metadata.name.clone().unwrap_or_default();
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, names)) => names.push(name),
            None => by_reason.push((reason, vec![name])),
        }
    }
    let parts: Vec<String> = by_reason
        .into_iter()
        .map(|(reason, names)| {
            let count = names.len();
            let shown = if count > 5 {
                format!("{}, ... ({} more)", names[..5].join(", "), count - 5)
            } else {
                names.join(", ")
            };
            let pods = if count == 1 { "pod" } else { "pods" };
            format!("{count} {pods} not running: {shown} ({reason})")
        })
        .collect();
    Ok(format!("; {}", parts.join("; ")))
}

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Whether a Service has a ready endpoint in its EndpointSlices (`discovery.k8s.io/v1`; v1
/// Endpoints is deprecated since Kubernetes 1.33): `None` when it has, else why not. An
/// endpoint counts when it has an address and its `ready` condition is not false (unset means
/// ready, as the API documents).
pub async fn endpoints_pending(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, Error> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let slices = api
        .list(&ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}={name}")))
        .await
        .map_err(kube_error(
            "list",
            format!("the EndpointSlices of Service {namespace}/{name}"),
        ))?;
    if slices.items.is_empty() {
        return Ok(Some("no EndpointSlice yet".into()));
    }
    let ready = slices
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .any(|e| {
            !e.addresses.is_empty() && e.conditions.as_ref().and_then(|c| c.ready) != Some(false)
        });
    Ok((!ready).then(|| "no ready endpoint".to_owned()))
}

/// The Ingress's load balancer host name (once set) and its uid; `None` when it is not there.
pub async fn ingress_alb(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<(Option<String>, String)>, Error> {
    let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    let Some(ingress) = api
        .get_opt(name)
        .await
        .map_err(kube_error("read", format!("Ingress {namespace}/{name}")))?
    else {
        return Ok(None);
    };
    let uid = ingress.metadata.uid.clone().unwrap_or_default();
    let host = ingress
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .and_then(|list| list.into_iter().find_map(|i| i.hostname));
    Ok(Some((host, uid)))
}

/// The controller every IngressClass of the AWS Load Balancer Controller names.
pub const ALB_CONTROLLER: &str = "ingress.k8s.aws/alb";

/// The Ingress classes the AWS Load Balancer Controller serves: `alb` (also the legacy
/// annotation's value) and every IngressClass whose controller is [`ALB_CONTROLLER`].
pub async fn alb_classes(client: &Client) -> Result<Vec<String>, Error> {
    let api: Api<k8s_openapi::api::networking::v1::IngressClass> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(kube_error("list", "the IngressClasses".into()))?;
    let mut classes = vec!["alb".to_owned()];
    for class in list.items {
        let served =
            class.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(ALB_CONTROLLER);
        if let Some(name) = class
            .metadata
            .name
            .filter(|n| served && !classes.contains(n))
        {
            classes.push(name);
        }
    }
    Ok(classes)
}

/// The names of the Ingresses of `namespace` the AWS Load Balancer Controller serves (by
/// `spec.ingressClassName` or the legacy annotation `kubernetes.io/ingress.class`).
pub async fn alb_ingresses(
    client: &Client,
    namespace: &str,
    classes: &[String],
) -> Result<Vec<String>, Error> {
    let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(kube_error("list", format!("the Ingresses of {namespace}")))?;
    Ok(list
        .items
        .into_iter()
        .filter(|i| {
            let by_spec = i.spec.as_ref().and_then(|s| s.ingress_class_name.as_ref());
            let by_annotation = i
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/ingress.class"));
            by_spec.is_some_and(|c| classes.contains(c))
                || by_annotation.is_some_and(|c| classes.contains(c))
        })
        .filter_map(|i| i.metadata.name)
        .collect())
}
