//! The IAM side: the role's name, its trust policy, its tags and what proves it ours, and the
//! role as irsa wants it; reading, planning and making the changes is
//! [`common::iam::role`]'s, shared with eks-cluster.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::Client;
use common::aws::AwsError;
use common::iam::RoleError;
use common::iam::parse_policy;
pub use common::iam::role::remove_added;
use common::iam::role::{self, Current, Desired, InlinePolicy, Owner, Ownership, Scope};
use common::owner::NotOurs;
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
    let host_path = common::iam::issuer_host_path(issuer);
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

/// What irsa manages of its roles: exactly the inline policies and managed policies asked, and
/// its tags (roles tagged the older way get the shared scheme); an adopted role gets the trust
/// for its service account too, since it cannot serve it otherwise.
const SCOPE: Scope = Scope {
    retag: true,
    exclusive_managed: true,
    adopted_trust: true,
};

/// The way out when a role of our name is not ours.
pub const NOT_OURS_FIX: &str = "Pass --adopt to take it over (irsa sets its trust policy for the service account and adds the policies asked, removing none it did not add; delete then removes only those and leaves the role), or name another role with --role-name";

/// The role irsa wants for `service_account` (`namespace/name`) of `cluster`: the trust policy,
/// the documents as inline policies, the managed policies, our tags.
pub fn desired(
    name: &str,
    trust: Value,
    cluster: &str,
    service_account: &str,
    documents: &[Document],
    managed: BTreeSet<String>,
) -> Desired {
    Desired {
        name: name.to_owned(),
        trust,
        description: format!("IRSA role of {service_account}, made by irsa (eks-fargate-alb)"),
        tags: our_tags(cluster, service_account),
        inline: Some(
            documents
                .iter()
                .map(|d| InlinePolicy {
                    name: d.name.clone(),
                    text: d.text.clone(),
                    json: d.json.clone(),
                    from: d.source.to_string(),
                })
                .collect(),
        ),
        managed,
        scope: SCOPE,
    }
}

/// Whose the role `name` (as `found`) is: ours when `recorded` as made or its tags prove it
/// ([`tagged_ours`]), adopted when `adopt` (`--adopt`, or recorded adopted), else refused: exit
/// 2, nothing changed.
pub fn claim(
    name: &str,
    found: Option<&Current>,
    cluster: &str,
    service_account: &str,
    recorded: bool,
    adopt: bool,
) -> Result<Owner, NotOurs> {
    let proof = |tags: &BTreeMap<String, String>| tagged_ours(tags, cluster, service_account);
    role::decide(
        name,
        found,
        &Ownership {
            proof: &proof,
            recorded,
            adopt,
            fix: NOT_OURS_FIX,
        },
    )
}

fn iam_error(action: &'static str, role: &str) -> impl FnOnce(AwsError) -> Error + use<> {
    let target = role.to_owned();
    move |source| Error::Iam {
        action,
        target,
        source,
    }
}

/// Reads the role with its inline and managed policies; `None` when it does not exist.
pub async fn read(iam: &Client, name: &str) -> Result<Option<Current>, RoleError> {
    role::read(iam, name, true).await
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
    fn the_role_as_wanted() {
        let wanted = desired(
            "r",
            json!({"t": 1}),
            "demo",
            "ns/sa",
            &[doc("a", json!({"a": 1}))],
            BTreeSet::from(["arn:x".to_string()]),
        );
        assert_eq!(wanted.tags, our_tags("demo", "ns/sa"));
        assert_eq!(
            wanted.description,
            "IRSA role of ns/sa, made by irsa (eks-fargate-alb)"
        );
        let inline = wanted.inline.as_deref().unwrap();
        assert_eq!(
            (inline[0].name.as_str(), inline[0].from.as_str()),
            ("a", "f")
        );
        assert_eq!(inline[0].json, json!({"a": 1}));
        assert_eq!(wanted.managed, BTreeSet::from(["arn:x".to_string()]));
        assert_eq!(
            wanted.scope,
            Scope {
                retag: true,
                exclusive_managed: true,
                adopted_trust: true
            }
        );
    }

    #[test]
    fn ours_by_record_or_tags_old_or_new() {
        let role = |tags: BTreeMap<String, String>| Current {
            tags,
            ..Current::default()
        };
        let ours = role(our_tags("demo", "ns/sa"));
        let legacy = role(BTreeMap::from([
            (LEGACY_TAG_MANAGED_BY.to_owned(), STEP.to_owned()),
            (LEGACY_TAG_CLUSTER.to_owned(), "demo".to_owned()),
            (LEGACY_TAG_SERVICE_ACCOUNT.to_owned(), "ns/sa".to_owned()),
        ]));
        let other_account = role(our_tags("demo", "ns/other"));
        let claim_of = |found: &Current, recorded, adopt| {
            claim("r", Some(found), "demo", "ns/sa", recorded, adopt)
        };
        assert_eq!(
            claim("r", None, "demo", "ns/sa", false, false).unwrap(),
            Owner::Absent
        );
        assert_eq!(claim_of(&ours, false, false).unwrap(), Owner::Ours);
        assert_eq!(claim_of(&legacy, false, false).unwrap(), Owner::Ours);
        assert_eq!(claim_of(&other_account, true, false).unwrap(), Owner::Ours);
        assert_eq!(
            claim_of(&other_account, false, true).unwrap(),
            Owner::Adopted
        );
        let refused = claim_of(&other_account, false, false).unwrap_err();
        assert!(refused.to_string().ends_with(NOT_OURS_FIX), "{refused}");
    }
}
