//! The step registry: every step binary of the pipeline, its state section, and the commands and
//! make targets that install and tear it down. Install order is the order of [`STEPS`]; teardown
//! order is its reverse, over the steps that have a teardown. Everything that lists the steps
//! (preflight's binary check, the end-to-end tests, the CI lint test, `eks-cluster delete`'s
//! check for later sections, and a test that the Makefile and CI files keep this order) reads it
//! from here.

/// One step of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The binary (`eks-sg-stack`).
    pub binary: &'static str,
    /// The crate folder (`sg-stack`).
    pub folder: &'static str,
    /// Its section of the state document (`sgStack`).
    pub section: &'static str,
    /// The sub-command that installs (`create`); `None` for a binary without sub-commands.
    pub install: Option<&'static str>,
    /// The sub-command that tears down (`delete`); `None` when there is nothing to remove.
    pub teardown: Option<&'static str>,
    /// The Makefile target of the install (`sg-create`).
    pub make_install: &'static str,
    /// The Makefile target of the teardown (`sg-delete`).
    pub make_teardown: Option<&'static str>,
    /// The name of its job in the CI pipelines (`sg`).
    pub ci_job: &'static str,
    /// What it makes sits in the cluster's VPC (the ALB, its security group), so the cluster
    /// may not be deleted while its section is in the state.
    pub uses_cluster_network: bool,
}

/// The steps, in install order.
pub const STEPS: [Step; 6] = [
    Step {
        binary: "eks-cluster",
        folder: "cluster",
        section: "cluster",
        install: Some("create"),
        teardown: Some("delete"),
        make_install: "cluster-create",
        make_teardown: Some("cluster-delete"),
        ci_job: "cluster",
        uses_cluster_network: false,
    },
    Step {
        binary: "eks-oidc",
        folder: "oidc",
        section: "oidc",
        install: Some("ensure"),
        teardown: Some("delete"),
        make_install: "oidc-create",
        make_teardown: Some("oidc-delete"),
        ci_job: "oidc",
        uses_cluster_network: false,
    },
    Step {
        binary: "irsa",
        folder: "irsa",
        section: "irsa",
        install: Some("ensure"),
        teardown: Some("delete"),
        make_install: "irsa-create",
        make_teardown: Some("irsa-delete"),
        ci_job: "irsa",
        uses_cluster_network: false,
    },
    Step {
        binary: "eks-sg-stack",
        folder: "sg-stack",
        section: "sgStack",
        install: Some("create"),
        teardown: Some("delete"),
        make_install: "sg-create",
        make_teardown: Some("sg-delete"),
        ci_job: "sg",
        uses_cluster_network: true,
    },
    Step {
        binary: "eks-patch",
        folder: "patch",
        section: "patch",
        install: None,
        teardown: None,
        make_install: "patch",
        make_teardown: None,
        ci_job: "patch",
        uses_cluster_network: false,
    },
    Step {
        binary: "eks-deploy",
        folder: "deploy",
        section: "deploy",
        install: Some("apply"),
        teardown: Some("delete"),
        make_install: "deploy",
        make_teardown: Some("delete-deployment"),
        ci_job: "deploy",
        uses_cluster_network: true,
    },
];

/// The steps in install order.
pub fn install_order() -> impl DoubleEndedIterator<Item = &'static Step> {
    STEPS.iter()
}

/// The steps that have a teardown, in teardown order (the reverse of install).
pub fn teardown_order() -> impl Iterator<Item = &'static Step> {
    STEPS.iter().rev().filter(|s| s.teardown.is_some())
}

/// The binaries, in install order.
pub fn binaries() -> impl Iterator<Item = &'static str> {
    STEPS.iter().map(|s| s.binary)
}

/// The sections of steps after `section` in install order that use the cluster's network: the
/// cluster may not go while the state still has them.
pub fn later_network_sections(section: &str) -> Vec<&'static str> {
    STEPS
        .iter()
        .skip_while(|s| s.section != section)
        .skip(1)
        .filter(|s| s.uses_cluster_network)
        .map(|s| s.section)
        .collect()
}

/// The positions of `names` in `text`, in the order they first appear there, with the ones
/// missing from `text`: for tests that check that a file lists steps in registry order.
pub fn order_in<'a>(
    text: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut found: Vec<(usize, &str)> = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match find_word(text, name) {
            Some(at) => found.push((at, name)),
            None => missing.push(name),
        }
    }
    found.sort();
    (found.into_iter().map(|(_, n)| n).collect(), missing)
}

/// The first place `word` occurs in `text` not inside a longer name (letters, digits, `-`, `_`
/// on neither side).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).map(|(at, _)| at).find(|&at| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_name) && !after.is_some_and(is_name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_teardown_is_the_reverse() {
        for (i, a) in STEPS.iter().enumerate() {
            for b in &STEPS[i + 1..] {
                assert_ne!(a.binary, b.binary);
                assert_ne!(a.section, b.section);
                assert_ne!(a.make_install, b.make_install);
                assert_ne!(a.ci_job, b.ci_job);
            }
            assert_eq!(
                a.teardown.is_some(),
                a.make_teardown.is_some(),
                "{}",
                a.binary
            );
        }
        let teardown: Vec<&str> = teardown_order().map(|s| s.binary).collect();
        assert_eq!(
            teardown,
            [
                "eks-deploy",
                "eks-sg-stack",
                "irsa",
                "eks-oidc",
                "eks-cluster"
            ]
        );
    }

    #[test]
    fn the_cluster_waits_for_what_uses_its_network() {
        assert_eq!(later_network_sections("cluster"), ["sgStack", "deploy"]);
        assert_eq!(later_network_sections("deploy"), Vec::<&str>::new());
    }

    #[test]
    fn order_in_finds_whole_names_only() {
        let text = "make eks-sg-stack-x then irsa and eks-oidc, eks-sg-stack";
        let (order, missing) = order_in(text, ["eks-sg-stack", "eks-oidc", "irsa", "eks-cluster"]);
        assert_eq!(order, ["irsa", "eks-oidc", "eks-sg-stack"]);
        assert_eq!(missing, ["eks-cluster"]);
    }
}
