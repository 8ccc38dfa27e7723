//! Policy documents: where they come from (a file or an https URL), the checks IAM would make
//! (valid JSON, `Version` and `Statement`, the size limit), and their stable inline names.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::error::Usage;

/// IAM's limit on the inline policies of one role, whitespace not counted.
pub const INLINE_LIMIT: usize = 10_240;

/// Where a document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Url(String),
}

impl Source {
    /// `FILE` or `https://URL`; `http://` is refused.
    pub fn parse(text: &str) -> Result<Source, String> {
        if text.starts_with("https://") {
            Ok(Source::Url(text.to_owned()))
        } else if text.starts_with("http://") {
            Err("an http:// URL is refused: a policy fetched in clear text could be altered on the way; use https://".into())
        } else if text.contains("://") {
            Err("only files and https:// URLs are supported".into())
        } else {
            Ok(Source::File(PathBuf::from(text)))
        }
    }

    /// The last path segment without `.json`: the base of the inline policy name.
    fn stem(&self) -> String {
        let last = match self {
            Source::File(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Source::Url(url) => url
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        last.strip_suffix(".json").unwrap_or(&last).to_owned()
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Url(url) => f.write_str(url),
        }
    }
}

/// A checked document ready to put.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub name: String,
    pub source: Source,
    pub json: serde_json::Value,
    /// The document as sent (compact JSON).
    pub text: String,
    pub sha256: String,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks one document's text: JSON object with `Version` and `Statement`.
pub fn check(text: &str) -> Result<serde_json::Value, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let object = json
        .as_object()
        .ok_or("a policy document must be a JSON object")?;
    match object.get("Version").and_then(|v| v.as_str()) {
        Some("2012-10-17" | "2008-10-17") => {}
        Some(other) => {
            return Err(format!(
                "`Version` is {other}; IAM knows 2012-10-17 (and 2008-10-17)"
            ));
        }
        None => return Err("no `Version` (use \"Version\": \"2012-10-17\")".into()),
    }
    match object.get("Statement") {
        Some(serde_json::Value::Array(items)) if !items.is_empty() => {}
        Some(serde_json::Value::Object(_)) => {}
        _ => return Err("no `Statement` (an object or a non-empty list)".into()),
    }
    Ok(json)
}

/// The document for an account in `partition`: every string value that is an ARN of the
/// standard partition (`arn:aws:...`) moved to `partition` (`arn:aws-cn:...`), as upstream's
/// per-partition copies of a policy differ. IAM takes a policy whose resources name another
/// partition, but its statements then never match. Returns how many values moved.
pub fn into_partition(json: &mut serde_json::Value, partition: &str) -> usize {
    if partition == "aws" {
        return 0;
    }
    match json {
        serde_json::Value::String(text) => match text.strip_prefix("arn:aws:") {
            Some(rest) => {
                *text = format!("arn:{partition}:{rest}");
                1
            }
            None => 0,
        },
        serde_json::Value::Array(items) => items
            .iter_mut()
            .map(|item| into_partition(item, partition))
            .sum(),
        serde_json::Value::Object(map) => map
            .values_mut()
            .map(|item| into_partition(item, partition))
            .sum(),
        _ => 0,
    }
}

impl Document {
    /// [`into_partition`] on the document as sent; logs what moved.
    pub fn for_partition(&mut self, partition: &str) {
        let moved = into_partition(&mut self.json, partition);
        if moved > 0 {
            self.text = self.json.to_string();
            tracing::info!(
                "policy {}: {moved} ARN(s) of partition aws moved to {partition}, the caller's",
                self.name
            );
        }
    }
}

/// Characters that count towards IAM's size limit.
pub fn counted_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// Inline policy names: the source's file name without `.json`, cleaned to the characters IAM
/// allows, made unique with `-2`, `-3`... in argument order.
pub fn names(sources: &[Source]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for source in sources {
        let mut base: String = source
            .stem()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(100)
            .collect();
        if base.is_empty() {
            base = "policy".into();
        }
        let mut name = base.clone();
        let mut n = 2;
        while out.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        out.push(name);
    }
    out
}

/// Checks the documents together: IAM's limit on one role's inline policies.
pub fn check_total(documents: &[Document]) -> Result<(), Usage> {
    let total: usize = documents.iter().map(|d| counted_size(&d.text)).sum();
    if total > INLINE_LIMIT {
        return Err(Usage::PolicySize { total });
    }
    Ok(())
}

/// A managed policy ARN: `arn:<partition>:iam::<account or aws>:policy/<path and name>`.
pub fn check_policy_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "aws"
            || (parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit())))
        && parts[5]
            .strip_prefix("policy/")
            .is_some_and(|rest| !rest.is_empty());
    if ok {
        Ok(())
    } else {
        Err("not a managed policy ARN (arn:aws:iam::aws:policy/NAME or arn:aws:iam::123456789012:policy/NAME)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(Source::parse("p.json"), Ok(Source::File("p.json".into())));
        assert!(matches!(
            Source::parse("https://x/y.json"),
            Ok(Source::Url(_))
        ));
        assert!(
            Source::parse("http://x/y.json")
                .unwrap_err()
                .contains("https://")
        );
        assert!(Source::parse("s3://b/k").is_err());
    }

    #[test]
    fn stable_unique_names() {
        let sources = [
            Source::File("policies/iam-policy.json".into()),
            Source::Url("https://example.com/a/iam-policy.json?x=1".into()),
            Source::File("weird name!.json".into()),
            Source::File("/".into()),
        ];
        assert_eq!(
            names(&sources),
            ["iam-policy", "iam-policy-2", "weird-name-", "policy"]
        );
    }

    #[test]
    fn document_checks() {
        assert!(check(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#).is_ok());
        assert!(check(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#).is_ok());
        assert!(check("{").unwrap_err().contains("not valid JSON"));
        assert!(check("[]").unwrap_err().contains("object"));
        assert!(
            check(r#"{"Statement":[{}]}"#)
                .unwrap_err()
                .contains("Version")
        );
        assert!(
            check(r#"{"Version":"2012-10-17"}"#)
                .unwrap_err()
                .contains("Statement")
        );
        assert!(
            check(r#"{"Version":"2012-10-17","Statement":[]}"#)
                .unwrap_err()
                .contains("Statement")
        );
        assert!(
            check(r#"{"Version":"2019-01-01","Statement":[{}]}"#)
                .unwrap_err()
                .contains("2012-10-17")
        );
    }

    #[test]
    fn size_ignores_whitespace() {
        assert_eq!(counted_size("{ \"a\" :\n 1 }"), 7);
        let doc = |n: usize| Document {
            name: "n".into(),
            source: Source::File("f".into()),
            json: serde_json::Value::Null,
            text: "x".repeat(n),
            sha256: String::new(),
        };
        assert!(check_total(&[doc(5000), doc(5240)]).is_ok());
        assert!(
            check_total(&[doc(5000), doc(5241)])
                .unwrap_err()
                .to_string()
                .contains("10241")
        );
    }

    #[test]
    fn policy_arns() {
        assert!(check_policy_arn("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess").is_ok());
        assert!(check_policy_arn("arn:aws-cn:iam::123456789012:policy/path/x").is_ok());
        for bad in [
            "AmazonS3ReadOnlyAccess",
            "arn:aws:iam::aws:role/x",
            "arn:aws:iam::12:policy/x",
            "arn:aws:s3:::b",
        ] {
            assert!(check_policy_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arns_move_to_the_callers_partition() {
        let original = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": "arn:aws:ec2:*:*:security-group/*",
                "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                              "ArnLike": {"aws:SourceArn": ["arn:aws:elasticloadbalancing:*:*:targetgroup/*/*", "arn:aws-cn:x"]}}
            }, {"Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": "*"}]
        });
        let mut same = original.clone();
        assert_eq!(into_partition(&mut same, "aws"), 0);
        assert_eq!(same, original);
        for partition in ["aws-cn", "aws-us-gov", "aws-eusc"] {
            let mut moved = original.clone();
            assert_eq!(into_partition(&mut moved, partition), 2, "{partition}");
            let text = moved.to_string();
            assert!(!text.contains("arn:aws:"), "{text}");
            assert!(
                text.contains(&format!("arn:{partition}:ec2:*:*:security-group/*")),
                "{text}"
            );
            assert!(
                text.contains("ec2:CreateAction"),
                "keys and actions stay: {text}"
            );
        }
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
