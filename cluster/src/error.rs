//! What went wrong, one variant per action, carrying the ids involved.

use common::StepFailure;
use common::aws::AwsError;
use common::state::StateError;
use common::step::{EXIT_FAILED, EXIT_USAGE};
use common::wait::TimedOut;

/// Every failure of `eks-cluster`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no cluster named: pass --cluster NAME, or give a state document with a `cluster` section"
    )]
    NoCluster,
    #[error("cluster name `{name}` is not valid: {reason}")]
    ClusterName { name: String, reason: String },
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    StateMismatch(String),
    #[error(
        "the state still has {sections}: remove what they made first (eks-deploy delete, eks-sg-stack delete), or pass --force"
    )]
    StillInUse { sections: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "the network brought with --vpc-id {vpc_id} is not usable: {reason} (nothing was created)"
    )]
    BadNetwork { vpc_id: String, reason: String },

    #[error("cannot choose availability zones in {region}: {reason} (nothing was created)")]
    Zones { region: String, reason: String },

    #[error("GetCallerIdentity")]
    GetCallerIdentity { source: AwsError },
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

    #[error("GetRole {role}")]
    GetRole { role: String, source: AwsError },
    #[error("CreateRole {role}")]
    CreateRole { role: String, source: AwsError },
    #[error("UpdateAssumeRolePolicy {role}")]
    UpdateAssumeRolePolicy { role: String, source: AwsError },
    #[error("ListAttachedRolePolicies {role}")]
    ListAttachedRolePolicies { role: String, source: AwsError },
    #[error("AttachRolePolicy {policy} to {role}")]
    AttachRolePolicy {
        role: String,
        policy: String,
        source: AwsError,
    },
    #[error("DetachRolePolicy {policy} from {role}")]
    DetachRolePolicy {
        role: String,
        policy: String,
        source: AwsError,
    },
    #[error("ListRolePolicies {role}")]
    ListRolePolicies { role: String, source: AwsError },
    #[error("DeleteRolePolicy {policy} of {role}")]
    DeleteRolePolicy {
        role: String,
        policy: String,
        source: AwsError,
    },
    #[error("DeleteRole {role}")]
    DeleteRole { role: String, source: AwsError },

    #[error("DescribeCluster {cluster}")]
    DescribeCluster { cluster: String, source: AwsError },
    #[error("CreateCluster {cluster}")]
    CreateCluster { cluster: String, source: AwsError },
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
        source: common::kube::KubeClientError,
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
        "restart the Deployments of namespace {namespace} of {cluster} onto the new Fargate profile (run create again to finish)"
    )]
    RestartDeployments {
        cluster: String,
        namespace: String,
        source: kube::Error,
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

impl StepFailure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::NoCluster
            | Error::ClusterName { .. }
            | Error::Input(_)
            | Error::StateMismatch(_)
            | Error::StillInUse { .. }
            | Error::State(_)
            | Error::BadNetwork { .. }
            | Error::Zones { .. } => EXIT_USAGE,
            _ => EXIT_FAILED,
        }
    }
}
