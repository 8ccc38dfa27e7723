//! The flags of each command.

use std::path::PathBuf;
use std::time::Duration;

use crate::inputs;

/// Flags of `create`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Kubernetes minor version, like 1.35 (default: the state's, else 1.35).
    #[arg(long, value_name = "1.NN")]
    pub kubernetes_version: Option<String>,
    /// Namespace the Fargate profile selects; repeatable (default: the state's, else default,
    /// kube-system and game-2048, the app eks-patch renders).
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// CIDR of the VPC we make (/16 to /20).
    #[arg(long, value_name = "CIDR", default_value = inputs::DEFAULT_VPC_CIDR, conflicts_with = "vpc_id")]
    pub vpc_cidr: String,
    /// Availability zones of the VPC we make: 2 or 3.
    #[arg(long, value_name = "N", default_value_t = 2, conflicts_with = "vpc_id")]
    pub azs: u8,
    /// Bring your own VPC instead of making one (with --private-subnets).
    #[arg(long, value_name = "VPC_ID", requires = "private_subnets")]
    pub vpc_id: Option<String>,
    /// Private subnets of the brought VPC (Fargate pods), comma separated.
    #[arg(long, value_name = "IDS", requires = "vpc_id")]
    pub private_subnets: Option<String>,
    /// Public subnets of the brought VPC (internet-facing load balancers), comma separated.
    #[arg(long, value_name = "IDS", requires = "vpc_id")]
    pub public_subnets: Option<String>,
    /// How long to wait for each of CloudFormation, the cluster and the Fargate profile.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
    /// Reach Kubernetes through this kubeconfig instead of the cluster's endpoint and an EKS token.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Take over an existing cluster or IAM role of our names that eks-fargate-alb did not make:
    /// used as it is and recorded as adopted; delete leaves it standing.
    #[arg(long)]
    pub adopt: bool,
}

/// Flags of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Delete even though the state still has `deploy` or `sgStack` sections.
    #[arg(long)]
    pub force: bool,
    /// How long to wait for each deletion.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
    /// How long to wait, before each delete attempt of the network stack, for the network
    /// interfaces left in its VPC (a deleted ALB's, Fargate pods', the cluster's) to go.
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = common::cli::parse_duration)]
    pub eni_timeout: Duration,
}

/// Flags of `kubeconfig`.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeconfigArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig to merge into (`-` prints the entry instead). Default: the first file of
    /// KUBECONFIG, else ~/.kube/config.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Flags of `token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// EKS cluster name.
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
}

/// Flags of `template`.
#[derive(Debug, Clone, clap::Args)]
pub struct TemplateArgs {
    /// CIDR of the VPC (/16 to /20).
    #[arg(long, value_name = "CIDR", default_value = inputs::DEFAULT_VPC_CIDR)]
    pub vpc_cidr: String,
    /// Availability zones: 2 or 3.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub azs: u8,
}
