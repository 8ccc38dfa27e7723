//! One reconciliation of an IAM role for every step that makes roles (`eks-cluster`'s cluster and
//! pod execution roles, `irsa`'s service-account roles): read the role ([`get`], [`read`]),
//! decide whose it is ([`decide`]), plan the changes that bring it to the wanted role ([`plan`]),
//! make them ([`apply`]); and the removals: the whole role with its policies ([`remove_role`]),
//! or only what a step added to a role it adopted ([`remove_added`]). Every failed call is one
//! [`RoleError`] naming the action, the role and the policy.
//!
//! Each step keeps what is its own: which roles, their trust and policy documents, their tags and
//! its rule of ownership by tags, what it manages of a role ([`Scope`]), and recording in its
//! state section (as soon as a role is made: [`apply`]'s `on_created`).
//!
//! Ownership (DESIGN-NOTES, "Ownership"): a role is ours when the state records it as made or its
//! tags prove it; else it is adopted when `--adopt` asks it now or the state recorded it adopted;
//! else it is refused ([`NotOurs`], exit 2) after read-only calls. An adopted role is never
//! tagged, and only what the step recorded adding to it ([`Added`]) is ever removed from it.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use serde_json::Value;

use super::parse_policy;
use crate::aws::AwsError;
use crate::owner::NotOurs;

/// A failed IAM call on a role: reading, making, changing or removing it.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", describe(.role, .policy.as_deref()))]
pub struct RoleError {
    /// The IAM action (`DetachRolePolicy`).
    pub action: &'static str,
    pub role: String,
    /// The policy ARN or inline policy name, for the policy actions.
    pub policy: Option<String>,
    pub source: AwsError,
}

fn describe(role: &str, policy: Option<&str>) -> String {
    match policy {
        Some(policy) => format!("{policy} of role {role}"),
        None => role.to_owned(),
    }
}

/// The [`RoleError`] of `action` on `role` (and `policy`).
fn fail(
    action: &'static str,
    role: &str,
    policy: Option<&str>,
) -> impl FnOnce(AwsError) -> RoleError + use<> {
    let role = role.to_owned();
    let policy = policy.map(str::to_owned);
    move |source| RoleError {
        action,
        role,
        policy,
        source,
    }
}

/// A role as IAM has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub arn: String,
    /// The trust policy, parsed ([`parse_policy`]).
    pub trust: Value,
    pub tags: BTreeMap<String, String>,
    /// Inline policies by name; read only by [`read`] with `inline`.
    pub inline: BTreeMap<String, Value>,
    /// The ARNs of the managed policies attached; read by [`read`], not by [`get`].
    pub attached: BTreeSet<String>,
}

impl Current {
    /// Why its tags do not prove it ours, in words.
    pub fn why_not_ours(&self) -> String {
        crate::owner::why_not_ours(|k| self.tags.get(k).map(String::as_str))
    }
}

/// `GetRole`: its ARN, trust policy and tags; `None` when there is no such role.
pub async fn get(iam: &Client, name: &str) -> Result<Option<Current>, RoleError> {
    let answer = match iam.get_role().role_name(name).send().await {
        Ok(answer) => answer,
        Err(e) => {
            let source = AwsError::from(e);
            if source.is("NoSuchEntity") {
                return Ok(None);
            }
            return Err(fail("GetRole", name, None)(source));
        }
    };
    Ok(answer.role().map(|role| Current {
        arn: role.arn().to_owned(),
        trust: role
            .assume_role_policy_document()
            .map(parse_policy)
            .unwrap_or(Value::Null),
        tags: role
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
        ..Current::default()
    }))
}

/// [`get`], then (with `inline`) every inline policy and its document, then the managed
/// policies attached (every page); `None` when there is no such role.
pub async fn read(iam: &Client, name: &str, inline: bool) -> Result<Option<Current>, RoleError> {
    let Some(mut current) = get(iam, name).await? else {
        return Ok(None);
    };
    if inline {
        let mut pages = iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| fail("ListRolePolicies", name, None)(e.into()))?;
            for policy in page.policy_names() {
                let document = iam
                    .get_role_policy()
                    .role_name(name)
                    .policy_name(policy)
                    .send()
                    .await
                    .map_err(|e| fail("GetRolePolicy", name, Some(policy))(e.into()))?;
                current
                    .inline
                    .insert(policy.clone(), parse_policy(document.policy_document()));
            }
        }
    }
    let mut pages = iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| fail("ListAttachedRolePolicies", name, None)(e.into()))?;
        current.attached.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_owned)),
        );
    }
    Ok(Some(current))
}

/// Whose a role of the wanted name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// There is none: the step makes it.
    Absent,
    /// Made by the step: recorded in its state, or proven by its tags.
    Ours,
    /// Someone else's, taken over (`--adopt` now, or recorded): never tagged, and only what the
    /// step recorded adding ([`Added`]) is removed from it.
    Adopted,
}

/// A step's rule of ownership for one role.
#[derive(Clone, Copy)]
pub struct Ownership<'a> {
    /// True when a role's tags prove the step made it (the step's tag scheme, and the older
    /// tags it still accepts).
    pub proof: &'a dyn Fn(&BTreeMap<String, String>) -> bool,
    /// The step's state records the role as made by it.
    pub recorded: bool,
    /// Taking it over is asked (`--adopt`) or recorded.
    pub adopt: bool,
    /// The way out the refusal names.
    pub fix: &'a str,
}

impl std::fmt::Debug for Ownership<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ownership")
            .field("recorded", &self.recorded)
            .field("adopt", &self.adopt)
            .field("fix", &self.fix)
            .finish_non_exhaustive()
    }
}

/// Whose the role `name` is (`found` by [`get`] or [`read`]): absent; ours when recorded or
/// proven by its tags; adopted when asked or recorded; else refused (exit 2), nothing changed.
pub fn decide(name: &str, found: Option<&Current>, rule: &Ownership<'_>) -> Result<Owner, NotOurs> {
    match found {
        None => Ok(Owner::Absent),
        Some(role) if rule.recorded || (rule.proof)(&role.tags) => Ok(Owner::Ours),
        Some(_) if rule.adopt => Ok(Owner::Adopted),
        Some(role) => Err(NotOurs {
            what: "IAM role",
            name: name.to_owned(),
            why: role.why_not_ours(),
            fix: rule.fix.to_owned(),
        }),
    }
}

/// One inline policy as wanted.
#[derive(Debug, Clone, PartialEq)]
pub struct InlinePolicy {
    pub name: String,
    /// The document as sent.
    pub text: String,
    /// The document, compared with what IAM has.
    pub json: Value,
    /// Where it comes from, for the log (a file, a URL); may be empty.
    pub from: String,
}

/// What a step manages of a role that exists besides its trust policy and the managed policies
/// it wants attached (always attached when missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// A role of ours that lacks one of the wanted tags (or has another value) is tagged
    /// (`TagRole`); false leaves its tags as they are.
    pub retag: bool,
    /// Managed policies attached that the step does not want are detached (of an adopted role,
    /// only those it recorded attaching); false leaves them.
    pub exclusive_managed: bool,
    /// An adopted role gets the wanted trust policy too; false keeps its own
    /// ([`Changes::trust_kept`] says when it differs).
    pub adopted_trust: bool,
}

/// The role as a step wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub trust: Value,
    /// Given at creation.
    pub description: String,
    /// The tags it is made with (the step's ownership tags): proof that a role found after a
    /// lost `CreateRole` answer is ours.
    pub tags: BTreeMap<String, String>,
    /// The inline policies: exactly these (unwanted ones deleted; of an adopted role only those
    /// recorded as added). `None`: the step has none and leaves them alone (not even read).
    pub inline: Option<Vec<InlinePolicy>>,
    /// Managed policy ARNs to have attached.
    pub managed: BTreeSet<String>,
    pub scope: Scope,
}

/// What a step recorded adding to an adopted role: the only inline policies and attachments it
/// removes from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Added {
    pub inline: BTreeSet<String>,
    pub managed: BTreeSet<String>,
}

/// The changes to make; see [`Changes::is_empty`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub create: bool,
    pub update_trust: bool,
    /// An adopted role whose trust policy differs from the wanted one keeps it (not a change).
    pub trust_kept: bool,
    pub tag: bool,
    /// Inline policies to put, by name.
    pub put: Vec<String>,
    /// Inline policies to delete, by name.
    pub delete: Vec<String>,
    pub attach: Vec<String>,
    pub detach: Vec<String>,
}

impl Changes {
    /// True when the role is as wanted: no call to make.
    pub fn is_empty(&self) -> bool {
        Changes {
            trust_kept: false,
            ..self.clone()
        } == Changes::default()
    }

    /// One line per change, for logs and --dry-run.
    pub fn describe(&self, role: &str) -> Vec<String> {
        let mut lines = Vec::new();
        if self.create {
            lines.push(format!("create role {role}"));
        }
        if self.update_trust {
            lines.push(format!("update the trust policy of {role}"));
        }
        if self.tag {
            lines.push(format!("tag {role} as ours"));
        }
        lines.extend(self.put.iter().map(|n| format!("put inline policy {n}")));
        lines.extend(
            self.delete
                .iter()
                .map(|n| format!("delete inline policy {n}")),
        );
        lines.extend(self.attach.iter().map(|a| format!("attach {a}")));
        lines.extend(self.detach.iter().map(|a| format!("detach {a}")));
        lines
    }
}

/// What it takes to bring the role (`None`: it does not exist) to `desired`, as `owner` allows:
/// an adopted role is never tagged, keeps its trust unless [`Scope::adopted_trust`], and loses
/// only what `added` lists.
pub fn plan(current: Option<&Current>, desired: &Desired, owner: Owner, added: &Added) -> Changes {
    let wanted_inline = desired.inline.as_deref().unwrap_or_default();
    let Some(now) = current else {
        return Changes {
            create: true,
            put: wanted_inline.iter().map(|p| p.name.clone()).collect(),
            attach: desired.managed.iter().cloned().collect(),
            ..Changes::default()
        };
    };
    let adopted = owner == Owner::Adopted;
    let scope = desired.scope;
    let trust_differs = now.trust != desired.trust;
    let wanted_names: BTreeSet<&str> = wanted_inline.iter().map(|p| p.name.as_str()).collect();
    Changes {
        create: false,
        update_trust: trust_differs && (!adopted || scope.adopted_trust),
        trust_kept: trust_differs && adopted && !scope.adopted_trust,
        tag: !adopted
            && scope.retag
            && desired.tags.iter().any(|(k, v)| now.tags.get(k) != Some(v)),
        put: wanted_inline
            .iter()
            .filter(|p| now.inline.get(&p.name) != Some(&p.json))
            .map(|p| p.name.clone())
            .collect(),
        delete: match desired.inline {
            None => Vec::new(),
            Some(_) => now
                .inline
                .keys()
                .filter(|n| !wanted_names.contains(n.as_str()))
                .filter(|n| !adopted || added.inline.contains(*n))
                .cloned()
                .collect(),
        },
        attach: desired.managed.difference(&now.attached).cloned().collect(),
        detach: if scope.exclusive_managed {
            now.attached
                .difference(&desired.managed)
                .filter(|a| !adopted || added.managed.contains(*a))
                .cloned()
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Makes the changes, in an order that never leaves a gap in permissions: the role (or its
/// trust), its tags, the wanted inline policies, the removal of unwanted ones, attachments, then
/// detachments. Returns the role's ARN (`arn` when it is not created). `on_created` is called
/// as soon as the role exists, so the step records it before anything else can fail.
///
/// A `CreateRole` whose answer was lost is sent again by the SDK and told `EntityAlreadyExists`:
/// the role found then is ours, made by this run (the step looked before and found none), when
/// it carries every tag we created it with; otherwise the error stands.
pub async fn apply(
    iam: &Client,
    desired: &Desired,
    changes: &Changes,
    mut arn: String,
    on_created: impl FnOnce(&str),
) -> Result<String, RoleError> {
    let name = desired.name.as_str();
    let tags: Vec<Tag> = desired
        .tags
        .iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value set")
        })
        .collect();
    if changes.create {
        let created = iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(desired.trust.to_string())
            .description(&desired.description)
            .set_tags(Some(tags.clone()))
            .send()
            .await;
        arn = match created {
            Ok(answer) => answer
                .role()
                .map(|r| r.arn().to_owned())
                .unwrap_or_default(),
            Err(e) => {
                let source = AwsError::from(e);
                let found = if crate::owner::is_already_exists(&source) {
                    get(iam, name).await?
                } else {
                    None
                };
                match found {
                    Some(found)
                        if !desired.tags.is_empty()
                            && desired
                                .tags
                                .iter()
                                .all(|(k, v)| found.tags.get(k) == Some(v)) =>
                    {
                        tracing::info!(
                            "IAM role {name} already exists and carries our tags: the answer to our CreateRole was lost; going on with it"
                        );
                        found.arn
                    }
                    _ => return Err(fail("CreateRole", name, None)(source)),
                }
            }
        };
        tracing::info!("created IAM role {name} ({arn})");
        on_created(&arn);
    }
    if changes.update_trust {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(desired.trust.to_string())
            .send()
            .await
            .map_err(|e| fail("UpdateAssumeRolePolicy", name, None)(e.into()))?;
        tracing::info!("updated the trust policy of IAM role {name}");
    }
    if changes.tag {
        iam.tag_role()
            .role_name(name)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| fail("TagRole", name, None)(e.into()))?;
        tracing::info!("tagged IAM role {name} as ours");
    }
    for policy in desired
        .inline
        .iter()
        .flatten()
        .filter(|p| changes.put.contains(&p.name))
    {
        iam.put_role_policy()
            .role_name(name)
            .policy_name(&policy.name)
            .policy_document(&policy.text)
            .send()
            .await
            .map_err(|e| fail("PutRolePolicy", name, Some(&policy.name))(e.into()))?;
        if policy.from.is_empty() {
            tracing::info!("put inline policy {} on {name}", policy.name);
        } else {
            tracing::info!(
                "put inline policy {} on {name} (from {})",
                policy.name,
                policy.from
            );
        }
    }
    for policy in &changes.delete {
        delete_inline(iam, name, policy).await?;
    }
    for policy in &changes.attach {
        iam.attach_role_policy()
            .role_name(name)
            .policy_arn(policy)
            .send()
            .await
            .map_err(|e| fail("AttachRolePolicy", name, Some(policy))(e.into()))?;
        tracing::info!("attached {policy} to IAM role {name}");
    }
    for policy in &changes.detach {
        detach(iam, name, policy).await?;
    }
    Ok(arn)
}

/// The outcome of a removal call: true when it removed something, false when IAM says
/// `NoSuchEntity` (someone else removed it first), else the error.
fn done<T, E>(outcome: Result<T, E>) -> Result<bool, AwsError>
where
    AwsError: From<E>,
{
    match outcome.map_err(AwsError::from) {
        Ok(_) => Ok(true),
        Err(e) if e.is("NoSuchEntity") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Detaches the managed policy `policy` from `role`: false when it was not attached or the role
/// is gone.
pub async fn detach(iam: &Client, role: &str, policy: &str) -> Result<bool, RoleError> {
    let outcome = iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(policy)
        .send()
        .await;
    let detached = done(outcome).map_err(fail("DetachRolePolicy", role, Some(policy)))?;
    if detached {
        tracing::info!("detached {policy} from {role}");
    }
    Ok(detached)
}

/// Deletes the inline policy `policy` of `role`: false when there was none or the role is gone.
pub async fn delete_inline(iam: &Client, role: &str, policy: &str) -> Result<bool, RoleError> {
    let outcome = iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(policy)
        .send()
        .await;
    let deleted = done(outcome).map_err(fail("DeleteRolePolicy", role, Some(policy)))?;
    if deleted {
        tracing::info!("deleted inline policy {policy} of {role}");
    }
    Ok(deleted)
}

/// What [`remove_role`] or [`remove_added`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// False when there was no such role (or the role was kept: [`remove_added`]).
    pub role: bool,
    /// Managed policies detached.
    pub detached: Vec<String>,
    /// Inline policies deleted.
    pub deleted_inline: Vec<String>,
}

/// Removes from a role only what a step added to it (a role it adopted): the named inline
/// policies, then the named managed policy attachments; the role and everything else on it stay.
pub async fn remove_added(
    iam: &Client,
    role: &str,
    inline: &[String],
    managed: &[String],
) -> Result<Removed, RoleError> {
    let mut removed = Removed::default();
    for policy in inline {
        if delete_inline(iam, role, policy).await? {
            removed.deleted_inline.push(policy.clone());
        }
    }
    for policy in managed {
        if detach(iam, role, policy).await? {
            removed.detached.push(policy.clone());
        }
    }
    Ok(removed)
}

/// Detaches every managed policy and deletes every inline policy of the role, then the role.
/// `NoSuchEntity` at any point means someone else removed it: success, not an error.
pub async fn remove_role(iam: &Client, role: &str) -> Result<Removed, RoleError> {
    let gone = |e: &AwsError| e.is("NoSuchEntity");
    let mut removed = Removed::default();

    // Every page (IAM pages at 100); NoSuchEntity: the role is gone already.
    let attached: Result<Vec<_>, _> = iam
        .list_attached_role_policies()
        .role_name(role)
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    let attached: Vec<String> = match attached.map_err(AwsError::from) {
        Ok(list) => list
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect(),
        Err(e) if gone(&e) => return Ok(removed),
        Err(e) => return Err(fail("ListAttachedRolePolicies", role, None)(e)),
    };
    for policy in attached {
        if detach(iam, role, &policy).await? {
            removed.detached.push(policy);
        }
    }

    let inline: Result<Vec<String>, _> = iam
        .list_role_policies()
        .role_name(role)
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    let inline = match inline.map_err(AwsError::from) {
        Ok(list) => list,
        Err(e) if gone(&e) => return Ok(removed),
        Err(e) => return Err(fail("ListRolePolicies", role, None)(e)),
    };
    for policy in inline {
        if delete_inline(iam, role, &policy).await? {
            removed.deleted_inline.push(policy);
        }
    }

    let outcome = iam.delete_role().role_name(role).send().await;
    removed.role = done(outcome).map_err(fail("DeleteRole", role, None))?;
    Ok(removed)
}

/// The decision paths, against an IAM client answered in-process (`aws-smithy-mocks`).
#[cfg(test)]
mod tests;
