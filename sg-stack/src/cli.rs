//! The command line of `eks-sg-stack` (clap derive), in the library so that tools can render it
//! ([`command`]: the README's usage block, shell completions).

use clap::{CommandFactory, Parser, Subcommand};

use crate::{CreateArgs, DeleteArgs, TemplateArgs};

/// `eks-sg-stack [flags] <command>`.
#[derive(Debug, Parser)]
#[command(
    name = "eks-sg-stack",
    version,
    about = "CloudFormation stack with the ALB security group of an EKS Fargate cluster"
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
    /// Create the stack, or update it when its inputs changed.
    Create(CreateArgs),
    /// Delete the stack and wait until it is gone.
    Delete(DeleteArgs),
    /// Print the CloudFormation template.
    Template(TemplateArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(common::cli::Completions),
}

/// The clap command of `eks-sg-stack`, as `--help` shows it.
pub fn command() -> clap::Command {
    Cli::command()
}
