//! The end-to-end tests' install and teardown pipes (`eks_fa_e2e::INSTALL`, `TEARDOWN`) run every
//! step of the registry (`common::steps::STEPS`) in its order, so a new step is covered by the
//! pipeline tests. (The Makefile's step targets and the CI jobs are generated from the registry
//! by `cargo xtask gen`, and checked by xtask's `generated_files_are_current`.)

use common::steps::{install_order, order_in, teardown_order};

#[test]
fn the_test_pipes_run_the_steps_in_registry_order() {
    let install: Vec<&str> = install_order().skip(1).map(|s| s.binary).collect();
    let (order, missing) = order_in(eks_fa_e2e::INSTALL, install.iter().copied());
    assert!(missing.is_empty(), "INSTALL lacks {missing:?}");
    assert_eq!(order, install);
    let teardown: Vec<&str> = teardown_order().map(|s| s.binary).collect();
    let (order, missing) = order_in(eks_fa_e2e::TEARDOWN, teardown.iter().copied());
    assert!(missing.is_empty(), "TEARDOWN lacks {missing:?}");
    assert_eq!(order, teardown);
}
