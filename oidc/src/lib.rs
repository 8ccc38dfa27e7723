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
mod delete;
mod ensure;
pub mod error;
pub mod issuer;
pub mod locate;
pub mod provider;
pub mod proxy;
pub mod thumbprint;

use common::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::args::{DeleteArgs, EnsureArgs};
pub use crate::delete::delete;
pub use crate::ensure::{ensure, tagged_ours};
pub use crate::error::{Error, Usage};
pub use crate::locate::{issuer_from_state, reported_issuer};

/// This step's section of the state document.
pub const SECTION: &str = "oidc";
/// The audience of the tokens EKS pods exchange with STS: the client id the provider needs.
pub const STS_CLIENT_ID: &str = "sts.amazonaws.com";
pub use common::owner::{CLUSTER_TAG, STEP_TAG};
/// The step named in [`STEP_TAG`] on the provider this tool makes.
pub const STEP: &str = "oidc";
/// What to do when the state's `oidc` section is about another cluster or region.
const SAME_PLACE_FIX: &str = "delete that provider first or use a separate state";

/// The `oidc` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    /// The issuer URL, `https://...`.
    pub issuer: String,
    pub provider_arn: String,
    /// The thumbprints IAM keeps for the provider (none when it was made without one).
    #[serde(default)]
    pub thumbprints: Vec<String>,
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// True when this tool created the provider, so `delete` may remove it.
    #[serde(default)]
    pub created_by_us: bool,
    /// True when the provider was someone else's, taken over with `ensure --adopt`: `delete`
    /// leaves it in place.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// True when this tool added the STS client id to an adopted provider (`delete` removes it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub added_client_id: bool,
    pub cluster_name: String,
    pub region: String,
    /// Keys a newer version wrote, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl common::error::OwnSection for Section {
    const SECTION: &'static str = SECTION;
    const SAME_PLACE_FIX: &'static str = SAME_PLACE_FIX;
    fn place(&self) -> (&str, &str) {
        (&self.cluster_name, &self.region)
    }
}

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
    use common::step::EXIT_USAGE;
    use common::{State, StepFailure};

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

    #[test]
    fn section_keeps_unknown_keys_and_uses_camel_case() {
        let text = r#"{"issuer":"https://o/id/X","providerArn":"arn:aws:iam::1:oidc-provider/o/id/X",
            "thumbprints":["ab"],"clientIds":["sts.amazonaws.com"],"createdByUs":true,
            "clusterName":"c","region":"us-east-2","futureKey":{"a":1}}"#;
        let parsed: Section = serde_json::from_str(text).unwrap();
        assert!(parsed.created_by_us);
        assert_eq!(parsed.extra["futureKey"], serde_json::json!({"a": 1}));
        let back = serde_json::to_value(&parsed).unwrap();
        let keys: Vec<&String> = back.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "issuer",
                "providerArn",
                "thumbprints",
                "clientIds",
                "createdByUs",
                "clusterName",
                "region",
                "futureKey"
            ]
        );
        // A section written without the optional lists still reads (createdByUs false).
        let lean: Section = serde_json::from_str(
            r#"{"issuer":"https://o","providerArn":"a","clusterName":"c","region":"r"}"#,
        )
        .unwrap();
        assert!(!lean.created_by_us && lean.thumbprints.is_empty());
    }
}
