//! The cluster facts later steps need, each resolved in one place: from the state's `cluster`
//! section when it has the fact for this cluster, else from one `DescribeCluster`.
//!
//! The facts' keys are the first keys of the `cluster` section's model
//! ([`crate::sections::cluster::Facts`], here also [`ClusterFacts`]); `eks-cluster` writes them,
//! and `eks-oidc`, `irsa`, `eks-sg-stack`, `eks-patch` and `eks-deploy` read them. A
//! [`Resolver`] answers each fact (the OIDC issuer, the ARN, the endpoint and CA, the VPC and
//! cluster security group) from the state, and asks EKS at most once, only for a fact the state
//! lacks. An empty value counts as unknown.

use aws_sdk_eks::types::Cluster;

use crate::State;
use crate::cluster::DescribeError;
use crate::state::StateError;

pub use crate::sections::cluster::Facts as ClusterFacts;
/// The state section the facts live in.
pub use crate::sections::cluster::KEY as SECTION;

/// Where a resolved fact came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The state's `cluster` section.
    State,
    /// `DescribeCluster`.
    DescribeCluster,
}

/// A fact and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<T> {
    pub value: T,
    pub origin: Origin,
}

/// The cluster's network as recorded or reported: its VPC and cluster security group (both
/// from one source), and the subnets `DescribeCluster` reported (none from the state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub vpc_id: Option<String>,
    pub cluster_security_group_id: Option<String>,
    pub subnet_ids: Vec<String>,
    pub origin: Origin,
}

/// The facts of one cluster: what the state knows of it, and `DescribeCluster` (asked once, the
/// first time a fact the state lacks is wanted; a cluster that does not exist is
/// [`DescribeError::NotFound`], naming the cluster and region).
#[derive(Debug, Clone)]
pub struct Resolver {
    cluster: String,
    region: String,
    known: ClusterFacts,
    eks: aws_sdk_eks::Client,
    described: Option<Cluster>,
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_owned)
}

impl Resolver {
    /// A resolver for `cluster` in `region` that knows `known` (facts recorded for this
    /// cluster; the caller vouches for that).
    pub fn new(
        eks: aws_sdk_eks::Client,
        cluster: &str,
        region: &str,
        known: ClusterFacts,
    ) -> Resolver {
        Resolver {
            cluster: cluster.to_owned(),
            region: region.to_owned(),
            known,
            eks,
            described: None,
        }
    }

    /// A resolver that knows what the state's `cluster` section records of `cluster` (nothing
    /// when the section is about another cluster); a malformed section is bad input.
    pub fn from_state(
        state: &State,
        eks: aws_sdk_eks::Client,
        cluster: &str,
        region: &str,
    ) -> Result<Resolver, StateError> {
        let known = ClusterFacts::of(state, cluster)?.unwrap_or_default();
        Ok(Resolver::new(eks, cluster, region, known))
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// What the state recorded.
    pub fn known(&self) -> &ClusterFacts {
        &self.known
    }

    /// `DescribeCluster`, asked once.
    pub async fn described(&mut self) -> Result<&Cluster, DescribeError> {
        if self.described.is_none() {
            let found =
                crate::cluster::describe_existing(&self.eks, &self.cluster, &self.region).await?;
            self.described = Some(found);
        }
        Ok(self.described.as_ref().expect("set above"))
    }

    /// One fact: the state's value, else what `DescribeCluster` reports (`pick`).
    async fn fact(
        &mut self,
        recorded: Option<String>,
        pick: impl FnOnce(&Cluster) -> Option<&str>,
    ) -> Result<Option<Resolved<String>>, DescribeError> {
        if let Some(value) = recorded.filter(|v| !v.is_empty()) {
            return Ok(Some(Resolved {
                value,
                origin: Origin::State,
            }));
        }
        let described = self.described().await?;
        Ok(non_empty(pick(described)).map(|value| Resolved {
            value,
            origin: Origin::DescribeCluster,
        }))
    }

    /// The OIDC issuer URL (`identity.oidc.issuer`, an optional field).
    pub async fn oidc_issuer(&mut self) -> Result<Option<Resolved<String>>, DescribeError> {
        let recorded = self.known.oidc_issuer.clone();
        self.fact(recorded, |c| {
            c.identity().and_then(|i| i.oidc()).and_then(|o| o.issuer())
        })
        .await
    }

    /// The cluster's ARN.
    pub async fn arn(&mut self) -> Result<Option<String>, DescribeError> {
        let recorded = self.known.arn.clone();
        Ok(self.fact(recorded, |c| c.arn()).await?.map(|r| r.value))
    }

    /// The API server endpoint.
    pub async fn endpoint(&mut self) -> Result<Option<String>, DescribeError> {
        let recorded = self.known.endpoint.clone();
        Ok(self
            .fact(recorded, |c| c.endpoint())
            .await?
            .map(|r| r.value))
    }

    /// The certificate authority data (base64 of the PEM).
    pub async fn certificate_authority(&mut self) -> Result<Option<String>, DescribeError> {
        let recorded = self.known.certificate_authority_data.clone();
        Ok(self
            .fact(recorded, |c| {
                c.certificate_authority().and_then(|a| a.data())
            })
            .await?
            .map(|r| r.value))
    }

    /// The endpoint and CA a Kubernetes client needs, from one source: the state when it has
    /// both, else `DescribeCluster` when it reports both (a cluster still being made does not).
    pub async fn endpoint_and_ca(&mut self) -> Result<Option<(String, String)>, DescribeError> {
        let recorded = (
            non_empty(self.known.endpoint.as_deref()),
            non_empty(self.known.certificate_authority_data.as_deref()),
        );
        if let (Some(endpoint), Some(ca)) = recorded {
            return Ok(Some((endpoint, ca)));
        }
        let described = self.described().await?;
        Ok(non_empty(described.endpoint()).zip(non_empty(
            described.certificate_authority().and_then(|a| a.data()),
        )))
    }

    /// The VPC and cluster security group, from one source: the state when it has both, else
    /// what `DescribeCluster` reports (optional fields; with the cluster's subnets, from which
    /// a caller can find the rest).
    pub async fn network(&mut self) -> Result<Network, DescribeError> {
        let recorded = (
            non_empty(self.known.vpc_id.as_deref()),
            non_empty(self.known.cluster_security_group_id.as_deref()),
        );
        if let (Some(vpc_id), Some(group)) = recorded {
            return Ok(Network {
                vpc_id: Some(vpc_id),
                cluster_security_group_id: Some(group),
                subnet_ids: Vec::new(),
                origin: Origin::State,
            });
        }
        Ok(reported_network(self.described().await?))
    }
}

/// What `DescribeCluster` said of the network: VPC id, cluster security group id, subnets.
pub fn reported_network(cluster: &Cluster) -> Network {
    let config = cluster.resources_vpc_config();
    Network {
        vpc_id: non_empty(config.and_then(|c| c.vpc_id())),
        cluster_security_group_id: non_empty(config.and_then(|c| c.cluster_security_group_id())),
        subnet_ids: config.map(|c| c.subnet_ids().to_vec()).unwrap_or_default(),
        origin: Origin::DescribeCluster,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eks::types::VpcConfigResponse;

    #[test]
    fn reported_network_fields_are_used_when_present() {
        let cluster = Cluster::builder()
            .resources_vpc_config(
                VpcConfigResponse::builder()
                    .vpc_id("vpc-1")
                    .cluster_security_group_id("sg-1")
                    .subnet_ids("subnet-a")
                    .build(),
            )
            .build();
        let found = reported_network(&cluster);
        assert_eq!(found.vpc_id.as_deref(), Some("vpc-1"));
        assert_eq!(found.cluster_security_group_id.as_deref(), Some("sg-1"));
        assert_eq!(found.subnet_ids, ["subnet-a"]);
        assert_eq!(found.origin, Origin::DescribeCluster);
    }

    #[test]
    fn missing_or_empty_reported_network_fields_are_none() {
        let cluster = Cluster::builder()
            .resources_vpc_config(
                VpcConfigResponse::builder()
                    .vpc_id("")
                    .subnet_ids("subnet-a")
                    .build(),
            )
            .build();
        let found = reported_network(&cluster);
        assert_eq!(
            (found.vpc_id, found.cluster_security_group_id),
            (None, None)
        );
        assert_eq!(found.subnet_ids, ["subnet-a"]);
        let bare = reported_network(&Cluster::builder().build());
        assert!(bare.vpc_id.is_none() && bare.subnet_ids.is_empty());
    }
}
