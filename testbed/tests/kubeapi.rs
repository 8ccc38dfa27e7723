//! The Kubernetes API server stand-in and the simulators, driven by a real kube-rs 5 client that
//! reaches the server through the kubeconfig it writes, as our binaries will.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use testbed::fargate::Profiles;
use testbed::kubeapi::{KubeApi, Settings};
use testbed::sim::DeploymentSim;

/// Every test body runs under this bound.
const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {LIMIT:?}"))
}

/// Waits (at most 5 s) until `check` holds.
async fn eventually(check: impl Fn() -> bool) {
    let began = std::time::Instant::now();
    while !check() {
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "condition not met within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A client built exactly as a binary given `--kubeconfig` builds it.
async fn client_for(api: &KubeApi) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(api.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    Client::try_from(config).unwrap()
}

fn api_error(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn configmap(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        },
        "data": {"k": "v"},
    }))
    .unwrap()
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    })
}

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.testbed.io"},
        "spec": {
            "group": "example.testbed.io",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}}
            }]
        }
    })
}

fn is_available(d: Option<&Deployment>) -> bool {
    d.and_then(|d| d.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
}

fn observed(generation: i64) -> impl Fn(Option<&Deployment>) -> bool {
    move |d| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.observed_generation)
            .is_some_and(|g| g >= generation)
    }
}

#[tokio::test]
async fn discovery_serves_built_in_types_and_a_new_crd() {
    let api = KubeApi::start();
    let client = client_for(&api).await;
    bounded("discovery", async {
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(version.major, "1");

        let discovery = Discovery::new(client.clone()).run().await.unwrap();
        let (ar, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .expect("deployments are discovered");
        assert_eq!(ar.plural, "deployments");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
        let (_, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
            .unwrap();
        assert_eq!(caps.scope, Scope::Cluster);
        for (group, kind) in [
            ("networking.k8s.io", "Ingress"),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
            ),
            ("discovery.k8s.io", "EndpointSlice"),
            ("coordination.k8s.io", "Lease"),
        ] {
            assert!(
                discovery
                    .resolve_gvk(&GroupVersionKind::gvk(group, "v1", kind))
                    .is_some(),
                "{kind}"
            );
        }
        assert!(!discovery.has_group("example.testbed.io"));

        // A CRD: established, then discovered and served.
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.patch(
            "widgets.example.testbed.io",
            &PatchParams::apply("test").force(),
            &Patch::Apply(widget_crd()),
        )
        .await
        .unwrap();
        let established = await_condition(
            crds.clone(),
            "widgets.example.testbed.io",
            conditions::is_crd_established(),
        )
        .await
        .unwrap()
        .unwrap();
        let status = established.status.unwrap();
        let names_accepted = status
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "NamesAccepted" && c.status == "True");
        assert!(names_accepted);
        assert_eq!(status.accepted_names.unwrap().kind, "Widget");

        let discovery = Discovery::new(client.clone()).run().await.unwrap();
        let (ar, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("example.testbed.io", "v1", "Widget"))
            .expect("the CRD's kind is discovered");
        assert_eq!(caps.scope, Scope::Namespaced);
        let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
        let widget: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "example.testbed.io/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 3}
        }))
        .unwrap();
        widgets
            .create(&PostParams::default(), &widget)
            .await
            .unwrap();
        assert_eq!(
            widgets
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            1
        );

        // Deleting the CRD stops serving the type and drops its objects.
        crds.delete("widgets.example.testbed.io", &DeleteParams::default())
            .await
            .unwrap();
        let (code, reason) = api_error(widgets.list(&ListParams::default()).await.unwrap_err());
        assert_eq!((code, reason.as_str()), (404, "NotFound"));
        let discovery = Discovery::new(client.clone()).run().await.unwrap();
        assert!(!discovery.has_group("example.testbed.io"));
        assert!(
            api.created_objects().is_empty(),
            "{:?}",
            api.created_objects()
        );
    })
    .await;
}

#[tokio::test]
async fn server_side_apply_creates_then_merges() {
    let api = KubeApi::start();
    let client = client_for(&api).await;
    bounded("apply", async {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let pp = PatchParams::apply("eks-deploy").force();
        let created = deployments
            .patch("web", &pp, &Patch::Apply(deployment("web")))
            .await
            .unwrap();
        assert_eq!(created.metadata.generation, Some(1));
        assert!(created.metadata.uid.is_some());
        assert!(created.metadata.creation_timestamp.is_some());
        assert_eq!(created.namespace().as_deref(), Some("default"));
        let rv1: u64 = created.resource_version().unwrap().parse().unwrap();

        // Another writer adds an annotation and a label.
        deployments
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"other": "kept"}, "labels": {"extra": "yes"}}})),
            )
            .await
            .unwrap();

        // The same manager applies a changed manifest.
        let mut changed = deployment("web");
        changed["metadata"]["annotations"] = json!({"ours": "1"});
        changed["spec"]["replicas"] = json!(3);
        let updated = deployments
            .patch("web", &pp, &Patch::Apply(&changed))
            .await
            .unwrap();
        let rv2: u64 = updated.resource_version().unwrap().parse().unwrap();
        assert!(rv2 > rv1, "{rv2} > {rv1}");
        assert_eq!(updated.metadata.generation, Some(2));
        let annotations = updated.annotations();
        assert_eq!(annotations.get("other").map(String::as_str), Some("kept"));
        assert_eq!(annotations.get("ours").map(String::as_str), Some("1"));
        assert_eq!(updated.labels().get("extra").map(String::as_str), Some("yes"));
        let spec = updated.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(
            spec.template.spec.as_ref().unwrap().containers[0].image.as_deref(),
            Some("nginx:1.27")
        );

        // Applying the same again changes nothing.
        let again = deployments
            .patch("web", &pp, &Patch::Apply(&changed))
            .await
            .unwrap();
        assert_eq!(again.resource_version(), updated.resource_version());
    })
    .await;
}

#[test]
fn raw_http_codes_and_content_types() {
    let api = KubeApi::start();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("{}/api/v1/namespaces/default/configmaps/raw", api.url);
    let body =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"raw"},"data":{"a":"1"}}"#;

    let mut missing_manager = agent
        .patch(&url)
        .header("Content-Type", "application/apply-patch+yaml")
        .send(body)
        .unwrap();
    assert_eq!(missing_manager.status().as_u16(), 400);
    let status: Value =
        serde_json::from_str(&missing_manager.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(status["kind"], "Status");

    let created = agent
        .patch(format!("{url}?fieldManager=raw&force=true"))
        .header("Content-Type", "application/apply-patch+yaml")
        .send(body)
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let again = agent
        .patch(format!("{url}?fieldManager=raw"))
        .header("Content-Type", "application/apply-patch+yaml")
        .send("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: raw\ndata:\n  b: '2'\n")
        .unwrap();
    assert_eq!(
        again.status().as_u16(),
        200,
        "YAML apply bodies are read too"
    );

    let unknown_patch = agent
        .patch(&url)
        .header("Content-Type", "text/plain")
        .send("x")
        .unwrap();
    assert_eq!(unknown_patch.status().as_u16(), 415);

    let mut got = agent.get(&url).call().unwrap();
    assert_eq!(got.status().as_u16(), 200);
    let cm: Value = serde_json::from_str(&got.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(cm["data"], json!({"a": "1", "b": "2"}));

    // A client asking for aggregated discovery gets the legacy document as plain JSON.
    for path in ["/apis", "/api"] {
        let mut answer = agent
            .get(format!("{}{path}", api.url))
            .header(
                "Accept",
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
            )
            .call()
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        let content_type = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "application/json");
        let doc: Value =
            serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
        let expected = if path == "/apis" {
            "APIGroupList"
        } else {
            "APIVersions"
        };
        assert_eq!(doc["kind"], expected);
    }

    let wrong_method = agent
        .post(format!("{}/apis", api.url))
        .send_empty()
        .unwrap();
    assert_eq!(wrong_method.status().as_u16(), 405);
    let unknown = agent
        .get(format!("{}/apis/nothing.example/v1/things", api.url))
        .call()
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}

#[tokio::test]
async fn get_and_list_with_selectors() {
    let api = KubeApi::start();
    let client = client_for(&api).await;
    bounded("list", async {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap();
        let ns = namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));

        let default: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let other: Api<ConfigMap> = Api::namespaced(client.clone(), "other");
        let pp = PostParams::default();
        default
            .create(
                &pp,
                &configmap("web-a", &[("app", "web"), ("tier", "front")]),
            )
            .await
            .unwrap();
        default
            .create(&pp, &configmap("web-b", &[("app", "web"), ("tier", "db")]))
            .await
            .unwrap();
        default
            .create(&pp, &configmap("api", &[("app", "api")]))
            .await
            .unwrap();
        other
            .create(&pp, &configmap("web-c", &[("app", "web")]))
            .await
            .unwrap();

        let names = |list: kube::core::ObjectList<ConfigMap>| {
            let mut names: Vec<String> = list.items.iter().map(|c| c.name_any()).collect();
            names.sort();
            names
        };
        let list = default
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        assert!(list.metadata.resource_version.is_some());
        assert_eq!(names(list), ["web-a", "web-b"]);
        let list = default
            .list(&ListParams::default().labels("app=web,tier!=db"))
            .await
            .unwrap();
        assert_eq!(names(list), ["web-a"]);
        let list = default
            .list(&ListParams::default().labels("tier"))
            .await
            .unwrap();
        assert_eq!(names(list), ["web-a", "web-b"]);
        let list = default
            .list(&ListParams::default().labels("app in (api)"))
            .await
            .unwrap();
        assert_eq!(names(list), ["api"]);
        let list = default
            .list(&ListParams::default().fields("metadata.name=api"))
            .await
            .unwrap();
        assert_eq!(names(list), ["api"]);

        let everywhere: Api<ConfigMap> = Api::all(client.clone());
        let list = everywhere
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        assert_eq!(names(list), ["web-a", "web-b", "web-c"]);
        let list = everywhere
            .list(&ListParams::default().fields("metadata.namespace=other"))
            .await
            .unwrap();
        assert_eq!(names(list), ["web-c"]);

        let got = default.get("web-a").await.unwrap();
        assert_eq!(got.labels().get("tier").map(String::as_str), Some("front"));
        assert_eq!(got.data.unwrap()["k"], "v");
        assert!(default.get_opt("nothing").await.unwrap().is_none());

        let stored = api.objects();
        assert!(
            stored
                .iter()
                .any(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "web-c")
        );
        assert_eq!(
            api.created_objects().len(),
            5,
            "4 configmaps and a namespace"
        );
    })
    .await;
}

#[tokio::test]
async fn errors_come_back_as_status() {
    let api = KubeApi::start();
    let client = client_for(&api).await;
    bounded("errors", async {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let (code, reason) = api_error(cms.get("missing").await.unwrap_err());
        assert_eq!((code, reason.as_str()), (404, "NotFound"));

        let made = cms
            .create(&PostParams::default(), &configmap("dup", &[]))
            .await
            .unwrap();
        let (code, reason) = api_error(
            cms.create(&PostParams::default(), &configmap("dup", &[]))
                .await
                .unwrap_err(),
        );
        assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));

        // A replace with a stale resourceVersion is a conflict; with the current one it works.
        let mut first = made.clone();
        cms.patch(
            "dup",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "2"}})),
        )
        .await
        .unwrap();
        first.data = Some([("k".to_owned(), "3".to_owned())].into());
        let (code, reason) = api_error(
            cms.replace("dup", &PostParams::default(), &first)
                .await
                .unwrap_err(),
        );
        assert_eq!((code, reason.as_str()), (409, "Conflict"));
        let mut current = cms.get("dup").await.unwrap();
        current.data = Some([("k".to_owned(), "4".to_owned())].into());
        let replaced = cms
            .replace("dup", &PostParams::default(), &current)
            .await
            .unwrap();
        assert_eq!(replaced.data.unwrap()["k"], "4");

        let (code, reason) = api_error(
            cms.delete("missing", &DeleteParams::default())
                .await
                .unwrap_err(),
        );
        assert_eq!((code, reason.as_str()), (404, "NotFound"));

        // A namespace that does not exist, and a type that is not served.
        let nowhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
        let (code, reason) = api_error(
            nowhere
                .create(&PostParams::default(), &configmap("x", &[]))
                .await
                .unwrap_err(),
        );
        assert_eq!((code, reason.as_str()), (404, "NotFound"));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("nothing.example", "v1", "Thing"));
        let things: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
        let (code, reason) = api_error(things.list(&ListParams::default()).await.unwrap_err());
        assert_eq!((code, reason.as_str()), (404, "NotFound"));

        // An invalid name.
        let (code, reason) = api_error(
            cms.create(&PostParams::default(), &configmap("Not_Valid", &[]))
                .await
                .unwrap_err(),
        );
        assert_eq!((code, reason.as_str()), (422, "Invalid"));
    })
    .await;
}

#[tokio::test]
async fn merge_strategic_and_json_patches() {
    let api = KubeApi::start();
    let client = client_for(&api).await;
    bounded("patches", async {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        cms.create(
            &PostParams::default(),
            &configmap("p", &[("a", "1"), ("b", "2")]),
        )
        .await
        .unwrap();
        let merged = cms
            .patch(
                "p",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"labels": {"a": null, "c": "3"}}, "data": {"x": "y"}}),
                ),
            )
            .await
            .unwrap();
        let labels: BTreeMap<String, String> = merged.labels().clone();
        assert_eq!(
            labels,
            BTreeMap::from([("b".into(), "2".into()), ("c".into(), "3".into())])
        );
        assert_eq!(merged.data.as_ref().unwrap().len(), 2);

        let strategic = cms
            .patch(
                "p",
                &PatchParams::default(),
                &Patch::Strategic(json!({"data": {"k": null}})),
            )
            .await
            .unwrap();
        assert_eq!(
            strategic.data.unwrap(),
            BTreeMap::from([("x".to_owned(), "y".to_owned())])
        );

        // JSON patch through the client's raw request (kube's Patch::Json needs a feature).
        let json_patch = |ops: Value| {
            http::Request::patch("/api/v1/namespaces/default/configmaps/p")
                .header("Content-Type", "application/json-patch+json")
                .body(serde_json::to_vec(&ops).unwrap())
                .unwrap()
        };
        let patched: ConfigMap = client
            .request(json_patch(json!([
                {"op": "test", "path": "/data/x", "value": "y"},
                {"op": "add", "path": "/data/z", "value": "26"},
                {"op": "replace", "path": "/metadata/labels/b", "value": "two"},
                {"op": "remove", "path": "/data/x"}
            ])))
            .await
            .unwrap();
        assert_eq!(patched.labels()["b"], "two");
        assert_eq!(
            patched.data.unwrap(),
            BTreeMap::from([("z".to_owned(), "26".to_owned())])
        );
        let failed = client
            .request::<ConfigMap>(json_patch(
                json!([{"op": "test", "path": "/data/z", "value": "0"}]),
            ))
            .await
            .unwrap_err();
        assert_eq!(api_error(failed), (422, "Invalid".to_owned()));
        let malformed = client
            .request::<ConfigMap>(json_patch(json!({"op": "add"})))
            .await
            .unwrap_err();
        assert_eq!(api_error(malformed), (400, "BadRequest".to_owned()));
        let (code, reason) = api_error(
            cms.patch("absent", &PatchParams::default(), &Patch::Merge(json!({})))
                .await
                .unwrap_err(),
        );
        assert_eq!((code, reason.as_str()), (404, "NotFound"));
    })
    .await;
}

#[tokio::test]
async fn status_subresource_and_main_resource_are_separate() {
    let api = KubeApi::start();
    let client = client_for(&api).await;
    bounded("status", async {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let mut body = deployment("st");
        body["status"] = json!({"replicas": 9});
        let created = deployments
            .patch("st", &PatchParams::apply("t"), &Patch::Apply(&body))
            .await
            .unwrap();
        assert!(
            created.status.as_ref().and_then(|s| s.replicas).is_none(),
            "status is not set through the main resource"
        );

        let with_status = deployments
            .patch_status(
                "st",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 7}, "status": {"observedGeneration": 1, "replicas": 2}})),
            )
            .await
            .unwrap();
        assert_eq!(with_status.status.as_ref().unwrap().replicas, Some(2));
        assert_eq!(with_status.spec.as_ref().unwrap().replicas, Some(2), "spec untouched");
        assert_eq!(with_status.metadata.generation, Some(1));
        let via_get = deployments.get_status("st").await.unwrap();
        assert_eq!(via_get.status.unwrap().observed_generation, Some(1));

        let spec_patch = deployments
            .patch(
                "st",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 4}, "status": {"replicas": 100}})),
            )
            .await
            .unwrap();
        assert_eq!(spec_patch.spec.as_ref().unwrap().replicas, Some(4));
        assert_eq!(spec_patch.status.as_ref().unwrap().replicas, Some(2), "status untouched");
        assert_eq!(spec_patch.metadata.generation, Some(2));

        // PUT on the status subresource too.
        let mut current = deployments.get("st").await.unwrap();
        current.status.as_mut().unwrap().ready_replicas = Some(1);
        current.spec.as_mut().unwrap().replicas = Some(50);
        let replaced = deployments
            .replace_status("st", &PostParams::default(), &current)
            .await
            .unwrap();
        assert_eq!(replaced.status.unwrap().ready_replicas, Some(1));
        assert_eq!(replaced.spec.unwrap().replicas, Some(4));
    })
    .await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let api = KubeApi::start();
    let client = client_for(&api).await;
    bounded("finalizers", async {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let mut held = configmap("held", &[]);
        held.metadata.finalizers = Some(vec!["example.testbed.io/hold".into()]);
        let made = cms.create(&PostParams::default(), &held).await.unwrap();
        let mut events = cms
            .watch(
                &WatchParams::default().fields("metadata.name=held"),
                &made.resource_version().unwrap(),
            )
            .await
            .unwrap()
            .boxed();

        let deleted = cms.delete("held", &DeleteParams::default()).await.unwrap();
        let marked = deleted
            .left()
            .expect("the object comes back while it is held");
        let since = marked
            .metadata
            .deletion_timestamp
            .clone()
            .expect("deletionTimestamp is set");
        // Deleting again keeps the first deletionTimestamp.
        let again = cms
            .delete("held", &DeleteParams::default())
            .await
            .unwrap()
            .left()
            .unwrap();
        assert_eq!(again.metadata.deletion_timestamp, Some(since));
        assert!(cms.get("held").await.is_ok());
        match events.try_next().await.unwrap().unwrap() {
            WatchEvent::Modified(cm) => assert!(cm.metadata.deletion_timestamp.is_some()),
            other => panic!("expected MODIFIED, got {other:?}"),
        }

        cms.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
        match events.try_next().await.unwrap().unwrap() {
            WatchEvent::Deleted(cm) => assert_eq!(cm.name_any(), "held"),
            other => panic!("expected DELETED, got {other:?}"),
        }
        assert!(cms.get_opt("held").await.unwrap().is_none());

        // A namespace deletes what is in it, and waits for what is held.
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let inside: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
        inside
            .create(&PostParams::default(), &configmap("plain", &[]))
            .await
            .unwrap();
        let mut held = configmap("held", &[]);
        held.metadata.finalizers = Some(vec!["example.testbed.io/hold".into()]);
        inside.create(&PostParams::default(), &held).await.unwrap();
        namespaces
            .delete("doomed", &DeleteParams::default())
            .await
            .unwrap();
        let terminating = namespaces.get("doomed").await.unwrap();
        assert_eq!(
            terminating.status.unwrap().phase.as_deref(),
            Some("Terminating")
        );
        assert!(inside.get_opt("plain").await.unwrap().is_none());
        assert!(
            inside
                .get("held")
                .await
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_some()
        );
        let (code, reason) = api_error(
            inside
                .create(&PostParams::default(), &configmap("late", &[]))
                .await
                .unwrap_err(),
        );
        assert_eq!((code, reason.as_str()), (403, "Forbidden"));
        let uid = terminating_uid(&namespaces).await;
        inside
            .patch(
                "held",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": []}})),
            )
            .await
            .unwrap();
        await_condition(namespaces.clone(), "doomed", conditions::is_deleted(&uid))
            .await
            .unwrap();
        assert!(
            api.created_objects().is_empty(),
            "{:?}",
            api.created_objects()
        );
    })
    .await;
}

async fn terminating_uid(namespaces: &Api<Namespace>) -> String {
    namespaces.get("doomed").await.unwrap().uid().unwrap()
}

#[tokio::test]
async fn deployment_sim_marks_available_and_waits_time_out_without_it() {
    let api = KubeApi::start();
    let client = client_for(&api).await;
    bounded("deployment sim", async {
        let sim = DeploymentSim::start(client.clone(), Profiles::namespaces(&["default"]));
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        deployments
            .patch("web", &PatchParams::apply("eks-deploy"), &Patch::Apply(deployment("web")))
            .await
            .unwrap();
        let ready = tokio::time::timeout(Duration::from_secs(10), await_condition(deployments.clone(), "web", is_available))
            .await
            .expect("the sim marks the deployment available")
            .unwrap()
            .unwrap();
        let status = ready.status.unwrap();
        assert_eq!(
            (status.observed_generation, status.replicas, status.available_replicas, status.ready_replicas),
            (Some(1), Some(2), Some(2), Some(2))
        );
        assert!(
            await_condition(deployments.clone(), "web", conditions::is_deployment_completed())
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(sim.rollouts("default", "web"), 1);
        // The sim records its write once the server answered it, which may come just after
        // the watch above saw the change.
        eventually(|| sim.seen("default", "web").unwrap().marked_generation == 1).await;

        sim.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!sim.is_running());
        let restarted = deployments
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}})),
            )
            .await
            .unwrap();
        let generation = restarted.metadata.generation.unwrap();
        assert_eq!(generation, 2);
        let waited = tokio::time::timeout(
            Duration::from_secs(2),
            await_condition(deployments.clone(), "web", observed(generation)),
        )
        .await;
        assert!(waited.is_err(), "without the sim nothing marks the rollout");
    })
    .await;
}

#[tokio::test]
async fn deployment_sim_counts_rollouts() {
    let api = KubeApi::start();
    let client = client_for(&api).await;
    bounded("rollouts", async {
        let sim = DeploymentSim::start_with(
            client.clone(),
            Duration::from_millis(20),
            Profiles::namespaces(&["default"]),
        );
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let made = deployments
            .create(&PostParams::default(), &serde_json::from_value(deployment("app")).unwrap())
            .await
            .unwrap();
        await_condition(deployments.clone(), "app", observed(made.metadata.generation.unwrap()))
            .await
            .unwrap();
        assert_eq!(sim.rollouts("default", "app"), 1);

        // A scale is a new generation, not a rollout.
        let scaled = deployments
            .patch("app", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 5}})))
            .await
            .unwrap();
        let done = await_condition(deployments.clone(), "app", observed(scaled.metadata.generation.unwrap()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.status.unwrap().available_replicas, Some(5));
        assert_eq!(sim.rollouts("default", "app"), 1);

        // A restart (pod template annotation) is.
        let restarted = deployments
            .patch(
                "app",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-25T00:00:00Z"}}}}})),
            )
            .await
            .unwrap();
        await_condition(deployments.clone(), "app", observed(restarted.metadata.generation.unwrap()))
            .await
            .unwrap();
        assert_eq!(sim.rollouts("default", "app"), 2);
        eventually(|| sim.seen("default", "app").unwrap().status_updates == 3).await;
        assert_eq!(sim.rollouts("default", "never"), 0);
    })
    .await;
}

#[tokio::test]
async fn watches_follow_selectors_expire_and_time_out() {
    let api = KubeApi::start_with(
        0,
        Settings {
            event_history: 5,
            ..Settings::default()
        },
    )
    .unwrap();
    let client = client_for(&api).await;
    bounded("watches", async {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let start = cms
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        let mut web = cms
            .watch(&WatchParams::default().labels("app=web"), &start)
            .await
            .unwrap()
            .boxed();
        cms.create(
            &PostParams::default(),
            &configmap("moving", &[("app", "web")]),
        )
        .await
        .unwrap();
        cms.create(
            &PostParams::default(),
            &configmap("unrelated", &[("app", "db")]),
        )
        .await
        .unwrap();
        let relabel = |to: &'static str| {
            let cms = cms.clone();
            async move {
                cms.patch(
                    "moving",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {"app": to}}})),
                )
                .await
                .unwrap();
            }
        };
        relabel("db").await;
        relabel("web").await;
        cms.delete("moving", &DeleteParams::default())
            .await
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let kind = match web.try_next().await.unwrap().unwrap() {
                WatchEvent::Added(c) => format!("ADDED {}", c.name_any()),
                WatchEvent::Modified(c) => format!("MODIFIED {}", c.name_any()),
                WatchEvent::Deleted(c) => format!("DELETED {}", c.name_any()),
                other => format!("{other:?}"),
            };
            seen.push(kind);
        }
        assert_eq!(
            seen,
            [
                "ADDED moving",
                "DELETED moving",
                "ADDED moving",
                "DELETED moving"
            ]
        );

        // The history keeps 5 events: after two more changes, a watch from the start has
        // expired.
        for value in ["1", "2"] {
            cms.patch(
                "unrelated",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"k": value}})),
            )
            .await
            .unwrap();
        }
        let mut old = cms
            .watch(&WatchParams::default(), &start)
            .await
            .unwrap()
            .boxed();
        match old.try_next().await.unwrap().unwrap() {
            WatchEvent::Error(status) => {
                assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
            }
            other => panic!("expected a 410, got {other:?}"),
        }

        // kube-runtime's watcher lists and watches (and relists after a 410); streaming lists too.
        for config in [
            watcher::Config::default(),
            watcher::Config::default().streaming_lists(),
        ] {
            let mut stream = watcher(cms.clone(), config).boxed();
            let mut names = Vec::new();
            loop {
                match stream.try_next().await.unwrap().unwrap() {
                    watcher::Event::InitApply(cm) => names.push(cm.name_any()),
                    watcher::Event::InitDone => break,
                    _ => {}
                }
            }
            assert_eq!(names, ["unrelated"]);
            cms.create(&PostParams::default(), &configmap("later", &[]))
                .await
                .unwrap();
            match stream.try_next().await.unwrap().unwrap() {
                watcher::Event::Apply(cm) => assert_eq!(cm.name_any(), "later"),
                other => panic!("expected the new object, got {other:?}"),
            }
            cms.delete("later", &DeleteParams::default()).await.unwrap();
        }

        // A watch ends at its timeout, with a bookmark when asked for.
        let began = std::time::Instant::now();
        let rv = api.resource_version().to_string();
        let events: Vec<_> = cms
            .watch(&WatchParams::default().timeout(1), &rv)
            .await
            .unwrap()
            .collect()
            .await;
        assert!(began.elapsed() < Duration::from_secs(5));
        assert!(
            matches!(events.as_slice(), [Ok(WatchEvent::Bookmark(_))]),
            "{events:?}"
        );
    })
    .await;
}

#[test]
fn kubeconfig_can_be_written_anywhere() {
    let api = KubeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    api.write_kubeconfig(&path);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    assert_eq!(kubeconfig.current_context.as_deref(), Some("testbed"));
    let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some(api.url.as_str()));
    assert!(api.url.starts_with("http://127.0.0.1:"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = api.client().await;
        let namespaces: Api<Namespace> = Api::all(client);
        let names: Vec<String> = namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|n| n.name_any())
            .collect();
        assert_eq!(
            names,
            ["default", "kube-node-lease", "kube-public", "kube-system"]
        );
    });
    assert_eq!(api.objects().len(), 4);
    assert!(api.created_objects().is_empty());
}

#[tokio::test]
async fn watcher_relists_after_its_version_expired() {
    let api = KubeApi::start_with(
        0,
        Settings {
            event_history: 5,
            max_watch: Duration::from_secs(1),
            ..Settings::default()
        },
    )
    .unwrap();
    let client = client_for(&api).await;
    bounded("relist", async {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        cms.create(&PostParams::default(), &configmap("first", &[]))
            .await
            .unwrap();
        let mut stream = watcher(cms.clone(), watcher::Config::default()).boxed();
        loop {
            if let watcher::Event::InitDone = stream.try_next().await.unwrap().unwrap() {
                break;
            }
        }
        // The server ends the watch after 1 s; meanwhile more changes than the history keeps.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for i in 0..8 {
            cms.create(&PostParams::default(), &configmap(&format!("cm{i}"), &[]))
                .await
                .unwrap();
        }
        let mut expired = false;
        let mut relisted = Vec::new();
        loop {
            match stream.next().await.unwrap() {
                Err(watcher::Error::WatchError(status)) => {
                    assert_eq!(status.code, 410);
                    expired = true;
                }
                Ok(watcher::Event::Init) => {}
                Ok(watcher::Event::InitApply(cm)) => relisted.push(cm.name_any()),
                Ok(watcher::Event::InitDone) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(expired, "the watcher was told its resourceVersion expired");
        assert_eq!(relisted.len(), 9, "{relisted:?}");
    })
    .await;
}

#[tokio::test]
async fn serves_standalone_on_a_listener_until_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(testbed::kubeapi::serve_with(
        listener,
        Settings::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, testbed::kubeapi::kubeconfig_yaml(&url)).unwrap();
    bounded("standalone", async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = Client::try_from(config).unwrap();
        let namespaces: Api<Namespace> = Api::all(client);
        assert!(namespaces.get("kube-system").await.is_ok());
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    })
    .await;
}
