//! The in-memory object store: every object of every served type, one global resourceVersion
//! counter, a bounded history of watch events, and the write rules (metadata stamping,
//! generation, status subresource, finalizers, namespaces and CustomResourceDefinitions).

use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

use serde_json::{Map, Value, json};

use super::patch::{JsonPatchError, json_patch, merge_patch};
use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};

/// The namespaces a fresh server has, as a real cluster does.
pub const BUILTIN_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// A failed request, answered as a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(422, "Invalid", message)
    }

    pub fn not_found_path() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn method_not_allowed(method: &str) -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource: {method}"),
        )
    }

    fn about(mut self, rt: &ResourceType, name: &str) -> ApiError {
        self.details = Some(json!({"name": name, "group": rt.group, "kind": rt.plural}));
        self
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified()),
        )
        .about(rt, name)
    }

    fn already_exists(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified()),
        )
        .about(rt, name)
    }

    fn conflict(rt: &ResourceType, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified()
            ),
        )
        .about(rt, name)
    }

    /// The `Status` document.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

type Result<T> = std::result::Result<T, ApiError>;

/// What a watch event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, kept in the history for watches.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub kind: EventType,
    /// The object after the change (for DELETED: as it was removed).
    pub object: Value,
    /// The object before the change (MODIFIED and DELETED), to tell selector transitions.
    pub previous: Option<Value>,
}

/// The patch forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`, and `application/strategic-merge-patch+json` treated alike.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml`: server-side apply, as a deep merge.
    Apply,
}

/// Where a request points: a type in one version, a namespace (or none: cluster-scoped or all
/// namespaces) and whether it is the `/status` subresource.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub rt: ResourceType,
    pub version: String,
    pub namespace: Option<String>,
    pub status: bool,
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

/// The object without metadata and status (and type fields): what `generation` follows.
fn spec_part(obj: &Value) -> Value {
    let mut part = obj.clone();
    if let Some(map) = part.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.shift_remove(key);
        }
    }
    part
}

fn validate_name(rt: &ResourceType, name: &str) -> Result<()> {
    let invalid = |rule: &str| {
        Err(ApiError::invalid(format!(
            "{} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": {rule}",
            rt.kind
        )))
    };
    if name.is_empty() {
        return invalid("name or generateName is required");
    }
    if rt.group == "rbac.authorization.k8s.io" {
        if name.contains('/') || name.contains('%') || name == "." || name == ".." {
            return invalid("may not contain '/' or '%'");
        }
        return Ok(());
    }
    let label_only = rt.group.is_empty() && (rt.plural == "namespaces" || rt.plural == "services");
    let limit = if label_only { 63 } else { 253 };
    let chars_ok = name.chars().all(|c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (c == '.' && !label_only)
    });
    let ends_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.len() > limit || !chars_ok || !ends_ok {
        return invalid(&format!(
            "a lowercase RFC 1123 {} must consist of lower case alphanumeric characters{} and must start and end with an alphanumeric character (at most {limit} characters)",
            if label_only { "label" } else { "subdomain" },
            if label_only { ", '-'" } else { ", '-' or '.'" },
        ));
    }
    Ok(())
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

    /// Checks `apiVersion`/`kind` of a body (when given) against the target.
    fn check_type(target: &Target, body: &Value, required: bool) -> Result<()> {
        if !body.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let expected = target.rt.api_version(&target.version);
        match body.get("apiVersion").and_then(Value::as_str) {
            Some(v) if v != expected => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({expected})"
                )));
            }
            None if required => return Err(ApiError::bad_request("apiVersion must be set")),
            _ => {}
        }
        match body.get("kind").and_then(Value::as_str) {
            Some(k) if k != target.rt.kind => Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                target.rt.kind
            ))),
            None if required => Err(ApiError::bad_request("kind must be set")),
            _ => Ok(()),
        }
    }

    /// Checks a body's name and namespace against the URL's.
    fn check_identity(target: &Target, body: &Value, name: &str) -> Result<()> {
        if let Some(given) = meta(body, "name")
            && given != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        if target.rt.namespaced
            && let Some(given) = meta(body, "namespace")
            && !given.is_empty()
            && given != target.ns()
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }

    /// POST: a new object.
    pub fn create(&mut self, target: &Target, mut body: Value, dry_run: bool) -> Result<Value> {
        Self::check_type(target, &body, false)?;
        let rt = target.rt.clone();
        let ns = target.ns().to_owned();
        let name = match meta(&body, "name").filter(|n| !n.is_empty()) {
            Some(name) => name,
            None => match meta(&body, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => format!("{prefix}{}", self.random_hex(5)),
                None => {
                    return Err(ApiError::invalid(format!(
                        "{} is invalid: metadata.name: Required value: name or generateName is required",
                        rt.kind
                    )));
                }
            },
        };
        Self::check_identity(target, &body, &name)?;
        validate_name(&rt, &name)?;
        if rt.namespaced {
            let ns_type = self.find_type("", "v1", "namespaces").expect("built in");
            match self.stored(&ns_type, "", &ns) {
                None => return Err(ApiError::not_found(&ns_type, &ns)),
                Some(n) if is_terminating(n) => {
                    return Err(ApiError::new(
                        403,
                        "Forbidden",
                        format!(
                            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            rt.qualified()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if self.stored(&rt, &ns, &name).is_some() {
            return Err(ApiError::already_exists(&rt, &name));
        }
        if rt.status
            && let Some(map) = body.as_object_mut()
        {
            map.shift_remove("status");
        }
        let uid = self.new_uid();
        let m = meta_mut(&mut body);
        for server_field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            m.shift_remove(server_field);
        }
        m.insert("name".into(), json!(name));
        if rt.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.shift_remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now()));
        m.insert("generation".into(), json!(1));
        self.commit(target, &name, None, body, dry_run)
    }

    /// PUT on the object or its status.
    pub fn replace(
        &mut self,
        target: &Target,
        name: &str,
        body: Value,
        dry_run: bool,
    ) -> Result<Value> {
        Self::check_type(target, &body, false)?;
        Self::check_identity(target, &body, name)?;
        let old = self
            .stored(&target.rt, target.ns(), name)
            .map(|o| Self::view(&target.rt, &target.version, o))
            .ok_or_else(|| ApiError::not_found(&target.rt, name))?;
        if let Some(given) = meta(&body, "resourceVersion").filter(|v| !v.is_empty())
            && Some(&given) != meta(&old, "resourceVersion").as_ref()
        {
            return Err(ApiError::conflict(
                &target.rt,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let new = Self::compose(target, &old, body);
        self.commit(target, name, Some(old), new, dry_run)
    }

    /// PATCH on the object or its status; returns the HTTP code (201 when apply created it).
    pub fn patch(
        &mut self,
        target: &Target,
        name: &str,
        kind: PatchKind,
        patch: Value,
        dry_run: bool,
    ) -> Result<(u16, Value)> {
        let old = self
            .stored(&target.rt, target.ns(), name)
            .map(|o| Self::view(&target.rt, &target.version, o));
        if kind == PatchKind::Apply {
            Self::check_type(target, &patch, true)?;
            Self::check_identity(target, &patch, name)?;
        }
        let Some(old) = old else {
            if kind == PatchKind::Apply && !target.status {
                let mut body = patch;
                meta_mut(&mut body).insert("name".into(), json!(name));
                return Ok((201, self.create(target, body, dry_run)?));
            }
            return Err(ApiError::not_found(&target.rt, name));
        };
        let patched = match kind {
            PatchKind::Merge | PatchKind::Apply => {
                if !patch.is_object() {
                    return Err(ApiError::bad_request("the patch must be a JSON object"));
                }
                let mut doc = old.clone();
                merge_patch(&mut doc, &patch);
                doc
            }
            PatchKind::Json => json_patch(&old, &patch).map_err(|e| match e {
                JsonPatchError::Malformed(m) => ApiError::bad_request(m),
                JsonPatchError::Failed(m) => ApiError::invalid(m),
            })?,
        };
        Self::check_type(target, &patched, false)?;
        if meta(&patched, "name").as_deref() != Some(name)
            || (target.rt.namespaced && meta(&patched, "namespace").as_deref() != Some(target.ns()))
        {
            return Err(ApiError::bad_request(
                "a patch may not change metadata.name or metadata.namespace",
            ));
        }
        if meta(&patched, "resourceVersion") != meta(&old, "resourceVersion") {
            return Err(ApiError::conflict(
                &target.rt,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let new = Self::compose(target, &old, patched);
        Ok((200, self.commit(target, name, Some(old), new, dry_run)?))
    }

    /// The object a write makes of `old` and the written document: only `.status` through the
    /// status subresource; everything but `.status` through the main resource of a type that
    /// has one; server-owned metadata always from `old`.
    fn compose(target: &Target, old: &Value, written: Value) -> Value {
        let mut new = if target.status {
            let mut new = old.clone();
            match written.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.shift_remove("status");
                    }
                }
            }
            new
        } else {
            let mut new = written;
            if target.rt.status
                && let Some(map) = new.as_object_mut()
            {
                match old.get("status") {
                    Some(status) => {
                        map.insert("status".into(), status.clone());
                    }
                    None => {
                        map.shift_remove("status");
                    }
                }
            }
            new
        };
        let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let m = meta_mut(&mut new);
        m.shift_remove("managedFields");
        m.shift_remove("selfLink");
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old_meta.get(field) {
                Some(v) => {
                    m.insert(field.into(), v.clone());
                }
                None => {
                    m.shift_remove(field);
                }
            }
        }
        new
    }

    /// What the server itself sets on an object of some types before it is stored.
    fn defaults(&self, rt: &ResourceType, obj: &mut Value) -> Result<()> {
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

    /// Stores `new` (after `old`, if any) with a fresh resourceVersion and records the event;
    /// a no-op write changes nothing. An object left terminating with no finalizers goes.
    fn commit(
        &mut self,
        target: &Target,
        name: &str,
        old: Option<Value>,
        new: Value,
        dry_run: bool,
    ) -> Result<Value> {
        let rt = &target.rt;
        let mut new = Self::view(rt, &target.version, &new);
        self.defaults(rt, &mut new)?;
        if let Some(old) = &old {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let generation = if spec_part(old) != spec_part(&new) {
                generation + 1
            } else {
                generation
            };
            meta_mut(&mut new).insert("generation".into(), json!(generation));
            if *old == new {
                return Ok(new);
            }
        }
        if dry_run {
            if old.is_none() {
                meta_mut(&mut new)
                    .insert("resourceVersion".into(), json!((self.rv + 1).to_string()));
            }
            return Ok(new);
        }
        let ns = target.ns().to_owned();
        if old.is_some() && is_terminating(&new) && !has_finalizers(&new) && self.may_go(rt, &new) {
            return Ok(self.remove(rt, &ns, name, &target.version));
        }
        self.rv += 1;
        meta_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let stored = Self::view(rt, &rt.versions[0], &new);
        let previous = self
            .objects
            .entry(Self::type_key(rt))
            .or_default()
            .insert((ns, name.to_owned()), stored.clone());
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(rt, kind, stored.clone(), previous);
        if rt.crd.is_none() && rt.group == "apiextensions.k8s.io" {
            self.register_crd(&stored);
        }
        Ok(Self::view(rt, &target.version, &stored))
    }

    /// A terminating namespace goes only when nothing is left in it.
    fn may_go(&self, rt: &ResourceType, obj: &Value) -> bool {
        if rt.group.is_empty() && rt.plural == "namespaces" {
            let name = meta(obj, "name").unwrap_or_default();
            return !self
                .objects
                .values()
                .any(|m| m.keys().any(|(ns, _)| *ns == name));
        }
        true
    }

    fn record(
        &mut self,
        rt: &ResourceType,
        kind: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        self.history.push_back(Event {
            rv: self.rv,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            kind,
            object,
            previous,
        });
        while self.history.len() > self.history_limit {
            if let Some(gone) = self.history.pop_front() {
                self.floor = gone.rv;
            }
        }
    }

    /// Removes an object for good (DELETED event, new resourceVersion) and what depends on it.
    fn remove(&mut self, rt: &ResourceType, ns: &str, name: &str, version: &str) -> Value {
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
    fn finish_namespace(&mut self, ns: &str) {
        let ns_type = self.find_type("", "v1", "namespaces").expect("built in");
        let done = self
            .stored(&ns_type, "", ns)
            .is_some_and(|n| is_terminating(n) && !has_finalizers(n))
            && self.may_go(&ns_type, &json!({"metadata": {"name": ns}}));
        if done {
            self.remove(&ns_type, "", ns, "v1");
        }
    }

    fn register_crd(&mut self, crd: &Value) {
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

    fn unregister_crd(&mut self, crd_name: &str) {
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

    /// The events of `group`/`plural` newer than `after`, or `Err(floor)` when some of them are
    /// no longer kept.
    pub fn events_after(
        &self,
        after: u64,
        group: &str,
        plural: &str,
    ) -> std::result::Result<Vec<Event>, u64> {
        if after < self.floor {
            return Err(self.floor);
        }
        let start = self.history.partition_point(|e| e.rv <= after);
        Ok(self
            .history
            .range(start..)
            .filter(|e| e.group == group && e.plural == plural)
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(store: &Store, group: &str, plural: &str, ns: Option<&str>) -> Target {
        let rt = store
            .types()
            .iter()
            .find(|t| t.group == group && t.plural == plural)
            .unwrap()
            .clone();
        Target {
            version: rt.versions[0].clone(),
            rt,
            namespace: ns.map(str::to_owned),
            status: false,
        }
    }

    #[test]
    fn generation_follows_the_spec_only() {
        let mut store = Store::new(100);
        let t = target(&store, "", "configmaps", Some("default"));
        let made = store
            .create(
                &t,
                json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
                false,
            )
            .unwrap();
        assert_eq!(made["metadata"]["generation"], 1);
        assert_eq!(made["apiVersion"], "v1");
        let relabelled = store
            .patch(
                &t,
                "c",
                PatchKind::Merge,
                json!({"metadata": {"labels": {"x": "y"}}}),
                false,
            )
            .unwrap()
            .1;
        assert_eq!(relabelled["metadata"]["generation"], 1);
        let rv = relabelled["metadata"]["resourceVersion"].clone();
        let changed = store
            .patch(
                &t,
                "c",
                PatchKind::Merge,
                json!({"data": {"a": "2"}}),
                false,
            )
            .unwrap()
            .1;
        assert_eq!(changed["metadata"]["generation"], 2);
        let same = store
            .patch(
                &t,
                "c",
                PatchKind::Merge,
                json!({"data": {"a": "2"}}),
                false,
            )
            .unwrap()
            .1;
        assert_eq!(
            same["metadata"]["resourceVersion"],
            changed["metadata"]["resourceVersion"]
        );
        assert_ne!(rv, changed["metadata"]["resourceVersion"]);
    }

    #[test]
    fn names_and_namespaces_are_checked() {
        let mut store = Store::new(100);
        let t = target(&store, "", "configmaps", Some("nowhere"));
        let err = store
            .create(&t, json!({"metadata": {"name": "c"}}), false)
            .unwrap_err();
        assert_eq!((err.code, err.reason), (404, "NotFound"));
        let t = target(&store, "", "configmaps", Some("default"));
        let err = store
            .create(&t, json!({"metadata": {"name": "Bad_Name"}}), false)
            .unwrap_err();
        assert_eq!((err.code, err.reason), (422, "Invalid"));
        let made = store
            .create(&t, json!({"metadata": {"generateName": "cm-"}}), false)
            .unwrap();
        assert!(
            made["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("cm-")
        );
        let roles = target(&store, "rbac.authorization.k8s.io", "clusterroles", None);
        store
            .create(&roles, json!({"metadata": {"name": "system:thing"}}), false)
            .unwrap();
    }

    #[test]
    fn history_is_bounded() {
        let mut store = Store::new(3);
        let t = target(&store, "", "configmaps", Some("default"));
        for i in 0..5 {
            store
                .create(&t, json!({"metadata": {"name": format!("c{i}")}}), false)
                .unwrap();
        }
        let now = store.resource_version();
        assert_eq!(
            store.events_after(now - 3, "", "configmaps").unwrap().len(),
            3
        );
        assert!(store.events_after(now - 4, "", "configmaps").is_err());
        assert!(
            store
                .events_after(now, "", "configmaps")
                .unwrap()
                .is_empty()
        );
    }
}
