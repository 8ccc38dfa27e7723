//! `eks-sg-stack delete` right after the ALB is gone: its network interfaces stay for a while
//! and hold the ALB security group (the test bed's ELB interface simulator and the AWS proxy's
//! dependency rules make moto behave so), and a stack delete that hits one ends DELETE_FAILED.

use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use testbed::albsim::AlbControllerSim;
use testbed::awsproxy::{AwsProxy, Verdict};
use testbed::controlplane::ControlPlane;
use testbed::enis::{DependencyRules, ElbInterfaceSim};
use testbed::run::{Run, assert_exit};
use testbed::{Moto, REGION, seed};

const BIN: &str = env!("CARGO_BIN_EXE_eks-sg-stack");

/// Runs the binary through the proxy off the runtime's threads (the simulators keep running).
async fn run(proxy: &AwsProxy, moto: &Moto, args: &[&str], stdin: &str) -> Run {
    let mut cmd = proxy.command(moto, BIN);
    cmd.args(args);
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || testbed::run::run(&mut cmd, &stdin))
        .await
        .unwrap()
}

async fn ec2(moto: &Moto) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&moto.sdk_config(REGION).await)
}

async fn interfaces_in(moto: &Moto, group: &str) -> Vec<String> {
    ec2(moto)
        .await
        .describe_network_interfaces()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-id")
                .values(group)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .network_interfaces()
        .iter()
        .filter_map(|n| n.network_interface_id().map(str::to_owned))
        .collect()
}

async fn group_exists(moto: &Moto, group: &str) -> bool {
    ec2(moto)
        .await
        .describe_security_groups()
        .group_ids(group)
        .send()
        .await
        .is_ok_and(|a| !a.security_groups().is_empty())
}

async fn stack_left(moto: &Moto) -> bool {
    aws_sdk_cloudformation::Client::new(&moto.sdk_config(REGION).await)
        .describe_stacks()
        .send()
        .await
        .unwrap()
        .stacks()
        .iter()
        .any(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
}

async fn until(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A stack, made through the proxy; its ALB security group.
async fn stack(proxy: &AwsProxy, moto: &Moto) -> (String, String) {
    seed::cluster(&moto.sdk_config(REGION).await, "demo", true).await;
    let made = run(
        proxy,
        moto,
        &["--region", REGION, "create", "--cluster", "demo"],
        "",
    )
    .await;
    assert_exit(&made, 0);
    let group = made.json()["sgStack"]["securityGroupId"]
        .as_str()
        .unwrap()
        .to_owned();
    (made.stdout, group)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_right_after_the_alb_waits_for_its_network_interfaces() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    DependencyRules::new(&moto.endpoint).install(&proxy);
    let (state, group) = stack(&proxy, &moto).await;

    // The ALB: an Ingress naming the group, the controller simulator, and ELB's interfaces.
    let kube = ControlPlane::start();
    let client = kube.client().await;
    let _controller = AlbControllerSim::start(client.clone());
    let elb = ElbInterfaceSim::start(
        client.clone(),
        &moto.endpoint,
        REGION,
        Duration::from_secs(4),
    );
    let ingresses: Api<Ingress> = Api::namespaced(client, "default");
    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default",
            "annotations": {"alb.ingress.kubernetes.io/security-groups": group}},
        "spec": {"ingressClassName": "alb",
            "defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}
    });
    ingresses
        .patch("web", &PatchParams::apply("test"), &Patch::Apply(ingress))
        .await
        .unwrap();
    until("the ALB's interface", async || {
        elb.interface("default", "web").is_some()
    })
    .await;
    assert_eq!(interfaces_in(&moto, &group).await.len(), 1);

    // The Ingress goes (the controller deletes the ALB and releases it); its interface stays.
    ingresses
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    until("the Ingress to go", async || {
        ingresses.get_opt("web").await.unwrap().is_none()
    })
    .await;
    assert_eq!(
        interfaces_in(&moto, &group).await.len(),
        1,
        "the interface outlives the ALB"
    );

    let deleted = run(&proxy, &moto, &["delete"], &state).await;
    assert_exit(&deleted, 0);
    assert!(
        deleted
            .stderr
            .contains("network interface(s) still use security group")
            && deleted.stderr.contains("ELB app/k8s-default-web/"),
        "the wait says what it waits for: {}",
        deleted.stderr
    );
    assert!(deleted.json().get("sgStack").is_none());
    assert!(!stack_left(&moto).await, "the stack is gone");
    assert!(!group_exists(&moto, &group).await, "the group is gone");
    let deletes: Vec<String> = proxy
        .calls()
        .iter()
        .filter(|c| c.request.action == "DeleteStack")
        .map(|c| c.to_string())
        .collect();
    assert_eq!(deletes.len(), 1, "one delete, after the wait: {deletes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_failed_stack_is_deleted_again() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    // An interface appears in the group just as the first delete starts (after the wait found
    // none), and goes 3 s later: the first delete ends DELETE_FAILED.
    let endpoint = moto.endpoint.clone();
    let appeared = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let once = appeared.clone();
    proxy.async_rule(move |r| {
        let (endpoint, once) = (endpoint.clone(), once.clone());
        async move {
            if r.action != "DeleteStack" || once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Verdict::Pass;
            }
            let config = testbed::enis::moto_config(&endpoint, REGION).await;
            let ec2 = aws_sdk_ec2::Client::new(&config);
            let cfn = aws_sdk_cloudformation::Client::new(&config);
            let stack = r.param("StackName").unwrap();
            let outputs = cfn
                .describe_stacks()
                .stack_name(&stack)
                .send()
                .await
                .unwrap();
            let group = outputs.stacks()[0]
                .outputs()
                .iter()
                .find(|o| o.output_key() == Some("SecurityGroupId"))
                .and_then(|o| o.output_value())
                .unwrap()
                .to_owned();
            let eni = testbed::enis::make_interface(&ec2, &group, "k8s-late-alb")
                .await
                .unwrap();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let _ = ec2
                    .delete_network_interface()
                    .network_interface_id(eni)
                    .send()
                    .await;
            });
            Verdict::Pass
        }
    });
    let rules = DependencyRules::new(&moto.endpoint);
    rules.install(&proxy);
    let (state, group) = stack(&proxy, &moto).await;

    let deleted = run(&proxy, &moto, &["delete"], &state).await;
    assert_exit(&deleted, 0);
    assert!(
        deleted.stderr.contains("DELETE_FAILED") && deleted.stderr.contains("again"),
        "the failed delete is said and retried: {}",
        deleted.stderr
    );
    assert_eq!(rules.failed_deletes(), 0, "the last delete went through");
    let deletes = proxy
        .calls()
        .iter()
        .filter(|c| c.request.action == "DeleteStack")
        .count();
    assert_eq!(deletes, 2, "deleted again after DELETE_FAILED");
    assert!(!stack_left(&moto).await);
    assert!(!group_exists(&moto, &group).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interface_that_stays_is_named_and_nothing_is_deleted() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    DependencyRules::new(&moto.endpoint).install(&proxy);
    let (state, group) = stack(&proxy, &moto).await;
    let ec2 = ec2(&moto).await;
    let eni = testbed::enis::make_interface(&ec2, &group, "k8s-stuck-alb")
        .await
        .unwrap();

    let stuck = run(&proxy, &moto, &["delete", "--eni-timeout", "2s"], &state).await;
    assert_exit(&stuck, 1);
    let message = stuck.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(&eni)
            && message.contains("ELB app/k8s-stuck-alb/")
            && message.contains("--eni-timeout"),
        "the error names what is left and what to do: {message}"
    );
    assert!(
        proxy
            .calls()
            .iter()
            .all(|c| c.request.action != "DeleteStack"),
        "no delete while the interface is there"
    );
    assert!(stack_left(&moto).await);
    assert!(group_exists(&moto, &group).await);
}
