//! The types CustomResourceDefinitions declare: served from the moment one is stored, gone
//! (with every object of theirs) when it is.

use serde_json::{Value, json};

use super::super::resources::{self, ResourceType};
use super::{EventType, Store, meta_mut};

impl Store {
    pub(super) fn register_crd(&mut self, crd: &Value) {
        let Ok(declared) = resources::from_crd(crd) else {
            return;
        };
        if let Some(at) = self.types.iter().position(|t| t.crd == declared.crd) {
            let old = std::mem::replace(&mut self.types[at], declared.clone());
            if (&old.group, &old.plural) != (&declared.group, &declared.plural) {
                self.drop_objects_of(&old);
            }
        } else {
            self.types.push(declared);
        }
    }

    pub(super) fn unregister_crd(&mut self, crd_name: &str) {
        if let Some(at) = self
            .types
            .iter()
            .position(|t| t.crd.as_deref() == Some(crd_name))
        {
            let gone = self.types.remove(at);
            self.drop_objects_of(&gone);
        }
    }

    /// Removes every object of a type that is no longer served (DELETED events, finalizers
    /// or not).
    fn drop_objects_of(&mut self, rt: &ResourceType) {
        let Some(objects) = self.objects.remove(&Self::type_key(rt)) else {
            return;
        };
        let mut namespaces = Vec::new();
        for ((ns, _), mut obj) in objects {
            self.rv += 1;
            let previous = obj.clone();
            meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
            self.record(rt, EventType::Deleted, obj, Some(previous));
            namespaces.push(ns);
        }
        for ns in namespaces {
            self.finish_namespace(&ns);
        }
    }
}
