//! What the server itself sets on objects of some types before storing them: a namespace's
//! phase and name label, a deployment's replicas, a CustomResourceDefinition's status.

use serde_json::{Value, json};

use super::super::resources::{self, ResourceType};
use super::{ApiError, Result, Store, is_terminating, meta, meta_mut, now};

impl Store {
    /// What the server itself sets on an object of some types before it is stored.
    pub(super) fn defaults(&self, rt: &ResourceType, obj: &mut Value) -> Result<()> {
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "namespaces") => {
                let name = meta(obj, "name").unwrap_or_default();
                let phase = if is_terminating(obj) {
                    "Terminating"
                } else {
                    "Active"
                };
                let labels = meta_mut(obj).entry("labels").or_insert_with(|| json!({}));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
                if !obj.get("status").is_some_and(Value::is_object) {
                    obj["status"] = json!({});
                }
                obj["status"]["phase"] = json!(phase);
            }
            ("apps", "deployments") => {
                if !obj.get("spec").is_some_and(Value::is_object) {
                    obj["spec"] = json!({});
                }
                if obj["spec"].get("replicas").is_none_or(Value::is_null) {
                    obj["spec"]["replicas"] = json!(1);
                }
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let declared = resources::from_crd(obj).map_err(ApiError::invalid)?;
                let name = meta(obj, "name").unwrap_or_default();
                if self.types.iter().any(|t| {
                    t.group == declared.group
                        && t.plural == declared.plural
                        && t.crd.as_deref() != Some(name.as_str())
                }) {
                    return Err(ApiError::invalid(format!(
                        "CustomResourceDefinition \"{name}\" is invalid: {} is already served",
                        declared.qualified()
                    )));
                }
                let storage = obj
                    .pointer("/spec/versions")
                    .and_then(Value::as_array)
                    .and_then(|vs| {
                        vs.iter()
                            .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    })
                    .and_then(|v| v.get("name").cloned())
                    .unwrap_or_else(|| json!(declared.versions[0]));
                let mut accepted = obj
                    .pointer("/spec/names")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                accepted["singular"] = json!(declared.singular);
                accepted["listKind"] = accepted
                    .get("listKind")
                    .cloned()
                    .unwrap_or_else(|| json!(format!("{}List", declared.kind)));
                let since = obj
                    .pointer("/status/conditions/0/lastTransitionTime")
                    .cloned()
                    .unwrap_or_else(|| json!(now()));
                obj["status"] = json!({
                    "acceptedNames": accepted,
                    "storedVersions": [storage],
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": since},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": since}
                    ],
                });
            }
            _ => {}
        }
        Ok(())
    }
}
