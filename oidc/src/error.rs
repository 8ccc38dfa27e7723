//! What went wrong: bad input (the `Usage` variant, exit 2, nothing changed) or a failure on the
//! way (exit 1).

use common::aws::AwsError;
use common::cluster::PickError;
use common::iam::CallerError;
use common::owner::NotOurs;
use common::state::StateError;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, found before any change.
    #[error(transparent)]
    Usage(#[from] Usage),

    /// DescribeCluster failed, or the cluster does not exist.
    #[error(transparent)]
    Describe(#[from] common::cluster::DescribeError),
    #[error(
        "cluster {cluster} reports no OIDC issuer (identity.oidc.issuer); EKS sets it once the cluster is ACTIVE, so check its status (nothing was created)"
    )]
    NoIssuer { cluster: String },
    #[error(
        "cluster {cluster} reports the OIDC issuer `{issuer}`, which is not an issuer URL IAM takes: {reason} (nothing was created)"
    )]
    ReportedIssuer {
        cluster: String,
        issuer: String,
        reason: String,
    },
    #[error("GetCallerIdentity (needed for the account of the provider ARN)")]
    GetCallerIdentity { source: AwsError },
    #[error(
        "GetCallerIdentity returned no account id, so the provider ARN is unknown (nothing was created)"
    )]
    NoAccount,
    #[error("GetOpenIDConnectProvider {arn}")]
    GetOpenIDConnectProvider { arn: String, source: AwsError },
    #[error("CreateOpenIDConnectProvider {arn} (nothing was created)")]
    CreateOpenIDConnectProvider { arn: String, source: AwsError },
    #[error(
        "AddClientIDToOpenIDConnectProvider {client_id} to {arn} (the provider is left as it was)"
    )]
    AddClientIDToOpenIDConnectProvider {
        arn: String,
        client_id: String,
        source: AwsError,
    },
    #[error(
        "RemoveClientIDFromOpenIDConnectProvider {client_id} from {arn} (the adopted provider keeps it)"
    )]
    RemoveClientIDFromOpenIDConnectProvider {
        arn: String,
        client_id: String,
        source: AwsError,
    },
    #[error("DeleteOpenIDConnectProvider {arn} (the provider is left in place)")]
    DeleteOpenIDConnectProvider { arn: String, source: AwsError },
    #[error(
        "CreateOpenIDConnectProvider says {arn} exists, yet GetOpenIDConnectProvider does not find it; run again in a minute (IAM may still be settling)"
    )]
    Vanished { arn: String },
    #[error(
        "the state's oidc section records provider {old}, which this tool created, but cluster {cluster} now needs {new} (was the cluster made again?); run `eks-oidc delete` with this state first (it removes {old}), then `eks-oidc ensure` again. Nothing was changed"
    )]
    StaleProvider {
        cluster: String,
        old: String,
        new: String,
    },
}

/// Bad input: exit 2, nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    /// Shared bad input: the cluster, the state document, a section about another place.
    #[error(transparent)]
    Common(#[from] common::Usage),
    #[error("--issuer-ca {path}: {reason}")]
    IssuerCa { path: String, reason: String },
    #[error(
        "the state's cluster.oidcIssuer `{issuer}` is not an issuer URL IAM takes: {reason}; fix it or remove it (then DescribeCluster is asked)"
    )]
    StateIssuer { issuer: String, reason: String },
}

common::step_error!(Error, Usage, shared: [PickError, StateError, NotOurs]);

impl From<CallerError> for Error {
    /// This step's own words for the caller's failures: they name what the account is for.
    fn from(err: CallerError) -> Self {
        match err {
            CallerError::Call { source } => Error::GetCallerIdentity { source },
            CallerError::NoAccount => Error::NoAccount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::StepFailure;
    use common::step::{EXIT_FAILED, EXIT_USAGE};

    #[test]
    fn bad_input_is_exit_2_by_its_variant() {
        let usage = Error::from(Usage::IssuerCa {
            path: "ca.pem".into(),
            reason: "no certificate".into(),
        });
        assert_eq!(usage.exit_code(), EXIT_USAGE);
        assert_eq!(usage.to_string(), "--issuer-ca ca.pem: no certificate");
        assert_eq!(Error::from(PickError::Missing).exit_code(), EXIT_USAGE);
        assert_eq!(Error::NoAccount.exit_code(), EXIT_FAILED);
        assert!(matches!(
            Error::from(CallerError::NoAccount),
            Error::NoAccount
        ));
    }
}
