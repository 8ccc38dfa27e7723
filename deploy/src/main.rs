//! `eks-deploy`: applies the manifests `eks-patch` rendered (the AWS Load Balancer Controller and
//! the 2048 app) by server-side apply (field manager `eks-fargate-alb`) in dependency order, waits
//! for CRDs to be Established and for the controller to be Available with ready webhook
//! endpoints, then for the Ingress's ALB host name and HTTP 200 from it, and prints the URL.
//! While it waits for the ALB it shows the controller's Warning events on the Ingress, and
//! stops (exit 1) when one (`FailedBuildModel`, `FailedDeployModel`) keeps coming back for 30 s
//! with no success. Each object is recorded in the state before its apply is sent (`pending`
//! until the answer comes), so one the server made before the run stopped is not forgotten.
//! An object another field manager owns is refused (exit 2, nothing applied) unless `--adopt`,
//! which takes it over and records it adopted; `delete` removes only what it made: the Ingress
//! first (with every other Ingress the controller serves in a namespace it deletes), waiting
//! until the controller has deleted their ALBs, then the webhook configurations, then the rest
//! in reverse order; `delete --force` lets go of an Ingress the controller does not
//! release (webhook configurations first, then the finalizers of the
//! Ingress and its TargetGroupBindings) and names the load balancers and target groups left.
//!
//! Usage: `eks-deploy [--state FILE] [--kubeconfig PATH [--context NAME]] apply [--timeout 20m] [--connect-to H:P:A:P2]... [--adopt]`,
//! `eks-deploy delete [--force]`, `eks-deploy completions SHELL`. `--kubeconfig` and `--context`
//! go before or after the subcommand.
//!
//! stdin/stdout: reads the state document on stdin (empty: a new one) and writes the updated
//! document on stdout, or reads and rewrites `--state FILE`. It writes only its `deploy` section
//! and its timing; logs go to stderr.
//!
//! Exit codes: 0 done; 1 failed (the state records what was applied and an `error`); 2 bad input
//! or usage, nothing changed.
//!
//! <!-- generated:iam -->
//! IAM permissions: unless the state has the endpoint and CA, or `--kubeconfig` is given:
//! `eks:DescribeCluster`; for `apply`, unless the state records the cluster's one profile (every
//! pod the manifests make must be selected by a Fargate profile): `eks:ListFargateProfiles`,
//! `eks:DescribeFargateProfile`; for `delete --force`:
//! `elasticloadbalancing:DescribeLoadBalancers`, `elasticloadbalancing:DescribeTargetGroups`,
//! `elasticloadbalancing:DescribeTags`.
//! <!-- /generated:iam -->
//! Besides, an identity the cluster admits; Kubernetes: create, patch, get,
//! list and delete on every kind in the manifests, list on Events, IngressClasses and
//! Ingresses, delete on Ingresses (cluster-admin in practice, as the manifests include CRDs,
//! RBAC and webhook configurations).

use std::process::ExitCode;

use common::step::{StepInfo, block_on, drive};
use eks_deploy::SECTION;
use eks_deploy::cli::{Cli, Command};

const INFO: StepInfo = StepInfo {
    section: SECTION,
    crate_name: env!("CARGO_CRATE_NAME"),
};

fn main() -> ExitCode {
    let cli: Cli = common::step::parse_args_with(SECTION, Cli::settle);
    match cli.command {
        Command::Completions(shell) => shell.print(eks_deploy::cli::command()),
        Command::Apply(args) => block_on(drive(INFO, "apply", &cli.common, async |state, ctx| {
            eks_deploy::apply(state, ctx, &args).await
        })),
        Command::Delete(args) => {
            block_on(drive(INFO, "delete", &cli.common, async |state, ctx| {
                eks_deploy::delete(state, ctx, &args).await
            }))
        }
    }
}
