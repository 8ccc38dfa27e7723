//! The real `eks-deploy` binary against the real API server enforcing the controller's
//! fail-closed admission webhooks: it calls them over TLS, through its egress proxy, at the
//! controller pods' addresses, checking the certificate eks-patch makes against the `caBundle`.
//! Beside it the Fargate simulator (the controller's pods run) and the webhook server it serves,
//! and the AWS Load Balancer Controller simulator
//! (finalizers, TargetGroupBindings, the "ALB"): it waits on EndpointSlices (never reading the
//! deprecated v1 Endpoints), deletes the webhook configurations before the controller, and with
//! `--force` gets rid of an Ingress and its TargetGroupBindings while the controller is down.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{Patch, PatchParams};
use testbed::albsim::AlbControllerSim;
use testbed::controlplane::ControlPlane;
use testbed::fargate::Profiles;
use testbed::run::{Run, assert_exit};
use testbed::sim::FargateSim;
use testbed::webhooksim::WebhookSim;
use testbed::{Moto, REGION, seed};

const BIN: &str = env!("CARGO_BIN_EXE_eks-deploy");

/// A state whose cluster's Fargate profile selects the namespaces of the manifests below.
const STATE: &str = r#"{"schemaVersion": 1, "cluster": {"name": "demo", "region": "us-east-2",
  "fargateProfiles": ["fp-default"], "fargateNamespaces": ["kube-system", "game"]}}"#;

/// The TargetGroupBinding CRD, serving the versions upstream serves.
const CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: targetgroupbindings.elbv2.k8s.aws
spec:
  group: elbv2.k8s.aws
  names: {kind: TargetGroupBinding, plural: targetgroupbindings, singular: targetgroupbinding, listKind: TargetGroupBindingList}
  scope: Namespaced
  versions:
    - name: v1alpha1
      served: true
      storage: false
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    - name: v1beta1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

/// A controller with webhooks like the real one's: fail closed on Ingresses, Services and
/// TargetGroupBindings, the pod mutator fail open; its own objects exempt. `CA_BUNDLE`, `TLS_CRT`
/// and `TLS_KEY` are replaced by a certificate eks-patch makes ([`controller`]).
const CONTROLLER: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: aws-load-balancer-tls, namespace: kube-system}
type: kubernetes.io/tls
data: {ca.crt: CA_BUNDLE, tls.crt: TLS_CRT, tls.key: TLS_KEY}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: ctl, namespace: kube-system}
---
apiVersion: v1
kind: Service
metadata: {name: aws-load-balancer-webhook-service, namespace: kube-system, labels: {app: ctl}}
spec:
  selector: {app: ctl}
  ports: [{name: webhook-server, port: 443, targetPort: webhook-server}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: ctl}
webhooks:
  - name: mpod.ctl.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    clientConfig: {caBundle: CA_BUNDLE, service: {namespace: kube-system, name: aws-load-balancer-webhook-service, path: /mutate-v1-pod}}
    namespaceSelector: {matchExpressions: [{key: elbv2.k8s.aws/pod-readiness-gate-inject, operator: In, values: [enabled]}]}
    rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  - name: mservice.ctl.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    clientConfig: {caBundle: CA_BUNDLE, service: {namespace: kube-system, name: aws-load-balancer-webhook-service, path: /mutate-v1-service}}
    objectSelector: {matchExpressions: [{key: app, operator: NotIn, values: [ctl]}]}
    rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [services]}]
  - name: mtargetgroupbinding.ctl.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    clientConfig: {caBundle: CA_BUNDLE, service: {namespace: kube-system, name: aws-load-balancer-webhook-service, path: /mutate-elbv2-k8s-aws-v1beta1-targetgroupbinding}}
    rules: [{apiGroups: [elbv2.k8s.aws], apiVersions: [v1beta1], operations: [CREATE, UPDATE], resources: [targetgroupbindings]}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: ctl}
webhooks:
  - name: vtargetgroupbinding.ctl.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    clientConfig: {caBundle: CA_BUNDLE, service: {namespace: kube-system, name: aws-load-balancer-webhook-service, path: /validate-elbv2-k8s-aws-v1beta1-targetgroupbinding}}
    rules: [{apiGroups: [elbv2.k8s.aws], apiVersions: [v1beta1], operations: [CREATE, UPDATE], resources: [targetgroupbindings]}]
  - name: vingress.ctl.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    matchPolicy: Equivalent
    clientConfig: {caBundle: CA_BUNDLE, service: {namespace: kube-system, name: aws-load-balancer-webhook-service, path: /validate-networking-v1-ingress}}
    rules: [{apiGroups: [networking.k8s.io], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [ingresses]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ctl, namespace: kube-system}
spec:
  replicas: 2
  selector: {matchLabels: {app: ctl}}
  template:
    metadata: {labels: {app: ctl, app.kubernetes.io/name: aws-load-balancer-controller}}
    spec:
      serviceAccountName: ctl
      containers: [{name: c, image: example/ctl:1, ports: [{name: webhook-server, containerPort: 9443}]}]
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

/// [`CONTROLLER`] with a webhook certificate and CA eks-patch makes (for the names of the
/// webhook Service).
fn controller() -> String {
    use base64::Engine;
    let pair = eks_patch::tls::make(chrono::Utc::now()).unwrap();
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    CONTROLLER
        .replace("CA_BUNDLE", &b64(&pair.record.ca_pem))
        .replace("TLS_CRT", &b64(&pair.record.cert_pem))
        .replace("TLS_KEY", &b64(&pair.key_pem))
}

struct Bed {
    kube: ControlPlane,
    dir: tempfile::TempDir,
    moto: Moto,
}

impl Bed {
    fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("00-crds.yaml"), CRDS).unwrap();
        std::fs::write(dir.path().join("01-controller.yaml"), controller()).unwrap();
        std::fs::write(dir.path().join("02-app.yaml"), APP).unwrap();
        Bed {
            kube: ControlPlane::start(),
            dir,
            moto: Moto::start(),
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

    /// Objects of the given kinds in the cluster that were not there at its start.
    async fn left(&self, kinds: &[&str]) -> Vec<String> {
        self.kube
            .objects_made()
            .await
            .iter()
            .filter(|o| kinds.iter().any(|k| o["kind"] == *k))
            // EKS's own Fargate admission webhook is the cluster's, not the controller's.
            .filter(|o| o["metadata"]["name"] != testbed::sim::FARGATE_ADMISSION_WEBHOOK)
            .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
            .collect()
    }
}

/// The simulators of a cluster running the controller (its pods on Fargate, their webhook
/// server); the "ALBs" answer on one port.
struct Cluster {
    _pods: FargateSim,
    _webhooks: WebhookSim,
    alb: AlbControllerSim,
}

impl Cluster {
    async fn start(kube: &ControlPlane) -> Cluster {
        let client = kube.simulator_client().await;
        Cluster {
            _pods: FargateSim::start(
                client.clone(),
                Profiles::namespaces(&["kube-system", "game"]),
            )
            .await,
            _webhooks: WebhookSim::start(client.clone(), kube.egress().unwrap().routes()),
            alb: AlbControllerSim::start_shared(client, AlbControllerSim::DEFAULT_DELAY, REGION)
                .await
                .unwrap(),
        }
    }

    fn connect_to(&self) -> String {
        format!("::127.0.0.1:{}", self.alb.shared_port().unwrap())
    }
}

fn bindings(client: &kube::Client) -> Api<kube::api::DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("elbv2.k8s.aws", "v1beta1", "TargetGroupBinding");
    let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, "targetgroupbindings");
    Api::namespaced_with(client.clone(), "game", &resource)
}

/// Polls until `probe` holds (at most 10 s).
async fn until(mut probe: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..200 {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn position(kube: &ControlPlane, method: &str, path_end: &str) -> usize {
    kube.requests()
        .iter()
        .position(|r| r.method == method && r.path.ends_with(path_end) && r.code < 300)
        .unwrap_or_else(|| panic!("no {method} …{path_end} in the API server's audit log"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_on_endpoint_slices_and_deletes_the_webhooks_before_the_controller() {
    let bed = Bed::new();
    let client = bed.kube.client().await;
    let cluster = Cluster::start(&bed.kube).await;
    let applied = bed.run(&["apply", "--connect-to", &cluster.connect_to()], STATE);
    assert_exit(&applied, 0);
    assert!(
        applied.stderr.contains(
            "webhook Service kube-system/aws-load-balancer-webhook-service to have ready endpoints"
        ),
        "{}",
        applied.stderr
    );
    // The controller (simulated) made the TargetGroupBinding of the Ingress's backend.
    let tgbs = bindings(&client);
    assert!(
        until(async || tgbs
            .list(&Default::default())
            .await
            .is_ok_and(|l| l.items.len() == 1))
        .await,
        "a TargetGroupBinding for game/app"
    );
    // eks-deploy read EndpointSlices, never the deprecated v1 Endpoints.
    let log = bed.kube.requests();
    let endpoint_reads: Vec<String> = log
        .iter()
        .filter(|r| {
            r.user == "testbed"
                && r.method == "GET"
                && r.path.starts_with("/api/v1/")
                && r.path.contains("/endpoints")
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        endpoint_reads.is_empty(),
        "eks-deploy read v1 Endpoints: {endpoint_reads:?}"
    );
    assert!(
        log.iter().any(|r| r.method == "GET"
            && r.path == "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices"
            && r.query
                .contains("kubernetes.io%2Fservice-name%3Daws-load-balancer-webhook-service")),
        "eks-deploy listed the webhook Service's EndpointSlices"
    );

    let deleted = bed.run(&["delete"], &applied.stdout);
    assert_exit(&deleted, 0);
    // The API server's view: the webhook configurations went before the controller Deployment
    // (and after the Ingress).
    let ingress = position(&bed.kube, "DELETE", "/namespaces/game/ingresses/app");
    let validating = position(&bed.kube, "DELETE", "/validatingwebhookconfigurations/ctl");
    let mutating = position(&bed.kube, "DELETE", "/mutatingwebhookconfigurations/ctl");
    let controller = position(
        &bed.kube,
        "DELETE",
        "/namespaces/kube-system/deployments/ctl",
    );
    assert!(
        ingress < validating && ingress < mutating,
        "the Ingress first: {ingress} {validating} {mutating}"
    );
    assert!(
        validating < controller && mutating < controller,
        "webhook configurations (at {validating}, {mutating}) before the controller (at {controller})"
    );
    assert!(
        bed.left(&[
            "Ingress",
            "TargetGroupBinding",
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
            "Deployment"
        ])
        .await
        .is_empty(),
        "{:?}",
        bed.left(&[
            "Ingress",
            "TargetGroupBinding",
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
            "Deployment"
        ])
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_gets_rid_of_the_ingress_and_its_bindings_while_the_controller_is_down() {
    let bed = Bed::new();
    let client = bed.kube.client().await;
    let cluster = Cluster::start(&bed.kube).await;
    let applied = bed.run(&["apply", "--connect-to", &cluster.connect_to()], STATE);
    assert_exit(&applied, 0);
    let tgbs = bindings(&client);
    assert!(
        until(async || tgbs
            .list(&Default::default())
            .await
            .is_ok_and(|l| l.items.len() == 1))
        .await,
        "a TargetGroupBinding for game/app"
    );
    let tg_name = tgbs.list(&Default::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();

    // The controller goes down: its simulator stops, its Deployment is scaled to zero, so its
    // webhook Service has no ready endpoint and the fail-closed webhooks refuse.
    cluster.alb.stop();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kube-system");
    deployments
        .patch(
            "ctl",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "game");
    let refusal = serde_json::json!({"metadata": {"annotations": {"probe": "x"}}});
    assert!(
        until(async || matches!(
            ingresses.patch("app", &PatchParams::default(), &Patch::Merge(&refusal)).await,
            Err(kube::Error::Api(ref s)) if s.code == 500 && s.message.contains("no endpoints available for service \"aws-load-balancer-webhook-service\"")
        ))
        .await,
        "the webhooks refuse Ingress updates once the controller has no ready endpoint"
    );

    // The ALB and target group the controller made, as ELB shows them, tagged as it tags them.
    let config = bed.moto.sdk_config(REGION).await;
    let seeded = seed::cluster(&config, "demo", false).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let tag = |k: &str, v: &str| {
        aws_sdk_elasticloadbalancingv2::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
    };
    elb.create_load_balancer()
        .name("k8s-game-app-1234")
        .set_subnets(Some(seeded.subnet_ids.clone()))
        .tags(tag("elbv2.k8s.aws/cluster", "demo"))
        .tags(tag("ingress.k8s.aws/stack", "game/app"))
        .send()
        .await
        .unwrap();
    let tg = elb
        .create_target_group()
        .name("k8s-game-app-5678")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&seeded.vpc_id)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
        .tags(tag("elbv2.k8s.aws/cluster", "demo"))
        .tags(tag("ingress.k8s.aws/stack", "game/app"))
        .send()
        .await
        .unwrap();
    let tg_arn = tg.target_groups()[0].target_group_arn().unwrap().to_owned();

    let forced = bed.run(&["delete", "--force", "--timeout", "30s"], &applied.stdout);
    assert_exit(&forced, 0);
    for wanted in [
        "removed the finalizers of Ingress game/app",
        &format!("removed the finalizers of TargetGroupBinding game/{tg_name}"),
        "its ALB may remain: k8s-game-app-1234",
        &format!("its target group may remain: k8s-game-app-5678 ({tg_arn})"),
        // The one its binding named (the simulator's ARN, not in this ELB).
        &format!("its target group may remain: {tg_name} (arn:aws:elasticloadbalancing:"),
    ] {
        assert!(
            forced.stderr.contains(wanted),
            "{wanted}\n{}",
            forced.stderr
        );
    }
    let left = bed
        .left(&[
            "Ingress",
            "TargetGroupBinding",
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ])
        .await;
    assert!(left.is_empty(), "left: {left:?}");
    assert!(forced.json().get("deploy").is_none());
    // The webhook configurations went before the finalizer patches.
    let hooks = position(&bed.kube, "DELETE", "/validatingwebhookconfigurations/ctl");
    let unfinalized = bed
        .kube
        .requests()
        .iter()
        .rposition(|r| {
            r.method == "PATCH"
                && r.path.ends_with("/namespaces/game/ingresses/app")
                && r.code == 200
        })
        .expect("the finalizer patch went through");
    assert!(hooks < unfinalized, "{hooks} {unfinalized}");
}
