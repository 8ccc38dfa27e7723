//! What is ours: the one tag scheme every step puts on what it makes, the proof of ownership
//! when no state records a resource, the refusal when a resource is not proven ours, and the
//! idempotency tokens that let a create whose answer was lost be sent again.
//!
//! The rule (DESIGN-NOTES, "Ownership"): a resource a step makes is recorded as made in its state
//! section the moment it exists; without such a record, a resource is ours only when it carries
//! [`CLUSTER_TAG`] valued with the cluster and [`STEP_TAG`] valued with the step. What is not
//! proven ours is never changed or deleted; `--adopt` takes it over explicitly and is recorded,
//! and teardown then leaves it standing and removes only what the step added to it.

use std::collections::BTreeMap;

/// The tag every resource we make carries, valued with the cluster's name.
pub const CLUSTER_TAG: &str = "eks-fargate-alb/cluster";
/// The tag the AWS Load Balancer Controller puts on what it makes (load balancers, target
/// groups, security groups), valued with the cluster's name.
pub const CONTROLLER_CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";
/// The tag naming the step that made it (`cluster`, `oidc`, `irsa`, `sg-stack`).
pub const STEP_TAG: &str = "eks-fargate-alb/step";

/// The tags of a resource `step` makes for `cluster`.
pub fn tags(cluster: &str, step: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (CLUSTER_TAG.to_owned(), cluster.to_owned()),
        (STEP_TAG.to_owned(), step.to_owned()),
    ])
}

/// True when `tag` (a lookup of a resource's tags) proves it was made by `step` for `cluster`.
/// Resources made before the step tag existed carry only the cluster tag; `legacy_step` (the one
/// step that made such resources) accepts those too.
pub fn proves_ours<'a>(
    tag: impl Fn(&str) -> Option<&'a str>,
    cluster: &str,
    step: &str,
    legacy_step: bool,
) -> bool {
    tag(CLUSTER_TAG) == Some(cluster)
        && match tag(STEP_TAG) {
            Some(s) => s == step,
            None => legacy_step,
        }
}

/// [`proves_ours`] over a map of tags.
pub fn map_proves_ours(
    tags: &BTreeMap<String, String>,
    cluster: &str,
    step: &str,
    legacy_step: bool,
) -> bool {
    proves_ours(
        |k| tags.get(k).map(String::as_str),
        cluster,
        step,
        legacy_step,
    )
}

/// Why a resource is not ours, in words: what its tags say.
pub fn why_not_ours<'a>(tag: impl Fn(&str) -> Option<&'a str>) -> String {
    match (tag(CLUSTER_TAG), tag(STEP_TAG)) {
        (None, _) => format!("it carries no {CLUSTER_TAG} tag and no state records it as made"),
        (Some(c), Some(s)) => format!("its tags say step {s} made it for cluster {c}"),
        (Some(c), None) => format!("its {CLUSTER_TAG} tag names cluster {c}"),
    }
}

/// A resource of the name a step would make, change or delete that is not proven ours: exit 2,
/// nothing changed.
#[derive(Debug, thiserror::Error)]
#[error("{what} {name} is not ours: {why}. Nothing was changed. {fix}")]
pub struct NotOurs {
    /// `EKS cluster`, `IAM role`, `CloudFormation stack`.
    pub what: &'static str,
    pub name: String,
    pub why: String,
    /// How to take it over, or to go on without it.
    pub fix: String,
}

/// The fix for a resource a delete refuses: tag it as ours, or delete it by hand.
pub fn delete_fix(tag_command: &str) -> String {
    format!(
        "If this tool should delete it, take it over by tagging it ({tag_command}) and run again; otherwise delete it yourself or leave it"
    )
}

/// A new idempotency token (`clientRequestToken`, `ClientRequestToken`, `ClientToken`): the SDK
/// sends the same one on its own retries, so a create whose answer was lost is recognised by AWS
/// where the API honours it. CloudFormation allows `[a-zA-Z][-a-zA-Z0-9]*`, up to 128 characters.
pub fn client_token() -> String {
    format!(
        "eks-fa-{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

/// True for the "already exists" answers of a create: `EntityAlreadyExists` (IAM),
/// `AlreadyExistsException` (CloudFormation), `ResourceInUseException` saying "already exists"
/// (EKS), `InvalidGroup.Duplicate` and similar (EC2).
pub fn is_already_exists(source: &crate::aws::AwsError) -> bool {
    source.is("EntityAlreadyExists")
        || source.is("AlreadyExistsException")
        || source.code().is_some_and(|c| c.ends_with(".Duplicate"))
        || (source.is("ResourceInUseException") && source.text().contains("already exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_needs_both_tags_or_the_legacy_cluster_tag() {
        let ours = tags("demo", "oidc");
        assert!(map_proves_ours(&ours, "demo", "oidc", false));
        assert!(!map_proves_ours(&ours, "other", "oidc", false));
        assert!(!map_proves_ours(&ours, "demo", "irsa", false));
        let legacy = BTreeMap::from([(CLUSTER_TAG.to_owned(), "demo".to_owned())]);
        assert!(map_proves_ours(&legacy, "demo", "cluster", true));
        assert!(!map_proves_ours(&legacy, "demo", "irsa", false));
        assert!(!map_proves_ours(&BTreeMap::new(), "demo", "cluster", true));
    }

    #[test]
    fn the_reason_names_what_the_tags_say() {
        let none = BTreeMap::<String, String>::new();
        assert!(
            why_not_ours(|k| none.get(k).map(String::as_str))
                .contains("no eks-fargate-alb/cluster tag")
        );
        let other = tags("other", "irsa");
        assert_eq!(
            why_not_ours(|k| other.get(k).map(String::as_str)),
            "its tags say step irsa made it for cluster other"
        );
    }

    #[test]
    fn tokens_are_new_each_time_and_fit_every_api() {
        let (a, b) = (client_token(), client_token());
        assert_ne!(a, b);
        assert!(a.len() <= 64 && a.starts_with("eks-fa-"), "{a}");
        assert!(
            a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{a}"
        );
    }
}
