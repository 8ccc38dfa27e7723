//! `eks-patch`: renders the Kubernetes manifests of the AWS Load Balancer Controller (CRDs,
//! RBAC, webhook TLS Secret, webhook Service and configurations, Deployment, IngressClass) and of
//! the 2048 app (Namespace, Deployment, Service, Ingress) with the cluster's facts into
//! `--out DIR` (default `patched/`), in apply order. Fields are set on the parsed manifests, not
//! by text substitution; files given as arguments get the seed's placeholder words replaced.
//! The webhook's CA and serving certificate are made with rcgen and reused on later runs until
//! 30 days before expiry; the private key stays in `DIR/.webhook-tls/` (mode 0600), never in
//! the state.
//!
//! Usage: `eks-patch [--state FILE] [--region R] [--cluster NAME] [--vpc-id VPC] [--security-group-id SG]
//! [--role-arn ARN] [--manifests DIR] [--out DIR] [--dry-run] [FILE]...`, `eks-patch completions SHELL`
//! (a FILE named `completions` is passed as `./completions`).
//!
//! stdin/stdout: reads the state document on stdin (empty: a new one) and writes the updated
//! document on stdout, or reads and rewrites `--state FILE`. It reads `cluster`, `sgStack` and
//! `irsa`, and writes only its `patch` section and its timing; logs go to stderr.
//!
//! Exit codes: 0 done; 1 failed (the state records an `error`); 2 bad input or usage (a missing
//! cluster name, region, VPC id or security group id, unreadable manifests): nothing written.
//!
//! <!-- generated:iam -->
//! IAM permissions: none; it makes no AWS call.
//! <!-- /generated:iam -->

use std::process::ExitCode;

use common::step::{StepInfo, block_on, drive};
use eks_patch::SECTION;
use eks_patch::cli::{Cli, Command};

const INFO: StepInfo = StepInfo {
    section: SECTION,
    crate_name: env!("CARGO_CRATE_NAME"),
};

fn main() -> ExitCode {
    let cli: Cli = common::step::parse_args(SECTION);
    if let Some(Command::Completions(shell)) = cli.command {
        return shell.print(eks_patch::cli::command());
    }
    block_on(drive(INFO, "render", &cli.common, async |state, ctx| {
        eks_patch::run(state, ctx, &cli.args).await
    }))
}
