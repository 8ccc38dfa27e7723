//! The command line of `eks-deploy` (clap derive), in the library so that tools can render it
//! ([`command`]: the README's usage block, shell completions).

use clap::{CommandFactory, Parser, Subcommand};

use crate::{ApplyArgs, DeleteArgs};

/// `eks-deploy [flags] <command>`.
#[derive(Debug, Parser)]
#[command(
    name = "eks-deploy",
    version,
    about = "Applies the AWS Load Balancer Controller and the app; waits for the ALB and HTTP 200"
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
    /// Apply in dependency order and wait until the app answers HTTP 200.
    Apply(ApplyArgs),
    /// Delete the Ingress (waiting for its ALB to go), then everything else.
    Delete(DeleteArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(common::cli::Completions),
}

/// The subcommands that reach Kubernetes, for the message refusing `--kubeconfig` elsewhere.
const USED_BY: &str = "`eks-deploy apply` and `eks-deploy delete`";

impl Cli {
    /// After clap: the shared `--kubeconfig` and `--context` checked (the kubeconfig read, the
    /// context found in it) and handed to the subcommand that reaches Kubernetes, or refused
    /// by one that does not (for [`common::step::parse_args_with`]).
    pub fn settle(mut self) -> Result<Self, clap::Error> {
        match &mut self.command {
            Command::Apply(args) => {
                let kube = self.kube.checked(command)?;
                args.target.kubeconfig = kube.kubeconfig;
                args.target.context = kube.context;
            }
            Command::Delete(args) => {
                let kube = self.kube.checked(command)?;
                args.target.kubeconfig = kube.kubeconfig;
                args.target.context = kube.context;
            }
            Command::Completions(_) => self.kube.unused("completions", USED_BY, command)?,
        }
        Ok(self)
    }
}

/// The clap command of `eks-deploy`, as `--help` shows it.
pub fn command() -> clap::Command {
    Cli::command()
}
