//! `eks-preflight`: checks, before `make install`, that the pipeline can run here. It is a check,
//! not a step: it reads no state document, writes none, and changes nothing in the account (read
//! calls only).
//!
//! It checks: the step binaries (`eks-cluster`, `eks-oidc`, `irsa`, `eks-sg-stack`, `eks-patch`,
//! `eks-deploy`) sit next to it; the region resolves and is a region name; the caller identity
//! (STS); the IAM actions every step needs (`actions::PIPELINE_ACTIONS`, from the one list of
//! what each binary needs) with `iam:SimulatePrincipalPolicy` on the caller's user or role (a
//! warning, not a failure, when the caller may not simulate); room for one more VPC (Service
//! Quotas "VPCs per Region", else its AWS default, else the documented 5) and one more Elastic IP
//! (EC2 account attributes); and whether the cluster exists already (a warning: ours goes on, another's needs `--adopt`).
//!
//! `eks-preflight leftovers` (the end of `make clean`) instead lists what is left of the cluster
//! after its teardown: every CloudFormation stack, load balancer, target group, VPC, security
//! group, network interface, Elastic IP, NAT gateway, IAM role (of those EKS, Fargate or an OIDC
//! provider may assume), OIDC provider, the EKS cluster and its Fargate profiles and access
//! entries, that carries `eks-fargate-alb/cluster=<cluster>` or the load balancer controller's
//! `elbv2.k8s.aws/cluster=<cluster>`, and the log group `/aws/eks/<cluster>/cluster` EKS leaves.
//!
//! Usage: `eks-preflight [--region R] [--profile P] [--cluster NAME] [--json] [-v|-q]`,
//! `eks-preflight leftovers [--region R] [--profile P] [--cluster NAME] [--json] [-v|-q]`,
//! `eks-preflight completions SHELL`.
//!
//! stdin/stdout: stdin is not read. stdout gets one `ok`/`warn`/`FAIL` line per check and then
//! what failed with how to fix it, or with `--json` one JSON document (`ok`, `exitCode`,
//! `cluster`, `region`, `account`, `checks[]` with `name`, `status`, `message`, `details`, `fix`,
//! `data`). `leftovers` prints one `left` line per resource left (kind, id, name, the tag that
//! makes it the cluster's) and a verdict, or with `--json` one document (`ok`, `exitCode`,
//! `cluster`, `region`, `leftovers[]` with `kind`, `id`, `name`, `why`, `failed[]`, `notes[]`).
//! Logs go to stderr.
//!
//! Exit codes: 0 every check passed (warnings allowed); 1 a check failed; 2 usage (bad flags, no
//! region or a malformed one, a bad cluster name). `leftovers`: 0 nothing is left, 1 something is
//! (or a listing failed, so nothing is proven), 2 usage or no usable AWS credentials.
//!
//! <!-- generated:iam -->
//! IAM permissions: `sts:GetCallerIdentity`, `ec2:DescribeVpcs`, `ec2:DescribeAddresses`,
//! `iam:GetRole`, `eks:DescribeCluster`, `iam:SimulatePrincipalPolicy`,
//! `ec2:DescribeAccountAttributes`, `servicequotas:GetServiceQuota`,
//! `servicequotas:GetAWSDefaultServiceQuota`; for `leftovers`: `sts:GetCallerIdentity`,
//! `cloudformation:DescribeStacks`, `ec2:DescribeVpcs`, `ec2:DescribeNatGateways`,
//! `ec2:DescribeAddresses`, `ec2:DescribeSecurityGroups`, `ec2:DescribeNetworkInterfaces`,
//! `iam:ListRoles`, `iam:ListRoleTags`, `iam:GetOpenIDConnectProvider`, `eks:DescribeCluster`,
//! `eks:ListFargateProfiles`, `eks:DescribeFargateProfile`,
//! `elasticloadbalancing:DescribeLoadBalancers`, `elasticloadbalancing:DescribeTargetGroups`,
//! `elasticloadbalancing:DescribeTags`, `iam:ListOpenIDConnectProviders`, `eks:ListAccessEntries`,
//! `eks:DescribeAccessEntry`, `logs:DescribeLogGroups`.
//! <!-- /generated:iam -->

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use eks_preflight::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Completions(shell)) = cli.command {
        return shell.print(eks_preflight::cli::command());
    }
    let args = &cli.args;
    common::logging::init(env!("CARGO_CRATE_NAME"), args.verbose, args.quiet);
    let (text, code) = match cli.command {
        Some(Command::Leftovers) => common::step::block_on(eks_preflight::run_leftovers(args)),
        Some(Command::Completions(_)) | None => {
            let report = common::step::block_on(eks_preflight::run(args));
            let text = if args.json {
                report.to_json()
            } else {
                report.to_text()
            };
            (text, report.exit_code())
        }
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::from(code)
}
