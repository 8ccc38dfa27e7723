//! The `irsa` section: one entry per service account, and the summary a person sees.

use common::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Error;

/// This step's section: a list, one entry per service account.
pub const SECTION: &str = "irsa";

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
    pub(crate) fn is_for(&self, cluster: &str, namespace: &str, name: &str) -> bool {
        self.cluster_name == cluster && self.namespace == namespace && self.service_account == name
    }
}

/// The entries the state records.
pub(crate) fn entries(state: &State) -> Result<Vec<Entry>, Error> {
    Ok(state.section::<Vec<Entry>>(SECTION)?.unwrap_or_default())
}

/// Records `entry` for the account (`None`: forgets it); the section goes when empty.
pub(crate) fn store(
    state: &mut State,
    mut list: Vec<Entry>,
    entry: Option<Entry>,
    cluster: &str,
    namespace: &str,
    name: &str,
) {
    list.retain(|e| !e.is_for(cluster, namespace, name));
    list.extend(entry);
    if list.is_empty() {
        state.clear_section(SECTION);
    } else {
        state.set_section(SECTION, &list);
    }
}

/// What a person running `irsa` by hand sees on stdout.
pub fn summary(state: &State) -> String {
    let list = state
        .section::<Vec<Entry>>(SECTION)
        .ok()
        .flatten()
        .unwrap_or_default();
    if list.is_empty() {
        return "no IRSA role recorded\n".into();
    }
    list.iter()
        .map(|e| {
            format!(
                "{}/{} on {} ({}): role {}\n",
                e.namespace, e.service_account, e.cluster_name, e.region, e.role_arn
            )
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(role: &str) -> Entry {
        Entry {
            cluster_name: "c".into(),
            region: "us-east-2".into(),
            namespace: "kube-system".into(),
            service_account: "sa".into(),
            role_name: role.into(),
            role_arn: format!("arn:aws:iam::1:role/{role}"),
            provider_arn: "p".into(),
            inline_policies: vec![],
            managed_policies: vec![],
            service_account_created: false,
            role_created: true,
            adopted: false,
            extra: Map::new(),
        }
    }

    #[test]
    fn entries_are_kept_per_account() {
        let mut state = State::new();
        let a = entry("a");
        let mut b = entry("b");
        b.service_account = "other".into();
        store(
            &mut state,
            vec![],
            Some(a.clone()),
            "c",
            "kube-system",
            "sa",
        );
        let now = entries(&state).unwrap();
        store(
            &mut state,
            now,
            Some(b.clone()),
            "c",
            "kube-system",
            "other",
        );
        assert_eq!(entries(&state).unwrap(), vec![a.clone(), b.clone()]);
        let now = entries(&state).unwrap();
        store(&mut state, now, None, "c", "kube-system", "sa");
        assert_eq!(entries(&state).unwrap(), vec![b]);
        let now = entries(&state).unwrap();
        store(&mut state, now, None, "c", "kube-system", "other");
        assert!(state.raw(SECTION).is_none());
        assert_eq!(summary(&state), "no IRSA role recorded\n");
    }
}
