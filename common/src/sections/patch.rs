//! The `patch` section, written by `eks-patch`: the rendered manifests and the webhook
//! certificate. `eks-deploy` reads where the files are and their names, and the cluster they
//! were rendered for ([`Facts`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::State;
use crate::state::StateError;

/// The section's key in the state document.
pub const KEY: &str = "patch";

/// One rendered file in the `patch` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    pub name: String,
    pub sha256: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The public record of the webhook certificates in the state's `patch` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCertificate {
    /// When the serving certificate expires (RFC 3339, UTC).
    pub not_after: String,
    pub dns_names: Vec<String>,
    pub ca_pem: String,
    pub cert_pem: String,
    /// The key file, relative to the output directory.
    pub key_file: String,
    /// The CA this one replaced, kept in the `caBundle` until `previous_ca_until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_ca_pem: Option<String>,
    /// Until when (RFC 3339, UTC) the replaced CA stays in the `caBundle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_ca_until: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `patch` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    pub output_dir: String,
    pub controller_version: String,
    pub cluster_name: String,
    pub region: String,
    pub vpc_id: String,
    pub security_group_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The subnets the Ingress names for the ALB (empty: the controller discovers them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alb_subnet_ids: Vec<String>,
    /// The rendered files, in apply order.
    pub files: Vec<FileRecord>,
    pub webhook_certificate: WebhookCertificate,
    /// Keys a newer version wrote, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Section {
    /// The whole section as the state holds it; a malformed section is bad input.
    pub fn read(state: &State) -> Result<Option<Section>, StateError> {
        state.section(KEY)
    }
}

/// What other steps read of the section, each key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// Where the files were written (`eks-deploy` applies them from there).
    #[serde(default)]
    pub output_dir: Option<String>,
    /// The cluster they were rendered for (`eks-deploy`: the cluster when nothing else names
    /// one).
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// The rendered files, in apply order.
    #[serde(default)]
    pub files: Vec<FileName>,
}

/// A rendered file's name, as other steps read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FileName {
    #[serde(default)]
    pub name: Option<String>,
}

impl Facts {
    /// The view of the state's section; `None` without one. A key of the wrong type is bad
    /// input.
    pub fn read(state: &State) -> Result<Option<Facts>, StateError> {
        state.section(KEY)
    }

    /// The names of the rendered files, in apply order.
    pub fn file_names(&self) -> Vec<String> {
        self.files.iter().filter_map(|f| f.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_reads_names_and_skips_nameless_files() {
        let state = State::parse(
            r#"{"schemaVersion":1,"patch":{"outputDir":"out","files":[{"name":"a.yaml"},{"sha256":"x"},{"name":"b.yaml"}]}}"#,
        )
        .unwrap();
        let facts = Facts::read(&state).unwrap().unwrap();
        assert_eq!(facts.output_dir.as_deref(), Some("out"));
        assert_eq!(facts.cluster_name, None);
        assert_eq!(facts.file_names(), ["a.yaml", "b.yaml"]);
    }
}
