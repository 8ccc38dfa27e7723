//! The CloudFormation template of the stack: the ALB security group (HTTP and HTTPS in from each
//! allowed CIDR, out to the cluster security group only, on the pods' target ports) and the rules
//! on the cluster security group that let the ALB reach the pods on those ports only (not the
//! webhook port, not the kubelet's). What the seed's stack made, narrowed to the target ports, with
//! every rule described: one pair of rules per allowed CIDR, one rule each way per target port.

use serde_json::{Value, json};

use crate::cidr::Cidr;

/// Logical id of the ALB security group.
pub const ALB_GROUP: &str = "AlbSecurityGroup";
/// The output carrying the ALB security group id.
pub const OUTPUT_GROUP_ID: &str = "SecurityGroupId";

/// The logical id of the rule on the cluster security group for one target port.
pub fn cluster_rule_id(port: u16) -> String {
    format!("ClusterSecurityGroupIngressFromAlbPort{port}")
}

/// The template for these allowed CIDRs and the pods' target ports.
pub fn render(cidrs: &[Cidr], ports: &[u16]) -> Value {
    let ingress: Vec<Value> = cidrs
        .iter()
        .flat_map(|cidr| {
            [(80, "HTTP"), (443, "HTTPS")].map(|(port, name)| {
                let mut rule = json!({
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "Description": format!("{name} to the ALB from {cidr}"),
                });
                let key = if cidr.addr().is_ipv6() {
                    "CidrIpv6"
                } else {
                    "CidrIp"
                };
                rule[key] = Value::String(cidr.to_string());
                rule
            })
        })
        .collect();
    let egress: Vec<Value> = ports
        .iter()
        .map(|port| {
            json!({
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "DestinationSecurityGroupId": { "Ref": "ClusterSecurityGroupId" },
                "Description": format!("From the ALB to the pods on port {port}")
            })
        })
        .collect();
    let mut template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "eks-fargate-alb: security group of the internet-facing ALB of an EKS cluster on Fargate, and the rule that lets the ALB reach the pods",
        "Parameters": {
            "ClusterName": {
                "Type": "String",
                "Description": "Name of the EKS cluster",
                "AllowedPattern": "^[0-9A-Za-z][A-Za-z0-9_-]*$",
                "MinLength": 1,
                "MaxLength": 100
            },
            "VpcId": {
                "Type": "AWS::EC2::VPC::Id",
                "Description": "VPC of the cluster"
            },
            "ClusterSecurityGroupId": {
                "Type": "AWS::EC2::SecurityGroup::Id",
                "Description": "Cluster security group that EKS made (it is on every Fargate pod)"
            }
        },
        "Resources": {
            ALB_GROUP: {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {
                    // Kept as first made: CloudFormation replaces a group whose description
                    // changes, and the ALB uses this one.
                    "GroupDescription": { "Fn::Sub": "ALB of EKS cluster ${ClusterName}: HTTP and HTTPS in, TCP out to the pods" },
                    "VpcId": { "Ref": "VpcId" },
                    "SecurityGroupIngress": ingress,
                    "SecurityGroupEgress": egress,
                    "Tags": [
                        { "Key": "Name", "Value": { "Fn::Sub": "${ClusterName}-${AWS::Region}-ALB-Custom-SecurityGroup" } },
                        { "Key": { "Fn::Sub": "kubernetes.io/cluster/${ClusterName}" }, "Value": "Shared" }
                    ]
                }
            }
        },
        "Outputs": {
            OUTPUT_GROUP_ID: {
                "Description": "Id of the ALB security group (for the Ingress annotation alb.ingress.kubernetes.io/security-groups)",
                "Value": { "Fn::GetAtt": [ALB_GROUP, "GroupId"] }
            }
        }
    });
    for port in ports {
        template["Resources"][cluster_rule_id(*port)] = json!({
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Properties": {
                "GroupId": { "Ref": "ClusterSecurityGroupId" },
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "SourceSecurityGroupId": { "Fn::GetAtt": [ALB_GROUP, "GroupId"] },
                "Description": format!("To the pods on port {port} from the ALB security group")
            }
        });
    }
    template
}

/// The template as the text sent to CloudFormation and printed by `eks-sg-stack template`.
pub fn render_text(cidrs: &[Cidr], ports: &[u16]) -> String {
    let mut text =
        serde_json::to_string_pretty(&render(cidrs, ports)).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// EC2 allows only these characters in a rule description.
pub fn is_valid_rule_description(text: &str) -> bool {
    text.len() <= 255
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(v: &[&str]) -> Vec<Cidr> {
        v.iter().map(|s| common::cidr::parse(s).unwrap()).collect()
    }

    fn descriptions(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "Description" && v.is_string() {
                        out.push(v.as_str().unwrap().to_owned());
                    }
                    descriptions(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| descriptions(v, out)),
            _ => {}
        }
    }

    #[test]
    fn two_rules_per_cidr_in_the_right_family() {
        let t = render(&cidrs(&["0.0.0.0/0", "2001:db8::/32"]), &[80]);
        let ingress = t["Resources"][ALB_GROUP]["Properties"]["SecurityGroupIngress"]
            .as_array()
            .unwrap();
        assert_eq!(ingress.len(), 4);
        assert_eq!(ingress[0]["CidrIp"], "0.0.0.0/0");
        assert_eq!(ingress[1]["FromPort"], 443);
        assert_eq!(ingress[2]["CidrIpv6"], "2001:db8::/32");
        assert!(ingress[2].get("CidrIp").is_none());
    }

    #[test]
    fn only_the_target_ports_to_and_from_the_cluster_group() {
        let t = render(&cidrs(&["0.0.0.0/0"]), &[80, 8080]);
        let egress = t["Resources"][ALB_GROUP]["Properties"]["SecurityGroupEgress"]
            .as_array()
            .unwrap();
        assert_eq!(egress.len(), 2);
        for (rule, port) in egress.iter().zip([80, 8080]) {
            assert_eq!(
                rule["DestinationSecurityGroupId"]["Ref"],
                "ClusterSecurityGroupId"
            );
            assert_eq!(
                (&rule["FromPort"], &rule["ToPort"]),
                (&json!(port), &json!(port))
            );
        }
        for port in [80, 8080] {
            let rule = &t["Resources"][cluster_rule_id(port)]["Properties"];
            assert_eq!(
                (&rule["FromPort"], &rule["ToPort"]),
                (&json!(port), &json!(port))
            );
            assert_eq!(rule["SourceSecurityGroupId"]["Fn::GetAtt"][0], ALB_GROUP);
        }
        let text = t.to_string();
        assert!(!text.contains("65535"), "no rule opens every port: {text}");
    }

    #[test]
    fn every_rule_is_described_in_characters_ec2_accepts() {
        let t = render(&cidrs(&["0.0.0.0/0", "::/0"]), &[80]);
        let group = &t["Resources"][ALB_GROUP]["Properties"];
        let rules = group["SecurityGroupIngress"]
            .as_array()
            .unwrap()
            .iter()
            .chain(group["SecurityGroupEgress"].as_array().unwrap())
            .chain([&t["Resources"][cluster_rule_id(80)]["Properties"]]);
        for rule in rules {
            let text = rule["Description"].as_str().expect("every rule described");
            assert!(is_valid_rule_description(text), "{text}");
        }
        let mut all = Vec::new();
        descriptions(&t, &mut all);
        assert!(all.len() >= 8);
    }

    #[test]
    fn rendering_is_stable() {
        let a = render_text(&cidrs(&["10.0.0.0/8"]), &[80]);
        assert_eq!(a, render_text(&cidrs(&["10.0.0.0/8"]), &[80]));
        assert_ne!(a, render_text(&cidrs(&["10.0.0.0/16"]), &[80]));
        assert_ne!(a, render_text(&cidrs(&["10.0.0.0/8"]), &[8080]));
        assert!(a.ends_with("}\n"));
    }
}
