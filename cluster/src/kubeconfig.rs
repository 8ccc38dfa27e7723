//! The kubeconfig entry for the cluster: a cluster, a user whose credentials come from
//! `eks-cluster token` run as an exec credential plugin (no aws CLI needed), and a context, all
//! named after the cluster ARN as `aws eks update-kubeconfig` names them. Merged into an existing
//! file keeping every other entry; the file is backed up first and written atomically, mode 0600.

use std::path::{Path, PathBuf};

use common::{Context, State};
use serde_json::{Map, Value, json};

use crate::error::{Error, Usage};
use crate::{KubeconfigArgs, SECTION, Section, eks};

/// The exec credential API version both the plugin and the kubeconfig use.
pub const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1beta1";

/// What the entry is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Name of the cluster, user and context entries.
    pub name: String,
    pub cluster: String,
    pub region: String,
    pub endpoint: String,
    pub certificate_authority_data: Option<String>,
    /// Absolute path of the program the exec plugin runs.
    pub command: String,
    /// `--profile` to pass on, if one was given.
    pub profile: Option<String>,
}

/// The kubeconfig to write to: `-o PATH`, else the first file of `KUBECONFIG`, else
/// `~/.kube/config`.
pub fn default_path(kubeconfig_env: Option<&str>, home: Option<&Path>) -> Option<PathBuf> {
    if let Some(first) = kubeconfig_env.and_then(|v| v.split(':').find(|p| !p.is_empty())) {
        return Some(PathBuf::from(first));
    }
    home.map(|h| h.join(".kube").join("config"))
}

fn upsert(list: &mut Value, name: &str, key: &str, body: Value) {
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let items = list.as_array_mut().expect("made an array above");
    let entry = json!({ "name": name, key: body });
    match items.iter_mut().find(|i| i["name"] == name) {
        Some(existing) => *existing = entry,
        None => items.push(entry),
    }
}

/// The exec user of the entry.
pub fn user(entry: &Entry) -> Value {
    let mut args = vec![
        "token".to_owned(),
        "--cluster".to_owned(),
        entry.cluster.clone(),
        "--region".to_owned(),
        entry.region.clone(),
    ];
    if let Some(profile) = &entry.profile {
        args.extend(["--profile".to_owned(), profile.clone()]);
    }
    json!({
        "exec": {
            "apiVersion": EXEC_API_VERSION,
            "command": entry.command,
            "args": args,
            "interactiveMode": "Never",
            "provideClusterInfo": false
        }
    })
}

/// `doc` (a parsed kubeconfig, or `Null` for none) with the entry merged in and selected.
pub fn merge(doc: Value, entry: &Entry) -> Value {
    let mut doc = match doc {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    doc.entry("apiVersion").or_insert(json!("v1"));
    doc.entry("kind").or_insert(json!("Config"));
    let mut cluster = json!({ "server": entry.endpoint });
    if let Some(ca) = &entry.certificate_authority_data {
        cluster["certificate-authority-data"] = json!(ca);
    }
    upsert(
        doc.entry("clusters").or_insert(Value::Null),
        &entry.name,
        "cluster",
        cluster,
    );
    upsert(
        doc.entry("users").or_insert(Value::Null),
        &entry.name,
        "user",
        user(entry),
    );
    upsert(
        doc.entry("contexts").or_insert(Value::Null),
        &entry.name,
        "context",
        json!({ "cluster": entry.name, "user": entry.name }),
    );
    doc.insert("current-context".into(), json!(entry.name));
    Value::Object(doc)
}

/// The kubeconfig as YAML.
pub fn to_yaml(doc: &Value) -> String {
    serde_saphyr::to_string(doc).expect("a JSON value serializes to YAML")
}

/// Reads `path` (missing or empty: no document).
pub fn read(path: &Path) -> Result<Value, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Value::Null),
        Err(e) => {
            return Err(Error::ReadKubeconfig {
                path: path.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    let doc: Value = serde_saphyr::from_str(&text).map_err(|e| Error::ReadKubeconfig {
        path: path.display().to_string(),
        reason: format!("not YAML: {e}"),
    })?;
    if !doc.is_object() && !doc.is_null() {
        return Err(Error::ReadKubeconfig {
            path: path.display().to_string(),
            reason: "not a kubeconfig (its top level is not a mapping)".into(),
        });
    }
    Ok(doc)
}

/// Merges the entry into `path`: backup to `PATH.bak` first when the file exists, then an
/// atomic write with mode 0600.
pub fn write_merged(path: &Path, entry: &Entry) -> Result<(), Error> {
    let doc = read(path)?;
    let write_error = |source| Error::WriteKubeconfig {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        let mut backup = path.as_os_str().to_owned();
        backup.push(".bak");
        std::fs::copy(path, PathBuf::from(&backup)).map_err(write_error)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o600))
            .map_err(write_error)?;
    } else if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let merged = merge(doc, entry);
    common::step::write_atomically(path, &to_yaml(&merged)).map_err(write_error)
}

/// The `ExecCredential` the `token` command prints.
pub fn exec_credential(token: &str, expires_at: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "kind": "ExecCredential",
        "apiVersion": EXEC_API_VERSION,
        "spec": {},
        "status": {
            "expirationTimestamp": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "token": token
        }
    })
}

/// What `kubeconfig` needs to know of the cluster: from the state, else DescribeCluster.
pub async fn kubeconfig_entry(
    state: &State,
    ctx: &Context,
    args: &KubeconfigArgs,
    profile: Option<&str>,
) -> Result<Entry, Error> {
    let previous: Option<Section> = state.section(SECTION)?;
    let name = crate::pick_cluster(args.cluster.as_deref(), state)?;
    let command = std::env::current_exe()
        .map_err(|source| Error::CurrentExe { source })?
        .to_string_lossy()
        .into_owned();
    let known = previous
        .map(|p| p.facts)
        .filter(|f| f.endpoint.is_some() && f.arn.is_some());
    let (arn, endpoint, ca) = match known {
        Some(f) => (
            f.arn.unwrap_or_default(),
            f.endpoint.unwrap_or_default(),
            f.certificate_authority_data,
        ),
        None => {
            let eks_client = aws_sdk_eks::Client::new(&ctx.aws);
            let c =
                eks::describe(&eks_client, &name)
                    .await?
                    .ok_or_else(|| Error::ClusterNotFound {
                        cluster: name.clone(),
                        region: ctx.region.clone(),
                    })?;
            let endpoint = c.endpoint.ok_or(Error::ClusterIncomplete {
                cluster: name.clone(),
                what: "endpoint",
            })?;
            (c.arn, endpoint, c.certificate_authority_data)
        }
    };
    Ok(Entry {
        name: if arn.is_empty() {
            format!("{name}.{}", ctx.region)
        } else {
            arn
        },
        cluster: name,
        region: ctx.region.clone(),
        endpoint,
        certificate_authority_data: ca,
        command,
        profile: profile.map(str::to_owned),
    })
}

/// `eks-cluster kubeconfig`: merges the entry; returns what goes to stdout (the kubeconfig for
/// `-o -`, else nothing).
pub async fn write_kubeconfig(
    state: &State,
    ctx: &Context,
    args: &KubeconfigArgs,
    profile: Option<&str>,
) -> Result<String, Error> {
    let entry = kubeconfig_entry(state, ctx, args, profile).await?;
    let path = match &args.output {
        Some(p) if p.as_os_str() == "-" => {
            return Ok(to_yaml(&merge(Value::Null, &entry)));
        }
        Some(p) => p.clone(),
        None => {
            let env = std::env::var("KUBECONFIG").ok();
            let home = std::env::var_os("HOME").map(PathBuf::from);
            default_path(env.as_deref(), home.as_deref()).ok_or(Usage::NoKubeconfigPath)?
        }
    };
    if ctx.dry_run {
        tracing::info!(
            "dry run: would merge context {} into {}",
            entry.name,
            path.display()
        );
        return Ok(String::new());
    }
    write_merged(&path, &entry)?;
    tracing::info!(
        "merged cluster {} into {} and selected context {}",
        entry.cluster,
        path.display(),
        entry.name
    );
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            name: "arn:aws:eks:us-east-2:123456789012:cluster/demo".into(),
            cluster: "demo".into(),
            region: "us-east-2".into(),
            endpoint: "https://example.eks.amazonaws.com".into(),
            certificate_authority_data: Some("Q0E=".into()),
            command: "/usr/local/bin/eks-cluster".into(),
            profile: None,
        }
    }

    #[test]
    fn default_paths() {
        let home = Path::new("/home/me");
        assert_eq!(
            default_path(Some(":/a/one:/b/two"), Some(home)),
            Some(PathBuf::from("/a/one"))
        );
        assert_eq!(
            default_path(None, Some(home)),
            Some(PathBuf::from("/home/me/.kube/config"))
        );
        assert_eq!(default_path(Some(""), None), None);
    }

    #[test]
    fn merge_keeps_others_and_replaces_ours() {
        let existing = json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "other", "cluster": {"server": "https://other"}}],
            "users": [{"name": "other", "user": {"token": "x"}}],
            "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
            "current-context": "other",
            "preferences": {"colors": true}
        });
        let once = merge(existing, &entry());
        let twice = merge(once.clone(), &entry());
        assert_eq!(once, twice, "merging again changes nothing");
        assert_eq!(once["clusters"].as_array().unwrap().len(), 2);
        assert_eq!(once["users"][0]["user"]["token"], "x");
        assert_eq!(once["preferences"]["colors"], true);
        assert_eq!(once["current-context"], entry().name);
        let exec = &once["users"][1]["user"]["exec"];
        assert_eq!(exec["apiVersion"], EXEC_API_VERSION);
        assert_eq!(
            exec["args"],
            json!(["token", "--cluster", "demo", "--region", "us-east-2"])
        );
        assert_eq!(
            once["clusters"][1]["cluster"]["certificate-authority-data"],
            "Q0E="
        );
    }

    #[test]
    fn yaml_round_trips() {
        let doc = merge(Value::Null, &entry());
        let back: Value = serde_saphyr::from_str(&to_yaml(&doc)).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn credential_format() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-25T22:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let c = exec_credential("k8s-aws-v1.abc", at);
        assert_eq!(c["status"]["expirationTimestamp"], "2026-11-25T22:00:00Z");
        assert_eq!(c["kind"], "ExecCredential");
    }
}
