//! The AWS Load Balancer Controller simulator against the real Kubernetes control plane.

use std::io::{Read, Write};
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use testbed::albsim::{AlbControllerSim, FINALIZER, TGB_FINALIZER};
use testbed::controlplane::ControlPlane;

fn ingress(name: &str, class: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ingressClassName": class, "defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}
    })
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: alb\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

async fn until<T>(mut probe: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    for _ in 0..100 {
        if let Some(found) = probe().await {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn hostname(ingress: &Ingress) -> Option<String> {
    ingress
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?
        .hostname
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_lifecycle_with_finalizer() {
    let kube = ControlPlane::start();
    let client = kube.client().await;
    let sim = AlbControllerSim::start(client.clone());
    let api: Api<Ingress> = Api::namespaced(client, "default");
    api.patch(
        "web",
        &PatchParams::apply("test"),
        &Patch::Apply(ingress("web", "alb")),
    )
    .await
    .unwrap();
    api.patch(
        "other",
        &PatchParams::apply("test"),
        &Patch::Apply(ingress("other", "nginx")),
    )
    .await
    .unwrap();

    let host = until(async || hostname(&api.get("web").await.ok()?))
        .await
        .expect("a hostname is set");
    assert!(host.ends_with(".us-east-2.elb.amazonaws.com"), "{host}");
    let web = api.get("web").await.unwrap();
    assert!(
        web.metadata
            .finalizers
            .unwrap()
            .contains(&FINALIZER.to_string())
    );
    let alb = sim.alb("default", "web").unwrap();
    assert_eq!(alb.hostname, host);
    assert_eq!(
        alb.connect_to(),
        format!("{host}:80:127.0.0.1:{}", alb.port)
    );
    let answer = http_get(alb.port).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");

    // Another class is not ours.
    let other = api.get("other").await.unwrap();
    assert!(other.metadata.finalizers.is_none() && hostname(&other).is_none());
    assert_eq!(sim.count(), 1);

    // Delete: held by the finalizer until the simulator "deleted the ALB".
    api.delete("web", &DeleteParams::default()).await.unwrap();
    let gone = until(async || {
        api.get_opt("web")
            .await
            .ok()
            .filter(Option::is_none)
            .map(|_| ())
    })
    .await;
    assert!(
        gone.is_some(),
        "the Ingress goes once the finalizer is removed"
    );
    assert_eq!(sim.count(), 0);
    assert!(
        until(async || http_get(alb.port).err().map(|_| ()))
            .await
            .is_some(),
        "the ALB stops answering"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_controller_the_ingress_stays() {
    let kube = ControlPlane::start();
    let client = kube.client().await;
    let sim = AlbControllerSim::start(client.clone());
    let api: Api<Ingress> = Api::namespaced(client, "default");
    api.patch(
        "web",
        &PatchParams::apply("test"),
        &Patch::Apply(ingress("web", "alb")),
    )
    .await
    .unwrap();
    until(async || hostname(&api.get("web").await.ok()?))
        .await
        .expect("a hostname is set");
    sim.stop();
    api.delete("web", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let held = api.get("web").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(held.metadata.finalizers.unwrap(), [FINALIZER]);
}

fn binding_api(client: &kube::Client) -> Api<kube::api::DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("elbv2.k8s.aws", "v1beta1", "TargetGroupBinding");
    let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, "targetgroupbindings");
    Api::namespaced_with(client.clone(), "default", &resource)
}

async fn binding_crd(client: &kube::Client) {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "targetgroupbindings.elbv2.k8s.aws"},
        "spec": {"group": "elbv2.k8s.aws", "scope": "Namespaced",
                 "names": {"kind": "TargetGroupBinding", "plural": "targetgroupbindings", "singular": "targetgroupbinding", "listKind": "TargetGroupBindingList"},
                 "versions": [{"name": "v1beta1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    crds.patch(
        "targetgroupbindings.elbv2.k8s.aws",
        &PatchParams::apply("test"),
        &Patch::Apply(crd),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_group_bindings_are_made_and_released_with_the_alb() {
    let kube = ControlPlane::start();
    let client = kube.client().await;
    binding_crd(&client).await;
    let sim = AlbControllerSim::start(client.clone());
    let api: Api<Ingress> = Api::namespaced(client.clone(), "default");
    api.patch(
        "web",
        &PatchParams::apply("test"),
        &Patch::Apply(ingress("web", "alb")),
    )
    .await
    .unwrap();
    let bindings = binding_api(&client);
    let made = until(async || {
        let list = bindings.list(&Default::default()).await.ok()?;
        (list.items.len() == 1).then(|| list.items[0].clone())
    })
    .await
    .expect("a TargetGroupBinding for the backend");
    assert!(
        made.metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("k8s-default-s-")
    );
    assert_eq!(
        made.metadata.finalizers.as_deref(),
        Some(&[TGB_FINALIZER.to_owned()][..])
    );
    let labels = made.metadata.labels.clone().unwrap();
    assert_eq!(labels["ingress.k8s.aws/stack-namespace"], "default");
    assert_eq!(labels["ingress.k8s.aws/stack-name"], "web");
    assert_eq!(
        made.data["spec"]["serviceRef"],
        json!({"name": "s", "port": 80})
    );
    assert!(
        made.data["spec"]["targetGroupARN"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:elasticloadbalancing:us-east-2:")
    );

    api.delete("web", &DeleteParams::default()).await.unwrap();
    until(async || {
        api.get_opt("web")
            .await
            .ok()
            .filter(Option::is_none)
            .map(|_| ())
    })
    .await
    .expect("the Ingress goes");
    let left = bindings.list(&Default::default()).await.unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
    assert_eq!(sim.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_controller_leaves_the_binding_finalizers() {
    let kube = ControlPlane::start();
    let client = kube.client().await;
    binding_crd(&client).await;
    let sim = AlbControllerSim::start(client.clone());
    let api: Api<Ingress> = Api::namespaced(client.clone(), "default");
    api.patch(
        "web",
        &PatchParams::apply("test"),
        &Patch::Apply(ingress("web", "alb")),
    )
    .await
    .unwrap();
    let bindings = binding_api(&client);
    let name = until(async || {
        let list = bindings.list(&Default::default()).await.ok()?;
        list.items.first().and_then(|b| b.metadata.name.clone())
    })
    .await
    .expect("a binding");
    sim.stop();
    api.delete("web", &DeleteParams::default()).await.unwrap();
    bindings
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let held = bindings.get(&name).await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(held.metadata.finalizers.unwrap(), [TGB_FINALIZER]);
    assert_eq!(
        api.get("web").await.unwrap().metadata.finalizers.unwrap(),
        [FINALIZER]
    );
}
