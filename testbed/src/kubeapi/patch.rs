//! The patch forms the stand-in understands: JSON merge patch (RFC 7386, also used for
//! strategic merge patch and for server-side apply) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

/// Applies a JSON merge patch (RFC 7386) to `target`: objects merge key by key, `null` removes
/// a key, anything else (arrays included) replaces what was there.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(fields) = target else {
        return;
    };
    for (key, change) in changes {
        if change.is_null() {
            fields.shift_remove(key);
        } else {
            merge_patch(fields.entry(key.clone()).or_insert(Value::Null), change);
        }
    }
}

/// Why a JSON patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonPatchError {
    /// The document is not an array of operations, or an operation is malformed.
    Malformed(String),
    /// An operation refers to a location that does not exist, or a `test` failed.
    Failed(String),
}

impl std::fmt::Display for JsonPatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonPatchError::Malformed(m) | JsonPatchError::Failed(m) => f.write_str(m),
        }
    }
}

/// Applies a JSON patch (RFC 6902: add, remove, replace, move, copy, test) to a copy of
/// `target`; on any failure the target is left as it was.
pub(crate) fn json_patch(target: &Value, patch: &Value) -> Result<Value, JsonPatchError> {
    let malformed = |m: &str| JsonPatchError::Malformed(m.to_owned());
    let operations = patch
        .as_array()
        .ok_or_else(|| malformed("a JSON patch must be an array of operations"))?;
    let mut doc = target.clone();
    for (index, operation) in operations.iter().enumerate() {
        let op = operation
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&format!("operation {index} has no `op`")))?;
        let path = operation
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&format!("operation {index} has no `path`")))?;
        let tokens = pointer_tokens(path)?;
        let value = || {
            operation
                .get("value")
                .cloned()
                .ok_or_else(|| malformed(&format!("operation {index} ({op}) has no `value`")))
        };
        let from = || -> Result<Vec<String>, JsonPatchError> {
            let from = operation
                .get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed(&format!("operation {index} ({op}) has no `from`")))?;
            pointer_tokens(from)
        };
        match op {
            "add" => add(&mut doc, &tokens, value()?)?,
            "remove" => {
                remove(&mut doc, &tokens)?;
            }
            "replace" => {
                remove(&mut doc, &tokens)?;
                add(&mut doc, &tokens, value()?)?;
            }
            "move" => {
                let moved = remove(&mut doc, &from()?)?;
                add(&mut doc, &tokens, moved)?;
            }
            "copy" => {
                let copied = get(&doc, &from()?)?.clone();
                add(&mut doc, &tokens, copied)?;
            }
            "test" => {
                let expected = value()?;
                if get(&doc, &tokens)? != &expected {
                    return Err(JsonPatchError::Failed(format!(
                        "test operation at {path} failed: the value is not {expected}"
                    )));
                }
            }
            other => return Err(malformed(&format!("unknown JSON patch op `{other}`"))),
        }
    }
    Ok(doc)
}

/// The reference tokens of a JSON pointer (RFC 6901), unescaped.
fn pointer_tokens(pointer: &str) -> Result<Vec<String>, JsonPatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| {
        JsonPatchError::Malformed(format!("`{pointer}` is not a JSON pointer (no leading /)"))
    })?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn missing(tokens: &[String]) -> JsonPatchError {
    JsonPatchError::Failed(format!("no value at /{}", tokens.join("/")))
}

fn array_index(token: &str, len: usize, allow_end: bool) -> Option<usize> {
    if token == "-" {
        return allow_end.then_some(len);
    }
    if token.len() > 1 && token.starts_with('0') {
        return None;
    }
    let index: usize = token.parse().ok()?;
    let limit = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    (index <= limit && (allow_end || len > 0)).then_some(index)
}

fn get<'a>(doc: &'a Value, tokens: &[String]) -> Result<&'a Value, JsonPatchError> {
    let mut here = doc;
    for token in tokens {
        here = match here {
            Value::Object(map) => map.get(token),
            Value::Array(items) => array_index(token, items.len(), false).map(|i| &items[i]),
            _ => None,
        }
        .ok_or_else(|| missing(tokens))?;
    }
    Ok(here)
}

fn parent_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, JsonPatchError> {
    let mut here = doc;
    for token in &tokens[..tokens.len() - 1] {
        here = match here {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => {
                let len = items.len();
                array_index(token, len, false).map(move |i| &mut items[i])
            }
            _ => None,
        }
        .ok_or_else(|| missing(tokens))?;
    }
    Ok(here)
}

fn add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), JsonPatchError> {
    let Some(last) = tokens.last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, tokens)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(last, items.len(), true).ok_or_else(|| missing(tokens))?;
            items.insert(index, value);
            Ok(())
        }
        _ => Err(missing(tokens)),
    }
}

fn remove(doc: &mut Value, tokens: &[String]) -> Result<Value, JsonPatchError> {
    let Some(last) = tokens.last() else {
        return Ok(std::mem::take(doc));
    };
    match parent_mut(doc, tokens)? {
        Value::Object(map) => map.shift_remove(last).ok_or_else(|| missing(tokens)),
        Value::Array(items) => {
            let index = array_index(last, items.len(), false).ok_or_else(|| missing(tokens))?;
            Ok(items.remove(index))
        }
        _ => Err(missing(tokens)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // The examples of RFC 7386, appendix A, a few at a time.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            let mut doc = target.clone();
            merge_patch(&mut doc, &patch);
            assert_eq!(doc, expected, "{target} + {patch}");
        }
    }

    #[test]
    fn json_patch_operations() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [80, 443]}});
        let patched = json_patch(
            &doc,
            &json!([
                {"op": "test", "path": "/metadata/labels/a", "value": "1"},
                {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
                {"op": "remove", "path": "/metadata/labels/a"},
                {"op": "replace", "path": "/spec/ports/0", "value": 8080},
                {"op": "add", "path": "/spec/ports/-", "value": 9090},
                {"op": "add", "path": "/spec/ports/1", "value": 1},
                {"op": "copy", "from": "/spec/ports/0", "path": "/spec/first"},
                {"op": "move", "from": "/spec/first", "path": "/spec/moved"}
            ]),
        )
        .unwrap();
        assert_eq!(
            patched,
            json!({"metadata": {"labels": {"b/c": "2"}}, "spec": {"ports": [8080, 1, 443, 9090], "moved": 8080}})
        );
    }

    #[test]
    fn json_patch_failures_leave_the_document_alone() {
        let doc = json!({"a": {"b": 1}, "list": [1]});
        let failures = [
            json!([{"op": "test", "path": "/a/b", "value": 2}]),
            json!([{"op": "remove", "path": "/a/c"}]),
            json!([{"op": "replace", "path": "/x", "value": 1}]),
            json!([{"op": "add", "path": "/missing/deeper", "value": 1}]),
            json!([{"op": "add", "path": "/list/5", "value": 1}]),
            json!([{"op": "remove", "path": "/list/01"}]),
        ];
        for patch in failures {
            assert!(
                matches!(json_patch(&doc, &patch), Err(JsonPatchError::Failed(_))),
                "{patch}"
            );
        }
        let malformed = [
            json!({"op": "add"}),
            json!([{"path": "/a"}]),
            json!([{"op": "add", "path": "/a"}]),
            json!([{"op": "jump", "path": "/a"}]),
            json!([{"op": "add", "path": "a", "value": 1}]),
        ];
        for patch in malformed {
            assert!(
                matches!(json_patch(&doc, &patch), Err(JsonPatchError::Malformed(_))),
                "{patch}"
            );
        }
        // The whole document can be replaced through the empty pointer.
        assert_eq!(
            json_patch(&doc, &json!([{"op": "replace", "path": "", "value": 3}])).unwrap(),
            json!(3)
        );
    }
}
