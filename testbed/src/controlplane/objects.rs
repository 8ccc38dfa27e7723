//! What a control plane holds, for tests: every object of every listable resource, read through
//! discovery, and the objects made since the control plane started.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use super::ControlPlane;

/// Kinds that change on their own (the API server's identity leases, events of every
/// controller), left out of [`ControlPlane::versions`] and [`ControlPlane::objects_made`].
const CHURN: [&str; 2] = ["Lease", "Event"];

/// `apiVersion/kind/namespace/name` of an object.
pub fn key(object: &Value) -> String {
    format!(
        "{}/{}/{}/{}",
        object["apiVersion"].as_str().unwrap_or(""),
        object["kind"].as_str().unwrap_or(""),
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// The listable resources of `group_version` (`v1` for the core group): none when the
/// group-version does not answer (an aggregated API that is down), as a client going group by
/// group sees it.
async fn listable(client: &kube::Client, group_version: &str) -> Vec<ApiResource> {
    let answer = if group_version == "v1" {
        client.list_core_api_resources("v1").await
    } else {
        client.list_api_group_resources(group_version).await
    };
    let Ok(list) = answer else {
        return Vec::new();
    };
    let (group, version) = group_version.split_once('/').unwrap_or(("", group_version));
    list.resources
        .into_iter()
        .filter(|r| !r.name.contains('/') && r.verbs.iter().any(|v| v == "list"))
        .filter(|r| !CHURN.contains(&r.kind.as_str()))
        .map(|r| ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: group_version.to_owned(),
            kind: r.kind,
            plural: r.name,
        })
        .collect()
}

/// Every object `client` can list (the preferred version of each group, group by group, so an
/// unavailable aggregated API hides only itself), Events and Leases left out, each with its
/// `group/plural` (as the audit log names resources).
pub(crate) async fn all_objects(client: &kube::Client) -> Vec<(String, Value)> {
    let mut group_versions = vec!["v1".to_owned()];
    if let Ok(groups) = client.list_api_groups().await {
        group_versions.extend(groups.groups.into_iter().filter_map(|g| {
            g.preferred_version
                .map(|v| v.group_version)
                .or_else(|| g.versions.first().map(|v| v.group_version.clone()))
        }));
    }
    let mut objects = Vec::new();
    for group_version in group_versions {
        for resource in listable(client, &group_version).await {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let Ok(list) = api.list(&ListParams::default()).await else {
                continue;
            };
            for item in list.items {
                let mut value = serde_json::to_value(&item).unwrap_or(Value::Null);
                value["apiVersion"] = Value::String(resource.api_version.clone());
                value["kind"] = Value::String(resource.kind.clone());
                objects.push((format!("{}/{}", resource.group, resource.plural), value));
            }
        }
    }
    objects
}

impl ControlPlane {
    /// The simulators' client without kube's retries of 429/503/504: a listing goes past a
    /// group-version that does not answer instead of waiting on it.
    async fn listing_client(&self) -> kube::Client {
        super::client_with(&self.dir().join("simulators.yaml"), false).await
    }

    /// Every object stored (Events and Leases left out), as JSON with `apiVersion` and `kind`.
    pub async fn objects(&self) -> Vec<Value> {
        all_objects(&self.listing_client().await)
            .await
            .into_iter()
            .map(|(_, o)| o)
            .collect()
    }

    /// The objects that exist now and that the user `testbed` (the binaries' kubeconfig, and
    /// tests seeding through [`ControlPlane::client`]) created, changed or tried to delete, by
    /// the audit log: what the tool made and left, without what the cluster's controllers and
    /// simulators made (ReplicaSets, Pods, EndpointSlices, Nodes, ...).
    pub async fn left_by_testbed(&self) -> Vec<Value> {
        let touched: BTreeSet<(String, String, String)> = self
            .writes_by_testbed()
            .into_iter()
            .map(|r| r.object)
            .collect();
        all_objects(&self.listing_client().await)
            .await
            .into_iter()
            .filter(|(resource, o)| {
                let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
                touched.contains(&(
                    resource.clone(),
                    text(&o["metadata"]["namespace"]),
                    text(&o["metadata"]["name"]),
                ))
            })
            .map(|(_, o)| o)
            .collect()
    }

    /// `apiVersion/kind/namespace/name` -> resourceVersion of every object (Events and Leases
    /// left out): equal before and after a step means the step changed nothing.
    pub async fn versions(&self) -> BTreeMap<String, String> {
        self.objects()
            .await
            .iter()
            .map(|o| {
                (
                    key(o),
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .collect()
    }

    /// The objects that were not there when the control plane was ready (what tests, steps,
    /// simulators and controllers made, and left).
    pub async fn objects_made(&self) -> Vec<Value> {
        let baseline: &BTreeSet<String> = &self.baseline;
        self.objects()
            .await
            .into_iter()
            .filter(|o| !baseline.contains(&key(o)))
            .collect()
    }
}
