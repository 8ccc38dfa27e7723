//! The in-memory object store: every object of every served type, one global resourceVersion
//! counter, a bounded history of watch events, and the write rules (metadata stamping,
//! generation, status subresource, finalizers, namespaces and CustomResourceDefinitions).

use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

use serde_json::{Map, Value, json};

use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};

mod crds;
mod defaults;
mod delete;
mod error;
mod fields;
#[cfg(test)]
mod tests;
mod watch;
mod write;

pub(crate) use error::ApiError;
pub(crate) use fields::Writer;
pub(crate) use watch::{Event, EventType};

/// The namespaces a fresh server has, as a real cluster does.
pub const BUILTIN_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

type Result<T> = std::result::Result<T, ApiError>;

/// The patch forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`, and `application/strategic-merge-patch+json` treated alike.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml`: server-side apply, as a deep merge with field ownership.
    Apply,
}

/// Where a request points: a type in one version, a namespace (or none: cluster-scoped or all
/// namespaces) and whether it is the `/status` subresource; and who writes (its field manager).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub rt: ResourceType,
    pub version: String,
    pub namespace: Option<String>,
    pub status: bool,
    pub writer: Writer,
}

impl Target {
    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

type TypeKey = (String, String);
type ObjKey = (String, String);

/// Everything the server holds.
#[derive(Debug)]
pub(crate) struct Store {
    rv: u64,
    types: Vec<ResourceType>,
    objects: BTreeMap<TypeKey, BTreeMap<ObjKey, Value>>,
    history: VecDeque<Event>,
    /// Every event newer than this is in `history`.
    floor: u64,
    history_limit: usize,
    seed: u64,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn meta(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

fn is_terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

impl Store {
    /// A store with the built-in types, the built-in namespaces and at most `history_limit`
    /// watch events kept.
    pub fn new(history_limit: usize) -> Store {
        let seed = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        let mut store = Store {
            rv: 0,
            types: resources::built_in(),
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            floor: 0,
            history_limit: history_limit.max(1),
            seed,
        };
        let rt = store
            .find_type("", "v1", "namespaces")
            .expect("namespaces are built in");
        let target = Target {
            rt,
            version: "v1".into(),
            namespace: None,
            status: false,
            writer: Writer::default(),
        };
        for ns in BUILTIN_NAMESPACES {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            store
                .create(&target, body, false)
                .expect("a built-in namespace");
        }
        store
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The served types.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type served at `group/version` under `plural`.
    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| {
                t.group == group && t.plural == plural && t.versions.iter().any(|v| v == version)
            })
            .cloned()
    }

    /// True while the type of `group`/`plural` is served.
    pub fn has_type(&self, group: &str, plural: &str) -> bool {
        self.types
            .iter()
            .any(|t| t.group == group && t.plural == plural)
    }

    /// Every stored object, in its preferred apiVersion.
    pub fn all_objects(&self) -> Vec<Value> {
        self.objects
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    fn type_key(rt: &ResourceType) -> TypeKey {
        (rt.group.clone(), rt.plural.clone())
    }

    fn stored(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&Self::type_key(rt))
            .and_then(|m| m.get(&(ns.to_owned(), name.to_owned())))
    }

    /// The object as a client of `version` sees it.
    pub fn view(rt: &ResourceType, version: &str, obj: &Value) -> Value {
        let mut out = obj.clone();
        if let Some(map) = out.as_object_mut() {
            map.insert("apiVersion".into(), json!(rt.api_version(version)));
            map.insert("kind".into(), json!(rt.kind));
        }
        out
    }

    fn random_hex(&mut self, len: usize) -> String {
        let mut out = String::new();
        while out.len() < len {
            self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            hasher.write_u64(self.seed);
            hasher.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default(),
            );
            out.push_str(&format!("{:016x}", hasher.finish()));
        }
        out.truncate(len);
        out
    }

    fn new_uid(&mut self) -> String {
        let h = self.random_hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..]
        )
    }

    /// Objects of the target's type in its namespace (all when none), matching the selectors.
    pub fn select(
        &self,
        target: &Target,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        let Some(objects) = self.objects.get(&Self::type_key(&target.rt)) else {
            return Vec::new();
        };
        objects
            .iter()
            .filter(|((ns, _), _)| target.namespace.as_ref().is_none_or(|want| want == ns))
            .map(|(_, obj)| Self::view(&target.rt, &target.version, obj))
            .filter(|obj| labels.matches(obj) && fields.matches(obj))
            .collect()
    }

    /// The `XList` document.
    pub fn list(&self, target: &Target, labels: &LabelSelector, fields: &FieldSelector) -> Value {
        json!({
            "apiVersion": target.rt.api_version(&target.version),
            "kind": format!("{}List", target.rt.kind),
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": self.select(target, labels, fields),
        })
    }

    pub fn get(&self, target: &Target, name: &str) -> Result<Value> {
        self.stored(&target.rt, target.ns(), name)
            .map(|o| Self::view(&target.rt, &target.version, o))
            .ok_or_else(|| ApiError::not_found(&target.rt, name))
    }
}
