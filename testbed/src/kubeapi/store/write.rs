//! Writes: create (POST), replace (PUT) and patch (PATCH, the three patch forms), with the
//! checks of type, identity and name, server-owned metadata, the status subresource,
//! `generation`, field ownership ([`super::fields`]) and the commit that stamps a resourceVersion
//! and records the event.

use serde_json::{Value, json};

use super::super::patch::{JsonPatchError, json_patch, merge_patch};
use super::super::resources::ResourceType;
use super::fields::{self, Write};
use super::{
    ApiError, EventType, PatchKind, Result, Store, Target, has_finalizers, is_terminating, meta,
    meta_mut, now,
};

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
    pub fn create(&mut self, target: &Target, body: Value, dry_run: bool) -> Result<Value> {
        self.create_as(target, body, Write::Update, dry_run)
    }

    /// A new object, made by an update (POST) or an apply.
    fn create_as(
        &mut self,
        target: &Target,
        mut body: Value,
        write: Write<'_>,
        dry_run: bool,
    ) -> Result<Value> {
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
        self.commit(target, &name, None, body, write, dry_run)
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
        self.commit(target, name, Some(old), new, Write::Update, dry_run)
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
                let mut body = patch.clone();
                meta_mut(&mut body).insert("name".into(), json!(name));
                return Ok((
                    201,
                    self.create_as(target, body, Write::Apply(&patch), dry_run)?,
                ));
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
        let write = match kind {
            PatchKind::Apply => Write::Apply(&patch),
            PatchKind::Merge | PatchKind::Json => Write::Update,
        };
        Ok((
            200,
            self.commit(target, name, Some(old), new, write, dry_run)?,
        ))
    }

    /// The object a write makes of `old` and the written document: only `.status` through the
    /// status subresource; everything but `.status` through the main resource of a type that
    /// has one; server-owned metadata (and `managedFields`, which the commit recomputes) always
    /// from `old`.
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
        m.shift_remove("selfLink");
        for field in [
            "managedFields",
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

    /// Stores `new` (after `old`, if any) with a fresh resourceVersion and records the event;
    /// a no-op write changes nothing. Who owns which fields is recorded first (an apply that
    /// conflicts is refused here, before anything changes). An object left terminating with no
    /// finalizers goes.
    fn commit(
        &mut self,
        target: &Target,
        name: &str,
        old: Option<Value>,
        new: Value,
        write: Write<'_>,
        dry_run: bool,
    ) -> Result<Value> {
        let rt = &target.rt;
        let mut new = Self::view(rt, &target.version, &new);
        self.defaults(rt, &mut new)?;
        fields::record(target, old.as_ref(), &mut new, write)?;
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
}
