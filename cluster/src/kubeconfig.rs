//! The kubeconfig entry for the cluster: a cluster, a user whose credentials come from
//! `eks-cluster token` run as an exec credential plugin (no aws CLI needed), and a context, all
//! named after the cluster ARN as `aws eks update-kubeconfig` names them. Merged into an existing
//! file keeping every other entry; the file is backed up first and written atomically, mode 0600.

use std::path::{Path, PathBuf};

use common::{Context, State};
use serde_json::{Map, Value, json};

use crate::error::{Error, Usage};
use crate::{KubeconfigArgs, SECTION, Section};

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

/// Puts `entry` (a named cluster, user or context) into `list` in place of the one of its name,
/// else at the end; a `list` that is no list becomes one.
fn upsert(list: &mut Value, entry: Value) {
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let items = list.as_array_mut().expect("made an array above");
    match items.iter_mut().find(|i| i["name"] == entry["name"]) {
        Some(existing) => *existing = entry,
        None => items.push(entry),
    }
}

fn to_value(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("a kubeconfig entry serializes")
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
    to_value(kube::config::AuthInfo {
        exec: Some(kube::config::ExecConfig {
            api_version: Some(EXEC_API_VERSION.to_owned()),
            command: Some(entry.command.clone()),
            args: Some(args),
            interactive_mode: Some(kube::config::ExecInteractiveMode::Never),
            provide_cluster_info: false,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// `doc` (a parsed kubeconfig, or `Null` for none) with the entry merged in and selected.
///
/// The entry is made of kube's kubeconfig types; the file around it stays a JSON value, not
/// kube's `Kubeconfig`, since that model does not give back every file it reads: it refuses a
/// context without `cluster` (kubectl takes one), writes `user: null` into a context without a
/// user and `provideClusterInfo: false` into every exec user, and reorders an auth provider's
/// `config` at random. Merging must leave other entries as they are.
pub fn merge(doc: Value, entry: &Entry) -> Value {
    let mut doc = match doc {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    doc.entry("apiVersion").or_insert(json!("v1"));
    doc.entry("kind").or_insert(json!("Config"));
    let cluster = kube::config::NamedCluster {
        name: entry.name.clone(),
        cluster: Some(kube::config::Cluster {
            server: Some(entry.endpoint.clone()),
            certificate_authority_data: entry.certificate_authority_data.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let context = kube::config::NamedContext {
        name: entry.name.clone(),
        context: Some(kube::config::Context {
            cluster: entry.name.clone(),
            user: Some(entry.name.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    upsert(
        doc.entry("clusters").or_insert(Value::Null),
        to_value(cluster),
    );
    upsert(
        doc.entry("users").or_insert(Value::Null),
        json!({ "name": entry.name, "user": user(entry) }),
    );
    upsert(
        doc.entry("contexts").or_insert(Value::Null),
        to_value(context),
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
    common::step::write_atomically(path, &to_yaml(&merged), common::step::PRIVATE)
        .map_err(write_error)
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
    // Each fact from the state's section, else from one DescribeCluster.
    let known = previous.map(|p| p.facts).unwrap_or_default();
    let mut facts = common::facts::Resolver::new(
        aws_sdk_eks::Client::new(&ctx.aws),
        &name,
        &ctx.region,
        known,
    );
    let described = |e| match e {
        common::cluster::DescribeError::Call { cluster, source } => {
            Error::DescribeCluster { cluster, source }
        }
        common::cluster::DescribeError::NotFound { cluster, region } => {
            Error::ClusterNotFound { cluster, region }
        }
    };
    let endpoint = facts
        .endpoint()
        .await
        .map_err(described)?
        .ok_or(Error::ClusterIncomplete {
            cluster: name.clone(),
            what: "endpoint",
        })?;
    let arn = facts.arn().await.map_err(described)?.unwrap_or_default();
    let ca = facts.certificate_authority().await.map_err(described)?;
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

    /// The entry made of kube's types is the one written by hand before, key for key.
    #[test]
    fn the_entry_is_what_kubectl_reads() {
        let doc = merge(Value::Null, &entry());
        let name = entry().name;
        let expected = json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": name, "cluster": {
                "server": "https://example.eks.amazonaws.com",
                "certificate-authority-data": "Q0E="}}],
            "users": [{"name": name, "user": {"exec": {
                "apiVersion": EXEC_API_VERSION,
                "command": "/usr/local/bin/eks-cluster",
                "args": ["token", "--cluster", "demo", "--region", "us-east-2"],
                "interactiveMode": "Never",
                "provideClusterInfo": false}}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name
        });
        assert_eq!(doc, expected);
        assert_eq!(
            to_yaml(&doc),
            to_yaml(&expected),
            "same keys in the same order"
        );
    }

    #[test]
    fn other_entries_are_kept_as_they_are() {
        let existing = json!({
            "clusters": [{"name": "a", "cluster": {"server": "https://a", "future-field": 1}}],
            "users": [{"name": "u", "user": {"auth-provider": {"name": "oidc",
                "config": {"b": "1", "a": "2", "c": "3"}}}}],
            "contexts": [{"name": "no-cluster", "context": {"user": "u"}}],
            "my-top": {"x": 1}
        });
        let merged = merge(existing.clone(), &entry());
        for key in ["clusters", "users", "contexts"] {
            assert_eq!(merged[key][0], existing[key][0], "{key}");
        }
        assert_eq!(merged["my-top"], existing["my-top"]);
        let config = merged["users"][0]["user"]["auth-provider"]["config"]
            .as_object()
            .unwrap();
        assert_eq!(
            config.keys().collect::<Vec<_>>(),
            ["b", "a", "c"],
            "in the file's order"
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
