//! `irsa`: an IAM role for a Kubernetes service account (IRSA) on any EKS cluster.
//!
//! Usage: `irsa [--region R] [--kubeconfig PATH [--context NAME]] ensure --cluster C [--namespace NS] --sa-name SA
//! [--policy-document FILE|https-URL]... [--policy-sha256 HEX]... [--policy-arn ARN]... [--role-name N]
//! [--restart] [--adopt]`, `irsa delete --cluster C [--namespace NS] --sa-name SA`,
//! `irsa list --cluster C`, `irsa completions SHELL`. `--kubeconfig` and `--context` (ensure and
//! delete) go before or after the subcommand.
//!
//! stdin/stdout: with a state document on stdin (or `--state FILE`) it reads the cluster and
//! OIDC facts from it and records the role in the `irsa` section (one entry per service account),
//! writing the document on stdout; run by hand with a terminal on stdin it needs no state and
//! prints a short summary instead. `list` prints the roles as JSON. Logs go to stderr.
//!
//! Exit codes: 0 done; 1 failed (the state records what was made and an `error`); 2 bad input or
//! usage, nothing changed.
//!
//! <!-- generated:iam -->
//! IAM permissions: `sts:GetCallerIdentity`, `iam:GetRole`, `iam:CreateRole`, `iam:TagRole`,
//! `iam:UpdateAssumeRolePolicy`, `iam:ListRolePolicies`, `iam:GetRolePolicy`, `iam:PutRolePolicy`,
//! `iam:DeleteRolePolicy`, `iam:ListAttachedRolePolicies`, `iam:AttachRolePolicy`,
//! `iam:DetachRolePolicy`, `iam:DeleteRole`, `iam:GetOpenIDConnectProvider`, `eks:DescribeCluster`;
//! for `list`: `iam:ListRoles`, `iam:ListRoleTags`.
//! <!-- /generated:iam -->
//! Kubernetes: get/patch/create/delete ServiceAccounts, list/patch Deployments (for --restart).

use std::process::ExitCode;

use common::step::{StepInfo, block_on, drive_with_summary, query};
use irsa::SECTION;
use irsa::cli::{Cli, Command};

const INFO: StepInfo = StepInfo {
    section: SECTION,
    crate_name: env!("CARGO_CRATE_NAME"),
};

fn main() -> ExitCode {
    let cli: Cli = common::step::parse_args_with(SECTION, Cli::settle);
    let summary = Some(irsa::summary as fn(&common::State) -> String);
    match cli.command {
        Command::Completions(shell) => shell.print(irsa::cli::command()),
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
