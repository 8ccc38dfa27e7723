//! The two IAM roles a Fargate-only cluster needs, made through the IAM API (so they exist with a
//! brought VPC too): the cluster role EKS assumes, and the pod execution role Fargate assumes to
//! pull images and write logs for the pods.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::Client;
use common::iam::RoleError;
use common::iam::role::{self, Desired, Owner, Ownership, Scope};
use common::owner::NotOurs;
use serde_json::{Value, json};

/// IAM's longest role name.
pub const MAX_ROLE_NAME: usize = 64;

/// Where the account lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub partition: String,
}

impl From<common::iam::Caller> for Account {
    fn from(caller: common::iam::Caller) -> Self {
        Account {
            id: caller.account,
            partition: caller.partition,
        }
    }
}

/// eks-cluster's roles: nothing beyond their trust and their one managed policy is touched (no
/// inline policies, other attachments stay, the tags of roles made before the step tag stay as
/// they are), and an adopted role keeps its trust policy (a warning says when it differs).
const SCOPE: Scope = Scope {
    retag: false,
    exclusive_managed: false,
    adopted_trust: false,
};

/// The way out when a role of our name is not ours.
const NOT_OURS_FIX: &str = "Pass --adopt to use it as it is (its trust policy is left alone; eks-cluster attaches the managed policy it needs and delete detaches only that), or delete or rename the role";

/// One of the two roles as wanted: its trust, its one managed policy, our tags.
fn desired(
    cluster: &str,
    name: String,
    trust: Value,
    policy: &str,
    account: &Account,
    description: String,
) -> Desired {
    Desired {
        name,
        trust,
        description,
        tags: common::owner::tags(cluster, crate::eks::STEP),
        inline: None,
        managed: BTreeSet::from([format!(
            "arn:{}:iam::aws:policy/{policy}",
            account.partition
        )]),
        scope: SCOPE,
    }
}

/// `eks-fargate-<cluster>-cluster`, shortened with a hash past 64 characters.
pub fn cluster_role_name(cluster: &str) -> String {
    common::names::fit(&format!("eks-fargate-{cluster}-cluster"), MAX_ROLE_NAME)
}

/// `eks-fargate-<cluster>-pod-exec`, shortened with a hash past 64 characters.
pub fn pod_execution_role_name(cluster: &str) -> String {
    common::names::fit(&format!("eks-fargate-{cluster}-pod-exec"), MAX_ROLE_NAME)
}

/// The cluster role: trusted by EKS, with AmazonEKSClusterPolicy.
pub fn cluster_role(cluster: &str, account: &Account) -> Desired {
    desired(
        cluster,
        cluster_role_name(cluster),
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Service": "eks.amazonaws.com" },
                "Action": "sts:AssumeRole"
            }]
        }),
        "AmazonEKSClusterPolicy",
        account,
        format!("EKS cluster role of {cluster} (eks-fargate-alb)"),
    )
}

/// The Fargate pod execution role: trusted by Fargate only for this cluster's profiles, with
/// AmazonEKSFargatePodExecutionRolePolicy.
pub fn pod_execution_role(cluster: &str, region: &str, account: &Account) -> Desired {
    desired(
        cluster,
        pod_execution_role_name(cluster),
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Service": "eks-fargate-pods.amazonaws.com" },
                "Action": "sts:AssumeRole",
                "Condition": {
                    "ArnLike": {
                        "aws:SourceArn": format!(
                            "arn:{}:eks:{region}:{}:fargateprofile/{cluster}/*",
                            account.partition, account.id
                        )
                    }
                }
            }]
        }),
        "AmazonEKSFargatePodExecutionRolePolicy",
        account,
        format!("Fargate pod execution role of EKS cluster {cluster} (eks-fargate-alb)"),
    )
}

/// A role as IAM has it.
pub type Existing = role::Current;

/// True when a role's tags prove eks-cluster made it for `cluster` (roles made before the step
/// tag carry only the cluster tag).
pub fn tagged_ours(tags: &BTreeMap<String, String>, cluster: &str) -> bool {
    common::owner::map_proves_ours(tags, cluster, crate::eks::STEP, true)
}

/// The role (`GetRole`: ARN, trust, tags), `None` when it does not exist.
pub async fn read(iam: &Client, name: &str) -> Result<Option<Existing>, RoleError> {
    role::get(iam, name).await
}

/// Whose the role `name` (as `found`) is: ours when its tags say so (eks-cluster's roles are
/// proven by their tags, not by the state), adopted when `adopt` (`--adopt`, or recorded in
/// `adoptedRoles`), else refused: exit 2, nothing changed.
pub fn claim(
    name: &str,
    found: Option<&Existing>,
    cluster: &str,
    adopt: bool,
) -> Result<Owner, NotOurs> {
    let proof = |tags: &BTreeMap<String, String>| tagged_ours(tags, cluster);
    role::decide(
        name,
        found,
        &Ownership {
            proof: &proof,
            recorded: false,
            adopt,
            fix: NOT_OURS_FIX,
        },
    )
}

/// Detaches `policy` from `role`; false when it was not attached (or the role is gone).
pub async fn detach_policy(iam: &Client, role: &str, policy: &str) -> Result<bool, RoleError> {
    role::detach(iam, role, policy).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            id: "123456789012".into(),
            partition: "aws-cn".into(),
        }
    }

    #[test]
    fn roles_are_ours_by_their_tags_older_ones_by_the_cluster_tag() {
        let role = |tags: BTreeMap<String, String>| Existing {
            tags,
            ..Existing::default()
        };
        let ours = role(common::owner::tags("demo", crate::eks::STEP));
        let older = role(BTreeMap::from([(
            common::owner::CLUSTER_TAG.to_owned(),
            "demo".to_owned(),
        )]));
        let irsas = role(common::owner::tags("demo", "irsa"));
        assert_eq!(claim("r", None, "demo", false).unwrap(), Owner::Absent);
        assert_eq!(claim("r", Some(&ours), "demo", false).unwrap(), Owner::Ours);
        assert_eq!(
            claim("r", Some(&older), "demo", false).unwrap(),
            Owner::Ours
        );
        assert_eq!(
            claim("r", Some(&ours), "other", true).unwrap(),
            Owner::Adopted
        );
        let refused = claim("r", Some(&irsas), "demo", false).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "IAM role r is not ours: its tags say step irsa made it for cluster demo. Nothing was changed. {NOT_OURS_FIX}"
            )
        );
    }

    #[test]
    fn names_fit_iam() {
        assert_eq!(cluster_role_name("demo"), "eks-fargate-demo-cluster");
        assert_eq!(pod_execution_role_name("demo"), "eks-fargate-demo-pod-exec");
        let long = "c".repeat(100);
        let name = pod_execution_role_name(&long);
        assert!(name.len() <= MAX_ROLE_NAME, "{name}");
        assert_eq!(name, pod_execution_role_name(&long));
        assert_ne!(cluster_role_name(&long), name);
    }

    #[test]
    fn trust_and_policies_follow_the_partition() {
        let cluster = cluster_role("demo", &account());
        assert_eq!(
            Vec::from_iter(cluster.managed),
            ["arn:aws-cn:iam::aws:policy/AmazonEKSClusterPolicy"]
        );
        assert_eq!(
            cluster.trust["Statement"][0]["Principal"]["Service"],
            "eks.amazonaws.com"
        );
        let pods = pod_execution_role("demo", "cn-north-1", &account());
        assert_eq!(
            pods.trust["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws-cn:eks:cn-north-1:123456789012:fargateprofile/demo/*"
        );
        assert_eq!(
            Vec::from_iter(pods.managed),
            ["arn:aws-cn:iam::aws:policy/AmazonEKSFargatePodExecutionRolePolicy"]
        );
        assert_eq!(
            pods.tags,
            common::owner::tags("demo", crate::eks::STEP),
            "made with our tags"
        );
        assert!(pods.inline.is_none(), "no inline policies to manage");
    }
}
