//! The `cluster` section of the state document.

use common::ClusterFacts;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `cluster` section: the facts other steps read ([`ClusterFacts`]: `irsa` reads
/// `oidcIssuer`, `arn`, `endpoint`, `certificateAuthorityData`; `eks-sg-stack` `vpcId`,
/// `clusterSecurityGroupId`; every step `region`), then what only `eks-cluster` needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    /// The shared facts, at the top level of the section. Flattened before `extra`, so they
    /// take their keys first.
    #[serde(flatten)]
    pub facts: ClusterFacts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
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
    /// Namespaces whose Deployments must be restarted onto the new Fargate profile (its old
    /// profile was deleted); emptied once they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fargate_restart_namespaces: Vec<String>,
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

impl Section {
    /// The adopted role of that name, when the section records one.
    pub fn adopted_role(&self, name: &str) -> Option<&AdoptedRole> {
        self.adopted_roles.iter().find(|r| r.name == name)
    }

    /// A section of `name` in `region`, nothing else known yet.
    pub fn new(name: &str, region: &str) -> Section {
        Section {
            facts: ClusterFacts {
                name: name.to_owned(),
                region: region.to_owned(),
                ..ClusterFacts::default()
            },
            ..Section::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_keys_are_the_contract() {
        let mut s = Section::new("c", "r");
        s.facts.account_id = Some("1".into());
        s.facts.certificate_authority_data = Some("Q0E=".into());
        s.facts.oidc_issuer = Some("https://oidc".into());
        s.facts.cluster_security_group_id = Some("sg-1".into());
        s.kubernetes_version = Some("1.35".into());
        s.core_dns_on_fargate = true;
        let v = serde_json::to_value(&s).unwrap();
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
}
