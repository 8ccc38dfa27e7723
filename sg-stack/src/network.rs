//! Finding the cluster's VPC and its cluster security group: from the state's `cluster` section
//! when it has them; else from `DescribeCluster`; where the API leaves them out (they are
//! optional fields), from the VPC of the cluster's subnets and the security group that EKS tags
//! `aws:eks:cluster-name=<cluster>`.

use aws_sdk_ec2::types::{Filter, SecurityGroup};
use aws_sdk_eks::types::Cluster;
use common::state::StateError;
use common::{ClusterFacts, State};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The tag EKS puts on the cluster security group it makes.
pub const CLUSTER_NAME_TAG: &str = "aws:eks:cluster-name";

/// How the cluster security group was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The state's `cluster` section.
    State,
    /// `DescribeCluster`'s `clusterSecurityGroupId`.
    DescribeCluster,
    /// The security group tagged `aws:eks:cluster-name`.
    Tag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::State => "the state document",
            Source::DescribeCluster => "DescribeCluster",
            Source::Tag => "the tag aws:eks:cluster-name",
        })
    }
}

/// The cluster's network facts the stack needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub vpc_id: String,
    pub cluster_security_group_id: String,
    pub source: Source,
}

/// The facts the state's `cluster` section has for `cluster`, when it has both.
pub fn from_state(state: &State, cluster: &str) -> Result<Option<Network>, StateError> {
    Ok(ClusterFacts::of(state, cluster)?.and_then(|facts| {
        Some(Network {
            vpc_id: facts.vpc_id?,
            cluster_security_group_id: facts.cluster_security_group_id?,
            source: Source::State,
        })
    }))
}

/// What `DescribeCluster` said of the network: VPC id, cluster security group id, subnets.
pub fn reported(cluster: &Cluster) -> (Option<String>, Option<String>, Vec<String>) {
    let config = cluster.resources_vpc_config();
    let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    (
        non_empty(config.and_then(|c| c.vpc_id())),
        non_empty(config.and_then(|c| c.cluster_security_group_id())),
        config.map(|c| c.subnet_ids().to_vec()).unwrap_or_default(),
    )
}

/// The cluster security group among the groups tagged for the cluster: the only one, or the
/// only one named the way EKS names it.
pub fn pick_cluster_group(
    cluster: &str,
    vpc_id: &str,
    groups: &[SecurityGroup],
) -> Result<String, Error> {
    let ids = |gs: &[&SecurityGroup]| -> Vec<String> {
        gs.iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect()
    };
    let all: Vec<&SecurityGroup> = groups.iter().filter(|g| g.group_id().is_some()).collect();
    match all.as_slice() {
        [] => Err(Error::NoClusterSecurityGroup {
            cluster: cluster.to_owned(),
            vpc_id: vpc_id.to_owned(),
        }),
        [one] => Ok(one.group_id().expect("filtered").to_owned()),
        many => {
            let named: Vec<&SecurityGroup> = many
                .iter()
                .copied()
                .filter(|g| {
                    g.group_name()
                        .is_some_and(|n| n.starts_with("eks-cluster-sg-"))
                })
                .collect();
            match named.as_slice() {
                [one] => Ok(one.group_id().expect("filtered").to_owned()),
                _ => Err(Error::AmbiguousClusterSecurityGroup {
                    cluster: cluster.to_owned(),
                    groups: ids(many).join(", "),
                }),
            }
        }
    }
}

/// Asks EKS (and EC2 where EKS leaves fields out).
pub async fn discover(
    eks: &aws_sdk_eks::Client,
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
    region: &str,
) -> Result<Network, Error> {
    let info = common::cluster::describe_existing(eks, cluster, region).await?;
    let (vpc, group, subnets) = reported(&info);
    let vpc_id = match vpc {
        Some(vpc) => vpc,
        None => vpc_of_subnets(ec2, cluster, &subnets).await?,
    };
    if let Some(group) = group {
        return Ok(Network {
            vpc_id,
            cluster_security_group_id: group,
            source: Source::DescribeCluster,
        });
    }
    tracing::info!(
        "EKS did not report the cluster security group of {cluster}; looking for the group tagged {CLUSTER_NAME_TAG}={cluster} in {vpc_id}"
    );
    let groups = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name(format!("tag:{CLUSTER_NAME_TAG}"))
                .values(cluster)
                .build(),
        )
        .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
        .send()
        .await
        .map_err(|e| Error::DescribeSecurityGroups {
            cluster: cluster.to_owned(),
            source: e.into(),
        })?;
    let group = pick_cluster_group(cluster, &vpc_id, groups.security_groups())?;
    Ok(Network {
        vpc_id,
        cluster_security_group_id: group,
        source: Source::Tag,
    })
}

async fn vpc_of_subnets(
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
    subnets: &[String],
) -> Result<String, Error> {
    if subnets.is_empty() {
        return Err(Error::NoVpc {
            cluster: cluster.to_owned(),
        });
    }
    tracing::info!("EKS did not report the VPC of {cluster}; reading it from its subnets");
    let described = ec2
        .describe_subnets()
        .set_subnet_ids(Some(subnets.to_vec()))
        .send()
        .await
        .map_err(|e| Error::DescribeSubnets {
            cluster: cluster.to_owned(),
            source: e.into(),
        })?;
    let mut vpcs: Vec<&str> = described
        .subnets()
        .iter()
        .filter_map(|s| s.vpc_id())
        .collect();
    vpcs.sort_unstable();
    vpcs.dedup();
    match vpcs.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(Error::NoVpc {
            cluster: cluster.to_owned(),
        }),
        many => Err(Error::SubnetsInManyVpcs {
            cluster: cluster.to_owned(),
            vpcs: many.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eks::types::VpcConfigResponse;

    fn group(id: &str, name: &str) -> SecurityGroup {
        SecurityGroup::builder()
            .group_id(id)
            .group_name(name)
            .build()
    }

    #[test]
    fn reported_fields_are_used_when_present() {
        let cluster = Cluster::builder()
            .resources_vpc_config(
                VpcConfigResponse::builder()
                    .vpc_id("vpc-1")
                    .cluster_security_group_id("sg-1")
                    .subnet_ids("subnet-a")
                    .build(),
            )
            .build();
        assert_eq!(
            reported(&cluster),
            (
                Some("vpc-1".into()),
                Some("sg-1".into()),
                vec!["subnet-a".to_string()]
            )
        );
    }

    #[test]
    fn missing_or_empty_fields_are_none() {
        let cluster = Cluster::builder()
            .resources_vpc_config(
                VpcConfigResponse::builder()
                    .vpc_id("")
                    .subnet_ids("subnet-a")
                    .build(),
            )
            .build();
        assert_eq!(
            reported(&cluster),
            (None, None, vec!["subnet-a".to_string()])
        );
        assert_eq!(reported(&Cluster::builder().build()), (None, None, vec![]));
    }

    #[test]
    fn picks_the_eks_named_group_among_several() {
        let groups = [
            group("sg-1", "something-else"),
            group("sg-2", "eks-cluster-sg-c-123"),
        ];
        assert_eq!(pick_cluster_group("c", "vpc", &groups).unwrap(), "sg-2");
        assert_eq!(
            pick_cluster_group("c", "vpc", &groups[..1]).unwrap(),
            "sg-1"
        );
        assert!(matches!(
            pick_cluster_group("c", "vpc", &[]),
            Err(Error::NoClusterSecurityGroup { .. })
        ));
        let two_named = [
            group("sg-1", "eks-cluster-sg-a"),
            group("sg-2", "eks-cluster-sg-b"),
        ];
        let err = pick_cluster_group("c", "vpc", &two_named).unwrap_err();
        assert!(err.to_string().contains("sg-1, sg-2"), "{err}");
    }

    #[test]
    fn state_facts_only_for_the_same_cluster() {
        let state = State::parse(
            r#"{"schemaVersion":1,"cluster":{"name":"c","vpcId":"vpc-9","clusterSecurityGroupId":"sg-9"}}"#,
        )
        .unwrap();
        let got = from_state(&state, "c").unwrap().unwrap();
        assert_eq!((got.vpc_id.as_str(), got.source), ("vpc-9", Source::State));
        assert!(from_state(&state, "other").unwrap().is_none());
        let partial =
            State::parse(r#"{"schemaVersion":1,"cluster":{"name":"c","vpcId":"vpc-9"}}"#).unwrap();
        assert!(from_state(&partial, "c").unwrap().is_none());
    }
}
