//! `eks-deploy`: applies the manifests `eks-patch` rendered, by server-side apply in dependency
//! order, waiting where the next objects depend on the previous ones (CRDs Established, the
//! controller Available with its webhook endpoints ready, since its webhooks fail closed); then
//! waits for the Ingress's load balancer host name (giving up early on a controller failure that
//! persists, [`controller`]) and for HTTP 200 from it, and prints the URL. Each object is
//! recorded before its apply is sent. `delete` removes the Ingresses first (ours, and the
//! controller's others in namespaces it deletes) and waits until the controller has deleted
//! their ALBs and released them, then the webhook configurations, then everything else in
//! reverse order ([`teardown`]).

pub mod albs;
pub mod cli;
pub mod controller;
pub mod error;
pub mod fargate;
pub mod http;
pub mod kubeops;
pub mod manifests;
pub mod ownership;
pub mod ports;
pub mod teardown;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::wait::{Poll, wait_for_kube};
use common::{Context, State};
use serde_json::{Map, Value};

use crate::http::ConnectTo;
use crate::kubeops::Resolver;
use crate::manifests::Doc;
use crate::ownership::{Foreign, NotOurs};

pub use error::{Error, Usage};

/// This step's section.
pub const SECTION: &str = common::sections::deploy::KEY;
/// The finalizer the AWS Load Balancer Controller puts on Ingresses.
pub const INGRESS_FINALIZER: &str = "ingress.k8s.aws/resources";

/// Flags shared by `apply` and `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Apply the YAML files of this folder (by name) instead of the state's `patch` files.
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// The shared `--kubeconfig` (`common::cli::KubeArgs`, taken before or after the
    /// subcommand), set by `cli`: reach Kubernetes through it instead of the cluster's endpoint
    /// and an EKS token.
    #[arg(skip)]
    pub kubeconfig: Option<PathBuf>,
    /// The shared `--context` of `kubeconfig`, set by `cli` (default: its current-context).
    #[arg(skip)]
    pub context: Option<String>,
    /// How long all the waits together may take.
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
}

/// Flags of `apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub target: Target,
    /// Send the HTTP check for HOST:PORT to ADDR:PORT2 instead (curl's meaning); repeatable.
    #[arg(long = "connect-to", value_name = "HOST:PORT:ADDR:PORT2", value_parser = http::parse_connect_to)]
    pub connect_to: Vec<ConnectTo>,
    /// Take over the objects of the manifests that another field manager owns (force-apply
    /// them); they are recorded as adopted, and delete leaves them in place.
    #[arg(long)]
    pub adopt: bool,
}

/// Flags of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: Target,
    /// When an Ingress cannot be finalized (no controller): delete the webhook configurations,
    /// remove the finalizers of the Ingress and its TargetGroupBindings, and say which load
    /// balancers and target groups may remain.
    #[arg(long)]
    pub force: bool,
}

/// One applied object, and the `deploy` section: their one model lives in
/// `common::sections::deploy`.
pub use common::sections::deploy::{Applied, Section};

/// What this step makes of an applied object and a manifest document.
pub(crate) trait AppliedDoc {
    /// The record of `doc`, applied, made by us.
    fn of(doc: &Doc) -> Self;
    /// The document the record names (no content).
    fn as_doc(&self) -> Doc;
    /// The same object as `doc` (kind, namespace, name).
    fn is(&self, doc: &Doc) -> bool;
}

impl AppliedDoc for Applied {
    fn of(doc: &Doc) -> Applied {
        Applied {
            api_version: doc.api_version.clone(),
            kind: doc.kind.clone(),
            namespace: doc.namespace.clone(),
            name: doc.name.clone(),
            file: doc.file.clone(),
            adopted: false,
            pending: false,
            extra: Map::new(),
        }
    }

    fn as_doc(&self) -> Doc {
        Doc {
            file: self.file.clone(),
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            value: Value::Null,
        }
    }

    fn is(&self, doc: &Doc) -> bool {
        self.kind == doc.kind && self.namespace == doc.namespace && self.name == doc.name
    }
}

/// The cluster: `--cluster`, else the state's, else the one this step or `eks-patch` recorded.
fn pick_cluster(flag: Option<&str>, state: &State) -> Result<String, Error> {
    // Lenient, as a picker is: a section that cannot be read names no cluster.
    let own = common::sections::deploy::Facts::read(state).ok().flatten();
    let patch = common::sections::patch::Facts::read(state).ok().flatten();
    let recorded = own
        .and_then(|f| f.cluster_name)
        .or_else(|| patch.and_then(|f| f.cluster_name));
    Ok(common::cluster::pick_in(flag, state, recorded.as_deref())?)
}

/// A shared deadline for all the waits of one run.
struct Deadline(Instant);

impl Deadline {
    fn left(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

/// The webhook services the batch's webhook configurations call: (namespace, name).
fn webhook_services(docs: &[Doc]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for doc in docs
        .iter()
        .filter(|d| d.kind.ends_with("WebhookConfiguration"))
    {
        for hook in doc.value["webhooks"].as_array().into_iter().flatten() {
            let service = &hook["clientConfig"]["service"];
            if let (Some(ns), Some(name)) =
                (service["namespace"].as_str(), service["name"].as_str())
            {
                let key = (ns.to_owned(), name.to_owned());
                if !out.contains(&key) {
                    out.push(key);
                }
            }
        }
    }
    out
}

/// True when the Service `doc` selects the pods of Deployment `deployment`.
fn selects(service: &Doc, deployment: &Doc) -> bool {
    let Some(selector) = service.value["spec"]["selector"].as_object() else {
        return false;
    };
    let labels = &deployment.value["spec"]["template"]["metadata"]["labels"];
    service.namespace == deployment.namespace
        && !selector.is_empty()
        && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Waits for what the next objects depend on, after `applied` went in.
async fn gate(
    client: &kube::Client,
    docs: &[Doc],
    applied: &[Doc],
    deadline: &Deadline,
) -> Result<(), Error> {
    let hooks = webhook_services(docs);
    for doc in applied {
        match doc.kind.as_str() {
            "CustomResourceDefinition" => {
                wait_for_kube(
                    &format!("CRD {} to be Established", doc.name),
                    deadline.left(),
                    || async {
                        Ok::<_, Error>(match kubeops::crd_established(client, &doc.name).await? {
                            None => Poll::Ready(()),
                            Some(why) => Poll::Pending(why),
                        })
                    },
                )
                .await?;
            }
            "Deployment" => {
                let ns = doc.namespace.clone().unwrap_or_else(|| "default".into());
                wait_for_kube(
                    &format!("Deployment {ns}/{} to be available", doc.name),
                    deadline.left(),
                    || async {
                        Ok::<_, Error>(
                            match kubeops::deployment_pending(client, &ns, &doc.name).await? {
                                None => Poll::Ready(()),
                                Some(why) => Poll::Pending(why),
                            },
                        )
                    },
                )
                .await?;
                let served = docs
                    .iter()
                    .filter(|s| s.kind == "Service" && selects(s, doc))
                    .filter(|s| {
                        hooks.contains(&(s.namespace.clone().unwrap_or_default(), s.name.clone()))
                    });
                for service in served {
                    let sns = service.namespace.clone().unwrap_or_default();
                    wait_for_kube(
                        &format!(
                            "webhook Service {sns}/{} to have ready endpoints",
                            service.name
                        ),
                        deadline.left(),
                        || async {
                            Ok::<_, Error>(
                                match kubeops::endpoints_pending(client, &sns, &service.name)
                                    .await?
                                {
                                    None => Poll::Ready(()),
                                    Some(why) => Poll::Pending(why),
                                },
                            )
                        },
                    )
                    .await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses (before anything is applied) manifests whose pods no Fargate profile of the cluster
/// selects: they would stay Pending. The profiles come from the state when eks-cluster made
/// them, else from EKS; without the permission to read them, a warning says what was not
/// checked.
async fn check_fargate(
    state: &State,
    ctx: &Context,
    cluster: &str,
    docs: &[Doc],
) -> Result<(), Error> {
    let workloads = fargate::workloads(docs);
    if workloads.is_empty() {
        return Ok(());
    }
    let profiles = match fargate::from_state(state) {
        Some(profiles) => profiles,
        None => {
            let eks = aws_sdk_eks::Client::new(&ctx.aws);
            let read = async {
                match common::cluster::describe(&eks, cluster).await? {
                    Some(_) => fargate::from_eks(&eks, cluster).await.map(Some),
                    None => Ok(None),
                }
            };
            match read.await {
                Ok(Some(profiles)) => profiles,
                Ok(None) => {
                    return Err(Usage::NoSuchCluster {
                        cluster: cluster.to_owned(),
                        region: ctx.region.clone(),
                    }
                    .into());
                }
                Err(e) if e.is("AccessDeniedException") => {
                    tracing::warn!(
                        "cannot read the Fargate profiles of cluster {cluster} ({e}); not checked that they select the namespaces of the manifests (needs eks:DescribeCluster, eks:ListFargateProfiles, eks:DescribeFargateProfile)"
                    );
                    return Ok(());
                }
                Err(source) => {
                    return Err(Error::FargateProfiles {
                        cluster: cluster.to_owned(),
                        source,
                    });
                }
            }
        }
    };
    let missing = fargate::unselected(&workloads, &profiles);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(fargate::refusal(cluster, &profiles, &missing).into())
    }
}

/// The objects of the manifests that exist and belong to another field manager, each with the
/// server's conflict message: found by a server-side dry-run apply without `force` of every
/// object that exists, before anything is applied. An object whose dry run fails otherwise (a
/// fail-closed webhook whose controller is down, say) is taken as ours when its managedFields
/// prove it ([`ownership::made_by_us`]): its real apply, never forced, still stops at a
/// conflict. Else the failure stands.
async fn foreign_objects(
    resolver: &mut Resolver,
    docs: &[Doc],
) -> Result<Vec<(Doc, Foreign)>, Error> {
    let mut foreign = Vec::new();
    for doc in docs {
        let Some(live) = kubeops::live(resolver, doc).await? else {
            continue;
        };
        match kubeops::conflict(resolver, doc).await {
            Ok(None) => {}
            Ok(Some(why)) => foreign.push((
                doc.clone(),
                Foreign {
                    object: doc.label(),
                    why,
                },
            )),
            Err(e) => {
                let entries = live.metadata.managed_fields.unwrap_or_default();
                if !ownership::made_by_us(&entries) {
                    return Err(e);
                }
                tracing::warn!(
                    "could not check {} by a dry run ({e}); it is ours by its managedFields",
                    doc.label()
                );
            }
        }
    }
    Ok(foreign)
}

/// `eks-deploy apply`.
pub async fn apply(state: &mut State, ctx: &Context, args: &ApplyArgs) -> Result<(), Error> {
    let started = Instant::now();
    let deadline = Deadline(started + args.target.timeout);
    let cluster = pick_cluster(args.target.cluster.as_deref(), state)?;
    let (dir, files) = manifests::source(args.target.manifests.as_deref(), state)?;
    let docs = manifests::load(&dir, &files)?;
    ports::check(state, &docs)?;
    let previous: Option<Section> = state.section(SECTION)?;
    // The EKS token needs usable AWS credentials: without them, exit 2 before any call.
    if args.target.kubeconfig.is_none() {
        ctx.check_credentials().await?;
    }
    check_fargate(state, ctx, &cluster, &docs).await?;

    let client = common::cluster::kube_client(
        args.target.kubeconfig.as_deref(),
        args.target.context.as_deref(),
        state,
        &ctx.aws,
        &cluster,
    )
    .await?;
    let mut resolver = Resolver::new(client.clone()).await?;
    let foreign = foreign_objects(&mut resolver, &docs).await?;
    if !foreign.is_empty() && !args.adopt {
        return Err(Usage::from(NotOurs(foreign.into_iter().map(|(_, f)| f).collect())).into());
    }

    if ctx.dry_run {
        for doc in &docs {
            let verb = if foreign.iter().any(|(d, _)| d == doc) {
                "adopt (force-apply)"
            } else {
                match kubeops::live_version(&mut resolver, doc).await {
                    Ok(Some(_)) => "apply (exists)",
                    Ok(None) => "create",
                    Err(_) => "create (its kind is not served yet)",
                }
            };
            tracing::info!("dry run: would {verb} {}", doc.label());
        }
        return Ok(());
    }

    // What earlier runs recorded stays recorded (a failed or interrupted re-run, or manifests
    // that dropped an object, must not make delete forget what exists); this run updates it.
    let (recorded, extra) = match previous {
        Some(p) => (p.applied_objects, p.extra),
        None => (Vec::new(), Map::new()),
    };
    let dropped: Vec<String> = recorded
        .iter()
        .filter(|a| !docs.iter().any(|d| a.is(d)))
        .map(|a| a.as_doc().label())
        .collect();
    if !dropped.is_empty() {
        tracing::info!(
            "{} object(s) an earlier apply recorded are not in these manifests; they stay recorded, and delete removes them: {}",
            dropped.len(),
            dropped.join(", ")
        );
    }
    let mut section = Section {
        cluster_name: cluster.clone(),
        manifests_dir: dir.display().to_string(),
        applied_objects: recorded,
        hostname: None,
        url: None,
        seconds_to_first_200: None,
        extra,
    };
    let mut changed = 0;
    for file in &files {
        let batch: Vec<Doc> = docs.iter().filter(|d| &d.file == file).cloned().collect();
        for doc in &batch {
            let before = kubeops::live_version(&mut resolver, doc)
                .await
                .ok()
                .flatten();
            let adopt = foreign.iter().any(|(d, _)| d == doc);
            // The object is recorded before its apply is sent: should the run stop, or the
            // answer be lost, after the server made it, the state still names it.
            let index = match section.applied_objects.iter().position(|a| a.is(doc)) {
                Some(index) => {
                    let entry = &mut section.applied_objects[index];
                    entry.api_version = doc.api_version.clone();
                    entry.file = doc.file.clone();
                    entry.adopted |= adopt;
                    index
                }
                None => {
                    let mut entry = Applied::of(doc);
                    entry.adopted = adopt;
                    entry.pending = true;
                    section.applied_objects.push(entry);
                    section.applied_objects.len() - 1
                }
            };
            state.set_section(SECTION, &section);
            // An adopted object keeps its live mark on every apply (we own that annotation).
            let marked;
            let to_apply = if section.applied_objects[index].adopted {
                marked = ownership::marked_adopted(doc);
                &marked
            } else {
                doc
            };
            let after = kubeops::apply(&mut resolver, to_apply, adopt).await?;
            if adopt {
                tracing::warn!(
                    "adopted {}: took over the fields another field manager owned; delete will leave it in place",
                    doc.label()
                );
            }
            if before.is_none() || before != after {
                changed += 1;
                tracing::info!("applied {}", doc.label());
            }
            section.applied_objects[index].pending = false;
            state.set_section(SECTION, &section);
        }
        gate(&client, &docs, &batch, &deadline).await?;
    }
    if changed == 0 {
        tracing::info!("every object was already as applied; nothing changed");
    }

    let ingresses: Vec<&Doc> = docs.iter().filter(|d| d.kind == "Ingress").collect();
    if let Some(ingress) = ingresses.first() {
        let ns = ingress
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let hostname = wait_for_alb(&client, &ns, &ingress.name, &deadline).await?;
        section.hostname = Some(hostname.clone());
        state.set_section(SECTION, &section);
        let url = format!("http://{hostname}/");
        http::wait_200(&url, &args.connect_to, deadline.left()).await?;
        section.url = Some(url.clone());
        section.seconds_to_first_200 =
            Some((started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        state.set_section(SECTION, &section);
        tracing::info!("the app answers HTTP 200 at {url}");
    }
    Ok(())
}

/// Waits for the Ingress's load balancer host name, showing what the controller says about it,
/// and gives up early when it says it cannot make the ALB and keeps saying so
/// ([`controller::Watch`]).
async fn wait_for_alb(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    deadline: &Deadline,
) -> Result<String, Error> {
    let watch = std::cell::RefCell::new(controller::Watch::default());
    wait_for_kube(
        &format!("Ingress {namespace}/{name} to get its load balancer"),
        deadline.left(),
        || async {
            let Some((host, uid)) = kubeops::ingress_alb(client, namespace, name).await? else {
                return Ok(Poll::Pending("the Ingress is not there".into()));
            };
            if let Some(host) = host {
                return Ok(Poll::Ready(host));
            }
            let said = controller::said(client, namespace, name, &uid).await?;
            let verdict = watch.borrow_mut().observe(&said, Instant::now());
            match verdict {
                controller::Verdict::Quiet => Ok(Poll::Pending(
                    "no hostname yet (the ALB is being provisioned)".into(),
                )),
                controller::Verdict::Failing(said) => Ok(Poll::Pending(format!(
                    "no hostname yet; the controller reports {}: {}",
                    said.reason, said.message
                ))),
                controller::Verdict::Persists { said, for_ } => Err(Error::ControllerFailed {
                    ingress: format!("{namespace}/{name}"),
                    advice: controller::advice(&said),
                    reason: said.reason,
                    message: said.message,
                    count: said.count,
                    seconds: for_.as_secs(),
                }),
            }
        },
    )
    .await
}

pub use teardown::delete;

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(kind: &str, ns: Option<&str>, name: &str, value: Value) -> Doc {
        Doc {
            file: "f".into(),
            api_version: "v1".into(),
            kind: kind.into(),
            name: name.into(),
            namespace: ns.map(str::to_owned),
            value,
        }
    }

    #[test]
    fn webhook_services_and_selection() {
        let hook = doc(
            "ValidatingWebhookConfiguration",
            None,
            "v",
            serde_json::json!({"webhooks": [{"clientConfig": {"service": {"namespace": "kube-system", "name": "svc"}}},
                                              {"clientConfig": {"service": {"namespace": "kube-system", "name": "svc"}}}]}),
        );
        assert_eq!(
            webhook_services(&[hook]),
            [("kube-system".to_string(), "svc".to_string())]
        );
        let service = doc(
            "Service",
            Some("kube-system"),
            "svc",
            serde_json::json!({"spec": {"selector": {"app": "c"}}}),
        );
        let deployment = doc(
            "Deployment",
            Some("kube-system"),
            "c",
            serde_json::json!({"spec": {"template": {"metadata": {"labels": {"app": "c", "x": "y"}}}}}),
        );
        assert!(selects(&service, &deployment));
        let other = doc("Deployment", Some("default"), "c", deployment.value.clone());
        assert!(!selects(&service, &other));
    }
}
