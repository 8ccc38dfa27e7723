//! The step registry: every step binary of the pipeline, its state section, and the commands and
//! make targets that install and tear it down. Install order is the order of [`STEPS`]; teardown
//! order is its reverse, over the steps that have a teardown. Everything that lists the steps
//! reads it from here: preflight's binary check, the end-to-end tests, `eks-cluster delete`'s
//! check for later sections, and `cargo xtask gen`, which writes the Makefile's step targets
//! (`make/steps.mk`) and the CI pipelines (`ci/*.yml`) from it.

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
    /// The arguments of the install command, after the sub-command.
    pub install_args: Args,
    /// The arguments of the teardown command ([`Args::NONE`] without a teardown).
    pub teardown_args: Args,
    /// The line `make help` shows for the install target (`""`: none).
    pub install_help: &'static str,
    /// The line `make help` shows for the teardown target (`""`: none).
    pub teardown_help: &'static str,
    /// Other make targets of the step, run by hand (`kubeconfig`, `irsa-list`): not part of
    /// `make install` or `make clean`, and not CI jobs.
    pub more_targets: &'static [MakeTarget],
    /// The step makes AWS calls: its CI job takes the AWS role (`eks-patch` is offline).
    pub calls_aws: bool,
}

/// The arguments a step command gets from its make target and from its CI job, after the
/// sub-command (`create`). `cargo xtask gen` writes the make targets (`make/steps.mk`) and the CI
/// jobs (`ci/*.yml`) from them; the part before the sub-command is the same for every step:
/// `$(BIN)/<binary> $(STEP)` in make, `bin/<binary> --state state.json --region R --resume` in CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Args {
    /// Make text: make variables (`$(CLUSTER)`), `$(foreach ...)` for repeated flags, `$(if
    /// ...)` for optional ones; a backslash, newline, tab and two spaces continue the recipe on
    /// the next line.
    pub make: &'static str,
    /// CI text: the CI variable `"$CLUSTER"` and the Makefile's defaults for the rest;
    /// `{fargate-namespaces}` stands for `--namespace NS` per namespace of eks-cluster's default
    /// Fargate profile (`eks_cluster::inputs::DEFAULT_NAMESPACES`).
    pub ci: &'static str,
}

impl Args {
    /// No arguments (a step without a teardown).
    pub const NONE: Args = Args { make: "", ci: "" };
}

/// A make target of a step run by hand, beside its install and teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MakeTarget {
    /// The target (`irsa-list`).
    pub name: &'static str,
    /// Its recipe line after `$(BIN)/` (binary and arguments, make variables allowed).
    pub recipe: &'static str,
    /// Make does not echo the command (`@`): for targets whose output is the point.
    pub silent: bool,
    /// Its line in `make help` (`""`: none).
    pub help: &'static str,
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
        install_args: Args {
            make: "--cluster $(CLUSTER) $(foreach n,$(FARGATE_NAMESPACES),--namespace $(n)) $(KUBE) \\\n\t  \
                   $(if $(VPC_ID),--vpc-id $(VPC_ID) --private-subnets $(PRIVATE_SUBNETS) \
                   $(if $(PUBLIC_SUBNETS),--public-subnets $(PUBLIC_SUBNETS))) \\\n\t  \
                   $(if $(PUBLIC_ACCESS_CIDRS),--public-access-cidrs $(PUBLIC_ACCESS_CIDRS)) \
                   $(if $(SUPPORT_TYPE),--support-type $(SUPPORT_TYPE)) \\\n\t  \
                   $(foreach a,$(ADMINS),--admin $(a))",
            ci: "--cluster \"$CLUSTER\" {fargate-namespaces}",
        },
        teardown_args: Args {
            make: "--cluster $(CLUSTER)",
            ci: "--cluster \"$CLUSTER\"",
        },
        install_help: "VPC stack, IAM roles, the EKS cluster, Fargate profile, CoreDNS on Fargate (cluster-delete)",
        teardown_help: "",
        more_targets: &[MakeTarget {
            name: "kubeconfig",
            recipe: "eks-cluster --state $(STATE) --region $(REGION) kubeconfig --cluster $(CLUSTER)",
            silent: false,
            help: "merge the cluster into ~/.kube/config (kubectl then works, no aws CLI needed)",
        }],
        calls_aws: true,
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
        install_args: Args {
            make: "--cluster $(CLUSTER)",
            ci: "--cluster \"$CLUSTER\"",
        },
        teardown_args: Args {
            make: "--cluster $(CLUSTER)",
            ci: "--cluster \"$CLUSTER\"",
        },
        install_help: "the IAM OIDC provider of CLUSTER's issuer (oidc-delete removes it)",
        teardown_help: "",
        more_targets: &[],
        calls_aws: true,
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
        install_args: Args {
            make: "--cluster $(CLUSTER) --namespace $(SA_NAMESPACE) --sa-name $(SA_NAME) \
                   --policy-document $(SA_POLICY) $(KUBE)",
            ci: "--cluster \"$CLUSTER\" --namespace kube-system --sa-name aws-load-balancer-controller \
                 --policy-document policies/aws-load-balancer-controller.json",
        },
        teardown_args: Args {
            make: "--cluster $(CLUSTER) --namespace $(SA_NAMESPACE) --sa-name $(SA_NAME) $(KUBE)",
            ci: "--cluster \"$CLUSTER\" --namespace kube-system --sa-name aws-load-balancer-controller",
        },
        install_help: "the IAM role of SA_NAMESPACE/SA_NAME (irsa-delete, irsa-list)",
        teardown_help: "",
        more_targets: &[MakeTarget {
            name: "irsa-list",
            recipe: "irsa --state $(STATE) --region $(REGION) list --cluster $(CLUSTER)",
            silent: true,
            help: "",
        }],
        calls_aws: true,
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
        install_args: Args {
            make: "--cluster $(CLUSTER) $(foreach c,$(ALLOWED_CIDR),--allowed-cidr $(c)) \
                   $(foreach p,$(TARGET_PORTS),--target-port $(p))",
            ci: "--cluster \"$CLUSTER\"",
        },
        teardown_args: Args {
            make: "--cluster $(CLUSTER)",
            ci: "--cluster \"$CLUSTER\"",
        },
        install_help: "create/update the ALB security group stack of CLUSTER in REGION",
        teardown_help: "delete it",
        more_targets: &[MakeTarget {
            name: "sg-template",
            recipe: "eks-sg-stack template $(foreach c,$(ALLOWED_CIDR),--allowed-cidr $(c)) \
                     $(foreach p,$(TARGET_PORTS),--target-port $(p))",
            silent: true,
            help: "print the CloudFormation template",
        }],
        calls_aws: true,
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
        install_args: Args {
            make: "--out $(OUT)",
            ci: "--out patched",
        },
        teardown_args: Args::NONE,
        install_help: "render the controller and 2048 manifests into OUT",
        teardown_help: "",
        more_targets: &[],
        calls_aws: false,
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
        install_args: Args {
            make: "--cluster $(CLUSTER) $(KUBE) $(if $(CONNECT_TO),--connect-to $(CONNECT_TO))",
            ci: "--cluster \"$CLUSTER\"",
        },
        teardown_args: Args {
            make: "--cluster $(CLUSTER) $(KUBE)",
            ci: "--cluster \"$CLUSTER\"",
        },
        install_help: "apply them, wait for the ALB and HTTP 200 (delete-deployment removes them)",
        teardown_help: "",
        more_targets: &[],
        calls_aws: true,
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
            assert_eq!(
                a.teardown.is_none(),
                a.teardown_args == Args::NONE,
                "{}",
                a.binary
            );
        }
        let mut targets: Vec<&str> = STEPS
            .iter()
            .flat_map(|s| {
                [s.make_install]
                    .into_iter()
                    .chain(s.make_teardown)
                    .chain(s.more_targets.iter().map(|t| t.name))
            })
            .collect();
        let count = targets.len();
        targets.sort_unstable();
        targets.dedup();
        assert_eq!(targets.len(), count, "make targets are unique");
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
