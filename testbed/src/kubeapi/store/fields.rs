//! Field ownership, as the API server keeps it in `metadata.managedFields` (server-side apply).
//!
//! Every write records who set which fields: one entry per field manager, operation (`Apply` or
//! `Update`) and subresource, with its `apiVersion`, `time`, `fieldsType: FieldsV1` and the
//! fields in the server's `f:` set notation (`{"f:spec": {"f:replicas": {}}}`, `".": {}` where
//! a field is owned and has owned fields under it too).
//!
//! - A create, replace or merge/strategic/JSON patch is an `Update`: its manager comes to own
//!   every field whose value it changed (a create: every field), and every other manager loses
//!   those fields (an update always wins).
//! - An apply (`application/apply-patch+yaml`) makes its manager's `Apply` entry the fields of
//!   the applied configuration. When the apply would change the value of a field another entry
//!   owns, it is refused with 409 `Conflict`, worded as the API server words it (`Apply failed
//!   with 1 conflict: conflict with "helm" using apps/v1: .spec.replicas`), with one cause per
//!   field (`reason: FieldManagerConflict`, the key `metav1.StatusCause` gives its type on the
//!   wire), unless `force=true`, which moves those fields to the applier. Setting a field to the
//!   value it already has is no conflict: the applier then shares it.
//! - The status subresource is owned apart: a write to `/status` records fields under `status`
//!   only (its entries carry `subresource: status`), and a write to the main resource of a type
//!   with a status subresource records none there.
//!
//! Simplified: the fields are the leaves (scalars, lists, empty objects); lists are atomic (a
//! list is one field, no `k:`/`v:` item keys); an apply does not remove fields its manager
//! stopped applying; the manager of a write without `fieldManager` is the first token of its
//! `User-Agent` (up to `/`), else `unknown`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{ApiError, Result, Target, meta_mut, now};

/// Who writes: the request's field manager, and `force` (apply only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Writer {
    pub manager: String,
    pub force: bool,
}

impl Default for Writer {
    /// The server's own writes (the built-in namespaces).
    fn default() -> Writer {
        Writer {
            manager: "kube-apiserver".into(),
            force: false,
        }
    }
}

impl Writer {
    /// The manager of a request: `fieldManager`, else the first token of the user agent.
    pub fn of_request(
        field_manager: Option<&str>,
        user_agent: Option<&str>,
        force: bool,
    ) -> Writer {
        let manager = field_manager
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                user_agent
                    .and_then(|ua| ua.split('/').next())
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(|m| m.chars().take(128).collect())
            })
            .unwrap_or_else(|| "unknown".into());
        Writer { manager, force }
    }
}

/// What kind of write records ownership.
#[derive(Debug, Clone, Copy)]
pub(super) enum Write<'a> {
    /// Create, replace, merge/strategic/JSON patch.
    Update,
    /// Server-side apply of this configuration.
    Apply(&'a Value),
}

type Path = Vec<String>;
type Fields = BTreeSet<Path>;

/// Metadata the server owns, never in a field set.
const SERVER_METADATA: [&str; 10] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Which part of an object a write may own.
#[derive(Debug, Clone, Copy)]
struct Scope {
    /// A write to `/status`: only `status`.
    status_write: bool,
    /// The type has a status subresource: its main resource owns no `status`.
    status_apart: bool,
}

impl Scope {
    fn of(target: &Target) -> Scope {
        Scope {
            status_write: target.status,
            status_apart: target.rt.status,
        }
    }

    fn holds(self, path: &[String]) -> bool {
        let first = path.first().map(String::as_str);
        if matches!(first, Some("apiVersion" | "kind") | None) {
            return false;
        }
        if first == Some("metadata")
            && path
                .get(1)
                .is_some_and(|f| SERVER_METADATA.contains(&f.as_str()))
        {
            return false;
        }
        let status = first == Some("status");
        if self.status_write {
            status
        } else {
            !(status && self.status_apart)
        }
    }
}

fn collect(value: &Value, path: &mut Path, out: &mut Fields) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(key.clone());
                collect(child, path, out);
                path.pop();
            }
        }
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

/// The fields (leaves) of a document that `scope` may own.
fn leaves(value: &Value, scope: Scope) -> Fields {
    let mut out = Fields::new();
    collect(value, &mut Vec::new(), &mut out);
    out.retain(|p| scope.holds(p));
    out
}

fn at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |here, key| here.get(key))
}

/// One path is the other or under it.
fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// `.spec.replicas`, as the API server prints a field path.
fn printed(path: &[String]) -> String {
    path.iter().map(|p| format!(".{p}")).collect()
}

/// The `FieldsV1` document of a set.
fn encode(fields: &Fields) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut here = &mut root;
        for key in path {
            let node = here.entry(format!("f:{key}")).or_insert_with(|| json!({}));
            here = node.as_object_mut().expect("set nodes are objects");
        }
    }
    // An owned field with owned fields under it is marked `.`.
    fn mark(node: &mut Map<String, Value>, fields: &Fields, path: &mut Path) {
        for (key, child) in node.iter_mut() {
            let Some(name) = key.strip_prefix("f:") else {
                continue;
            };
            path.push(name.to_owned());
            if let Some(map) = child.as_object_mut() {
                if !map.is_empty() && fields.contains(path) {
                    map.insert(".".into(), json!({}));
                }
                mark(map, fields, path);
            }
            path.pop();
        }
    }
    mark(&mut root, fields, &mut Vec::new());
    Value::Object(root)
}

fn decode_into(node: &Value, path: &mut Path, out: &mut Fields) {
    let Some(map) = node.as_object() else {
        return;
    };
    if (map.is_empty() || map.contains_key(".")) && !path.is_empty() {
        out.insert(path.clone());
    }
    for (key, child) in map {
        if let Some(name) = key.strip_prefix("f:") {
            path.push(name.to_owned());
            decode_into(child, path, out);
            path.pop();
        }
    }
}

/// The set a `FieldsV1` document holds.
fn decode(fields_v1: &Value) -> Fields {
    let mut out = Fields::new();
    let mut path = Vec::new();
    if let Some(map) = fields_v1.as_object() {
        for (key, child) in map {
            if let Some(name) = key.strip_prefix("f:") {
                path.push(name.to_owned());
                decode_into(child, &mut path, &mut out);
                path.pop();
            }
        }
    }
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    time: Value,
    fields: Fields,
}

impl Entry {
    fn parse(value: &Value) -> Option<Entry> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Entry {
            manager: text("manager")?,
            operation: text("operation")?,
            api_version: text("apiVersion").unwrap_or_default(),
            subresource: text("subresource"),
            time: value.get("time").cloned().unwrap_or(Value::Null),
            fields: value.get("fieldsV1").map(decode).unwrap_or_default(),
        })
    }

    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(&self.fields),
        });
        if let Some(sub) = &self.subresource {
            entry["subresource"] = json!(sub);
        }
        entry
    }

    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// The manager as a conflict names it: `"helm" using apps/v1` for an update, `"kubectl"`
    /// for an apply, with ` with subresource "status"` when it wrote a subresource.
    fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// The 409 an apply gets when it would change fields other managers own.
fn conflict_error(conflicts: &[(String, Path)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(manager, path)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {manager}"),
                "field": printed(path),
            })
        })
        .collect();
    let message = if let [(manager, path)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {manager}: {}",
            printed(path)
        )
    } else {
        let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for manager in managers {
            lines.push(format!("conflicts with {manager}:"));
            for (_, path) in conflicts.iter().filter(|(m, _)| m == manager) {
                lines.push(format!("- {}", printed(path)));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut error = ApiError::new(409, "Conflict", message);
    error.details = Some(json!({"causes": causes}));
    error
}

/// Records in `new` (the object about to be stored, after `old`) who owns which fields after
/// this write; refuses an apply that would change others' fields without `force`.
pub(super) fn record(
    target: &Target,
    old: Option<&Value>,
    new: &mut Value,
    write: Write<'_>,
) -> Result<()> {
    let scope = Scope::of(target);
    let writer = &target.writer;
    let subresource = target.status.then_some("status");
    let api_version = target.rt.api_version(&target.version);
    let before = old.cloned().unwrap_or(Value::Null);
    let previous: Vec<Entry> = before
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Entry::parse).collect())
        .unwrap_or_default();
    let changed: Fields = leaves(&before, scope)
        .union(&leaves(new, scope))
        .filter(|p| at(&before, p) != at(new, p))
        .cloned()
        .collect();
    let operation = match write {
        Write::Update => "Update",
        Write::Apply(_) => "Apply",
    };
    let mine = |e: &Entry| e.is(&writer.manager, operation, subresource);

    if let Write::Apply(config) = write {
        let applied = leaves(config, scope);
        let mut conflicts: Vec<(String, Path)> = Vec::new();
        for entry in previous.iter().filter(|e| !mine(e)) {
            for owned in &entry.fields {
                let clash = applied.iter().any(|p| {
                    overlaps(p, owned) && {
                        let deeper = if p.len() >= owned.len() { p } else { owned };
                        at(&before, deeper) != at(new, deeper)
                    }
                });
                if clash {
                    conflicts.push((entry.describe(), owned.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !writer.force {
            return Err(conflict_error(&conflicts));
        }
    }

    let present = |p: &Path| at(new, p).is_some();
    let mut entries: Vec<Entry> = Vec::new();
    let mut own: Option<(usize, Entry)> = None;
    for entry in previous {
        if mine(&entry) {
            own = Some((entries.len(), entry));
            continue;
        }
        let mut kept = entry.clone();
        kept.fields
            .retain(|q| present(q) && !changed.iter().any(|c| overlaps(c, q)));
        if kept.fields != entry.fields {
            kept.time = json!(now());
        }
        if !kept.fields.is_empty() {
            entries.push(kept);
        }
    }
    let fields: Fields = match write {
        Write::Update => own
            .as_ref()
            .map(|(_, e)| e.fields.clone())
            .unwrap_or_default()
            .into_iter()
            .chain(changed.iter().cloned())
            .filter(|p| present(p))
            .collect(),
        Write::Apply(config) => leaves(config, scope).into_iter().filter(present).collect(),
    };
    let unchanged = own
        .as_ref()
        .map(|(_, e)| e)
        .filter(|e| e.fields == fields && e.api_version == api_version);
    let entry = match unchanged {
        Some(same) => same.clone(),
        None => Entry {
            manager: writer.manager.clone(),
            operation: operation.into(),
            api_version,
            subresource: subresource.map(str::to_owned),
            time: json!(now()),
            fields,
        },
    };
    if !entry.fields.is_empty() {
        // The writer's entry where it was, a new one last.
        let index = own.map_or(entries.len(), |(i, _)| i);
        entries.insert(index, entry);
    }
    let m = meta_mut(new);
    if entries.is_empty() {
        m.shift_remove("managedFields");
    } else {
        m.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&str]) -> Fields {
        paths
            .iter()
            .map(|p| p.split('.').map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn fields_v1_round_trips() {
        let fields = set(&[
            "metadata.labels.app",
            "spec.replicas",
            "spec.template",
            "spec.template.spec.containers",
        ]);
        let encoded = encode(&fields);
        assert_eq!(
            encoded,
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {".": {}, "f:spec": {"f:containers": {}}}}
            })
        );
        assert_eq!(decode(&encoded), fields);
    }

    #[test]
    fn managers_are_named_as_the_api_server_names_them() {
        let writer = Writer::of_request(None, Some("kubectl/v1.33.0 (linux/amd64)"), false);
        assert_eq!(writer.manager, "kubectl");
        assert_eq!(Writer::of_request(None, None, false).manager, "unknown");
        assert_eq!(
            Writer::of_request(Some("helm"), Some("kubectl/v1"), true),
            Writer {
                manager: "helm".into(),
                force: true
            }
        );
        let entry = Entry {
            manager: "helm".into(),
            operation: "Update".into(),
            api_version: "apps/v1".into(),
            subresource: None,
            time: Value::Null,
            fields: Fields::new(),
        };
        assert_eq!(entry.describe(), r#""helm" using apps/v1"#);
        let error = conflict_error(&[(entry.describe(), vec!["spec".into(), "replicas".into()])]);
        assert_eq!(
            error.message,
            r#"Apply failed with 1 conflict: conflict with "helm" using apps/v1: .spec.replicas"#
        );
        let two = conflict_error(&[
            (r#""b""#.into(), vec!["x".into()]),
            (r#""a""#.into(), vec!["y".into()]),
            (r#""b""#.into(), vec!["z".into()]),
        ]);
        assert_eq!(
            two.message,
            "Apply failed with 3 conflicts: conflicts with \"a\":\n- .y\nconflicts with \"b\":\n- .x\n- .z"
        );
        assert_eq!(two.details.unwrap()["causes"][0]["field"], ".x");
    }
}
