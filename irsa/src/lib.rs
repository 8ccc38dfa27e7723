//! `irsa`: an IAM role for a Kubernetes service account (IAM Roles for Service Accounts) on any
//! EKS cluster: the role trusted by the cluster's OIDC provider for exactly that service account,
//! its inline and managed policies reconciled without a gap in permissions, and the service
//! account annotated with the role's ARN.

pub mod args;
pub mod cli;
pub mod delete;
pub mod documents;
pub mod ensure;
pub mod error;
pub mod list;
pub mod policy;
pub mod record;
pub mod role;
pub mod sa;
pub mod target;

pub use args::{DeleteArgs, EnsureArgs, ListArgs, Target};
pub use delete::delete;
pub use documents::load_documents;
pub use ensure::ensure;
pub use error::{Error, Usage};
pub use list::list;
pub use record::{Entry, InlineRecord, SECTION, summary};
pub use target::{Clients, Facts, pick_cluster, provider_arn};
