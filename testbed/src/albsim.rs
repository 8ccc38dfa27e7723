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
    shared: Option<(u16, tokio::task::JoinHandle<()>)>,
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
        let task = tokio::spawn(run(client, delay, region.to_owned(), albs.clone(), None));
        AlbControllerSim {
            task,
            albs,
            shared: None,
        }
    }

    /// Starts it with every "ALB" answering on one loopback port (see
    /// [`AlbControllerSim::shared_port`]): 200 for a `Host` that names a live ALB, 404 otherwise.
    /// For `make demo`, where the port must be known before any Ingress exists.
    pub async fn start_shared(
        client: Client,
        delay: Duration,
        region: &str,
    ) -> std::io::Result<AlbControllerSim> {
        let albs: Albs = Arc::default();
        let (port, server) = serve(Some(albs.clone())).await?;
        let task = tokio::spawn(run(
            client,
            delay,
            region.to_owned(),
            albs.clone(),
            Some(port),
        ));
        Ok(AlbControllerSim {
            task,
            albs,
            shared: Some((port, server)),
        })
    }

    /// The one port every ALB answers on, when started with [`AlbControllerSim::start_shared`].
    pub fn shared_port(&self) -> Option<u16> {
        self.shared.as_ref().map(|(port, _)| *port)
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
        if let Some((_, server)) = &self.shared {
            server.abort();
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

async fn run(client: Client, delay: Duration, region: String, albs: Albs, shared: Option<u16>) {
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
                let made = match shared {
                    Some(port) => Ok((port, tokio::spawn(async {}))),
                    None => serve(None).await,
                };
                let Ok((port, server)) = made else {
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

/// A loopback HTTP server: with `albs`, 200 for a `Host` naming a live ALB and 404 otherwise;
/// without, 200 for every request.
async fn serve(albs: Option<Albs>) -> std::io::Result<(u16, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let albs = albs.clone();
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
                let request = String::from_utf8_lossy(&buffer[..read]);
                let host = request
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("Host: ")
                            .or_else(|| l.strip_prefix("host: "))
                    })
                    .map(|h| h.trim().split(':').next().unwrap_or_default().to_owned())
                    .unwrap_or_default();
                let known = albs
                    .as_ref()
                    .is_none_or(|albs| lock(albs).values().any(|r| r.alb.hostname == host));
                let (status, body) = if known {
                    (
                        "200 OK",
                        "<!DOCTYPE html><title>2048</title><p>served by the simulated ALB</p>\n",
                    )
                } else {
                    ("404 Not Found", "no load balancer of that name\n")
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
