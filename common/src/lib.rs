//! What every eks-fargate-alb step stands on: the state document, the shared flags, the AWS
//! configuration and readable AWS errors, the EKS token and the Kubernetes client, logging in the
//! seed's format, waiting with progress, and the driver that keeps the step contract.

pub mod aws;
pub mod cfn;
pub mod cidr;
pub mod cli;
pub mod cluster;
pub mod eni;
pub mod error;
pub mod facts;
pub mod iam;
pub mod kube;
pub mod kubeauth;
pub mod kuberetry;
pub mod lock;
pub mod logging;
pub mod names;
pub mod owner;
pub mod proxy;
pub mod sections;
pub mod state;
pub mod step;
pub mod steps;
pub mod token;
pub mod wait;
pub mod workload;

pub use cli::CommonArgs;
pub use error::Usage;
pub use facts::ClusterFacts;
pub use state::State;
pub use step::{Context, StepFailure, StepInfo};
