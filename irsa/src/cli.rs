//! The command line of `irsa` (clap derive), in the library so that tools can render it
//! ([`command`]: the README's usage block, shell completions).

use clap::{CommandFactory, Parser, Subcommand};

use crate::{DeleteArgs, EnsureArgs, ListArgs};

/// `irsa [flags] <command>`.
#[derive(Debug, Parser)]
#[command(
    name = "irsa",
    version,
    about = "IAM role for a Kubernetes service account (IRSA) on any EKS cluster"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: common::CommonArgs,
    #[command(flatten)]
    pub kube: common::cli::KubeArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the role, its policies and the service account annotation.
    Ensure(EnsureArgs),
    /// Remove the annotation, the policies and the role.
    Delete(DeleteArgs),
    /// List the roles irsa made for a cluster, warning of stale trust.
    List(ListArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(common::cli::Completions),
}

/// The subcommands that reach Kubernetes, for the message refusing `--kubeconfig` elsewhere.
const USED_BY: &str = "`irsa ensure` and `irsa delete`";

impl Cli {
    /// After clap: the shared `--kubeconfig` and `--context` checked (the kubeconfig read, the
    /// context found in it) and handed to the subcommand that reaches Kubernetes, or refused
    /// by one that does not (for [`common::step::parse_args_with`]).
    pub fn settle(mut self) -> Result<Self, clap::Error> {
        match &mut self.command {
            Command::Ensure(args) => {
                let kube = self.kube.checked(command)?;
                args.target.kubeconfig = kube.kubeconfig;
                args.target.context = kube.context;
            }
            Command::Delete(args) => {
                let kube = self.kube.checked(command)?;
                args.target.kubeconfig = kube.kubeconfig;
                args.target.context = kube.context;
            }
            Command::List(_) => self.kube.unused("list", USED_BY, command)?,
            Command::Completions(_) => self.kube.unused("completions", USED_BY, command)?,
        }
        Ok(self)
    }
}

/// The clap command of `irsa`, as `--help` shows it.
pub fn command() -> clap::Command {
    Cli::command()
}
