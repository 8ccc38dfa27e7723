//! The AWS Load Balancer Controller's webhook server, played on loopback for the real control
//! plane ([`crate::controlplane`]): the API server calls the webhooks of `02-webhook.yaml` at a
//! controller pod's address (`10.0.X.Y:9443`, from the webhook Service's EndpointSlices), and its
//! egress proxy ([`crate::controlplane::egress`]) sends that connection to a server of this
//! module, which answers as the controller's webhooks would for what they allow.
//!
//! ```no_run
//! # async fn f() {
//! let cluster = testbed::controlplane::ControlPlane::start();
//! let routes = cluster.egress().expect("on by default").routes();
//! let sim = testbed::webhooksim::WebhookSim::start(cluster.simulator_client().await, routes);
//! // ... every Running pod labelled app.kubernetes.io/name=aws-load-balancer-controller in
//! // kube-system is now served at its podIP:9443, with the certificate of the Secret
//! // kube-system/aws-load-balancer-tls
//! # let _ = sim;
//! # }
//! ```
//!
//! - **TLS as the pods serve it:** the certificate chain and key are the `tls.crt` and `tls.key`
//!   of the Secret `kube-system/aws-load-balancer-tls` (what `eks-patch` renders and the
//!   Deployment mounts), followed by a watch, so a rotated Secret is served at once (the kubelet
//!   and the controller's certificate watcher take about a minute on a real cluster). While the
//!   Secret is missing or does not hold a usable pair ([`CertState`]), every TLS handshake is
//!   refused (an alert: the API server's call fails with "remote error: tls: ..."), so a
//!   missing or broken Secret fails the write instead of being served by something else (the
//!   real controller does not start its webhook server without the files). What the API server
//!   checks (the `caBundle` against the chain, the Service's DNS name against the certificate's
//!   names) it checks itself: nothing is simulated there.
//! - **Answers:** `admission.k8s.io/v1` AdmissionReviews on the six paths of the manifests
//!   ([`WEBHOOK_PATHS`]) are allowed, with the request's uid and no patch (what the controller
//!   answers for objects it has nothing to change in); any other path is 404, as
//!   controller-runtime's mux answers. HTTP/1.1 only (ALPN `http/1.1`): controller-runtime's
//!   webhook server turns HTTP/2 off by default.
//! - **One server per pod**, so a pod that stops (deleted, terminating, no longer Running) takes
//!   its connections with it, and the reviews tell which pod answered ([`Review::server`]).
//!   A pod is served while it has a `podIP` and is `Running` and not terminating: a running
//!   container listens whether or not its readiness probe passes (the EndpointSlice's `ready`
//!   decides whether the API server calls it).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::{Value, json};

use crate::controlplane::egress::Routes;

/// The controller's namespace.
pub const NAMESPACE: &str = "kube-system";
/// The Secret holding the webhook server's certificate and key (`03-webhook-secret.yaml`).
pub const TLS_SECRET: &str = "aws-load-balancer-tls";
/// The label selector of the controller's pods.
pub const CONTROLLER_SELECTOR: &str = "app.kubernetes.io/name=aws-load-balancer-controller";
/// The port the controller's webhook server listens on (its `--webhook-bind-port` default; the
/// manifests name it `webhook-server`).
pub const WEBHOOK_PORT: u16 = 9443;
/// The controller's flag that moves [`WEBHOOK_PORT`].
const PORT_FLAG: &str = "--webhook-bind-port=";
/// The webhook paths the controller serves (`02-webhook.yaml`).
pub const WEBHOOK_PATHS: [&str; 6] = [
    "/mutate-v1-pod",
    "/mutate-v1-service",
    "/mutate-elbv2-k8s-aws-v1beta1-targetgroupbinding",
    "/validate-elbv2-k8s-aws-v1beta1-ingressclassparams",
    "/validate-elbv2-k8s-aws-v1beta1-targetgroupbinding",
    "/validate-networking-v1-ingress",
];

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// What the webhook servers have to serve with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertState {
    /// No Secret (yet, or any more): handshakes are refused.
    Missing,
    /// The Secret's pair is served.
    Loaded,
    /// The Secret holds no usable pair (why): handshakes are refused.
    Invalid(String),
}

#[derive(Debug)]
struct Cert {
    state: CertState,
    key: Option<Arc<CertifiedKey>>,
}

/// The serving certificate and key all webhook servers present, as the pods mount them; read at
/// every handshake, so a change is served from the next connection on.
#[derive(Debug, Clone)]
pub struct ServingCert(Arc<RwLock<Cert>>);

impl Default for ServingCert {
    fn default() -> ServingCert {
        ServingCert(Arc::new(RwLock::new(Cert {
            state: CertState::Missing,
            key: None,
        })))
    }
}

impl ServingCert {
    fn set(&self, state: CertState, key: Option<Arc<CertifiedKey>>) {
        let mut cert = self.0.write().unwrap_or_else(|p| p.into_inner());
        *cert = Cert { state, key };
    }

    /// Serves the PEM chain `cert_pem` (leaf first) with the PEM private key `key_pem`; an
    /// unusable pair is kept as [`CertState::Invalid`] (handshakes refused) and returned as
    /// the error.
    pub fn load_pem(&self, cert_pem: &[u8], key_pem: &[u8]) -> std::io::Result<()> {
        match certified_key(cert_pem, key_pem) {
            Ok(key) => {
                self.set(CertState::Loaded, Some(Arc::new(key)));
                Ok(())
            }
            Err(why) => {
                self.set(CertState::Invalid(why.clone()), None);
                Err(io_error(why))
            }
        }
    }

    /// Serves what the Secret holds (`tls.crt`, `tls.key`), or refuses handshakes when there is
    /// no Secret or no usable pair in it.
    pub fn load_secret(&self, secret: Option<&Secret>) {
        let Some(secret) = secret else {
            self.set(CertState::Missing, None);
            return;
        };
        let data = secret.data.clone().unwrap_or_default();
        let field = |name: &str| data.get(name).map(|b| b.0.clone()).unwrap_or_default();
        let (cert, key) = (field("tls.crt"), field("tls.key"));
        if cert.is_empty() || key.is_empty() {
            self.set(
                CertState::Invalid(format!(
                    "the Secret {}/{} has no tls.crt and tls.key",
                    secret.namespace().unwrap_or_default(),
                    secret.name_any()
                )),
                None,
            );
            return;
        }
        let _ = self.load_pem(&cert, &key);
    }

    /// Refuses handshakes from now on, as without the Secret.
    pub fn clear(&self) {
        self.set(CertState::Missing, None);
    }

    /// What is served now.
    pub fn state(&self) -> CertState {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .state
            .clone()
    }

    /// A TLS acceptor presenting whatever this holds at each handshake (HTTP/1.1 by ALPN).
    fn acceptor(&self) -> std::io::Result<tokio_rustls::TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io_error)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for ServingCert {
    /// None (no pair) makes rustls abort the handshake with an alert.
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).key.clone()
    }
}

/// The chain and key of PEM texts, the key checked against the leaf.
fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.crt is not PEM certificates: {e}"))?;
    if chain.is_empty() {
        return Err("tls.crt holds no certificate".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("tls.key is not a PEM private key: {e}"))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| format!("tls.crt and tls.key are not a usable pair: {e}"))
}

/// One AdmissionReview a webhook server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// Which server answered: the pod (`namespace/name`), or the name given to
    /// [`WebhookSim::serve`].
    pub server: String,
    /// The webhook path called (`/validate-networking-v1-ingress`).
    pub path: String,
    /// The request's uid, sent back in the answer.
    pub uid: String,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub operation: String,
    /// The kind of the object under review (`Ingress`).
    pub kind: String,
    /// The object's namespace (empty when cluster-scoped).
    pub namespace: String,
    /// The object's name (empty when the API server makes it, `generateName`).
    pub name: String,
}

/// The reviews of a set of servers, in the order they were answered.
#[derive(Debug, Clone, Default)]
pub struct Reviews(Arc<Mutex<Vec<Review>>>);

impl Reviews {
    /// Every review so far.
    pub fn all(&self) -> Vec<Review> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn push(&self, review: Review) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(review);
    }
}

/// The answer to an AdmissionReview `body` called at `path` (allowed, the request's uid, no
/// patch) and what it reviewed; Err(400 text) for a body that is not an AdmissionReview v1 with
/// a request.
fn admit(server: &str, path: &str, body: &[u8]) -> Result<(Value, Review), String> {
    let review: Value =
        serde_json::from_slice(body).map_err(|e| format!("not an AdmissionReview: {e}"))?;
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return Err(format!(
            "not an admission.k8s.io/v1 AdmissionReview: apiVersion {}, kind {}",
            review["apiVersion"], review["kind"]
        ));
    }
    let request = &review["request"];
    let uid = request["uid"]
        .as_str()
        .filter(|uid| !uid.is_empty())
        .ok_or("the AdmissionReview has no request.uid")?;
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let answer = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": true}
    });
    Ok((
        answer,
        Review {
            server: server.to_owned(),
            path: path.to_owned(),
            uid: uid.to_owned(),
            operation: text(&request["operation"]),
            kind: text(&request["kind"]["kind"]),
            namespace: text(&request["namespace"]),
            name: text(&request["name"]),
        },
    ))
}

fn response(status: u16, body: Vec<u8>, json: bool) -> hyper::Response<Full<Bytes>> {
    let mut answer = hyper::Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    let kind = if json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    answer.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(kind),
    );
    answer
}

/// Answers one HTTP request of the API server.
async fn answer(
    request: hyper::Request<Incoming>,
    server: Arc<str>,
    reviews: Reviews,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if !WEBHOOK_PATHS.contains(&path.as_str()) {
        return Ok(response(404, b"404 page not found\n".to_vec(), false));
    }
    if request.method() != hyper::Method::POST {
        return Ok(response(405, b"only POST is allowed\n".to_vec(), false));
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Ok(response(400, e.to_string().into_bytes(), false)),
    };
    Ok(match admit(&server, &path, &body) {
        Ok((answer, review)) => {
            reviews.push(review);
            response(200, answer.to_string().into_bytes(), true)
        }
        Err(why) => response(400, why.into_bytes(), false),
    })
}

/// One pod's webhook server on a loopback port; stopped (its listener and every connection
/// closed) on drop. Start it inside a tokio runtime.
#[derive(Debug)]
pub struct WebhookServer {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookServer {
    /// Serves on a free `127.0.0.1` port with `cert`, recording into `reviews` under the name
    /// `server`.
    pub fn start(
        server: &str,
        cert: &ServingCert,
        reviews: &Reviews,
    ) -> std::io::Result<WebhookServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let acceptor = cert.acceptor()?;
        let task = tokio::spawn(serve(
            listener,
            acceptor,
            Arc::from(server),
            reviews.clone(),
        ));
        Ok(WebhookServer { address, task })
    }

    /// Where it listens (`127.0.0.1:PORT`), the place to route the pod's address to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; the connections are tasks of a set this task owns, so
/// they end with it.
async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    server: Arc<str>,
    reviews: Reviews,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let (acceptor, server, reviews) = (acceptor.clone(), server.clone(), reviews.clone());
        connections.spawn(async move {
            // No certificate: rustls aborts the handshake with an alert, and the API server's
            // call fails with "remote error: tls: ...".
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| {
                answer(request, server.clone(), reviews.clone())
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// The address a pod's webhook server listens on while the pod runs: its `podIP` and the
/// controller's webhook port (its `--webhook-bind-port` flag, else [`WEBHOOK_PORT`]); None while
/// it has no address, is not `Running`, or is terminating.
pub fn serving_address(pod: &Pod) -> Option<SocketAddr> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let ip: IpAddr = status.pod_ip.as_deref()?.parse().ok()?;
    let port = pod
        .spec
        .iter()
        .flat_map(|spec| &spec.containers)
        .flat_map(|c| c.args.iter().flatten())
        .find_map(|arg| arg.strip_prefix(PORT_FLAG)?.parse().ok())
        .unwrap_or(WEBHOOK_PORT);
    Some(SocketAddr::new(ip, port))
}

/// A server and the pod address routed to it.
#[derive(Debug)]
struct Served {
    target: SocketAddr,
    server: WebhookServer,
    /// Started for a pod (ended when the pod is gone), not by [`WebhookSim::serve`].
    pod: bool,
}

#[derive(Debug, Clone)]
struct Shared {
    cert: ServingCert,
    reviews: Reviews,
    routes: Routes,
    served: Arc<Mutex<BTreeMap<String, Served>>>,
}

impl Shared {
    fn served(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Served>> {
        self.served.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves `target` under `name` (replacing what `name` served), routed from the proxy.
    fn start(&self, name: &str, target: SocketAddr, pod: bool) -> std::io::Result<SocketAddr> {
        self.stop(name);
        let server = WebhookServer::start(name, &self.cert, &self.reviews)?;
        let address = server.address();
        self.routes.add(target, address);
        self.served().insert(
            name.to_owned(),
            Served {
                target,
                server,
                pod,
            },
        );
        Ok(address)
    }

    /// Stops what `name` served and removes its route (if still its own).
    fn stop(&self, name: &str) -> bool {
        let Some(served) = self.served().remove(name) else {
            return false;
        };
        self.routes
            .remove_if(served.target, served.server.address());
        true
    }

    /// Follows one pod's state: served at its address while it runs.
    fn place(&self, pod: &Pod) {
        let name = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
        let want = serving_address(pod);
        let now = self.served().get(&name).map(|s| s.target);
        if want == now {
            return;
        }
        match want {
            Some(target) => {
                if let Err(e) = self.start(&name, target, true) {
                    eprintln!("webhook sim: cannot serve pod {name} at {target}: {e}");
                }
            }
            None => {
                self.stop(&name);
            }
        }
    }

    /// The pods' servers but those named in `keep`.
    fn stop_pods_but(&self, keep: &std::collections::BTreeSet<String>) {
        let gone: Vec<String> = self
            .served()
            .iter()
            .filter(|(name, served)| served.pod && !keep.contains(*name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.stop(&name);
        }
    }

    fn stop_all(&self) {
        let names: Vec<String> = self.served().keys().cloned().collect();
        for name in names {
            self.stop(&name);
        }
    }
}

/// Keeps [`ServingCert`] in step with the Secret.
async fn follow_secret(api: Api<Secret>, cert: ServingCert) {
    let config = watcher::Config::default().fields(&format!("metadata.name={TLS_SECRET}"));
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    let mut seen = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => seen = false,
            Ok(watcher::Event::InitApply(secret)) | Ok(watcher::Event::Apply(secret)) => {
                seen = true;
                cert.load_secret(Some(&secret));
            }
            Ok(watcher::Event::InitDone) if !seen => cert.load_secret(None),
            Ok(watcher::Event::Delete(_)) => cert.load_secret(None),
            Ok(watcher::Event::InitDone) | Err(_) => {}
        }
    }
}

/// Serves the controller's pods while they run.
async fn follow_pods(api: Api<Pod>, shared: Shared) {
    let config = watcher::Config::default().labels(CONTROLLER_SELECTOR);
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    let mut listed = std::collections::BTreeSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(pod)) => {
                listed.insert(format!(
                    "{}/{}",
                    pod.namespace().unwrap_or_default(),
                    pod.name_any()
                ));
                shared.place(&pod);
            }
            Ok(watcher::Event::InitDone) => shared.stop_pods_but(&listed),
            Ok(watcher::Event::Apply(pod)) => shared.place(&pod),
            Ok(watcher::Event::Delete(pod)) => {
                shared.stop(&format!(
                    "{}/{}",
                    pod.namespace().unwrap_or_default(),
                    pod.name_any()
                ));
            }
            Err(_) => {}
        }
    }
}

/// The controller's webhook servers: one per running controller pod, routed from the egress
/// proxy, serving the Secret's certificate. A tokio task started inside a runtime; stopped (its
/// servers and routes gone) by [`Self::stop`] or on drop.
#[derive(Debug)]
pub struct WebhookSim {
    shared: Shared,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl WebhookSim {
    /// Watches the Secret and the controller's pods in [`NAMESPACE`] through `client` (the
    /// simulators' client: the API server's audit log then tells its reads from the tool's) and
    /// routes each running pod's address in `routes` (the control plane's egress proxy).
    pub fn start(client: Client, routes: Routes) -> WebhookSim {
        let shared = Shared {
            cert: ServingCert::default(),
            reviews: Reviews::default(),
            routes,
            served: Arc::default(),
        };
        let tasks = vec![
            tokio::spawn(follow_secret(
                Api::namespaced(client.clone(), NAMESPACE),
                shared.cert.clone(),
            )),
            tokio::spawn(follow_pods(
                Api::namespaced(client, NAMESPACE),
                shared.clone(),
            )),
        ];
        WebhookSim { shared, tasks }
    }

    /// Serves `target` (an address no pod object stands behind, such as a hand-made
    /// EndpointSlice's `10.0.9.9:9443`) as a pod named `name` would be; returns the server's
    /// loopback address. Inside the runtime the sim was started in.
    pub fn serve(&self, target: SocketAddr, name: &str) -> std::io::Result<SocketAddr> {
        self.shared.start(name, target, false)
    }

    /// Stops serving what [`Self::serve`] (or a pod) named `name` served; whether there was one.
    pub fn stop_serving(&self, name: &str) -> bool {
        self.shared.stop(name)
    }

    /// What is served now: name (the pod's `namespace/name`), pod address, loopback address.
    pub fn served(&self) -> Vec<(String, SocketAddr, SocketAddr)> {
        self.shared
            .served()
            .iter()
            .map(|(name, s)| (name.clone(), s.target, s.server.address()))
            .collect()
    }

    /// Every AdmissionReview answered so far, in order.
    pub fn reviews(&self) -> Vec<Review> {
        self.shared.reviews.all()
    }

    /// The certificate served (as the Secret last said).
    pub fn cert(&self) -> &ServingCert {
        &self.shared.cert
    }

    /// Stops watching and serving; the routes it added are removed.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
        self.shared.stop_all();
    }
}

impl Drop for WebhookSim {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_pod_is_served_at_its_address_while_it_runs() {
        let running = json!({
            "metadata": {"name": "c", "namespace": "kube-system"},
            "spec": {"containers": [{"name": "c", "args": ["--cluster-name=x"]}]},
            "status": {"phase": "Running", "podIP": "10.0.3.4"}
        });
        assert_eq!(
            serving_address(&pod(running.clone())),
            Some("10.0.3.4:9443".parse().unwrap())
        );
        let mut moved = running.clone();
        moved["spec"]["containers"][0]["args"] = json!(["--webhook-bind-port=9444"]);
        assert_eq!(
            serving_address(&pod(moved)),
            Some("10.0.3.4:9444".parse().unwrap())
        );
        let mut pending = running.clone();
        pending["status"]["phase"] = json!("Pending");
        assert_eq!(serving_address(&pod(pending)), None);
        let mut no_ip = running.clone();
        no_ip["status"].as_object_mut().unwrap().remove("podIP");
        assert_eq!(serving_address(&pod(no_ip)), None);
        let mut terminating = running;
        terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(serving_address(&pod(terminating)), None);
    }

    #[test]
    fn a_review_is_allowed_with_its_uid() {
        let body = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": "CREATE", "namespace": "game-2048",
                "name": "ingress-2048",
                "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"}}
        });
        let (answer, review) = admit(
            "kube-system/c",
            "/validate-networking-v1-ingress",
            body.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(
            answer,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": "u-1", "allowed": true}})
        );
        assert_eq!(review.kind, "Ingress");
        assert_eq!(review.operation, "CREATE");
        assert_eq!(review.name, "ingress-2048");
        assert_eq!(review.server, "kube-system/c");
        let v1beta1 = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
            "request": {"uid": "u"}});
        assert!(admit("s", "/p", v1beta1.to_string().as_bytes()).is_err());
        let no_uid = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {}});
        assert!(admit("s", "/p", no_uid.to_string().as_bytes()).is_err());
        assert!(admit("s", "/p", b"{").is_err());
    }

    #[test]
    fn the_secret_decides_what_is_served() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["a.kube-system.svc".to_owned()]).unwrap();
        let leaf = params.self_signed(&key).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let secret = |cert: &str, key: &str| -> Secret {
            serde_json::from_value(json!({
                "metadata": {"name": TLS_SECRET, "namespace": NAMESPACE},
                "data": {
                    "tls.crt": base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD, cert),
                    "tls.key": base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD, key),
                }
            }))
            .unwrap()
        };
        let cert = ServingCert::default();
        assert_eq!(cert.state(), CertState::Missing);
        cert.load_secret(Some(&secret(&leaf.pem(), &key.serialize_pem())));
        assert_eq!(cert.state(), CertState::Loaded);
        cert.load_secret(Some(&secret(&leaf.pem(), &other.serialize_pem())));
        let state = cert.state();
        assert!(
            matches!(state, CertState::Invalid(ref why) if why.contains("not a usable pair")),
            "{state:?}"
        );
        cert.load_secret(Some(&secret("", "")));
        assert!(matches!(cert.state(), CertState::Invalid(_)));
        cert.load_secret(Some(&secret(&leaf.pem(), &key.serialize_pem())));
        cert.load_secret(None);
        assert_eq!(cert.state(), CertState::Missing);
    }
}
