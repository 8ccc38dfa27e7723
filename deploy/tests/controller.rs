//! The real `eks-deploy` with the AWS Load Balancer Controller as the cluster runs it: the
//! simulator with AWS (moto), configured by the controller Deployment the manifests make,
//! resolving each ALB's subnets in EC2 and saying why it cannot in events on the Ingress.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use testbed::albsim::{AlbControllerSim, Options};
use testbed::controlplane::ControlPlane;
use testbed::fargate::Profiles;
use testbed::run::{Run, assert_exit};
use testbed::sim::FargateSim;
use testbed::{Moto, REGION, seed};

mod fixtures;

const BIN: &str = env!("CARGO_BIN_EXE_eks-deploy");

/// The controller (its Deployment, named and configured as the real one) and the app with its
/// Ingress.
fn manifests(dir: &Path, vpc: &str) {
    let controller = format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: aws-load-balancer-controller, namespace: kube-system}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: lbc}}}}
  template:
    metadata: {{labels: {{app: lbc}}}}
    spec:
      containers:
        - name: controller
          image: example/lbc:1
          args: [--cluster-name=demo, --ingress-class=alb, --aws-region={REGION}, --aws-vpc-id={vpc}]
"#
    );
    let app = r#"
apiVersion: v1
kind: Namespace
metadata: {name: game}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: game}
spec:
  replicas: 2
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
    std::fs::write(dir.join("01-controller.yaml"), controller).unwrap();
    std::fs::write(dir.join("02-app.yaml"), app).unwrap();
}

struct Bed {
    kube: ControlPlane,
    moto: Moto,
    dir: tempfile::TempDir,
    _pods: FargateSim,
    alb: AlbControllerSim,
}

impl Bed {
    /// Cluster `demo` (its profile selects kube-system and game) in a VPC whose two subnets
    /// (zones a and b) carry `tags`.
    async fn new(tags: &[(&str, &str)]) -> Bed {
        let moto = Moto::start();
        let config = moto.sdk_config(REGION).await;
        let cluster = seed::cluster(&config, "demo", false).await;
        seed::fargate_profile(
            &config,
            "demo",
            "fp-test",
            &cluster.subnet_ids,
            &[("kube-system", &[]), ("game", &[])],
        )
        .await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        for (key, value) in tags {
            ec2.create_tags()
                .set_resources(Some(cluster.subnet_ids.clone()))
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key(*key)
                        .value(*value)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        manifests(dir.path(), &cluster.vpc_id);
        let kube = ControlPlane::start();
        let pods = FargateSim::start(
            kube.simulator_client().await,
            Profiles::eks_cluster(&config, "demo"),
        )
        .await;
        let alb = AlbControllerSim::launch(
            kube.simulator_client().await,
            Options {
                region: REGION.into(),
                shared: true,
                aws_endpoint: Some(moto.endpoint.clone()),
                ..Options::default()
            },
        )
        .await
        .unwrap();
        Bed {
            kube,
            moto,
            dir,
            _pods: pods,
            alb,
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> Run {
        let kubeconfig = self.kube.kubeconfig();
        let mut all: Vec<&str> = vec!["--region", REGION];
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

    fn connect_to(&self) -> String {
        format!("::127.0.0.1:{}", self.alb.shared_port().unwrap())
    }
}

/// The subnets are tagged for ALBs, but for another cluster: the controller finds none, says
/// so in `FailedBuildModel` events and makes no ALB. `apply` shows that while it waits and stops
/// once it persists, long before its 10 minutes (without looking at the events it waited them
/// all out, then said only "timed out").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_stops_early_on_a_controller_failure_that_persists() {
    let bed = Bed::new(&[
        ("kubernetes.io/role/elb", "1"),
        ("kubernetes.io/cluster/other", "owned"),
    ])
    .await;
    let started = Instant::now();
    let failed = tokio::task::block_in_place(|| {
        bed.run(
            &[
                "apply",
                "--timeout",
                "10m",
                "--connect-to",
                &bed.connect_to(),
            ],
            "",
        )
    });
    let took = started.elapsed();
    eprintln!("apply stopped after {took:?}");
    assert_exit(&failed, 1);
    let why = "FailedBuildModel: Failed build model due to couldn't auto-discover subnets: unable to resolve at least one subnet. Evaluated 2 subnets: 2 are tagged for other clusters, and 0 have insufficient available IP addresses";
    assert!(
        failed
            .stderr
            .contains(&format!("the controller reports {why}")),
        "shown while waiting: {}",
        failed.stderr
    );
    let state = failed.json();
    let message = state["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "the AWS Load Balancer Controller cannot make the ALB of Ingress game/app: {why}"
        )) && message.contains("kubernetes.io/role/elb=1"),
        "{message}"
    );
    assert!(
        took < Duration::from_secs(120),
        "stopped after {took:?}, not after --timeout 10m"
    );
    let kinds: Vec<&str> = state["deploy"]["appliedObjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Deployment",
            "Namespace",
            "Deployment",
            "Service",
            "Ingress"
        ],
        "what was applied is recorded"
    );
    assert!(bed.alb.alb("game", "app").is_none());
    let ingress: Api<Ingress> = Api::namespaced(bed.kube.client().await, "game");
    let status = ingress.get("app").await.unwrap().status;
    assert!(
        status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .is_none(),
        "no hostname"
    );

    // delete still works: the controller runs, and releases the Ingress it holds.
    let deleted = tokio::task::block_in_place(|| {
        bed.run(&["delete", "--resume", "--timeout", "60s"], &failed.stdout)
    });
    assert_exit(&deleted, 0);
    assert!(
        fixtures::objects_left(&bed.kube).await.is_empty(),
        "left: {:?}",
        fixtures::objects_left(&bed.kube).await
    );
}

/// Where the audit log shows the first request `method` on a path ending in `path_end` by
/// `user` that succeeded.
fn position(kube: &ControlPlane, user: &str, method: &str, path_end: &str) -> usize {
    kube.requests()
        .iter()
        .position(|r| {
            r.user == user && r.method == method && r.path.ends_with(path_end) && r.code < 300
        })
        .unwrap_or_else(|| panic!("no {method} …{path_end} by {user} in the audit log"))
}

/// A user added an Ingress of class alb in the app's namespace (not ours, not in the state).
/// The namespace takes it when delete removes it, but only the controller deletes its ALB and
/// releases it: delete must see it gone before it deletes the controller. Before, it went with
/// the namespace, in the same batch as the controller's Deployment, and the controller (gone)
/// never released it: the namespace stayed Terminating and the ALB stayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_waits_for_a_users_alb_ingress_in_our_namespace_before_the_controller() {
    let bed = Bed::new(&[("kubernetes.io/role/elb", "1")]).await;
    let applied = tokio::task::block_in_place(|| {
        bed.run(
            &[
                "apply",
                "--timeout",
                "120s",
                "--connect-to",
                &bed.connect_to(),
            ],
            "",
        )
    });
    assert_exit(&applied, 0);
    let alb = bed.alb.alb("game", "app").expect("our ALB");
    assert_eq!(alb.subnets.len(), 2, "discovered in two zones");

    let client = bed.kube.client().await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "game");
    let users = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "users", "namespace": "game",
                     "annotations": {"kubernetes.io/ingress.class": "alb",
                                     "alb.ingress.kubernetes.io/scheme": "internet-facing"}},
        "spec": {"defaultBackend": {"service": {"name": "app", "port": {"number": 80}}}}
    });
    ingresses
        .patch(
            "users",
            &PatchParams::apply("kubectl"),
            &Patch::Apply(users),
        )
        .await
        .unwrap();
    let mut made = false;
    for _ in 0..100 {
        if bed.alb.alb("game", "users").is_some() {
            made = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(made, "the user's ALB");

    let deleted =
        tokio::task::block_in_place(|| bed.run(&["delete", "--timeout", "90s"], &applied.stdout));
    assert_exit(&deleted, 0);
    assert!(
        deleted
            .stderr
            .contains("deleting Ingress game/users (not made by eks-deploy"),
        "{}",
        deleted.stderr
    );
    assert_eq!(bed.alb.count(), 0, "both ALBs are gone");
    // The controller released the user's Ingress (its ALB deleted: its last patch of it, the
    // first added the finalizer) before its Deployment went.
    let requests = bed.kube.requests();
    let released = requests
        .iter()
        .rposition(|r| {
            r.user == "testbed:simulators"
                && r.method == "PATCH"
                && r.path.ends_with("/namespaces/game/ingresses/users")
                && r.code < 300
        })
        .expect("the simulator's patches of the user's Ingress");
    let controller_deleted = position(
        &bed.kube,
        testbed::controlplane::TESTBED_USER,
        "DELETE",
        "/namespaces/kube-system/deployments/aws-load-balancer-controller",
    );
    assert!(
        released < controller_deleted,
        "the finalizer was released (#{released}) before the controller was deleted (#{controller_deleted})"
    );
    assert!(
        fixtures::objects_left(&bed.kube).await.is_empty(),
        "left: {:?}",
        fixtures::objects_left(&bed.kube).await
    );
}
