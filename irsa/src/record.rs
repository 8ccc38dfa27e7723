//! The `irsa` section: one entry per service account, and the summary a person sees.

use common::State;

use crate::Error;

/// This step's section: a list, one entry per service account.
pub const SECTION: &str = common::sections::irsa::KEY;

/// The section's entries: their one model lives in `common::sections::irsa`.
pub use common::sections::irsa::{Entry, InlineRecord};

/// The entries the state records.
pub(crate) fn entries(state: &State) -> Result<Vec<Entry>, Error> {
    Ok(common::sections::irsa::entries(state)?)
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
    let list = common::sections::irsa::entries(state).unwrap_or_default();
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
    use serde_json::Map;

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
