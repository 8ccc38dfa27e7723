//! The state document every step reads and writes.
//!
//! One JSON object: `schemaVersion` first, then one camelCase section per step, `timings`, and
//! at most one `error` record. A step reads every section, writes only its own (and its timing),
//! and keeps every other key exactly as it found it, in the same order.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The schema version this build writes and the newest it understands.
pub const SCHEMA_VERSION: u64 = 1;

/// Key of the schema version.
pub const SCHEMA_KEY: &str = "schemaVersion";
/// Key of the error record a failed step leaves.
pub const ERROR_KEY: &str = "error";
/// Key of the per-step timings.
pub const TIMINGS_KEY: &str = "timings";

/// Why a state document was refused. Every variant is a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the state document is not valid JSON ({source}); give the output of an earlier step, or nothing for a new document"
    )]
    Parse { source: serde_json::Error },
    #[error("the state document must be a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error(
        "the state document has no `schemaVersion`; is it the output of an eks-fargate-alb step?"
    )]
    NoSchemaVersion,
    #[error("`schemaVersion` must be a positive integer, found {found}")]
    BadSchemaVersion { found: String },
    #[error(
        "the state document has schemaVersion {found}, newer than the {SCHEMA_VERSION} this binary knows; \
         upgrade eks-fargate-alb (or use the binary that wrote it)"
    )]
    Newer { found: u64 },
    #[error("section `{section}` of the state document is malformed: {source}")]
    Section {
        section: String,
        source: serde_json::Error,
    },
}

/// The error record a failed step leaves in the document, so that the next step in a pipe stops
/// and the teardown still finds what was made.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRecord {
    /// The section name of the step that failed (`sgStack`, ...).
    pub step: String,
    /// The sub-command that failed (`create`, `delete`, ...).
    pub command: String,
    /// The error, with its causes.
    pub message: String,
    /// The exit code the step ended with.
    pub exit_code: u8,
    /// When it failed (RFC 3339, UTC).
    pub at: String,
}

/// A state document.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    doc: Map<String, Value>,
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    /// A new, empty document.
    pub fn new() -> Self {
        let mut doc = Map::new();
        doc.insert(SCHEMA_KEY.into(), Value::from(SCHEMA_VERSION));
        Self { doc }
    }

    /// Parses a document; empty or all-whitespace input is a new document.
    pub fn parse(text: &str) -> Result<Self, StateError> {
        if text.trim().is_empty() {
            return Ok(Self::new());
        }
        let value: Value =
            serde_json::from_str(text).map_err(|source| StateError::Parse { source })?;
        let Value::Object(doc) = value else {
            return Err(StateError::NotAnObject {
                found: json_kind(&value),
            });
        };
        let version = doc.get(SCHEMA_KEY).ok_or(StateError::NoSchemaVersion)?;
        let found =
            version
                .as_u64()
                .filter(|v| *v > 0)
                .ok_or_else(|| StateError::BadSchemaVersion {
                    found: version.to_string(),
                })?;
        if found > SCHEMA_VERSION {
            return Err(StateError::Newer { found });
        }
        Ok(Self { doc })
    }

    /// The document as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(&self.doc).expect("a JSON map always serializes");
        text.push('\n');
        text
    }

    /// The raw value of a section, if present.
    pub fn raw(&self, section: &str) -> Option<&Value> {
        self.doc.get(section)
    }

    /// A section read into a typed struct; `None` when absent or `null`.
    pub fn section<T: DeserializeOwned>(&self, section: &str) -> Result<Option<T>, StateError> {
        match self.doc.get(section) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|source| StateError::Section {
                    section: section.to_owned(),
                    source,
                }),
        }
    }

    /// Writes a section, in place when it exists (its position in the document is kept).
    pub fn set_section<T: Serialize>(&mut self, section: &str, value: &T) {
        let value = serde_json::to_value(value).expect("state sections always serialize");
        self.doc.insert(section.to_owned(), value);
    }

    /// Removes a section; true when it was there.
    pub fn clear_section(&mut self, section: &str) -> bool {
        self.doc.shift_remove(section).is_some()
    }

    /// A string field of a section (`cluster.name`, ...), if present.
    pub fn str_at(&self, section: &str, key: &str) -> Option<&str> {
        self.doc.get(section)?.get(key)?.as_str()
    }

    /// The AWS accounts the document records what was made in: every `accountId` and the
    /// account of every ARN held as a whole value (`arn:aws:iam::123456789012:role/x`), outside
    /// the error record and the timings. Only 12-digit accounts count (not the `aws` of AWS
    /// managed policies).
    pub fn accounts(&self) -> std::collections::BTreeSet<String> {
        fn walk(value: &Value, key: Option<&str>, out: &mut std::collections::BTreeSet<String>) {
            match value {
                Value::String(text) => {
                    let account = match key {
                        Some("accountId") => Some(text.as_str()),
                        _ => crate::iam::partition_and_account(text).map(|(_, a)| a),
                    };
                    if let Some(account) = account.filter(|a| is_account_id(a)) {
                        out.insert(account.to_owned());
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, None, out)),
                Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, Some(k), out)),
                _ => {}
            }
        }
        let mut out = std::collections::BTreeSet::new();
        for (key, value) in &self.doc {
            if key != ERROR_KEY && key != TIMINGS_KEY {
                walk(value, None, &mut out);
            }
        }
        out
    }

    /// The error record, if an earlier step failed.
    pub fn error(&self) -> Option<ErrorRecord> {
        let value = self.doc.get(ERROR_KEY)?;
        Some(
            serde_json::from_value(value.clone()).unwrap_or_else(|_| ErrorRecord {
                step: "unknown".into(),
                command: "unknown".into(),
                message: value.to_string(),
                exit_code: 1,
                at: String::new(),
            }),
        )
    }

    /// Sets the error record (replacing any earlier one).
    pub fn set_error(&mut self, record: &ErrorRecord) {
        self.set_section(ERROR_KEY, record);
    }

    /// Removes the error record; the earlier record when there was one.
    pub fn take_error(&mut self) -> Option<ErrorRecord> {
        let record = self.error();
        self.doc.shift_remove(ERROR_KEY);
        record
    }

    /// Records how long `step`'s `command` took, under `timings.<step>.<command>`.
    pub fn record_timing(&mut self, step: &str, command: &str, started_at: &str, seconds: f64) {
        let timings = self
            .doc
            .entry(TIMINGS_KEY)
            .or_insert_with(|| Value::Object(Map::new()));
        if !timings.is_object() {
            *timings = Value::Object(Map::new());
        }
        let per_step = timings
            .as_object_mut()
            .expect("made an object above")
            .entry(step)
            .or_insert_with(|| Value::Object(Map::new()));
        if !per_step.is_object() {
            *per_step = Value::Object(Map::new());
        }
        let rounded = (seconds * 1000.0).round() / 1000.0;
        per_step
            .as_object_mut()
            .expect("made an object above")
            .insert(
                command.to_owned(),
                serde_json::json!({ "startedAt": started_at, "seconds": rounded }),
            );
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Twelve digits: an AWS account id.
fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn accounts_are_the_recorded_ids_and_arns() {
        let state = State::parse(
            r#"{"schemaVersion":1,
                "cluster":{"name":"c","accountId":"111111111111","arn":"arn:aws:eks:us-east-2:111111111111:cluster/c"},
                "sgStack":{"stackId":"arn:aws:cloudformation:us-east-2:222222222222:stack/s/1"},
                "irsa":[{"roleArn":"arn:aws-cn:iam::333333333333:role/r","policyArns":["arn:aws:iam::aws:policy/P"]}],
                "oidc":{"issuer":"https://x/arn:aws:iam::444444444444:role/not-a-whole-value","providerArn":"arn:aws:iam::1:oidc-provider/short"},
                "error":{"step":"s","command":"c","message":"arn:aws:iam::555555555555:user/u","exitCode":1,"at":""},
                "timings":{"x":"arn:aws:iam::666666666666:role/t"}}"#,
        )
        .unwrap();
        let found: Vec<String> = state.accounts().into_iter().collect();
        assert_eq!(found, ["111111111111", "222222222222", "333333333333"]);
        assert!(State::new().accounts().is_empty());
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Demo {
        stack_name: String,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[test]
    fn empty_input_is_a_new_document() {
        for text in ["", "  \n\t"] {
            let state = State::parse(text).unwrap();
            assert_eq!(state.to_json(), "{\n  \"schemaVersion\": 1\n}\n");
        }
    }

    #[test]
    fn unknown_sections_and_keys_pass_through_in_order() {
        let text = r#"{"schemaVersion":1,"zeta":{"b":1,"a":[1,2]},"sgStack":{"stackName":"s","future":true},"alpha":"x"}"#;
        let mut state = State::parse(text).unwrap();
        let mut demo: Demo = state.section("sgStack").unwrap().unwrap();
        assert_eq!(demo.extra.get("future"), Some(&Value::Bool(true)));
        demo.stack_name = "t".into();
        state.set_section("sgStack", &demo);
        let out: Value = serde_json::from_str(&state.to_json()).unwrap();
        let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["schemaVersion", "zeta", "sgStack", "alpha"]);
        assert_eq!(out["zeta"], serde_json::json!({"b":1,"a":[1,2]}));
        assert_eq!(
            out["sgStack"],
            serde_json::json!({"stackName":"t","future":true})
        );
        let inner: Vec<_> = out["zeta"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(inner, ["b", "a"]);
    }

    #[test]
    fn refuses_bad_documents() {
        assert!(matches!(State::parse("{"), Err(StateError::Parse { .. })));
        assert!(matches!(
            State::parse("[1]"),
            Err(StateError::NotAnObject { found: "an array" })
        ));
        assert!(matches!(
            State::parse("{}"),
            Err(StateError::NoSchemaVersion)
        ));
        assert!(matches!(
            State::parse(r#"{"schemaVersion":"1"}"#),
            Err(StateError::BadSchemaVersion { .. })
        ));
        assert!(matches!(
            State::parse(r#"{"schemaVersion":0}"#),
            Err(StateError::BadSchemaVersion { .. })
        ));
        let newer = State::parse(r#"{"schemaVersion":2}"#).unwrap_err();
        assert!(matches!(newer, StateError::Newer { found: 2 }));
        assert!(newer.to_string().contains("upgrade"));
    }

    #[test]
    fn malformed_section_names_the_section() {
        let state = State::parse(r#"{"schemaVersion":1,"sgStack":{"stackName":5}}"#).unwrap();
        let err = state.section::<Demo>("sgStack").unwrap_err();
        assert!(err.to_string().contains("`sgStack`"), "{err}");
    }

    #[test]
    fn error_record_round_trips_and_is_taken() {
        let mut state = State::new();
        assert!(state.error().is_none());
        let record = ErrorRecord {
            step: "sgStack".into(),
            command: "create".into(),
            message: "boom".into(),
            exit_code: 1,
            at: "2026-11-25T00:00:00Z".into(),
        };
        state.set_error(&record);
        assert_eq!(state.error(), Some(record.clone()));
        assert_eq!(state.take_error(), Some(record));
        assert!(state.raw(ERROR_KEY).is_none());
    }

    #[test]
    fn foreign_error_record_still_counts_as_an_error() {
        let state = State::parse(r#"{"schemaVersion":1,"error":"something broke"}"#).unwrap();
        let record = state.error().unwrap();
        assert!(record.message.contains("something broke"));
    }

    #[test]
    fn timings_are_kept_per_step_and_command() {
        let mut state = State::new();
        state.record_timing("sgStack", "create", "2026-11-25T00:00:00Z", 1.23456);
        state.record_timing("sgStack", "delete", "2026-11-25T00:01:00Z", 2.0);
        state.record_timing("cluster", "create", "2026-11-25T00:02:00Z", 3.0);
        let timings = state.raw(TIMINGS_KEY).unwrap();
        assert_eq!(timings["sgStack"]["create"]["seconds"], 1.235);
        assert_eq!(timings["sgStack"]["delete"]["seconds"], 2.0);
        assert_eq!(
            timings["cluster"]["create"]["startedAt"],
            "2026-11-25T00:02:00Z"
        );
    }

    #[test]
    fn clear_section_removes_only_that_section() {
        let mut state =
            State::parse(r#"{"schemaVersion":1,"sgStack":{"stackName":"s"},"other":1}"#).unwrap();
        assert!(state.clear_section("sgStack"));
        assert!(!state.clear_section("sgStack"));
        assert_eq!(state.raw("other"), Some(&Value::from(1)));
    }
}
