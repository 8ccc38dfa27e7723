//! Bad input as a type. Every step's error enum has one `Usage(..)` variant holding its bad-input
//! cases (and this crate's shared ones); [`crate::StepFailure::is_usage`] matches that variant, so
//! exit 2 follows from where an error lives, not from a hand-kept list.

use crate::aws::RegionError;
use crate::cluster::PickError;
use crate::state::StateError;

/// Bad input every step can meet, found before any change: exit 2, nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    /// No cluster, an invalid name, or `--cluster` against the state's cluster.
    #[error(transparent)]
    Cluster(#[from] PickError),
    /// The state document is unreadable or malformed.
    #[error(transparent)]
    State(#[from] StateError),
    /// No region, or a malformed one.
    #[error(transparent)]
    Region(#[from] RegionError),
    /// The state could not be read (`from stdin`, `file PATH`).
    #[error("cannot read the state {from}: {source}")]
    ReadState {
        from: String,
        source: std::io::Error,
    },
    /// The step's own section is about another cluster or region than this run.
    #[error(transparent)]
    OtherPlace(Box<OtherPlace>),
    /// `--cluster` names another cluster than the step's own section records.
    #[error(
        "--cluster {flag} names another cluster than the state's {section} section ({recorded}); drop --cluster or use that cluster's state"
    )]
    OtherCluster {
        section: &'static str,
        flag: String,
        recorded: String,
    },
    /// The credentials are for another AWS account than the one the state records.
    #[error(
        "the state records what was made in AWS account {recorded}, but these credentials are for account {account} ({arn}); there this run would find none of it. Use that account's credentials (--profile, AWS_PROFILE) or a separate state"
    )]
    OtherAccount {
        /// The account(s) the state records, comma separated.
        recorded: String,
        account: String,
        arn: String,
    },
    /// No usable AWS credentials (none found, expired or invalid), or STS out of reach: found
    /// by the first AWS call, before any change.
    #[error("{0}. Nothing was changed")]
    Credentials(crate::aws::CredentialsError),
    /// A resource of the name the step would make, change or delete is not proven ours.
    #[error(transparent)]
    NotOurs(Box<crate::owner::NotOurs>),
    /// `--region` names another region than the state's cluster.
    #[error(
        "the state's cluster {cluster} is in {recorded_region}, not {region}; drop --region or use a separate state"
    )]
    OtherRegion {
        cluster: String,
        recorded_region: String,
        region: String,
    },
}

impl From<crate::owner::NotOurs> for Usage {
    fn from(not_ours: crate::owner::NotOurs) -> Self {
        Usage::NotOurs(Box::new(not_ours))
    }
}

/// A step's own section recorded for another cluster or region than this run's.
#[derive(Debug, thiserror::Error)]
#[error(
    "the state's {section} section is for cluster {recorded_cluster} in {recorded_region}, not {cluster} in {region}; {fix}"
)]
pub struct OtherPlace {
    pub section: &'static str,
    pub recorded_cluster: String,
    pub recorded_region: String,
    pub cluster: String,
    pub region: String,
    /// What to do about it (`delete that stack first or use a separate state`).
    pub fix: &'static str,
}

/// The one same-place check: a step's own section (`section`), recorded for `recorded` =
/// (cluster, region), may only be worked on by a run about that same cluster in that region.
pub fn same_place(
    section: &'static str,
    recorded: Option<(&str, &str)>,
    cluster: &str,
    region: &str,
    fix: &'static str,
) -> Result<(), Usage> {
    match recorded {
        Some((recorded_cluster, recorded_region))
            if recorded_cluster != cluster || recorded_region != region =>
        {
            Err(Usage::OtherPlace(Box::new(OtherPlace {
                section,
                recorded_cluster: recorded_cluster.to_owned(),
                recorded_region: recorded_region.to_owned(),
                cluster: cluster.to_owned(),
                region: region.to_owned(),
                fix,
            })))
        }
        _ => Ok(()),
    }
}

/// A step's own section of the state document that records the cluster and region it is about
/// (`oidc`, `sgStack`): what it names lives in that region, for that cluster.
pub trait OwnSection: serde::de::DeserializeOwned {
    /// Its key in the state document.
    const SECTION: &'static str;
    /// What to do when it is about another cluster or region than the run
    /// (`delete that stack first or use a separate state`).
    const SAME_PLACE_FIX: &'static str;
    /// The cluster and region it is about.
    fn place(&self) -> (&str, &str);
}

/// For a run that makes or updates what the section records (`create`, `ensure`): the cluster
/// (`--cluster`, else the state's cluster, else the one the section records:
/// [`crate::cluster::pick_in`]) and the section as the state holds it. Refused ([`same_place`])
/// when the section is about another cluster or region.
pub fn pick_for_section<S: OwnSection>(
    flag: Option<&str>,
    state: &crate::State,
    region: &str,
) -> Result<(String, Option<S>), Usage> {
    let previous: Option<S> = state.section(S::SECTION)?;
    let recorded = previous.as_ref().map(S::place);
    let cluster = crate::cluster::pick_in(flag, state, recorded.map(|(cluster, _)| cluster))?;
    same_place(S::SECTION, recorded, &cluster, region, S::SAME_PLACE_FIX)?;
    Ok((cluster, previous))
}

/// For a run that removes what the section records (`delete`): the section as the state holds
/// it, after checking that `--cluster` (when given) names its cluster ([`same_cluster`]) and that
/// the run is in its region ([`same_place`]); a run in another region would not find what it
/// records there and must not forget it.
pub fn recorded_section<S: OwnSection>(
    flag: Option<&str>,
    state: &crate::State,
    region: &str,
) -> Result<Option<S>, Usage> {
    let previous: Option<S> = state.section(S::SECTION)?;
    if let Some(place @ (cluster, _)) = previous.as_ref().map(S::place) {
        same_cluster(S::SECTION, flag, cluster)?;
        same_place(S::SECTION, Some(place), cluster, region, S::SAME_PLACE_FIX)?;
    }
    Ok(previous)
}

/// `--cluster` (when given) must be the cluster the step's own section records.
pub fn same_cluster(
    section: &'static str,
    flag: Option<&str>,
    recorded: &str,
) -> Result<(), Usage> {
    match flag {
        Some(flag) if flag != recorded => Err(Usage::OtherCluster {
            section,
            flag: flag.to_owned(),
            recorded: recorded.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The impls every step's `Error` shares, so each crate's `error.rs` holds only its variants:
/// [`crate::StepFailure`] answered by its `Usage` variant (exit 2 follows from the type), and
/// `From` the bad-input types into that variant: `shared` ones through [`Usage`] (the crate's
/// `Usage` has `Common(#[from] common::Usage)`), `own` ones through the crate's `Usage` directly.
///
/// ```ignore
/// common::step_error!(Error, Usage, shared: [PickError, StateError], own: [ManifestError]);
/// ```
#[macro_export]
macro_rules! step_error {
    ($error:ident, $usage:ident
        $(, shared: [$($shared:ty),* $(,)?])?
        $(, own: [$($own:ty),* $(,)?])? $(,)?) => {
        impl $crate::StepFailure for $error {
            fn is_usage(&self) -> bool {
                matches!(self, $error::Usage(_))
            }
        }

        impl ::core::convert::From<$crate::Usage> for $error {
            fn from(usage: $crate::Usage) -> Self {
                $error::Usage($usage::from(usage))
            }
        }

        $($(
            impl ::core::convert::From<$shared> for $error {
                fn from(err: $shared) -> Self {
                    $error::Usage($usage::from($crate::Usage::from(err)))
                }
            }
        )*)?

        $($(
            impl ::core::convert::From<$own> for $error {
                fn from(err: $own) -> Self {
                    $error::Usage($usage::from(err))
                }
            }
        )*)?
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StepFailure;
    use crate::step::{EXIT_FAILED, EXIT_USAGE};

    #[derive(Debug, thiserror::Error)]
    #[error("own bad input")]
    struct OwnBad;

    #[derive(Debug, thiserror::Error)]
    enum StepUsage {
        #[error(transparent)]
        Common(#[from] Usage),
        #[error(transparent)]
        Own(#[from] OwnBad),
    }

    #[derive(Debug, thiserror::Error)]
    enum StepError {
        #[error(transparent)]
        Usage(#[from] StepUsage),
        #[error("CreateThing {id}")]
        Create { id: String },
    }

    crate::step_error!(StepError, StepUsage, shared: [PickError, StateError], own: [OwnBad]);

    #[test]
    fn the_macro_makes_every_usage_exit_2_and_nothing_else() {
        let cases: [(StepError, u8); 5] = [
            (PickError::Missing.into(), EXIT_USAGE),
            (StateError::NoSchemaVersion.into(), EXIT_USAGE),
            (Usage::Region(RegionError::Missing).into(), EXIT_USAGE),
            (OwnBad.into(), EXIT_USAGE),
            (StepError::Create { id: "x".into() }, EXIT_FAILED),
        ];
        for (err, code) in cases {
            assert_eq!(err.exit_code(), code, "{err}");
        }
        let picked: StepError = PickError::Missing.into();
        assert!(
            picked.to_string().starts_with("no cluster named"),
            "{picked}"
        );
    }

    #[test]
    fn same_place_refuses_another_cluster_or_region_and_names_both() {
        assert!(same_place("oidc", None, "a", "us-east-2", "fix").is_ok());
        assert!(same_place("oidc", Some(("a", "us-east-2")), "a", "us-east-2", "fix").is_ok());
        let other_region = same_place("oidc", Some(("a", "us-east-2")), "a", "eu-west-1", "do X");
        let text = other_region.unwrap_err().to_string();
        assert_eq!(
            text,
            "the state's oidc section is for cluster a in us-east-2, not a in eu-west-1; do X"
        );
        assert!(same_place("oidc", Some(("a", "us-east-2")), "b", "us-east-2", "f").is_err());
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Own {
        cluster: String,
        region: String,
    }

    impl OwnSection for Own {
        const SECTION: &'static str = "own";
        const SAME_PLACE_FIX: &'static str = "do X";
        fn place(&self) -> (&str, &str) {
            (&self.cluster, &self.region)
        }
    }

    fn with_own(cluster: Option<&str>) -> crate::State {
        let mut state = crate::State::new();
        state.set_section(
            "own",
            &serde_json::json!({"cluster": "a", "region": "us-east-2"}),
        );
        if let Some(name) = cluster {
            state.set_section("cluster", &serde_json::json!({ "name": name }));
        }
        state
    }

    #[test]
    fn pick_for_section_takes_the_flag_the_state_then_the_section() {
        let own = || Own {
            cluster: "a".into(),
            region: "us-east-2".into(),
        };
        let picked = pick_for_section::<Own>(None, &with_own(None), "us-east-2").unwrap();
        assert_eq!(picked, ("a".to_owned(), Some(own())));
        let fresh = pick_for_section::<Own>(Some("b"), &crate::State::new(), "eu-west-1");
        assert_eq!(fresh.unwrap(), ("b".to_owned(), None));
        // The state's cluster comes first, and the section must be about it.
        let moved = pick_for_section::<Own>(None, &with_own(Some("b")), "us-east-2");
        assert_eq!(
            moved.unwrap_err().to_string(),
            "the state's own section is for cluster a in us-east-2, not b in us-east-2; do X"
        );
        assert!(pick_for_section::<Own>(None, &with_own(None), "eu-west-1").is_err());
        assert!(pick_for_section::<Own>(Some("b"), &with_own(None), "us-east-2").is_err());
        assert!(matches!(
            pick_for_section::<Own>(None, &crate::State::new(), "us-east-2"),
            Err(Usage::Cluster(PickError::Missing))
        ));
    }

    #[test]
    fn recorded_section_must_be_this_cluster_in_this_region() {
        let state = with_own(None);
        assert!(
            recorded_section::<Own>(None, &state, "us-east-2")
                .unwrap()
                .is_some()
        );
        assert!(
            recorded_section::<Own>(Some("a"), &state, "us-east-2")
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            recorded_section::<Own>(Some("b"), &state, "us-east-2"),
            Err(Usage::OtherCluster { .. })
        ));
        assert_eq!(
            recorded_section::<Own>(None, &state, "eu-west-1")
                .unwrap_err()
                .to_string(),
            "the state's own section is for cluster a in us-east-2, not a in eu-west-1; do X"
        );
        let none = recorded_section::<Own>(Some("b"), &crate::State::new(), "eu-west-1");
        assert!(none.unwrap().is_none());
        let mut bad = crate::State::new();
        bad.set_section("own", &serde_json::json!({"cluster": 1}));
        assert!(matches!(
            recorded_section::<Own>(None, &bad, "us-east-2"),
            Err(Usage::State(_))
        ));
    }

    #[test]
    fn same_cluster_only_refuses_a_differing_flag() {
        assert!(same_cluster("sgStack", None, "a").is_ok());
        assert!(same_cluster("sgStack", Some("a"), "a").is_ok());
        let text = same_cluster("sgStack", Some("b"), "a")
            .unwrap_err()
            .to_string();
        assert_eq!(
            text,
            "--cluster b names another cluster than the state's sgStack section (a); drop --cluster or use that cluster's state"
        );
    }
}
