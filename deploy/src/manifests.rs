//! The manifests to apply: read from the files `eks-patch` rendered (in its order), checked
//! before anything is sent, and the kinds that gate what comes next.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One object to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub file: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub value: Value,
}

impl Doc {
    /// `kind namespace/name` for logs.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// The API group and version.
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", self.api_version.as_str()),
        }
    }
}

/// Manifests that cannot be applied: bad input (exit 2), found before anything is sent.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}: not valid YAML: {reason}")]
    Yaml { file: String, reason: String },
    #[error("{file}, document {number}: no {field}")]
    NoField {
        file: String,
        /// 1-based.
        number: usize,
        field: &'static str,
    },
    #[error(
        "{file}, document {number} ({kind} {name}) still has a placeholder (CLUSTER_NAME, REGION, VPC_ID, SG_ID); render it with eks-patch first"
    )]
    Placeholder {
        file: String,
        number: usize,
        kind: String,
        name: String,
    },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no manifests in {}", .dir.display())]
    Empty { dir: PathBuf },
    #[error(
        "no manifests: run eks-patch first (the state has no `patch` section), or pass --manifests DIR"
    )]
    NoPatch,
    #[error("the state's patch section lists no files; run eks-patch again")]
    NoFiles,
}

/// Parses one file's YAML documents (empty documents are skipped).
pub fn parse(file: &str, text: &str) -> Result<Vec<Doc>, ManifestError> {
    let values: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml {
            file: file.to_owned(),
            reason: e.to_string(),
        })?;
    let mut docs = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        if value.is_null() {
            continue;
        }
        let field = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let meta = |key: &str| {
            value
                .get("metadata")
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let number = index + 1;
        let no = |field: &'static str| ManifestError::NoField {
            file: file.to_owned(),
            number,
            field,
        };
        let api_version = field("apiVersion").ok_or_else(|| no("apiVersion"))?;
        let kind = field("kind").ok_or_else(|| no("kind"))?;
        let name = meta("name").ok_or_else(|| no("metadata.name"))?;
        if text_has_placeholder(&value) {
            return Err(ManifestError::Placeholder {
                file: file.to_owned(),
                number,
                kind,
                name,
            });
        }
        docs.push(Doc {
            file: file.to_owned(),
            api_version,
            kind,
            name,
            namespace: meta("namespace"),
            value,
        });
    }
    Ok(docs)
}

fn text_has_placeholder(value: &Value) -> bool {
    match value {
        Value::String(s) => ["CLUSTER_NAME", "VPC_ID", "SG_ID"].iter().any(|p| {
            s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|w| w == *p)
        }),
        Value::Array(items) => items.iter().any(text_has_placeholder),
        Value::Object(map) => map.values().any(text_has_placeholder),
        _ => false,
    }
}

/// Reads `files` (names relative to `dir`) in order.
pub fn load(dir: &Path, files: &[String]) -> Result<Vec<Doc>, ManifestError> {
    let mut docs = Vec::new();
    for file in files {
        let path = dir.join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) => return Err(ManifestError::Read { path, source }),
        };
        docs.extend(parse(file, &text)?);
    }
    if docs.is_empty() {
        return Err(ManifestError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    Ok(docs)
}

/// The `.yaml`/`.yml` files of a folder, by name.
pub fn files_in(dir: &Path) -> Result<Vec<String>, ManifestError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ManifestError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    names.sort();
    Ok(names)
}

/// The folder and files to apply: `--manifests DIR`, else the state's `patch` section.
pub fn source(
    flag: Option<&Path>,
    state: &common::State,
) -> Result<(PathBuf, Vec<String>), ManifestError> {
    if let Some(dir) = flag {
        return Ok((dir.to_path_buf(), files_in(dir)?));
    }
    // What eks-patch recorded; a section this version cannot read counts as none.
    let Some(patch) = common::sections::patch::Facts::read(state).ok().flatten() else {
        return Err(ManifestError::NoPatch);
    };
    let Some(dir) = patch.output_dir.clone() else {
        return Err(ManifestError::NoPatch);
    };
    let files = patch.file_names();
    if files.is_empty() {
        return Err(ManifestError::NoFiles);
    }
    Ok((PathBuf::from(dir), files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documents_and_skips_empty_ones() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: a\n";
        let docs = parse("f.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].label(), "Namespace a");
        assert_eq!(docs[1].label(), "Deployment a/d");
        assert_eq!(docs[1].group_version(), ("apps", "v1"));
        assert_eq!(docs[0].group_version(), ("", "v1"));
    }

    #[test]
    fn refuses_incomplete_or_unrendered_documents() {
        assert!(
            parse("f", "kind: X\nmetadata: {name: a}\n")
                .unwrap_err()
                .to_string()
                .contains("no apiVersion")
        );
        assert!(
            parse("f", "apiVersion: v1\nkind: X\n")
                .unwrap_err()
                .to_string()
                .contains("no metadata.name")
        );
        assert!(
            parse("f", ": : :\n- [")
                .unwrap_err()
                .to_string()
                .contains("not valid YAML")
        );
        let unrendered =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  vpc: VPC_ID\n";
        assert!(
            parse("f", unrendered)
                .unwrap_err()
                .to_string()
                .contains("eks-patch")
        );
        let fine =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  vpc: MY_VPC_IDX\n";
        assert!(parse("f", fine).is_ok());
    }
}
