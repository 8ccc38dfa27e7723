//! A simulator of the AWS Load Balancer Controller, as an ordinary kube-rs client that works
//! against any API server: for every Ingress of class `alb` it adds the controller's finalizer,
//! serves HTTP 200 on a loopback port (the "ALB"), and after a delay sets the Ingress's
//! `status.loadBalancer.ingress[0].hostname` to an ALB-like name; when the Ingress is being
//! deleted it stops that server and removes the finalizer, as the controller does once the ALB is
//! gone. Stop it to see what happens when the controller is missing.
//!
//! Once the TargetGroupBinding CRD is served, it also makes a `TargetGroupBinding`
//! (`elbv2.k8s.aws/v1beta1`, in the Ingress's namespace, labelled with the Ingress's stack and
//! carrying the finalizer [`TGB_FINALIZER`]) for every backend Service port of the Ingress, as
//! the controller does for the target groups it makes; when the Ingress is deleted it deletes
//! them and releases their finalizer before it deletes the ALB. Stopped, it leaves every
//! finalizer in place. Its writes go through the API server's admission like any client's, so
//! fail-closed webhooks without a ready endpoint refuse them.
//!
//! **With AWS** ([`Options::aws_endpoint`], moto), it is the controller the cluster runs:
//! - it acts only while the Deployment `kube-system/aws-load-balancer-controller` exists, is not
//!   being deleted and has an available replica, and reads its configuration from that
//!   Deployment's arguments, as rendered (`--cluster-name`, `--aws-vpc-id`, `--aws-region`,
//!   `--default-load-balancer-scheme`): with the controller gone, nothing releases an Ingress;
//! - it resolves each new ALB's subnets in EC2 as the controller does ([`subnets`]: named in
//!   `alb.ingress.kubernetes.io/subnets`, else discovered in the controller's VPC by role tag,
//!   else by reachability, without subnets of other clusters or with fewer than 8 free
//!   addresses, one per zone, two zones at least). When that fails it makes no ALB, records a
//!   `Warning` event `FailedBuildModel` `Failed build model due to <why>` on the Ingress and
//!   tries again with the controller's backoff (5 ms doubling up to 1000 s), as the real one does.
//!
//! Without AWS, every Ingress of class `alb` gets its ALB, with or without a controller
//! Deployment. Either way it records `Normal` `SuccessfullyReconciled` events as the
//! controller does ([`events`]).

pub mod events;
pub mod subnets;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use self::events::Recorder;

/// The controller's Ingress finalizer.
pub const FINALIZER: &str = "ingress.k8s.aws/resources";
/// The controller's TargetGroupBinding finalizer.
pub const TGB_FINALIZER: &str = "elbv2.k8s.aws/resources";
/// The labels the controller puts on the TargetGroupBindings of an Ingress (an implicit
/// IngressGroup): its namespace and name.
pub const STACK_NAMESPACE_LABEL: &str = "ingress.k8s.aws/stack-namespace";
pub const STACK_NAME_LABEL: &str = "ingress.k8s.aws/stack-name";
/// The controller's Deployment, whose arguments configure the simulator with AWS.
pub const CONTROLLER_NAMESPACE: &str = "kube-system";
pub const CONTROLLER_DEPLOYMENT: &str = "aws-load-balancer-controller";

/// The first retry of a failed reconcile, doubled on every failure up to [`RETRY_MAX`]
/// (controller-runtime's default rate limiter).
pub const RETRY_FIRST: Duration = Duration::from_millis(5);
pub const RETRY_MAX: Duration = Duration::from_secs(1000);
/// How often an Ingress is looked at again while the controller does not run (a controller that
/// starts lists every Ingress).
const CONTROLLER_POLL: Duration = Duration::from_secs(1);

/// One simulated load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alb {
    /// The DNS name set on the Ingress.
    pub hostname: String,
    /// The loopback port that answers for it.
    pub port: u16,
    /// Its subnets, when resolved in AWS (empty without AWS).
    pub subnets: Vec<String>,
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
    /// The TargetGroupBindings made for it.
    bindings: Vec<String>,
}

type Albs = Arc<Mutex<BTreeMap<(String, String), Running>>>;

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long it takes to "provision" or "delete" a load balancer.
    pub delay: Duration,
    /// The region in host names (and of EC2, unless the controller's `--aws-region` says).
    pub region: String,
    /// Every "ALB" on one loopback port ([`AlbControllerSim::shared_port`]).
    pub shared: bool,
    /// moto's endpoint: act as the controller the cluster runs, resolving subnets in EC2 (see
    /// the module documentation). `None`: every Ingress of class `alb` gets its ALB.
    pub aws_endpoint: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            delay: AlbControllerSim::DEFAULT_DELAY,
            region: "us-east-2".into(),
            shared: false,
            aws_endpoint: None,
        }
    }
}

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

    /// Starts it with [`AlbControllerSim::DEFAULT_DELAY`] in region us-east-2, without AWS.
    /// Call inside a tokio runtime.
    pub fn start(client: Client) -> AlbControllerSim {
        AlbControllerSim::start_with(client, Self::DEFAULT_DELAY, "us-east-2")
    }

    /// Starts it with a delay and the region to put in host names, without AWS.
    pub fn start_with(client: Client, delay: Duration, region: &str) -> AlbControllerSim {
        let albs: Albs = Arc::default();
        let options = Options {
            delay,
            region: region.to_owned(),
            ..Options::default()
        };
        let task = tokio::spawn(run(client, options, albs.clone(), None));
        AlbControllerSim {
            task,
            albs,
            shared: None,
        }
    }

    /// Starts it with every "ALB" answering on one loopback port (see
    /// [`AlbControllerSim::shared_port`]): 200 for a `Host` that names a live ALB, 404 otherwise.
    /// For `make demo`, where the port must be known before any Ingress exists. Without AWS.
    pub async fn start_shared(
        client: Client,
        delay: Duration,
        region: &str,
    ) -> std::io::Result<AlbControllerSim> {
        let options = Options {
            delay,
            region: region.to_owned(),
            shared: true,
            aws_endpoint: None,
        };
        AlbControllerSim::launch(client, options).await
    }

    /// Starts it as `options` say. Call inside a tokio runtime.
    pub async fn launch(client: Client, options: Options) -> std::io::Result<AlbControllerSim> {
        let albs: Albs = Arc::default();
        let shared = if options.shared {
            Some(serve(Some(albs.clone())).await?)
        } else {
            None
        };
        let port = shared.as_ref().map(|(port, _)| *port);
        let task = tokio::spawn(run(client, options, albs.clone(), port));
        Ok(AlbControllerSim { task, albs, shared })
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

/// Of class `alb`: `spec.ingressClassName`, or the legacy annotation `kubernetes.io/ingress.class`.
pub fn is_alb_class(ingress: &Ingress) -> bool {
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

/// What the controller's Deployment configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerArgs {
    pub cluster: String,
    pub vpc: String,
    pub region: Option<String>,
    pub default_scheme: String,
}

/// The value of flag `name` in `args` (`--name=value` or `--name value`).
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    args.iter().enumerate().find_map(|(i, arg)| {
        if let Some(value) = arg.strip_prefix(&prefix) {
            Some(value)
        } else if arg == name {
            args.get(i + 1).map(String::as_str)
        } else {
            None
        }
    })
}

/// The configuration of a controller Deployment that runs (exists, is not being deleted, has an
/// available replica) and names its cluster and VPC; else `None` (the real one would not run:
/// on Fargate it needs `--aws-vpc-id`, having no instance metadata).
pub fn controller_args(deployment: &Deployment) -> Option<ControllerArgs> {
    if deployment.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let available = deployment
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    if available < 1 {
        return None;
    }
    let args: Vec<String> = deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.args.clone().unwrap_or_default())
        .collect();
    Some(ControllerArgs {
        cluster: flag(&args, "--cluster-name")?.to_owned(),
        vpc: flag(&args, "--aws-vpc-id")?.to_owned(),
        region: flag(&args, "--aws-region").map(str::to_owned),
        default_scheme: flag(&args, "--default-load-balancer-scheme")
            .unwrap_or("internal")
            .to_owned(),
    })
}

type Key = (String, String);

/// The simulator's loop state.
struct Sim {
    client: Client,
    options: Options,
    albs: Albs,
    shared: Option<u16>,
    recorder: Recorder,
    ec2: HashMap<String, aws_sdk_ec2::Client>,
    /// Failed reconciles in a row, per Ingress.
    failures: HashMap<Key, u32>,
    /// Ingresses with a retry scheduled.
    queued: HashSet<Key>,
    requeue: mpsc::UnboundedSender<Key>,
}

async fn run(client: Client, options: Options, albs: Albs, shared: Option<u16>) {
    let (requeue, mut requeued) = mpsc::unbounded_channel::<Key>();
    let mut sim = Sim {
        recorder: Recorder::new(client.clone()),
        client: client.clone(),
        options,
        albs,
        shared,
        ec2: HashMap::new(),
        failures: HashMap::new(),
        queued: HashSet::new(),
        requeue,
    };
    let all: Api<Ingress> = Api::all(client.clone());
    let mut events = watcher(all, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    loop {
        let ingress = tokio::select! {
            event = events.next() => match event {
                None => return,
                Some(Err(_)) => continue,
                Some(Ok(ingress)) => ingress,
            },
            Some(key) = requeued.recv() => {
                sim.queued.remove(&key);
                let api: Api<Ingress> = Api::namespaced(client.clone(), &key.0);
                match api.get_opt(&key.1).await {
                    Ok(Some(ingress)) => ingress,
                    Ok(None) => {
                        sim.failures.remove(&key);
                        continue;
                    }
                    Err(_) => {
                        sim.retry_in(key, CONTROLLER_POLL);
                        continue;
                    }
                }
            },
        };
        sim.reconcile(ingress).await;
    }
}

impl Sim {
    /// Looks at `key` again after `after`, unless a retry is already scheduled.
    fn retry_in(&mut self, key: Key, after: Duration) {
        if !self.queued.insert(key.clone()) {
            return;
        }
        let requeue = self.requeue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = requeue.send(key);
        });
    }

    /// A failed reconcile: retried with the controller's backoff.
    fn failed(&mut self, key: Key) {
        let failures = self.failures.entry(key.clone()).or_default();
        let after = RETRY_FIRST
            .saturating_mul(2u32.saturating_pow((*failures).min(30)))
            .min(RETRY_MAX);
        *failures += 1;
        self.retry_in(key, after);
    }

    async fn ec2(&mut self, region: &str) -> Option<aws_sdk_ec2::Client> {
        let endpoint = self.options.aws_endpoint.clone()?;
        if !self.ec2.contains_key(region) {
            let config = crate::enis::moto_config(&endpoint, region).await;
            self.ec2
                .insert(region.to_owned(), aws_sdk_ec2::Client::new(&config));
        }
        self.ec2.get(region).cloned()
    }

    /// The running controller's configuration (with AWS); `None` while it does not run.
    async fn controller(&self) -> Option<ControllerArgs> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), CONTROLLER_NAMESPACE);
        let deployment = api.get_opt(CONTROLLER_DEPLOYMENT).await.ok()??;
        controller_args(&deployment)
    }

    async fn reconcile(&mut self, ingress: Ingress) {
        if !is_alb_class(&ingress) {
            return;
        }
        let namespace = ingress.namespace().unwrap_or_default();
        let name = ingress.name_any();
        let key: Key = (namespace.clone(), name.clone());
        let controller = if self.options.aws_endpoint.is_some() {
            match self.controller().await {
                Some(args) => Some(args),
                None => {
                    // Nothing acts on Ingresses while the controller does not run.
                    self.retry_in(key, CONTROLLER_POLL);
                    return;
                }
            }
        } else {
            None
        };
        let client = self.client.clone();
        let api: Api<Ingress> = Api::namespaced(client.clone(), &namespace);
        if ingress.metadata.deletion_timestamp.is_some() {
            if ingress.finalizers().iter().any(|f| f == FINALIZER) {
                tokio::time::sleep(self.options.delay).await;
                release_bindings(&client, &namespace, &name).await;
                if let Some(running) = lock(&self.albs).remove(&key) {
                    running.server.abort();
                }
                release(&api, &ingress, FINALIZER).await;
            }
            self.failures.remove(&key);
            return;
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
        let existing = lock(&self.albs).get(&key).map(|r| r.alb.clone());
        let alb = match existing {
            Some(alb) => alb,
            None => {
                let subnets = match &controller {
                    None => Vec::new(),
                    Some(args) => {
                        let region = args
                            .region
                            .clone()
                            .unwrap_or_else(|| self.options.region.clone());
                        let Some(ec2) = self.ec2(&region).await else {
                            return;
                        };
                        let annotations = ingress.annotations().clone();
                        match subnets::resolve(
                            &ec2,
                            &args.vpc,
                            &args.cluster,
                            &annotations,
                            &args.default_scheme,
                        )
                        .await
                        {
                            Ok(found) => found.into_iter().map(|s| s.id).collect(),
                            Err(why) => {
                                self.recorder
                                    .record(
                                        &ingress,
                                        "Warning",
                                        events::FAILED_BUILD_MODEL,
                                        &format!("Failed build model due to {why}"),
                                    )
                                    .await;
                                self.failed(key);
                                return;
                            }
                        }
                    }
                };
                let made = match self.shared {
                    Some(port) => Ok((port, tokio::spawn(async {}))),
                    None => serve(None).await,
                };
                let Ok((port, server)) = made else {
                    self.failed(key);
                    return;
                };
                let alb = Alb {
                    hostname: hostname_for(&namespace, &name, &self.options.region),
                    port,
                    subnets,
                };
                tokio::time::sleep(self.options.delay).await;
                lock(&self.albs).insert(
                    key.clone(),
                    Running {
                        alb: alb.clone(),
                        server,
                        bindings: Vec::new(),
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
        let made = lock(&self.albs)
            .get(&key)
            .map(|r| r.bindings.clone())
            .unwrap_or_default();
        let bindings = ensure_bindings(&client, &ingress, &self.options.region, &made).await;
        if let Some(running) = lock(&self.albs).get_mut(&key) {
            running.bindings = bindings;
        }
        self.failures.remove(&key);
        self.recorder
            .record(
                &ingress,
                "Normal",
                events::SUCCESSFULLY_RECONCILED,
                "Successfully reconciled",
            )
            .await;
    }
}

fn binding_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("elbv2.k8s.aws", "v1beta1", "TargetGroupBinding");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "targetgroupbindings");
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// The backend Service ports of an Ingress: (service, port number or name), without repeats.
pub fn backends(ingress: &Ingress) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = Vec::new();
    let spec = ingress.spec.clone().unwrap_or_default();
    let mut all: Vec<_> = spec.default_backend.into_iter().collect();
    for rule in spec.rules.unwrap_or_default() {
        for path in rule.http.map(|h| h.paths).unwrap_or_default() {
            all.push(path.backend);
        }
    }
    for backend in all {
        let Some(service) = backend.service else {
            continue;
        };
        let port = service.port.unwrap_or_default();
        let port = match (port.number, port.name) {
            (Some(n), _) => json!(n),
            (None, Some(name)) => json!(name),
            (None, None) => continue,
        };
        let entry = (service.name, port);
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    out
}

/// `k8s-<namespace>-<service>-<hash>`, the controller's way of naming target groups and their
/// bindings.
pub fn binding_name(namespace: &str, ingress: &str, service: &str, port: &str) -> String {
    let short = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect::<String>()
    };
    let hash = format!(
        "{:016x}",
        fnv(&format!("{namespace}/{ingress}-{service}:{port}"))
    );
    format!(
        "k8s-{}-{}-{}",
        short(namespace),
        short(service),
        &hash[..10]
    )
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Makes the bindings of an Ingress that are not made yet; returns those that exist. Nothing
/// while the CRD is not served (or a webhook refuses): a later event tries again.
async fn ensure_bindings(
    client: &Client,
    ingress: &Ingress,
    region: &str,
    made: &[String],
) -> Vec<String> {
    let namespace = ingress.namespace().unwrap_or_default();
    let stack = ingress.name_any();
    let api = binding_api(client, &namespace);
    let target_type = ingress
        .annotations()
        .get("alb.ingress.kubernetes.io/target-type")
        .cloned()
        .unwrap_or_else(|| "ip".into());
    let mut out = made.to_vec();
    for (service, port) in backends(ingress) {
        let port_text = match &port {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let name = binding_name(&namespace, &stack, &service, &port_text);
        if out.contains(&name) {
            continue;
        }
        let arn = format!(
            "arn:aws:elasticloadbalancing:{region}:123456789012:targetgroup/{name}/{:016x}",
            fnv(&name)
        );
        let body = json!({
            "apiVersion": "elbv2.k8s.aws/v1beta1",
            "kind": "TargetGroupBinding",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {STACK_NAMESPACE_LABEL: namespace, STACK_NAME_LABEL: stack},
                "finalizers": [TGB_FINALIZER],
            },
            "spec": {
                "serviceRef": {"name": service, "port": port},
                "targetGroupARN": arn,
                "targetType": target_type,
                "ipAddressType": "ipv4",
            },
        });
        let applied = api
            .patch(
                &name,
                &PatchParams::apply("alb-controller-sim").force(),
                &Patch::Apply(&body),
            )
            .await;
        if applied.is_ok() {
            out.push(name);
        }
    }
    out
}

/// Deletes the bindings of an Ingress and releases their finalizer, as the controller does
/// once it deregistered the targets and deleted the target groups.
async fn release_bindings(client: &Client, namespace: &str, stack: &str) {
    let api = binding_api(client, namespace);
    let selector = format!("{STACK_NAMESPACE_LABEL}={namespace},{STACK_NAME_LABEL}={stack}");
    let Ok(list) = api.list(&ListParams::default().labels(&selector)).await else {
        return;
    };
    for binding in list.items {
        let _ = api
            .delete(&binding.name_any(), &DeleteParams::default())
            .await;
        release(&api, &binding, TGB_FINALIZER).await;
    }
}

/// Takes the controller's `finalizer` off `object`, keeping any others (best effort: an object
/// already gone has nothing to release).
async fn release<K>(api: &Api<K>, object: &K, finalizer: &str)
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    let rest: Vec<&String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .collect();
    let _ = api
        .patch(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": rest}})),
        )
        .await;
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
