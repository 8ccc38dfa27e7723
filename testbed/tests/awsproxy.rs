//! The AWS proxy in front of moto: forwards unchanged, answers AWS errors the SDK understands
//! (code, message, retry classification), drops connections, loses answers, records calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use testbed::Moto;
use testbed::awsproxy::{AwsProxy, AwsReply, Verdict};

async fn ec2_via(proxy: &AwsProxy, moto: &Moto) -> aws_sdk_ec2::Client {
    let mut config = moto.sdk_config(testbed::REGION).await.into_builder();
    config.set_endpoint_url(Some(proxy.endpoint.clone()));
    aws_sdk_ec2::Client::new(&config.build())
}

#[tokio::test]
async fn forwards_and_records() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    let ec2 = ec2_via(&proxy, &moto).await;
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .expect("CreateVpc through the proxy");
    let id = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
    let found = ec2.describe_vpcs().vpc_ids(&id).send().await.unwrap();
    assert_eq!(found.vpcs().len(), 1);
    let calls = proxy.calls();
    let names: Vec<String> = calls.iter().map(|c| c.request.name()).collect();
    assert_eq!(names, ["ec2 CreateVpc", "ec2 DescribeVpcs"]);
    assert_eq!(calls[1].request.list_param("VpcId"), [id]);
    assert!(calls.iter().all(|c| c.status == 200 && !c.by_rule));
    assert_eq!(proxy.mutating_calls(), ["ec2 CreateVpc"]);
}

#[tokio::test]
async fn throttling_is_retried_and_errors_carry_their_code() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    let seen = Arc::new(AtomicU32::new(0));
    let counter = seen.clone();
    proxy.rule(move |r| {
        if r.action == "DescribeVpcs" && counter.fetch_add(1, Ordering::SeqCst) < 2 {
            return Verdict::Reply(AwsReply::throttled(r));
        }
        if r.action == "DeleteVpc" {
            return Verdict::Reply(AwsReply::error(
                r,
                400,
                "DependencyViolation",
                "The vpc 'vpc-1' has dependencies and cannot be deleted.",
            ));
        }
        Verdict::Pass
    });
    let ec2 = ec2_via(&proxy, &moto).await;
    // The SDK's standard retries ride out two throttled answers.
    ec2.describe_vpcs().send().await.expect("retried");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    let statuses: Vec<u16> = proxy.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [503, 503, 200]);

    let err = ec2.delete_vpc().vpc_id("vpc-1").send().await.unwrap_err();
    let service = err.into_service_error();
    use aws_sdk_ec2::error::ProvideErrorMetadata;
    assert_eq!(service.code(), Some("DependencyViolation"));
    assert!(
        service
            .message()
            .unwrap_or_default()
            .contains("dependencies")
    );
}

#[tokio::test]
async fn lost_answers_still_change_moto() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    let once = Arc::new(AtomicU32::new(0));
    let first = once.clone();
    proxy.rule(move |r| {
        if r.action == "CreateVpc" && first.fetch_add(1, Ordering::SeqCst) == 0 {
            Verdict::ForwardThenDrop
        } else if r.action == "DescribeSubnets" {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    });
    let ec2 = ec2_via(&proxy, &moto).await;
    // The first answer is lost; the SDK retries and moto makes a second VPC: what a real
    // account does with a non-idempotent call whose answer never came back.
    ec2.create_vpc()
        .cidr_block("10.8.0.0/16")
        .send()
        .await
        .expect("the retry answers");
    let all = ec2.describe_vpcs().send().await.unwrap();
    let ours = all
        .vpcs()
        .iter()
        .filter(|v| v.cidr_block() == Some("10.8.0.0/16"))
        .count();
    assert_eq!(ours, 2, "the lost answer's VPC exists as well");
    // A connection that never answers fails after the SDK's attempts, without reaching moto.
    let err = ec2.describe_subnets().send().await.unwrap_err();
    assert!(
        format!("{:?}", err).to_lowercase().contains("dispatch")
            || format!("{:?}", err).to_lowercase().contains("connect"),
        "{err:?}"
    );
    assert!(
        proxy
            .calls()
            .iter()
            .filter(|c| c.request.action == "DescribeSubnets")
            .all(|c| c.status == 0 && c.by_rule)
    );
}
