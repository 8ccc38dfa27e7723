//! `eks-sg-stack`: the CloudFormation stack `alb-securitygroup-<cluster>-<region>` with the
//! security group of the internet-facing ALB (TCP 80 and 443 in from each allowed CIDR, TCP out
//! to the cluster security group only) and a rule on the EKS cluster security group that lets
//! the ALB reach the Fargate pods.
//!
//! Usage: `eks-sg-stack [--state FILE] [--region R] create [--cluster NAME] [--allowed-cidr CIDR]...`,
//! `eks-sg-stack delete`, `eks-sg-stack template [--allowed-cidr CIDR]...`,
//! `eks-sg-stack completions SHELL`.
//!
//! stdin/stdout: reads the state document on stdin (empty: a new one) and writes the updated
//! document on stdout, or reads and rewrites `--state FILE`. It writes only its `sgStack` section
//! and its timing; logs go to stderr. `template` prints the CloudFormation template instead.
//!
//! Exit codes: 0 done; 1 failed (the state records what was made and an `error`); 2 bad input or
//! usage, nothing changed.
//!
//! <!-- generated:iam -->
//! IAM permissions: `sts:GetCallerIdentity`, `cloudformation:DescribeStacks`,
//! `cloudformation:GetTemplate`, `cloudformation:CreateStack`, `cloudformation:UpdateStack`,
//! `cloudformation:DeleteStack`, `cloudformation:DescribeStackEvents`, `ec2:DescribeSubnets`,
//! `ec2:DescribeSecurityGroups`, `eks:DescribeCluster`; for the stack's resources (CloudFormation
//! acts as the caller): `ec2:CreateTags`, `ec2:DeleteTags`, `ec2:CreateSecurityGroup`,
//! `ec2:DeleteSecurityGroup`, `ec2:AuthorizeSecurityGroupIngress`,
//! `ec2:AuthorizeSecurityGroupEgress`, `ec2:RevokeSecurityGroupIngress`,
//! `ec2:RevokeSecurityGroupEgress`, `ec2:DescribeSecurityGroupRules`; for `delete`:
//! `ec2:DescribeNetworkInterfaces`.
//! <!-- /generated:iam -->

use std::process::ExitCode;

use common::step::{StepInfo, block_on, drive, offline};
use eks_sg_stack::SECTION;
use eks_sg_stack::cli::{Cli, Command};

const INFO: StepInfo = StepInfo {
    section: SECTION,
    crate_name: env!("CARGO_CRATE_NAME"),
};

fn main() -> ExitCode {
    let cli: Cli = common::step::parse_args(SECTION);
    match cli.command {
        Command::Completions(shell) => shell.print(eks_sg_stack::cli::command()),
        Command::Template(args) => {
            offline(INFO, &cli.common, || eks_sg_stack::template_text(&args))
        }
        Command::Create(args) => {
            block_on(drive(INFO, "create", &cli.common, async |state, ctx| {
                eks_sg_stack::create(state, ctx, &args).await
            }))
        }
        Command::Delete(args) => {
            block_on(drive(INFO, "delete", &cli.common, async |state, ctx| {
                eks_sg_stack::delete(state, ctx, &args).await
            }))
        }
    }
}
