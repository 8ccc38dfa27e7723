//! The `oidc` section, written by `eks-oidc`: the cluster's IAM OIDC identity provider.
//! `irsa` reads its provider ARN ([`provider_arn_for`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::State;
use crate::state::StateError;

/// The section's key in the state document.
pub const KEY: &str = "oidc";
/// What to do when the state's `oidc` section is about another cluster or region.
pub const SAME_PLACE_FIX: &str = "delete that provider first or use a separate state";

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

impl Section {
    /// The whole section as the state holds it; a malformed section is bad input.
    pub fn read(state: &State) -> Result<Option<Section>, StateError> {
        state.section(KEY)
    }
}

impl crate::error::OwnSection for Section {
    const SECTION: &'static str = KEY;
    const SAME_PLACE_FIX: &'static str = SAME_PLACE_FIX;
    fn place(&self) -> (&str, &str) {
        (&self.cluster_name, &self.region)
    }
}

/// What other steps read of the section (the contract keys `oidc.providerArn`, `oidc.issuer`),
/// each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub provider_arn: Option<String>,
}

impl Facts {
    /// The view of the state's section; `None` without one. A key of the wrong type is bad
    /// input.
    pub fn read(state: &State) -> Result<Option<Facts>, StateError> {
        state.section(KEY)
    }
}

/// The provider ARN the section records when it is the provider of `issuer` (a provider of
/// another issuer says nothing about this one). A section that cannot be read gives none: the
/// caller then names the ARN from the issuer itself.
pub fn provider_arn_for(state: &State, issuer: &str) -> Option<String> {
    Facts::read(state)
        .ok()
        .flatten()
        .filter(|f| f.issuer.as_deref() == Some(issuer))
        .and_then(|f| f.provider_arn)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_provider_only_for_its_issuer() {
        let mut state = State::new();
        state.set_section(
            KEY,
            &serde_json::json!({"issuer": "https://i", "providerArn": "arn:p"}),
        );
        assert_eq!(
            provider_arn_for(&state, "https://i").as_deref(),
            Some("arn:p")
        );
        assert_eq!(provider_arn_for(&state, "https://other"), None);
        assert_eq!(provider_arn_for(&State::new(), "https://i"), None);
        state.set_section(
            KEY,
            &serde_json::json!({"issuer": 3, "providerArn": "arn:p"}),
        );
        assert_eq!(provider_arn_for(&state, "https://i"), None);
    }
}
