//! What went wrong: bad input (the `Usage` variant, exit 2, nothing changed) or a failure on the
//! way (exit 1).

use common::aws::AwsError;
use common::cluster::PickError;
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
    #[error("DescribeSubnets of cluster {cluster}")]
    DescribeSubnets { cluster: String, source: AwsError },
    #[error("DescribeSecurityGroups for cluster {cluster}")]
    DescribeSecurityGroups { cluster: String, source: AwsError },
    #[error(
        "cluster {cluster} reports neither a VPC nor subnets, so its VPC is unknown (nothing was created)"
    )]
    NoVpc { cluster: String },
    #[error("the subnets of cluster {cluster} lie in several VPCs ({vpcs}); nothing was created")]
    SubnetsInManyVpcs { cluster: String, vpcs: String },
    #[error(
        "no cluster security group for cluster {cluster}: EKS reported none and no security group in {vpc_id} is tagged aws:eks:cluster-name={cluster} (nothing was created)"
    )]
    NoClusterSecurityGroup { cluster: String, vpc_id: String },
    #[error(
        "several security groups are tagged aws:eks:cluster-name={cluster} ({groups}); put the right one in the state's cluster.clusterSecurityGroupId (nothing was created)"
    )]
    AmbiguousClusterSecurityGroup { cluster: String, groups: String },

    #[error("stack {stack} ended in {status}: {reasons}. {left}")]
    StackFailed {
        stack: String,
        status: String,
        reasons: String,
        left: String,
    },
    #[error(
        "stack {stack} is in {status}, which needs a person: continue the update rollback or delete the stack in the CloudFormation console, then run again"
    )]
    StackStuck { stack: String, status: String },
    #[error(
        "stack {stack} has no output {output}; it was not made by this tool's template. Delete it or pick another cluster"
    )]
    NoOutput { stack: String, output: &'static str },
    #[error(transparent)]
    Stack(#[from] common::cfn::CfnError),
    #[error(transparent)]
    Eni(#[from] common::eni::EniError),
}

/// Bad input: exit 2, nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    /// Shared bad input: the cluster, the state document, a section about another place.
    #[error(transparent)]
    Common(#[from] common::Usage),
    #[error("--allowed-cidr `{value}`: {reason}")]
    Cidr { value: String, reason: String },
    #[error(
        "the state still has a `deploy` section, so the ALB may still use this security group; run `eks-deploy delete` first, or pass --force"
    )]
    DeployStillThere,
}

common::step_error!(Error, Usage, shared: [PickError, StateError, NotOurs]);

#[cfg(test)]
mod tests {
    use super::*;
    use common::StepFailure;
    use common::step::{EXIT_FAILED, EXIT_USAGE};

    #[test]
    fn bad_input_is_exit_2_by_its_variant() {
        assert_eq!(Error::from(Usage::DeployStillThere).exit_code(), EXIT_USAGE);
        assert_eq!(Error::from(PickError::Missing).exit_code(), EXIT_USAGE);
        let stuck = Error::StackStuck {
            stack: "s".into(),
            status: "UPDATE_ROLLBACK_FAILED".into(),
        };
        assert_eq!(stuck.exit_code(), EXIT_FAILED);
    }
}
