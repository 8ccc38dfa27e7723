//! What a run is about: the cluster, the checked service account and role name, and what the
//! tool knows of the cluster (its facts and the ARN of its OIDC provider).

use std::collections::BTreeSet;

use common::aws::AwsError;
use common::facts::Resolver;
use common::{ClusterFacts, State};

use crate::args::Target;
use crate::error::{Error, Usage};
use crate::record::{Entry, entries};
use crate::{role, sa};

/// The cluster this run is about: `--cluster`, else the state's (its `cluster` section, else the
/// one cluster its `irsa` entries are for); never both differing.
pub fn pick_cluster(flag: Option<&str>, state: &State) -> Result<String, Error> {
    let recorded: BTreeSet<String> = entries(state)?
        .into_iter()
        .map(|e| e.cluster_name)
        .collect();
    let only_recorded = (recorded.len() == 1)
        .then(|| recorded.first().cloned())
        .flatten();
    Ok(common::cluster::pick_in(
        flag,
        state,
        only_recorded.as_deref(),
    )?)
}

/// The namespace, service account and role names are valid Kubernetes and IAM names.
pub(crate) fn check_target(target: &Target) -> Result<(), Usage> {
    sa::check_label(&target.namespace).map_err(|reason| Usage::Namespace {
        value: target.namespace.clone(),
        reason,
    })?;
    sa::check_subdomain(&target.sa_name).map_err(|reason| Usage::ServiceAccount {
        value: target.sa_name.clone(),
        reason,
    })?;
    if let Some(name) = &target.role_name {
        role::check_role_name(name).map_err(|reason| Usage::RoleName {
            value: name.clone(),
            reason,
        })?;
    }
    Ok(())
}

/// The role name: the one the state recorded for this account, else --role-name, else the seed's.
pub(crate) fn pick_role_name(
    target: &Target,
    recorded: Option<&Entry>,
    cluster: &str,
    region: &str,
) -> Result<String, Usage> {
    match (recorded, &target.role_name) {
        (Some(entry), Some(flag)) if *flag != entry.role_name => Err(Usage::OtherRole {
            recorded: entry.role_name.clone(),
            namespace: target.namespace.clone(),
            service_account: target.sa_name.clone(),
            flag: flag.clone(),
        }),
        (Some(entry), _) => Ok(entry.role_name.clone()),
        (None, Some(flag)) => Ok(flag.clone()),
        (None, None) => Ok(role::role_name(&target.sa_name, cluster, region)),
    }
}

/// What `ensure` and `delete` settle before any call: the state's entries, the cluster, this
/// account's entry (if recorded), the role name and the state's facts of the cluster.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub list: Vec<Entry>,
    pub cluster: String,
    pub recorded: Option<Entry>,
    pub role_name: String,
    pub known: Facts,
}

/// Every refusal of `ensure` and `delete` about the target, before any call.
pub(crate) fn resolve(state: &State, target: &Target, region: &str) -> Result<Resolved, Error> {
    let list = entries(state)?;
    let cluster = pick_cluster(target.cluster.as_deref(), state)?;
    check_target(target)?;
    let recorded = list
        .iter()
        .find(|e| e.is_for(&cluster, &target.namespace, &target.sa_name))
        .cloned();
    let role_name = pick_role_name(target, recorded.as_ref(), &cluster, region)?;
    let known = Facts::from_state(state, &cluster)?;
    Ok(Resolved {
        list,
        cluster,
        recorded,
        role_name,
        known,
    })
}

/// The AWS clients this tool uses.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub eks: aws_sdk_eks::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            iam: aws_sdk_iam::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
        }
    }
}

/// What the tool needs to know of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub issuer: Option<String>,
    pub arn: Option<String>,
    pub endpoint: Option<String>,
    pub ca_data: Option<String>,
}

impl Facts {
    /// What the state's `cluster` section says of `cluster` (nothing when it is about another
    /// cluster); a malformed section is bad input.
    pub fn from_state(state: &State, cluster: &str) -> Result<Facts, Error> {
        Ok(ClusterFacts::of(state, cluster)?
            .map(|facts| Facts {
                issuer: facts.oidc_issuer,
                arn: facts.arn,
                endpoint: facts.endpoint,
                ca_data: facts.certificate_authority_data,
            })
            .unwrap_or_default())
    }

    /// Fills what is missing from DescribeCluster (one call, only when something is missing):
    /// each fact resolved by [`common::facts::Resolver`]; the endpoint and CA only when
    /// `need_endpoint`.
    pub async fn complete(
        self,
        eks: &aws_sdk_eks::Client,
        cluster: &str,
        region: &str,
        need_endpoint: bool,
    ) -> Result<Facts, Error> {
        let known = ClusterFacts {
            name: cluster.to_owned(),
            oidc_issuer: self.issuer,
            arn: self.arn,
            endpoint: self.endpoint,
            certificate_authority_data: self.ca_data,
            ..ClusterFacts::default()
        };
        let mut facts = Resolver::new(eks.clone(), cluster, region, known);
        let issuer = facts.oidc_issuer().await?.map(|r| r.value);
        let arn = facts.arn().await?;
        let (endpoint, ca_data) = if need_endpoint {
            facts.endpoint_and_ca().await?.unzip()
        } else {
            let known = facts.known();
            (
                known.endpoint.clone(),
                known.certificate_authority_data.clone(),
            )
        };
        Ok(Facts {
            issuer,
            arn,
            endpoint,
            ca_data,
        })
    }
}

/// `arn:<partition>:iam::<account>:oidc-provider/<issuer host/path>`: from the state's `oidc`
/// section, else from the cluster's ARN (same account), else from the caller's identity (its
/// partition, else `region`'s).
pub async fn provider_arn(
    state: &State,
    cluster: &str,
    facts: &Facts,
    ctx: &common::Context,
) -> Result<String, Error> {
    let issuer = facts.issuer.as_deref().ok_or_else(|| Error::NoIssuer {
        cluster: cluster.to_owned(),
    })?;
    if let Some(arn) = common::sections::oidc::provider_arn_for(state, issuer) {
        return Ok(arn);
    }
    let (partition, account) = match facts
        .arn
        .as_deref()
        .and_then(common::iam::partition_and_account)
    {
        Some((partition, account)) => (partition.to_owned(), account.to_owned()),
        None => {
            let me = ctx.caller().await?;
            (me.partition.clone(), me.account.clone())
        }
    };
    Ok(common::iam::oidc_provider_arn(&partition, &account, issuer))
}

/// The cluster's IAM OIDC provider exists (`eks-oidc ensure` made it).
pub(crate) async fn check_provider(iam: &aws_sdk_iam::Client, arn: &str) -> Result<(), Error> {
    match iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let source = AwsError::from(e);
            if source.is("NoSuchEntity") {
                Err(Error::NoProvider {
                    arn: arn.to_owned(),
                })
            } else {
                Err(Error::Iam {
                    action: "GetOpenIDConnectProvider",
                    target: arn.to_owned(),
                    source,
                })
            }
        }
    }
}

/// The Kubernetes client: --kubeconfig, else the cluster's endpoint and CA (asking
/// DescribeCluster when the facts lack them) and an EKS token.
pub(crate) async fn kube_client(
    target: &Target,
    facts: &Facts,
    aws: &aws_config::SdkConfig,
    cluster: &str,
) -> Result<kube::Client, Error> {
    Ok(common::cluster::kube_client_from(
        target.kubeconfig.as_deref(),
        target.context.as_deref(),
        aws,
        cluster,
        facts.endpoint.as_deref(),
        facts.ca_data.as_deref(),
    )
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::entry;
    use common::StepFailure;
    use common::step::EXIT_USAGE;

    fn target(role: Option<&str>) -> Target {
        Target {
            cluster: None,
            namespace: "kube-system".into(),
            sa_name: "sa".into(),
            role_name: role.map(str::to_owned),
            kubeconfig: None,
            context: None,
        }
    }

    #[test]
    fn role_name_precedence() {
        assert_eq!(
            pick_role_name(&target(None), None, "c", "us-east-2").unwrap(),
            "sa-sa-in-c-us-east-2"
        );
        assert_eq!(
            pick_role_name(&target(Some("mine")), None, "c", "r").unwrap(),
            "mine"
        );
        assert_eq!(
            pick_role_name(&target(None), Some(&entry("old")), "c", "r").unwrap(),
            "old"
        );
        assert_eq!(
            pick_role_name(&target(Some("old")), Some(&entry("old")), "c", "r").unwrap(),
            "old"
        );
        let err = pick_role_name(&target(Some("new")), Some(&entry("old")), "c", "r").unwrap_err();
        assert!(matches!(err, Usage::OtherRole { .. }));
        assert_eq!(Error::from(err).exit_code(), EXIT_USAGE);
    }

    #[test]
    fn picks_the_recorded_cluster_without_a_cluster_section() {
        let mut state = State::new();
        crate::record::store(
            &mut state,
            vec![],
            Some(entry("a")),
            "c",
            "kube-system",
            "sa",
        );
        assert_eq!(pick_cluster(None, &state).unwrap(), "c");
        assert!(pick_cluster(Some("d"), &state).is_err());
        state.set_section(
            "cluster",
            &serde_json::json!({"name": "e", "oidcIssuer": "https://i"}),
        );
        assert_eq!(pick_cluster(None, &state).unwrap(), "e");
        let facts = Facts::from_state(&state, "e").unwrap();
        assert_eq!(facts.issuer.as_deref(), Some("https://i"));
        assert_eq!(Facts::from_state(&state, "c").unwrap(), Facts::default());
    }
}
