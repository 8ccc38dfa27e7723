//! Admission webhooks in the Kubernetes stand-in, as a kube-rs client sees them: a fail-closed
//! webhook whose Service has no ready endpoint refuses the writes it matches with the API
//! server's error; `Ignore`, unmatched writes, the status subresource, writes to the webhook
//! configurations themselves and writes once an EndpointSlice has a ready endpoint go through.
//! Also the v1 Endpoints deprecation warning and the request log.

use std::io::{Read, Write};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use testbed::albsim::EndpointsSim;
use testbed::kubeapi::KubeApi;
use testbed::sim::DeploymentSim;

const MESSAGE: &str = "Internal error occurred: failed calling webhook \"vingress.example.com\": failed to call webhook: Post \"https://hooks.kube-system.svc:443/validate-ingress?timeout=10s\": no endpoints available for service \"hooks\"";

fn apply(value: Value) -> Patch<Value> {
    Patch::Apply(value)
}

fn params() -> PatchParams {
    PatchParams::apply("test").force()
}

fn api_of(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

async fn put(
    client: &kube::Client,
    value: Value,
    plural: &str,
) -> Result<DynamicObject, kube::Error> {
    let api = api_of(
        client,
        value["apiVersion"].as_str().unwrap(),
        value["kind"].as_str().unwrap(),
        plural,
        value["metadata"]["namespace"].as_str(),
    );
    let name = value["metadata"]["name"].as_str().unwrap().to_owned();
    api.patch(&name, &params(), &apply(value)).await
}

fn webhook_config(failure_policy: Option<&str>) -> Value {
    let mut hook = json!({
        "name": "vingress.example.com",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "clientConfig": {"service": {"namespace": "kube-system", "name": "hooks", "path": "/validate-ingress"}},
        "rules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                   "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"]}],
        "objectSelector": {"matchExpressions": [{"key": "exempt", "operator": "DoesNotExist"}]},
    });
    if let Some(policy) = failure_policy {
        hook["failurePolicy"] = json!(policy);
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
           "metadata": {"name": "hooks"}, "webhooks": [hook]})
}

fn ingress(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": name, "namespace": "default", "labels": labels},
           "spec": {"ingressClassName": "alb",
                    "defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}})
}

fn refused(result: Result<DynamicObject, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_webhooks_refuse_until_their_service_has_a_ready_endpoint() {
    let kube = KubeApi::start();
    let client = kube.client().await;
    put(
        &client,
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "hooks", "namespace": "kube-system"},
        "spec": {"selector": {"app": "hooks"}, "ports": [{"port": 443, "targetPort": 9443}]}}),
        "services",
    )
    .await
    .unwrap();
    put(
        &client,
        webhook_config(None),
        "validatingwebhookconfigurations",
    )
    .await
    .unwrap();

    // No endpoint: the default policy (Fail) refuses a create, as the API server words it.
    let status = refused(put(&client, ingress("web", json!({})), "ingresses").await);
    assert_eq!(status.code, 500);
    assert_eq!(status.reason, "InternalError");
    assert_eq!(status.message, MESSAGE);
    // An object the objectSelector leaves out goes through, and so does its status.
    put(
        &client,
        ingress("exempt", json!({"exempt": "yes"})),
        "ingresses",
    )
    .await
    .unwrap();
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    ingresses
        .patch_status(
            "exempt",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"hostname": "h"}]}}})),
        )
        .await
        .unwrap();
    // Taking the label off is an UPDATE the webhook now matches (new object), refused.
    let status = match ingresses
        .patch(
            "exempt",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": null}})),
        )
        .await
    {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(status.code, 500);
    // Deleting is not an operation the webhook names.
    ingresses
        .delete("exempt", &DeleteParams::default())
        .await
        .unwrap();

    // An EndpointSlice of another Service, or with no ready endpoint, does not help.
    let slice = |service: &str, ready: bool| {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-abcde"), "namespace": "kube-system",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.9"], "conditions": {"ready": ready}}]})
    };
    put(&client, slice("other", true), "endpointslices")
        .await
        .unwrap();
    put(&client, slice("hooks", false), "endpointslices")
        .await
        .unwrap();
    assert_eq!(
        refused(put(&client, ingress("web", json!({})), "ingresses").await).code,
        500
    );
    // A ready endpoint: the webhook answers and allows.
    put(&client, slice("hooks", true), "endpointslices")
        .await
        .unwrap();
    put(&client, ingress("web", json!({})), "ingresses")
        .await
        .unwrap();
    put(&client, slice("hooks", false), "endpointslices")
        .await
        .unwrap();

    // failurePolicy Ignore lets writes through while the webhook cannot be reached.
    put(
        &client,
        webhook_config(Some("Ignore")),
        "validatingwebhookconfigurations",
    )
    .await
    .unwrap();
    put(&client, ingress("second", json!({})), "ingresses")
        .await
        .unwrap();
    // Back to Fail: refused again; deleting the configuration is never intercepted; then the
    // write goes through.
    put(
        &client,
        webhook_config(Some("Fail")),
        "validatingwebhookconfigurations",
    )
    .await
    .unwrap();
    assert_eq!(
        refused(put(&client, ingress("third", json!({})), "ingresses").await).code,
        500
    );
    let configs = api_of(
        &client,
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        None,
    );
    configs
        .delete("hooks", &DeleteParams::default())
        .await
        .unwrap();
    put(&client, ingress("third", json!({})), "ingresses")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_selectors_match_the_namespace_labels() {
    let kube = KubeApi::start();
    let client = kube.client().await;
    let config = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "pods"},
        "webhooks": [{"name": "mpod.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "clientConfig": {"service": {"namespace": "kube-system", "name": "gone", "path": "/mutate-v1-pod"}},
            "namespaceSelector": {"matchExpressions": [{"key": "inject", "operator": "In", "values": ["enabled"]}]},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]}]});
    put(&client, config, "mutatingwebhookconfigurations")
        .await
        .unwrap();
    for (ns, labels) in [
        ("plain", json!({})),
        ("injected", json!({"inject": "enabled"})),
    ] {
        put(&client, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}), "namespaces")
            .await
            .unwrap();
    }
    let pod = |ns: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "x"}]}})
    };
    put(&client, pod("plain"), "pods").await.unwrap();
    let status = refused(put(&client, pod("injected"), "pods").await);
    assert_eq!(status.code, 500);
    assert!(
        status
            .message
            .contains("failed calling webhook \"mpod.example.com\"")
            && status.message.contains("service \"gone\" not found"),
        "{}",
        status.message
    );
}

/// The EndpointSlice simulator: ready endpoints only while the Deployment is available with
/// replicas; none once it is scaled to zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_slices_follow_the_deployment() {
    let kube = KubeApi::start();
    let client = kube.client().await;
    let _deployments = DeploymentSim::start(
        client.clone(),
        testbed::fargate::Profiles::namespaces(&["default"]),
    );
    let _endpoints = EndpointsSim::start(client.clone());
    put(&client, json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}), "services")
        .await
        .unwrap();
    let deployment = |replicas: i32| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}]}}}})
    };
    put(&client, deployment(2), "deployments").await.unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let ready = async |want: usize| {
        for _ in 0..100 {
            let list = slices
                .list(&kube::api::ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .unwrap();
            let count: usize = list
                .items
                .iter()
                .map(|s| {
                    s.endpoints
                        .iter()
                        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                        .count()
                })
                .sum();
            if list.items.len() == 1 && count == want {
                return Some(list.items[0].clone());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    };
    let slice = ready(2).await.expect("two ready endpoints");
    assert_eq!(slice.ports.unwrap()[0].port, Some(8080));
    assert_eq!(slice.address_type, "IPv4");
    put(&client, deployment(0), "deployments").await.unwrap();
    ready(0).await.expect("no ready endpoint at zero replicas");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(0)
    );
}

#[test]
fn reads_of_v1_endpoints_carry_the_deprecation_warning_and_are_logged() {
    let kube = KubeApi::start();
    let address = kube.url.trim_start_matches("http://").to_owned();
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let answer = get("/api/v1/namespaces/default/endpoints");
    assert!(
        answer.contains("Warning: 299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\""),
        "{answer}"
    );
    let answer = get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?limit=5");
    assert!(
        answer.starts_with("HTTP/1.1 200") && !answer.contains("Warning:"),
        "{answer}"
    );
    let log = kube.requests();
    let last = log.last().unwrap();
    assert_eq!(
        (
            last.method.as_str(),
            last.path.as_str(),
            last.query.as_str(),
            last.code
        ),
        (
            "GET",
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            "limit=5",
            200
        )
    );
    assert!(
        log.iter()
            .any(|r| r.path == "/api/v1/namespaces/default/endpoints")
    );
}
