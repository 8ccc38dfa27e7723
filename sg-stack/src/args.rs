//! The flags of each command.

use std::time::Duration;

/// Flags of `create`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// CIDR allowed to reach the ALB on ports 80 and 443; repeatable, IPv4 or IPv6. Default: the
    /// CIDRs already in the state, else 0.0.0.0/0.
    #[arg(long = "allowed-cidr", value_name = "CIDR")]
    pub allowed_cidrs: Vec<String>,
    /// Port the ALB may reach on the pods (the Services' target ports); repeatable. Default: the
    /// ports already in the state, else 80 (the app eks-patch renders).
    #[arg(long = "target-port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub target_ports: Vec<u16>,
    /// How long to wait for CloudFormation.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
}

/// Flags of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// EKS cluster name, to name the stack when the state has no `sgStack` section.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Delete even though the state still has a `deploy` section (the ALB may still use the group).
    #[arg(long)]
    pub force: bool,
    /// How long to wait for CloudFormation.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
    /// How long to wait, before each delete attempt, for the network interfaces that still use
    /// the ALB security group (a deleted ALB's stay for minutes) to go.
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = common::cli::parse_duration)]
    pub eni_timeout: Duration,
}

/// Flags of `template`.
#[derive(Debug, Clone, clap::Args)]
pub struct TemplateArgs {
    /// CIDR allowed to reach the ALB; repeatable (default 0.0.0.0/0).
    #[arg(long = "allowed-cidr", value_name = "CIDR")]
    pub allowed_cidrs: Vec<String>,
    /// Port the ALB may reach on the pods; repeatable (default 80).
    #[arg(long = "target-port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub target_ports: Vec<u16>,
}
