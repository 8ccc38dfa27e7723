//! The cluster's administrators besides its creator: `create --admin ARN` gives each IAM role or
//! user an EKS access entry (type `STANDARD`, our tags) with `AmazonEKSClusterAdminPolicy` on the
//! cluster scope, so a CI role, a colleague or a new SSO session can run the teardown too (the
//! creator alone is an administrator otherwise). Each is recorded in the state's
//! `accessEntries` before its `CreateAccessEntry`; a re-run removes the entries eks-cluster made
//! for ARNs no longer asked; `delete` removes them from an adopted cluster (a cluster eks-cluster
//! made takes its entries with it).
//!
//! An entry that exists already and that eks-cluster did not make (the creator's, one made by
//! hand, EKS's own for the Fargate pod execution role) is never changed: it is recorded as not
//! ours, and a warning says when it lacks the administrator policy. An entry is ours when its
//! tags say eks-cluster made it for this cluster: the record written before the create cannot
//! tell a create whose answer was lost from one that never reached EKS.

use std::collections::BTreeSet;

use aws_sdk_eks::Client;
use aws_sdk_eks::types::{AccessScope, AccessScopeType};
use common::aws::AwsError;
use common::{Context, State};

use crate::error::{Error, Usage};
use crate::plan::CreatePlan;
use crate::{SECTION, Section, eks, roles};

/// The access policy that makes a principal a cluster administrator.
pub const ADMIN_POLICY_NAME: &str = "AmazonEKSClusterAdminPolicy";

/// The flag that names the administrators.
const FLAG: &str = "--admin";

/// `arn:<partition>:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy`.
pub fn admin_policy_arn(partition: &str) -> String {
    format!("arn:{partition}:eks::aws:cluster-access-policy/{ADMIN_POLICY_NAME}")
}

/// One administrator asked for, as the state's `cluster.accessEntries` records it (its model
/// lives with the section's, in `common::sections::cluster`).
pub use common::sections::cluster::AdminEntry;

/// An IAM role or user, as an `--admin` value names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub partition: String,
    pub account: String,
    /// `role` or `user`.
    pub kind: &'static str,
    /// The name, without its path.
    pub name: String,
}

/// True for a character IAM allows in a role or user name (and its path).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// Parses an `--admin` value: an IAM role or user ARN
/// (`arn:<partition>:iam::<12 digits>:role/<path/>name` or `:user/…`). The reason words say
/// what is wrong and what to give instead (an STS session: its role's ARN).
pub fn parse_admin(value: &str) -> Result<Principal, String> {
    let example = "like arn:aws:iam::111122223333:role/ci-deployer";
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let ["arn", partition, service, region, account, resource] = parts.as_slice() else {
        return Err(format!(
            "`{value}` is not an ARN; give an IAM role or user ARN {example}"
        ));
    };
    let partition_ok = !partition.is_empty()
        && partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if !partition_ok || !account_ok || !region.is_empty() {
        return Err(format!(
            "`{value}` is not an IAM ARN (arn:PARTITION:iam::ACCOUNT:…, a 12-digit account, no region); give an IAM role or user ARN {example}"
        ));
    }
    let (kind, rest) = resource.split_once('/').unwrap_or((resource, ""));
    match (*service, kind) {
        ("sts", "assumed-role") => {
            let role = rest.split('/').next().unwrap_or_default();
            return Err(format!(
                "`{value}` is an STS session of the role {role}, which changes with every session; EKS takes the role's own ARN: arn:{partition}:iam::{account}:role/{role} (with the role's path if it has one: `aws iam get-role --role-name {role} --query Role.Arn`)"
            ));
        }
        ("sts", _) => {
            return Err(format!(
                "`{value}` is an STS session, not an IAM principal; give the IAM role or user ARN {example}"
            ));
        }
        ("iam", "role" | "user") => {}
        ("iam", _) => {
            return Err(format!(
                "`{value}` names an IAM {kind}; EKS access entries take IAM roles and users only ({example})"
            ));
        }
        _ => {
            return Err(format!(
                "`{value}` is not an IAM ARN; give an IAM role or user ARN {example}"
            ));
        }
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let name = segments.last().copied().unwrap_or_default();
    let well_formed = segments
        .iter()
        .all(|s| !s.is_empty() && s.chars().all(name_char))
        && name.len() <= 64
        && rest.len() <= 512 + 64;
    if !well_formed {
        return Err(format!(
            "`{value}` is not a valid IAM {kind} ARN: after `{kind}/` come an optional path and the name, made of letters, digits and +=,.@_- ({example})"
        ));
    }
    Ok(Principal {
        partition: (*partition).to_owned(),
        account: (*account).to_owned(),
        kind: if kind == "role" { "role" } else { "user" },
        name: name.to_owned(),
    })
}

/// The administrators of a `create`: `--admin` (each checked, duplicates dropped), none with
/// `--no-admins`, else the state's list. No AWS call.
pub fn pick_admins(
    flags: &[String],
    none: bool,
    previous: Option<&Section>,
) -> Result<Vec<String>, Error> {
    let from_state = flags.is_empty() && !none;
    let values: Vec<String> = if from_state {
        previous
            .map(|p| {
                p.access_entries
                    .iter()
                    .map(|e| e.principal_arn.clone())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        flags.to_vec()
    };
    let mut admins: Vec<String> = Vec::new();
    for value in values {
        parse_admin(&value).map_err(|reason| Usage::Flag {
            flag: FLAG,
            reason: if from_state {
                format!("{reason} (from the state's cluster.accessEntries)")
            } else {
                reason
            },
        })?;
        if !admins.contains(&value) {
            admins.push(value);
        }
    }
    Ok(admins)
}

/// The checks of the administrators that need AWS, read-only, before anything is made: each is
/// in the caller's partition (an ARN of another partition can never match), and each role or
/// user of the caller's account that the state does not record yet exists in IAM with that
/// path (EKS refuses it otherwise). A check IAM does not allow is skipped with a warning.
pub async fn check_principals(
    ctx: &Context,
    iam: &aws_sdk_iam::Client,
    plan: &CreatePlan,
    previous: Option<&Section>,
) -> Result<(), Error> {
    if plan.admins.is_empty() {
        return Ok(());
    }
    let caller = ctx.caller().await?;
    for arn in &plan.admins {
        let principal = parse_admin(arn).map_err(|reason| Usage::Flag { flag: FLAG, reason })?;
        if principal.partition != caller.partition {
            return Err(Usage::Flag {
                flag: FLAG,
                reason: format!(
                    "`{arn}` is in the partition {}, but these credentials ({}) work in {}: an access entry can only name a principal of the cluster's partition (arn:{}:iam::…)",
                    principal.partition,
                    if caller.arn.is_empty() {
                        caller.account.as_str()
                    } else {
                        caller.arn.as_str()
                    },
                    caller.partition,
                    caller.partition
                ),
            }
            .into());
        }
        let recorded = previous.is_some_and(|p| {
            p.facts.name == plan.cluster && p.access_entries.iter().any(|e| &e.principal_arn == arn)
        });
        if recorded || principal.account != caller.account {
            continue;
        }
        let found = match principal.kind {
            "role" => roles::read(iam, &principal.name)
                .await
                .map(|role| role.map(|r| r.arn))
                .map_err(|e| e.source),
            _ => get_user(iam, &principal.name).await,
        };
        match found {
            Ok(Some(known)) if &known == arn => {}
            Ok(Some(known)) => {
                return Err(Usage::Flag {
                    flag: FLAG,
                    reason: format!(
                        "`{arn}`: IAM knows the {} {} as `{known}` (its path is part of the ARN EKS matches); pass that ARN",
                        principal.kind, principal.name
                    ),
                }
                .into());
            }
            Ok(None) => {
                return Err(Usage::Flag {
                    flag: FLAG,
                    reason: format!(
                        "`{arn}`: account {} has no IAM {} named {} (EKS refuses an access entry for it); check the name, or create the {} first",
                        principal.account, principal.kind, principal.name, principal.kind
                    ),
                }
                .into());
            }
            Err(source) if source.is("AccessDenied") || source.is("AccessDeniedException") => {
                tracing::warn!(
                    "could not check that the IAM {} {} exists ({}); EKS will say if it does not",
                    principal.kind,
                    principal.name,
                    source
                );
            }
            Err(source) if principal.kind == "role" => {
                return Err(Error::GetRole {
                    role: principal.name,
                    source,
                });
            }
            Err(source) => {
                return Err(Error::GetUser {
                    user: principal.name,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// `GetUser`: the user's ARN, `None` when IAM has no such user.
async fn get_user(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<String>, AwsError> {
    match iam.get_user().user_name(name).send().await {
        Ok(answer) => Ok(answer.user().map(|u| u.arn().to_owned())),
        Err(e) => {
            let source = AwsError::from(e);
            if source.is("NoSuchEntity") {
                Ok(None)
            } else {
                Err(source)
            }
        }
    }
}

/// Refuses (exit 2, before any change) administrators for an existing cluster whose
/// authentication mode has no access entries (`CONFIG_MAP`): eks-cluster never changes a
/// cluster's authentication mode (the change is one-way on EKS).
pub fn check_mode(
    name: &str,
    existing: Option<&eks::Cluster>,
    admins: &[String],
) -> Result<(), Error> {
    match existing.and_then(|c| c.authentication_mode.as_deref()) {
        Some(mode) if mode == "CONFIG_MAP" && !admins.is_empty() => Err(Usage::NoAccessEntries {
            cluster: name.to_owned(),
            mode: mode.to_owned(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// Whether an existing entry was made by eks-cluster for `cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Absent,
    Ours,
    NotOurs,
}

/// The principal ARNs of the cluster's access entries.
async fn list(eks: &Client, cluster: &str) -> Result<BTreeSet<String>, Error> {
    let listed: Result<Vec<String>, _> = eks
        .list_access_entries()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    listed
        .map(|arns| arns.into_iter().collect())
        .map_err(|e| Error::ListAccessEntries {
            cluster: cluster.to_owned(),
            source: AwsError::from(e),
        })
}

/// Whose the entry of `principal` is (`DescribeAccessEntry`: its tags).
async fn whose(eks: &Client, cluster: &str, principal: &str) -> Result<Found, Error> {
    match eks
        .describe_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await
        .map_err(AwsError::from)
    {
        Ok(answer) => {
            let tags = answer.access_entry().and_then(|e| e.tags());
            let ours = tags.is_some_and(|tags| {
                common::owner::proves_ours(
                    |k| tags.get(k).map(String::as_str),
                    cluster,
                    eks::STEP,
                    false,
                )
            });
            Ok(if ours { Found::Ours } else { Found::NotOurs })
        }
        Err(source) if source.is("ResourceNotFoundException") => Ok(Found::Absent),
        Err(source) => Err(Error::DescribeAccessEntry {
            cluster: cluster.to_owned(),
            principal: principal.to_owned(),
            source,
        }),
    }
}

/// True when the entry of `principal` has the administrator policy on the cluster scope.
async fn is_admin(eks: &Client, cluster: &str, principal: &str) -> Result<bool, Error> {
    let pages: Result<Vec<_>, _> = eks
        .list_associated_access_policies()
        .cluster_name(cluster)
        .principal_arn(principal)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    let pages = pages.map_err(|e| Error::ListAssociatedAccessPolicies {
        cluster: cluster.to_owned(),
        principal: principal.to_owned(),
        source: AwsError::from(e),
    })?;
    let suffix = format!(":eks::aws:cluster-access-policy/{ADMIN_POLICY_NAME}");
    Ok(pages.iter().any(|page| {
        page.associated_access_policies().iter().any(|p| {
            p.policy_arn().is_some_and(|a| a.ends_with(&suffix))
                && p.access_scope()
                    .and_then(|s| s.r#type())
                    .is_some_and(|t| *t == AccessScopeType::Cluster)
        })
    }))
}

/// `CreateAccessEntry` (type STANDARD, our tags, an idempotency token). A retry after a lost
/// answer is told the entry is in use: it is ours when its tags say so; else someone made it
/// meanwhile ([`Found::NotOurs`]).
async fn create_entry(eks: &Client, cluster: &str, principal: &str) -> Result<Found, Error> {
    let sent = eks
        .create_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .r#type("STANDARD")
        .set_tags(Some(
            common::owner::tags(cluster, eks::STEP)
                .into_iter()
                .collect(),
        ))
        .client_request_token(common::owner::client_token())
        .send()
        .await
        .map_err(AwsError::from);
    match sent {
        Ok(_) => Ok(Found::Ours),
        Err(source) if source.is("ResourceInUseException") => {
            match whose(eks, cluster, principal).await? {
                Found::Ours => {
                    tracing::info!(
                        "the access entry of {principal} exists and carries our tags: the answer to our CreateAccessEntry was lost; going on with it"
                    );
                    Ok(Found::Ours)
                }
                Found::NotOurs => Ok(Found::NotOurs),
                Found::Absent => Err(Error::CreateAccessEntry {
                    cluster: cluster.to_owned(),
                    principal: principal.to_owned(),
                    source,
                }),
            }
        }
        Err(source) => Err(Error::CreateAccessEntry {
            cluster: cluster.to_owned(),
            principal: principal.to_owned(),
            source,
        }),
    }
}

/// `AssociateAccessPolicy`: the administrator policy on the cluster scope (the same call again
/// changes nothing).
async fn associate_admin(
    eks: &Client,
    cluster: &str,
    principal: &str,
    policy: &str,
) -> Result<(), Error> {
    eks.associate_access_policy()
        .cluster_name(cluster)
        .principal_arn(principal)
        .policy_arn(policy)
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::AssociateAccessPolicy {
            cluster: cluster.to_owned(),
            principal: principal.to_owned(),
            source: AwsError::from(e),
        })
}

/// Deletes the entry of `principal` when its tags say eks-cluster made it; one that is gone is
/// done, one that is not ours is left (said).
async fn remove_ours(eks: &Client, cluster: &str, principal: &str) -> Result<(), Error> {
    match whose(eks, cluster, principal).await? {
        Found::Absent => Ok(()),
        Found::NotOurs => {
            tracing::info!(
                "keeping the access entry of {principal} on {cluster}: its tags do not say eks-cluster made it"
            );
            Ok(())
        }
        Found::Ours => {
            match common::cluster::removed(
                eks.delete_access_entry()
                    .cluster_name(cluster)
                    .principal_arn(principal)
                    .send()
                    .await,
            ) {
                Ok(true) => tracing::info!(
                    "deleted the access entry of {principal} on {cluster}: it is no administrator any more"
                ),
                Ok(false) => {}
                Err(source) => {
                    return Err(Error::DeleteAccessEntry {
                        cluster: cluster.to_owned(),
                        principal: principal.to_owned(),
                        source,
                    });
                }
            }
            Ok(())
        }
    }
}

/// Records `principal` in the section (as ours or not), in place when it is there.
fn record(section: &mut Section, principal: &str, created_by_us: bool) {
    match section
        .access_entries
        .iter_mut()
        .find(|e| e.principal_arn == principal)
    {
        Some(entry) => entry.created_by_us = created_by_us,
        None => section.access_entries.push(AdminEntry {
            principal_arn: principal.to_owned(),
            created_by_us,
        }),
    }
}

/// Brings the cluster's administrators to `admins` (the cluster is ACTIVE; `mode` its
/// authentication mode, `partition` its partition): the entries eks-cluster made for ARNs no
/// longer asked go, and each asked ARN gets an entry with the administrator policy on the
/// cluster scope, recorded before it is made. Entries not ours are left as they are. No call
/// when nothing is asked or recorded.
pub async fn reconcile(
    state: &mut State,
    section: &mut Section,
    eks_client: &Client,
    admins: &[String],
    mode: Option<&str>,
    partition: &str,
) -> Result<(), Error> {
    let cluster = section.facts.name.clone();
    if admins.is_empty() && section.access_entries.is_empty() {
        return Ok(());
    }
    if mode == Some("CONFIG_MAP") {
        // No entry can exist in that mode (asked ones were refused before anything was made).
        section.access_entries.clear();
        state.set_section(SECTION, section);
        return Ok(());
    }
    let listed = list(eks_client, &cluster).await?;
    for old in section.access_entries.clone() {
        if admins.contains(&old.principal_arn) {
            continue;
        }
        if old.created_by_us && listed.contains(&old.principal_arn) {
            remove_ours(eks_client, &cluster, &old.principal_arn).await?;
        }
        section
            .access_entries
            .retain(|e| e.principal_arn != old.principal_arn);
        state.set_section(SECTION, section);
    }
    let policy = admin_policy_arn(partition);
    for arn in admins {
        let found = if listed.contains(arn) {
            whose(eks_client, &cluster, arn).await?
        } else {
            Found::Absent
        };
        let found = match found {
            Found::Absent => {
                // Recorded before the call: a lost answer must not leave an entry delete forgets.
                record(section, arn, true);
                state.set_section(SECTION, section);
                let made = create_entry(eks_client, &cluster, arn).await;
                if let Err(Error::CreateAccessEntry { source, .. }) = &made
                    && (source.is("InvalidParameterException")
                        || source.is("InvalidRequestException"))
                {
                    // Refused: nothing was made.
                    section.access_entries.retain(|e| &e.principal_arn != arn);
                    state.set_section(SECTION, section);
                }
                match made? {
                    Found::Ours => {
                        associate_admin(eks_client, &cluster, arn, &policy).await?;
                        tracing::info!(
                            "{arn} is an administrator of cluster {cluster}: access entry with {ADMIN_POLICY_NAME} on the cluster scope"
                        );
                        continue;
                    }
                    other => other,
                }
            }
            other => other,
        };
        match found {
            Found::Ours => {
                record(section, arn, true);
                state.set_section(SECTION, section);
                if !is_admin(eks_client, &cluster, arn).await? {
                    associate_admin(eks_client, &cluster, arn, &policy).await?;
                    tracing::info!(
                        "{arn}: associated {ADMIN_POLICY_NAME} on the cluster scope with the access entry eks-cluster made"
                    );
                }
            }
            _ => {
                record(section, arn, false);
                state.set_section(SECTION, section);
                if is_admin(eks_client, &cluster, arn).await? {
                    tracing::info!(
                        "{arn} is an administrator of cluster {cluster} already (an access entry eks-cluster did not make; left as it is)"
                    );
                } else {
                    tracing::warn!(
                        "{arn} has an access entry on cluster {cluster} that eks-cluster did not make, without {ADMIN_POLICY_NAME} on the cluster scope; it is left as it is. To make it an administrator: `aws eks associate-access-policy --cluster-name {cluster} --principal-arn {arn} --policy-arn {policy} --access-scope type=cluster`"
                    );
                }
            }
        }
    }
    Ok(())
}

/// `delete` of a cluster that stays (adopted): the entries eks-cluster made go (each only when
/// its tags say so), and the section forgets every administrator. `save` says whether the
/// state has a section to write.
pub async fn remove_recorded(
    state: &mut State,
    section: &mut Section,
    eks_client: &Client,
    save: bool,
) -> Result<(), Error> {
    let cluster = section.facts.name.clone();
    for entry in section.access_entries.clone() {
        if entry.created_by_us {
            remove_ours(eks_client, &cluster, &entry.principal_arn).await?;
        }
        section
            .access_entries
            .retain(|e| e.principal_arn != entry.principal_arn);
        if save {
            state.set_section(SECTION, section);
        }
    }
    Ok(())
}

/// What `create --dry-run` would do about the administrators (read-only).
pub async fn dry_run(
    eks_client: &Client,
    plan: &CreatePlan,
    existing: Option<&eks::Cluster>,
    previous: Option<&Section>,
) -> Result<(), Error> {
    let say = |what: String| tracing::info!("dry run: {what}");
    let cluster = &plan.cluster;
    let recorded: Vec<AdminEntry> = previous
        .filter(|p| &p.facts.name == cluster)
        .map(|p| p.access_entries.clone())
        .unwrap_or_default();
    if plan.admins.is_empty() && recorded.is_empty() {
        return Ok(());
    }
    let listed = match existing {
        Some(c) if c.authentication_mode.as_deref() != Some("CONFIG_MAP") => {
            list(eks_client, cluster).await?
        }
        _ => BTreeSet::new(),
    };
    for old in &recorded {
        if old.created_by_us
            && !plan.admins.contains(&old.principal_arn)
            && listed.contains(&old.principal_arn)
        {
            say(format!(
                "would delete the access entry of {} (made by eks-cluster, no longer asked with --admin)",
                old.principal_arn
            ));
        }
    }
    for arn in &plan.admins {
        if listed.contains(arn) {
            say(format!(
                "access entry of {arn} exists; would check that it has {ADMIN_POLICY_NAME} (changed only if eks-cluster made it)"
            ));
        } else {
            say(format!(
                "would create an access entry for {arn} with {ADMIN_POLICY_NAME} on the cluster scope"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_users_with_paths_are_admins() {
        let p = parse_admin("arn:aws:iam::111122223333:role/ci-deployer").unwrap();
        assert_eq!(
            (
                p.partition.as_str(),
                p.account.as_str(),
                p.kind,
                p.name.as_str()
            ),
            ("aws", "111122223333", "role", "ci-deployer")
        );
        let p = parse_admin(
            "arn:aws-cn:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123",
        )
        .unwrap();
        assert_eq!(
            (p.partition.as_str(), p.name.as_str()),
            ("aws-cn", "AWSReservedSSO_Admin_0123")
        );
        let p = parse_admin("arn:aws-us-gov:iam::111122223333:user/team/a.b+c=d,e@f_g-h").unwrap();
        assert_eq!((p.kind, p.name.as_str()), ("user", "a.b+c=d,e@f_g-h"));
    }

    #[test]
    fn what_is_no_iam_principal_is_refused_with_the_fix() {
        let session = parse_admin(
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123/jane@example.com",
        )
        .unwrap_err();
        assert!(
            session.contains("arn:aws:iam::111122223333:role/AWSReservedSSO_Admin_0123")
                && session.contains("aws iam get-role --role-name AWSReservedSSO_Admin_0123"),
            "{session}"
        );
        for (bad, needle) in [
            ("ci-deployer", "is not an ARN"),
            ("arn:aws:iam::1111:role/x", "12-digit account"),
            ("arn:aws:iam:us-east-1:111122223333:role/x", "no region"),
            (
                "arn:aws:iam::111122223333:group/admins",
                "names an IAM group",
            ),
            ("arn:aws:iam::111122223333:root", "names an IAM root"),
            (
                "arn:aws:sts::111122223333:federated-user/bob",
                "STS session",
            ),
            (
                "arn:aws:eks:us-east-1:111122223333:cluster/x",
                "not an IAM ARN",
            ),
            (
                "arn:aws:iam::111122223333:role/",
                "not a valid IAM role ARN",
            ),
            (
                "arn:aws:iam::111122223333:role/a//b",
                "not a valid IAM role ARN",
            ),
            ("arn:aws:iam::111122223333:role/with space", "not a valid"),
        ] {
            let reason = parse_admin(bad).unwrap_err();
            assert!(
                reason.contains(needle) && reason.contains(&format!("`{bad}`")),
                "{bad}: {reason}"
            );
        }
        let long = format!("arn:aws:iam::111122223333:role/{}", "r".repeat(65));
        assert!(parse_admin(&long).is_err());
    }

    #[test]
    fn admins_come_from_the_flags_else_the_state() {
        let role = "arn:aws:iam::111122223333:role/ci";
        let user = "arn:aws:iam::111122223333:user/jane";
        let previous = Section {
            access_entries: vec![
                AdminEntry {
                    principal_arn: role.into(),
                    created_by_us: true,
                },
                AdminEntry {
                    principal_arn: user.into(),
                    created_by_us: false,
                },
            ],
            ..Section::new("c", "us-east-2")
        };
        assert_eq!(
            pick_admins(&[], false, Some(&previous)).unwrap(),
            [role, user]
        );
        assert!(pick_admins(&[], true, Some(&previous)).unwrap().is_empty());
        assert_eq!(
            pick_admins(&[user.into(), user.into()], false, Some(&previous)).unwrap(),
            [user]
        );
        assert!(pick_admins(&[], false, None).unwrap().is_empty());
        let bad = Section {
            access_entries: vec![AdminEntry {
                principal_arn: "nope".into(),
                created_by_us: true,
            }],
            ..Section::new("c", "us-east-2")
        };
        let err = pick_admins(&[], false, Some(&bad)).unwrap_err();
        assert!(
            err.to_string().starts_with("--admin: `nope` is not an ARN")
                && err
                    .to_string()
                    .ends_with("(from the state's cluster.accessEntries)"),
            "{err}"
        );
    }

    #[test]
    fn a_config_map_cluster_cannot_take_admins() {
        let cluster = eks::Cluster {
            authentication_mode: Some("CONFIG_MAP".into()),
            ..eks::Cluster::default()
        };
        let admins = ["arn:aws:iam::111122223333:role/ci".to_owned()];
        let err = check_mode("c", Some(&cluster), &admins).unwrap_err();
        assert!(
            err.to_string().contains(
                "aws eks update-cluster-config --name c --access-config authenticationMode=API_AND_CONFIG_MAP"
            ),
            "{err}"
        );
        assert!(check_mode("c", Some(&cluster), &[]).is_ok());
        let api = eks::Cluster {
            authentication_mode: Some("API_AND_CONFIG_MAP".into()),
            ..eks::Cluster::default()
        };
        assert!(check_mode("c", Some(&api), &admins).is_ok());
        assert!(check_mode("c", None, &admins).is_ok());
        assert_eq!(
            admin_policy_arn("aws-cn"),
            "arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        );
    }
}
