//! The whole pipeline as users chain it in a shell, on the local test bed: moto behind the
//! hardened AWS proxy, the real Kubernetes control plane with simulators of EKS and of the AWS
//! Load Balancer Controller (the bed is `eks_fa_e2e::Bed`). The binaries are the workspace's
//! own (`make test` builds them first).

use std::path::Path;

use eks_fa_e2e::{Bed, CLUSTER, INSTALL, TEARDOWN, run_with_stdin};
use serde_json::Value;
use testbed::REGION;
use testbed::run::assert_exit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_as_a_pipe_answers_200_and_teardown_leaves_nothing() {
    let bed = Bed::new().await;
    let cluster = bed.create_cluster().await;

    let installed = bed.pipe(INSTALL, &cluster.to_string());
    assert_exit(&installed, 0);
    let state = installed.json();
    for section in [
        "cluster", "oidc", "irsa", "sgStack", "patch", "deploy", "timings",
    ] {
        assert!(
            state.get(section).is_some(),
            "no {section} section: {state}"
        );
    }
    assert!(state.get("error").is_none());
    let url = state["deploy"]["url"].as_str().unwrap();
    assert!(url.ends_with(".elb.amazonaws.com/"), "{url}");
    assert_eq!(
        state["patch"]["securityGroupId"],
        state["sgStack"]["securityGroupId"]
    );
    assert_eq!(state["patch"]["roleArn"], state["irsa"][0]["roleArn"]);
    // The app's namespace asks for the controller's pod readiness gates: the API server sent
    // each new app pod to the controller's pod mutator (a pod then counts as ready only once
    // the ALB sees it healthy, so a rollout never leaves the ALB without targets).
    let gated: Vec<_> = bed
        .eks
        .webhooks
        .reviews()
        .into_iter()
        .filter(|r| r.path == "/mutate-v1-pod" && r.kind == "Pod")
        .map(|r| r.namespace)
        .collect();
    assert!(
        gated.iter().filter(|ns| *ns == "game-2048").count() >= 4,
        "every app pod went through the readiness-gate injector: {gated:?}"
    );
    assert!(
        gated.iter().all(|ns| ns == "game-2048"),
        "only the app's namespace is labelled: {gated:?}"
    );
    for step in ["cluster", "oidc", "irsa", "sgStack", "patch", "deploy"] {
        assert!(state["timings"][step].is_object(), "no timing for {step}");
    }

    // The same pipe again changes nothing.
    let version = bed.eks.kube.versions().await;
    let again = bed.pipe(INSTALL, &installed.stdout);
    assert_exit(&again, 0);
    assert_eq!(
        bed.eks.kube.versions().await,
        version,
        "a second install writes nothing to Kubernetes"
    );

    let teardown = bed.pipe(TEARDOWN, &again.stdout);
    let done = bed.finish_cluster_delete(&teardown);
    let after = done.json();
    for section in ["cluster", "oidc", "irsa", "sgStack", "deploy"] {
        assert!(
            after.get(section).is_none(),
            "{section} left in the state: {after}"
        );
    }
    bed.assert_nothing_left().await;
    assert_eq!(bed.alb.count(), 0, "the ALB is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_mid_pipe_stops_it_and_teardown_still_cleans_up() {
    let bed = Bed::new().await;
    let cluster = bed.create_cluster().await;
    // The controller is "down": its Deployment never becomes available (no pod runs), so
    // eks-deploy's wait fails; nothing after it runs, and the state says what was made.
    bed.eks.fargate.stop();
    let installed = bed.pipe(
        &INSTALL.replace("--timeout 60s", "--timeout 3s"),
        &cluster.to_string(),
    );
    assert_exit(&installed, 1);
    let state = installed.json();
    assert_eq!(state["error"]["step"], "deploy", "{}", installed.stderr);
    assert!(
        state["deploy"]["appliedObjects"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );

    let teardown = bed.pipe(TEARDOWN, &installed.stdout);
    bed.finish_cluster_delete(&teardown);
    bed.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_install_then_make_clean() {
    let bed = Bed::new().await;
    let network = testbed::seed::network(&bed.moto.sdk_config(REGION).await, CLUSTER).await;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let state = bed.work.path().join("state.json");
    let vars = [
        "BUILD=".to_owned(),
        format!("BIN={}", bed.bin.display()),
        format!("STATE={}", state.display()),
        format!("CLUSTER={CLUSTER}"),
        format!("REGION={REGION}"),
        format!("KUBECONFIG_FILE={}", bed.kubeconfig().display()),
        format!("OUT={}", bed.work.path().join("patched").display()),
        format!("CONNECT_TO=::127.0.0.1:{}", bed.alb.shared_port().unwrap()),
        format!("VPC_ID={}", network.vpc_id),
        format!("PRIVATE_SUBNETS={}", network.private_subnet_ids.join(",")),
        format!("PUBLIC_SUBNETS={}", network.public_subnet_ids.join(",")),
    ];
    let make = |target: &str| {
        let mut command = bed.shell();
        command.arg("-c").arg(format!(
            "make --no-print-directory -C '{}' {target} \"$@\"",
            repo.display()
        ));
        command.arg("make").args(&vars);
        run_with_stdin(command, "")
    };

    let installed = make("install");
    assert_exit(&installed, 0);
    assert!(
        installed.stdout.contains("install took 0h:"),
        "{}",
        installed.stdout
    );
    let text = std::fs::read_to_string(&state).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["deploy"]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(".elb.amazonaws.com/")),
        "{doc}"
    );
    assert_eq!(doc["cluster"]["vpcId"], network.vpc_id.as_str());
    assert_eq!(doc["cluster"]["networkCreatedByUs"], false);
    assert!(doc.get("error").is_none());

    let cleaned = make("clean");
    assert_exit(&cleaned, 0);
    assert!(
        cleaned.stdout.contains("clean took 0h:"),
        "{}",
        cleaned.stdout
    );
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    for section in ["cluster", "oidc", "irsa", "sgStack", "deploy"] {
        assert!(after.get(section).is_none(), "{section} left: {after}");
    }
    bed.assert_nothing_left().await;
    let vpcs = bed
        .sdk()
        .await
        .ec2
        .describe_vpcs()
        .vpc_ids(&network.vpc_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        vpcs.vpcs().len(),
        1,
        "the brought VPC is the user's and stays"
    );
}
