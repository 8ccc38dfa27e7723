//! What a control plane holds, for tests: every object of every listable resource, read through
//! discovery, and the objects made since the control plane started.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{Discovery, verbs};
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

/// Every object `client` can list (preferred version of each group), Events and Leases left out,
/// each with its `group/plural` (as the audit log names resources).
pub(crate) async fn all_objects(client: &kube::Client) -> Vec<(String, Value)> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery of the control plane");
    let mut objects = Vec::new();
    for group in discovery.groups() {
        for (resource, capabilities) in group.recommended_resources() {
            if !capabilities.supports_operation(verbs::LIST)
                || CHURN.contains(&resource.kind.as_str())
                || resource.plural.contains('/')
            {
                continue;
            }
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
    /// Every object stored (Events and Leases left out), as JSON with `apiVersion` and `kind`.
    pub async fn objects(&self) -> Vec<Value> {
        all_objects(&self.simulator_client().await)
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
        all_objects(&self.simulator_client().await)
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
