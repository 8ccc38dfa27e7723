//! The real `eks-deploy` binary against the Kubernetes stand-in, with simulators of the cluster
//! (Deployments roll out, Services get endpoints) and of the AWS Load Balancer Controller (adds
//! its finalizer, sets the ALB host name, serves HTTP 200 on loopback, releases the finalizer).

use std::path::Path;

use testbed::albsim::{AlbControllerSim, EndpointsSim};
use testbed::kubeapi::KubeApi;
use testbed::run::{Run, assert_exit};
use testbed::sim::DeploymentSim;
use testbed::{Moto, REGION, seed};

const BIN: &str = env!("CARGO_BIN_EXE_eks-deploy");

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

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

/// The Kubernetes stand-in, the manifests, and moto: every AWS call a run makes goes to moto.
struct Bed {
    kube: KubeApi,
    dir: tempfile::TempDir,
    moto: Moto,
}

impl Bed {
    fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        manifests(dir.path());
        Bed {
            kube: KubeApi::start(),
            dir,
            moto: Moto::start(),
        }
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

    fn ours(&self) -> Vec<String> {
        self.kube
            .created_objects()
            .iter()
            .filter(|o| o["kind"] != "Endpoints")
            .map(|o| {
                format!(
                    "{} {}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["name"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }
}

fn connect_to(sim: &AlbControllerSim) -> String {
    sim.alb("game", "app")
        .expect("the simulated ALB exists")
        .connect_to()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_reapply_and_delete_in_order() {
    let bed = Bed::new();
    let client = bed.kube.client().await;
    let _deployments = DeploymentSim::start(client.clone());
    let _endpoints = EndpointsSim::start(client.clone());
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
    let version = bed.kube.resource_version();
    let again = bed.run(&["apply", "--connect-to", &route], &applied.stdout);
    assert_exit(&again, 0);
    assert!(again.stderr.contains("nothing changed"), "{}", again.stderr);
    assert_eq!(
        bed.kube.resource_version(),
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
    assert!(bed.ours().is_empty(), "left: {:?}", bed.ours());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_time_out_and_a_stuck_ingress_needs_force() {
    let bed = Bed::new();
    let client = bed.kube.client().await;
    let deployments = DeploymentSim::start(client.clone());
    let _endpoints = EndpointsSim::start(client.clone());
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
    let _deployments = DeploymentSim::start(client.clone());
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
    let seeded = seed::cluster(&config, "demo", false).await;
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
        &["delete", "--force", "--resume", "--timeout", "10s"],
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
    assert!(bed.ours().is_empty(), "left: {:?}", bed.ours());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_applies_nothing() {
    let bed = Bed::new();
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
    assert!(bed.ours().is_empty(), "nothing applied: {:?}", bed.ours());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_nothing_deployed_is_success() {
    let bed = Bed::new();
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
    testbed::run::check_contract(env!("CARGO_MANIFEST_DIR"), BIN, &["eks:DescribeCluster"]);
}
