//! The state document's sections, one module each, holding the section's one serde model.
//!
//! Each module has:
//! - `KEY`, the section's key in the document;
//! - `Section`, the model its step writes and reads back (strict: a section missing a key the
//!   step needs is bad input), with `#[serde(flatten)] extra` so keys a newer version wrote pass
//!   through untouched, and `read`;
//! - for the keys *other* steps read (the contract keys of DESIGN-NOTES), a typed reader's view
//!   with each key optional, so a partial or older section still gives what it has. The
//!   `cluster` section's view ([`cluster::Facts`]) is flattened into its model, so its keys are
//!   declared once; the other sections keep their keys in the order they were always written,
//!   so their views name the same keys again, and a test beside each proves the view reads the
//!   model's own output.
//!
//! No step reads another step's section by key (`State::str_at`): it asks the section's module.
//! Facts a step takes from the state else from AWS (the cluster's endpoint, OIDC issuer,
//! network) are resolved in [`crate::facts`].

pub mod cluster;
pub mod deploy;
pub mod irsa;
pub mod oidc;
pub mod patch;
pub mod sg_stack;

#[cfg(test)]
mod tests;
