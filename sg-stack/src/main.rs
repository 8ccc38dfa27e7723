//! `eks-sg-stack`: the CloudFormation stack `alb-securitygroup-<cluster>-<region>` with the
//! security group of the internet-facing ALB (TCP 80 and 443 in from each allowed CIDR, TCP out
//! to the cluster security group only) and a rule on the EKS cluster security group that lets
//! the ALB reach the Fargate pods.
//!
//! Usage: `eks-sg-stack [--state FILE] [--region R] create [--cluster NAME] [--allowed-cidr CIDR]...`,
//! `eks-sg-stack delete`, `eks-sg-stack template [--allowed-cidr CIDR]...`.
//!
//! stdin/stdout: reads the state document on stdin (empty: a new one) and writes the updated
//! document on stdout, or reads and rewrites `--state FILE`. It writes only its `sgStack` section
//! and its timing; logs go to stderr. `template` prints the CloudFormation template instead.
//!
//! Exit codes: 0 done; 1 failed (the state records what was made and an `error`); 2 bad input or
//! usage, nothing changed.
//!
//! IAM permissions: `eks:DescribeCluster`, `ec2:DescribeSubnets`, `ec2:DescribeSecurityGroups`,
//! `ec2:DescribeNetworkInterfaces` (the wait for the ALB's network interfaces on delete),
//! `cloudformation:DescribeStacks`, `cloudformation:GetTemplate`, `cloudformation:CreateStack`,
//! `cloudformation:UpdateStack`, `cloudformation:DeleteStack`, `cloudformation:DescribeStackEvents`,
//! and for the stack's resources `ec2:CreateSecurityGroup`, `ec2:DeleteSecurityGroup`,
//! `ec2:AuthorizeSecurityGroupIngress`, `ec2:AuthorizeSecurityGroupEgress`,
//! `ec2:RevokeSecurityGroupIngress`, `ec2:RevokeSecurityGroupEgress`, `ec2:CreateTags`,
//! `ec2:DeleteTags`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use common::step::{StepInfo, block_on, drive, offline};
use eks_sg_stack::{CreateArgs, DeleteArgs, SECTION, TemplateArgs};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "CloudFormation stack with the ALB security group of an EKS Fargate cluster"
)]
struct Cli {
    #[command(flatten)]
    common: common::CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the stack, or update it when its inputs changed.
    Create(CreateArgs),
    /// Delete the stack and wait until it is gone.
    Delete(DeleteArgs),
    /// Print the CloudFormation template.
    Template(TemplateArgs),
}

const INFO: StepInfo = StepInfo {
    section: SECTION,
    crate_name: env!("CARGO_CRATE_NAME"),
};

fn main() -> ExitCode {
    let cli: Cli = common::step::parse_args(SECTION);
    match cli.command {
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
