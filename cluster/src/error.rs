//! What went wrong, one variant per action, carrying the ids involved. Bad input (exit 2,
//! nothing changed) is the one `Usage` variant.

use common::aws::AwsError;
use common::cluster::PickError;
use common::owner::NotOurs;
use common::state::StateError;
use common::wait::TimedOut;

/// Bad input of `eks-cluster`, found before anything is changed: exit 2.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    /// No cluster, a bad name, the state about another cluster or region, a malformed state.
    #[error(transparent)]
    Common(#[from] common::Usage),
    /// A flag's value its check refused (`--vpc-cidr: ...`).
    #[error("{flag}: {reason}")]
    Flag { flag: &'static str, reason: String },
    #[error("--azs {azs}: use 2 or 3 availability zones (EKS needs subnets in at least two)")]
    Azs { azs: u8 },
    #[error("--vpc-id `{vpc_id}` is not a VPC id like vpc-0abc123")]
    VpcId { vpc_id: String },
    #[error("{flag}: `{subnet}` is not a subnet id like subnet-0abc123")]
    SubnetId { flag: &'static str, subnet: String },
    #[error("{flag} names no subnet")]
    NoSubnet { flag: &'static str },
    #[error("--namespace given {count} times; a Fargate profile takes at most 5 selectors")]
    TooManyNamespaces { count: usize },
    /// `--vpc-id` for a cluster that runs in the VPC eks-cluster made.
    #[error(
        "the state's cluster {cluster} runs in the VPC {vpc} that eks-cluster made; it cannot move to --vpc-id {vpc_id}. Delete it first or use a separate state"
    )]
    VpcMove {
        cluster: String,
        vpc: String,
        vpc_id: String,
    },
    /// Sections of later steps that use the cluster's network are still in the state.
    #[error(
        "the state still has {}: remove what they made first (eks-deploy delete, eks-sg-stack delete), or pass --force",
        sections_text(.sections)
    )]
    StillInUse { sections: Vec<&'static str> },
    #[error(
        "the network brought with --vpc-id {vpc_id} is not usable: {reason} (nothing was created)"
    )]
    BadNetwork { vpc_id: String, reason: String },
    #[error("cannot choose availability zones in {region}: {reason} (nothing was created)")]
    Zones { region: String, reason: String },
    /// `--adopt` of a cluster without `--vpc-id`: an adopted cluster keeps its own VPC.
    #[error(
        "cluster {cluster} is adopted, and it runs in a VPC eks-cluster did not make: pass --vpc-id, --private-subnets and --public-subnets of its VPC (nothing was changed)"
    )]
    AdoptNeedsVpc { cluster: String },
    #[error("no kubeconfig path: pass -o PATH, or set KUBECONFIG or HOME")]
    NoKubeconfigPath,
    /// `--admin` for a cluster whose authentication mode has no access entries.
    #[error(
        "--admin: cluster {cluster} uses authentication mode {mode}, which has no access entries, and eks-cluster does not change a cluster's authentication mode (nothing was changed). Turn access entries on (the aws-auth ConfigMap keeps working) with `aws eks update-cluster-config --name {cluster} --access-config authenticationMode=API_AND_CONFIG_MAP`, wait until the cluster is ACTIVE, and run again"
    )]
    NoAccessEntries { cluster: String, mode: String },
}

/// Every failure of `eks-cluster`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] Usage),
    #[error(transparent)]
    Caller(#[from] common::iam::CallerError),
    #[error("DescribeVpcs {vpc_id}")]
    DescribeVpcs { vpc_id: String, source: AwsError },
    #[error("DescribeSubnets {subnets}")]
    DescribeSubnets { subnets: String, source: AwsError },
    #[error("DescribeVpcAttribute {attribute} of {vpc_id}")]
    DescribeVpcAttribute {
        vpc_id: String,
        attribute: String,
        source: AwsError,
    },
    #[error("DescribeAvailabilityZones in {region}")]
    DescribeAvailabilityZones { region: String, source: AwsError },
    #[error("DescribeRouteTables of {vpc_id}")]
    DescribeRouteTables { vpc_id: String, source: AwsError },
    #[error("DescribeNatGateways of {vpc_id}")]
    DescribeNatGateways { vpc_id: String, source: AwsError },
    #[error("DescribeVpcEndpoints of {vpc_id}")]
    DescribeVpcEndpoints { vpc_id: String, source: AwsError },

    #[error("network stack {stack}")]
    NetworkStack {
        stack: String,
        source: common::cfn::CfnError,
    },
    #[error("network stack {stack} ended in {status}: {reasons}. {left}")]
    NetworkStackFailed {
        stack: String,
        status: String,
        reasons: String,
        left: String,
    },
    #[error(
        "network stack {stack} is in {status}, which needs a person: finish or delete it in the CloudFormation console, then run again"
    )]
    NetworkStackStuck { stack: String, status: String },
    #[error(
        "network stack {stack} has no output {output}; it was not made by this tool's template. Delete it or pick another cluster name"
    )]
    NetworkStackOutput { stack: String, output: &'static str },
    #[error("network stack {stack} cannot take subnets in other zones: {reason}")]
    NetworkStackZones { stack: String, reason: String },

    /// `GetRole` of an `--admin` role, checking that IAM knows it.
    #[error("GetRole {role}")]
    GetRole { role: String, source: AwsError },
    /// A call on one of the cluster's IAM roles: reading, making, changing or removing it.
    #[error(transparent)]
    Role(#[from] common::iam::RoleError),

    #[error("GetUser {user}")]
    GetUser { user: String, source: AwsError },

    #[error("ListAccessEntries of {cluster}")]
    ListAccessEntries { cluster: String, source: AwsError },
    #[error("DescribeAccessEntry {principal} of {cluster}")]
    DescribeAccessEntry {
        cluster: String,
        principal: String,
        source: AwsError,
    },
    #[error("CreateAccessEntry {principal} of {cluster}")]
    CreateAccessEntry {
        cluster: String,
        principal: String,
        source: AwsError,
    },
    #[error(
        "AssociateAccessPolicy AmazonEKSClusterAdminPolicy with the access entry of {principal} of {cluster}"
    )]
    AssociateAccessPolicy {
        cluster: String,
        principal: String,
        source: AwsError,
    },
    #[error("ListAssociatedAccessPolicies of the access entry of {principal} of {cluster}")]
    ListAssociatedAccessPolicies {
        cluster: String,
        principal: String,
        source: AwsError,
    },
    #[error("DeleteAccessEntry {principal} of {cluster}")]
    DeleteAccessEntry {
        cluster: String,
        principal: String,
        source: AwsError,
    },

    #[error("DescribeCluster {cluster}")]
    DescribeCluster { cluster: String, source: AwsError },
    #[error("CreateCluster {cluster}")]
    CreateCluster { cluster: String, source: AwsError },
    /// `UnsupportedAvailabilityZoneException`: a subnet's zone has no capacity for the cluster;
    /// EKS names the zones it would take (`validZones`, by name).
    #[error("CreateCluster {cluster}")]
    UnsupportedZones {
        cluster: String,
        valid_zones: Vec<String>,
        source: AwsError,
    },
    #[error("UpdateClusterConfig {cluster} (its public endpoint's CIDRs)")]
    UpdateClusterConfig { cluster: String, source: AwsError },
    #[error("DeleteCluster {cluster}")]
    DeleteCluster { cluster: String, source: AwsError },
    #[error("cluster {cluster} is {status}{hint}")]
    ClusterState {
        cluster: String,
        status: String,
        hint: String,
    },
    #[error(
        "cluster {cluster} reports no {what}; describe it again later (everything made so far is in the state)"
    )]
    ClusterIncomplete { cluster: String, what: &'static str },
    #[error("cluster {cluster} was not found in {region}")]
    ClusterNotFound { cluster: String, region: String },

    #[error("ListFargateProfiles of {cluster}")]
    ListFargateProfiles { cluster: String, source: AwsError },
    #[error("DescribeFargateProfile {profile} of {cluster}")]
    DescribeFargateProfile {
        cluster: String,
        profile: String,
        source: AwsError,
    },
    #[error("CreateFargateProfile {profile} of {cluster}")]
    CreateFargateProfile {
        cluster: String,
        profile: String,
        source: AwsError,
    },
    #[error("DeleteFargateProfile {profile} of {cluster}")]
    DeleteFargateProfile {
        cluster: String,
        profile: String,
        source: AwsError,
    },
    #[error("Fargate profile {profile} of {cluster} is {status}: {reasons}")]
    FargateProfileFailed {
        cluster: String,
        profile: String,
        status: String,
        reasons: String,
    },

    #[error("EKS token for {cluster}")]
    Token {
        cluster: String,
        source: common::token::TokenError,
    },
    #[error("Kubernetes client for cluster {cluster}")]
    KubernetesClient {
        cluster: String,
        source: common::cluster::AccessError,
    },
    #[error("read kube-system/coredns (its Deployment and pods) of {cluster}")]
    GetCoreDns {
        cluster: String,
        source: kube::Error,
    },
    #[error("patch Deployment kube-system/coredns of {cluster} (roll it out again onto Fargate)")]
    PatchCoreDns {
        cluster: String,
        source: kube::Error,
    },

    #[error(
        "move the Deployments of namespace {namespace} of {cluster} onto Fargate profile {profile} (the old profile is kept until they run there; run create again to finish)"
    )]
    MoveDeployments {
        cluster: String,
        namespace: String,
        profile: String,
        source: Box<kube::Error>,
    },
    /// EKS refused zones of the cluster's subnets and no usable network is left for it.
    #[error(
        "CreateCluster {cluster}: EKS refused availability zone(s) {refused} (recorded in the state's cluster.refusedZoneIds: never chosen again for this cluster); {detail}"
    )]
    ZonesRefused {
        cluster: String,
        refused: String,
        detail: String,
        source: Option<AwsError>,
    },

    #[error("read kubeconfig {path}: {reason}")]
    ReadKubeconfig { path: String, reason: String },
    #[error("write kubeconfig {path}")]
    WriteKubeconfig {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot find the path of this program for the kubeconfig's exec command")]
    CurrentExe { source: std::io::Error },

    #[error(transparent)]
    Timeout(#[from] TimedOut),
    #[error(transparent)]
    Eni(#[from] common::eni::EniError),
}

common::step_error!(Error, Usage, shared: [PickError, StateError, NotOurs]);

/// `a `deploy` section and a `sgStack` section`.
fn sections_text(sections: &[&str]) -> String {
    sections
        .iter()
        .map(|s| format!("a `{s}` section"))
        .collect::<Vec<_>>()
        .join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::StepFailure;
    use common::step::{EXIT_FAILED, EXIT_USAGE};

    #[test]
    fn usage_is_exit_2_and_keeps_its_text() {
        let in_use = Error::from(Usage::StillInUse {
            sections: vec!["deploy", "sgStack"],
        });
        assert_eq!(in_use.exit_code(), EXIT_USAGE);
        assert_eq!(
            in_use.to_string(),
            "the state still has a `deploy` section and a `sgStack` section: remove what they made first (eks-deploy delete, eks-sg-stack delete), or pass --force"
        );
        let missing = Error::from(PickError::Missing);
        assert_eq!(missing.exit_code(), EXIT_USAGE);
        assert!(missing.to_string().starts_with("no cluster named"));
        let flag = Error::from(Usage::Flag {
            flag: "--vpc-cidr",
            reason: "bad".into(),
        });
        assert_eq!(flag.to_string(), "--vpc-cidr: bad");
        let other = Error::ClusterNotFound {
            cluster: "c".into(),
            region: "r".into(),
        };
        assert_eq!(other.exit_code(), EXIT_FAILED);
    }
}
