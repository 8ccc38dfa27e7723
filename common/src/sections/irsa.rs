//! The `irsa` section, written by `irsa`: a list, one entry per service account. `eks-patch`
//! reads the controller's role from it ([`role_arn_for`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::State;
use crate::state::StateError;

/// The section's key in the state document.
pub const KEY: &str = "irsa";

/// One inline policy as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineRecord {
    pub name: String,
    pub source: String,
    pub sha256: String,
}

/// One entry of the `irsa` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub cluster_name: String,
    pub region: String,
    pub namespace: String,
    pub service_account: String,
    pub role_name: String,
    pub role_arn: String,
    pub provider_arn: String,
    #[serde(default)]
    pub inline_policies: Vec<InlineRecord>,
    #[serde(default)]
    pub managed_policies: Vec<String>,
    /// True when this tool created the service account (delete then deletes it).
    #[serde(default)]
    pub service_account_created: bool,
    /// True when irsa made the role (its `CreateRole`, or a lost answer to it proven by our
    /// tags): delete deletes it. Entries written before this key rely on the role's tags.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub role_created: bool,
    /// True when the role was someone else's, taken over with `ensure --adopt`: delete removes
    /// only the policies irsa added (the ones recorded here) and leaves the role.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Entry {
    /// True when the entry is the one of that service account of that cluster.
    pub fn is_for(&self, cluster: &str, namespace: &str, name: &str) -> bool {
        self.cluster_name == cluster && self.namespace == namespace && self.service_account == name
    }
}

/// The entries the state records (none without a section); a malformed section is bad input.
pub fn entries(state: &State) -> Result<Vec<Entry>, StateError> {
    Ok(state.section::<Vec<Entry>>(KEY)?.unwrap_or_default())
}

/// What other steps read of an entry (the contract keys `irsa[].serviceAccount`,
/// `irsa[].roleArn`, and its namespace when recorded).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    #[serde(default)]
    pub namespace: Option<String>,
    pub service_account: String,
    #[serde(default)]
    pub role_arn: Option<String>,
}

/// The role the state records for service account `name` in `namespace` (an entry that names
/// no namespace counts for any); the first such entry. A malformed section is bad input.
pub fn role_arn_for(
    state: &State,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, StateError> {
    let bindings: Vec<Binding> = state.section(KEY)?.unwrap_or_default();
    Ok(bindings.into_iter().find_map(|b| {
        let namespace_ok = b.namespace.as_deref().is_none_or(|n| n == namespace);
        (b.service_account == name && namespace_ok)
            .then_some(b.role_arn)
            .flatten()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_of_a_service_account() {
        let mut state = State::new();
        state.set_section(
            KEY,
            &serde_json::json!([
                {"namespace": "kube-system", "serviceAccount": "other", "roleArn": "arn:o"},
                {"namespace": "apps", "serviceAccount": "lbc", "roleArn": "arn:apps"},
                {"serviceAccount": "lbc", "roleArn": "arn:any"},
            ]),
        );
        assert_eq!(
            role_arn_for(&state, "kube-system", "lbc")
                .unwrap()
                .as_deref(),
            Some("arn:any")
        );
        assert_eq!(
            role_arn_for(&state, "apps", "lbc").unwrap().as_deref(),
            Some("arn:apps")
        );
        assert_eq!(role_arn_for(&state, "x", "none").unwrap(), None);
        assert_eq!(role_arn_for(&State::new(), "x", "lbc").unwrap(), None);
        state.set_section(KEY, &serde_json::json!({"not": "a list"}));
        assert!(role_arn_for(&state, "x", "lbc").is_err());
    }
}
