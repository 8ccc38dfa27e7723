//! The checks' results, as `ok`/`warn`/`FAIL` lines or as one JSON document.

use serde::Serialize;
use serde_json::Value;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing in the way.
    Ok,
    /// Worth knowing, or not checkable; not in the way.
    Warn,
    /// The pipeline would fail on this: the run exits 1 (2 for a usage error).
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Short id: `binaries`, `region`, `identity`, `permissions`, `vpcs`, `elastic-ips`, `cluster`.
    pub name: &'static str,
    pub status: Status,
    /// One line saying what was found.
    pub message: String,
    /// Lines that belong under the message (the denied actions by service, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// How to fix a failure or a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The facts behind the message, for `--json` readers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl Check {
    fn new(name: &'static str, status: Status, message: impl Into<String>) -> Check {
        Check {
            name,
            status,
            message: message.into(),
            details: Vec::new(),
            fix: None,
            data: None,
        }
    }

    pub fn ok(name: &'static str, message: impl Into<String>) -> Check {
        Check::new(name, Status::Ok, message)
    }

    pub fn warn(name: &'static str, message: impl Into<String>) -> Check {
        Check::new(name, Status::Warn, message)
    }

    pub fn fail(name: &'static str, message: impl Into<String>) -> Check {
        Check::new(name, Status::Fail, message)
    }

    pub fn details(mut self, lines: Vec<String>) -> Check {
        self.details = lines;
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    pub fn data(mut self, data: Value) -> Check {
        self.data = Some(data);
        self
    }
}

/// Everything a run found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub checks: Vec<Check>,
    /// A usage error (no region, a bad cluster name) stopped the run: exit 2.
    #[serde(skip)]
    pub usage_error: bool,
}

const NAME_WIDTH: usize = 12;

impl Report {
    pub fn new(cluster: &str) -> Report {
        Report {
            cluster: cluster.to_owned(),
            ..Report::default()
        }
    }

    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// 0 when nothing failed, 1 when a check failed, 2 for a usage error.
    pub fn exit_code(&self) -> u8 {
        if self.usage_error {
            2
        } else if self.count(Status::Fail) > 0 {
            1
        } else {
            0
        }
    }

    /// The report as lines for a person: one per check, then what to fix.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let indent = " ".repeat(6 + NAME_WIDTH + 1);
        for check in &self.checks {
            out.push_str(&format!(
                "{:<6}{:<NAME_WIDTH$} {}\n",
                check.status.label(),
                check.name,
                check.message
            ));
            for line in &check.details {
                out.push_str(&format!("{indent}{line}\n"));
            }
            // A failure's fix goes in the summary below; a warning's stays with it.
            if let (Status::Warn, Some(fix)) = (check.status, &check.fix) {
                out.push_str(&format!("{indent}fix: {fix}\n"));
            }
        }
        let failed: Vec<&Check> = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        let warnings = self.count(Status::Warn);
        let warned = match warnings {
            0 => String::new(),
            1 => " (1 warning)".to_owned(),
            n => format!(" ({n} warnings)"),
        };
        out.push('\n');
        if failed.is_empty() {
            out.push_str(&format!(
                "preflight: all {} checks passed{warned}\n",
                self.checks.len()
            ));
        } else {
            let n = failed.len();
            let noun = if n == 1 { "check" } else { "checks" };
            out.push_str(&format!("preflight: {n} {noun} failed{warned}; to fix:\n"));
            for check in failed {
                out.push_str(&format!("  - {}: {}\n", check.name, check.message));
                if let Some(fix) = &check.fix {
                    out.push_str(&format!("    fix: {fix}\n"));
                }
            }
        }
        out
    }

    /// The report as one JSON document.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::Map::new();
        value.insert("ok".into(), Value::Bool(self.exit_code() == 0));
        value.insert("exitCode".into(), Value::from(self.exit_code()));
        if let Value::Object(fields) = serde_json::to_value(self).expect("a report serializes") {
            value.extend(fields);
        }
        let mut text = serde_json::to_string_pretty(&value).expect("a report serializes");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Report {
        let mut report = Report::new("demo");
        report.region = Some("us-east-2".into());
        report.push(Check::ok("region", "us-east-2 (from --region)"));
        report.push(
            Check::warn("cluster", "demo exists: eks-cluster create will adopt it")
                .fix("pick another --cluster to make a new one"),
        );
        report
    }

    #[test]
    fn text_lines_are_aligned_and_summed_up() {
        let text = sample().to_text();
        assert_eq!(
            text,
            "ok    region       us-east-2 (from --region)\n\
             warn  cluster      demo exists: eks-cluster create will adopt it\n\
             \x20                  fix: pick another --cluster to make a new one\n\
             \n\
             preflight: all 2 checks passed (1 warning)\n"
        );
    }

    #[test]
    fn failures_are_listed_with_their_fix() {
        let mut report = sample();
        report.push(
            Check::fail("permissions", "3 of 80 actions denied for arn:x")
                .details(vec![
                    "ec2: CreateVpc, DeleteVpc".into(),
                    "iam: PassRole".into(),
                ])
                .fix("grant them"),
        );
        let text = report.to_text();
        assert!(
            text.contains(
                "FAIL  permissions  3 of 80 actions denied for arn:x\n\
                 \x20                  ec2: CreateVpc, DeleteVpc\n\
                 \x20                  iam: PassRole\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with(
                "preflight: 1 check failed (1 warning); to fix:\n\
                 \x20 - permissions: 3 of 80 actions denied for arn:x\n\
                 \x20   fix: grant them\n"
            ),
            "{text}"
        );
        assert_eq!(report.exit_code(), 1);
    }

    #[test]
    fn exit_codes() {
        let mut report = sample();
        assert_eq!(report.exit_code(), 0);
        report.usage_error = true;
        assert_eq!(report.exit_code(), 2);
    }

    #[test]
    fn json_carries_status_and_exit_code() {
        let mut report = sample();
        report.push(Check::fail("vpcs", "5 of 5 used").data(json!({"used": 5, "limit": 5})));
        let text = report.to_json();
        assert!(
            text.starts_with("{\n  \"ok\": false,\n  \"exitCode\": 1,"),
            "{text}"
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["ok"], false);
        assert_eq!(value["exitCode"], 1);
        assert_eq!(value["cluster"], "demo");
        assert_eq!(value["region"], "us-east-2");
        assert!(value.get("account").is_none());
        assert_eq!(value["checks"][0]["status"], "ok");
        assert!(value["checks"][0].get("fix").is_none());
        assert_eq!(value["checks"][1]["status"], "warn");
        assert_eq!(value["checks"][2]["status"], "fail");
        assert_eq!(value["checks"][2]["data"]["limit"], 5);
    }
}
