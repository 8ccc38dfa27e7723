//! `eks-oidc`: the IAM OIDC identity provider for the issuer of an EKS cluster, which lets IAM
//! roles trust the cluster's service-account tokens (what `eksctl utils
//! associate-iam-oidc-provider` did in the seed). `ensure` creates it, with client id
//! `sts.amazonaws.com` and the thumbprint of the issuer's verified TLS chain (without one when the
//! issuer cannot be reached or verified), or adds `sts.amazonaws.com` to one that exists and
//! changes nothing else; a provider this tool did not make is refused (exit 2) unless
//! `ensure --adopt`; `delete` removes it only if this tool made it (recorded, or tagged).
//!
//! Usage: `eks-oidc [--state FILE] [--region R] ensure [--cluster NAME] [--issuer-ca FILE] [--timeout 5s] [--adopt]`,
//! `eks-oidc delete [--cluster NAME]`, `eks-oidc completions SHELL`.
//!
//! stdin/stdout: reads the state document on stdin (empty: a new one) and writes the updated
//! document on stdout, or reads and rewrites `--state FILE`. It writes only its `oidc` section and
//! its timing; logs go to stderr.
//!
//! Exit codes: 0 done; 1 failed (the state records what was made and an `error`); 2 bad input or
//! usage, nothing changed.
//!
//! <!-- generated:iam -->
//! IAM permissions: `sts:GetCallerIdentity`, `iam:GetOpenIDConnectProvider`,
//! `iam:CreateOpenIDConnectProvider`, `iam:TagOpenIDConnectProvider`,
//! `iam:AddClientIDToOpenIDConnectProvider`, `iam:RemoveClientIDFromOpenIDConnectProvider`,
//! `iam:DeleteOpenIDConnectProvider`; unless the state has `cluster.oidcIssuer`:
//! `eks:DescribeCluster`.
//! <!-- /generated:iam -->
//! Network: HTTPS to the issuer's host (through
//! `HTTPS_PROXY` when set) to read its certificate chain.

use std::process::ExitCode;

use common::step::{StepInfo, block_on, drive};
use eks_oidc::SECTION;
use eks_oidc::cli::{Cli, Command};

const INFO: StepInfo = StepInfo {
    section: SECTION,
    crate_name: env!("CARGO_CRATE_NAME"),
};

fn main() -> ExitCode {
    let cli: Cli = common::step::parse_args(SECTION);
    match cli.command {
        Command::Completions(shell) => shell.print(eks_oidc::cli::command()),
        Command::Ensure(args) => {
            block_on(drive(INFO, "ensure", &cli.common, async |state, ctx| {
                eks_oidc::ensure(state, ctx, &args).await
            }))
        }
        Command::Delete(args) => {
            block_on(drive(INFO, "delete", &cli.common, async |state, ctx| {
                eks_oidc::delete(state, ctx, &args).await
            }))
        }
    }
}
