//! `eks-oidc`: the IAM OIDC identity provider for an EKS cluster's issuer, what lets IAM roles
//! trust the cluster's service-account tokens (IRSA). The seed made it with
//! `eksctl utils associate-iam-oidc-provider`.
//!
//! The provider is found by its ARN (`arn:<partition>:iam::<account>:oidc-provider/<issuer host
//! and path>`), never by listing. A provider that exists already is kept as it is, except that
//! `sts.amazonaws.com` is added to its client ids when missing; a missing one is created with the
//! thumbprint of the issuer's TLS chain when the issuer can be reached and verified, else without
//! one. A provider this tool did not make (not recorded, not carrying our tags) is refused unless
//! `ensure --adopt`; `delete` removes only a provider this tool made, and of an adopted one only
//! the client id it added.

mod args;
pub mod cli;
mod delete;
mod ensure;
pub mod error;
pub mod issuer;
pub mod locate;
pub mod provider;
pub mod proxy;
pub mod thumbprint;

use common::Context;

pub use crate::args::{DeleteArgs, EnsureArgs};
pub use crate::delete::delete;
pub use crate::ensure::{ensure, tagged_ours};
pub use crate::error::{Error, Usage};
pub use crate::locate::{issuer_from_state, reported_issuer};

/// This step's section of the state document.
pub const SECTION: &str = common::sections::oidc::KEY;
/// The audience of the tokens EKS pods exchange with STS: the client id the provider needs.
pub const STS_CLIENT_ID: &str = "sts.amazonaws.com";
pub use common::owner::{CLUSTER_TAG, STEP_TAG};
/// The step named in [`STEP_TAG`] on the provider this tool makes.
pub const STEP: &str = "oidc";
/// The `oidc` section: its one model lives in `common::sections::oidc`.
pub use common::sections::oidc::Section;

/// The AWS clients this step uses, built once from the shared configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub eks: aws_sdk_eks::Client,
}

impl Clients {
    pub fn new(ctx: &Context) -> Self {
        Self {
            iam: aws_sdk_iam::Client::new(&ctx.aws),
            eks: aws_sdk_eks::Client::new(&ctx.aws),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::error::pick_for_section;
    use common::sections::oidc::SAME_PLACE_FIX;
    use common::step::EXIT_USAGE;
    use common::{State, StepFailure};
    use serde_json::Map;

    fn state(text: &str) -> State {
        State::parse(text).unwrap()
    }

    /// The cluster as `ensure` picks it, in the region its own section records.
    fn cluster(flag: Option<&str>, state: &State) -> Result<String, Error> {
        Ok(pick_for_section::<Section>(flag, state, "r")?.0)
    }

    #[test]
    fn cluster_from_the_state_or_its_own_section() {
        // The rules themselves are common::cluster::pick's; here, where this step looks.
        let with = state(r#"{"schemaVersion":1,"cluster":{"name":"b"}}"#);
        assert_eq!(cluster(None, &with).unwrap(), "b");
        let own = state(
            r#"{"schemaVersion":1,"oidc":{"issuer":"https://o","providerArn":"a","clusterName":"c","region":"r"}}"#,
        );
        assert_eq!(cluster(None, &own).unwrap(), "c");
        let err = cluster(Some("a"), &with).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert_eq!(
            cluster(None, &State::new()).unwrap_err().exit_code(),
            EXIT_USAGE
        );
    }

    fn section() -> Section {
        Section {
            issuer: "https://oidc.example.com/id/X".into(),
            provider_arn: "arn:aws:iam::1:oidc-provider/oidc.example.com/id/X".into(),
            thumbprints: vec![],
            client_ids: vec![STS_CLIENT_ID.into()],
            created_by_us: true,
            adopted: false,
            added_client_id: false,
            cluster_name: "c".into(),
            region: "us-east-2".into(),
            extra: Map::new(),
        }
    }

    #[test]
    fn section_for_another_place_is_refused_with_this_step_s_fix() {
        // The check itself is common's (common::error::same_place, tested there).
        let mut with = State::new();
        with.set_section(SECTION, &section());
        let (cluster, previous) = pick_for_section::<Section>(None, &with, "us-east-2").unwrap();
        assert_eq!((cluster.as_str(), previous), ("c", Some(section())));
        let err = pick_for_section::<Section>(None, &with, "eu-west-1");
        let err = Error::from(err.expect_err("another region"));
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(err.to_string().ends_with(SAME_PLACE_FIX), "{err}");
    }
}
