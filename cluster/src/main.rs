//! `eks-cluster`: an Amazon EKS cluster whose every pod runs on Fargate, and back to nothing.
//! `create` makes the network (CloudFormation stack `eks-fargate-<cluster>-vpc`: VPC, public and
//! private subnet per zone, internet gateway, one NAT gateway) unless one is brought with
//! `--vpc-id` (its private subnets need a way out, a NAT gateway, transit gateway or network
//! interface, or the VPC endpoints of ECR, S3, STS, EC2 and ELB; its public subnets two zones),
//! the cluster role and the Fargate pod execution role, the cluster (private endpoint and a
//! public one open to `--public-access-cidrs`, API authentication with the creator as admin,
//! support type STANDARD unless `--support-type`; an existing cluster keeps its authentication
//! mode and support type, and one it made gets the asked CIDRs), the administrators `--admin`
//! names (EKS access entries with the cluster admin policy, recorded; a `CONFIG_MAP` cluster is
//! refused), the Fargate
//! profile `fp-<hash of its namespaces>` on the private subnets (a changed one is made and ACTIVE,
//! the Deployments the old one runs are rolled onto it with the pod label
//! `eks.amazonaws.com/fargate-profile` and waited for, and only then is the old one deleted),
//! and moves CoreDNS onto Fargate. The zones of the VPC it makes are chosen by zone id, leaving
//! out zones without EKS or Fargate; zones EKS refuses (`UnsupportedAvailabilityZoneException`)
//! are recorded, left out, and replaced by subnets in other zones (its own stack is updated) in
//! the same run. A cluster, role, stack or profile of its names that it did not make (not recorded in
//! the state, not tagged `eks-fargate-alb/cluster`) is refused with exit 2, unless `--adopt`
//! takes the cluster and roles over. `delete` removes the profiles, the cluster, and the stack
//! and roles when it made them; of an adopted cluster only what it added (its profile, the
//! access entries it made). `kubeconfig` merges an
//! entry whose user runs `eks-cluster token`; `token` prints an ExecCredential;
//! `template` prints the network template.
//!
//! Usage: `eks-cluster [--state FILE] [--region R] [--kubeconfig PATH [--context NAME]] create [--cluster NAME] [--kubernetes-version 1.NN]
//! [--namespace NS]... [--vpc-cidr CIDR] [--azs 2|3] [--vpc-id VPC --private-subnets IDS
//! [--public-subnets IDS]] [--public-access-cidrs CIDR]... [--support-type STANDARD|EXTENDED]
//! [--admin ARN]... [--no-admins] [--timeout 30m] [--adopt]`, `eks-cluster delete [--force]`,
//! `eks-cluster kubeconfig [-o PATH|-]`, `eks-cluster token --cluster NAME`,
//! `eks-cluster template [--vpc-cidr CIDR] [--azs N]`, `eks-cluster completions SHELL`.
//! `--kubeconfig` and `--context` (create only) go before or after the subcommand.
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
//! <!-- generated:iam -->
//! IAM permissions: `sts:GetCallerIdentity`, `cloudformation:DescribeStacks`,
//! `cloudformation:GetTemplate`, `cloudformation:CreateStack`, `cloudformation:UpdateStack`,
//! `cloudformation:DeleteStack`, `cloudformation:DescribeStackEvents`, `ec2:DescribeVpcs`,
//! `ec2:DescribeVpcAttribute`, `ec2:DescribeAvailabilityZones`, `ec2:DescribeSubnets`,
//! `ec2:DescribeRouteTables`, `ec2:DescribeVpcEndpoints`, `ec2:DescribeNatGateways`, `iam:GetRole`,
//! `iam:CreateRole`, `iam:TagRole`, `iam:UpdateAssumeRolePolicy`, `iam:ListRolePolicies`,
//! `iam:DeleteRolePolicy`, `iam:ListAttachedRolePolicies`, `iam:AttachRolePolicy`,
//! `iam:DetachRolePolicy`, `iam:DeleteRole`, `iam:PassRole`, `iam:CreateServiceLinkedRole`,
//! `eks:DescribeCluster`, `eks:CreateCluster`, `eks:UpdateClusterConfig`, `eks:DeleteCluster`,
//! `eks:TagResource`, `eks:ListFargateProfiles`, `eks:DescribeFargateProfile`,
//! `eks:CreateFargateProfile`, `eks:DeleteFargateProfile`; for the network stack's resources
//! (CloudFormation acts as the caller): `ec2:CreateVpc`, `ec2:DeleteVpc`, `ec2:ModifyVpcAttribute`,
//! `ec2:CreateSubnet`, `ec2:DeleteSubnet`, `ec2:ModifySubnetAttribute`,
//! `ec2:CreateInternetGateway`, `ec2:DeleteInternetGateway`, `ec2:AttachInternetGateway`,
//! `ec2:DetachInternetGateway`, `ec2:AllocateAddress`, `ec2:ReleaseAddress`,
//! `ec2:DisassociateAddress`, `ec2:CreateNatGateway`, `ec2:DeleteNatGateway`,
//! `ec2:CreateRouteTable`, `ec2:DeleteRouteTable`, `ec2:CreateRoute`, `ec2:DeleteRoute`,
//! `ec2:AssociateRouteTable`, `ec2:DisassociateRouteTable`, `ec2:CreateTags`,
//! `ec2:DescribeInternetGateways`, `ec2:DescribeAddresses`; for `delete`:
//! `ec2:DescribeNetworkInterfaces`; with `--admin`: `iam:GetUser`, `eks:CreateAccessEntry`,
//! `eks:AssociateAccessPolicy`, `eks:ListAssociatedAccessPolicies`, `eks:DeleteAccessEntry`,
//! `eks:ListAccessEntries`, `eks:DescribeAccessEntry`.
//! <!-- /generated:iam -->
//! Kubernetes: get and patch Deployments and list pods in
//! kube-system; list, get and patch Deployments and list pods and ReplicaSets in the namespaces
//! of a replaced Fargate profile (the move onto the new one).

use std::process::ExitCode;

use common::step::{StepInfo, block_on, drive_with_summary, offline, query};
use eks_cluster::SECTION;
use eks_cluster::cli::{Cli, Command};

const INFO: StepInfo = StepInfo {
    section: SECTION,
    crate_name: env!("CARGO_CRATE_NAME"),
};

fn main() -> ExitCode {
    let cli: Cli = common::step::parse_args_with(SECTION, Cli::settle);
    let summary = Some(eks_cluster::summary as fn(&common::State) -> String);
    match cli.command {
        Command::Completions(shell) => shell.print(eks_cluster::cli::command()),
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
