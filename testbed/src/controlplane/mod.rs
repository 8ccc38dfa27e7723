//! The real Kubernetes control plane of the test bed (issue 17): kube-apiserver and
//! kube-controller-manager v1.37.2 over an etcd 3.7 member, built from their Go modules by
//! `testbed/k8s/build.sh` (once per machine) and started on loopback.
//!
//! ```no_run
//! let cluster = testbed::controlplane::ControlPlane::start();
//! let kubeconfig = cluster.kubeconfig(); // pass to a binary as --kubeconfig
//! # let _ = kubeconfig;
//! ```
//!
//! - **One etcd per test process**, shared; each control plane is a kube-apiserver of its own
//!   under an `--etcd-prefix` of its own, so every test has a cluster to itself (webhook
//!   configurations, IngressClasses and CRDs are cluster-wide: tests that install the controller
//!   cannot share one). Measured: a kube-apiserver is ready in about a second.
//! - **kube-apiserver** serves HTTPS on `127.0.0.1` with a certificate of a CA the test bed makes
//!   ([`ControlPlane::ca_data`], as EKS reports `certificateAuthority.data`), signs
//!   service-account tokens with a key of ours, authorizes with `Node,RBAC`, runs the admission
//!   plugins EKS enables, and writes an audit log ([`ControlPlane::requests`]).
//! - **Authentication as on EKS:** static tokens for the test bed (the kubeconfig's user
//!   `testbed`, the simulators' `testbed:simulators`, the controller manager), and `k8s-aws-v1.`
//!   tokens through the TokenReview webhook of [`authn`] (mapped through a cluster's access
//!   entries with [`Settings::access_entries`]).
//! - **kube-controller-manager** runs the Deployment, ReplicaSet, EndpointSlice (and mirroring),
//!   namespace, garbage-collector, service-account and token, and root CA publisher controllers.
//!   Nothing schedules or runs pods: that is the Fargate simulator's part ([`crate::sim`]).

pub mod authn;
pub mod egress;
pub mod objects;
mod pki;
pub mod process;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

/// The static token of the kubeconfig the test bed hands to binaries (user `testbed`).
pub const TESTBED_TOKEN: &str = "testbed-token";
/// The user of [`TESTBED_TOKEN`], as the audit log names it.
pub const TESTBED_USER: &str = "testbed";
/// The static token of the simulators (user `testbed:simulators`), so the audit log tells what
/// the tool did from what the simulated cluster did.
const SIMULATOR_TOKEN: &str = "testbed-simulators-token";
/// The static token of kube-controller-manager.
const CONTROLLER_MANAGER_TOKEN: &str = "testbed-controller-manager-token";

/// The Service CIDR, EKS's default for IPv4 clusters.
pub const SERVICE_CIDR: &str = "10.100.0.0/16";

/// A name the API server's certificate also carries, which no resolver knows (`.invalid`): a
/// client reaches `https://PROXIED_NAME:<port>` only through a proxy that routes it to the API
/// server ([`crate::connectproxy::ConnectProxy`]), and still verifies the server's certificate.
pub const PROXIED_NAME: &str = "kube.test.invalid";

/// The admission plugins EKS enables (its platform versions' list), besides the API server's
/// defaults, which cover the rest of that list.
const EKS_ADMISSION_PLUGINS: &str = "NodeRestriction,ExtendedResourceToleration";

/// The controllers of kube-controller-manager the test bed runs.
const CONTROLLERS: &str = "deployment-controller,replicaset-controller,endpointslice-controller,\
endpointslice-mirroring-controller,namespace-controller,garbage-collector-controller,\
serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller";

/// How a control plane is started.
#[derive(Debug, Clone)]
pub struct Settings {
    /// EKS tokens signed longer ago than this are refused (15 minutes on EKS).
    pub eks_token_max_age: Duration,
    /// STS (moto) to ask who signed an EKS token; None: the access key id names the caller.
    pub sts_endpoint: Option<String>,
    /// Run kube-controller-manager (off: nothing makes pods, slices or tokens).
    pub controller_manager: bool,
    /// Reach pods as EKS's control plane does: webhook and aggregated-API Services resolved to
    /// their EndpointSlices' pod addresses (`--enable-aggregator-routing`), and the API
    /// server's `cluster` traffic sent through the egress proxy ([`egress`],
    /// `--egress-selector-config-file`), whose routes lead pod addresses to servers on loopback
    /// ([`ControlPlane::egress`]).
    pub egress: bool,
    /// Map EKS token callers through this cluster's access entries, as EKS does in its `API`
    /// modes (needs [`Settings::sts_endpoint`] to name callers): a caller without an entry is
    /// refused (401); None: every accepted caller is in `system:masters`.
    pub access_entries: Option<crate::awsrules::ClusterAccess>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            eks_token_max_age: Duration::from_secs(15 * 60),
            sts_endpoint: None,
            controller_manager: true,
            egress: true,
            access_entries: None,
        }
    }
}

/// One request the API server answered, as its audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// Who asked: `testbed` for the kubeconfig handed to binaries.
    pub user: String,
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without `?` (empty when none).
    pub query: String,
    /// The HTTP status answered.
    pub code: u16,
    /// The object asked about, as the audit log names it: `group/resource` (`/pods` for the
    /// core group), namespace and name (empty when none).
    pub object: (String, String, String),
}

impl Requested {
    /// Whether the request asked to change something.
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// A running control plane; stopped on drop (its processes are also signalled when the test
/// process ends however it ends).
#[derive(Debug)]
pub struct ControlPlane {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    dir: tempfile::TempDir,
    ca_pem: String,
    apiserver: Child,
    controller_manager: Option<Child>,
    authenticator: authn::Authenticator,
    egress: Option<egress::EgressProxy>,
    /// The objects there when it was ready ([`objects::key`]).
    baseline: std::collections::BTreeSet<String>,
}

impl ControlPlane {
    /// Starts a control plane with the defaults.
    pub fn start() -> ControlPlane {
        ControlPlane::start_with(Settings::default())
    }

    /// Starts a control plane; panics with the logs when a part does not come up.
    pub fn start_with(settings: Settings) -> ControlPlane {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let etcd = process::etcd();
        let bin = process::binaries();
        let dir = tempfile::Builder::new()
            .prefix("eks-fa-controlplane-")
            .tempdir()
            .expect("a folder for the control plane");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let pki = pki::Pki::new().expect("the control plane's certificates");
        pki.write(dir.path()).expect("the certificates written");
        let authenticator = authn::Authenticator::start(
            settings.eks_token_max_age,
            settings.sts_endpoint.clone(),
            settings.access_entries.clone(),
        );
        write(
            dir.path(),
            "authn-webhook.yaml",
            &authenticator.kubeconfig(),
        );
        write(
            dir.path(),
            "tokens.csv",
            &format!(
                "{TESTBED_TOKEN},{TESTBED_USER},testbed,system:masters\n\
                 {SIMULATOR_TOKEN},testbed:simulators,testbed-simulators,system:masters\n\
                 {CONTROLLER_MANAGER_TOKEN},system:kube-controller-manager,kube-controller-manager,system:masters\n"
            ),
        );
        write(
            dir.path(),
            "audit-policy.yaml",
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
        );
        let port = crate::free_port();
        let url = format!("https://127.0.0.1:{port}");
        let prefix = format!(
            "/registry-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let egress = settings.egress.then(|| {
            let proxy = egress::EgressProxy::start(&dir.path().join("egress.sock"))
                .unwrap_or_else(|e| panic!("cannot start the egress proxy: {e}"));
            write(
                dir.path(),
                "egress-selector.json",
                &proxy.selector_configuration(),
            );
            proxy
        });
        let mut args: Vec<String> = [
            ("--etcd-servers", etcd.to_owned()),
            ("--etcd-prefix", prefix),
            ("--bind-address", "127.0.0.1".to_owned()),
            // The API server refuses a loopback address to advertise; EKS's control plane is
            // reached through ENIs in the cluster's subnets, so an address of the VPC stands in,
            // and no reconciler writes it into the `kubernetes` Service's endpoints.
            ("--advertise-address", "10.0.0.10".to_owned()),
            ("--endpoint-reconciler-type", "none".to_owned()),
            ("--secure-port", port.to_string()),
            ("--tls-cert-file", path("apiserver.crt")),
            ("--tls-private-key-file", path("apiserver.key")),
            ("--client-ca-file", path("ca.crt")),
            ("--token-auth-file", path("tokens.csv")),
            (
                "--authentication-token-webhook-config-file",
                path("authn-webhook.yaml"),
            ),
            ("--authentication-token-webhook-version", "v1".to_owned()),
            ("--authentication-token-webhook-cache-ttl", "0s".to_owned()),
            ("--authorization-mode", "Node,RBAC".to_owned()),
            // As EKS runs it: privileged specs reach Fargate, which refuses them itself.
            ("--allow-privileged", "true".to_owned()),
            (
                "--enable-admission-plugins",
                EKS_ADMISSION_PLUGINS.to_owned(),
            ),
            ("--service-cluster-ip-range", SERVICE_CIDR.to_owned()),
            (
                "--service-account-issuer",
                "https://kubernetes.default.svc".to_owned(),
            ),
            ("--service-account-key-file", path("sa.pub")),
            ("--service-account-signing-key-file", path("sa.key")),
            ("--audit-policy-file", path("audit-policy.yaml")),
            ("--audit-log-path", path("audit.log")),
            ("--audit-log-format", "json".to_owned()),
            ("--audit-log-mode", "blocking".to_owned()),
            ("--profiling", "false".to_owned()),
        ]
        .into_iter()
        .map(|(flag, value)| format!("{flag}={value}"))
        .collect();
        if egress.is_some() {
            args.push(format!(
                "--egress-selector-config-file={}",
                path("egress-selector.json")
            ));
            args.push("--enable-aggregator-routing=true".to_owned());
        }
        let log = dir.path().join("kube-apiserver.log");
        let mut apiserver = process::spawn(&bin.join("kube-apiserver"), &args, &log)
            .unwrap_or_else(|e| panic!("cannot start kube-apiserver: {e}"));
        let probe_config = dir.path().join("probe.yaml");
        write_kubeconfig(&probe_config, &url, &pki.ca_pem, TESTBED_TOKEN);
        process::wait_until(
            "kube-apiserver",
            &mut apiserver,
            &log,
            Duration::from_secs(60),
            || answers(&probe_config, "/readyz"),
        );
        let mut cluster = ControlPlane {
            url,
            ca_pem: pki.ca_pem.clone(),
            apiserver,
            controller_manager: None,
            authenticator,
            egress,
            dir,
            baseline: Default::default(),
        };
        cluster.write_kubeconfig(&cluster.kubeconfig(), TESTBED_TOKEN);
        cluster.write_kubeconfig(&cluster.dir.path().join("simulators.yaml"), SIMULATOR_TOKEN);
        if settings.controller_manager {
            cluster.start_controller_manager(bin);
        }
        let simulators = cluster.dir.path().join("simulators.yaml");
        cluster.baseline = on_a_thread(async {
            let client = client_with(&simulators, false).await;
            objects::all_objects(&client)
                .await
                .iter()
                .map(|(_, o)| objects::key(o))
                .collect()
        });
        cluster
    }

    fn start_controller_manager(&mut self, bin: &Path) {
        let kubeconfig = self.dir.path().join("controller-manager.yaml");
        self.write_kubeconfig(&kubeconfig, CONTROLLER_MANAGER_TOKEN);
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        let args: Vec<String> = [
            ("--kubeconfig", kubeconfig.display().to_string()),
            ("--controllers", CONTROLLERS.to_owned()),
            ("--bind-address", "127.0.0.1".to_owned()),
            ("--secure-port", "0".to_owned()),
            ("--leader-elect", "false".to_owned()),
            ("--use-service-account-credentials", "false".to_owned()),
            ("--service-account-private-key-file", path("sa.key")),
            ("--root-ca-file", path("ca.crt")),
            ("--service-cluster-ip-range", SERVICE_CIDR.to_owned()),
            ("--concurrent-deployment-syncs", "5".to_owned()),
            ("--profiling", "false".to_owned()),
        ]
        .into_iter()
        .map(|(flag, value)| format!("{flag}={value}"))
        .collect();
        let log = self.dir.path().join("kube-controller-manager.log");
        let mut child = process::spawn(&bin.join("kube-controller-manager"), &args, &log)
            .unwrap_or_else(|e| panic!("cannot start kube-controller-manager: {e}"));
        // Ready when the service-account controller has made `default` in `default`.
        let kubeconfig = self.kubeconfig();
        process::wait_until(
            "kube-controller-manager",
            &mut child,
            &log,
            Duration::from_secs(60),
            || {
                answers(
                    &kubeconfig,
                    "/api/v1/namespaces/default/serviceaccounts/default",
                )
            },
        );
        self.controller_manager = Some(child);
    }

    fn write_kubeconfig(&self, path: &Path, token: &str) {
        write_kubeconfig(path, &self.url, &self.ca_pem, token);
    }

    /// The kubeconfig handed to binaries (user `testbed`, a cluster admin), in a folder the
    /// control plane owns.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The cluster's CA, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The egress proxy the API server reaches pods through ([`Settings::egress`]): route a pod
    /// address to a loopback server with [`egress::EgressProxy::route`] (or its
    /// [`egress::EgressProxy::routes`] handle); None when the setting is off.
    pub fn egress(&self) -> Option<&egress::EgressProxy> {
        self.egress.as_ref()
    }

    /// The CA as EKS reports it: base64 of the PEM.
    pub fn ca_data(&self) -> String {
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &self.ca_pem)
    }

    /// A kube-rs client as the user `testbed` (what a binary given [`Self::kubeconfig`] is).
    /// Call it inside a tokio runtime.
    pub async fn client(&self) -> kube::Client {
        client_from(&self.kubeconfig()).await
    }

    /// A kube-rs client for the simulators (user `testbed:simulators`), so their requests are
    /// told apart from the tool's in [`Self::requests`].
    pub async fn simulator_client(&self) -> kube::Client {
        client_from(&self.dir.path().join("simulators.yaml")).await
    }

    /// The EKS tokens the authenticator refused so far, with why.
    pub fn refused_tokens(&self) -> Vec<authn::Refusal> {
        self.authenticator.refusals()
    }

    /// Every request the API server answered so far, in order, from its audit log.
    pub fn requests(&self) -> Vec<Requested> {
        let text = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["stage"] == "ResponseComplete")
            .map(|event| audited(&event))
            .collect()
    }

    /// The requests of the user `testbed` (the binaries' kubeconfig) that changed something or
    /// tried to.
    pub fn writes_by_testbed(&self) -> Vec<Requested> {
        self.requests()
            .into_iter()
            .filter(|r| r.user == TESTBED_USER && r.is_write())
            .collect()
    }

    /// The folder of the control plane's files and logs (kept while it runs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A request as the audit event `event` tells it.
fn audited(event: &Value) -> Requested {
    let method = match event["verb"].as_str().unwrap_or("") {
        "create" => "POST",
        "update" => "PUT",
        "patch" => "PATCH",
        "delete" | "deletecollection" => "DELETE",
        _ => "GET",
    };
    let uri = event["requestURI"].as_str().unwrap_or("");
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    Requested {
        user: event["user"]["username"].as_str().unwrap_or("").to_owned(),
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        code: event["responseStatus"]["code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0),
        object: {
            let reference = &event["objectRef"];
            let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (
                format!(
                    "{}/{}",
                    text(&reference["apiGroup"]),
                    text(&reference["resource"])
                ),
                text(&reference["namespace"]),
                text(&reference["name"]),
            )
        },
    }
}

/// Writes a kubeconfig for the API server at `url` (CA `ca_pem`) with `token` to `path`.
fn write_kubeconfig(path: &Path, url: &str, ca_pem: &str, token: &str) {
    let text = kubeconfig_yaml(url, Some(ca_pem)).replace(TESTBED_TOKEN, token);
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A kubeconfig (YAML) with one cluster at `server` (trusting `ca_pem` when it serves HTTPS),
/// the user `testbed` with its static token, and one context for them, selected.
pub fn kubeconfig_yaml(server: &str, ca_pem: Option<&str>) -> String {
    let ca = ca_pem
        .map(|pem| {
            format!(
                "    certificate-authority-data: {}\n",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pem)
            )
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
{ca}    server: {server}
users:
- name: testbed
  user:
    token: {TESTBED_TOKEN}
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

/// Whether a GET of `path` through `kubeconfig` answers 200.
fn answers(kubeconfig: &Path, path: &str) -> bool {
    on_a_thread(async {
        let client = client_from(kubeconfig).await;
        let request = http::Request::get(path)
            .body(Vec::new())
            .expect("a probe request");
        client.request_text(request).await.is_ok()
    })
}

/// Runs `work` to its end on a runtime of its own, on a thread of its own (so a caller inside a
/// test's runtime may block on it).
fn on_a_thread<T: Send>(work: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(work)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

async fn client_from(path: &Path) -> kube::Client {
    client_with(path, true).await
}

/// A kube-rs client through the kubeconfig at `path`; `retry`: kube's own retries of 429, 503
/// and 504 answers.
pub(crate) async fn client_with(path: &Path, retry: bool) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(path).expect("the control plane's kubeconfig reads");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("the control plane's kubeconfig loads");
    config.default_retry = retry;
    kube::Client::try_from(config).expect("a kube client")
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for child in self
            .controller_manager
            .iter_mut()
            .chain(std::iter::once(&mut self.apiserver))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
