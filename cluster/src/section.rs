//! The `cluster` section of the state document: its one model is
//! [`common::sections::cluster::Section`] (every step reads the same type).

pub use common::sections::cluster::{AdoptedRole, Section};
