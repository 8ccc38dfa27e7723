//! The `cluster` section, written by `eks-cluster`.
//!
//! Its first keys are the cluster facts every later step reads ([`Facts`]: their names are a
//! contract between the crates, DESIGN-NOTES "Key names other steps read"); the rest is what
//! only `eks-cluster` needs (roles, stack, profiles, ownership) and what other steps read of it
//! through this module (the Fargate profile, [`fargate_profile`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::State;
use crate::state::StateError;

/// The section's key in the state document.
pub const KEY: &str = "cluster";

/// What later steps need to know about the cluster: the first keys of [`Section`] (flattened
/// into it), and the view every other step reads of the section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
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

impl Facts {
    /// The facts of the state's `cluster` section; `None` when it has none (or one without a
    /// name). A malformed fact is bad input; the keys only `eks-cluster` reads are not looked at.
    pub fn read(state: &State) -> Result<Option<Facts>, StateError> {
        Ok(state
            .section::<Facts>(KEY)?
            .filter(|facts| !facts.name.is_empty()))
    }

    /// The facts when the state's cluster is `cluster`: a state about another cluster tells
    /// nothing about this one (the same-place rule for readers).
    pub fn of(state: &State, cluster: &str) -> Result<Option<Facts>, StateError> {
        Ok(Self::read(state)?.filter(|facts| facts.name == cluster))
    }

    /// The facts of the whole section, also one without a name; none when there is no section.
    pub fn any(state: &State) -> Result<Facts, StateError> {
        Ok(state.section::<Facts>(KEY)?.unwrap_or_default())
    }

    /// The name of the state's cluster, if it has one (no error for a malformed section: the
    /// step that reads its facts reports that).
    pub fn name_in(state: &State) -> Option<&str> {
        state.str_at(KEY, "name").filter(|n| !n.is_empty())
    }

    /// The region of the state's cluster, if it has one (no error for a malformed section).
    pub fn region_in(state: &State) -> Option<&str> {
        state.str_at(KEY, "region").filter(|r| !r.is_empty())
    }
}

/// The `cluster` section: the facts other steps read ([`Facts`]: `irsa` reads `oidcIssuer`,
/// `arn`, `endpoint`, `certificateAuthorityData`; `eks-sg-stack` `vpcId`,
/// `clusterSecurityGroupId`; every step `region`), then what only `eks-cluster` needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    /// The shared facts, at the top level of the section. Flattened before `extra`, so they
    /// take their keys first.
    #[serde(flatten)]
    pub facts: Facts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// The CIDRs the cluster's public API endpoint is open to (`--public-access-cidrs`; EKS's
    /// default `0.0.0.0/0` when none were given), as set on the cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_access_cidrs: Vec<String>,
    /// `upgradePolicy.supportType` the cluster was created with (`STANDARD` or `EXTENDED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_stack_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_stack_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fargate_profiles: Vec<String>,
    /// The namespaces the `fp-<hash>` profile selects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fargate_namespaces: Vec<String>,
    /// Namespaces whose Deployments move onto the new Fargate profile (rolled with its profile
    /// label) before the profiles it replaces are deleted; emptied once those are gone. (The
    /// key keeps its name from when the Deployments were restarted after the delete.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fargate_restart_namespaces: Vec<String>,
    /// Zone ids EKS refused for this cluster (`UnsupportedAvailabilityZoneException`: every
    /// zone it did not name as valid): never chosen again for its network, and their subnets
    /// are left out of the cluster and its Fargate profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_zone_ids: Vec<String>,
    #[serde(default)]
    pub network_created_by_us: bool,
    /// The cluster was made by eks-cluster (its `CreateCluster`, or a lost answer to it proven
    /// by our tags): delete deletes it.
    #[serde(default)]
    pub cluster_created_by_us: bool,
    /// The cluster was taken over with `--adopt`: delete leaves it standing and removes only
    /// what eks-cluster added to it (its Fargate profile).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster_adopted: bool,
    /// IAM roles taken over with `--adopt`, with the managed policies eks-cluster attached to
    /// them (delete detaches those and leaves the roles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted_roles: Vec<AdoptedRole>,
    #[serde(default)]
    pub roles_created_by_us: bool,
    /// The administrators asked with `--admin` (EKS access entries), each recorded before
    /// eks-cluster makes its entry; `createdByUs` false for an entry that was there already.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_entries: Vec<AdminEntry>,
    #[serde(default)]
    pub core_dns_on_fargate: bool,
    /// Keys a newer version wrote, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A role taken over with `--adopt`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdoptedRole {
    pub name: String,
    /// The managed policies eks-cluster attached (the role did not have them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached_policies: Vec<String>,
}

/// One administrator asked for, as the state's `cluster.accessEntries` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminEntry {
    /// The IAM role or user ARN (`--admin`).
    pub principal_arn: String,
    /// eks-cluster made its access entry (or was about to: recorded before the call); a later
    /// run or `delete` removes it only when its tags say so. False: the entry was there already
    /// and is left as it is.
    pub created_by_us: bool,
}

impl Section {
    /// The whole section as the state holds it; a malformed section is bad input.
    pub fn read(state: &State) -> Result<Option<Section>, StateError> {
        state.section(KEY)
    }

    /// The adopted role of that name, when the section records one.
    pub fn adopted_role(&self, name: &str) -> Option<&AdoptedRole> {
        self.adopted_roles.iter().find(|r| r.name == name)
    }

    /// A section of `name` in `region`, nothing else known yet.
    pub fn new(name: &str, region: &str) -> Section {
        Section {
            facts: Facts {
                name: name.to_owned(),
                region: region.to_owned(),
                ..Facts::default()
            },
            ..Section::default()
        }
    }
}

/// The Fargate profile `eks-cluster` made, as the section records it, when it is the cluster's
/// one profile: its name and the namespaces it selects. `None` while a profile is being
/// replaced (two are recorded), for an adopted cluster (which may have profiles of others the
/// state does not record), when no namespaces are recorded, or when the section cannot be read
/// (then the profiles are asked of EKS).
pub fn fargate_profile(state: &State) -> Option<(String, Vec<String>)> {
    let section = Section::read(state).ok().flatten()?;
    if section.cluster_adopted {
        return None;
    }
    let [name] = section.fargate_profiles.as_slice() else {
        return None;
    };
    if section.fargate_namespaces.is_empty() {
        return None;
    }
    Some((name.clone(), section.fargate_namespaces))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(cluster: serde_json::Value) -> State {
        let mut state = State::new();
        state.set_section(KEY, &cluster);
        state
    }

    #[test]
    fn facts_read_the_contract_keys_and_ignore_the_rest() {
        let s = state(serde_json::json!({
            "name": "c", "region": "us-east-2", "vpcId": "vpc-1",
            "privateSubnetIds": ["subnet-a"], "networkStackName": "x",
        }));
        let facts = Facts::read(&s).unwrap().unwrap();
        assert_eq!(facts.name, "c");
        assert_eq!(facts.vpc_id.as_deref(), Some("vpc-1"));
        assert_eq!(facts.private_subnet_ids, ["subnet-a"]);
        assert!(Facts::of(&s, "c").unwrap().is_some());
        assert!(Facts::of(&s, "other").unwrap().is_none());
        assert!(Facts::read(&State::new()).unwrap().is_none());
        assert!(Facts::read(&state(serde_json::json!({"name": 3}))).is_err());
        // Without a name: no facts of a cluster, but the whole section's facts still read.
        let nameless = state(serde_json::json!({"vpcId": "vpc-2"}));
        assert!(Facts::read(&nameless).unwrap().is_none());
        assert_eq!(
            Facts::any(&nameless).unwrap().vpc_id.as_deref(),
            Some("vpc-2")
        );
        assert_eq!(Facts::name_in(&s), Some("c"));
        assert_eq!(Facts::region_in(&s), Some("us-east-2"));
        assert_eq!(Facts::name_in(&state(serde_json::json!({"name": 3}))), None);
    }

    #[test]
    fn section_keys_are_the_contract() {
        let mut s = Section::new("c", "r");
        s.facts.account_id = Some("1".into());
        s.facts.certificate_authority_data = Some("Q0E=".into());
        s.facts.oidc_issuer = Some("https://oidc".into());
        s.facts.cluster_security_group_id = Some("sg-1".into());
        s.kubernetes_version = Some("1.35".into());
        s.core_dns_on_fargate = true;
        s.public_access_cidrs = vec!["203.0.113.0/24".into()];
        s.support_type = Some("STANDARD".into());
        s.refused_zone_ids = vec!["use2-az1".into()];
        s.access_entries = vec![AdminEntry {
            principal_arn: "arn:aws:iam::111122223333:role/ci".into(),
            created_by_us: true,
        }];
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["accessEntries"],
            serde_json::json!([{"principalArn": "arn:aws:iam::111122223333:role/ci", "createdByUs": true}])
        );
        for key in [
            "name",
            "region",
            "accountId",
            "kubernetesVersion",
            "certificateAuthorityData",
            "oidcIssuer",
            "clusterSecurityGroupId",
            "networkCreatedByUs",
            "rolesCreatedByUs",
            "coreDnsOnFargate",
            "publicAccessCidrs",
            "supportType",
            "refusedZoneIds",
        ] {
            assert!(v.get(key).is_some(), "{key} in {v}");
        }
        assert!(v.get("facts").is_none() && v.get("extra").is_none(), "{v}");
        let back: Section = serde_json::from_value(v).unwrap();
        assert_eq!(back, s, "the facts keep their keys, not `extra`");
        assert!(back.extra.is_empty());
        let with_extra: Section = serde_json::from_value(
            serde_json::json!({"name": "c", "region": "r", "vpcId": "vpc-1", "future": 1}),
        )
        .unwrap();
        assert_eq!(with_extra.extra.get("future"), Some(&serde_json::json!(1)));
        assert_eq!(with_extra.extra.len(), 1);
        assert_eq!(with_extra.facts.vpc_id.as_deref(), Some("vpc-1"));
    }

    #[test]
    fn the_fargate_profile_only_when_eks_cluster_made_the_one_profile() {
        let ours = state(serde_json::json!({
            "name": "demo", "fargateProfiles": ["fp-0123456789ab"],
            "fargateNamespaces": ["kube-system", "game-2048"]}));
        assert_eq!(
            fargate_profile(&ours),
            Some((
                "fp-0123456789ab".to_owned(),
                vec!["kube-system".to_owned(), "game-2048".to_owned()]
            ))
        );
        for other in [
            serde_json::json!({"name": "demo"}),
            serde_json::json!({"name": "demo", "fargateProfiles": ["a", "b"], "fargateNamespaces": ["x"]}),
            serde_json::json!({"name": "demo", "fargateProfiles": ["a"]}),
            serde_json::json!({"name": "demo", "clusterAdopted": true, "fargateProfiles": ["a"], "fargateNamespaces": ["x"]}),
            serde_json::json!({"name": "demo", "fargateProfiles": "a", "fargateNamespaces": ["x"]}),
        ] {
            assert_eq!(fargate_profile(&state(other.clone())), None, "{other}");
        }
        assert_eq!(fargate_profile(&State::new()), None);
    }
}
