//! Which Kubernetes objects are ours. `eks-deploy` never changes or deletes an object it did not
//! make unless told to take it over (`apply --adopt`).
//!
//! - **apply**: before the first object is applied, every object of the manifests that exists
//!   already is applied as a server-side dry run without `force`; a 409 `Conflict` means another
//!   field manager owns a field we would change. All such objects are refused at once (exit 2,
//!   nothing applied), naming them and the managers as the server named them; `--adopt`
//!   force-applies them and records them as adopted.
//! - **delete**: an object is ours when the state records it as made by us (not adopted); with
//!   no state (`delete --manifests DIR`), when its `managedFields` prove it ([`made_by_us`]).
//!   Every object is checked before any is deleted; one not proven ours is refused (exit 2,
//!   nothing deleted). Adopted objects are left in place.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::DynamicObject;
use serde_json::{Value, json};

use crate::kubeops::FIELD_MANAGER;
use crate::manifests::Doc;

/// The annotation an adopted object carries, applied by us with the object: the live record of
/// the adoption, so a delete that has no state (or a state that lost the record) still leaves
/// the object standing. Our server-side apply entry alone would make it look made by us.
pub const ADOPTED_ANNOTATION: &str = "eks-fargate-alb/adopted";

/// `doc` with [`ADOPTED_ANNOTATION`] added, as an adopted object is applied.
pub fn marked_adopted(doc: &Doc) -> Doc {
    let mut marked = doc.clone();
    if let Some(metadata) = marked
        .value
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
    {
        let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(ADOPTED_ANNOTATION.to_owned(), json!("true"));
        }
    }
    marked
}

/// True when the live object carries [`ADOPTED_ANNOTATION`].
pub fn is_marked_adopted(object: &DynamicObject) -> bool {
    object
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.get(ADOPTED_ANNOTATION).is_some_and(|v| v == "true"))
}

/// One object of the manifests that another field manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// `Deployment kube-system/ctl`.
    pub object: String,
    /// Why: the server's conflict message, or the managers the object shows.
    pub why: String,
}

fn listed(objects: &[Foreign]) -> String {
    objects
        .iter()
        .map(|f| format!("{} ({})", f.object, f.why))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `apply` found objects that belong to another field manager: exit 2, nothing applied.
#[derive(Debug, thiserror::Error)]
#[error(
    "{count} object(s) of the manifests exist already and belong to another field manager: {list}. Nothing was applied: eks-deploy does not change what it did not make. Rename or remove them, or pass --adopt to take them over (eks-deploy apply --adopt force-applies them, taking those fields; they are recorded as adopted and delete leaves them in place)",
    count = .0.len(),
    list = listed(.0)
)]
pub struct NotOurs(pub Vec<Foreign>);

/// `delete` with no state found objects not proven made by eks-deploy: exit 2, nothing deleted.
#[derive(Debug, thiserror::Error)]
#[error(
    "{count} object(s) are not proven made by eks-deploy (the state records nothing deployed, and their managedFields show no server-side apply by field manager {FIELD_MANAGER}, or an apply by another manager): {list}. Nothing was deleted. Delete them with the tool that made them; to manage them with eks-deploy, take them over with `eks-deploy apply --adopt` (delete then leaves them in place)",
    count = .0.len(),
    list = listed(.0)
)]
pub struct NotProvenOurs(pub Vec<Foreign>);

/// The managers of an object as `"helm" (Update)`, for messages.
pub fn managers(entries: &[ManagedFieldsEntry]) -> String {
    if entries.is_empty() {
        return "no managedFields".into();
    }
    let named: Vec<String> = entries
        .iter()
        .map(|e| {
            let mut one = format!(
                "{:?} ({}",
                e.manager.as_deref().unwrap_or_default(),
                e.operation.as_deref().unwrap_or("?")
            );
            if let Some(sub) = &e.subresource {
                one.push_str(&format!(", {sub}"));
            }
            one.push(')');
            one
        })
        .collect();
    format!("managers {}", named.join(", "))
}

/// The rule for an object with no state to tell: ours when our field manager server-side
/// applied it (an `Apply` entry of `eks-fargate-alb`) and no other manager applied it (no other
/// `Apply` entry on the object itself). Other managers' `Update` entries are allowed: they are
/// what controllers and hand edits add to an object (the load balancer controller's finalizer
/// on the Ingress, status writers, `kubectl annotate`, a rollout restart), not a claim on it.
/// A tool that declares an object whole by server-side apply (kubectl --server-side, Flux,
/// Argo CD, `irsa`'s ServiceAccount annotation) has an `Apply` entry, so it is not ours alone.
pub fn made_by_us(entries: &[ManagedFieldsEntry]) -> bool {
    let applied_by = |e: &ManagedFieldsEntry| {
        e.operation.as_deref() == Some("Apply") && e.subresource.as_deref().unwrap_or("").is_empty()
    };
    let ours = entries
        .iter()
        .any(|e| applied_by(e) && e.manager.as_deref() == Some(FIELD_MANAGER));
    let others = entries
        .iter()
        .any(|e| applied_by(e) && e.manager.as_deref() != Some(FIELD_MANAGER));
    ours && !others
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, operation: &str, subresource: Option<&str>) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some(operation.into()),
            subresource: subresource.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn an_adopted_object_is_marked_live() {
        let doc = Doc {
            file: "f.yaml".into(),
            api_version: "v1".into(),
            kind: "ServiceAccount".into(),
            name: "ctl".into(),
            namespace: Some("kube-system".into()),
            value: json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "ctl", "annotations": {"a": "b"}}}),
        };
        let marked = marked_adopted(&doc);
        assert_eq!(
            marked.value["metadata"]["annotations"],
            json!({"a": "b", ADOPTED_ANNOTATION: "true"})
        );
        let object: DynamicObject = serde_json::from_value(marked.value).unwrap();
        assert!(is_marked_adopted(&object));
        let plain: DynamicObject = serde_json::from_value(doc.value).unwrap();
        assert!(!is_marked_adopted(&plain));
    }

    #[test]
    fn ours_only_when_we_applied_it_and_no_one_else_did() {
        let us = entry(FIELD_MANAGER, "Apply", None);
        assert!(made_by_us(std::slice::from_ref(&us)));
        assert!(made_by_us(&[
            us.clone(),
            entry("alb-controller", "Update", None),
            entry("unknown", "Update", Some("status")),
        ]));
        assert!(!made_by_us(&[]));
        assert!(!made_by_us(&[entry("helm", "Update", None)]));
        assert!(!made_by_us(&[entry(FIELD_MANAGER, "Update", None)]));
        assert!(!made_by_us(&[us.clone(), entry("kubectl", "Apply", None)]));
        assert_eq!(
            managers(&[us, entry("helm", "Update", None)]),
            r#"managers "eks-fargate-alb" (Apply), "helm" (Update)"#
        );
    }

    #[test]
    fn refusals_name_the_objects_and_the_fix() {
        let foreign = vec![Foreign {
            object: "Deployment kube-system/ctl".into(),
            why: r#"Apply failed with 1 conflict: conflict with "helm" using apps/v1: .spec.replicas"#
                .into(),
        }];
        let text = NotOurs(foreign.clone()).to_string();
        assert!(
            text.contains("Deployment kube-system/ctl (Apply failed"),
            "{text}"
        );
        assert!(
            text.contains("--adopt") && text.contains("Nothing was applied"),
            "{text}"
        );
        let text = NotProvenOurs(foreign).to_string();
        assert!(
            text.contains("Nothing was deleted") && text.contains("apply --adopt"),
            "{text}"
        );
    }
}
