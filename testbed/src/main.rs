//! `eks-testbed`: the local test bed by hand, for `make demo` and for trying the binaries with
//! no AWS account. Dev-only.
//!
//! - `eks-testbed serve [--region R]`: starts the moto AWS emulator and the real Kubernetes
//!   control plane (kube-apiserver, kube-controller-manager, etcd) on free loopback ports, with
//!   the simulators of what EKS and the AWS Load Balancer Controller do (pods run on Fargate only
//!   as the Fargate profiles moto holds in the region allow, the controller's webhooks answer,
//!   Ingresses of class `alb` get a finalizer, a host name and an "ALB" answering HTTP 200 on one
//!   loopback port); prints the environment to
//!   reach them (`export AWS_ENDPOINT_URL=...`, `EKS_FA_KUBECONFIG=...`, `EKS_FA_ALB_ADDR=...`
//!   lines) on stdout, and runs until SIGINT or SIGTERM, then stops them.
//! - `eks-testbed seed-cluster --name NAME --region R`: makes, through the AWS API at
//!   `AWS_ENDPOINT_URL`, a VPC, two subnets, an EKS cluster and the security group EKS would tag
//!   for it; prints them as JSON.
//! - `eks-testbed seed-network --cluster NAME --region R`: makes a VPC with private and public
//!   subnets and the security group EKS would tag for the cluster; prints
//!   `VPC_ID=... PRIVATE_SUBNETS=... PUBLIC_SUBNETS=...` for make.
//! - `eks-testbed inventory --region R`: prints, as JSON, the CloudFormation stacks, the
//!   non-default security groups, the IAM roles and the OIDC providers there, to show what is left.
//!
//! Exit codes: 0 done; 1 failed; 2 usage.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "The local test bed (moto) for eks-fargate-alb; dev-only"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start moto and the Kubernetes control plane on loopback; print their environment; stop them on SIGINT/SIGTERM.
    Serve {
        /// The region whose EKS clusters the Kubernetes control plane plays (Fargate profiles).
        #[arg(long, default_value = testbed::REGION)]
        region: String,
    },
    /// Make a VPC, subnets, an EKS cluster and its tagged security group.
    SeedCluster {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = testbed::REGION)]
        region: String,
    },
    /// Make a network to bring to `eks-cluster create --vpc-id` (and the group EKS would tag).
    SeedNetwork {
        #[arg(long)]
        cluster: String,
        #[arg(long, default_value = testbed::REGION)]
        region: String,
    },
    /// List stacks and non-default security groups.
    Inventory {
        #[arg(long, default_value = testbed::REGION)]
        region: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        match cli.command {
            Command::Serve { region } => testbed::cli::serve(&region).await,
            Command::SeedCluster { name, region } => {
                testbed::cli::seed_cluster(&name, &region).await
            }
            Command::SeedNetwork { cluster, region } => {
                testbed::cli::seed_network(&cluster, &region).await
            }
            Command::Inventory { region } => testbed::cli::inventory(&region).await,
        }
    })
}
