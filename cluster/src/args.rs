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
    /// The shared `--kubeconfig` (`common::cli::KubeArgs`, taken before or after the
    /// subcommand), set by `cli`: reach Kubernetes through it instead of the cluster's endpoint
    /// and an EKS token.
    #[arg(skip)]
    pub kubeconfig: Option<PathBuf>,
    /// The shared `--context` of `kubeconfig`, set by `cli` (default: its current-context).
    #[arg(skip)]
    pub context: Option<String>,
    /// CIDR allowed to reach the cluster's public API endpoint (kubectl, these steps); repeatable
    /// or comma separated, public IPv4 only (default: the state's, else 0.0.0.0/0, open to all,
    /// with a warning). Pods reach the cluster through its private endpoint.
    #[arg(
        long = "public-access-cidrs",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub public_access_cidrs: Vec<String>,
    /// EKS support policy of a new cluster: STANDARD (a version is upgraded when its standard
    /// support ends) or EXTENDED (paid extended support). Default: the state's, else STANDARD.
    #[arg(long, value_name = "STANDARD|EXTENDED", value_enum, ignore_case = true)]
    pub support_type: Option<SupportType>,
    /// IAM role or user ARN to make a cluster administrator besides the creator (an EKS access
    /// entry with AmazonEKSClusterAdminPolicy on the cluster scope), so it can run the teardown
    /// too; repeatable (default: the state's, else none).
    #[arg(long = "admin", value_name = "ARN")]
    pub admins: Vec<String>,
    /// Remove the administrators eks-cluster added with --admin (the state's list).
    #[arg(long, conflicts_with = "admins")]
    pub no_admins: bool,
    /// Take over an existing cluster or IAM role of our names that eks-fargate-alb did not make:
    /// used as it is and recorded as adopted; delete leaves it standing.
    #[arg(long)]
    pub adopt: bool,
}

/// `upgradePolicy.supportType` of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SupportType {
    // No doc comments on the values: clap would switch `--help` to its long layout.
    // Standard support only: EKS upgrades the cluster when it ends.
    #[value(name = "STANDARD")]
    Standard,
    // Extended support, charged per cluster hour once standard support ends.
    #[value(name = "EXTENDED")]
    Extended,
}

impl SupportType {
    /// The name EKS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SupportType::Standard => "STANDARD",
            SupportType::Extended => "EXTENDED",
        }
    }

    /// The support type EKS names `text`, if it is one.
    pub fn parse(text: &str) -> Option<SupportType> {
        match text {
            "STANDARD" => Some(SupportType::Standard),
            "EXTENDED" => Some(SupportType::Extended),
            _ => None,
        }
    }
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
