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
}

/// Flags of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// EKS cluster name, to find the provider when the state has no `oidc` section.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Delete the provider even though this tool did not create it (other roles may trust it).
    #[arg(long)]
    pub force: bool,
}
