//! Which cluster a run is about, and asking EKS about it.

use aws_sdk_eks::types::Cluster;

use crate::aws::AwsError;

/// Why no cluster could be picked. Usage errors (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error(
        "no cluster named: pass --cluster NAME, or give a state document with a `cluster` section"
    )]
    Missing,
    #[error("cluster name `{name}` is not valid: {reason}")]
    Invalid { name: String, reason: String },
    #[error(
        "--cluster {flag} names another cluster than the state document ({known}); use a separate state for each cluster, or drop --cluster"
    )]
    Mismatch { flag: String, known: String },
}

/// The cluster: `--cluster` (`flag`), else the one the state knows (`known`). A flag naming
/// another cluster than the state is refused, so one state never mixes two clusters.
pub fn pick(flag: Option<&str>, known: Option<&str>) -> Result<String, PickError> {
    let name = match (flag, known) {
        (Some(flag), Some(known)) if flag != known => {
            return Err(PickError::Mismatch {
                flag: flag.to_owned(),
                known: known.to_owned(),
            });
        }
        (Some(flag), _) => flag,
        (None, Some(known)) => known,
        (None, None) => return Err(PickError::Missing),
    };
    crate::names::check_cluster_name(name).map_err(|reason| PickError::Invalid {
        name: name.to_owned(),
        reason,
    })?;
    Ok(name.to_owned())
}

/// The one cluster picker: `--cluster` (`flag`), else the state's cluster (its `cluster`
/// section), else `also` (what a step's own section recorded when the state has no `cluster`
/// section, for a state made without `eks-cluster`). See [`pick`].
pub fn pick_in(
    flag: Option<&str>,
    state: &crate::State,
    also: Option<&str>,
) -> Result<String, PickError> {
    pick(flag, crate::facts::ClusterFacts::name_in(state).or(also))
}

/// True when EKS says the cluster does not exist: `ResourceNotFoundException`, or the
/// `ClientException` "No cluster found for name: X." EKS also answers for a cluster that has
/// just gone.
pub fn not_found(err: &AwsError) -> bool {
    err.is("ResourceNotFoundException")
        || (err.is("ClientException") && err.text().contains("No cluster found"))
}

/// The outcome of an EKS removal call (`DeleteCluster`, `DeleteFargateProfile`): true when it was
/// taken, false when EKS says the thing is gone already ([`not_found`]), else the error.
pub fn removed<T, E>(outcome: Result<T, E>) -> Result<bool, AwsError>
where
    AwsError: From<E>,
{
    match outcome.map_err(AwsError::from) {
        Ok(_) => Ok(true),
        Err(e) if not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// True when the Kubernetes API answered 404 Not Found.
pub fn kube_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// `DescribeCluster`; `None` when EKS has no cluster of that name ([`not_found`]).
pub async fn describe(eks: &aws_sdk_eks::Client, name: &str) -> Result<Option<Cluster>, AwsError> {
    match eks.describe_cluster().name(name).send().await {
        Ok(answer) => Ok(answer.cluster().cloned()),
        Err(e) => {
            let err = AwsError::from(e);
            if not_found(&err) { Ok(None) } else { Err(err) }
        }
    }
}

/// Why a cluster that must exist could not be described.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("DescribeCluster {cluster}")]
    Call { cluster: String, source: AwsError },
    #[error(
        "cluster {cluster} was not found in {region}; check --cluster and --region (nothing was created or changed)"
    )]
    NotFound { cluster: String, region: String },
}

/// `DescribeCluster` of a cluster the run needs: its absence is an error naming the cluster and
/// the region ([`describe`] when absence is an answer).
pub async fn describe_existing(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    region: &str,
) -> Result<Cluster, DescribeError> {
    describe(eks, cluster)
        .await
        .map_err(|source| DescribeError::Call {
            cluster: cluster.to_owned(),
            source,
        })?
        .ok_or_else(|| DescribeError::NotFound {
            cluster: cluster.to_owned(),
            region: region.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cluster_found_is_not_found() {
        let gone = AwsError::from_parts(
            Some("ClientException"),
            "ClientException: No cluster found for name: c.",
        );
        assert!(not_found(&gone));
        assert!(not_found(&AwsError::from_parts(
            Some("ResourceNotFoundException"),
            "x"
        )));
        let other = AwsError::from_parts(Some("ClientException"), "ClientException: bad");
        assert!(!not_found(&other));

        // A removal: taken, gone already, or failed.
        let taken: Result<(), AwsError> = Ok(());
        assert!(removed(taken).unwrap());
        assert!(!removed::<(), _>(Err(gone)).unwrap());
        let failed = removed::<(), _>(Err(other)).unwrap_err();
        assert!(failed.is("ClientException"));
    }

    #[test]
    fn kube_404_is_not_found() {
        let status = |code: u16| {
            kube::Error::Api(
                kube::core::Status {
                    code,
                    ..kube::core::Status::failure("m", "NotFound")
                }
                .boxed(),
            )
        };
        assert!(kube_not_found(&status(404)));
        assert!(!kube_not_found(&status(409)));
    }

    #[test]
    fn picks_the_state_cluster_before_a_step_record() {
        let mut state = crate::State::new();
        assert_eq!(pick_in(None, &state, Some("old")).unwrap(), "old");
        state.set_section("cluster", &serde_json::json!({"name": "c"}));
        assert_eq!(pick_in(None, &state, Some("old")).unwrap(), "c");
        assert!(matches!(
            pick_in(Some("d"), &state, None),
            Err(PickError::Mismatch { .. })
        ));
    }

    #[test]
    fn flag_or_state_never_mixed() {
        assert_eq!(pick(Some("a"), None).unwrap(), "a");
        assert_eq!(pick(None, Some("b")).unwrap(), "b");
        assert_eq!(pick(Some("b"), Some("b")).unwrap(), "b");
        assert_eq!(pick(None, None), Err(PickError::Missing));
        assert!(matches!(
            pick(Some("a"), Some("b")),
            Err(PickError::Mismatch { .. })
        ));
        assert!(matches!(
            pick(Some("bad.name"), None),
            Err(PickError::Invalid { .. })
        ));
        assert!(
            pick(Some("a"), Some("b"))
                .unwrap_err()
                .to_string()
                .contains("drop --cluster")
        );
    }
}

/// Why no Kubernetes client could be made for a cluster.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("DescribeCluster {cluster}")]
    Describe { cluster: String, source: AwsError },
    #[error("cluster {cluster} was not found; check --cluster and --region, or pass --kubeconfig")]
    NotFound { cluster: String },
    #[error(
        "cluster {cluster} reports no endpoint or certificate authority yet; pass --kubeconfig"
    )]
    NoEndpoint { cluster: String },
    #[error(transparent)]
    Client(#[from] crate::kube::KubeClientError),
    #[error("cannot make the EKS token")]
    Token(#[from] crate::token::TokenError),
}

/// A Kubernetes client for `cluster`: through `kubeconfig` (and `context`) when given, else from
/// the endpoint and CA in the state's `cluster` section (asking `DescribeCluster` when it lacks
/// them) with an EKS token from the AWS credentials.
pub async fn kube_client(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
    state: &crate::State,
    aws: &aws_config::SdkConfig,
    cluster: &str,
) -> Result<kube::Client, AccessError> {
    let facts = crate::facts::ClusterFacts::of(state, cluster)
        .ok()
        .flatten()
        .unwrap_or_default();
    kube_client_from(
        kubeconfig,
        context,
        aws,
        cluster,
        facts.endpoint.as_deref(),
        facts.certificate_authority_data.as_deref(),
    )
    .await
}

/// The one place a Kubernetes client is built: through `kubeconfig` (and `context`) when given,
/// else from `endpoint` and `ca` (base64 PEM, as EKS gives it; `DescribeCluster` is asked when
/// either is unknown) with EKS tokens signed from the AWS credentials and refreshed
/// (`common::kubeauth`). The first token is signed here, so missing credentials fail early.
pub async fn kube_client_from(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
    aws: &aws_config::SdkConfig,
    cluster: &str,
    endpoint: Option<&str>,
    ca: Option<&str>,
) -> Result<kube::Client, AccessError> {
    if let Some(path) = kubeconfig {
        return Ok(crate::kube::client_from_kubeconfig(path, context).await?);
    }
    let known = crate::facts::ClusterFacts {
        name: cluster.to_owned(),
        endpoint: endpoint.map(str::to_owned),
        certificate_authority_data: ca.map(str::to_owned),
        ..Default::default()
    };
    let region = aws.region().map(ToString::to_string).unwrap_or_default();
    let mut facts =
        crate::facts::Resolver::new(aws_sdk_eks::Client::new(aws), cluster, &region, known);
    let (endpoint, ca) = facts
        .endpoint_and_ca()
        .await
        .map_err(|e| match e {
            DescribeError::Call { cluster, source } => AccessError::Describe { cluster, source },
            DescribeError::NotFound { cluster, .. } => AccessError::NotFound { cluster },
        })?
        .ok_or_else(|| AccessError::NoEndpoint {
            cluster: cluster.to_owned(),
        })?;
    let tokens = crate::kubeauth::TokenSource::eks(aws, cluster);
    tokens.sign_now().await?;
    Ok(crate::kube::client_for_eks(
        &endpoint,
        &ca,
        std::sync::Arc::new(tokens),
    )?)
}
