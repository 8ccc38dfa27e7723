//! The command line of `eks-cluster` (clap derive), in the library so that tools can render it
//! ([`command`]: the README's usage block, shell completions).

use clap::{CommandFactory, Parser, Subcommand};

use crate::{CreateArgs, DeleteArgs, KubeconfigArgs, TemplateArgs, TokenArgs};

/// `eks-cluster [flags] <command>`.
#[derive(Debug, Parser)]
#[command(
    name = "eks-cluster",
    version,
    about = "EKS cluster whose every pod runs on Fargate: create, delete, kubeconfig, token"
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
#[allow(clippy::large_enum_variant, reason = "made once a run")]
pub enum Command {
    /// Create (or finish) the network, roles, cluster, Fargate profile; CoreDNS on Fargate.
    Create(CreateArgs),
    /// Delete the Fargate profiles, the cluster, and the network and roles eks-cluster made.
    Delete(DeleteArgs),
    /// Merge a kubeconfig entry for the cluster whose user runs `eks-cluster token`.
    Kubeconfig(KubeconfigArgs),
    /// Print an ExecCredential with an EKS token (the kubeconfig's exec plugin).
    Token(TokenArgs),
    /// Print the network CloudFormation template.
    Template(TemplateArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(common::cli::Completions),
}

/// The subcommands that reach Kubernetes, for the message refusing `--kubeconfig` elsewhere.
const USED_BY: &str = "`eks-cluster create`";

impl Cli {
    /// After clap: the shared `--kubeconfig` and `--context` checked (the kubeconfig read, the
    /// context found in it) and handed to the subcommand that reaches Kubernetes, or refused
    /// by one that does not (for [`common::step::parse_args_with`]).
    pub fn settle(mut self) -> Result<Self, clap::Error> {
        match &mut self.command {
            Command::Create(args) => {
                let kube = self.kube.checked(command)?;
                args.kubeconfig = kube.kubeconfig;
                args.context = kube.context;
            }
            Command::Delete(_) => self.kube.unused("delete", USED_BY, command)?,
            Command::Kubeconfig(_) => self.kube.unused("kubeconfig", USED_BY, command)?,
            Command::Token(_) => self.kube.unused("token", USED_BY, command)?,
            Command::Template(_) => self.kube.unused("template", USED_BY, command)?,
            Command::Completions(_) => self.kube.unused("completions", USED_BY, command)?,
        }
        Ok(self)
    }
}

/// The clap command of `eks-cluster`, as `--help` shows it.
pub fn command() -> clap::Command {
    Cli::command()
}
