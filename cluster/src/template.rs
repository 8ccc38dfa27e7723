//! The CloudFormation template of the cluster's network: a VPC with DNS on, one public and one
//! private subnet per availability zone, an internet gateway, one NAT gateway (with its Elastic
//! IP) in the first public subnet, and the two route tables. What eksctl made for the seed,
//! without the IPv6 and extra-NAT options.

use serde_json::{Map, Value, json};

use crate::TemplateArgs;
use crate::error::{Error, Usage};
use crate::inputs::{Ipv4Net, check_azs, check_vpc_cidr, subnet_cidrs};

/// Output: the VPC id.
pub const OUTPUT_VPC: &str = "VpcId";
/// Output: the public subnet ids, comma separated, in zone order.
pub const OUTPUT_PUBLIC: &str = "PublicSubnetIds";
/// Output: the private subnet ids, comma separated, in zone order.
pub const OUTPUT_PRIVATE: &str = "PrivateSubnetIds";

fn tags(cluster_tag_value: &str, role: Option<&str>, name: Value) -> Value {
    let mut tags = vec![
        json!({ "Key": "Name", "Value": name }),
        json!({ "Key": { "Fn::Sub": "kubernetes.io/cluster/${ClusterName}" }, "Value": cluster_tag_value }),
    ];
    if let Some(role) = role {
        tags.push(json!({ "Key": role, "Value": "1" }));
    }
    Value::Array(tags)
}

/// The parameter naming the `n`th zone (1-based): `AvailabilityZone1`, ... The zones are chosen
/// by `eks-cluster` (by zone id, leaving out zones without EKS or Fargate) rather than taken
/// from `Fn::GetAZs`, whose first zones may be such a zone.
pub fn zone_parameter(n: usize) -> String {
    format!("AvailabilityZone{n}")
}

/// The template for a VPC of `vpc` over `azs` zones.
pub fn render(vpc: &Ipv4Net, azs: u8) -> Value {
    let (public, private) = subnet_cidrs(vpc, azs);
    let mut resources = Map::new();
    resources.insert(
        "Vpc".into(),
        json!({
            "Type": "AWS::EC2::VPC",
            "Properties": {
                "CidrBlock": vpc.to_string(),
                "EnableDnsSupport": true,
                "EnableDnsHostnames": true,
                "Tags": tags("shared", None, json!({ "Fn::Sub": "eks-fargate-${ClusterName}/VPC" }))
            }
        }),
    );
    resources.insert(
        "InternetGateway".into(),
        json!({
            "Type": "AWS::EC2::InternetGateway",
            "Properties": {
                "Tags": [{ "Key": "Name", "Value": { "Fn::Sub": "eks-fargate-${ClusterName}/InternetGateway" } }]
            }
        }),
    );
    resources.insert(
        "VpcGatewayAttachment".into(),
        json!({
            "Type": "AWS::EC2::VPCGatewayAttachment",
            "Properties": {
                "VpcId": { "Ref": "Vpc" },
                "InternetGatewayId": { "Ref": "InternetGateway" }
            }
        }),
    );
    resources.insert(
        "PublicRouteTable".into(),
        json!({
            "Type": "AWS::EC2::RouteTable",
            "Properties": {
                "VpcId": { "Ref": "Vpc" },
                "Tags": [{ "Key": "Name", "Value": { "Fn::Sub": "eks-fargate-${ClusterName}/PublicRouteTable" } }]
            }
        }),
    );
    resources.insert(
        "PublicDefaultRoute".into(),
        json!({
            "Type": "AWS::EC2::Route",
            "DependsOn": "VpcGatewayAttachment",
            "Properties": {
                "RouteTableId": { "Ref": "PublicRouteTable" },
                "DestinationCidrBlock": "0.0.0.0/0",
                "GatewayId": { "Ref": "InternetGateway" }
            }
        }),
    );
    resources.insert(
        "NatIp".into(),
        json!({
            "Type": "AWS::EC2::EIP",
            "DependsOn": "VpcGatewayAttachment",
            "Properties": {
                "Domain": "vpc",
                "Tags": [{ "Key": "Name", "Value": { "Fn::Sub": "eks-fargate-${ClusterName}/NatIp" } }]
            }
        }),
    );
    resources.insert(
        "NatGateway".into(),
        json!({
            "Type": "AWS::EC2::NatGateway",
            "Properties": {
                "AllocationId": { "Fn::GetAtt": ["NatIp", "AllocationId"] },
                "SubnetId": { "Ref": "PublicSubnet1" },
                "Tags": [{ "Key": "Name", "Value": { "Fn::Sub": "eks-fargate-${ClusterName}/NatGateway" } }]
            }
        }),
    );
    resources.insert(
        "PrivateRouteTable".into(),
        json!({
            "Type": "AWS::EC2::RouteTable",
            "Properties": {
                "VpcId": { "Ref": "Vpc" },
                "Tags": [{ "Key": "Name", "Value": { "Fn::Sub": "eks-fargate-${ClusterName}/PrivateRouteTable" } }]
            }
        }),
    );
    resources.insert(
        "PrivateDefaultRoute".into(),
        json!({
            "Type": "AWS::EC2::Route",
            "Properties": {
                "RouteTableId": { "Ref": "PrivateRouteTable" },
                "DestinationCidrBlock": "0.0.0.0/0",
                "NatGatewayId": { "Ref": "NatGateway" }
            }
        }),
    );
    for (kind, cidrs, role, public_ip) in [
        ("Public", &public, "kubernetes.io/role/elb", true),
        (
            "Private",
            &private,
            "kubernetes.io/role/internal-elb",
            false,
        ),
    ] {
        for (i, cidr) in cidrs.iter().enumerate() {
            let n = i + 1;
            let subnet = format!("{kind}Subnet{n}");
            resources.insert(
                subnet.clone(),
                json!({
                    "Type": "AWS::EC2::Subnet",
                    "Properties": {
                        "VpcId": { "Ref": "Vpc" },
                        "CidrBlock": cidr.to_string(),
                        "AvailabilityZone": { "Ref": zone_parameter(n) },
                        "MapPublicIpOnLaunch": public_ip,
                        "Tags": tags("shared", Some(role), json!({ "Fn::Sub": format!("eks-fargate-${{ClusterName}}/{subnet}") }))
                    }
                }),
            );
            resources.insert(
                format!("{subnet}RouteTableAssociation"),
                json!({
                    "Type": "AWS::EC2::SubnetRouteTableAssociation",
                    "Properties": {
                        "SubnetId": { "Ref": subnet },
                        "RouteTableId": { "Ref": format!("{kind}RouteTable") }
                    }
                }),
            );
        }
    }
    let join = |kind: &str, count: usize| {
        let refs: Vec<Value> = (1..=count)
            .map(|n| json!({ "Ref": format!("{kind}Subnet{n}") }))
            .collect();
        json!({ "Fn::Join": [",", refs] })
    };
    let mut parameters = Map::new();
    parameters.insert(
        "ClusterName".into(),
        json!({
            "Type": "String",
            "Description": "Name of the EKS cluster (for the kubernetes.io/cluster tags)",
            "AllowedPattern": "^[0-9A-Za-z][A-Za-z0-9_-]*$",
            "MinLength": 1,
            "MaxLength": 100
        }),
    );
    for n in 1..=public.len() {
        parameters.insert(
            zone_parameter(n),
            json!({
                "Type": "AWS::EC2::AvailabilityZone::Name",
                "Description": format!("Availability zone of public and private subnet {n} (one that runs EKS and Fargate)")
            }),
        );
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "eks-fargate-alb: network of an EKS cluster on Fargate (VPC, public and private subnets per zone, internet gateway, one NAT gateway)",
        "Parameters": parameters,
        "Resources": resources,
        "Outputs": {
            OUTPUT_VPC: {
                "Description": "Id of the VPC",
                "Value": { "Ref": "Vpc" }
            },
            OUTPUT_PUBLIC: {
                "Description": "Ids of the public subnets (load balancers), comma separated",
                "Value": join("Public", public.len())
            },
            OUTPUT_PRIVATE: {
                "Description": "Ids of the private subnets (Fargate pods), comma separated",
                "Value": join("Private", private.len())
            }
        }
    })
}

/// The template as sent to CloudFormation and printed by `eks-cluster template`.
pub fn render_text(vpc: &Ipv4Net, azs: u8) -> String {
    let mut text =
        serde_json::to_string_pretty(&render(vpc, azs)).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// The ids in a comma-separated output.
pub fn split_ids(output: &str) -> Vec<String> {
    output
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `eks-cluster template`: the network template for the flags (run under
/// [`common::step::offline`]: bad flags are exit 2).
pub fn template(args: &TemplateArgs) -> Result<String, Error> {
    let cidr = check_vpc_cidr(&args.vpc_cidr).map_err(|reason| Usage::Flag {
        flag: "--vpc-cidr",
        reason,
    })?;
    check_azs(args.azs)?;
    Ok(render_text(&cidr, args.azs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
        t["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Type"] == kind)
            .collect()
    }

    fn tag<'a>(resource: &'a Value, key: &str) -> Option<&'a Value> {
        resource["Properties"]["Tags"]
            .as_array()?
            .iter()
            .find(|t| t["Key"] == key)
            .map(|t| &t["Value"])
    }

    #[test]
    fn one_public_and_one_private_subnet_per_zone() {
        let vpc = check_vpc_cidr("192.168.0.0/16").unwrap();
        for azs in [2u8, 3] {
            let t = render(&vpc, azs);
            let subnets = of_type(&t, "AWS::EC2::Subnet");
            assert_eq!(subnets.len(), 2 * usize::from(azs));
            let public: Vec<_> = subnets
                .iter()
                .filter(|(_, s)| tag(s, "kubernetes.io/role/elb") == Some(&json!("1")))
                .collect();
            let private: Vec<_> = subnets
                .iter()
                .filter(|(_, s)| tag(s, "kubernetes.io/role/internal-elb") == Some(&json!("1")))
                .collect();
            assert_eq!(public.len(), usize::from(azs));
            assert_eq!(private.len(), usize::from(azs));
            for (_, s) in &subnets {
                let cluster = s["Properties"]["Tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| t["Key"]["Fn::Sub"] == "kubernetes.io/cluster/${ClusterName}")
                    .expect("cluster tag");
                assert_eq!(cluster["Value"], "shared");
            }
            assert_eq!(of_type(&t, "AWS::EC2::NatGateway").len(), 1);
            assert_eq!(of_type(&t, "AWS::EC2::InternetGateway").len(), 1);
            assert_eq!(
                of_type(&t, "AWS::EC2::SubnetRouteTableAssociation").len(),
                2 * usize::from(azs)
            );
        }
    }

    #[test]
    fn private_route_goes_through_the_nat_public_through_the_igw() {
        let t = render(&check_vpc_cidr("10.0.0.0/16").unwrap(), 2);
        let r = &t["Resources"];
        assert_eq!(
            r["PrivateDefaultRoute"]["Properties"]["NatGatewayId"]["Ref"],
            "NatGateway"
        );
        assert_eq!(
            r["PublicDefaultRoute"]["Properties"]["GatewayId"]["Ref"],
            "InternetGateway"
        );
        assert_eq!(
            r["NatGateway"]["Properties"]["SubnetId"]["Ref"],
            "PublicSubnet1"
        );
        assert_eq!(r["Vpc"]["Properties"]["EnableDnsHostnames"], true);
        // Zones are parameters eks-cluster fills, never Fn::GetAZs.
        assert_eq!(
            r["PrivateSubnet2"]["Properties"]["AvailabilityZone"]["Ref"],
            "AvailabilityZone2"
        );
        assert_eq!(
            t["Parameters"]["AvailabilityZone1"]["Type"],
            "AWS::EC2::AvailabilityZone::Name"
        );
        assert!(t["Parameters"].get("AvailabilityZone3").is_none());
        assert!(!t.to_string().contains("GetAZs"));
        assert_eq!(
            r["PrivateSubnet2RouteTableAssociation"]["Properties"]["RouteTableId"]["Ref"],
            "PrivateRouteTable"
        );
    }

    #[test]
    fn a_widened_stack_only_adds_subnets() {
        // Subnets added in place of a refused zone: the template over one more zone keeps every
        // resource of the smaller one as it was (an update that only adds), up to four zones.
        let vpc = check_vpc_cidr("192.168.0.0/16").unwrap();
        for azs in 2u8..zones_max() {
            let small = render(&vpc, azs);
            let wide = render(&vpc, azs + 1);
            for (id, resource) in small["Resources"].as_object().unwrap() {
                assert_eq!(&wide["Resources"][id], resource, "{id} changed");
            }
            assert_eq!(
                wide["Resources"].as_object().unwrap().len(),
                small["Resources"].as_object().unwrap().len() + 4,
                "a public and a private subnet and their route table associations"
            );
        }
        let four = render(&vpc, zones_max());
        let cidrs: std::collections::BTreeSet<&str> = of_type(&four, "AWS::EC2::Subnet")
            .iter()
            .map(|(_, s)| s["Properties"]["CidrBlock"].as_str().unwrap())
            .collect();
        assert_eq!(cidrs.len(), 8, "eight distinct blocks: {cidrs:?}");
    }

    fn zones_max() -> u8 {
        crate::zones::MAX_STACK_ZONES
    }

    #[test]
    fn outputs_and_ids() {
        let t = render(&check_vpc_cidr("10.0.0.0/16").unwrap(), 3);
        let refs = &t["Outputs"][OUTPUT_PRIVATE]["Value"]["Fn::Join"][1];
        assert_eq!(refs.as_array().unwrap().len(), 3);
        assert_eq!(split_ids("subnet-1, subnet-2,"), ["subnet-1", "subnet-2"]);
    }
}
