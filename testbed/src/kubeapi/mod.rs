//! A Kubernetes API server stand-in, in memory, over plain HTTP on loopback: good enough for
//! kube-rs clients (and so our binaries, through a kubeconfig) to discover, create, get, list,
//! watch, replace, patch, server-side apply, update status and delete.
//!
//! ```no_run
//! let api = testbed::kubeapi::KubeApi::start();
//! let kubeconfig = api.kubeconfig(); // pass to a binary as --kubeconfig
//! # let _ = kubeconfig;
//! ```
//!
//! What it serves:
//! - `/version`, `/healthz`; discovery in the legacy form (`/api`, `/api/v1`, `/apis`,
//!   `/apis/{group}`, `/apis/{group}/{version}`), also when a client asks for aggregated
//!   discovery through `Accept` (the answer is then the legacy document, `application/json`, as
//!   from a server without aggregated discovery). Built-in types: see [`built_in_types`].
//! - Every resource path: list (`XList`, `labelSelector` with `=`, `==`, `!=`, `in`, `notin`,
//!   exists and `!` forms; `fieldSelector` on any dotted path compared as a string), get,
//!   create (POST, 201, `generateName`), replace (PUT, 409 on a stale `resourceVersion`), PATCH
//!   with merge patch, strategic merge patch (handled as a merge patch), JSON patch and
//!   server-side apply (`fieldManager` required; creates with 201 when missing), the `/status`
//!   subresource, DELETE of one object or a collection, `dryRun=All` (on every write: the answer
//!   is what would be stored, nothing is), and watches.
//! - Field ownership (`metadata.managedFields`, `store/fields.rs`): updates own the
//!   fields they set, an apply that would change another manager's field is a 409 `Conflict`
//!   worded as the real server words it unless `force=true`, the same value is shared, and the
//!   status subresource is owned apart.
//! - Metadata the server owns: `uid`, `creationTimestamp`, one global monotonically increasing
//!   `resourceVersion`, `generation` (1, then +1 when anything outside metadata and status
//!   changes), `namespace`; a write that changes nothing is a no-op (no new resourceVersion).
//! - Finalizers: DELETE of an object with finalizers sets `deletionTimestamp` and keeps it; it
//!   goes when a later write leaves it without finalizers. Deleting a Namespace deletes what is
//!   in it the same way; the namespace stays (phase `Terminating`) until it is empty. Creating
//!   in a missing namespace is 404, in a terminating one 403.
//! - CustomResourceDefinitions: creating one serves its group, served versions, plural, kind and
//!   scope (and status subresource), with `Established` and `NamesAccepted` conditions set;
//!   deleting it stops serving them and drops their objects.
//! - Watches (`watch=true`): newline-delimited events over a chunked response; with no
//!   `resourceVersion` (or "0", or `sendInitialEvents=true`) first an ADDED per current object;
//!   `allowWatchBookmarks` gives a BOOKMARK before the watch ends (and the initial-events-end
//!   one for `sendInitialEvents`); objects that start or stop matching the selectors are ADDED
//!   or DELETED for that watch; a `resourceVersion` older than the kept history gets an ERROR
//!   event with a 410 `Expired` Status (what kube-runtime's watcher relists on); timeouts are
//!   capped ([`Settings::max_watch`]).
//! - Errors are `Status` objects with the reasons of the real server (`NotFound`,
//!   `AlreadyExists`, `Conflict`, `BadRequest`, `Invalid`, `MethodNotAllowed`, `Expired`,
//!   `Forbidden`, `UnsupportedMediaType`).
//!
//! - Admission webhooks ([`admission`]): a write that a fail-closed webhook configuration
//!   matches is refused (500 `InternalError`, `failed calling webhook …: no endpoints available
//!   for service …`) while the webhook's Service has no ready endpoint in its EndpointSlices;
//!   a reachable webhook allows the write unchanged.
//! - Reads of v1 `Endpoints` carry the deprecation `Warning` header of Kubernetes 1.33+; every
//!   request is kept in an audit log ([`KubeApi::requests`]).
//!
//! - Optionally ([`Settings`]) TLS with a CA of its own, and authentication as on EKS: the test
//!   bed's static token, or an EKS token younger than a given age ([`auth`]).
//!
//! Known limits: no authorization; without [`Settings::eks_token_max_age`] any bearer token, or
//! none, is accepted; server-side apply is a deep merge (objects merged recursively, arrays
//! replaced, `null` removes) and never removes a field a manager stopped applying; ownership is
//! kept for leaf fields with lists atomic (no `k:`/`v:` list item keys); strategic merge patch has no list
//! merge keys; no schema validation or defaulting beyond a few fields (Namespace phase and
//! name label, Deployment `spec.replicas` = 1, CRD status); no webhook server is called, no
//! garbage collection through ownerReferences, no controllers (see [`crate::sim`]); no
//! pagination (`limit` is ignored, every list is one page); CRD versions share one stored
//! object with no conversion; no protobuf, no HTTP/2, no `/scale` or other subresources.

mod admission;
mod auth;
mod http;
mod patch;
mod resources;
mod router;
mod selector;
mod store;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;

pub use store::BUILTIN_NAMESPACES;

/// Tunables of a server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How many watch events are kept; a watch from an older resourceVersion gets 410 Expired.
    pub event_history: usize,
    /// The longest a watch stays open (a client's `timeoutSeconds` is capped to it).
    pub max_watch: Duration,
    /// Serve HTTPS with a CA of the server's own ([`KubeApi::ca_data`]), as an EKS endpoint does.
    pub tls: bool,
    /// Authenticate as EKS does ([`auth`]): an EKS token (`k8s-aws-v1.`) signed longer ago than
    /// this is refused with 401, as is a request with no token, a malformed one or another one
    /// than the test bed's own kubeconfig token. `None`: every request is let in.
    pub eks_token_max_age: Option<Duration>,
    /// Aggregated API group-versions registered but not available (`metrics.k8s.io/v1beta1`
    /// while metrics-server is down), as the API server shows them: `/apis` lists the group, and
    /// `/apis/{group}/{version}` and everything under it answer 503 ServiceUnavailable.
    pub unavailable_group_versions: Vec<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            event_history: 10_000,
            max_watch: Duration::from_secs(60),
            tls: false,
            eks_token_max_age: None,
            unavailable_group_versions: Vec::new(),
        }
    }
}

/// The state every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    store: Mutex<store::Store>,
    /// The latest resourceVersion, for watches to wake up on.
    changed: tokio::sync::watch::Sender<u64>,
    settings: Settings,
    /// `127.0.0.1:PORT`, for `/api`.
    address: String,
    /// Every request answered, in order (an audit log).
    requests: Mutex<Vec<Requested>>,
    /// The certificate served, when [`Settings::tls`].
    tls: Option<tls::Tls>,
}

/// One request the server answered, as its audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without `?` (empty when none).
    pub query: String,
    /// The HTTP status answered (200 for a watch).
    pub code: u16,
}

/// The most requests kept in the log; older ones are dropped.
const REQUEST_LOG: usize = 200_000;

impl Shared {
    fn new(settings: Settings, address: String) -> Arc<Shared> {
        let store = store::Store::new(settings.event_history);
        let (changed, _) = tokio::sync::watch::channel(store.resource_version());
        let tls = settings
            .tls
            .then(|| tls::Tls::new().expect("a CA and certificate for the API server"));
        Arc::new(Shared {
            tls,
            store: Mutex::new(store),
            changed,
            settings,
            address,
            requests: Mutex::new(Vec::new()),
        })
    }

    fn log_request(&self, method: &str, target: &str, code: u16) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut log = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if log.len() >= REQUEST_LOG {
            log.drain(..REQUEST_LOG / 2);
        }
        log.push(Requested {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            code,
        });
    }

    fn lock(&self) -> MutexGuard<'_, store::Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs a write and wakes the watches.
    fn write<T>(&self, f: impl FnOnce(&mut store::Store) -> T) -> T {
        let (out, rv) = {
            let mut store = self.lock();
            let out = f(&mut store);
            (out, store.resource_version())
        };
        self.changed.send_if_modified(|seen| {
            let newer = *seen != rv;
            *seen = rv;
            newer
        });
        out
    }
}

/// The built-in types, as `(apiVersion, plural, kind, namespaced)`.
pub fn built_in_types() -> Vec<(String, String, String, bool)> {
    resources::built_in()
        .into_iter()
        .map(|t| {
            (
                t.api_version(&t.versions[0]),
                t.plural,
                t.kind,
                t.namespaced,
            )
        })
        .collect()
}

/// Serves the API on `listener` with a fresh store and default settings, until the process
/// ends (for a standalone server).
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    serve_with(listener, Settings::default(), std::future::pending()).await
}

/// Serves the API on `listener` with a fresh store until `shutdown` completes.
pub async fn serve_with(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let address = listener.local_addr()?.to_string();
    run(listener, Shared::new(settings, address), shutdown).await
}

async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(http::serve_connection(stream, shared.clone()));
                }
                // A connection that failed before it was accepted (reset, too many files):
                // take a breath and go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            () = &mut shutdown => return Ok(()),
        }
    }
}

/// A kubeconfig (YAML) with one cluster at `server`, one user with a static token, and one
/// context for them, selected.
pub fn kubeconfig_yaml(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: {server}
users:
- name: testbed
  user:
    token: testbed-token
contexts:
- name: testbed
  context:
    cluster: testbed
    user: testbed
    namespace: default
current-context: testbed
preferences: {{}}
"
    )
}

/// An API server stand-in on `127.0.0.1:<port>`, served from a thread of its own (with its own
/// tokio runtime); stopped on drop. Usable from `#[test]` and `#[tokio::test]` alike.
#[derive(Debug)]
pub struct KubeApi {
    /// `http://127.0.0.1:PORT` (`https://` with [`Settings::tls`]).
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl KubeApi {
    /// Starts a server on a free loopback port.
    pub fn start() -> KubeApi {
        KubeApi::start_with(0, Settings::default()).expect("a loopback port for the API server")
    }

    /// Starts a server on `127.0.0.1:port` (0: a free one).
    pub fn start_on(port: u16) -> std::io::Result<KubeApi> {
        KubeApi::start_with(port, Settings::default())
    }

    /// Starts a server on `127.0.0.1:port` (0: a free one) with `settings`.
    pub fn start_with(port: u16, settings: Settings) -> std::io::Result<KubeApi> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?.to_string();
        let dir = tempfile::Builder::new()
            .prefix("eks-fa-kubeapi-")
            .tempdir()?;
        let shared = Shared::new(settings, address.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kubeapi")
            .enable_all()
            .build()?;
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("kubeapi".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => panic!("the API server cannot listen: {e}"),
                    };
                    let _ = run(listener, serving, async {
                        let _ = stopped.await;
                    })
                    .await;
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        let scheme = if shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let api = KubeApi {
            url: format!("{scheme}://{address}"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
            dir,
        };
        api.write_kubeconfig(&api.dir.path().join("kubeconfig"));
        Ok(api)
    }

    /// Writes a kubeconfig for this server to `path` (see [`kubeconfig_yaml`]).
    pub fn write_kubeconfig(&self, path: &Path) {
        let text = match self.ca_data() {
            Some(ca) => kubeconfig_yaml(&self.url).replace(
                "    server: ",
                &format!("    certificate-authority-data: {ca}\n    server: "),
            ),
            None => kubeconfig_yaml(&self.url),
        };
        std::fs::write(path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// The server's CA as EKS reports it (base64 of the PEM), when it serves TLS.
    pub fn ca_data(&self) -> Option<String> {
        self.shared.tls.as_ref().map(tls::Tls::ca_data)
    }

    /// A kubeconfig for this server, in a folder the server owns.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A kube-rs client for this server, built through [`KubeApi::kubeconfig`] as a binary
    /// given `--kubeconfig` would. Call it inside a tokio runtime.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.kubeconfig())
            .expect("the testbed kubeconfig reads");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("the testbed kubeconfig loads");
        kube::Client::try_from(config).expect("a kube client")
    }

    /// Everything stored, every object as JSON (the built-in namespaces
    /// [`BUILTIN_NAMESPACES`] included).
    pub fn objects(&self) -> Vec<serde_json::Value> {
        self.shared.lock().all_objects()
    }

    /// The stored objects other than the built-in namespaces: what a test made and left.
    pub fn created_objects(&self) -> Vec<serde_json::Value> {
        self.objects()
            .into_iter()
            .filter(|o| {
                let builtin_namespace = o["kind"] == "Namespace"
                    && BUILTIN_NAMESPACES
                        .iter()
                        .any(|n| o["metadata"]["name"] == *n);
                !builtin_namespace
            })
            .collect()
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().resource_version()
    }

    /// Every request answered so far, in order (at most the latest 200,000): an audit log to
    /// assert what a client did, and in which order.
    pub fn requests(&self) -> Vec<Requested> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
