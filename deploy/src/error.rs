//! What went wrong. Bad input (exit 2, nothing applied or deleted) is the one `Usage` variant;
//! everything else is a failure (exit 1).

use common::cluster::PickError;
use common::state::StateError;
use common::wait::TimedOut;

use crate::fargate::Unselected;
use crate::manifests::ManifestError;
use crate::ownership::{NotOurs, NotProvenOurs};

/// Bad input of `eks-deploy`, found before anything is applied or deleted: exit 2.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    /// No cluster, a bad name, `--cluster` against the state, a malformed state.
    #[error(transparent)]
    Common(#[from] common::Usage),
    /// Manifests that cannot be read or are not ready to apply.
    #[error(transparent)]
    Manifests(#[from] ManifestError),
    /// Pods of the manifests no Fargate profile of the cluster selects.
    #[error(transparent)]
    NotOnFargate(#[from] Unselected),
    #[error(
        "EKS has no cluster {cluster} in {region}, whose Fargate profiles must select the manifests' namespaces: check --cluster and --region"
    )]
    NoSuchCluster { cluster: String, region: String },
    /// Objects of the manifests another field manager owns (`apply` without `--adopt`).
    #[error(transparent)]
    NotOurs(#[from] NotOurs),
    /// Objects `delete` cannot prove it made (no state records them).
    #[error(transparent)]
    NotProvenOurs(#[from] NotProvenOurs),
    #[error(
        "the ALB security group reaches the pods on port(s) {open} only, but {closed}: the ALB could not reach those pods. Open the port(s) first with `eks-sg-stack create --target-port {wanted}` (every port the ALB needs), then run apply again"
    )]
    ClosedPorts {
        open: String,
        closed: String,
        wanted: String,
    },
}

/// Every failure of `eks-deploy`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] Usage),

    #[error(transparent)]
    Access(#[from] common::cluster::AccessError),
    #[error("the cluster does not serve {kind} (from {file}); is its CRD in an earlier file?")]
    UnknownKind { kind: String, file: String },
    #[error("cannot {action} {target}")]
    Kube {
        action: &'static str,
        target: String,
        source: Box<kube::Error>,
    },
    #[error(
        "Ingress {ingress} is still held by its finalizers ({finalizers}): the AWS Load Balancer Controller did not release it (is it running?). Start the controller and run delete again, or pass --force to delete the controller's webhook configurations and remove the finalizers of the Ingress and its TargetGroupBindings (the ALB and its target groups may then remain: look for those tagged elbv2.k8s.aws/cluster={cluster} and ingress.k8s.aws/stack={ingress})"
    )]
    IngressStuck {
        ingress: String,
        finalizers: String,
        cluster: String,
    },
    #[error(
        "the AWS Load Balancer Controller cannot make the ALB of Ingress {ingress}: {reason}: {message} (reported {count} time(s); its latest word for {seconds} s, with no success since). {advice} Then run apply again: the controller tries again on its own with a backoff of up to 17 minutes, or at once when it restarts (kubectl describe ingress shows its events)"
    )]
    ControllerFailed {
        ingress: String,
        reason: String,
        message: String,
        count: i32,
        seconds: u64,
        advice: &'static str,
    },
    #[error(transparent)]
    Timeout(#[from] TimedOut),
    #[error("cannot read the Fargate profiles of cluster {cluster}: {source}")]
    FargateProfiles {
        cluster: String,
        source: common::aws::AwsError,
    },
}

common::step_error!(Error, Usage, shared: [PickError, StateError], own: [ManifestError, Unselected, NotOurs, NotProvenOurs]);

#[cfg(test)]
mod tests {
    use super::*;
    use common::StepFailure;
    use common::step::{EXIT_FAILED, EXIT_USAGE};

    #[test]
    fn bad_input_is_exit_2_and_keeps_its_text() {
        let missing = Error::from(PickError::Missing);
        assert_eq!(missing.exit_code(), EXIT_USAGE);
        assert!(missing.to_string().starts_with("no cluster named"));
        let no_patch = Error::from(ManifestError::NoPatch);
        assert_eq!(no_patch.exit_code(), EXIT_USAGE);
        assert_eq!(
            no_patch.to_string(),
            "no manifests: run eks-patch first (the state has no `patch` section), or pass --manifests DIR"
        );
        let gone = Error::from(Usage::NoSuchCluster {
            cluster: "c".into(),
            region: "r".into(),
        });
        assert_eq!(gone.exit_code(), EXIT_USAGE);
        let foreign = crate::ownership::Foreign {
            object: "ServiceAccount kube-system/ctl".into(),
            why: "managers \"helm\" (Update)".into(),
        };
        assert_eq!(
            Error::from(NotOurs(vec![foreign.clone()])).exit_code(),
            EXIT_USAGE
        );
        assert_eq!(
            Error::from(NotProvenOurs(vec![foreign])).exit_code(),
            EXIT_USAGE
        );
        let stuck = Error::IngressStuck {
            ingress: "a/b".into(),
            finalizers: "f".into(),
            cluster: "c".into(),
        };
        assert_eq!(stuck.exit_code(), EXIT_FAILED);
    }
}
