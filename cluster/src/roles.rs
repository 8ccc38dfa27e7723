//! The two IAM roles a Fargate-only cluster needs, made through the IAM API (so they exist with a
//! brought VPC too): the cluster role EKS assumes, and the pod execution role Fargate assumes to
//! pull images and write logs for the pods.

use std::collections::BTreeMap;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use common::aws::AwsError;
use common::owner::NotOurs;
use serde_json::{Value, json};

use crate::Error;

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

/// One role as wanted.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleSpec {
    pub name: String,
    pub trust: Value,
    pub policy_arn: String,
    pub description: String,
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
pub fn cluster_role(cluster: &str, account: &Account) -> RoleSpec {
    RoleSpec {
        name: cluster_role_name(cluster),
        trust: json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Service": "eks.amazonaws.com" },
                "Action": "sts:AssumeRole"
            }]
        }),
        policy_arn: format!(
            "arn:{}:iam::aws:policy/AmazonEKSClusterPolicy",
            account.partition
        ),
        description: format!("EKS cluster role of {cluster} (eks-fargate-alb)"),
    }
}

/// The Fargate pod execution role: trusted by Fargate only for this cluster's profiles, with
/// AmazonEKSFargatePodExecutionRolePolicy.
pub fn pod_execution_role(cluster: &str, region: &str, account: &Account) -> RoleSpec {
    RoleSpec {
        name: pod_execution_role_name(cluster),
        trust: json!({
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
        policy_arn: format!(
            "arn:{}:iam::aws:policy/AmazonEKSFargatePodExecutionRolePolicy",
            account.partition
        ),
        description: format!(
            "Fargate pod execution role of EKS cluster {cluster} (eks-fargate-alb)"
        ),
    }
}

/// A role as IAM has it.
#[derive(Debug, Clone)]
pub struct Existing {
    pub arn: String,
    pub trust: Value,
    pub tags: BTreeMap<String, String>,
}

impl Existing {
    /// True when its tags prove eks-cluster made it for `cluster` (roles made before the step
    /// tag carry only the cluster tag).
    pub fn tagged_ours(&self, cluster: &str) -> bool {
        common::owner::map_proves_ours(&self.tags, cluster, crate::eks::STEP, true)
    }

    /// Why it is not ours, in words.
    pub fn why_not_ours(&self) -> String {
        common::owner::why_not_ours(|k| self.tags.get(k).map(String::as_str))
    }
}

/// The role, `None` when it does not exist.
pub async fn read(iam: &Client, name: &str) -> Result<Option<Existing>, Error> {
    match iam.get_role().role_name(name).send().await {
        Ok(answer) => {
            let Some(role) = answer.role() else {
                return Ok(None);
            };
            Ok(Some(Existing {
                arn: role.arn().to_owned(),
                trust: role
                    .assume_role_policy_document()
                    .map(common::iam::parse_policy)
                    .unwrap_or(Value::Null),
                tags: role
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect(),
            }))
        }
        Err(e) => {
            let source = AwsError::from(e);
            if source.is("NoSuchEntity") {
                Ok(None)
            } else {
                Err(Error::GetRole {
                    role: name.to_owned(),
                    source,
                })
            }
        }
    }
}

/// What `ensure` found and did.
#[derive(Debug, Clone)]
pub struct Ensured {
    pub arn: String,
    /// Made by this run, or an earlier run of ours (it carries our tag for this cluster).
    pub ours: bool,
    pub changed: bool,
}

/// The refusal for a role of our name that is not ours.
pub fn not_ours(role: &str, existing: &Existing) -> NotOurs {
    NotOurs {
        what: "IAM role",
        name: role.to_owned(),
        why: existing.why_not_ours(),
        fix: "Pass --adopt to use it as it is (its trust policy is left alone; eks-cluster attaches the managed policy it needs and delete detaches only that), or delete or rename the role".into(),
    }
}

/// Makes the role, or brings the trust of a role we made to the wanted one; an `adopted` role
/// (`--adopt`, recorded) is used as it is. No mutating call when nothing differs.
/// [`has_policy`] and [`attach_policy`] see to its policy once its ARN is recorded. A
/// `CreateRole` whose answer was lost answers `EntityAlreadyExists` on the SDK's retry: the role
/// is then ours when it carries our tags.
pub async fn ensure(
    iam: &Client,
    spec: &RoleSpec,
    cluster: &str,
    adopted: bool,
) -> Result<Ensured, Error> {
    let trust_text = spec.trust.to_string();
    let mut changed = false;
    let (arn, ours) = match read(iam, &spec.name).await? {
        None => {
            tracing::info!("creating IAM role {}", spec.name);
            let tags: Vec<Tag> = common::owner::tags(cluster, crate::eks::STEP)
                .into_iter()
                .map(|(k, v)| {
                    Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .expect("key and value set")
                })
                .collect();
            let sent = iam
                .create_role()
                .role_name(&spec.name)
                .assume_role_policy_document(&trust_text)
                .description(&spec.description)
                .set_tags(Some(tags))
                .send()
                .await;
            let arn = match sent {
                Ok(answer) => answer
                    .role()
                    .map(|r| r.arn().to_owned())
                    .unwrap_or_default(),
                Err(e) => {
                    let source = AwsError::from(e);
                    match read(iam, &spec.name).await? {
                        Some(found)
                            if common::owner::is_already_exists(&source)
                                && found.tagged_ours(cluster) =>
                        {
                            tracing::info!(
                                "IAM role {} already exists and carries our tags: the answer to our CreateRole was lost; going on with it",
                                spec.name
                            );
                            found.arn
                        }
                        _ => {
                            return Err(Error::CreateRole {
                                role: spec.name.clone(),
                                source,
                            });
                        }
                    }
                }
            };
            changed = true;
            (arn, true)
        }
        Some(existing) if existing.tagged_ours(cluster) => {
            if existing.trust != spec.trust {
                tracing::info!("updating the trust policy of IAM role {}", spec.name);
                iam.update_assume_role_policy()
                    .role_name(&spec.name)
                    .policy_document(&trust_text)
                    .send()
                    .await
                    .map_err(|e| Error::UpdateAssumeRolePolicy {
                        role: spec.name.clone(),
                        source: e.into(),
                    })?;
                changed = true;
            }
            (existing.arn, true)
        }
        Some(existing) if adopted => {
            if existing.trust != spec.trust {
                tracing::warn!(
                    "IAM role {} (adopted) has another trust policy than eks-cluster would give it; it is left as it is",
                    spec.name
                );
            }
            (existing.arn, false)
        }
        Some(existing) => return Err(not_ours(&spec.name, &existing).into()),
    };
    Ok(Ensured { arn, ours, changed })
}

/// True when the role has its managed policy attached.
pub async fn has_policy(iam: &Client, spec: &RoleSpec) -> Result<bool, Error> {
    Ok(attached_policies(iam, &spec.name)
        .await?
        .contains(&spec.policy_arn))
}

/// Detaches `policy` from `role`; false when it was not attached (or the role is gone).
pub async fn detach_policy(iam: &Client, role: &str, policy: &str) -> Result<bool, Error> {
    match iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(policy)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let source = AwsError::from(e);
            if source.is("NoSuchEntity") {
                Ok(false)
            } else {
                Err(Error::DetachRolePolicy {
                    role: role.to_owned(),
                    policy: policy.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Attaches the role's managed policy (idempotent: attaching it again changes nothing).
pub async fn attach_policy(iam: &Client, spec: &RoleSpec) -> Result<(), Error> {
    tracing::info!("attaching {} to IAM role {}", spec.policy_arn, spec.name);
    iam.attach_role_policy()
        .role_name(&spec.name)
        .policy_arn(&spec.policy_arn)
        .send()
        .await
        .map_err(|e| Error::AttachRolePolicy {
            role: spec.name.clone(),
            policy: spec.policy_arn.clone(),
            source: e.into(),
        })?;
    Ok(())
}

async fn attached_policies(iam: &Client, role: &str) -> Result<Vec<String>, Error> {
    let mut arns = Vec::new();
    let mut marker = None;
    loop {
        let answer = iam
            .list_attached_role_policies()
            .role_name(role)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| Error::ListAttachedRolePolicies {
                role: role.to_owned(),
                source: e.into(),
            })?;
        arns.extend(
            answer
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_owned)),
        );
        if !answer.is_truncated() {
            return Ok(arns);
        }
        marker = answer.marker().map(str::to_owned);
    }
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
            cluster.policy_arn,
            "arn:aws-cn:iam::aws:policy/AmazonEKSClusterPolicy"
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
            pods.policy_arn,
            "arn:aws-cn:iam::aws:policy/AmazonEKSFargatePodExecutionRolePolicy"
        );
    }
}
