//! The command line of `eks-oidc` (clap derive), in the library so that tools can render it
//! ([`command`]: the README's usage block, shell completions).

use clap::{CommandFactory, Parser, Subcommand};

use crate::{DeleteArgs, EnsureArgs};

/// `eks-oidc [flags] <command>`.
#[derive(Debug, Parser)]
#[command(
    name = "eks-oidc",
    version,
    about = "IAM OIDC identity provider for the issuer of an EKS cluster"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: common::CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the provider, or add the STS client id to the one that exists.
    Ensure(EnsureArgs),
    /// Delete the provider if this tool made it (an adopted one loses only what was added).
    Delete(DeleteArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(common::cli::Completions),
}

/// The clap command of `eks-oidc`, as `--help` shows it.
pub fn command() -> clap::Command {
    Cli::command()
}
