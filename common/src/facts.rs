//! The cluster facts other steps read from the state's `cluster` section, as one type.
//!
//! `eks-cluster` writes them (its section holds more: roles, stack, profiles); `eks-oidc`,
//! `irsa`, `eks-sg-stack`, `eks-patch` and `eks-deploy` read them. Their key names are a contract
//! between the crates (DESIGN-NOTES.md), kept by this type's serde names.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

    /// Writes these facts into the `cluster` section: their keys are set (or removed when
    /// empty), every other key of the section is kept as it was.
    pub fn write(&self, state: &mut State) {
        let mut section = match state.raw(SECTION) {
            Some(Value::Object(map)) => map.clone(),
            _ => serde_json::Map::new(),
        };
        let Ok(Value::Object(mine)) = serde_json::to_value(self) else {
            unreachable!("a struct serializes to an object");
        };
        for key in FACT_KEYS {
            match mine.get(*key) {
                Some(value) => {
                    section.insert((*key).to_owned(), value.clone());
                }
                None => {
                    section.remove(*key);
                }
            }
        }
        state.set_section(SECTION, &Value::Object(section));
    }

    /// The partition and account of the cluster, from its ARN.
    pub fn partition_and_account(&self) -> Option<(&str, &str)> {
        self.arn
            .as_deref()
            .and_then(crate::iam::partition_and_account)
    }
}

/// The serde names of [`ClusterFacts`]' fields.
const FACT_KEYS: &[&str] = &[
    "name",
    "region",
    "accountId",
    "arn",
    "endpoint",
    "certificateAuthorityData",
    "oidcIssuer",
    "vpcId",
    "publicSubnetIds",
    "privateSubnetIds",
    "clusterSecurityGroupId",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn state(cluster: Value) -> State {
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

    #[test]
    fn every_field_is_in_the_key_list() {
        let full = ClusterFacts {
            name: "n".into(),
            region: "r".into(),
            account_id: Some("a".into()),
            arn: Some("arn:aws:eks:r:1:cluster/n".into()),
            endpoint: Some("e".into()),
            certificate_authority_data: Some("c".into()),
            oidc_issuer: Some("o".into()),
            vpc_id: Some("v".into()),
            public_subnet_ids: vec!["p".into()],
            private_subnet_ids: vec!["q".into()],
            cluster_security_group_id: Some("g".into()),
        };
        let Value::Object(map) = serde_json::to_value(&full).unwrap() else {
            panic!()
        };
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, FACT_KEYS);
        assert_eq!(full.partition_and_account(), Some(("aws", "1")));
    }

    #[test]
    fn write_keeps_other_keys_and_their_order() {
        let mut s = state(serde_json::json!({
            "name": "c", "region": "us-east-2", "rolesCreatedByUs": true, "endpoint": "old",
        }));
        let mut facts = ClusterFacts::read(&s).unwrap().unwrap();
        facts.endpoint = None;
        facts.vpc_id = Some("vpc-9".into());
        facts.write(&mut s);
        let section = s.raw(SECTION).unwrap();
        assert_eq!(section["rolesCreatedByUs"], true);
        assert!(section.get("endpoint").is_none());
        assert_eq!(section["vpcId"], "vpc-9");
        let keys: Vec<&String> = section.as_object().unwrap().keys().collect();
        assert_eq!(keys[..3], ["name", "region", "rolesCreatedByUs"]);
    }
}
