//! Upgrading by re-running the install: the controller installed from the v3.5.0 manifests and
//! IAM policy of this repository's previous release (`tests/fixtures/lbc-v3.5.0/`, given to
//! `eks-patch --manifests` and `irsa ensure --policy-document`), then the same install pipe run
//! again with the built-in manifests and `policies/aws-load-balancer-controller.json`, as a user
//! does after pulling a new release. Everything is updated in place (same objects, new content),
//! the role's policy is replaced, the webhook certificate is kept, the app answers 200
//! throughout, and the upgraded install tears down leaving nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eks_fa_e2e::{Bed, INSTALL, TEARDOWN};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde_json::Value;
use testbed::run::assert_exit;

/// The IAM action controller v3.7.0 added.
const NEW_ACTION: &str = "ec2:ValidateSecurityGroupQuotasForInterface";
const CONTROLLER: &str = "aws-load-balancer-controller";
const WEBHOOKS: &str = "aws-load-balancer-webhook";
const TGB_CRD: &str = "targetgroupbindings.elbv2.k8s.aws";

/// The previous release's manifests and IAM policy.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lbc-v3.5.0")
}

/// The install pipe with the previous release's manifests and policy.
fn old_install() -> String {
    let dir = fixture();
    let policy = dir.join("aws-load-balancer-controller.json");
    let patch = "{bin}/eks-patch --out";
    let policy_flag = "--policy-document {policy}";
    assert!(INSTALL.contains(patch) && INSTALL.contains(policy_flag));
    INSTALL
        .replace(
            patch,
            &format!("{{bin}}/eks-patch --manifests {} --out", dir.display()),
        )
        .replace(
            policy_flag,
            &format!("--policy-document {}", policy.display()),
        )
}

/// What the upgrade must keep or change, read from the cluster.
#[derive(Debug)]
struct Seen {
    objects: Vec<(String, Value)>,
    controller: Deployment,
    app: Deployment,
    role: ClusterRole,
    tgb: CustomResourceDefinition,
    secret: Secret,
    bundles: Vec<String>,
    ingress: Ingress,
}

impl Seen {
    fn uids(&self) -> Vec<(String, String)> {
        self.objects
            .iter()
            .map(|(what, o)| {
                (
                    what.clone(),
                    o["metadata"]["uid"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

async fn get<K>(api: Api<K>, name: &str, objects: &mut Vec<(String, Value)>) -> K
where
    K: Resource
        + Clone
        + std::fmt::Debug
        + k8s_openapi::serde::de::DeserializeOwned
        + k8s_openapi::serde::Serialize,
    K::DynamicType: Default,
{
    let object = api
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("{} {name}: {e}", K::kind(&K::DynamicType::default())));
    objects.push((
        format!("{} {name}", K::kind(&K::DynamicType::default())),
        serde_json::to_value(&object).unwrap(),
    ));
    object
}

async fn seen(client: &Client) -> Seen {
    let mut objects = Vec::new();
    let o = &mut objects;
    let tgb = get(Api::all(client.clone()), TGB_CRD, o).await;
    get::<CustomResourceDefinition>(
        Api::all(client.clone()),
        "ingressclassparams.elbv2.k8s.aws",
        o,
    )
    .await;
    let role = get(Api::all(client.clone()), CONTROLLER, o).await;
    let mutating: MutatingWebhookConfiguration = get(Api::all(client.clone()), WEBHOOKS, o).await;
    let validating: ValidatingWebhookConfiguration =
        get(Api::all(client.clone()), WEBHOOKS, o).await;
    let system = "kube-system";
    let controller = get(Api::namespaced(client.clone(), system), CONTROLLER, o).await;
    let secret = get(
        Api::namespaced(client.clone(), system),
        "aws-load-balancer-tls",
        o,
    )
    .await;
    let game = "game-2048";
    let app = get(Api::namespaced(client.clone(), game), "deployment-2048", o).await;
    let ingress = get(Api::namespaced(client.clone(), game), "2048-ingress", o).await;
    let mut bundles = Vec::new();
    for hook in mutating.webhooks.unwrap_or_default() {
        bundles.push(bundle(hook.client_config.ca_bundle));
    }
    for hook in validating.webhooks.unwrap_or_default() {
        bundles.push(bundle(hook.client_config.ca_bundle));
    }
    Seen {
        objects,
        controller,
        app,
        role,
        tgb,
        secret,
        bundles,
        ingress,
    }
}

fn bundle(ca: Option<k8s_openapi::ByteString>) -> String {
    String::from_utf8(ca.expect("a caBundle").0).expect("PEM")
}

/// The controller's image.
fn image(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

/// Whether a rule of the ClusterRole names the Gateway API's ListenerSets.
fn covers_listenersets(role: &ClusterRole) -> bool {
    role.rules.iter().flatten().any(|r| {
        r.api_groups
            .iter()
            .flatten()
            .any(|g| g == "gateway.networking.k8s.io")
            && r.resources.iter().flatten().any(|x| x == "listenersets")
    })
}

/// The `targetGroupProtocol` enum of the stored TargetGroupBinding version.
fn protocols(crd: &CustomResourceDefinition) -> Vec<String> {
    let stored = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .expect("a stored version");
    let schema = serde_json::to_value(&stored.schema).unwrap();
    schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["targetGroupProtocol"]["enum"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The images of the controller pods that run and are not going away.
async fn controller_pod_images(client: &Client) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let list = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=aws-load-balancer-controller"))
        .await
        .unwrap();
    list.items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .map(|p| {
            p.spec.as_ref().unwrap().containers[0]
                .image
                .clone()
                .unwrap_or_default()
        })
        .collect()
}

/// The controller role's inline policy documents, by name.
async fn role_policies(bed: &Bed, role: &str) -> Vec<(String, Value)> {
    let iam = bed.sdk().await.iam;
    let names = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("ListRolePolicies");
    let mut out = Vec::new();
    for name in names.policy_names() {
        let got = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .expect("GetRolePolicy");
        let text = common::iam::percent_decode(got.policy_document());
        out.push((name.clone(), serde_json::from_str(&text).expect("a policy")));
    }
    out
}

fn actions(policy: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for statement in policy["Statement"].as_array().into_iter().flatten() {
        match &statement["Action"] {
            Value::String(a) => out.push(a.clone()),
            Value::Array(a) => out.extend(a.iter().filter_map(|v| v.as_str().map(str::to_owned))),
            _ => {}
        }
    }
    out
}

/// The HTTP status the shared simulated ALB at `address` gives `host`, or what went wrong.
fn status(address: SocketAddr, host: &str) -> Result<u16, String> {
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&answer);
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {head:.80}"))
}

/// Asks the ALB every 100 ms until `stop` (at most `limit` times), from another thread.
fn poll(
    address: SocketAddr,
    host: String,
    stop: Arc<AtomicBool>,
    limit: usize,
) -> std::thread::JoinHandle<Vec<Result<u16, String>>> {
    std::thread::spawn(move || {
        let mut answers = Vec::new();
        while !stop.load(Ordering::Relaxed) && answers.len() < limit {
            answers.push(status(address, &host));
            std::thread::sleep(Duration::from_millis(100));
        }
        answers
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunning_the_install_upgrades_the_controller_in_place() {
    let bed = Bed::new().await;
    let cluster = bed.create_cluster().await;
    let client = bed.eks.kube.client().await;

    // The previous release: v3.5.0, its policy without the new action.
    let old = bed.pipe(&old_install(), &cluster.to_string());
    assert_exit(&old, 0);
    let old_state = old.json();
    assert_eq!(old_state["patch"]["controllerVersion"], "v3.5.0");
    let before = seen(&client).await;
    assert!(image(&before.controller).ends_with(":v3.5.0"));
    assert!(!covers_listenersets(&before.role));
    assert!(!protocols(&before.tgb).contains(&"GENEVE".to_owned()));
    let role_name = old_state["irsa"][0]["roleName"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy_name = old_state["irsa"][0]["inlinePolicies"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_policies = role_policies(&bed, &role_name).await;
    assert_eq!(old_policies.len(), 1, "{old_policies:?}");
    assert_eq!(old_policies[0].0, policy_name);
    assert!(!actions(&old_policies[0].1).contains(&NEW_ACTION.to_owned()));

    // The app answers through the ALB while the install runs again, and after.
    let url = old_state["deploy"]["url"].as_str().unwrap().to_owned();
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let address: SocketAddr = bed.alb_address().parse().unwrap();
    assert_eq!(status(address, &host), Ok(200));
    let stop = Arc::new(AtomicBool::new(false));
    let during = poll(address, host.clone(), stop.clone(), 1800);

    // This release: the same pipe, with the built-in manifests and the repository's policy.
    let started = Instant::now();
    let new = bed.pipe(INSTALL, &old.stdout);
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let during = during.join().expect("the poller");
    eprintln!(
        "the upgrade run took {:.1} s; the ALB was asked {} times meanwhile",
        took.as_secs_f64(),
        during.len()
    );
    assert_exit(&new, 0);
    let state = new.json();
    assert!(state.get("error").is_none(), "{state}");

    // The version moved; the webhook certificate (CA and serving certificate) did not.
    assert_eq!(state["patch"]["controllerVersion"], "v3.7.0");
    for key in ["caPem", "certPem", "notAfter"] {
        assert_eq!(
            state["patch"]["webhookCertificate"][key],
            old_state["patch"]["webhookCertificate"][key],
            "webhookCertificate.{key}"
        );
    }
    assert_eq!(state["deploy"]["url"], url.as_str());

    // The same objects, updated in place.
    let after = seen(&client).await;
    assert_eq!(after.uids(), before.uids(), "every object kept its uid");
    assert!(
        image(&after.controller).ends_with(":v3.7.0"),
        "{}",
        image(&after.controller)
    );
    assert!(
        after.controller.metadata.generation > before.controller.metadata.generation,
        "the controller rolled out"
    );
    let images = controller_pod_images(&client).await;
    assert_eq!(images.len(), 2, "{images:?}");
    assert!(images.iter().all(|i| i.ends_with(":v3.7.0")), "{images:?}");
    assert!(covers_listenersets(&after.role), "{:?}", after.role.rules);
    assert!(
        protocols(&after.tgb).contains(&"GENEVE".to_owned()),
        "{:?}",
        protocols(&after.tgb)
    );
    // The certificate kept: the Secret's pair and every webhook's caBundle are as before.
    assert_eq!(after.secret.data, before.secret.data);
    let served =
        String::from_utf8(after.secret.data.as_ref().unwrap()["tls.crt"].0.clone()).unwrap();
    assert!(
        served.contains(
            state["patch"]["webhookCertificate"]["certPem"]
                .as_str()
                .unwrap()
                .trim()
        )
    );
    assert_eq!(after.bundles, before.bundles);
    // The app and its Ingress are untouched: no rollout, the same ALB.
    assert_eq!(
        after.app.metadata.generation,
        before.app.metadata.generation
    );
    assert_eq!(
        serde_json::to_value(&after.ingress.status).unwrap(),
        serde_json::to_value(&before.ingress.status).unwrap()
    );
    assert_eq!(bed.alb.count(), 1);

    // The role's policy replaced in place by the repository's.
    let policies = role_policies(&bed, &role_name).await;
    assert_eq!(policies.len(), 1, "{policies:?}");
    assert_eq!(policies[0].0, policy_name);
    assert!(
        actions(&policies[0].1).contains(&NEW_ACTION.to_owned()),
        "{}",
        policies[0].1
    );
    let repo_policy: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../policies/aws-load-balancer-controller.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(policies[0].1, repo_policy);
    assert_ne!(
        state["irsa"][0]["inlinePolicies"][0]["sha256"],
        old_state["irsa"][0]["inlinePolicies"][0]["sha256"]
    );

    // 200 throughout.
    let mut after_answers = Vec::new();
    for _ in 0..5 {
        after_answers.push(status(address, &host));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        during.len() >= 3,
        "asked {} times during the run",
        during.len()
    );
    assert!(
        during.iter().chain(&after_answers).all(|a| a == &Ok(200)),
        "during: {during:?}, after: {after_answers:?}"
    );

    // The upgraded install tears down as a fresh one does.
    let teardown = bed.pipe(TEARDOWN, &new.stdout);
    bed.finish_cluster_delete(&teardown);
    bed.assert_nothing_left().await;
    assert_eq!(bed.alb.count(), 0, "the ALB is gone");
}
