//! `eks-cluster`: an EKS cluster whose every pod runs on Fargate, from nothing (VPC stack, IAM
//! roles, cluster, Fargate profile, CoreDNS moved onto Fargate) and back to nothing; plus the
//! kubeconfig entry and the token its exec user runs. What `eksctl create cluster --fargate
//! --without-nodegroup` did for the seed, through the AWS SDK.

pub mod access;
mod args;
pub mod brought;
pub mod cli;
pub mod coredns;
mod create;
mod delete;
pub mod eks;
mod error;
pub mod inputs;
pub mod kubeconfig;
pub mod network;
pub mod ownership;
mod plan;
pub mod profiles;
pub mod refusals;
pub mod roles;
mod section;
pub mod template;
mod token;
pub mod zones;

use common::State;

pub use crate::args::{
    CreateArgs, DeleteArgs, KubeconfigArgs, SupportType, TemplateArgs, TokenArgs,
};
pub use crate::create::create;
pub use crate::delete::delete;
pub use crate::error::{Error, Usage};
pub use crate::kubeconfig::{kubeconfig_entry, write_kubeconfig};
pub use crate::plan::{CreatePlan, NetworkPlan, pick_cluster, plan_create};
pub use crate::section::Section;
pub use crate::template::template;
pub use crate::token::{run_token, token};

/// This step's section of the state document.
pub const SECTION: &str = "cluster";

/// The AWS clients of this step, built once.
#[derive(Debug, Clone)]
pub struct Clients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub eks: aws_sdk_eks::Client,
    pub iam: aws_sdk_iam::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            cloudformation: aws_sdk_cloudformation::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
        }
    }
}

/// One line for a person running `create` by hand.
pub fn summary(state: &State) -> String {
    match state.section::<Section>(SECTION) {
        Ok(Some(s)) => format!(
            "cluster {} ({}): {}, VPC {}, Fargate profiles {}\n",
            s.facts.name,
            s.facts.region,
            s.facts.endpoint.as_deref().unwrap_or("no endpoint yet"),
            s.facts.vpc_id.as_deref().unwrap_or("?"),
            s.fargate_profiles.join(",")
        ),
        _ => "no cluster recorded\n".into(),
    }
}
