//! The command line of `eks-patch` (clap derive), in the library so that tools can render it
//! ([`command`]: the README's usage block, shell completions).

use clap::{CommandFactory, Parser, Subcommand};

use crate::PatchArgs;

/// `eks-patch [flags] [FILE]...` renders; `eks-patch completions SHELL` prints a completion
/// script instead. The rendering flags and the subcommand do not mix.
#[derive(Debug, Parser)]
#[command(
    name = "eks-patch",
    version,
    about = "Render the AWS Load Balancer Controller and 2048 manifests for an EKS Fargate cluster"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: common::CommonArgs,
    #[command(flatten)]
    pub args: PatchArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to run instead of rendering.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(common::cli::Completions),
}

/// The clap command of `eks-patch`, as `--help` shows it.
pub fn command() -> clap::Command {
    Cli::command()
}
