//! The `cluster` section of the state document.

use common::ClusterFacts;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::access::AdminEntry;

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
}
