//! `eks-cluster`: an Amazon EKS cluster whose every pod runs on Fargate, and back to nothing.
//! `create` makes the network (CloudFormation stack `eks-fargate-<cluster>-vpc`: VPC, public and
//! private subnet per zone, internet gateway, one NAT gateway) unless one is brought with
//! `--vpc-id`, the cluster role and the Fargate pod execution role, the cluster (public and
//! private endpoint, API_AND_CONFIG_MAP authentication, the creator as admin), the Fargate
//! profile `fp-<hash of its namespaces>` on the private subnets (a changed one is made and ACTIVE
//! before the old one is deleted and its Deployments restarted), and moves CoreDNS onto Fargate.
//! The zones of the VPC it makes are chosen by zone id, leaving out zones without EKS or
//! Fargate. A cluster, role, stack or profile of its names that it did not make (not recorded in
//! the state, not tagged `eks-fargate-alb/cluster`) is refused with exit 2, unless `--adopt`
//! takes the cluster and roles over. `delete` removes the profiles, the cluster, and the stack
//! and roles when it made them; of an adopted cluster only what it added. `kubeconfig` merges an
//! entry whose user runs `eks-cluster token`; `token` prints an ExecCredential;
//! `template` prints the network template.
//!
//! Usage: `eks-cluster [--state FILE] [--region R] create [--cluster NAME] [--kubernetes-version 1.NN]
//! [--namespace NS]... [--vpc-cidr CIDR] [--azs 2|3] [--vpc-id VPC --private-subnets IDS
//! [--public-subnets IDS]] [--timeout 30m] [--kubeconfig PATH] [--adopt]`, `eks-cluster delete [--force]`,
//! `eks-cluster kubeconfig [-o PATH|-]`, `eks-cluster token --cluster NAME`,
//! `eks-cluster template [--vpc-cidr CIDR] [--azs N]`.
//!
//! stdin/stdout: `create` and `delete` read the state document on stdin (empty: a new one) and
//! write the updated document on stdout, or read and rewrite `--state FILE`; they write only the
//! `cluster` section and its timing. `kubeconfig` reads the state (if any) and writes only the
//! kubeconfig file (stdout stays empty unless `-o -`). `token` prints an ExecCredential JSON,
//! `template` the CloudFormation template. Logs go to stderr.
//!
//! Exit codes: 0 done; 1 failed (the state records what was made and an `error`); 2 bad input or
//! usage, nothing changed.
//!
//! IAM permissions: `sts:GetCallerIdentity`; `cloudformation:DescribeStacks`, `cloudformation:GetTemplate`,
//! `cloudformation:CreateStack`, `cloudformation:DeleteStack`, `cloudformation:DescribeStackEvents`,
//! and for the stack's resources `ec2:CreateVpc`, `ec2:DeleteVpc`, `ec2:ModifyVpcAttribute`,
//! `ec2:CreateSubnet`, `ec2:DeleteSubnet`, `ec2:ModifySubnetAttribute`,
//! `ec2:CreateInternetGateway`, `ec2:DeleteInternetGateway`, `ec2:AttachInternetGateway`,
//! `ec2:DetachInternetGateway`, `ec2:AllocateAddress`, `ec2:ReleaseAddress`,
//! `ec2:CreateNatGateway`, `ec2:DeleteNatGateway`, `ec2:CreateRouteTable`,
//! `ec2:DeleteRouteTable`, `ec2:CreateRoute`, `ec2:DeleteRoute`, `ec2:AssociateRouteTable`,
//! `ec2:DisassociateRouteTable`, `ec2:CreateTags`, `ec2:Describe*` (with
//! `ec2:DescribeAvailabilityZones` to choose the zones); `ec2:DescribeVpcs`,
//! `ec2:DescribeVpcAttribute`, `ec2:DescribeSubnets`, `ec2:DescribeRouteTables` (brought VPC); `iam:GetRole`,
//! `iam:CreateRole`, `iam:TagRole`, `iam:UpdateAssumeRolePolicy`, `iam:ListAttachedRolePolicies`,
//! `iam:AttachRolePolicy`, `iam:DetachRolePolicy`, `iam:ListRolePolicies`,
//! `iam:DeleteRolePolicy`, `iam:DeleteRole`, `iam:PassRole`, `iam:CreateServiceLinkedRole`;
//! `eks:DescribeCluster`, `eks:CreateCluster`, `eks:DeleteCluster`, `eks:TagResource`,
//! `eks:ListFargateProfiles`, `eks:DescribeFargateProfile`, `eks:CreateFargateProfile`,
//! `eks:DeleteFargateProfile`. Kubernetes: get and patch Deployments and list pods in
//! kube-system; list and patch Deployments in the namespaces of a replaced Fargate profile
//! (restart).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use common::step::{StepInfo, block_on, drive_with_summary, offline, query};
use eks_cluster::{CreateArgs, DeleteArgs, KubeconfigArgs, SECTION, TemplateArgs, TokenArgs};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "EKS cluster whose every pod runs on Fargate: create, delete, kubeconfig, token"
)]
struct Cli {
    #[command(flatten)]
    common: common::CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create (or finish) the network, roles, cluster, Fargate profile; CoreDNS on Fargate.
    Create(CreateArgs),
    /// Delete the Fargate profiles, the cluster, and the network and roles eks-cluster made.
    Delete(DeleteArgs),
    /// Merge a kubeconfig entry for the cluster whose user runs `eks-cluster token`.
    Kubeconfig(KubeconfigArgs),
    /// Print an ExecCredential with an EKS token (the kubeconfig's exec plugin).
    Token(TokenArgs),
    /// Print the network CloudFormation template.
    Template(TemplateArgs),
}

const INFO: StepInfo = StepInfo {
    section: SECTION,
    crate_name: env!("CARGO_CRATE_NAME"),
};

fn main() -> ExitCode {
    let cli: Cli = common::step::parse_args(SECTION);
    let summary = Some(eks_cluster::summary as fn(&common::State) -> String);
    match cli.command {
        Command::Template(args) => offline(INFO, &cli.common, || eks_cluster::template(&args)),
        Command::Token(args) => block_on(eks_cluster::run_token(&cli.common, &args, INFO)),
        Command::Create(args) => block_on(drive_with_summary(
            INFO,
            "create",
            &cli.common,
            summary,
            async |state, ctx| eks_cluster::create(state, ctx, &args).await,
        )),
        Command::Delete(args) => block_on(drive_with_summary(
            INFO,
            "delete",
            &cli.common,
            summary,
            async |state, ctx| eks_cluster::delete(state, ctx, &args).await,
        )),
        Command::Kubeconfig(args) => {
            let profile = cli.common.profile.clone();
            block_on(query(INFO, &cli.common, async |state, ctx| {
                eks_cluster::write_kubeconfig(state, ctx, &args, profile.as_deref()).await
            }))
        }
    }
}
