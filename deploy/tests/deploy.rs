//! The real `eks-deploy` binary against the real Kubernetes control plane, with the Fargate
//! simulator (pods placed and run; the controllers make them, their endpoints and statuses) and of the AWS Load Balancer Controller (adds
//! its finalizer, sets the ALB host name, serves HTTP 200 on loopback, releases the finalizer).

use std::path::Path;

use testbed::albsim::AlbControllerSim;
use testbed::controlplane::ControlPlane;
use testbed::fargate::Profiles;
use testbed::run::{Run, assert_exit};
use testbed::sim::FargateSim;
use testbed::{Moto, REGION, seed};

mod fixtures;

use fixtures::CRD;

const BIN: &str = env!("CARGO_BIN_EXE_eks-deploy");

const CONTROLLER: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: ctl, namespace: kube-system}
---
apiVersion: v1
kind: Service
metadata: {name: ctl-webhook, namespace: kube-system}
spec:
  selector: {app: ctl}
  ports: [{port: 443, targetPort: 9443}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: ctl}
webhooks:
  - name: v.ctl.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    clientConfig: {service: {namespace: kube-system, name: ctl-webhook, path: /validate}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ctl, namespace: kube-system}
spec:
  replicas: 2
  selector: {matchLabels: {app: ctl}}
  template:
    metadata: {labels: {app: ctl}}
    spec:
      serviceAccountName: ctl
      containers: [{name: c, image: example/ctl:1}]
"#;

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: game}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: game}
spec:
  replicas: 4
  selector: {matchLabels: {app: game}}
  template:
    metadata: {labels: {app: game}}
    spec:
      containers: [{name: c, image: example/2048:1, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: game}
spec:
  selector: {app: game}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: game}
spec: {size: 3}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app
  namespace: game
  annotations:
    alb.ingress.kubernetes.io/scheme: internet-facing
    alb.ingress.kubernetes.io/target-type: ip
spec:
  ingressClassName: alb
  rules:
    - http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}
"#;

fn manifests(dir: &Path) {
    std::fs::write(dir.join("00-crd.yaml"), CRD).unwrap();
    std::fs::write(dir.join("01-controller.yaml"), CONTROLLER).unwrap();
    std::fs::write(dir.join("02-app.yaml"), APP).unwrap();
}

/// The Kubernetes control plane, the manifests, and moto: every AWS call a run makes goes to moto,
/// which holds the cluster `demo` with a Fargate profile selecting the manifests' namespaces.
struct Bed {
    kube: ControlPlane,
    dir: tempfile::TempDir,
    moto: Moto,
    cluster: seed::SeededCluster,
}

impl Bed {
    async fn new() -> Bed {
        Bed::with_profile(&[("kube-system", &[]), ("game", &[])]).await
    }

    /// The bed whose cluster's one Fargate profile has `selectors`.
    async fn with_profile(selectors: &[(&str, &[(&str, &str)])]) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        manifests(dir.path());
        let moto = Moto::start();
        let config = moto.sdk_config(REGION).await;
        let cluster = seed::cluster(&config, "demo", false).await;
        seed::fargate_profile(&config, "demo", "fp-test", &cluster.subnet_ids, selectors).await;
        Bed {
            kube: ControlPlane::start(),
            dir,
            moto,
            cluster,
        }
    }

    /// The cluster simulator, placing pods by the profiles moto holds for `demo`.
    async fn deployments(&self) -> FargateSim {
        FargateSim::start(
            self.kube.simulator_client().await,
            Profiles::eks_cluster(&self.moto.sdk_config(REGION).await, "demo"),
        )
        .await
    }

    fn run(&self, args: &[&str], stdin: &str) -> Run {
        let kubeconfig = self.kube.kubeconfig();
        let mut all: Vec<&str> = vec!["--region", "us-east-2"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "--cluster",
            "demo",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--manifests",
            self.dir.path().to_str().unwrap(),
        ]);
        testbed::run::run(self.moto.command(BIN).args(&all), stdin)
    }

    /// What the binary (the kubeconfig's user) made and left in the cluster, `Kind name`.
    async fn ours(&self) -> Vec<String> {
        fixtures::objects_left(&self.kube).await
    }
}

fn connect_to(sim: &AlbControllerSim) -> String {
    sim.alb("game", "app")
        .expect("the simulated ALB exists")
        .connect_to()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_reapply_and_delete_in_order() {
    let bed = Bed::new().await;
    let client = bed.kube.client().await;
    let _deployments = bed.deployments().await;
    let alb = AlbControllerSim::start(client.clone());

    // The ALB's loopback port is known only once the simulator made it: a first apply with a
    // catch-all --connect-to to a closed port applies everything, then its HTTP check times out.
    let first_try = bed.run(
        &["apply", "--timeout", "8s", "--connect-to", "::127.0.0.1:1"],
        "",
    );
    assert_exit(&first_try, 1);
    assert!(
        first_try.stderr.contains("to answer HTTP 200"),
        "{}",
        first_try.stderr
    );
    let failed = first_try.json();
    assert_eq!(failed["error"]["step"], "deploy");
    assert!(
        failed["deploy"]["appliedObjects"].as_array().unwrap().len() >= 9,
        "what was applied is recorded"
    );

    let route = connect_to(&alb);
    let applied = bed.run(
        &["apply", "--connect-to", &route, "--resume"],
        &first_try.stdout,
    );
    assert_exit(&applied, 0);
    let state = applied.json();
    let section = &state["deploy"];
    let host = alb.alb("game", "app").unwrap().hostname;
    assert_eq!(section["hostname"], host.as_str());
    assert_eq!(section["url"], format!("http://{host}/"));
    assert!(section["secondsToFirst200"].as_f64().unwrap() >= 0.0);
    assert!(
        applied.stderr.contains("answers HTTP 200"),
        "{}",
        applied.stderr
    );
    let kinds: Vec<&str> = section["appliedObjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "CustomResourceDefinition",
            "ServiceAccount",
            "Service",
            "ValidatingWebhookConfiguration",
            "Deployment",
            "Namespace",
            "Deployment",
            "Service",
            "Widget",
            "Ingress"
        ]
    );

    // Again: nothing written anywhere.
    let version = bed.kube.versions().await;
    let again = bed.run(&["apply", "--connect-to", &route], &applied.stdout);
    assert_exit(&again, 0);
    assert!(again.stderr.contains("nothing changed"), "{}", again.stderr);
    assert_eq!(
        bed.kube.versions().await,
        version,
        "a second apply changes nothing"
    );

    // Delete: the Ingress first (the simulated controller releases it), then the rest.
    let deleted = bed.run(&["delete"], &again.stdout);
    assert_exit(&deleted, 0);
    assert!(deleted.json().get("deploy").is_none());
    let order: Vec<&str> = deleted
        .stderr
        .lines()
        .filter(|l| l.contains("deleting Ingress") || l.contains("deleted "))
        .collect();
    assert!(order[0].contains("deleting Ingress game/app"), "{order:?}");
    assert_eq!(alb.count(), 0, "the ALB is gone");
    assert!(bed.ours().await.is_empty(), "left: {:?}", bed.ours().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_time_out_and_a_stuck_ingress_needs_force() {
    let bed = Bed::new().await;
    let client = bed.kube.client().await;
    let deployments = bed.deployments().await;
    deployments.stop();
    // No Deployment ever becomes available: the controller wait times out.
    let stuck = bed.run(&["apply", "--timeout", "3s"], "");
    assert_exit(&stuck, 1);
    assert!(
        stuck.stderr.contains("timed out") && stuck.stderr.contains("Deployment kube-system/ctl"),
        "{}",
        stuck.stderr
    );
    let state = stuck.json();
    assert_eq!(state["error"]["exitCode"], 1);

    // With the cluster working but no load balancer controller, the Ingress never gets its
    // finalizer released: delete says so; --force removes it.
    let _deployments = bed.deployments().await;
    let alb = AlbControllerSim::start(client.clone());
    let route = {
        let applied = bed.run(
            &[
                "apply",
                "--timeout",
                "8s",
                "--resume",
                "--connect-to",
                "::127.0.0.1:1",
            ],
            &stuck.stdout,
        );
        assert_exit(&applied, 1);
        let route = connect_to(&alb);
        let done = bed.run(
            &["apply", "--resume", "--connect-to", &route],
            &applied.stdout,
        );
        assert_exit(&done, 0);
        done
    };
    alb.stop();
    // The ALB the controller made, as ELB shows it, tagged as the controller tags it.
    let config = bed.moto.sdk_config(REGION).await;
    let seeded = bed.cluster.clone();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let made = elb
        .create_load_balancer()
        .name("k8s-game-app-1234")
        .set_subnets(Some(seeded.subnet_ids.clone()))
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key("elbv2.k8s.aws/cluster")
                .value("demo")
                .build(),
        )
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key("ingress.k8s.aws/stack")
                .value("game/app")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let arn = made.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_owned();
    elb.create_load_balancer()
        .name("someone-elses")
        .set_subnets(Some(seeded.subnet_ids))
        .send()
        .await
        .unwrap();
    let refused = bed.run(&["delete", "--timeout", "2s"], &route.stdout);
    assert_exit(&refused, 1);
    assert!(
        refused.stderr.contains("--force") && refused.stderr.contains("ingress.k8s.aws/resources"),
        "{}",
        refused.stderr
    );
    let forced = bed.run(
        &["delete", "--force", "--resume", "--timeout", "60s"],
        &refused.stdout,
    );
    assert_exit(&forced, 0);
    assert!(
        forced.stderr.contains("its ALB may remain"),
        "{}",
        forced.stderr
    );
    assert!(
        forced.stderr.contains("k8s-game-app-1234") && forced.stderr.contains(&arn),
        "{}",
        forced.stderr
    );
    assert!(
        !forced.stderr.contains("someone-elses"),
        "{}",
        forced.stderr
    );
    assert!(bed.ours().await.is_empty(), "left: {:?}", bed.ours().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_applies_nothing() {
    let bed = Bed::new().await;
    std::fs::write(
        bed.dir.path().join("03-raw.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  vpc: VPC_ID\n",
    )
    .unwrap();
    let out = bed.run(&["apply"], "");
    assert_exit(&out, 2);
    assert!(
        out.stderr.contains("placeholder") && out.stderr.contains("03-raw.yaml"),
        "{}",
        out.stderr
    );
    std::fs::remove_file(bed.dir.path().join("03-raw.yaml")).unwrap();
    std::fs::write(
        bed.dir.path().join("03-bad.yaml"),
        "kind: ConfigMap\nmetadata: {name: c}\n",
    )
    .unwrap();
    let out = bed.run(&["apply"], "");
    assert_exit(&out, 2);
    assert!(out.stderr.contains("no apiVersion"), "{}", out.stderr);
    let no_patch = assert_cmd::Command::new(BIN)
        .args([
            "--region",
            "us-east-2",
            "apply",
            "--cluster",
            "demo",
            "--kubeconfig",
            bed.kube.kubeconfig().to_str().unwrap(),
        ])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(no_patch.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_patch.stderr).contains("run eks-patch first"));
    assert!(
        bed.ours().await.is_empty(),
        "nothing applied: {:?}",
        bed.ours().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_nothing_deployed_is_success() {
    let bed = Bed::new().await;
    let kubeconfig = bed.kube.kubeconfig();
    let out = testbed::run::run(
        bed.moto.command(BIN).args([
            "--region",
            REGION,
            "delete",
            "--cluster",
            "demo",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]),
        r#"{"schemaVersion":1,"cluster":{"name":"demo"}}"#,
    );
    assert_exit(&out, 0);
    assert!(out.stderr.contains("nothing to delete"), "{}", out.stderr);
    assert_eq!(out.json()["cluster"]["name"], "demo");
}

#[test]
fn main_rs_documents_the_contract() {
    testbed::run::check_contract(env!("CARGO_MANIFEST_DIR"), BIN);
}

/// Replaces the bed's manifests with `files` (name, text).
fn only(bed: &Bed, files: &[(&str, &str)]) {
    for entry in std::fs::read_dir(bed.dir.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (name, text) in files {
        std::fs::write(bed.dir.path().join(name), text).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_no_profile_selects_is_refused_before_anything_is_applied() {
    // The profile selects kube-system, and in `game` only pods labelled tier=web.
    let bed = Bed::with_profile(&[("kube-system", &[]), ("game", &[("tier", "web")])]).await;
    let _deployments = bed.deployments().await;
    let version = bed.kube.versions().await;
    let refused = bed.run(&["apply"], "");
    assert_exit(&refused, 2);
    for needle in [
        "no Fargate profile of cluster demo selects namespace game",
        "Deployment game/app (pod labels app=game)",
        "Nothing was applied",
        "eks-cluster create --cluster demo --namespace kube-system --namespace game",
        "FARGATE_NAMESPACES='kube-system game'",
    ] {
        assert!(
            refused.stderr.contains(needle),
            "{needle}: {}",
            refused.stderr
        );
    }
    assert_eq!(refused.json()["error"]["exitCode"], 2);
    assert_eq!(
        bed.kube.versions().await,
        version,
        "the cluster is unchanged"
    );
    assert!(
        bed.ours().await.is_empty(),
        "nothing applied: {:?}",
        bed.ours().await
    );

    // The profile eks-cluster made, as its state records it: no EKS call needed.
    let state = serde_json::json!({"schemaVersion": 1, "cluster": {
        "name": "demo", "region": REGION,
        "fargateProfiles": ["fp-0123456789ab"], "fargateNamespaces": ["default", "kube-system"]}});
    bed.moto.start_recording();
    let from_state = bed.run(&["apply"], &state.to_string());
    assert_exit(&from_state, 2);
    assert!(
        from_state.stderr.contains("selects namespace game")
            && from_state
                .stderr
                .contains("--namespace default --namespace kube-system --namespace game"),
        "{}",
        from_state.stderr
    );
    let calls = bed.moto.recorded_calls();
    assert!(
        calls.iter().all(|c| !c.path.contains("fargate-profiles")),
        "{calls:?}"
    );
    assert_eq!(bed.kube.versions().await, version);

    // A cluster EKS does not have cannot be checked: bad input.
    let kubeconfig = bed.kube.kubeconfig();
    let ghost = testbed::run::run(
        bed.moto.command(BIN).args([
            "--region",
            REGION,
            "apply",
            "--cluster",
            "ghost",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--manifests",
            bed.dir.path().to_str().unwrap(),
        ]),
        "",
    );
    assert_exit(&ghost, 2);
    assert!(
        ghost
            .stderr
            .contains("EKS has no cluster ghost in us-east-2"),
        "{}",
        ghost.stderr
    );
    assert_eq!(bed.kube.versions().await, version);
}

const ADDS_CAPABILITIES: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: game}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: game}
spec:
  replicas: 4
  selector: {matchLabels: {app: game}}
  template:
    metadata: {labels: {app: game}}
    spec:
      containers:
        - name: c
          image: example/2048:1
          securityContext:
            capabilities: {drop: [ALL], add: [CHOWN, DAC_OVERRIDE]}
"#;

/// Fargate refuses a pod that adds Linux capabilities; it stays Pending, and the wait's
/// timeout says which pods and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_fargate_refuses_are_named_when_the_wait_times_out() {
    let bed = Bed::with_profile(&[("game", &[])]).await;
    let _deployments = bed.deployments().await;
    only(&bed, &[("00-app.yaml", ADDS_CAPABILITIES)]);
    let stuck = bed.run(&["apply", "--timeout", "4s"], "");
    assert_exit(&stuck, 1);
    for needle in [
        "timed out",
        "Deployment game/app to be available",
        "0/4 available",
        "4 pods not running: app-",
        "(Pod not supported on Fargate: invalid SecurityContext fields: Capabilities added: CHOWN, DAC_OVERRIDE)",
    ] {
        assert!(stuck.stderr.contains(needle), "{needle}: {}", stuck.stderr);
    }
    let message = stuck.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("Capabilities added: CHOWN, DAC_OVERRIDE"),
        "{message}"
    );
}

/// The 2048 app as this repository ships it runs on Fargate (no capability added).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_2048_app_runs_on_fargate() {
    let bed = Bed::with_profile(&[("game-2048", &[])]).await;
    let _deployments = bed.deployments().await;
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/06-app-2048.yaml"),
    )
    .unwrap();
    only(&bed, &[("06-app-2048.yaml", &shipped)]);
    let applied = bed.run(&["apply", "--timeout", "20s"], "");
    assert_exit(&applied, 0);
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(bed.kube.client().await, "game-2048");
    let list = pods.list(&Default::default()).await.unwrap().items;
    assert_eq!(list.len(), 4);
    for pod in list {
        let spec = pod.spec.unwrap();
        assert_eq!(spec.scheduler_name.as_deref(), Some("fargate-scheduler"));
        assert!(spec.node_name.unwrap().starts_with("fargate-ip-"));
        assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));
    }
}
