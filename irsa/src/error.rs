//! What went wrong: bad input (the `Usage` variant, exit 2, nothing changed) or a failure on the
//! way (exit 1).

use common::aws::AwsError;
use common::cluster::PickError;
use common::owner::NotOurs;
use common::state::StateError;

use crate::policy::INLINE_LIMIT;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, found before any change.
    #[error(transparent)]
    Usage(#[from] Usage),

    #[error("cannot fetch --policy-document {url}: {reason} (nothing was changed)")]
    FetchPolicy { url: String, reason: String },
    /// DescribeCluster failed, or the cluster does not exist.
    #[error(transparent)]
    Describe(#[from] common::cluster::DescribeError),
    #[error("cluster {cluster} reports no OIDC issuer (nothing was changed)")]
    NoIssuer { cluster: String },
    /// `GetCallerIdentity` failed or named no account.
    #[error(transparent)]
    Caller(#[from] common::iam::CallerError),
    #[error(
        "the cluster's IAM OIDC provider {arn} does not exist; run `eks-oidc ensure` first (nothing was changed)"
    )]
    NoProvider { arn: String },
    #[error("{action} {target}")]
    Iam {
        action: &'static str,
        target: String,
        source: AwsError,
    },
    /// A call on the IAM role failed: reading, making, changing or removing it.
    #[error(transparent)]
    Role(#[from] common::iam::RoleError),
    #[error(
        "namespace {namespace} does not exist in the cluster; create it first (the IAM role is in place)"
    )]
    NoNamespace { namespace: String },
    #[error("cannot {action} {target}")]
    Kube {
        action: &'static str,
        target: String,
        source: Box<kube::Error>,
    },
    /// No Kubernetes client: kubeconfig, endpoint or token.
    #[error(transparent)]
    Access(#[from] common::cluster::AccessError),
}

/// Bad input: exit 2, nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    /// Shared bad input: the cluster, the state document.
    #[error(transparent)]
    Common(#[from] common::Usage),
    #[error("--namespace `{value}` is not a valid namespace: {reason}")]
    Namespace { value: String, reason: String },
    #[error("--sa-name `{value}` is not a valid service account name: {reason}")]
    ServiceAccount { value: String, reason: String },
    #[error("--role-name `{value}` is not a valid role name: {reason}")]
    RoleName { value: String, reason: String },
    #[error("--policy-document `{value}`: {reason}")]
    PolicySource { value: String, reason: String },
    #[error("--policy-document {source_name}: {reason}")]
    PolicyDocument { source_name: String, reason: String },
    /// The inline documents together exceed IAM's limit for one role.
    #[error(
        "the inline policies come to {total} characters (whitespace not counted); IAM allows {INLINE_LIMIT} per role. Use a managed policy (--policy-arn) for the larger ones"
    )]
    PolicySize { total: usize },
    #[error("--policy-arn `{value}`: {reason}")]
    PolicyArn { value: String, reason: String },
    #[error(
        "--policy-sha256 was given {given} times for {urls} URL documents; give one per URL, in order"
    )]
    ShaCount { given: usize, urls: usize },
    #[error(
        "--policy-document {url} has SHA-256 {got}, not the pinned {expected}; check the source, then update --policy-sha256"
    )]
    ShaMismatch {
        url: String,
        expected: String,
        got: String,
    },
    /// --role-name differs from the role the state records for the service account.
    #[error(
        "the state records role {recorded} for {namespace}/{service_account}; --role-name {flag} would leave it behind. Run `irsa delete` first, or drop --role-name"
    )]
    OtherRole {
        recorded: String,
        namespace: String,
        service_account: String,
        flag: String,
    },
}

common::step_error!(Error, Usage, shared: [PickError, StateError, NotOurs]);

#[cfg(test)]
mod tests {
    use super::*;
    use common::StepFailure;
    use common::step::{EXIT_FAILED, EXIT_USAGE};

    #[test]
    fn bad_input_is_usage_and_keeps_its_text() {
        let pick: Error = PickError::Missing.into();
        assert_eq!(pick.exit_code(), EXIT_USAGE);
        assert!(pick.to_string().starts_with("no cluster named"), "{pick}");
        let size = Error::from(Usage::PolicySize { total: 10241 });
        assert_eq!(size.exit_code(), EXIT_USAGE);
        assert_eq!(
            size.to_string(),
            "the inline policies come to 10241 characters (whitespace not counted); IAM allows 10240 per role. Use a managed policy (--policy-arn) for the larger ones"
        );
        let role = Error::from(Usage::OtherRole {
            recorded: "old".into(),
            namespace: "kube-system".into(),
            service_account: "sa".into(),
            flag: "new".into(),
        });
        assert_eq!(
            role.to_string(),
            "the state records role old for kube-system/sa; --role-name new would leave it behind. Run `irsa delete` first, or drop --role-name"
        );
        let missing = Error::NoProvider { arn: "p".into() };
        assert_eq!(missing.exit_code(), EXIT_FAILED);
    }
}
