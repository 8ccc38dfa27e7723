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

/// `DescribeCluster`; `None` when EKS has no cluster of that name.
pub async fn describe(eks: &aws_sdk_eks::Client, name: &str) -> Result<Option<Cluster>, AwsError> {
    match eks.describe_cluster().name(name).send().await {
        Ok(answer) => Ok(answer.cluster().cloned()),
        Err(e) => {
            let err = AwsError::from(e);
            if err.is("ResourceNotFoundException") {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
