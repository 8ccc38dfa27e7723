//! The cluster facts other steps read from the state's `cluster` section, as one type.
//!
//! `eks-cluster` writes them (its `Section` embeds this type and holds more: roles, stack,
//! profiles); `eks-oidc`,
//! `irsa`, `eks-sg-stack`, `eks-patch` and `eks-deploy` read them. Their key names are a contract
//! between the crates (DESIGN-NOTES.md), kept by this type's serde names.

use serde::{Deserialize, Serialize};

use crate::State;
use crate::state::StateError;

/// The state section the facts live in.
pub const SECTION: &str = "cluster";

/// What later steps need to know about the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFacts {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Base64 of the PEM, as EKS returns it (public, not a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_subnet_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_subnet_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_security_group_id: Option<String>,
}

impl ClusterFacts {
    /// The facts of the state's `cluster` section; `None` when it has none (or one without a
    /// name). A malformed section is bad input.
    pub fn read(state: &State) -> Result<Option<ClusterFacts>, StateError> {
        Ok(state
            .section::<ClusterFacts>(SECTION)?
            .filter(|facts| !facts.name.is_empty()))
    }

    /// The facts when the state's cluster is `cluster`: a state about another cluster tells
    /// nothing about this one (the same-place rule for readers).
    pub fn of(state: &State, cluster: &str) -> Result<Option<ClusterFacts>, StateError> {
        Ok(Self::read(state)?.filter(|facts| facts.name == cluster))
    }

    /// The name of the state's cluster, if it has one (no error for a malformed section: the
    /// step that reads its facts reports that).
    pub fn name_in(state: &State) -> Option<&str> {
        state.str_at(SECTION, "name").filter(|n| !n.is_empty())
    }

    /// The region of the state's cluster, if it has one.
    pub fn region_in(state: &State) -> Option<&str> {
        state.str_at(SECTION, "region").filter(|r| !r.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(cluster: serde_json::Value) -> State {
        let mut state = State::new();
        state.set_section(SECTION, &cluster);
        state
    }

    #[test]
    fn reads_the_contract_keys_and_ignores_the_rest() {
        let s = state(serde_json::json!({
            "name": "c", "region": "us-east-2", "vpcId": "vpc-1",
            "privateSubnetIds": ["subnet-a"], "networkStackName": "x",
        }));
        let facts = ClusterFacts::read(&s).unwrap().unwrap();
        assert_eq!(facts.name, "c");
        assert_eq!(facts.vpc_id.as_deref(), Some("vpc-1"));
        assert_eq!(facts.private_subnet_ids, ["subnet-a"]);
        assert!(ClusterFacts::of(&s, "c").unwrap().is_some());
        assert!(ClusterFacts::of(&s, "other").unwrap().is_none());
        assert!(ClusterFacts::read(&State::new()).unwrap().is_none());
        assert!(ClusterFacts::read(&state(serde_json::json!({"name": 3}))).is_err());
    }
}
