//! What the EndpointSlice controller does (and the endpoints mirroring the cluster still runs on
//! Kubernetes 1.33+, where v1 `Endpoints` is deprecated but kept): every Service with a selector
//! gets an EndpointSlice (`discovery.k8s.io/v1`, labelled `kubernetes.io/service-name`) with one
//! ready endpoint per available replica of the Deployments in its namespace whose pods it
//! selects, and a v1 `Endpoints` object saying the same. A Deployment counts while its
//! `Available` condition is True and `status.availableReplicas` is at least one: scaled to zero,
//! deleted or failing, its Service has no ready endpoint, so fail-closed admission webhooks served
//! by it refuse requests (see [`crate::kubeapi`]). When a Service goes, its EndpointSlices and
//! Endpoints go too (the garbage collector's part).
//!
//! It reads Services, Deployments and EndpointSlices, never v1 `Endpoints` (it writes those
//! blind), so a test can tell from the stand-in's request log whether another client read them.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The EndpointSlice controller's name in [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
const FIELD_MANAGER: &str = "endpointslice-sim";

/// The simulator; polls every 100 ms; stops on drop.
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

/// The slice name of a Service: `<service>-<5 characters>`, as the controller's generateName
/// gives, but stable so that the simulator finds its own slice again.
pub fn slice_name(service: &str) -> String {
    let hash = service.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    let mut suffix = String::new();
    let mut n = hash;
    for _ in 0..5 {
        suffix.push(char::from(alphabet[(n % 27) as usize]));
        n /= 27;
    }
    let base: String = service.chars().take(57).collect();
    format!("{base}-{suffix}")
}

/// How many ready endpoints `service` has, and the container port of each of its ports
/// (resolved through the selected pods' named ports).
fn desired(service: &Service, deployments: &[Deployment]) -> (i32, Vec<Value>) {
    let namespace = service.namespace().unwrap_or_default();
    let spec = service.spec.clone().unwrap_or_default();
    let selector = spec.selector.clone().unwrap_or_default();
    let selected: Vec<&Deployment> = deployments
        .iter()
        .filter(|d| {
            let labels = d
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            d.namespace().as_deref() == Some(namespace.as_str())
                && !selector.is_empty()
                && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .collect();
    let ready: i32 = selected
        .iter()
        .filter(|d| {
            d.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "Available" && c.status == "True")
                })
        })
        .map(|d| {
            d.status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0)
        })
        .sum();
    let named_port = |name: &str| -> Option<i32> {
        selected.iter().find_map(|d| {
            d.spec
                .as_ref()?
                .template
                .spec
                .as_ref()?
                .containers
                .iter()
                .find_map(|c| {
                    c.ports
                        .as_ref()?
                        .iter()
                        .find(|p| p.name.as_deref() == Some(name))
                        .map(|p| p.container_port)
                })
        })
    };
    let ports = spec
        .ports
        .unwrap_or_default()
        .iter()
        .map(|p| {
            use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
            let port = match &p.target_port {
                Some(IntOrString::Int(n)) => *n,
                Some(IntOrString::String(name)) => named_port(name).unwrap_or(p.port),
                None => p.port,
            };
            json!({"name": p.name.clone().unwrap_or_default(), "port": port,
                   "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into())})
        })
        .collect();
    (ready.max(0), ports)
}

fn address(namespace: &str, service: &str, index: i32) -> String {
    let hash = format!("{namespace}/{service}")
        .bytes()
        .fold(7_u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.0.{}.{}", hash % 250 + 1, index + 10)
}

/// The slice the controller would write.
fn slice_for(service: &Service, ready: i32, ports: &[Value]) -> Value {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let endpoints: Vec<Value> = (0..ready)
        .map(|i| {
            json!({"addresses": [address(&namespace, &name, i)],
                   "conditions": {"ready": true, "serving": true, "terminating": false}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(&name),
            "namespace": namespace,
            "labels": {SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    })
}

fn ready_in(slice: &EndpointSlice) -> i32 {
    let count = slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .count();
    i32::try_from(count).unwrap_or(i32::MAX)
}

async fn endpoints_loop(client: Client) {
    let services: Api<Service> = Api::all(client.clone());
    let deployments: Api<Deployment> = Api::all(client.clone());
    let slices: Api<EndpointSlice> = Api::all(client.clone());
    let ours = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    loop {
        if let (Ok(services), Ok(deployments), Ok(existing)) = (
            services.list(&ListParams::default()).await,
            deployments.list(&ListParams::default()).await,
            slices.list(&ours).await,
        ) {
            let mut current: BTreeMap<(String, String), &EndpointSlice> = BTreeMap::new();
            for slice in &existing.items {
                if let Some(service) = slice.labels().get(SERVICE_NAME_LABEL) {
                    current.insert(
                        (slice.namespace().unwrap_or_default(), service.clone()),
                        slice,
                    );
                }
            }
            let mut wanted = Vec::new();
            for service in &services.items {
                let has_selector = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|s| !s.is_empty());
                if !has_selector {
                    continue;
                }
                let namespace = service.namespace().unwrap_or_default();
                let name = service.name_any();
                wanted.push((namespace.clone(), name.clone()));
                let (ready, ports) = desired(service, &deployments.items);
                let same = current
                    .get(&(namespace.clone(), name.clone()))
                    .is_some_and(|s| ready_in(s) == ready && s.endpoints.len() == ready as usize);
                if same {
                    continue;
                }
                let slice = slice_for(service, ready, &ports);
                let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &namespace);
                let params = PatchParams::apply(FIELD_MANAGER).force();
                let written = api
                    .patch(&slice_name(&name), &params, &Patch::Apply(&slice))
                    .await;
                if written.is_err() {
                    continue;
                }
                // The mirror the cluster keeps for v1 Endpoints readers.
                let addresses: Vec<Value> = (0..ready)
                    .map(|i| json!({"ip": address(&namespace, &name, i)}))
                    .collect();
                let subsets = if ready > 0 {
                    json!([{"addresses": addresses, "ports": ports}])
                } else {
                    json!([])
                };
                let mirror = json!({"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": namespace}, "subsets": subsets});
                let api: Api<Endpoints> = Api::namespaced(client.clone(), &namespace);
                let _ = api.patch(&name, &params, &Patch::Apply(&mirror)).await;
            }
            // Slices (and Endpoints) of Services that went.
            for ((namespace, service), slice) in &current {
                if wanted.contains(&(namespace.clone(), service.clone())) {
                    continue;
                }
                let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
                let _ = api
                    .delete(&slice.name_any(), &DeleteParams::default())
                    .await;
                let api: Api<Endpoints> = Api::namespaced(client.clone(), namespace);
                let _ = api.delete(service, &DeleteParams::default()).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_names_are_stable_and_valid() {
        let name = slice_name("aws-load-balancer-webhook-service");
        assert_eq!(name, slice_name("aws-load-balancer-webhook-service"));
        assert!(name.starts_with("aws-load-balancer-webhook-service-"));
        assert_eq!(name.len(), "aws-load-balancer-webhook-service-".len() + 5);
        assert_ne!(name, slice_name("service-2048"));
        assert!(slice_name(&"x".repeat(80)).len() <= 63);
    }

    #[test]
    fn ready_endpoints_follow_available_replicas_and_named_ports() {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "w"},
                     "ports": [{"name": "https", "port": 443, "targetPort": "webhook"}]}
        }))
        .unwrap();
        let deployment = |available: &str, replicas: i32| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "d", "namespace": "ns"},
                "spec": {"selector": {"matchLabels": {"app": "w"}},
                         "template": {"metadata": {"labels": {"app": "w"}},
                                      "spec": {"containers": [{"name": "c", "ports": [{"name": "webhook", "containerPort": 9443}]}]}}},
                "status": {"availableReplicas": replicas,
                           "conditions": [{"type": "Available", "status": available}]}
            }))
            .unwrap()
        };
        let (ready, ports) = desired(&service, &[deployment("True", 2)]);
        assert_eq!(ready, 2);
        assert_eq!(ports[0]["port"], 9443);
        assert_eq!(desired(&service, &[deployment("True", 0)]).0, 0);
        assert_eq!(desired(&service, &[deployment("False", 2)]).0, 0);
        assert_eq!(desired(&service, &[]).0, 0);
        let slice = slice_for(&service, 2, &ports);
        assert_eq!(slice["metadata"]["labels"][SERVICE_NAME_LABEL], "web");
        assert_eq!(slice["endpoints"][1]["conditions"]["ready"], true);
    }
}
