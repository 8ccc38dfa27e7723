//! What `create` is asked to do, checked against the flags and the state before any AWS call
//! (a refusal is exit 2, nothing changed).

use common::State;

use crate::error::{Error, Usage};
use crate::inputs::{self, Ipv4Net};
use crate::{CreateArgs, Section, SupportType};

/// The cluster this run is about: `--cluster`, else the state's; never both differing.
pub fn pick_cluster(flag: Option<&str>, state: &State) -> Result<String, Error> {
    Ok(common::cluster::pick_in(flag, state, None)?)
}

/// The state's cluster must be in the region of this run.
pub(crate) fn check_region(previous: Option<&Section>, region: &str) -> Result<(), Error> {
    match previous {
        Some(p) if !p.facts.region.is_empty() && p.facts.region != region => {
            Err(common::Usage::OtherRegion {
                cluster: p.facts.name.clone(),
                recorded_region: p.facts.region.clone(),
                region: region.to_owned(),
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// Where the network comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkPlan {
    /// Our stack, with this VPC CIDR and zone count.
    Stack { cidr: Ipv4Net, azs: u8 },
    /// Brought: checked through EC2.
    Brought {
        vpc_id: String,
        private: Vec<String>,
        public: Vec<String>,
    },
}

/// Everything `create` needs, checked before any AWS call.
#[derive(Debug, Clone)]
pub struct CreatePlan {
    pub cluster: String,
    pub version: String,
    pub namespaces: Vec<String>,
    pub network: NetworkPlan,
    /// The CIDRs the public API endpoint is to be open to (`0.0.0.0/0` when none were asked).
    pub public_access_cidrs: Vec<String>,
    /// `upgradePolicy.supportType` of a new cluster.
    pub support_type: SupportType,
    /// The IAM role and user ARNs to be cluster administrators (`--admin`, else the state's).
    pub admins: Vec<String>,
}

/// Checks the flags of `create` against each other and the state.
pub fn plan_create(
    args: &CreateArgs,
    state: &State,
    previous: Option<&Section>,
) -> Result<CreatePlan, Error> {
    let cluster = pick_cluster(args.cluster.as_deref(), state)?;
    let version = match (
        &args.kubernetes_version,
        previous.and_then(|p| p.kubernetes_version.as_ref()),
    ) {
        (Some(flag), _) => flag.clone(),
        (None, Some(known)) => known.clone(),
        (None, None) => inputs::DEFAULT_KUBERNETES_VERSION.to_owned(),
    };
    inputs::check_version(&version).map_err(|reason| Usage::Flag {
        flag: "--kubernetes-version",
        reason,
    })?;
    let mut namespaces: Vec<String> = Vec::new();
    let given: Vec<String> = match previous.map(|p| &p.fargate_namespaces) {
        _ if !args.namespaces.is_empty() => args.namespaces.clone(),
        Some(known) if !known.is_empty() => known.clone(),
        _ => inputs::DEFAULT_NAMESPACES.map(str::to_owned).to_vec(),
    };
    for ns in given {
        inputs::check_namespace(&ns).map_err(|reason| Usage::Flag {
            flag: "--namespace",
            reason,
        })?;
        if !namespaces.contains(&ns) {
            namespaces.push(ns);
        }
    }
    if namespaces.len() > 5 {
        return Err(Usage::TooManyNamespaces {
            count: namespaces.len(),
        }
        .into());
    }
    let public_access_cidrs = pick_public_access_cidrs(&args.public_access_cidrs, previous)?;
    let support_type = match (args.support_type, previous.and_then(|p| p.support_type.as_deref())) {
        (Some(flag), _) => flag,
        (None, Some(known)) => SupportType::parse(known).ok_or_else(|| Usage::Flag {
            flag: "--support-type",
            reason: format!(
                "the state's cluster.supportType `{known}` is neither STANDARD nor EXTENDED; pass --support-type"
            ),
        })?,
        (None, None) => SupportType::Standard,
    };
    let admins = crate::access::pick_admins(&args.admins, args.no_admins, previous)?;
    let network = match &args.vpc_id {
        Some(vpc_id) => {
            inputs::check_vpc_id(vpc_id)?;
            let private = inputs::parse_subnet_list(
                "--private-subnets",
                args.private_subnets.as_deref().unwrap_or_default(),
            )?;
            let public = match &args.public_subnets {
                Some(text) => inputs::parse_subnet_list("--public-subnets", text)?,
                None => Vec::new(),
            };
            NetworkPlan::Brought {
                vpc_id: vpc_id.clone(),
                private,
                public,
            }
        }
        None => {
            let cidr = inputs::check_vpc_cidr(&args.vpc_cidr).map_err(|reason| Usage::Flag {
                flag: "--vpc-cidr",
                reason,
            })?;
            inputs::check_azs(args.azs)?;
            match previous {
                // A network brought on an earlier run stays what the cluster uses.
                Some(p)
                    if !p.network_created_by_us
                        && p.facts.vpc_id.is_some()
                        && !p.facts.private_subnet_ids.is_empty() =>
                {
                    NetworkPlan::Brought {
                        vpc_id: p.facts.vpc_id.clone().unwrap_or_default(),
                        private: p.facts.private_subnet_ids.clone(),
                        public: p.facts.public_subnet_ids.clone(),
                    }
                }
                _ => NetworkPlan::Stack {
                    cidr,
                    azs: args.azs,
                },
            }
        }
    };
    if let (Some(p), NetworkPlan::Brought { vpc_id, .. }) = (previous, &network)
        && p.network_created_by_us
    {
        return Err(Usage::VpcMove {
            cluster: p.facts.name.clone(),
            vpc: p
                .facts
                .vpc_id
                .clone()
                .unwrap_or_else(|| "(being made)".into()),
            vpc_id: vpc_id.clone(),
        }
        .into());
    }
    Ok(CreatePlan {
        cluster,
        version,
        namespaces,
        network,
        public_access_cidrs,
        support_type,
        admins,
    })
}

/// The CIDRs of the public API endpoint: the flags, else the state's, else open to all
/// (EKS's default); each checked.
fn pick_public_access_cidrs(
    flags: &[String],
    previous: Option<&Section>,
) -> Result<Vec<String>, Error> {
    let values: Vec<String> = match previous.map(|p| &p.public_access_cidrs) {
        _ if !flags.is_empty() => flags.to_vec(),
        Some(known) if !known.is_empty() => known.clone(),
        _ => vec![inputs::OPEN_TO_ALL.to_owned()],
    };
    Ok(inputs::check_public_access_cidrs(&values)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use common::StepFailure;
    use common::step::EXIT_USAGE;

    use crate::SECTION;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        create: CreateArgs,
    }

    fn args(extra: &[&str]) -> CreateArgs {
        let mut all = vec!["x"];
        all.extend_from_slice(extra);
        Cli::try_parse_from(all).unwrap().create
    }

    #[test]
    fn defaults() {
        let plan = plan_create(&args(&["--cluster", "demo"]), &State::new(), None).unwrap();
        assert_eq!(plan.version, inputs::DEFAULT_KUBERNETES_VERSION);
        assert_eq!(plan.namespaces, ["default", "kube-system", "game-2048"]);
        assert_eq!(
            plan.network,
            NetworkPlan::Stack {
                cidr: inputs::check_vpc_cidr("192.168.0.0/16").unwrap(),
                azs: 2
            }
        );
    }

    #[test]
    fn bad_input_is_usage() {
        for bad in [
            vec!["--cluster", "bad.name"],
            vec!["--cluster", "c", "--vpc-cidr", "10.0.0.0/8"],
            vec!["--cluster", "c", "--kubernetes-version", "v1.35"],
            vec!["--cluster", "c", "--azs", "4"],
            vec!["--cluster", "c", "--namespace", "Bad"],
            vec![
                "--cluster",
                "c",
                "--vpc-id",
                "vpc-1",
                "--private-subnets",
                "x",
            ],
        ] {
            let err = plan_create(&args(&bad), &State::new(), None).unwrap_err();
            assert_eq!(err.exit_code(), EXIT_USAGE, "{bad:?}: {err}");
        }
        let err = plan_create(&args(&[]), &State::new(), None).unwrap_err();
        assert!(matches!(
            err,
            Error::Usage(Usage::Common(ref shared))
                if matches!(*shared, common::Usage::Cluster(common::cluster::PickError::Missing))
        ));
    }

    #[test]
    fn brought_network_is_kept_on_rerun() {
        let mut previous = Section::new("c", "us-east-2");
        previous.facts.vpc_id = Some("vpc-1".into());
        previous.facts.private_subnet_ids = vec!["subnet-1".into()];
        let mut state = State::new();
        state.set_section(SECTION, &previous);
        let plan = plan_create(&args(&[]), &state, Some(&previous)).unwrap();
        assert!(matches!(plan.network, NetworkPlan::Brought { .. }));
        let ours = Section {
            network_created_by_us: true,
            ..previous
        };
        state.set_section(SECTION, &ours);
        let err = plan_create(
            &args(&["--vpc-id", "vpc-2", "--private-subnets", "subnet-2"]),
            &state,
            Some(&ours),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert_eq!(
            err.to_string(),
            "the state's cluster c runs in the VPC vpc-1 that eks-cluster made; it cannot move to --vpc-id vpc-2. Delete it first or use a separate state"
        );
    }

    #[test]
    fn version_and_namespaces_come_from_the_state_unless_given() {
        let previous = Section {
            kubernetes_version: Some("1.33".into()),
            fargate_namespaces: vec!["apps".into()],
            ..Section::new("c", "us-east-2")
        };
        let mut state = State::new();
        state.set_section(SECTION, &previous);
        let plan = plan_create(&args(&[]), &state, Some(&previous)).unwrap();
        assert_eq!(
            (plan.version.as_str(), plan.namespaces.as_slice()),
            ("1.33", &["apps".to_owned()][..])
        );
        let plan = plan_create(
            &args(&["--kubernetes-version", "1.34", "--namespace", "web"]),
            &state,
            Some(&previous),
        )
        .unwrap();
        assert_eq!(
            (plan.version.as_str(), plan.namespaces.as_slice()),
            ("1.34", &["web".to_owned()][..])
        );
    }

    #[test]
    fn public_access_cidrs_and_support_type() {
        let plan = plan_create(&args(&["--cluster", "c"]), &State::new(), None).unwrap();
        assert_eq!(plan.public_access_cidrs, [inputs::OPEN_TO_ALL]);
        assert_eq!(plan.support_type, SupportType::Standard);
        let plan = plan_create(
            &args(&[
                "--cluster",
                "c",
                "--public-access-cidrs",
                "203.0.113.0/24,198.51.100.7/32",
                "--public-access-cidrs",
                "192.0.2.0/24",
                "--support-type",
                "extended",
            ]),
            &State::new(),
            None,
        )
        .unwrap();
        assert_eq!(
            plan.public_access_cidrs,
            ["203.0.113.0/24", "198.51.100.7/32", "192.0.2.0/24"]
        );
        assert_eq!(plan.support_type, SupportType::Extended);
        // A re-run without the flags keeps what the state records.
        let previous = Section {
            public_access_cidrs: vec!["192.0.2.0/24".into()],
            support_type: Some("EXTENDED".into()),
            ..Section::new("c", "us-east-2")
        };
        let mut state = State::new();
        state.set_section(SECTION, &previous);
        let plan = plan_create(&args(&[]), &state, Some(&previous)).unwrap();
        assert_eq!(plan.public_access_cidrs, ["192.0.2.0/24"]);
        assert_eq!(plan.support_type, SupportType::Extended);
        let err = plan_create(
            &args(&["--cluster", "c", "--public-access-cidrs", "10.0.0.0/8"]),
            &State::new(),
            None,
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(
            err.to_string()
                .starts_with("--public-access-cidrs: `10.0.0.0/8`"),
            "{err}"
        );
    }

    #[test]
    fn cluster_and_region_never_mixed() {
        let mut state = State::new();
        let s = Section::new("a", "us-east-2");
        state.set_section(SECTION, &s);
        assert!(pick_cluster(Some("b"), &state).is_err());
        assert_eq!(pick_cluster(None, &state).unwrap(), "a");
        assert!(check_region(Some(&s), "eu-west-1").is_err());
        assert!(check_region(Some(&s), "us-east-2").is_ok());
        assert_eq!(
            check_region(Some(&s), "eu-west-1").unwrap_err().to_string(),
            "the state's cluster a is in us-east-2, not eu-west-1; drop --region or use a separate state"
        );
        assert_eq!(
            pick_cluster(Some("b"), &state).unwrap_err().to_string(),
            "--cluster b names another cluster than the state document (a); use a separate state for each cluster, or drop --cluster"
        );
    }
}
