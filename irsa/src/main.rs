//! `irsa`: an IAM role for a Kubernetes service account (IRSA) on any EKS cluster.
//!
//! Usage: `irsa [--region R] ensure --cluster C [--namespace NS] --sa-name SA
//! [--policy-document FILE|https-URL]... [--policy-sha256 HEX]... [--policy-arn ARN]... [--role-name N]
//! [--restart] [--adopt] [--kubeconfig PATH]`, `irsa delete --cluster C [--namespace NS] --sa-name SA`,
//! `irsa list --cluster C`.
//!
//! stdin/stdout: with a state document on stdin (or `--state FILE`) it reads the cluster and
//! OIDC facts from it and records the role in the `irsa` section (one entry per service account),
//! writing the document on stdout; run by hand with a terminal on stdin it needs no state and
//! prints a short summary instead. `list` prints the roles as JSON. Logs go to stderr.
//!
//! Exit codes: 0 done; 1 failed (the state records what was made and an `error`); 2 bad input or
//! usage, nothing changed.
//!
//! IAM permissions: `eks:DescribeCluster`, `sts:GetCallerIdentity`,
//! `iam:GetOpenIDConnectProvider`, `iam:GetRole`, `iam:CreateRole`, `iam:TagRole`,
//! `iam:UpdateAssumeRolePolicy`, `iam:ListRolePolicies`, `iam:GetRolePolicy`, `iam:PutRolePolicy`,
//! `iam:DeleteRolePolicy`, `iam:ListAttachedRolePolicies`, `iam:AttachRolePolicy`,
//! `iam:DetachRolePolicy`, `iam:DeleteRole`, and for `list` `iam:ListRoles`, `iam:ListRoleTags`;
//! Kubernetes: get/patch/create/delete ServiceAccounts, list/patch Deployments (for --restart).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use common::step::{StepInfo, block_on, drive_with_summary, query};
use irsa::{DeleteArgs, EnsureArgs, ListArgs, SECTION};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "IAM role for a Kubernetes service account (IRSA) on any EKS cluster"
)]
struct Cli {
    #[command(flatten)]
    common: common::CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update the role, its policies and the service account annotation.
    Ensure(EnsureArgs),
    /// Remove the annotation, the policies and the role.
    Delete(DeleteArgs),
    /// List the roles irsa made for a cluster, warning of stale trust.
    List(ListArgs),
}

const INFO: StepInfo = StepInfo {
    section: SECTION,
    crate_name: env!("CARGO_CRATE_NAME"),
};

fn main() -> ExitCode {
    let cli: Cli = common::step::parse_args(SECTION);
    let summary = Some(irsa::summary as fn(&common::State) -> String);
    match cli.command {
        Command::Ensure(args) => block_on(drive_with_summary(
            INFO,
            "ensure",
            &cli.common,
            summary,
            async |state, ctx| irsa::ensure(state, ctx, &args).await,
        )),
        Command::Delete(args) => block_on(drive_with_summary(
            INFO,
            "delete",
            &cli.common,
            summary,
            async |state, ctx| irsa::delete(state, ctx, &args).await,
        )),
        Command::List(args) => block_on(query(INFO, &cli.common, async |state, ctx| {
            irsa::list(state, ctx, &args).await
        })),
    }
}
