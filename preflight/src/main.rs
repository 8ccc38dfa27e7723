//! `eks-preflight`: checks, before `make install`, that the pipeline can run here. It is a check,
//! not a step: it reads no state document, writes none, and changes nothing in the account (read
//! calls only).
//!
//! It checks: the step binaries (`eks-cluster`, `eks-oidc`, `irsa`, `eks-sg-stack`, `eks-patch`,
//! `eks-deploy`) sit next to it; the region resolves and is a region name; the caller identity
//! (STS); the IAM actions every step needs (the list in `actions.rs`, gathered from the steps'
//! docs) with `iam:SimulatePrincipalPolicy` on the caller's user or role (a warning, not a
//! failure, when the caller may not simulate); room for one more VPC (Service Quotas "VPCs per
//! Region", else its AWS default, else the documented 5) and one more Elastic IP (EC2 account
//! attributes); and whether the cluster exists already (a warning: ours goes on, another's needs `--adopt`).
//!
//! Usage: `eks-preflight [--region R] [--profile P] [--cluster NAME] [--json] [-v|-q]`.
//!
//! stdin/stdout: stdin is not read. stdout gets one `ok`/`warn`/`FAIL` line per check and then
//! what failed with how to fix it, or with `--json` one JSON document (`ok`, `exitCode`,
//! `cluster`, `region`, `account`, `checks[]` with `name`, `status`, `message`, `details`, `fix`,
//! `data`). Logs go to stderr.
//!
//! Exit codes: 0 every check passed (warnings allowed); 1 a check failed; 2 usage (bad flags, no
//! region or a malformed one, a bad cluster name).
//!
//! IAM permissions (its own): `sts:GetCallerIdentity`, `iam:SimulatePrincipalPolicy`,
//! `iam:GetRole`, `ec2:DescribeAccountAttributes`, `ec2:DescribeAddresses`, `ec2:DescribeVpcs`,
//! `servicequotas:GetServiceQuota`, `servicequotas:GetAWSDefaultServiceQuota`,
//! `eks:DescribeCluster`.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = eks_preflight::Args::parse();
    common::logging::init(env!("CARGO_CRATE_NAME"), args.verbose, args.quiet);
    let report = common::step::block_on(eks_preflight::run(&args));
    let text = if args.json {
        report.to_json()
    } else {
        report.to_text()
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::from(report.exit_code())
}
