//! `eks-cluster delete` of our network stack while a network interface (a deleted ALB's, which
//! stays for minutes) is still in one of its subnets: real CloudFormation ends such a delete
//! `DELETE_FAILED` (the subnet "has dependencies"); the test bed's proxy rules make moto do so.

use std::time::Duration;

use testbed::awsproxy::AwsProxy;
use testbed::enis::DependencyRules;
use testbed::run::assert_exit;
use testbed::{Moto, REGION};

const BIN: &str = env!("CARGO_BIN_EXE_eks-cluster");

const TEMPLATE: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Resources": {
    "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.30.0.0/16"}},
    "Public": {"Type": "AWS::EC2::Subnet",
      "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.30.0.0/24"}}
  },
  "Outputs": {
    "VpcId": {"Value": {"Ref": "Vpc"}},
    "SubnetId": {"Value": {"Ref": "Public"}}
  }
}"#;

/// Creates the network stack `name` from [`TEMPLATE`]: its id, VPC and subnet.
async fn network_stack(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
) -> (String, String, String) {
    let stack_id = cfn
        .create_stack()
        .stack_name(name)
        .template_body(TEMPLATE)
        .send()
        .await
        .unwrap()
        .stack_id()
        .unwrap()
        .to_owned();
    let outputs = cfn
        .describe_stacks()
        .stack_name(&stack_id)
        .send()
        .await
        .unwrap();
    let output = |key: &str| {
        outputs.stacks()[0]
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .unwrap()
            .to_owned()
    };
    (stack_id, output("VpcId"), output("SubnetId"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_stack_waits_for_the_interfaces_left_in_its_vpc() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    DependencyRules::new(&moto.endpoint).install(&proxy);
    let config = moto.sdk_config(REGION).await;
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let (stack_id, vpc, subnet) = network_stack(&cfn, "eks-fargate-demo-vpc").await;
    // A deleted ALB's interface, still in the subnet; ELB removes it 4 s from now.
    let eni = ec2
        .create_network_interface()
        .subnet_id(&subnet)
        .description("ELB app/k8s-game-app-0123456789/0123456789abcdef")
        .send()
        .await
        .unwrap()
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_owned();
    let remover = ec2.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(4)).await;
        remover
            .delete_network_interface()
            .network_interface_id(eni)
            .send()
            .await
            .unwrap();
    });

    let state = serde_json::json!({
        "schemaVersion": 1,
        "cluster": {
            "name": "demo",
            "region": REGION,
            "vpcId": vpc,
            "networkStackName": "eks-fargate-demo-vpc",
            "networkStackId": stack_id,
            "networkCreatedByUs": true,
        }
    });
    let mut cmd = proxy.command(&moto, BIN);
    cmd.args(["--region", REGION, "delete"]);
    let input = state.to_string();
    let deleted = tokio::task::spawn_blocking(move || testbed::run::run(&mut cmd, &input))
        .await
        .unwrap();
    assert_exit(&deleted, 0);
    assert!(
        deleted
            .stderr
            .contains(&format!("network interface(s) still use VPC {vpc}"))
            && deleted.stderr.contains("ELB app/k8s-game-app-"),
        "the wait names the interfaces: {}",
        deleted.stderr
    );
    assert!(deleted.json().get("cluster").is_none());
    let left = cfn
        .describe_stacks()
        .stack_name(&stack_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        left.stacks()[0].stack_status().map(|s| s.as_str()),
        Some("DELETE_COMPLETE")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpc_endpoint_someone_else_added_is_named_at_once_and_left_alone() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    DependencyRules::new(&moto.endpoint).install(&proxy);
    let config = moto.sdk_config(REGION).await;
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let (stack_id, vpc, subnet) = network_stack(&cfn, "eks-fargate-gd-vpc").await;
    // What an organisation's security tooling adds to every VPC: GuardDuty's runtime-monitoring
    // endpoint, with a security group of its own.
    let group = ec2
        .create_security_group()
        .group_name("GuardDutyManagedSecurityGroup")
        .description("Managed by GuardDuty")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_owned();
    let endpoint = ec2
        .create_vpc_endpoint()
        .vpc_id(&vpc)
        .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Interface)
        .service_name(format!("com.amazonaws.{REGION}.guardduty-data"))
        .subnet_ids(&subnet)
        .security_group_ids(&group)
        .send()
        .await
        .unwrap()
        .vpc_endpoint()
        .unwrap()
        .vpc_endpoint_id()
        .unwrap()
        .to_owned();

    // The groups EC2 says the endpoint's interface uses (moto gives it the VPC's default group
    // rather than the one asked for; real EC2 the one asked for): the message names them.
    let used: Vec<String> = ec2
        .describe_network_interfaces()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&vpc)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .network_interfaces()
        .iter()
        .flat_map(|n| n.groups())
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect();
    assert!(!used.is_empty());
    let state = serde_json::json!({
        "schemaVersion": 1,
        "cluster": {
            "name": "gd",
            "region": REGION,
            "vpcId": vpc,
            "networkStackName": "eks-fargate-gd-vpc",
            "networkStackId": stack_id,
            "networkCreatedByUs": true,
        }
    });
    let mut cmd = proxy.command(&moto, BIN);
    // Long enough that waiting it out would show.
    cmd.args(["--region", REGION, "delete", "--eni-timeout", "2m"]);
    let input = state.to_string();
    let started = std::time::Instant::now();
    let deleted = tokio::task::spawn_blocking(move || testbed::run::run(&mut cmd, &input))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_exit(&deleted, 1);
    assert!(
        took < Duration::from_secs(60),
        "named at the first look, not after the wait: {took:?}"
    );
    for part in [
        endpoint.as_str(),
        "guardduty-data",
        used[0].as_str(),
        "never deletes them",
        "Nothing was deleted",
    ] {
        assert!(deleted.stderr.contains(part), "{part}: {}", deleted.stderr);
    }
    // Not blamed on the ALB, and nothing deleted: the stack, the endpoint and its group stay,
    // and the state still records the network for the next run.
    assert!(
        !deleted.stderr.contains("still use VPC"),
        "{}",
        deleted.stderr
    );
    let left = cfn
        .describe_stacks()
        .stack_name(&stack_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        left.stacks()[0].stack_status().map(|s| s.as_str()),
        Some("CREATE_COMPLETE")
    );
    let groups = ec2
        .describe_security_groups()
        .group_ids(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.security_groups().len(), 1, "its group stays");
    let endpoints = ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(&endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(endpoints.vpc_endpoints().len(), 1);
    assert_eq!(
        deleted.json()["cluster"]["networkStackId"],
        stack_id.as_str()
    );
    assert!(
        proxy.mutating_calls().iter().all(|c| !c.contains("Delete")),
        "{:?}",
        proxy.mutating_calls()
    );
}
