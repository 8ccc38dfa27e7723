//! The real kube-apiserver calls admission webhooks at pod addresses through the test bed's
//! egress proxy, and the webhook simulator answers there with the certificate of the Secret
//! `kube-system/aws-load-balancer-tls`: a certificate the `caBundle` does not trust, or one for
//! another name, fails the write as it does on EKS, and so does a pod address nothing serves.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::{Value, json};
use testbed::controlplane::egress::Connect;
use testbed::controlplane::{ControlPlane, Settings};
use testbed::webhooksim::{self, WebhookSim};

/// The webhook Service of the manifests, and the name its certificate is for.
const SERVICE: &str = "aws-load-balancer-webhook-service";
const SERVICE_DNS: &str = "aws-load-balancer-webhook-service.kube-system.svc";
/// The namespace of the ConfigMaps the test webhook covers.
const NAMESPACE: &str = "webhook-egress";
/// The test webhook's name and the controller's path it calls.
const WEBHOOK: &str = "vconfigmap.webhook-egress.test";
const PATH: &str = "/validate-networking-v1-ingress";
/// How long a change takes to reach the API server's informers (webhook configurations,
/// Services, EndpointSlices) and the simulator's watches, at most.
const SETTLE: Duration = Duration::from_secs(60);

/// A CA of the test's own.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A serving certificate for `dns` and its key, PEM.
    fn serving(&self, dns: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec![dns.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, dns);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn b64(text: &str) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text)
}

async fn create<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + k8s_openapi::serde::de::DeserializeOwned
        + k8s_openapi::serde::Serialize,
{
    let object: K = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("cannot create {object:?}: {e}"))
}

/// Where the webhook Service's endpoint comes from.
enum Backend<'a> {
    /// A hand-made EndpointSlice with one ready endpoint at this address, port 9443 (no pod, no
    /// selector on the Service).
    Slice(&'a str),
    /// The Service selects the controller's pods; kube-controller-manager makes the slices.
    Pods,
}

/// The namespace of the test ConfigMaps, the webhook Service and its endpoints, and a
/// ValidatingWebhookConfiguration (failurePolicy Fail) on ConfigMaps labelled
/// `webhook-egress=test` in that namespace, trusting `ca_bundle`.
async fn install(client: &kube::Client, ca_bundle: &str, backend: Backend<'_>) {
    create::<Namespace>(
        &Api::all(client.clone()),
        json!({"metadata": {"name": NAMESPACE}}),
    )
    .await;
    let services: Api<Service> = Api::namespaced(client.clone(), webhooksim::NAMESPACE);
    let (selector, target_port) = match backend {
        Backend::Slice(_) => (Value::Null, json!(9443)),
        Backend::Pods => (
            json!({"app.kubernetes.io/name": "aws-load-balancer-controller"}),
            json!("webhook-server"),
        ),
    };
    create(
        &services,
        json!({
            "metadata": {"name": SERVICE},
            "spec": {"selector": selector, "ports": [{
                "name": "webhook-server", "port": 443, "targetPort": target_port,
                "protocol": "TCP"
            }]}
        }),
    )
    .await;
    if let Backend::Slice(ip) = backend {
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), webhooksim::NAMESPACE);
        create(
            &slices,
            json!({
                "metadata": {"name": format!("{SERVICE}-by-hand"),
                    "labels": {"kubernetes.io/service-name": SERVICE}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
                "ports": [{"name": "webhook-server", "port": 9443, "protocol": "TCP"}]
            }),
        )
        .await;
    }
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    create(
        &configs,
        json!({
            "metadata": {"name": "webhook-egress-test"},
            "webhooks": [{
                "name": WEBHOOK,
                "admissionReviewVersions": ["v1"],
                "clientConfig": {
                    "caBundle": b64(ca_bundle),
                    "service": {"name": SERVICE, "namespace": webhooksim::NAMESPACE, "path": PATH}
                },
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": 10,
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                "objectSelector": {"matchLabels": {"webhook-egress": "test"}},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                    "resources": ["configmaps"]}]
            }]
        }),
    )
    .await;
}

/// Writes the webhook Secret as `eks-patch` renders it.
async fn put_secret(client: &kube::Client, (cert, key): &(String, String), ca: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), webhooksim::NAMESPACE);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": webhooksim::TLS_SECRET},
        "type": "kubernetes.io/tls",
        "data": {"ca.crt": b64(ca), "tls.crt": b64(cert), "tls.key": b64(key)}
    });
    secrets
        .patch(
            webhooksim::TLS_SECRET,
            &PatchParams::apply("webhook-egress-test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
}

type Created = Result<ConfigMap, kube::Error>;

fn message(outcome: &Created) -> String {
    match outcome {
        Ok(_) => "created".to_owned(),
        Err(kube::Error::Api(status)) => status.message.clone(),
        Err(other) => other.to_string(),
    }
}

/// Creates ConfigMaps the webhook covers until one's outcome is `wanted` (a change takes a
/// moment to reach the API server and the simulator); returns its name and outcome. Panics
/// with the last outcome after [`SETTLE`].
async fn create_until(
    client: &kube::Client,
    wanted: &str,
    done: impl Fn(&Created) -> bool,
) -> (String, Created) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let deadline = Instant::now() + SETTLE;
    loop {
        let name = format!(
            "cm-{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let object: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"webhook-egress": "test"}},
            "data": {"k": "v"}
        }))
        .unwrap();
        let outcome = configmaps.create(&PostParams::default(), &object).await;
        if done(&outcome) {
            return (name, outcome);
        }
        assert!(
            Instant::now() < deadline,
            "no ConfigMap create {wanted} within {SETTLE:?}; the last: {}",
            message(&outcome)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn no_controller_manager() -> Settings {
    Settings {
        controller_manager: false,
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_calls_reach_the_sim_through_the_egress_proxy_once_the_secret_is_there() {
    let cluster = ControlPlane::start_with(no_controller_manager());
    let client = cluster.client().await;
    let egress = cluster.egress().expect("the egress proxy is on by default");
    let ca = Ca::new("aws-load-balancer-webhook-ca");
    install(&client, &ca.pem(), Backend::Slice("10.0.9.9")).await;
    let sim = WebhookSim::start(cluster.simulator_client().await, egress.routes());
    let pod: SocketAddr = "10.0.9.9:9443".parse().unwrap();
    let server = sim.serve(pod, "pod-10-0-9-9").unwrap();
    assert_eq!(egress.routes().get(pod), Some(server));

    // No Secret yet: the pod's server refuses the handshake, and the write fails closed.
    let (_, refused) = create_until(&client, "refused by the webhook", Result::is_err).await;
    let text = message(&refused);
    eprintln!("refused: {text}");
    assert!(
        text.contains(&format!("failed calling webhook \"{WEBHOOK}\"")) && text.contains("tls"),
        "{text}"
    );
    assert_eq!(sim.cert().state(), webhooksim::CertState::Missing);
    assert!(
        egress.connects().contains(&Connect {
            target: "10.0.9.9:9443".into(),
            routed_to: Some(server),
            status: 200
        }),
        "{:?}",
        egress.connects()
    );
    assert!(sim.reviews().is_empty());

    put_secret(&client, &ca.serving(SERVICE_DNS), &ca.pem()).await;
    let (name, created) = create_until(&client, "allowed", Result::is_ok).await;
    let created = created.unwrap();
    assert_eq!(sim.cert().state(), webhooksim::CertState::Loaded);
    let reviews = sim.reviews();
    let review = reviews
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("the create of {name} was reviewed: {reviews:?}"));
    assert_eq!(review.server, "pod-10-0-9-9");
    assert_eq!(review.path, PATH);
    assert_eq!(review.operation, "CREATE");
    assert_eq!(review.kind, "ConfigMap");
    assert_eq!(review.namespace, NAMESPACE);
    assert!(!review.uid.is_empty());
    assert_eq!(created.metadata.name.as_deref(), Some(name.as_str()));
    assert!(
        egress
            .connects()
            .iter()
            .all(|c| c.target == "10.0.9.9:9443" && c.status == 200),
        "the API server dialled the endpoint's pod address, nothing else: {:?}",
        egress.connects()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_ca_bundle_does_not_trust_or_for_another_name_fails_the_write() {
    let cluster = ControlPlane::start_with(no_controller_manager());
    let client = cluster.client().await;
    let egress = cluster.egress().expect("the egress proxy is on by default");
    let trusted = Ca::new("the caBundle's CA");
    let other = Ca::new("another CA");
    install(&client, &trusted.pem(), Backend::Slice("10.0.9.9")).await;
    let sim = WebhookSim::start(cluster.simulator_client().await, egress.routes());
    sim.serve("10.0.9.9:9443".parse().unwrap(), "pod-10-0-9-9")
        .unwrap();

    // Signed by a CA the caBundle does not hold.
    put_secret(&client, &other.serving(SERVICE_DNS), &other.pem()).await;
    let (_, refused) = create_until(&client, "refused over the CA", |outcome| {
        message(outcome).contains("x509")
    })
    .await;
    let text = message(&refused);
    eprintln!("refused: {text}");
    assert!(
        text.contains(&format!("failed calling webhook \"{WEBHOOK}\""))
            && text.contains("x509: certificate signed by unknown authority"),
        "{text}"
    );

    // The right CA, but a certificate for another Service's name.
    put_secret(
        &client,
        &trusted.serving("other-webhook-service.kube-system.svc"),
        &trusted.pem(),
    )
    .await;
    let (_, refused) = create_until(&client, "refused over the name", |outcome| {
        message(outcome).contains("x509: certificate is valid for")
    })
    .await;
    let text = message(&refused);
    eprintln!("refused: {text}");
    assert!(
        text.contains(&format!("not {SERVICE_DNS}")),
        "the API server checks the Service's DNS name: {text}"
    );
    assert!(sim.reviews().is_empty(), "{:?}", sim.reviews());

    // The certificate eks-patch renders: served from the next handshake on.
    put_secret(&client, &trusted.serving(SERVICE_DNS), &trusted.pem()).await;
    let (name, _) = create_until(&client, "allowed", Result::is_ok).await;
    assert!(sim.reviews().iter().any(|r| r.name == name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_address_nothing_serves_fails_the_write() {
    let cluster = ControlPlane::start_with(no_controller_manager());
    let client = cluster.client().await;
    let egress = cluster.egress().expect("the egress proxy is on by default");
    let ca = Ca::new("aws-load-balancer-webhook-ca");
    install(&client, &ca.pem(), Backend::Slice("10.0.9.8")).await;
    put_secret(&client, &ca.serving(SERVICE_DNS), &ca.pem()).await;
    let sim = WebhookSim::start(cluster.simulator_client().await, egress.routes());

    let (_, refused) = create_until(&client, "refused by the webhook", Result::is_err).await;
    let text = message(&refused);
    eprintln!("refused: {text}");
    assert!(
        text.contains(&format!("failed calling webhook \"{WEBHOOK}\""))
            && text.contains("10.0.9.8:9443")
            && text.contains("502"),
        "{text}"
    );
    assert!(
        egress.connects().contains(&Connect {
            target: "10.0.9.8:9443".into(),
            routed_to: None,
            status: 502
        }),
        "{:?}",
        egress.connects()
    );

    // The pod comes up at that address.
    sim.serve("10.0.9.8:9443".parse().unwrap(), "pod-10-0-9-8")
        .unwrap();
    let (name, _) = create_until(&client, "allowed", Result::is_ok).await;
    assert!(sim.reviews().iter().any(|r| r.name == name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controllers_running_pods_are_served_at_their_address() {
    let cluster = ControlPlane::start();
    let client = cluster.client().await;
    let egress = cluster.egress().expect("the egress proxy is on by default");
    let ca = Ca::new("aws-load-balancer-webhook-ca");
    install(&client, &ca.pem(), Backend::Pods).await;
    put_secret(&client, &ca.serving(SERVICE_DNS), &ca.pem()).await;
    let sim = WebhookSim::start(cluster.simulator_client().await, egress.routes());

    // A controller pod as the Fargate simulator leaves it: bound to its node, Running, Ready,
    // with an address of the VPC; kube-controller-manager puts it into the Service's slices.
    let node = "fargate-ip-10-0-7-7.us-east-2.compute.internal";
    create::<Node>(
        &Api::all(client.clone()),
        json!({"metadata": {"name": node}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), webhooksim::NAMESPACE);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "aws-load-balancer-controller-0",
            "labels": {"app.kubernetes.io/name": "aws-load-balancer-controller"}},
        "spec": {"nodeName": node, "automountServiceAccountToken": false, "containers": [{
            "name": "aws-load-balancer-controller",
            "image": "public.ecr.aws/eks/aws-load-balancer-controller:v2.14.1",
            "ports": [{"name": "webhook-server", "containerPort": 9443, "protocol": "TCP"}]
        }]}
    }))
    .unwrap();
    // The service-account controller makes kube-system's `default` a moment after it starts.
    let deadline = Instant::now() + SETTLE;
    while let Err(e) = pods.create(&PostParams::default(), &pod).await {
        assert!(Instant::now() < deadline, "cannot create the pod: {e}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let address: SocketAddr = "10.0.7.7:9443".parse().unwrap();
    let status = json!({"status": {
        "phase": "Running", "podIP": "10.0.7.7", "podIPs": [{"ip": "10.0.7.7"}],
        "hostIP": "10.0.7.7", "hostIPs": [{"ip": "10.0.7.7"}],
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": "True"},
            {"type": "Ready", "status": "True"}
        ]
    }});
    Api::<Pod>::namespaced(cluster.simulator_client().await, webhooksim::NAMESPACE)
        .patch_status(
            "aws-load-balancer-controller-0",
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();

    let (name, _) = create_until(&client, "allowed", Result::is_ok).await;
    let reviews = sim.reviews();
    assert!(
        reviews
            .iter()
            .any(|r| r.name == name && r.server == "kube-system/aws-load-balancer-controller-0"),
        "{reviews:?}"
    );
    let served = sim.served();
    assert_eq!(served.len(), 1, "{served:?}");
    assert_eq!(served[0].0, "kube-system/aws-load-balancer-controller-0");
    assert_eq!(served[0].1, address);
    assert_eq!(egress.routes().get(address), Some(served[0].2));
    assert!(
        egress
            .connects()
            .iter()
            .any(|c| c.target == "10.0.7.7:9443" && c.status == 200)
    );

    // The pod goes: its server and route go with it.
    pods.delete(
        "aws-load-balancer-controller-0",
        &DeleteParams::default().grace_period(0),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + SETTLE;
    while egress.routes().get(address).is_some() || !sim.served().is_empty() {
        assert!(
            Instant::now() < deadline,
            "still served: {:?}",
            sim.served()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
