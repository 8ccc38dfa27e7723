//! The IAM side: the role's name, its trust policy, reading what the role has, planning the
//! changes, and making them in an order that never leaves a gap in permissions.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use common::aws::AwsError;
use common::iam::parse_policy;
use serde_json::{Value, json};

use crate::Error;
use crate::policy::Document;

/// IAM's longest role name.
pub const MAX_ROLE_NAME: usize = 64;
/// Tag keys on the roles this tool makes (`list` finds them by these): the shared scheme
/// ([`common::owner`]: cluster and step) and the service account, `namespace/name`.
pub use common::owner::{CLUSTER_TAG as TAG_CLUSTER, STEP_TAG};
pub const TAG_SERVICE_ACCOUNT: &str = "eks-fargate-alb/service-account";
/// The step named in [`STEP_TAG`].
pub const STEP: &str = "irsa";
/// The tags of roles made before the shared scheme, still proof that irsa made a role.
pub const LEGACY_TAG_MANAGED_BY: &str = "eks-fargate-alb/managed-by";
pub const LEGACY_TAG_CLUSTER: &str = "eks-fargate-alb/irsa-cluster";
pub const LEGACY_TAG_SERVICE_ACCOUNT: &str = "eks-fargate-alb/irsa-service-account";

/// The tags of the role irsa makes for `namespace/name` of `cluster`.
pub fn our_tags(cluster: &str, service_account: &str) -> BTreeMap<String, String> {
    let mut tags = common::owner::tags(cluster, STEP);
    tags.insert(TAG_SERVICE_ACCOUNT.to_owned(), service_account.to_owned());
    tags
}

/// True when `tags` prove irsa made the role for `service_account` (`namespace/name`) of
/// `cluster`: the shared scheme, or the tags irsa used before it.
pub fn tagged_ours(tags: &BTreeMap<String, String>, cluster: &str, service_account: &str) -> bool {
    let get = |k: &str| tags.get(k).map(String::as_str);
    let shared = common::owner::map_proves_ours(tags, cluster, STEP, false)
        && get(TAG_SERVICE_ACCOUNT) == Some(service_account);
    let legacy = get(LEGACY_TAG_MANAGED_BY) == Some(STEP)
        && get(LEGACY_TAG_CLUSTER) == Some(cluster)
        && get(LEGACY_TAG_SERVICE_ACCOUNT) == Some(service_account);
    shared || legacy
}

/// The cluster a role's tags name (shared scheme, else the legacy tag).
fn tagged_cluster<'a>(tags: &BTreeMap<&'a str, &'a str>) -> Option<&'a str> {
    match tags.get(STEP_TAG) {
        Some(&STEP) => tags.get(TAG_CLUSTER).copied(),
        _ => tags.get(LEGACY_TAG_CLUSTER).copied(),
    }
}
/// The audience EKS pod identity webhook tokens carry.
pub const AUDIENCE: &str = "sts.amazonaws.com";

/// The seed's role name `sa-<sa>-in-<cluster>-<region>`, shortened with a hash suffix when it
/// does not fit IAM's 64 characters (same inputs, same name).
pub fn role_name(service_account: &str, cluster: &str, region: &str) -> String {
    common::names::fit(
        &format!("sa-{service_account}-in-{cluster}-{region}"),
        MAX_ROLE_NAME,
    )
}

/// Checks a role name given with --role-name.
pub fn check_role_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_ROLE_NAME {
        return Err(format!(
            "it has {} characters; IAM allows 1 to 64",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        Some(bad) => Err(format!(
            "`{bad}` is not allowed; use letters, digits and + = , . @ _ -"
        )),
        None => Ok(()),
    }
}

/// The trust policy: web identity from the cluster's OIDC provider, for exactly this service
/// account (`sub`) and audience (`aud`).
pub fn trust_policy(
    provider_arn: &str,
    issuer: &str,
    namespace: &str,
    service_account: &str,
) -> Value {
    let host_path = issuer.trim_start_matches("https://");
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    format!("{host_path}:sub"): format!("system:serviceaccount:{namespace}:{service_account}"),
                    format!("{host_path}:aud"): AUDIENCE
                }
            }
        }]
    })
}

/// The federated principal a trust policy names (the first one).
pub fn federated_principal(trust: &Value) -> Option<String> {
    let statements = match &trust["Statement"] {
        Value::Array(items) => items.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => return None,
    };
    statements
        .iter()
        .find_map(|s| match &s["Principal"]["Federated"] {
            Value::String(arn) => Some(arn.clone()),
            Value::Array(arns) => arns.first().and_then(|a| a.as_str()).map(str::to_owned),
            _ => None,
        })
}

/// What the role has now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub arn: String,
    pub trust: Value,
    pub tags: BTreeMap<String, String>,
    pub inline: BTreeMap<String, Value>,
    pub attached: BTreeSet<String>,
}

/// What the role should have.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub name: String,
    pub trust: Value,
    pub tags: BTreeMap<String, String>,
    pub inline: Vec<Document>,
    pub attached: BTreeSet<String>,
}

/// The changes to make; empty when the role is as wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub create: bool,
    pub update_trust: bool,
    pub tag: bool,
    pub put: Vec<String>,
    pub delete: Vec<String>,
    pub attach: Vec<String>,
    pub detach: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
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
            lines.push(format!("tag {role} as managed by irsa"));
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

/// Compares; `None` current means the role does not exist.
pub fn plan(current: Option<&Current>, wanted: &Wanted) -> Changes {
    let empty = Current::default();
    let now = current.unwrap_or(&empty);
    let wanted_inline: BTreeSet<&str> = wanted.inline.iter().map(|d| d.name.as_str()).collect();
    Changes {
        create: current.is_none(),
        update_trust: current.is_some() && now.trust != wanted.trust,
        tag: current.is_some() && wanted.tags.iter().any(|(k, v)| now.tags.get(k) != Some(v)),
        put: wanted
            .inline
            .iter()
            .filter(|d| now.inline.get(&d.name) != Some(&d.json))
            .map(|d| d.name.clone())
            .collect(),
        delete: now
            .inline
            .keys()
            .filter(|n| !wanted_inline.contains(n.as_str()))
            .cloned()
            .collect(),
        attach: wanted.attached.difference(&now.attached).cloned().collect(),
        detach: now.attached.difference(&wanted.attached).cloned().collect(),
    }
}

fn iam_error(action: &'static str, role: &str) -> impl FnOnce(AwsError) -> Error + use<> {
    let target = role.to_owned();
    move |source| Error::Iam {
        action,
        target,
        source,
    }
}

/// Reads the role; `None` when it does not exist.
pub async fn read(iam: &Client, name: &str) -> Result<Option<Current>, Error> {
    let role = match iam.get_role().role_name(name).send().await {
        Ok(answer) => answer.role().cloned(),
        Err(e) => {
            let source = AwsError::from(e);
            if source.is("NoSuchEntity") {
                return Ok(None);
            }
            return Err(iam_error("GetRole", name)(source));
        }
    };
    let Some(role) = role else { return Ok(None) };
    let mut current = Current {
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
    };
    let mut pages = iam
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| iam_error("ListRolePolicies", name)(e.into()))?;
        for policy in page.policy_names() {
            let document = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .map_err(|e| iam_error("GetRolePolicy", name)(e.into()))?;
            current
                .inline
                .insert(policy.clone(), parse_policy(document.policy_document()));
        }
    }
    let mut pages = iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| iam_error("ListAttachedRolePolicies", name)(e.into()))?;
        current.attached.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_owned)),
        );
    }
    Ok(Some(current))
}

/// Makes the changes: the role (or its trust) first, then the wanted inline policies, then the
/// removal of unwanted ones, then attachments, then detachments. Returns the role ARN; `on_created`
/// is called as soon as the role exists, so the caller can record it before anything else fails.
pub async fn apply(
    iam: &Client,
    wanted: &Wanted,
    changes: &Changes,
    mut arn: String,
    on_created: impl FnOnce(&str),
) -> Result<String, Error> {
    let name = wanted.name.as_str();
    let tags: Vec<Tag> = wanted
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
            .assume_role_policy_document(wanted.trust.to_string())
            .description(format!(
                "IRSA role of {}, made by irsa (eks-fargate-alb)",
                wanted
                    .tags
                    .get(TAG_SERVICE_ACCOUNT)
                    .map_or("a service account", String::as_str)
            ))
            .set_tags(Some(tags.clone()))
            .send()
            .await;
        arn = match created {
            Ok(answer) => answer
                .role()
                .map(|r| r.arn().to_owned())
                .unwrap_or_default(),
            Err(e) => {
                // The answer to our CreateRole was lost and the SDK's retry was told the role
                // exists: it is ours when it carries every tag we created it with.
                let source = AwsError::from(e);
                let found = if common::owner::is_already_exists(&source) {
                    read(iam, name).await?
                } else {
                    None
                };
                match found {
                    Some(found)
                        if wanted
                            .tags
                            .iter()
                            .all(|(k, v)| found.tags.get(k) == Some(v)) =>
                    {
                        tracing::info!(
                            "role {name} already exists and carries our tags: the answer to our CreateRole was lost; going on with it"
                        );
                        found.arn
                    }
                    _ => return Err(iam_error("CreateRole", name)(source)),
                }
            }
        };
        tracing::info!("created role {name} ({arn})");
        on_created(&arn);
    }
    if changes.update_trust {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(wanted.trust.to_string())
            .send()
            .await
            .map_err(|e| iam_error("UpdateAssumeRolePolicy", name)(e.into()))?;
        tracing::info!("updated the trust policy of {name}");
    }
    if changes.tag {
        iam.tag_role()
            .role_name(name)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| iam_error("TagRole", name)(e.into()))?;
    }
    for document in wanted
        .inline
        .iter()
        .filter(|d| changes.put.contains(&d.name))
    {
        iam.put_role_policy()
            .role_name(name)
            .policy_name(&document.name)
            .policy_document(&document.text)
            .send()
            .await
            .map_err(|e| iam_error("PutRolePolicy", &document.name)(e.into()))?;
        tracing::info!(
            "put inline policy {} on {name} (from {})",
            document.name,
            document.source
        );
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
            .map_err(|e| iam_error("AttachRolePolicy", policy)(e.into()))?;
        tracing::info!("attached {policy} to {name}");
    }
    for policy in &changes.detach {
        detach(iam, name, policy).await?;
    }
    Ok(arn)
}

/// The outcome of a removal, where IAM's `NoSuchEntity` means there was nothing to remove:
/// true when something was removed.
fn removed<T>(
    outcome: Result<T, AwsError>,
    action: &'static str,
    target: &str,
) -> Result<bool, Error> {
    match outcome {
        Ok(_) => Ok(true),
        Err(source) if source.is("NoSuchEntity") => Ok(false),
        Err(source) => Err(iam_error(action, target)(source)),
    }
}

async fn delete_inline(iam: &Client, role: &str, policy: &str) -> Result<(), Error> {
    let outcome = iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(policy)
        .send()
        .await
        .map_err(AwsError::from);
    if removed(outcome, "DeleteRolePolicy", policy)? {
        tracing::info!("deleted inline policy {policy} of {role}");
    }
    Ok(())
}

async fn detach(iam: &Client, role: &str, policy: &str) -> Result<(), Error> {
    let outcome = iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(policy)
        .send()
        .await
        .map_err(AwsError::from);
    if removed(outcome, "DetachRolePolicy", policy)? {
        tracing::info!("detached {policy} from {role}");
    }
    Ok(())
}

/// Removes from a role only what irsa added to it (an adopted role): the named inline policies
/// and managed policy attachments; the role and everything else on it stay.
pub async fn remove_added(
    iam: &Client,
    role: &str,
    inline: &[String],
    managed: &[String],
) -> Result<(), Error> {
    for policy in inline {
        delete_inline(iam, role, policy).await?;
    }
    for policy in managed {
        detach(iam, role, policy).await?;
    }
    Ok(())
}

/// A role this tool made, as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub role_name: String,
    pub role_arn: String,
    pub service_account: String,
    pub provider_arn: Option<String>,
    pub stale: bool,
}

/// The roles tagged for `cluster`; `stale` when their trust names another provider than `current_provider`.
pub async fn list(
    iam: &Client,
    cluster: &str,
    current_provider: Option<&str>,
) -> Result<Vec<Listed>, Error> {
    let mut out = Vec::new();
    let mut pages = iam.list_roles().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| iam_error("ListRoles", "*")(e.into()))?;
        for role in page.roles() {
            let trust = role
                .assume_role_policy_document()
                .map(parse_policy)
                .unwrap_or(Value::Null);
            let Some(provider) =
                federated_principal(&trust).filter(|p| p.contains(":oidc-provider/"))
            else {
                continue;
            };
            let tags = iam
                .list_role_tags()
                .role_name(role.role_name())
                .send()
                .await
                .map_err(|e| iam_error("ListRoleTags", role.role_name())(e.into()))?;
            let tags: BTreeMap<&str, &str> =
                tags.tags().iter().map(|t| (t.key(), t.value())).collect();
            if tagged_cluster(&tags) != Some(cluster) {
                continue;
            }
            out.push(Listed {
                role_name: role.role_name().to_owned(),
                role_arn: role.arn().to_owned(),
                service_account: tags
                    .get(TAG_SERVICE_ACCOUNT)
                    .or(tags.get(LEGACY_TAG_SERVICE_ACCOUNT))
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                stale: current_provider.is_some_and(|c| c != provider),
                provider_arn: Some(provider),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Document, Source};

    #[test]
    fn role_names_fit_and_are_deterministic() {
        assert_eq!(
            role_name("alb-ingress-controller", "eks-fargate", "us-east-2"),
            "sa-alb-ingress-controller-in-eks-fargate-us-east-2"
        );
        let cluster = "c".repeat(100);
        let a = role_name("aws-load-balancer-controller", &cluster, "us-east-2");
        assert!(a.len() <= MAX_ROLE_NAME, "{a}");
        assert_eq!(
            a,
            role_name("aws-load-balancer-controller", &cluster, "us-east-2")
        );
        assert_ne!(
            a,
            role_name("aws-load-balancer-controllers", &cluster, "us-east-2")
        );
        assert!(check_role_name(&a).is_ok());
        assert!(check_role_name("bad/name").is_err());
        assert!(check_role_name(&"r".repeat(65)).is_err());
    }

    #[test]
    fn trust_names_sub_and_aud() {
        let t = trust_policy(
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/ABC",
            "https://oidc.eks.us-east-2.amazonaws.com/id/ABC",
            "kube-system",
            "sa",
        );
        let cond = &t["Statement"][0]["Condition"]["StringEquals"];
        assert_eq!(
            cond["oidc.eks.us-east-2.amazonaws.com/id/ABC:sub"],
            "system:serviceaccount:kube-system:sa"
        );
        assert_eq!(
            cond["oidc.eks.us-east-2.amazonaws.com/id/ABC:aud"],
            "sts.amazonaws.com"
        );
        assert_eq!(t["Statement"][0]["Action"], "sts:AssumeRoleWithWebIdentity");
        assert_eq!(
            federated_principal(&t).unwrap(),
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/ABC"
        );
    }

    fn doc(name: &str, json: Value) -> Document {
        Document {
            name: name.into(),
            source: Source::File("f".into()),
            text: json.to_string(),
            json,
            sha256: String::new(),
        }
    }

    #[test]
    fn plans() {
        let wanted = Wanted {
            name: "r".into(),
            trust: json!({"t": 1}),
            tags: BTreeMap::from([("k".to_string(), "v".to_string())]),
            inline: vec![doc("a", json!({"a": 1})), doc("b", json!({"b": 1}))],
            attached: BTreeSet::from(["arn:x".to_string()]),
        };
        let fresh = plan(None, &wanted);
        assert!(fresh.create && !fresh.update_trust && !fresh.tag);
        assert_eq!(fresh.put, ["a", "b"]);
        assert_eq!(fresh.attach, ["arn:x"]);

        let same = Current {
            arn: "arn".into(),
            trust: json!({"t": 1}),
            tags: wanted.tags.clone(),
            inline: BTreeMap::from([
                ("a".to_string(), json!({"a": 1})),
                ("b".to_string(), json!({"b": 1})),
            ]),
            attached: BTreeSet::from(["arn:x".to_string()]),
        };
        assert!(plan(Some(&same), &wanted).is_empty());

        let drifted = Current {
            trust: json!({"t": 0}),
            tags: BTreeMap::new(),
            inline: BTreeMap::from([
                ("a".to_string(), json!({"a": 0})),
                ("old".to_string(), json!({})),
            ]),
            attached: BTreeSet::from(["arn:y".to_string()]),
            ..same
        };
        let changes = plan(Some(&drifted), &wanted);
        assert!(!changes.create && changes.update_trust && changes.tag);
        assert_eq!(changes.put, ["a", "b"]);
        assert_eq!(changes.delete, ["old"]);
        assert_eq!(changes.attach, ["arn:x"]);
        assert_eq!(changes.detach, ["arn:y"]);
        assert_eq!(changes.describe("r").len(), 7);
    }
}
