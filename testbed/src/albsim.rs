//! A simulator of the AWS Load Balancer Controller, as an ordinary kube-rs client that works
//! against any API server: for every Ingress of class `alb` it adds the controller's finalizer,
//! serves HTTP 200 on a loopback port (the "ALB"), and after a delay sets the Ingress's
//! `status.loadBalancer.ingress[0].hostname` to an ALB-like name; when the Ingress is being
//! deleted it stops that server and removes the finalizer, as the controller does once the ALB is
//! gone. Stop it to see what happens when the controller is missing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The controller's Ingress finalizer.
pub const FINALIZER: &str = "ingress.k8s.aws/resources";

/// One simulated load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alb {
    /// The DNS name set on the Ingress.
    pub hostname: String,
    /// The loopback port that answers for it.
    pub port: u16,
}

impl Alb {
    /// curl's `--connect-to` value that sends `http://<hostname>/` to the loopback port.
    pub fn connect_to(&self) -> String {
        format!("{}:80:127.0.0.1:{}", self.hostname, self.port)
    }
}

struct Running {
    alb: Alb,
    server: tokio::task::JoinHandle<()>,
}

type Albs = Arc<Mutex<BTreeMap<(String, String), Running>>>;

/// The simulator; stops on drop.
#[derive(Debug)]
pub struct AlbControllerSim {
    task: tokio::task::JoinHandle<()>,
    albs: Albs,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("alb", &self.alb).finish()
    }
}

impl AlbControllerSim {
    /// How long it takes to "provision" or "delete" a load balancer by default.
    pub const DEFAULT_DELAY: Duration = Duration::from_millis(300);

    /// Starts it with [`AlbControllerSim::DEFAULT_DELAY`] in region us-east-2. Call inside a
    /// tokio runtime.
    pub fn start(client: Client) -> AlbControllerSim {
        AlbControllerSim::start_with(client, Self::DEFAULT_DELAY, "us-east-2")
    }

    /// Starts it with a delay and the region to put in host names.
    pub fn start_with(client: Client, delay: Duration, region: &str) -> AlbControllerSim {
        let albs: Albs = Arc::default();
        let task = tokio::spawn(run(client, delay, region.to_owned(), albs.clone()));
        AlbControllerSim { task, albs }
    }

    /// Stops it: no more finalizers, host names or deletions; the "ALBs" keep answering.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// The load balancer of `namespace/name`, once made.
    pub fn alb(&self, namespace: &str, name: &str) -> Option<Alb> {
        lock(&self.albs)
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|r| r.alb.clone())
    }

    /// How many load balancers exist now.
    pub fn count(&self) -> usize {
        lock(&self.albs).len()
    }
}

impl Drop for AlbControllerSim {
    fn drop(&mut self) {
        self.task.abort();
        for (_, running) in std::mem::take(&mut *lock(&self.albs)) {
            running.server.abort();
        }
    }
}

fn lock(albs: &Albs) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Running>> {
    albs.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_alb_class(ingress: &Ingress) -> bool {
    let by_spec = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        == Some("alb");
    let by_annotation = ingress
        .annotations()
        .get("kubernetes.io/ingress.class")
        .map(String::as_str)
        == Some("alb");
    by_spec || by_annotation
}

fn has_hostname(ingress: &Ingress, hostname: &str) -> bool {
    ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .and_then(|list| list.first())
        .and_then(|i| i.hostname.as_deref())
        == Some(hostname)
}

/// `k8s-<ns>-<name>-<hash>.<region>.elb.amazonaws.com`, like the controller's names.
pub fn hostname_for(namespace: &str, name: &str, region: &str) -> String {
    let short = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect::<String>()
    };
    let hash = format!("{namespace}/{name}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
        & 0xffff_ffff;
    let hash = format!("{hash:08x}");
    format!(
        "k8s-{}-{}-{hash}-1234567890.{region}.elb.amazonaws.com",
        short(namespace),
        short(name)
    )
}

async fn run(client: Client, delay: Duration, region: String, albs: Albs) {
    let all: Api<Ingress> = Api::all(client.clone());
    let mut events = watcher(all, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = events.next().await {
        let Ok(ingress) = event else { continue };
        if !is_alb_class(&ingress) {
            continue;
        }
        let namespace = ingress.namespace().unwrap_or_default();
        let name = ingress.name_any();
        let api: Api<Ingress> = Api::namespaced(client.clone(), &namespace);
        let key = (namespace.clone(), name.clone());
        if ingress.metadata.deletion_timestamp.is_some() {
            if ingress.finalizers().iter().any(|f| f == FINALIZER) {
                tokio::time::sleep(delay).await;
                if let Some(running) = lock(&albs).remove(&key) {
                    running.server.abort();
                }
                let rest: Vec<&String> = ingress
                    .finalizers()
                    .iter()
                    .filter(|f| *f != FINALIZER)
                    .collect();
                let _ = api
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": rest}})),
                    )
                    .await;
            }
            continue;
        }
        if !ingress.finalizers().iter().any(|f| f == FINALIZER) {
            let mut list: Vec<String> = ingress.finalizers().to_vec();
            list.push(FINALIZER.to_owned());
            let _ = api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": list}})),
                )
                .await;
        }
        let existing = lock(&albs).get(&key).map(|r| r.alb.clone());
        let alb = match existing {
            Some(alb) => alb,
            None => {
                let Ok((port, server)) = serve_ok().await else {
                    continue;
                };
                let alb = Alb {
                    hostname: hostname_for(&namespace, &name, &region),
                    port,
                };
                tokio::time::sleep(delay).await;
                lock(&albs).insert(
                    key,
                    Running {
                        alb: alb.clone(),
                        server,
                    },
                );
                alb
            }
        };
        if !has_hostname(&ingress, &alb.hostname) {
            let status =
                json!({"status": {"loadBalancer": {"ingress": [{"hostname": alb.hostname}]}}});
            let _ = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                .await;
        }
    }
}

/// A loopback HTTP server that answers every request with 200 and a small page.
async fn serve_ok() -> std::io::Result<(u16, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let mut read = 0;
                while read < buffer.len() {
                    match tokio::time::timeout(
                        Duration::from_secs(5),
                        stream.read(&mut buffer[read..]),
                    )
                    .await
                    {
                        Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                        Ok(Ok(n)) => {
                            read += n;
                            if buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                    }
                }
                let body = "<!DOCTYPE html><title>2048</title><p>served by the simulated ALB</p>\n";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok((port, server))
}

/// What the endpoints controller does: every Service with a selector gets an `Endpoints` object
/// with one ready address when an Available Deployment in its namespace runs pods it selects,
/// and none otherwise. Polls every 100 ms; stops on drop.
#[derive(Debug)]
pub struct EndpointsSim {
    task: tokio::task::JoinHandle<()>,
}

impl EndpointsSim {
    /// Starts it. Call inside a tokio runtime.
    pub fn start(client: Client) -> EndpointsSim {
        EndpointsSim {
            task: tokio::spawn(endpoints_loop(client)),
        }
    }

    /// Stops it.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for EndpointsSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn endpoints_loop(client: Client) {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Endpoints, Service};
    let services: Api<Service> = Api::all(client.clone());
    let deployments: Api<Deployment> = Api::all(client.clone());
    loop {
        if let (Ok(services), Ok(deployments)) = (
            services.list(&Default::default()).await,
            deployments.list(&Default::default()).await,
        ) {
            for service in services.items {
                let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.clone()) else {
                    continue;
                };
                let namespace = service.namespace().unwrap_or_default();
                let ready = deployments.items.iter().any(|d| {
                    let labels = d
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.metadata.as_ref())
                        .and_then(|m| m.labels.clone())
                        .unwrap_or_default();
                    let available = d
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter()
                                .any(|c| c.type_ == "Available" && c.status == "True")
                        });
                    d.namespace().as_deref() == Some(namespace.as_str())
                        && available
                        && !selector.is_empty()
                        && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                });
                let ports: Vec<serde_json::Value> = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.ports.clone())
                    .unwrap_or_default()
                    .iter()
                    .map(|p| json!({"name": p.name, "port": p.port, "protocol": p.protocol}))
                    .collect();
                let subsets = if ready {
                    json!([{"addresses": [{"ip": "10.0.0.10"}], "ports": ports}])
                } else {
                    json!([])
                };
                let name = service.name_any();
                let api: Api<Endpoints> = Api::namespaced(client.clone(), &namespace);
                let current = api.get_opt(&name).await.ok().flatten();
                let has = current
                    .as_ref()
                    .and_then(|e| e.subsets.as_ref())
                    .is_some_and(|s| {
                        s.iter()
                            .any(|s| s.addresses.as_ref().is_some_and(|a| !a.is_empty()))
                    });
                if current.is_none() || has != ready {
                    let body = json!({"apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": name, "namespace": namespace}, "subsets": subsets});
                    let _ = api
                        .patch(
                            &name,
                            &PatchParams::apply("endpoints-sim").force(),
                            &Patch::Apply(body),
                        )
                        .await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
