//! The `deploy` section, written by `eks-deploy`: what it applied, in order, and the app's URL.
//! Other steps only ask whether it is there ([`present`]: `eks-sg-stack delete` and
//! `eks-cluster delete` refuse while something is deployed).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::State;
use crate::state::StateError;

/// The section's key in the state document.
pub const KEY: &str = "deploy";

/// One applied object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub file: String,
    /// Not made by us: it existed and another field manager owned fields we set, and `apply
    /// --adopt` took them over. `delete` leaves it in place. Absent: made by us.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// Recorded before its apply was sent, and no answer seen since (the run stopped or the
    /// answer was lost): it may exist. `delete` removes it when its managedFields show our
    /// apply, and takes it as never made when it is absent. Absent: applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Keys this version does not know, passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `deploy` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    pub cluster_name: String,
    pub manifests_dir: String,
    /// In the order applied.
    pub applied_objects: Vec<Applied>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// From the start of `apply` to the first HTTP 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_to_first_200: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Section {
    /// The whole section as the state holds it; a malformed section is bad input.
    pub fn read(state: &State) -> Result<Option<Section>, StateError> {
        state.section(KEY)
    }
}

/// What is read of the section before it is known to be whole: the cluster it is about, for
/// picking the cluster (lenient, as a picker is: a section that cannot be read names none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    #[serde(default)]
    pub cluster_name: Option<String>,
}

impl Facts {
    /// The view of the state's section; `None` without one. A key of the wrong type is bad
    /// input.
    pub fn read(state: &State) -> Result<Option<Facts>, StateError> {
        state.section(KEY)
    }
}

/// True when the state has a `deploy` section (whatever it holds).
pub fn present(state: &State) -> bool {
    state.raw(KEY).is_some()
}
