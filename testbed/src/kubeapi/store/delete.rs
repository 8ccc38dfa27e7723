//! Deletes: of one object or a collection, with preconditions; finalizers keep an object
//! (marked with a deletionTimestamp) until they are gone; a namespace goes once it is empty.

use serde_json::{Value, json};

use super::super::resources::ResourceType;
use super::super::selector::{FieldSelector, LabelSelector};
use super::{
    ApiError, EventType, Result, Store, Target, has_finalizers, is_terminating, meta, meta_mut, now,
};

impl Store {
    /// DELETE of one object: with finalizers it is marked (deletionTimestamp) and kept, else
    /// it goes. Deleting a namespace deletes what is in it the same way.
    pub fn delete(
        &mut self,
        target: &Target,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> Result<Value> {
        let rt = target.rt.clone();
        let ns = target.ns().to_owned();
        let current = self
            .stored(&rt, &ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt, name))?;
        if let Some(pre) = options.get("preconditions") {
            let mismatch = |field: &str| {
                pre.get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|want| Some(want.to_owned()) != meta(&current, field))
            };
            if mismatch("uid") || mismatch("resourceVersion") {
                return Err(ApiError::conflict(
                    &rt,
                    name,
                    "the object's uid or resourceVersion does not match the precondition",
                ));
            }
        }
        let dry_run = dry_run
            || options
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v == "All"));
        if dry_run {
            return Ok(Self::view(&rt, &target.version, &current));
        }
        let is_namespace = rt.group.is_empty() && rt.plural == "namespaces";
        if is_namespace {
            self.delete_namespace_content(name);
        }
        let current = match self.stored(&rt, &ns, name) {
            Some(obj) => obj.clone(),
            // Emptying the namespace may have finished it already.
            None => return Ok(Self::view(&rt, &target.version, &current)),
        };
        if has_finalizers(&current) || (is_namespace && !self.may_go(&rt, &current)) {
            if is_terminating(&current) {
                return Ok(Self::view(&rt, &target.version, &current));
            }
            let mut marked = Self::view(&rt, &target.version, &current);
            let m = meta_mut(&mut marked);
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            return self.commit_marked(target, name, current, marked);
        }
        Ok(self.remove(&rt, &ns, name, &target.version))
    }

    /// Stores an object just marked for deletion (the marking is server-owned metadata, which
    /// [`Store::commit`] would otherwise keep as it was).
    fn commit_marked(
        &mut self,
        target: &Target,
        name: &str,
        old: Value,
        mut marked: Value,
    ) -> Result<Value> {
        let rt = &target.rt;
        self.defaults(rt, &mut marked)?;
        self.rv += 1;
        meta_mut(&mut marked).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let stored = Self::view(rt, &rt.versions[0], &marked);
        self.objects
            .entry(Self::type_key(rt))
            .or_default()
            .insert((target.ns().to_owned(), name.to_owned()), stored.clone());
        self.record(rt, EventType::Modified, stored.clone(), Some(old));
        Ok(Self::view(rt, &target.version, &stored))
    }

    fn delete_namespace_content(&mut self, ns: &str) {
        let namespaced: Vec<ResourceType> = self
            .types
            .iter()
            .filter(|t| t.namespaced)
            .cloned()
            .collect();
        for rt in namespaced {
            let names: Vec<String> = self
                .objects
                .get(&Self::type_key(&rt))
                .map(|m| {
                    m.keys()
                        .filter(|(n, _)| n == ns)
                        .map(|(_, name)| name.clone())
                        .collect()
                })
                .unwrap_or_default();
            let target = Target {
                version: rt.versions[0].clone(),
                rt: rt.clone(),
                namespace: Some(ns.to_owned()),
                status: false,
                writer: super::Writer::default(),
            };
            for name in names {
                // Cannot fail: the object is there and there are no preconditions.
                let _ = self.delete(&target, &name, &Value::Null, false);
            }
        }
    }

    /// DELETE on a collection: deletes each matching object; returns the list of them.
    pub fn delete_collection(
        &mut self,
        target: &Target,
        labels: &LabelSelector,
        fields: &FieldSelector,
        options: &Value,
        dry_run: bool,
    ) -> Result<Value> {
        let matching = self.select(target, labels, fields);
        let mut items = Vec::new();
        for obj in matching {
            let name = meta(&obj, "name").unwrap_or_default();
            let ns = meta(&obj, "namespace");
            let one = Target {
                namespace: if target.rt.namespaced { ns } else { None },
                ..target.clone()
            };
            items.push(self.delete(&one, &name, options, dry_run)?);
        }
        Ok(json!({
            "apiVersion": target.rt.api_version(&target.version),
            "kind": format!("{}List", target.rt.kind),
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": items,
        }))
    }

    /// A terminating namespace goes only when nothing is left in it.
    pub(super) fn may_go(&self, rt: &ResourceType, obj: &Value) -> bool {
        if rt.group.is_empty() && rt.plural == "namespaces" {
            let name = meta(obj, "name").unwrap_or_default();
            return !self
                .objects
                .values()
                .any(|m| m.keys().any(|(ns, _)| *ns == name));
        }
        true
    }

    /// Removes an object for good (DELETED event, new resourceVersion) and what depends on it.
    pub(super) fn remove(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        version: &str,
    ) -> Value {
        let key = Self::type_key(rt);
        let Some(mut obj) = self
            .objects
            .get_mut(&key)
            .and_then(|m| m.remove(&(ns.to_owned(), name.to_owned())))
        else {
            return Value::Null;
        };
        self.rv += 1;
        let previous = obj.clone();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.record(rt, EventType::Deleted, obj.clone(), Some(previous));
        if rt.crd.is_none() && rt.group == "apiextensions.k8s.io" {
            self.unregister_crd(name);
        }
        if rt.namespaced {
            self.finish_namespace(ns);
        }
        Self::view(rt, version, &obj)
    }

    /// Removes a terminating namespace once it is empty and has no finalizers.
    pub(super) fn finish_namespace(&mut self, ns: &str) {
        let ns_type = self.find_type("", "v1", "namespaces").expect("built in");
        let done = self
            .stored(&ns_type, "", ns)
            .is_some_and(|n| is_terminating(n) && !has_finalizers(n))
            && self.may_go(&ns_type, &json!({"metadata": {"name": ns}}));
        if done {
            self.remove(&ns_type, "", ns, "v1");
        }
    }
}
