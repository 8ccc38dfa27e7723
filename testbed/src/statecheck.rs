//! What a state file may hold after its step was SIGKILLed: the document it held before the run,
//! byte for byte, or a complete document that run wrote (the steps write through a temporary
//! file and a rename, so a reader never sees a part of one).
//!
//! "Complete" is checked against the contract (DESIGN-NOTES, "The state document"), not just
//! "some JSON": one JSON object written whole (pretty, ending in a newline), `schemaVersion`
//! first and a positive integer (the old document's, when it had one), every key the killed run
//! does not own exactly as it was before, no key the run may not write, no `error` record (a
//! SIGKILL leaves none), and each section the run owns an object or an array.

use serde_json::{Map, Value};

const SCHEMA_KEY: &str = "schemaVersion";
const TIMINGS_KEY: &str = "timings";
const ERROR_KEY: &str = "error";

/// Checks `text`, the state file after a kill, against `old`, the file before the run (empty
/// when there was none). `owned` are the sections the killed run may write (its step's, or every
/// step's for a `make` target running several); `timings` is always allowed. `Err` says why the
/// file is neither.
pub fn after_kill(text: &str, old: &str, owned: &[&str]) -> Result<(), String> {
    if text == old {
        return Ok(());
    }
    if text.trim().is_empty() {
        return Err("the file is empty, and was not before".into());
    }
    let doc = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(doc)) => doc,
        Ok(other) => return Err(format!("not a JSON object but {other}")),
        Err(e) => return Err(format!("not JSON: {e}")),
    };
    if !text.ends_with("}\n") {
        return Err(
            "the document does not end as a written one does (`}` and a newline): truncated".into(),
        );
    }
    let before: Map<String, Value> = if old.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str::<Value>(old) {
            Ok(Value::Object(before)) => before,
            _ => return Err("the old document is not a JSON object: nothing to compare".into()),
        }
    };
    match doc.iter().next() {
        Some((key, _)) if key == SCHEMA_KEY => {}
        _ => return Err(format!("`{SCHEMA_KEY}` is not the first key")),
    }
    let version = doc[SCHEMA_KEY].as_u64().filter(|v| *v > 0).ok_or_else(|| {
        format!(
            "`{SCHEMA_KEY}` is {}, not a positive integer",
            doc[SCHEMA_KEY]
        )
    })?;
    if let Some(was) = before.get(SCHEMA_KEY)
        && was.as_u64() != Some(version)
    {
        return Err(format!("`{SCHEMA_KEY}` changed from {was} to {version}"));
    }
    if doc.contains_key(ERROR_KEY) && !before.contains_key(ERROR_KEY) {
        return Err("it carries an `error` record, which a killed run cannot write".into());
    }
    let mine = |key: &str| owned.contains(&key) || key == TIMINGS_KEY;
    for (key, was) in &before {
        if mine(key) || key == ERROR_KEY {
            continue;
        }
        match doc.get(key) {
            Some(now) if now == was => {}
            Some(now) => {
                return Err(format!(
                    "`{key}`, not the killed run's, changed from {was} to {now}"
                ));
            }
            None => return Err(format!("`{key}`, not the killed run's, is gone")),
        }
    }
    for (key, value) in &doc {
        if before.contains_key(key) && !mine(key) {
            continue;
        }
        if !mine(key) && key != SCHEMA_KEY {
            return Err(format!(
                "`{key}` is new, and the killed run may write only {owned:?} and `{TIMINGS_KEY}`"
            ));
        }
        if owned.contains(&key.as_str()) && !(value.is_object() || value.is_array()) {
            return Err(format!(
                "section `{key}` is {value}, not an object or a list"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str =
        "{\n  \"schemaVersion\": 1,\n  \"cluster\": {\n    \"name\": \"e2e\"\n  }\n}\n";
    const NEW: &str = "{\n  \"schemaVersion\": 1,\n  \"cluster\": {\n    \"name\": \"e2e\"\n  },\n  \"oidc\": {\n    \"providerArn\": \"arn:aws:iam::1:oidc-provider/x\"\n  },\n  \"timings\": {}\n}\n";

    #[test]
    fn the_old_document_or_a_complete_new_one_passes() {
        assert_eq!(after_kill(OLD, OLD, &["oidc"]), Ok(()));
        assert_eq!(after_kill(NEW, OLD, &["oidc"]), Ok(()));
        // No file before, none after; or a first document.
        assert_eq!(after_kill("", "", &["oidc"]), Ok(()));
        assert_eq!(after_kill(OLD, "", &["cluster"]), Ok(()));
        // A delete may drop its own section.
        assert_eq!(after_kill(OLD, NEW, &["oidc"]), Ok(()));
    }

    #[test]
    fn truncated_or_foreign_documents_fail() {
        let cases = [
            ("", "empty"),
            (&NEW[..NEW.len() / 2], "not JSON"),
            (&NEW[..NEW.len() - 1], "truncated"),
            ("garbage}\n", "not JSON"),
            ("[1, 2]\n", "not a JSON object"),
            (
                "{\n  \"cluster\": {},\n  \"schemaVersion\": 1\n}\n",
                "first key",
            ),
            ("{\n  \"schemaVersion\": \"1\"\n}\n", "positive integer"),
            (
                "{\n  \"schemaVersion\": 2,\n  \"cluster\": {\n    \"name\": \"e2e\"\n  }\n}\n",
                "changed from 1 to 2",
            ),
            // Another step's section changed, or lost.
            (
                "{\n  \"schemaVersion\": 1,\n  \"cluster\": {\n    \"name\": \"other\"\n  }\n}\n",
                "not the killed run's, changed",
            ),
            ("{\n  \"schemaVersion\": 1,\n  \"oidc\": {}\n}\n", "is gone"),
            // A key the run does not own, an error record, a section that is no section.
            (
                "{\n  \"schemaVersion\": 1,\n  \"cluster\": {\n    \"name\": \"e2e\"\n  },\n  \"sgStack\": {}\n}\n",
                "is new",
            ),
            (
                "{\n  \"schemaVersion\": 1,\n  \"cluster\": {\n    \"name\": \"e2e\"\n  },\n  \"error\": {}\n}\n",
                "`error` record",
            ),
            (
                "{\n  \"schemaVersion\": 1,\n  \"cluster\": {\n    \"name\": \"e2e\"\n  },\n  \"oidc\": 3\n}\n",
                "not an object",
            ),
        ];
        for (text, why) in cases {
            let err = after_kill(text, OLD, &["oidc"]).expect_err(text);
            assert!(err.contains(why), "{text:?}: {err} (expected: {why})");
        }
    }
}
