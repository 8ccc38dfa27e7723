//! What tests make through the AWS API before running a binary: a VPC with subnets, an EKS
//! cluster on them, and the cluster security group EKS would make (moto's EKS makes none).

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

/// A cluster made for a test.
#[derive(Debug, Clone)]
pub struct SeededCluster {
    pub name: String,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub cluster_security_group_id: Option<String>,
}

/// Makes a VPC, two subnets and an EKS cluster on them; with `tag_group`, also the security
/// group EKS tags `aws:eks:cluster-name=<name>`.
pub async fn cluster(config: &aws_config::SdkConfig, name: &str, tag_group: bool) -> SeededCluster {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let eks = aws_sdk_eks::Client::new(config);
    let vpc_id = ec2
        .create_vpc()
        .cidr_block("10.20.0.0/16")
        .send()
        .await
        .expect("CreateVpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_owned();
    let mut subnet_ids = Vec::new();
    for (i, zone) in ["a", "b"].iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.20.{i}.0/24"))
            .availability_zone(format!("{}{zone}", config.region().expect("region")))
            .send()
            .await
            .expect("CreateSubnet");
        subnet_ids.push(
            subnet
                .subnet()
                .and_then(|s| s.subnet_id())
                .expect("subnet id")
                .to_owned(),
        );
    }
    eks.create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster-role")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .set_subnet_ids(Some(subnet_ids.clone()))
                .build(),
        )
        .send()
        .await
        .expect("CreateCluster");
    let cluster_security_group_id = if tag_group {
        let group = ec2
            .create_security_group()
            .group_name(format!("eks-cluster-sg-{name}-1234567890"))
            .description("EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.")
            .vpc_id(&vpc_id)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .tags(Tag::builder().key("aws:eks:cluster-name").value(name).build())
                    .build(),
            )
            .send()
            .await
            .expect("CreateSecurityGroup");
        group.group_id().map(str::to_owned)
    } else {
        None
    };
    SeededCluster {
        name: name.to_owned(),
        vpc_id,
        subnet_ids,
        cluster_security_group_id,
    }
}
