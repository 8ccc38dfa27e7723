//! The command line of `eks-preflight` (clap derive), in the library so that tools can render it
//! ([`command`]: the README's usage block, shell completions).

use clap::{CommandFactory, Parser, Subcommand};

use crate::DEFAULT_CLUSTER;

/// The command line: the checks (no subcommand, as `make depcheck` runs it), or `leftovers`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "eks-preflight",
    version,
    about = "Read-only preflight of the EKS-on-Fargate pipeline: binaries, region, identity, IAM \
             permissions, room for a VPC and an Elastic IP, an existing cluster; with `leftovers`, \
             what is left of a cluster after its teardown. Changes nothing."
)]
pub struct Cli {
    #[command(flatten)]
    pub args: Args,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to run instead of the checks.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// List what is left of the cluster after its teardown (anything tagged for it, ours or the
    /// load balancer controller's, and its EKS log group); exit 1 if anything is.
    Leftovers,
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(common::cli::Completions),
}

/// The flags, taken before or after the subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// AWS region. Else AWS_REGION / AWS_DEFAULT_REGION / the profile's region.
    #[arg(long, value_name = "REGION", global = true)]
    pub region: Option<String>,

    /// AWS profile from the shared config files (else AWS_PROFILE, else `default`).
    #[arg(long, value_name = "NAME", global = true)]
    pub profile: Option<String>,

    /// The cluster the pipeline is to make (or adopt), or whose leftovers to list.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CLUSTER, global = true)]
    pub cluster: String,

    /// Print the report as one JSON document instead of lines.
    #[arg(long, global = true)]
    pub json: bool,

    /// More log output on stderr (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet", global = true)]
    pub verbose: u8,

    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The clap command of `eks-preflight`, as `--help` shows it.
pub fn command() -> clap::Command {
    Cli::command()
}
