//! Finding the provider of a cluster: its issuer (from the state's `cluster` section, else
//! `DescribeCluster`: [`common::facts::Resolver::oidc_issuer`]) and the ARN IAM names after it
//! (the account and partition from `GetCallerIdentity`).

use common::facts::{Origin, Resolved, Resolver};
use common::{ClusterFacts, Context, State};

use crate::Clients;
use crate::error::{Error, Usage};
use crate::issuer::Issuer;

/// The issuer the state's `cluster` section records for `cluster`, if any.
pub fn issuer_from_state(state: &State, cluster: &str) -> Result<Option<Issuer>, Error> {
    let facts = ClusterFacts::of(state, cluster)?;
    match facts
        .as_ref()
        .and_then(|f| f.oidc_issuer.as_deref())
        .filter(|s| !s.is_empty())
    {
        None => Ok(None),
        Some(url) => parse_recorded(url).map(Some),
    }
}

/// An issuer the state records: one that is not an `https://` URL is bad input.
fn parse_recorded(url: &str) -> Result<Issuer, Error> {
    Issuer::parse(url).map_err(|reason| {
        Usage::StateIssuer {
            issuer: url.to_owned(),
            reason,
        }
        .into()
    })
}

/// The issuer `DescribeCluster` reports (`identity.oidc.issuer`, an optional field).
pub fn reported_issuer(
    cluster_name: &str,
    cluster: &aws_sdk_eks::types::Cluster,
) -> Result<Issuer, Error> {
    let url = cluster
        .identity()
        .and_then(|i| i.oidc())
        .and_then(|o| o.issuer())
        .filter(|s| !s.is_empty());
    parse_reported(cluster_name, url)
}

/// An issuer `DescribeCluster` reported (`None`: it reported none).
fn parse_reported(cluster: &str, url: Option<&str>) -> Result<Issuer, Error> {
    let url = url.ok_or_else(|| Error::NoIssuer {
        cluster: cluster.to_owned(),
    })?;
    Issuer::parse(url).map_err(|reason| Error::ReportedIssuer {
        cluster: cluster.to_owned(),
        issuer: url.to_owned(),
        reason,
    })
}

/// The issuer and provider ARN of `cluster`: the issuer from the state or `DescribeCluster`,
/// the account and partition from `GetCallerIdentity` ([`Context::caller`], asked once a run).
pub(crate) async fn locate(
    clients: &Clients,
    ctx: &Context,
    state: &State,
    cluster: &str,
) -> Result<(Issuer, String), Error> {
    let mut facts = Resolver::from_state(state, clients.eks.clone(), cluster, &ctx.region)?;
    let issuer = match facts.oidc_issuer().await? {
        Some(Resolved {
            value,
            origin: Origin::State,
        }) => {
            let issuer = parse_recorded(&value)?;
            tracing::info!(
                "cluster {cluster}: OIDC issuer {} (from the state)",
                issuer.url()
            );
            issuer
        }
        reported => {
            let issuer = parse_reported(cluster, reported.as_ref().map(|r| r.value.as_str()))?;
            tracing::info!("cluster {cluster}: OIDC issuer {}", issuer.url());
            issuer
        }
    };
    let me = ctx.caller().await?;
    let arn = issuer.provider_arn(&me.partition, &me.account);
    Ok((issuer, arn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::StepFailure;
    use common::step::{EXIT_FAILED, EXIT_USAGE};

    fn state(text: &str) -> State {
        State::parse(text).unwrap()
    }

    #[test]
    fn issuer_from_the_state_only_for_its_cluster() {
        let with = state(
            r#"{"schemaVersion":1,"cluster":{"name":"c","oidcIssuer":"https://oidc.example.com/id/X"}}"#,
        );
        let found = issuer_from_state(&with, "c").unwrap().unwrap();
        assert_eq!(found.url(), "https://oidc.example.com/id/X");
        assert!(issuer_from_state(&with, "other").unwrap().is_none());
        let empty = state(r#"{"schemaVersion":1,"cluster":{"name":"c","oidcIssuer":""}}"#);
        assert!(issuer_from_state(&empty, "c").unwrap().is_none());
        let bad = state(r#"{"schemaVersion":1,"cluster":{"name":"c","oidcIssuer":"http://x"}}"#);
        let err = issuer_from_state(&bad, "c").unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(err.to_string().contains("https://"), "{err}");
    }

    #[test]
    fn issuer_from_describe_cluster_is_an_optional_field() {
        use aws_sdk_eks::types::{Cluster, Identity, Oidc};
        let bare = Cluster::builder().name("c").build();
        let err = reported_issuer("c", &bare).unwrap_err();
        assert!(matches!(err, Error::NoIssuer { .. }));
        assert_eq!(err.exit_code(), EXIT_FAILED);
        assert!(err.to_string().contains("nothing was created"), "{err}");
        let no_url = Cluster::builder()
            .identity(Identity::builder().oidc(Oidc::builder().build()).build())
            .build();
        assert!(matches!(
            reported_issuer("c", &no_url),
            Err(Error::NoIssuer { .. })
        ));
        let with = |url: &str| {
            Cluster::builder()
                .identity(
                    Identity::builder()
                        .oidc(Oidc::builder().issuer(url).build())
                        .build(),
                )
                .build()
        };
        let good = reported_issuer("c", &with("https://oidc.eks.us-east-2.amazonaws.com/id/A"));
        assert_eq!(
            good.unwrap().host_and_path(),
            "oidc.eks.us-east-2.amazonaws.com/id/A"
        );
        assert!(matches!(
            reported_issuer("c", &with("ftp://x")),
            Err(Error::ReportedIssuer { .. })
        ));
    }
}
