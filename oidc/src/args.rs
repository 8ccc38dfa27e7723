//! The flags of each command.

use std::path::PathBuf;
use std::time::Duration;

/// Flags of `ensure`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnsureArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// PEM file with extra CA certificates to trust when reading the issuer's TLS chain (for a
    /// private issuer); the platform's certificates are trusted too.
    #[arg(long, value_name = "FILE")]
    pub issuer_ca: Option<PathBuf>,
    /// How long connecting to the issuer and its TLS handshake may take.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
    /// Take over a provider for the cluster's issuer that eks-fargate-alb did not make: used as
    /// it is (the STS client id added if missing), recorded as adopted; delete leaves it.
    #[arg(long)]
    pub adopt: bool,
}

/// Flags of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// EKS cluster name, to find the provider when the state has no `oidc` section.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}
