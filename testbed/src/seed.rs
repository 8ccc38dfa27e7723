//! What tests make through the AWS API before running a binary: a VPC with subnets, an EKS
//! cluster on them, and the cluster security group EKS would make (moto's EKS makes none).

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

/// A cluster made for a test.
#[derive(Debug, Clone)]
pub struct SeededCluster {
    pub name: String,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub cluster_security_group_id: Option<String>,
}

/// A network made for a test, as a user brings it to `eks-cluster create --vpc-id`.
#[derive(Debug, Clone)]
pub struct SeededNetwork {
    pub vpc_id: String,
    pub private_subnet_ids: Vec<String>,
    pub public_subnet_ids: Vec<String>,
    pub cluster_security_group_id: String,
}

async fn vpc(ec2: &Client, cidr: &str) -> String {
    ec2.create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .expect("CreateVpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_owned()
}

async fn subnet(ec2: &Client, vpc_id: &str, cidr: &str, zone: String) -> String {
    ec2.create_subnet()
        .vpc_id(vpc_id)
        .cidr_block(cidr)
        .availability_zone(zone)
        .send()
        .await
        .expect("CreateSubnet")
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("subnet id")
        .to_owned()
}

/// Turns on DNS support and DNS hostnames in the VPC (one attribute per call, as EC2 wants).
pub async fn dns_on(ec2: &Client, vpc_id: &str) {
    let on = || {
        aws_sdk_ec2::types::AttributeBooleanValue::builder()
            .value(true)
            .build()
    };
    ec2.modify_vpc_attribute()
        .vpc_id(vpc_id)
        .enable_dns_support(on())
        .send()
        .await
        .expect("ModifyVpcAttribute enableDnsSupport");
    ec2.modify_vpc_attribute()
        .vpc_id(vpc_id)
        .enable_dns_hostnames(on())
        .send()
        .await
        .expect("ModifyVpcAttribute enableDnsHostnames");
}

/// The security group EKS makes for a cluster, tagged `aws:eks:cluster-name=<cluster>`.
async fn cluster_group(ec2: &Client, vpc_id: &str, cluster: &str) -> String {
    ec2.create_security_group()
        .group_name(format!("eks-cluster-sg-{cluster}-1234567890"))
        .description("EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.")
        .vpc_id(vpc_id)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SecurityGroup)
                .tags(Tag::builder().key("aws:eks:cluster-name").value(cluster).build())
                .build(),
        )
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id()
        .expect("group id")
        .to_owned()
}

/// The security group EKS would make for `cluster` in `vpc_id` (moto's EKS makes none).
pub async fn tagged_group(config: &aws_config::SdkConfig, vpc_id: &str, cluster: &str) -> String {
    cluster_group(&Client::new(config), vpc_id, cluster).await
}

/// Makes a VPC, two subnets and an EKS cluster on them; with `tag_group`, also the security
/// group EKS tags `aws:eks:cluster-name=<name>`.
pub async fn cluster(config: &aws_config::SdkConfig, name: &str, tag_group: bool) -> SeededCluster {
    let ec2 = Client::new(config);
    let region = config.region().expect("region").to_string();
    let vpc_id = vpc(&ec2, "10.20.0.0/16").await;
    let subnet_ids = vec![
        subnet(&ec2, &vpc_id, "10.20.0.0/24", format!("{region}a")).await,
        subnet(&ec2, &vpc_id, "10.20.1.0/24", format!("{region}b")).await,
    ];
    aws_sdk_eks::Client::new(config)
        .create_cluster()
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
        Some(cluster_group(&ec2, &vpc_id, name).await)
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

/// Makes a VPC (DNS support and hostnames on) with two public subnets (a route to an internet
/// gateway) and two private ones (a route out through a NAT gateway in the first public
/// subnet), in two zones, and the security group EKS would tag for `cluster` (moto's EKS makes
/// none).
pub async fn network(config: &aws_config::SdkConfig, cluster: &str) -> SeededNetwork {
    let ec2 = Client::new(config);
    let region = config.region().expect("region").to_string();
    let vpc_id = vpc(&ec2, "10.30.0.0/16").await;
    // EKS needs DNS support and DNS hostnames on in a brought VPC (eks-cluster checks).
    dns_on(&ec2, &vpc_id).await;
    let private_subnet_ids = vec![
        subnet(&ec2, &vpc_id, "10.30.0.0/20", format!("{region}a")).await,
        subnet(&ec2, &vpc_id, "10.30.16.0/20", format!("{region}b")).await,
    ];
    let public_subnet_ids = vec![
        subnet(&ec2, &vpc_id, "10.30.128.0/20", format!("{region}a")).await,
        subnet(&ec2, &vpc_id, "10.30.144.0/20", format!("{region}b")).await,
    ];
    let gateway = ec2
        .create_internet_gateway()
        .send()
        .await
        .expect("CreateInternetGateway")
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .expect("gateway id")
        .to_owned();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&gateway)
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("AttachInternetGateway");
    let table = ec2
        .create_route_table()
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("CreateRouteTable")
        .route_table()
        .and_then(|t| t.route_table_id())
        .expect("route table id")
        .to_owned();
    ec2.create_route()
        .route_table_id(&table)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&gateway)
        .send()
        .await
        .expect("CreateRoute");
    for id in &public_subnet_ids {
        ec2.associate_route_table()
            .route_table_id(&table)
            .subnet_id(id)
            .send()
            .await
            .expect("AssociateRouteTable");
    }
    nat_route(&ec2, &vpc_id, &public_subnet_ids[0], &private_subnet_ids).await;
    SeededNetwork {
        cluster_security_group_id: cluster_group(&ec2, &vpc_id, cluster).await,
        vpc_id,
        private_subnet_ids,
        public_subnet_ids,
    }
}

/// A NAT gateway in `public_subnet` and a route table sending the `private` subnets'
/// `0.0.0.0/0` through it (their way out to ECR, S3, STS, EC2 and ELB); returns the NAT
/// gateway and the route table.
pub async fn nat_route(
    ec2: &Client,
    vpc_id: &str,
    public_subnet: &str,
    private: &[String],
) -> (String, String) {
    let allocation = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .expect("AllocateAddress")
        .allocation_id()
        .expect("allocation id")
        .to_owned();
    let nat = ec2
        .create_nat_gateway()
        .subnet_id(public_subnet)
        .allocation_id(allocation)
        .send()
        .await
        .expect("CreateNatGateway")
        .nat_gateway()
        .and_then(|n| n.nat_gateway_id())
        .expect("NAT gateway id")
        .to_owned();
    let table = ec2
        .create_route_table()
        .vpc_id(vpc_id)
        .send()
        .await
        .expect("CreateRouteTable")
        .route_table()
        .and_then(|t| t.route_table_id())
        .expect("route table id")
        .to_owned();
    ec2.create_route()
        .route_table_id(&table)
        .destination_cidr_block("0.0.0.0/0")
        .nat_gateway_id(&nat)
        .send()
        .await
        .expect("CreateRoute");
    for id in private {
        ec2.associate_route_table()
            .route_table_id(&table)
            .subnet_id(id)
            .send()
            .await
            .expect("AssociateRouteTable");
    }
    (nat, table)
}

/// Makes the Fargate profile `name` of `cluster` on `subnet_ids`, one selector per
/// `(namespace, labels)`, as EKS has it (ACTIVE at once in moto).
pub async fn fargate_profile(
    config: &aws_config::SdkConfig,
    cluster: &str,
    name: &str,
    subnet_ids: &[String],
    selectors: &[(&str, &[(&str, &str)])],
) {
    let mut request = aws_sdk_eks::Client::new(config)
        .create_fargate_profile()
        .cluster_name(cluster)
        .fargate_profile_name(name)
        .pod_execution_role_arn("arn:aws:iam::123456789012:role/eks-fargate-pods")
        .set_subnets(Some(subnet_ids.to_vec()));
    for (namespace, labels) in selectors {
        let mut selector =
            aws_sdk_eks::types::FargateProfileSelector::builder().namespace(*namespace);
        for (key, value) in *labels {
            selector = selector.labels(*key, *value);
        }
        request = request.selectors(selector.build());
    }
    request.send().await.expect("CreateFargateProfile");
}
