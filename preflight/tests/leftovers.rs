//! `eks-preflight leftovers`, the real binary against moto through the test bed's AWS proxy:
//! what carries our tag or the load balancer controller's for the cluster is listed (exit 1),
//! what belongs to others is not, and once it is gone the answer is exit 0. Only read calls.

use aws_sdk_elasticloadbalancingv2::types::Tag as ElbTag;
use serde_json::Value;
use testbed::awsproxy::AwsProxy;
use testbed::run::{Run, assert_exit};
use testbed::{Moto, REGION, seed};

const BIN: &str = env!("CARGO_BIN_EXE_eks-preflight");

/// A role trusting EKS, with `tags`.
async fn role(iam: &aws_sdk_iam::Client, name: &str, tags: &[(&str, &str)]) -> String {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let mut call = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust);
    for (k, v) in tags {
        call = call.tags(
            aws_sdk_iam::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap(),
        );
    }
    call.send()
        .await
        .expect("CreateRole")
        .role()
        .expect("a role")
        .arn()
        .to_owned()
}

/// An application load balancer on `subnets` tagged `elbv2.k8s.aws/cluster=<cluster>`.
async fn alb(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
    subnets: &[String],
    cluster: &str,
) -> String {
    elb.create_load_balancer()
        .name(name)
        .set_subnets(Some(subnets.to_vec()))
        .tags(
            ElbTag::builder()
                .key("elbv2.k8s.aws/cluster")
                .value(cluster)
                .build(),
        )
        .send()
        .await
        .expect("CreateLoadBalancer")
        .load_balancers()[0]
        .load_balancer_arn()
        .expect("an ARN")
        .to_owned()
}

fn leftovers(moto: &Moto, proxy: &AwsProxy, more: &[&str]) -> Run {
    let mut command = proxy.command(moto, BIN);
    command
        .args(["leftovers", "--cluster", "demo", "--region", REGION])
        .args(more);
    testbed::run::run(&mut command, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_what_is_tagged_for_the_cluster_and_nothing_else() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    let config = moto.sdk_config(REGION).await;
    let iam = aws_sdk_iam::Client::new(&config);
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let eks = aws_sdk_eks::Client::new(&config);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);

    let ours = role(
        &iam,
        "demo-cluster-role",
        &[
            ("eks-fargate-alb/cluster", "demo"),
            ("eks-fargate-alb/step", "cluster"),
        ],
    )
    .await;
    role(&iam, "someone-elses-role", &[]).await;
    role(
        &iam,
        "other-cluster-role",
        &[("eks-fargate-alb/cluster", "other")],
    )
    .await;
    cfn.create_stack()
        .stack_name("eks-fargate-alb-network-demo")
        .template_body(
            r#"{"Resources":{"Handle":{"Type":"AWS::CloudFormation::WaitConditionHandle"}}}"#,
        )
        .tags(
            aws_sdk_cloudformation::types::Tag::builder()
                .key("eks-fargate-alb/cluster")
                .value("demo")
                .build(),
        )
        .send()
        .await
        .expect("CreateStack");
    // The cluster, ours; its network carries the ALB the controller left.
    let seeded = seed::cluster(&config, "demo", false).await;
    let cluster_arn = eks
        .describe_cluster()
        .name("demo")
        .send()
        .await
        .unwrap()
        .cluster()
        .and_then(|c| c.arn())
        .unwrap()
        .to_owned();
    eks.tag_resource()
        .resource_arn(&cluster_arn)
        .tags("eks-fargate-alb/cluster", "demo")
        .send()
        .await
        .expect("TagResource");
    let left_alb = alb(&elb, "k8s-game-ingress2-abc", &seeded.subnet_ids, "demo").await;
    alb(&elb, "k8s-other-ingress-def", &seeded.subnet_ids, "other").await;
    logs.create_log_group()
        .log_group_name("/aws/eks/demo/cluster")
        .send()
        .await
        .expect("CreateLogGroup");
    logs.create_log_group()
        .log_group_name("/aws/eks/demo/cluster-other")
        .send()
        .await
        .expect("CreateLogGroup");

    // A NAT gateway of the brought network, not ours: moto passes over the tag filter of
    // DescribeNatGateways, so only its answer's tags can tell.
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let allocation = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .expect("AllocateAddress")
        .allocation_id()
        .unwrap()
        .to_owned();
    let foreign_nat = ec2
        .create_nat_gateway()
        .subnet_id(&seeded.subnet_ids[0])
        .allocation_id(allocation)
        .send()
        .await
        .expect("CreateNatGateway")
        .nat_gateway()
        .and_then(|n| n.nat_gateway_id())
        .unwrap()
        .to_owned();

    let found = leftovers(&moto, &proxy, &[]);
    assert_exit(&found, 1);
    for line in [
        format!("left  IAM role              {ours} (demo-cluster-role): tag eks-fargate-alb/cluster=demo"),
        "left  CloudFormation stack  eks-fargate-alb-network-demo (CREATE_COMPLETE): tag eks-fargate-alb/cluster=demo".to_owned(),
        format!("left  load balancer         {left_alb} (k8s-game-ingress2-abc): tag elbv2.k8s.aws/cluster=demo"),
        format!("left  EKS cluster           {cluster_arn} (demo): tag eks-fargate-alb/cluster=demo"),
        "left  CloudWatch log group  /aws/eks/demo/cluster: EKS made it for cluster demo's control plane logs and leaves it behind".to_owned(),
    ] {
        assert!(
            found.stdout.lines().any(|l| l.starts_with(&line)),
            "no line `{line}` in\n{}\nstderr: {}",
            found.stdout,
            found.stderr
        );
    }
    for foreign in [
        "someone-elses-role",
        "other-cluster-role",
        "k8s-other-ingress",
        "cluster-other",
        foreign_nat.as_str(),
    ] {
        assert!(
            !found.stdout.contains(foreign),
            "{foreign} listed:\n{}",
            found.stdout
        );
    }
    assert!(
        found
            .stdout
            .ends_with("leftovers: 5 resource(s) of cluster demo in us-east-2 are left; run the teardown again (make clean), or delete them by hand\n"),
        "{}",
        found.stdout
    );
    // moto has no access entries: said so, and not taken as a failure.
    assert!(
        found
            .stdout
            .contains("note  access entries of demo not listed"),
        "{}",
        found.stdout
    );
    assert!(
        proxy.mutating_calls().is_empty(),
        "{:?}",
        proxy.mutating_calls()
    );

    let json = leftovers(&moto, &proxy, &["--json"]);
    assert_exit(&json, 1);
    let doc: Value = json.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["exitCode"], 1);
    assert_eq!(doc["leftovers"].as_array().unwrap().len(), 5, "{doc:#}");
    assert_eq!(doc["failed"], serde_json::json!([]));

    // Gone: the role, the stack, the load balancer, the cluster and its log group.
    iam.delete_role()
        .role_name("demo-cluster-role")
        .send()
        .await
        .unwrap();
    cfn.delete_stack()
        .stack_name("eks-fargate-alb-network-demo")
        .send()
        .await
        .unwrap();
    elb.delete_load_balancer()
        .load_balancer_arn(&left_alb)
        .send()
        .await
        .unwrap();
    eks.delete_cluster().name("demo").send().await.unwrap();
    logs.delete_log_group()
        .log_group_name("/aws/eks/demo/cluster")
        .send()
        .await
        .unwrap();
    let clean = leftovers(&moto, &proxy, &[]);
    assert_exit(&clean, 0);
    assert_eq!(
        clean.stdout,
        "leftovers: none; nothing of cluster demo in us-east-2 is left\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_group_of_a_cluster_that_is_not_ours_is_its_owner_s() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    let config = moto.sdk_config(REGION).await;
    seed::cluster(&config, "demo", false).await;
    aws_sdk_cloudwatchlogs::Client::new(&config)
        .create_log_group()
        .log_group_name("/aws/eks/demo/cluster")
        .send()
        .await
        .unwrap();
    let found = leftovers(&moto, &proxy, &[]);
    assert_exit(&found, 0);
    assert!(!found.stdout.contains("left "), "{}", found.stdout);
}

#[test]
fn without_credentials_or_a_region_it_is_exit_2() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    let home = tempfile::tempdir().unwrap();
    let mut command = proxy.command(&moto, BIN);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", home.path())
        .args(["leftovers", "--cluster", "demo", "--region", REGION]);
    let run = testbed::run::run(&mut command, "");
    assert_exit(&run, 2);
    assert!(
        run.stderr.contains("no AWS credentials found") && run.stderr.contains("aws sso login"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert!(proxy.calls().is_empty());

    let no_region = testbed::run::run(
        proxy
            .command(&moto, BIN)
            .args(["leftovers", "--cluster", "demo"]),
        "",
    );
    assert_exit(&no_region, 2);
    assert!(
        no_region.stderr.contains("no AWS region"),
        "{}",
        no_region.stderr
    );
    let bad_name = testbed::run::run(
        proxy
            .command(&moto, BIN)
            .args(["--region", REGION, "leftovers", "--cluster", "bad.name"]),
        "",
    );
    assert_exit(&bad_name, 2);
}
