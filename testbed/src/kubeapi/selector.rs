//! Label and field selectors, as the list and watch query parameters carry them, and the small
//! URL decoding the router needs.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Requirement {
    /// `k=v` or `k==v`.
    Equals(String, String),
    /// `k!=v` (also true when the label is absent).
    NotEquals(String, String),
    /// `k in (a,b)`.
    In(String, Vec<String>),
    /// `k notin (a,b)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `k`.
    Exists(String),
    /// `!k`.
    DoesNotExist(String),
}

/// A label selector: every requirement must hold. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(pub(crate) Vec<Requirement>);

impl LabelSelector {
    /// Parses `k=v,k!=v,k,!k,k in (a,b),k notin (a,b)`.
    pub(crate) fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(LabelSelector(requirements))
    }

    /// True when the object's `metadata.labels` satisfy every requirement.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::DoesNotExist(k) => label(k).is_none(),
        })
    }
}

/// Splits at commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let bad = || format!("unable to parse requirement: `{part}`");
    let checked = |key: &str, values: &[&str]| -> Result<(), String> {
        if valid_key(key) && values.iter().all(|v| valid_value(v)) {
            Ok(())
        } else {
            Err(bad())
        }
    };
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        checked(key, &[])?;
        return Ok(Requirement::DoesNotExist(key.to_owned()));
    }
    for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = part.split_once(op) {
            let (key, value) = (key.trim(), value.trim());
            checked(key, &[value])?;
            return Ok(if negated {
                Requirement::NotEquals(key.to_owned(), value.to_owned())
            } else {
                Requirement::Equals(key.to_owned(), value.to_owned())
            });
        }
    }
    if let Some(open) = part.find('(') {
        let close = part.rfind(')').filter(|c| *c > open).ok_or_else(bad)?;
        if !part[close + 1..].trim().is_empty() {
            return Err(bad());
        }
        let head: Vec<&str> = part[..open].split_whitespace().collect();
        let [key, op] = head[..] else {
            return Err(bad());
        };
        let values: Vec<&str> = part[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        checked(key, &values)?;
        let values = values.into_iter().map(str::to_owned).collect();
        return match op {
            "in" => Ok(Requirement::In(key.to_owned(), values)),
            "notin" => Ok(Requirement::NotIn(key.to_owned(), values)),
            _ => Err(bad()),
        };
    }
    checked(part, &[])?;
    Ok(Requirement::Exists(part.to_owned()))
}

/// A field selector: `path=value`, `path==value` or `path!=value`, comma-joined. Any dotted
/// path of the object is compared as a string (a missing field is the empty string), so
/// `metadata.name`, `metadata.namespace` and e.g. `status.phase` all work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(pub(crate) Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter.
    pub(crate) fn parse(text: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid field selector: `{part}`"));
            };
            let field = field.trim();
            if field.is_empty() {
                return Err(format!("invalid field selector: `{part}`"));
            }
            terms.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector(terms))
    }

    /// A selector for exactly one name.
    pub(crate) fn name(name: &str) -> FieldSelector {
        FieldSelector(vec![("metadata.name".into(), true, name.into())])
    }

    /// Adds the terms of `other`.
    pub(crate) fn and(mut self, other: FieldSelector) -> FieldSelector {
        self.0.extend(other.0);
        self
    }

    /// True when every term holds for the object.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let mut here = Some(object);
            for step in field.split('.') {
                here = here.and_then(|h| h.get(step));
            }
            let actual = match here {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

/// A path segment with its `%XX` escapes decoded (a `+` stays a `+`).
pub(crate) fn decode_segment(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The `key=value` pairs of a query string, decoded (`+` is a space).
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"name": "x", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selectors_parse() {
        let sel = LabelSelector::parse("app=web, tier!=db,env,!legacy,zone in (a, b),x notin (c)")
            .unwrap();
        assert_eq!(
            sel.0,
            vec![
                Requirement::Equals("app".into(), "web".into()),
                Requirement::NotEquals("tier".into(), "db".into()),
                Requirement::Exists("env".into()),
                Requirement::DoesNotExist("legacy".into()),
                Requirement::In("zone".into(), vec!["a".into(), "b".into()]),
                Requirement::NotIn("x".into(), vec!["c".into()]),
            ]
        );
        assert_eq!(
            LabelSelector::parse("app.kubernetes.io/name==lb")
                .unwrap()
                .0,
            vec![Requirement::Equals(
                "app.kubernetes.io/name".into(),
                "lb".into()
            )]
        );
        assert!(LabelSelector::parse("").unwrap().0.is_empty());
        for bad in [
            "a b",
            "=v",
            "k=v v",
            "k in a",
            "k maybe (a)",
            "k in (a) x",
            "!",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_selectors_match() {
        let obj = labelled(json!({"app": "web", "env": "prod"}));
        let yes = [
            "app=web",
            "app==web,env",
            "tier!=db",
            "!tier",
            "env in (prod,dev)",
            "env notin (dev)",
            "tier notin (db)",
            "",
        ];
        let no = [
            "app=api",
            "app!=web",
            "tier",
            "!env",
            "env in (dev)",
            "tier in (db)",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&obj), "{s}");
        }
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&obj), "{s}");
        }
        let bare = json!({"metadata": {"name": "x"}});
        assert!(LabelSelector::parse("a!=b").unwrap().matches(&bare));
        assert!(!LabelSelector::parse("a").unwrap().matches(&bare));
    }

    #[test]
    fn field_selectors() {
        let obj = labelled(json!({}));
        let sel = FieldSelector::parse("metadata.name=x,metadata.namespace==ns").unwrap();
        assert!(sel.matches(&obj));
        assert!(
            !FieldSelector::parse("metadata.name!=x")
                .unwrap()
                .matches(&obj)
        );
        assert!(FieldSelector::parse("status.phase=").unwrap().matches(&obj));
        assert!(FieldSelector::name("x").matches(&obj));
        assert!(
            !FieldSelector::name("x")
                .and(FieldSelector::parse("metadata.namespace=other").unwrap())
                .matches(&obj)
        );
        assert!(FieldSelector::parse("nothing").is_err());
        assert!(FieldSelector::parse("=x").is_err());
    }

    #[test]
    fn queries_decode() {
        assert_eq!(
            parse_query("labelSelector=app%3Dweb%2Cenv&watch=true&x=a+b&flag"),
            vec![
                ("labelSelector".to_owned(), "app=web,env".to_owned()),
                ("watch".to_owned(), "true".to_owned()),
                ("x".to_owned(), "a b".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        assert_eq!(decode_segment("a%2"), "a%2");
        assert_eq!(decode_segment("100%"), "100%");
        assert_eq!(decode_segment("a+b%zz"), "a+b%zz");
        assert_eq!(decode_segment("my%20ns%2Fx"), "my ns/x");
    }
}
