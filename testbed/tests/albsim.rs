//! The AWS Load Balancer Controller simulator against the Kubernetes stand-in.

use std::io::{Read, Write};
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use testbed::albsim::{AlbControllerSim, FINALIZER};
use testbed::kubeapi::KubeApi;

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
    let kube = KubeApi::start();
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
    let kube = KubeApi::start();
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
