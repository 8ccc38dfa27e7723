//! The flags of `irsa ensure`, `delete` and `list`.

use std::path::PathBuf;

/// Which service account, on which cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Namespace of the service account.
    #[arg(long, value_name = "NS", default_value = "kube-system")]
    pub namespace: String,
    /// Name of the service account.
    #[arg(long = "sa-name", value_name = "NAME")]
    pub sa_name: String,
    /// Role name (default `sa-<sa>-in-<cluster>-<region>`, shortened with a hash past 64 characters).
    #[arg(long, value_name = "NAME")]
    pub role_name: Option<String>,
    /// The shared `--kubeconfig` (`common::cli::KubeArgs`, taken before or after the
    /// subcommand), set by `cli`: reach Kubernetes through it instead of the cluster's endpoint
    /// and an EKS token.
    #[arg(skip)]
    pub kubeconfig: Option<PathBuf>,
    /// The shared `--context` of `kubeconfig`, set by `cli` (default: its current-context).
    #[arg(skip)]
    pub context: Option<String>,
}

/// Flags of `ensure`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnsureArgs {
    #[command(flatten)]
    pub target: Target,
    /// Inline policy document: a FILE or an https:// URL; repeatable.
    #[arg(long = "policy-document", value_name = "FILE|URL")]
    pub policy_documents: Vec<String>,
    /// SHA-256 (hex) the N-th URL document must have; give one per URL, in order.
    #[arg(long = "policy-sha256", value_name = "HEX")]
    pub policy_sha256: Vec<String>,
    /// Managed policy to attach; repeatable.
    #[arg(long = "policy-arn", value_name = "ARN")]
    pub policy_arns: Vec<String>,
    /// Roll the Deployments whose pods use the service account when its annotation changed.
    #[arg(long)]
    pub restart: bool,
    /// Take over an existing role of that name that irsa did not make: its trust is set for the
    /// service account and the policies asked are added, nothing else removed; recorded as
    /// adopted, so delete removes only what irsa added and leaves the role.
    #[arg(long)]
    pub adopt: bool,
}

/// Flags of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: Target,
}

/// Flags of `list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}
