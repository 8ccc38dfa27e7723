//! Finding the cluster's VPC and its cluster security group: from the state's `cluster` section
//! when it has both; else from `DescribeCluster` (both resolved by
//! [`common::facts::Resolver::network`]); where the API leaves them out (they are optional
//! fields), from the VPC of the cluster's subnets and the security group that EKS tags
//! `aws:eks:cluster-name=<cluster>`.

use aws_sdk_ec2::types::{Filter, SecurityGroup};
use common::State;
use common::facts::{Origin, Resolver};

use crate::Error;

/// How the cluster security group was found (recorded in the section, so its model has it).
pub use common::sections::sg_stack::Source;

/// The tag EKS puts on the cluster security group it makes.
pub const CLUSTER_NAME_TAG: &str = "aws:eks:cluster-name";

/// The cluster's network facts the stack needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub vpc_id: String,
    pub cluster_security_group_id: String,
    pub source: Source,
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

/// The network of `cluster`: the state's facts when it records both, else `DescribeCluster`
/// (and EC2 where EKS leaves fields out).
pub async fn resolve(
    eks: &aws_sdk_eks::Client,
    ec2: &aws_sdk_ec2::Client,
    state: &State,
    cluster: &str,
    region: &str,
) -> Result<Network, Error> {
    let mut facts = Resolver::from_state(state, eks.clone(), cluster, region)?;
    let found = facts.network().await?;
    let source = match found.origin {
        Origin::State => Source::State,
        Origin::DescribeCluster => Source::DescribeCluster,
    };
    let vpc_id = match found.vpc_id {
        Some(vpc) => vpc,
        None => vpc_of_subnets(ec2, cluster, &found.subnet_ids).await?,
    };
    if let Some(group) = found.cluster_security_group_id {
        return Ok(Network {
            vpc_id,
            cluster_security_group_id: group,
            source,
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

    fn group(id: &str, name: &str) -> SecurityGroup {
        SecurityGroup::builder()
            .group_id(id)
            .group_name(name)
            .build()
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
}
