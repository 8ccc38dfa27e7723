//! EKS's Fargate admission: the mutating webhook an EKS control plane has on every cluster
//! (`0500-amazon-eks-fargate-mutation.amazonaws.com`). When a pod is created and a Fargate
//! profile selects it (namespace, labels; not pinned to EC2 by the
//! `eks.amazonaws.com/compute-type: ec2` annotation), it sets `spec.schedulerName:
//! fargate-scheduler` and the `eks.amazonaws.com/fargate-profile` label: the pod is Fargate's
//! from its creation on, and `schedulerName` cannot change later. A pod made while no profile
//! selects it keeps `default-scheduler` (and, on a cluster without nodes, stays Pending). A pod
//! several profiles select gets one of them at random, unless it carries the label already:
//! then that profile, and none when that one does not select it ([`fargate::place`]).
//!
//! Served over TLS on loopback with a CA of its own (the configuration's `caBundle`), called by
//! URL (the API server dials it directly, not through the cluster's egress). Registered by
//! [`super::FargateSim::start`] before it returns, with `failurePolicy: Ignore` as EKS's is.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

use crate::fargate::{self, Placement, Profiles};

/// The webhook's name and its configuration's, as on EKS.
pub const WEBHOOK: &str = "0500-amazon-eks-fargate-mutation.amazonaws.com";

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The webhook server; stopped on drop.
#[derive(Debug)]
pub(crate) struct FargateAdmission {
    address: std::net::SocketAddr,
    ca_pem: String,
    task: tokio::task::JoinHandle<()>,
    /// How many reviews it answered.
    calls: Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for FargateAdmission {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CA and a serving certificate for `127.0.0.1` signed by it: (CA PEM, TLS acceptor).
fn tls() -> std::io::Result<(String, tokio_rustls::TlsAcceptor)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(io_error)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "eks-fargate-admission");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(io_error)?)
        .map_err(io_error)?;
    let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(io_error)?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(io_error)?;
    let cert = leaf.signed_by(&key, &ca).map_err(io_error)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io_error)?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(io_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca.pem(), tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

impl FargateAdmission {
    /// Serves on a free loopback port, deciding by `profiles` at each pod's creation. Call
    /// inside a tokio runtime.
    pub(crate) fn start(profiles: Profiles) -> std::io::Result<FargateAdmission> {
        let (ca_pem, acceptor) = tls()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let profiles = Arc::new(profiles);
        let picks: Arc<fargate::Picks> = Arc::default();
        let calls: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let counted = calls.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                while connections.try_join_next().is_some() {}
                let (acceptor, profiles, counted, picks) = (
                    acceptor.clone(),
                    profiles.clone(),
                    counted.clone(),
                    picks.clone(),
                );
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        answer(request, profiles.clone(), picks.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(FargateAdmission {
            address,
            ca_pem,
            task,
            calls,
        })
    }

    /// Registers the webhook through `client` and returns once the API server calls it (a
    /// dry-run pod in `default` shows it), or after 10 s.
    pub(crate) async fn register(&self, client: &kube::Client) -> Result<(), kube::Error> {
        use kube::api::{Patch, PatchParams, PostParams};
        let configurations: kube::Api<
            k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration,
        > = kube::Api::all(client.clone());
        configurations
            .patch(
                WEBHOOK,
                &PatchParams::apply("eks-fargate").force(),
                &Patch::Apply(self.configuration()),
            )
            .await?;
        let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), "default");
        let probe: Pod = serde_json::from_value(json!({
            "metadata": {"generateName": "fargate-admission-probe-"},
            "spec": {"containers": [{"name": "c", "image": "probe"}]}
        }))
        .expect("a probe pod");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let before = self.calls.load(std::sync::atomic::Ordering::Relaxed);
        while std::time::Instant::now() < deadline {
            let _ = pods
                .create(
                    &PostParams {
                        dry_run: true,
                        ..Default::default()
                    },
                    &probe,
                )
                .await;
            if self.calls.load(std::sync::atomic::Ordering::Relaxed) > before {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The MutatingWebhookConfiguration that sends pod creations here.
    pub(crate) fn configuration(&self) -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": WEBHOOK},
            "webhooks": [{
                "name": WEBHOOK,
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "reinvocationPolicy": "Never",
                "timeoutSeconds": 10,
                "clientConfig": {
                    "url": format!("https://{}/mutate", self.address),
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(&self.ca_pem),
                },
                "rules": [{
                    "apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"
                }]
            }]
        })
    }
}

async fn answer(
    request: hyper::Request<Incoming>,
    profiles: Arc<Profiles>,
    picks: Arc<fargate::Picks>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let uid = review["request"]["uid"].clone();
    let namespace = review["request"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let pod: Option<Pod> = serde_json::from_value(review["request"]["object"].clone()).ok();
    // The profiles now; when they cannot be read the pod goes as it is (failurePolicy Ignore).
    let current = profiles.current().await.unwrap_or_default();
    let patch = pod.and_then(|pod| mutation(&namespace, &pod, &current, picks.next()));
    let mut response = json!({"uid": uid, "allowed": true});
    if let Some(patch) = patch {
        response["patchType"] = json!("JSONPatch");
        response["patch"] =
            json!(base64::engine::general_purpose::STANDARD.encode(patch.to_string()));
    }
    let answer = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    });
    Ok(hyper::Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer.to_string())))
        .expect("a response"))
}

/// The JSON patch EKS's admission makes to `pod` of `namespace` while `profiles` exist: none
/// when no profile takes it ([`fargate::place`]; `pick` chooses among several).
pub(crate) fn mutation(
    namespace: &str,
    pod: &Pod,
    profiles: &[fargate::Profile],
    pick: u64,
) -> Option<Value> {
    let none = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&none);
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&none);
    let spec = pod.spec.clone().unwrap_or_default();
    let profile = match fargate::place(namespace, labels, annotations, &spec, profiles, pick) {
        Placement::Fargate { profile } | Placement::Refused { profile, .. } => profile,
        Placement::Unselected => return None,
    };
    let mut ops = vec![json!({
        "op": "add", "path": "/spec/schedulerName", "value": fargate::FARGATE_SCHEDULER
    })];
    if pod.metadata.labels.is_none() {
        ops.push(json!({"op": "add", "path": "/metadata/labels", "value": {}}));
    }
    ops.push(json!({
        "op": "add",
        "path": format!("/metadata/labels/{}", fargate::PROFILE_LABEL.replace('~', "~0").replace('/', "~1")),
        "value": profile,
    }));
    Some(Value::Array(ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(namespace: &str) -> fargate::Profile {
        fargate::Profile {
            name: "fp".into(),
            selectors: vec![fargate::Selector::namespace(namespace)],
        }
    }

    fn pod(annotations: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "annotations": annotations},
            "spec": {"containers": [{"name": "c", "image": "x"}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_selected_pod_is_fargate_s_from_its_creation() {
        let patch = mutation("game", &pod(json!({})), &[profile("game")], 0).unwrap();
        assert_eq!(patch[0]["path"], "/spec/schedulerName");
        assert_eq!(patch[0]["value"], "fargate-scheduler");
        assert_eq!(
            patch[1],
            json!({"op": "add", "path": "/metadata/labels", "value": {}})
        );
        assert_eq!(
            patch[2]["path"],
            "/metadata/labels/eks.amazonaws.com~1fargate-profile"
        );
        assert_eq!(patch[2]["value"], "fp");
    }

    #[test]
    fn unselected_and_ec2_pinned_pods_are_left_as_they_are() {
        assert!(mutation("other", &pod(json!({})), &[profile("game")], 0).is_none());
        let pinned = pod(json!({"eks.amazonaws.com/compute-type": "ec2"}));
        assert!(mutation("game", &pinned, &[profile("game")], 0).is_none());
        assert!(mutation("game", &pod(json!({})), &[], 0).is_none());
    }
}
