//! What went wrong. Bad input (exit 2, nothing written) is the one `Usage` variant: missing or
//! malformed facts, unreadable or incomplete manifests. Only making the webhook certificate and
//! writing the files fail otherwise (exit 1).

use std::path::PathBuf;

use common::cluster::PickError;
use common::state::StateError;

use crate::render::RenderError;
use crate::tls::TlsError;

/// Bad input of `eks-patch`, found before anything is written: exit 2.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    /// A malformed state document.
    #[error(transparent)]
    Common(#[from] common::Usage),
    #[error(
        "no cluster name: pass --cluster NAME, or give a state document with `cluster.name` (nothing was written)"
    )]
    NoCluster,
    #[error("cluster name `{name}` is not valid: {reason}")]
    ClusterName { name: String, reason: String },
    /// `--cluster` against the state's cluster.
    #[error(
        "--cluster {flag} names another cluster than the state ({known}); one state document is about one cluster (nothing was written)"
    )]
    OtherCluster { flag: String, known: String },
    /// The run's region against the state's cluster.
    #[error(
        "--region {region} names another region than the state's cluster ({known}) (nothing was written)"
    )]
    OtherRegion { region: String, known: String },
    #[error(
        "no VPC id: pass --vpc-id, or give a state document with `cluster.vpcId` or `sgStack.vpcId` (nothing was written)"
    )]
    NoVpc,
    #[error(
        "no ALB security group id: pass --security-group-id, or run `eks-sg-stack create` first so the state has `sgStack.securityGroupId` (nothing was written)"
    )]
    NoSecurityGroup,
    #[error("{flag} `{value}` does not look like {what} (nothing was written)")]
    BadValue {
        flag: &'static str,
        value: String,
        what: &'static str,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{dir} holds no manifests (*.yaml or *.yml)")]
    NoManifests { dir: PathBuf },
    #[error("{0} (nothing was written)")]
    Render(#[from] RenderError),
    #[error(
        "the manifests have no {what}; keep it in your copy or render the built-in set (nothing was written)"
    )]
    Missing { what: &'static str },
    #[error("two files would be written as {name}; rename one (nothing was written)")]
    Duplicate { name: String },
}

/// Every failure of `eks-patch`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] Usage),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

common::step_error!(Error, Usage, shared: [StateError], own: [RenderError]);

impl From<PickError> for Usage {
    /// The picker's refusals in this step's words.
    fn from(e: PickError) -> Self {
        match e {
            PickError::Missing => Usage::NoCluster,
            // `--cluster ""`: no name given.
            PickError::Invalid { name, .. } if name.is_empty() => Usage::NoCluster,
            PickError::Invalid { name, reason } => Usage::ClusterName { name, reason },
            PickError::Mismatch { flag, known } => Usage::OtherCluster { flag, known },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::StepFailure;
    use common::step::{EXIT_FAILED, EXIT_USAGE};

    #[test]
    fn only_tls_and_writing_fail_everything_else_is_usage() {
        let other = Error::from(Usage::from(PickError::Mismatch {
            flag: "b".into(),
            known: "a".into(),
        }));
        assert_eq!(other.exit_code(), EXIT_USAGE);
        assert_eq!(
            other.to_string(),
            "--cluster b names another cluster than the state (a); one state document is about one cluster (nothing was written)"
        );
        let read = Error::from(Usage::Read {
            path: "x".into(),
            source: std::io::Error::other("gone"),
        });
        assert_eq!(read.exit_code(), EXIT_USAGE);
        let write = Error::Write {
            path: "x".into(),
            source: std::io::Error::other("full"),
        };
        assert_eq!(write.exit_code(), EXIT_FAILED);
    }
}
