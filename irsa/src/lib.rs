//! `irsa`: an IAM role for a Kubernetes service account (IAM Roles for Service Accounts) on any
//! EKS cluster: the role trusted by the cluster's OIDC provider for exactly that service account,
//! its inline and managed policies reconciled without a gap in permissions, and the service
//! account annotated with the role's ARN.

pub mod policy;
pub mod role;
pub mod sa;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::aws::AwsError;
use common::state::StateError;
use common::step::{EXIT_FAILED, EXIT_USAGE};
use common::{Context, State, StepFailure};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::policy::{Document, Source};

/// This step's section: a list, one entry per service account.
pub const SECTION: &str = "irsa";

/// Which service account, on which cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Namespace of the service account.
    #[arg(long, value_name = "NS", default_value = "kube-system")]
    pub namespace: String,
    /// Name of the service account.
    #[arg(long = "sa-name", value_name = "NAME")]
    pub sa_name: String,
    /// Role name (default `sa-<sa>-in-<cluster>-<region>`, shortened with a hash past 64 characters).
    #[arg(long, value_name = "NAME")]
    pub role_name: Option<String>,
    /// Reach Kubernetes through this kubeconfig instead of the cluster's endpoint and an EKS token.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Context of --kubeconfig (default: its current context).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,
}

/// Flags of `ensure`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnsureArgs {
    #[command(flatten)]
    pub target: Target,
    /// Inline policy document: a FILE or an https:// URL; repeatable.
    #[arg(long = "policy-document", value_name = "FILE|URL")]
    pub policy_documents: Vec<String>,
    /// SHA-256 (hex) the N-th URL document must have; give one per URL, in order.
    #[arg(long = "policy-sha256", value_name = "HEX")]
    pub policy_sha256: Vec<String>,
    /// Managed policy to attach; repeatable.
    #[arg(long = "policy-arn", value_name = "ARN")]
    pub policy_arns: Vec<String>,
    /// Roll the Deployments whose pods use the service account when its annotation changed.
    #[arg(long)]
    pub restart: bool,
}

/// Flags of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: Target,
}

/// Flags of `list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

/// One inline policy as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineRecord {
    pub name: String,
    pub source: String,
    pub sha256: String,
}

/// One entry of the `irsa` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub cluster_name: String,
    pub region: String,
    pub namespace: String,
    pub service_account: String,
    pub role_name: String,
    pub role_arn: String,
    pub provider_arn: String,
    #[serde(default)]
    pub inline_policies: Vec<InlineRecord>,
    #[serde(default)]
    pub managed_policies: Vec<String>,
    /// True when this tool created the service account (delete then deletes it).
    #[serde(default)]
    pub service_account_created: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Entry {
    fn is_for(&self, cluster: &str, namespace: &str, name: &str) -> bool {
        self.cluster_name == cluster && self.namespace == namespace && self.service_account == name
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cluster(#[from] common::cluster::PickError),
    #[error("--namespace `{value}` is not a valid namespace: {reason}")]
    Namespace { value: String, reason: String },
    #[error("--sa-name `{value}` is not a valid service account name: {reason}")]
    ServiceAccount { value: String, reason: String },
    #[error("--role-name `{value}` is not a valid role name: {reason}")]
    RoleName { value: String, reason: String },
    #[error("--policy-document `{value}`: {reason}")]
    PolicySource { value: String, reason: String },
    #[error("--policy-document {source_name}: {reason}")]
    PolicyDocument { source_name: String, reason: String },
    #[error("{0}")]
    PolicySize(String),
    #[error("--policy-arn `{value}`: {reason}")]
    PolicyArn { value: String, reason: String },
    #[error(
        "--policy-sha256 was given {given} times for {urls} URL documents; give one per URL, in order"
    )]
    ShaCount { given: usize, urls: usize },
    #[error(
        "--policy-document {url} has SHA-256 {got}, not the pinned {expected}; check the source, then update --policy-sha256"
    )]
    ShaMismatch {
        url: String,
        expected: String,
        got: String,
    },
    #[error("{0}")]
    StateMismatch(String),
    #[error(transparent)]
    State(#[from] StateError),

    #[error("cannot fetch --policy-document {url}: {reason} (nothing was changed)")]
    FetchPolicy { url: String, reason: String },
    #[error(
        "cluster {cluster} was not found in {region}; check --cluster and --region (nothing was changed)"
    )]
    ClusterNotFound { cluster: String, region: String },
    #[error("DescribeCluster {cluster}")]
    DescribeCluster { cluster: String, source: AwsError },
    #[error("cluster {cluster} reports no OIDC issuer (nothing was changed)")]
    NoIssuer { cluster: String },
    #[error("cluster {cluster} reports no endpoint; pass --kubeconfig (nothing was changed)")]
    NoEndpoint { cluster: String },
    #[error("GetCallerIdentity")]
    CallerIdentity { source: AwsError },
    #[error(
        "the cluster's IAM OIDC provider {arn} does not exist; run `eks-oidc ensure` first (nothing was changed)"
    )]
    NoProvider { arn: String },
    #[error("{action} {target}")]
    Iam {
        action: &'static str,
        target: String,
        source: AwsError,
    },
    #[error(
        "namespace {namespace} does not exist in the cluster; create it first (the IAM role is in place)"
    )]
    NoNamespace { namespace: String },
    #[error("cannot {action} {target}")]
    Kube {
        action: &'static str,
        target: String,
        source: Box<kube::Error>,
    },
    #[error(transparent)]
    KubeClient(#[from] common::kube::KubeClientError),
    #[error("cannot make the EKS token")]
    Token(#[from] common::token::TokenError),
}

impl StepFailure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Cluster(_)
            | Error::Namespace { .. }
            | Error::ServiceAccount { .. }
            | Error::RoleName { .. }
            | Error::PolicySource { .. }
            | Error::PolicyDocument { .. }
            | Error::PolicySize(_)
            | Error::PolicyArn { .. }
            | Error::ShaCount { .. }
            | Error::ShaMismatch { .. }
            | Error::StateMismatch(_)
            | Error::State(_) => EXIT_USAGE,
            _ => EXIT_FAILED,
        }
    }
}

/// The cluster this run is about: `--cluster`, else the state's (its `cluster` section, else the
/// one cluster its `irsa` entries are for); never both differing.
pub fn pick_cluster(flag: Option<&str>, state: &State) -> Result<String, Error> {
    let recorded: BTreeSet<String> = entries(state)?
        .into_iter()
        .map(|e| e.cluster_name)
        .collect();
    let only_recorded = (recorded.len() == 1)
        .then(|| recorded.first().cloned())
        .flatten();
    let known = state.str_at("cluster", "name").or(only_recorded.as_deref());
    Ok(common::cluster::pick(flag, known)?)
}

fn check_target(target: &Target) -> Result<(), Error> {
    sa::check_label(&target.namespace).map_err(|reason| Error::Namespace {
        value: target.namespace.clone(),
        reason,
    })?;
    sa::check_subdomain(&target.sa_name).map_err(|reason| Error::ServiceAccount {
        value: target.sa_name.clone(),
        reason,
    })?;
    if let Some(name) = &target.role_name {
        role::check_role_name(name).map_err(|reason| Error::RoleName {
            value: name.clone(),
            reason,
        })?;
    }
    Ok(())
}

/// The role name: the one the state recorded for this account, else --role-name, else the seed's.
fn pick_role_name(
    target: &Target,
    recorded: Option<&Entry>,
    cluster: &str,
    region: &str,
) -> Result<String, Error> {
    match (recorded, &target.role_name) {
        (Some(entry), Some(flag)) if *flag != entry.role_name => {
            Err(Error::StateMismatch(format!(
                "the state records role {} for {}/{}; --role-name {flag} would leave it behind. Run `irsa delete` first, or drop --role-name",
                entry.role_name, target.namespace, target.sa_name
            )))
        }
        (Some(entry), _) => Ok(entry.role_name.clone()),
        (None, Some(flag)) => Ok(flag.clone()),
        (None, None) => Ok(role::role_name(&target.sa_name, cluster, region)),
    }
}

/// Reads and checks every document before anything else happens.
pub async fn load_documents(values: &[String], pins: &[String]) -> Result<Vec<Document>, Error> {
    let sources: Vec<Source> = values
        .iter()
        .map(|v| {
            Source::parse(v).map_err(|reason| Error::PolicySource {
                value: v.clone(),
                reason,
            })
        })
        .collect::<Result<_, _>>()?;
    let urls = sources
        .iter()
        .filter(|s| matches!(s, Source::Url(_)))
        .count();
    if pins.len() != urls && !pins.is_empty() {
        return Err(Error::ShaCount {
            given: pins.len(),
            urls,
        });
    }
    let names = policy::names(&sources);
    let mut pins = pins.iter();
    let mut documents = Vec::new();
    for (source, name) in sources.into_iter().zip(names) {
        let text = match &source {
            Source::File(path) => {
                std::fs::read_to_string(path).map_err(|e| Error::PolicySource {
                    value: path.display().to_string(),
                    reason: format!("cannot read it: {e}"),
                })?
            }
            Source::Url(url) => {
                let text = fetch(url).await?;
                if let Some(expected) = pins.next() {
                    let got = policy::sha256_hex(text.as_bytes());
                    if !got.eq_ignore_ascii_case(expected.trim()) {
                        return Err(Error::ShaMismatch {
                            url: url.clone(),
                            expected: expected.clone(),
                            got,
                        });
                    }
                }
                text
            }
        };
        let json = policy::check(&text).map_err(|reason| Error::PolicyDocument {
            source_name: source.to_string(),
            reason,
        })?;
        documents.push(Document {
            name,
            source,
            text: json.to_string(),
            sha256: policy::sha256_hex(text.as_bytes()),
            json,
        });
    }
    policy::check_total(&documents).map_err(Error::PolicySize)?;
    Ok(documents)
}

async fn fetch(url: &str) -> Result<String, Error> {
    let failed = |reason: String| Error::FetchPolicy {
        url: url.to_owned(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .https_only(true)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let answer = client
        .get(url)
        .send()
        .await
        .map_err(|e| failed(common::step::error_chain(&e)))?;
    if !answer.status().is_success() {
        return Err(failed(format!("HTTP {}", answer.status())));
    }
    answer.text().await.map_err(|e| failed(e.to_string()))
}

/// The AWS clients this tool uses.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub eks: aws_sdk_eks::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            iam: aws_sdk_iam::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
        }
    }
}

/// What the tool needs to know of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub issuer: Option<String>,
    pub arn: Option<String>,
    pub endpoint: Option<String>,
    pub ca_data: Option<String>,
}

impl Facts {
    /// What the state's `cluster` section says of `cluster`.
    pub fn from_state(state: &State, cluster: &str) -> Facts {
        if state.str_at("cluster", "name") != Some(cluster) {
            return Facts::default();
        }
        let get = |key| state.str_at("cluster", key).map(str::to_owned);
        Facts {
            issuer: get("oidcIssuer"),
            arn: get("arn"),
            endpoint: get("endpoint"),
            ca_data: get("certificateAuthorityData"),
        }
    }

    /// Fills what is missing from DescribeCluster (one call, only when something is missing).
    pub async fn complete(
        mut self,
        eks: &aws_sdk_eks::Client,
        cluster: &str,
        region: &str,
        need_endpoint: bool,
    ) -> Result<Facts, Error> {
        if self.issuer.is_some()
            && self.arn.is_some()
            && (!need_endpoint || (self.endpoint.is_some() && self.ca_data.is_some()))
        {
            return Ok(self);
        }
        let described = common::cluster::describe(eks, cluster)
            .await
            .map_err(|source| Error::DescribeCluster {
                cluster: cluster.to_owned(),
                source,
            })?
            .ok_or_else(|| Error::ClusterNotFound {
                cluster: cluster.to_owned(),
                region: region.to_owned(),
            })?;
        let keep = |now: Option<String>, found: Option<&str>| {
            now.or(found.filter(|s| !s.is_empty()).map(str::to_owned))
        };
        self.issuer = keep(
            self.issuer,
            described
                .identity()
                .and_then(|i| i.oidc())
                .and_then(|o| o.issuer()),
        );
        self.arn = keep(self.arn, described.arn());
        self.endpoint = keep(self.endpoint, described.endpoint());
        self.ca_data = keep(
            self.ca_data,
            described.certificate_authority().and_then(|c| c.data()),
        );
        Ok(self)
    }
}

/// `arn:<partition>:iam::<account>:oidc-provider/<issuer host/path>`: from the state's `oidc`
/// section, else from the cluster's ARN (same account), else from the caller's identity.
pub async fn provider_arn(
    state: &State,
    cluster: &str,
    facts: &Facts,
    sts: &aws_sdk_sts::Client,
) -> Result<String, Error> {
    let issuer = facts.issuer.as_deref().ok_or_else(|| Error::NoIssuer {
        cluster: cluster.to_owned(),
    })?;
    if let Some(arn) = state.str_at("oidc", "providerArn")
        && state.str_at("oidc", "issuer") == Some(issuer)
    {
        return Ok(arn.to_owned());
    }
    let (partition, account) = match facts
        .arn
        .as_deref()
        .map(|a| a.split(':').collect::<Vec<_>>())
    {
        Some(parts) if parts.len() > 4 && !parts[4].is_empty() => {
            (parts[1].to_owned(), parts[4].to_owned())
        }
        _ => {
            let me = sts
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| Error::CallerIdentity { source: e.into() })?;
            let partition = common::aws::caller_partition(
                me.arn(),
                &sts.config()
                    .region()
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
            );
            (partition, me.account().unwrap_or_default().to_owned())
        }
    };
    Ok(format!(
        "arn:{partition}:iam::{account}:oidc-provider/{}",
        issuer.trim_start_matches("https://")
    ))
}

async fn check_provider(iam: &aws_sdk_iam::Client, arn: &str) -> Result<(), Error> {
    match iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let source = AwsError::from(e);
            if source.is("NoSuchEntity") {
                Err(Error::NoProvider {
                    arn: arn.to_owned(),
                })
            } else {
                Err(Error::Iam {
                    action: "GetOpenIDConnectProvider",
                    target: arn.to_owned(),
                    source,
                })
            }
        }
    }
}

/// The Kubernetes client: --kubeconfig, else the cluster's endpoint, CA and an EKS token.
async fn kube_client(
    target: &Target,
    facts: &Facts,
    ctx: &Context,
    cluster: &str,
) -> Result<kube::Client, Error> {
    if let Some(path) = &target.kubeconfig {
        return Ok(common::kube::client_from_kubeconfig(path, target.context.as_deref()).await?);
    }
    let (Some(endpoint), Some(ca)) = (&facts.endpoint, &facts.ca_data) else {
        return Err(Error::NoEndpoint {
            cluster: cluster.to_owned(),
        });
    };
    let tokens = common::kubeauth::TokenSource::eks(&ctx.aws, cluster);
    tokens.sign_now().await?;
    Ok(common::kube::client_for_eks(
        endpoint,
        ca,
        std::sync::Arc::new(tokens),
    )?)
}

fn entries(state: &State) -> Result<Vec<Entry>, Error> {
    Ok(state.section::<Vec<Entry>>(SECTION)?.unwrap_or_default())
}

fn store(
    state: &mut State,
    mut list: Vec<Entry>,
    entry: Option<Entry>,
    cluster: &str,
    namespace: &str,
    name: &str,
) {
    list.retain(|e| !e.is_for(cluster, namespace, name));
    list.extend(entry);
    if list.is_empty() {
        state.clear_section(SECTION);
    } else {
        state.set_section(SECTION, &list);
    }
}

/// `irsa ensure`.
pub async fn ensure(state: &mut State, ctx: &Context, args: &EnsureArgs) -> Result<(), Error> {
    // Every refusal comes before any call.
    let target = &args.target;
    let list = entries(state)?;
    let cluster = pick_cluster(target.cluster.as_deref(), state)?;
    check_target(target)?;
    let recorded = list
        .iter()
        .find(|e| e.is_for(&cluster, &target.namespace, &target.sa_name))
        .cloned();
    let role_name = pick_role_name(target, recorded.as_ref(), &cluster, &ctx.region)?;
    let mut managed = BTreeSet::new();
    for arn in &args.policy_arns {
        policy::check_policy_arn(arn).map_err(|reason| Error::PolicyArn {
            value: arn.clone(),
            reason,
        })?;
        managed.insert(arn.clone());
    }
    let documents = load_documents(&args.policy_documents, &args.policy_sha256).await?;

    let clients = Clients::new(&ctx.aws);
    let facts = Facts::from_state(state, &cluster)
        .complete(
            &clients.eks,
            &cluster,
            &ctx.region,
            target.kubeconfig.is_none(),
        )
        .await?;
    let provider = provider_arn(state, &cluster, &facts, &clients.sts).await?;
    check_provider(&clients.iam, &provider).await?;
    let issuer = facts.issuer.clone().unwrap_or_default();
    let wanted = role::Wanted {
        name: role_name.clone(),
        trust: role::trust_policy(&provider, &issuer, &target.namespace, &target.sa_name),
        tags: BTreeMap::from([
            (role::TAG_MANAGED_BY.to_owned(), "irsa".to_owned()),
            (role::TAG_CLUSTER.to_owned(), cluster.clone()),
            (
                role::TAG_SERVICE_ACCOUNT.to_owned(),
                format!("{}/{}", target.namespace, target.sa_name),
            ),
        ]),
        inline: documents,
        attached: managed,
    };
    let current = role::read(&clients.iam, &role_name).await?;
    let changes = role::plan(current.as_ref(), &wanted);
    let kube = kube_client(target, &facts, ctx, &cluster).await?;
    let annotation = sa::current(&kube, &target.namespace, &target.sa_name).await?;
    let account = format!("{}/{}", target.namespace, target.sa_name);

    if ctx.dry_run {
        for line in changes.describe(&role_name) {
            tracing::info!("dry run: would {line}");
        }
        if changes.is_empty() {
            tracing::info!("dry run: role {role_name} is up to date");
        }
        let arn = current
            .as_ref()
            .map_or("(the new role's ARN)", |c| c.arn.as_str());
        match &annotation {
            None => tracing::info!(
                "dry run: would create service account {account} annotated {}={arn}",
                sa::ROLE_ANNOTATION
            ),
            Some(Some(now)) if now == arn => {
                tracing::info!("dry run: service account {account} is up to date")
            }
            Some(_) => tracing::info!(
                "dry run: would set {}={arn} on service account {account}",
                sa::ROLE_ANNOTATION
            ),
        }
        return Ok(());
    }

    if changes.is_empty() {
        tracing::info!("role {role_name} is up to date");
    }
    let mut entry = Entry {
        cluster_name: cluster.clone(),
        region: ctx.region.clone(),
        namespace: target.namespace.clone(),
        service_account: target.sa_name.clone(),
        role_name: role_name.clone(),
        role_arn: current.as_ref().map(|c| c.arn.clone()).unwrap_or_default(),
        provider_arn: provider.clone(),
        inline_policies: wanted
            .inline
            .iter()
            .map(|d| InlineRecord {
                name: d.name.clone(),
                source: d.source.to_string(),
                sha256: d.sha256.clone(),
            })
            .collect(),
        managed_policies: wanted.attached.iter().cloned().collect(),
        service_account_created: recorded.as_ref().is_some_and(|r| r.service_account_created),
        extra: recorded.map(|r| r.extra).unwrap_or_default(),
    };
    let role_arn = {
        let early = |arn: &str| {
            let mut made = entry.clone();
            made.role_arn = arn.to_owned();
            store(
                state,
                list.clone(),
                Some(made),
                &cluster,
                &target.namespace,
                &target.sa_name,
            );
        };
        role::apply(
            &clients.iam,
            &wanted,
            &changes,
            entry.role_arn.clone(),
            early,
        )
        .await?
    };
    entry.role_arn = role_arn.clone();
    store(
        state,
        list.clone(),
        Some(entry.clone()),
        &cluster,
        &target.namespace,
        &target.sa_name,
    );

    let changed = match &annotation {
        Some(Some(now)) if *now == role_arn => {
            tracing::info!("service account {account} already carries the role");
            false
        }
        _ => {
            sa::annotate(&kube, &target.namespace, &target.sa_name, &role_arn).await?;
            if annotation.is_none() {
                tracing::info!(
                    "created service account {account} with {}={role_arn}",
                    sa::ROLE_ANNOTATION
                );
                entry.service_account_created = true;
            } else {
                tracing::info!(
                    "annotated service account {account} with {}={role_arn}",
                    sa::ROLE_ANNOTATION
                );
            }
            true
        }
    };
    store(
        state,
        list,
        Some(entry),
        &cluster,
        &target.namespace,
        &target.sa_name,
    );
    if args.restart {
        if changed {
            let rolled = sa::restart_users(&kube, &target.namespace, &target.sa_name).await?;
            if rolled.is_empty() {
                tracing::info!(
                    "no Deployment in {} runs as {}; nothing to restart",
                    target.namespace,
                    target.sa_name
                );
            } else {
                tracing::info!(
                    "restarted Deployments {} so their pods get the role",
                    rolled.join(", ")
                );
            }
        } else {
            tracing::info!("the annotation did not change; no restart needed");
        }
    }
    Ok(())
}

/// `irsa delete`.
pub async fn delete(state: &mut State, ctx: &Context, args: &DeleteArgs) -> Result<(), Error> {
    let target = &args.target;
    let list = entries(state)?;
    let cluster = pick_cluster(target.cluster.as_deref(), state)?;
    check_target(target)?;
    let recorded = list
        .iter()
        .find(|e| e.is_for(&cluster, &target.namespace, &target.sa_name))
        .cloned();
    let role_name = pick_role_name(target, recorded.as_ref(), &cluster, &ctx.region)?;
    let account = format!("{}/{}", target.namespace, target.sa_name);
    let clients = Clients::new(&ctx.aws);
    let current = role::read(&clients.iam, &role_name).await?;

    // The service account first: a cluster that is gone already has no account to clean.
    let facts = Facts::from_state(state, &cluster);
    let facts = if target.kubeconfig.is_some() {
        facts
    } else {
        match facts
            .complete(&clients.eks, &cluster, &ctx.region, true)
            .await
        {
            Ok(facts) => facts,
            Err(Error::ClusterNotFound { .. }) => {
                tracing::info!("cluster {cluster} is gone; only the IAM role is left to delete");
                Facts::default()
            }
            Err(e) => return Err(e),
        }
    };
    if target.kubeconfig.is_some() || facts.endpoint.is_some() {
        let kube = kube_client(target, &facts, ctx, &cluster).await?;
        let ours = current
            .as_ref()
            .map(|c| c.arn.clone())
            .or(recorded.as_ref().map(|r| r.role_arn.clone()));
        match sa::current(&kube, &target.namespace, &target.sa_name).await? {
            None => tracing::info!("service account {account} does not exist"),
            Some(now) if now.is_some() && now != ours => {
                tracing::warn!(
                    "service account {account} names another role ({}); leaving it",
                    now.unwrap_or_default()
                );
            }
            Some(_) if ctx.dry_run => tracing::info!(
                "dry run: would {} service account {account}",
                if recorded.as_ref().is_some_and(|r| r.service_account_created) {
                    "delete"
                } else {
                    "remove the role annotation from"
                }
            ),
            Some(_) if recorded.as_ref().is_some_and(|r| r.service_account_created) => {
                sa::delete(&kube, &target.namespace, &target.sa_name).await?;
                tracing::info!("deleted service account {account} (irsa created it)");
            }
            Some(_) => {
                sa::remove_annotation(&kube, &target.namespace, &target.sa_name).await?;
                tracing::info!(
                    "removed {} from service account {account}",
                    sa::ROLE_ANNOTATION
                );
            }
        }
    }

    match (&current, ctx.dry_run) {
        (None, _) => tracing::info!("role {role_name} does not exist"),
        (Some(_), true) => tracing::info!(
            "dry run: would detach and delete every policy of role {role_name} and delete it"
        ),
        (Some(_), false) => {
            role::remove(&clients.iam, &role_name).await?;
            tracing::info!("deleted role {role_name}");
        }
    }
    if !ctx.dry_run {
        store(
            state,
            list,
            None,
            &cluster,
            &target.namespace,
            &target.sa_name,
        );
    }
    Ok(())
}

/// `irsa list`: the roles made for the cluster, as JSON, with a warning for stale trust.
pub async fn list(state: &State, ctx: &Context, args: &ListArgs) -> Result<String, Error> {
    let cluster = pick_cluster(args.cluster.as_deref(), state)?;
    let clients = Clients::new(&ctx.aws);
    let current = match Facts::from_state(state, &cluster)
        .complete(&clients.eks, &cluster, &ctx.region, false)
        .await
    {
        Ok(facts) => Some(provider_arn(state, &cluster, &facts, &clients.sts).await?),
        Err(Error::ClusterNotFound { .. }) => {
            tracing::warn!(
                "cluster {cluster} was not found; every role listed trusts a provider of a cluster that is gone"
            );
            None
        }
        Err(e) => return Err(e),
    };
    let mut roles = role::list(&clients.iam, &cluster, current.as_deref()).await?;
    if current.is_none() {
        roles.iter_mut().for_each(|r| r.stale = true);
    }
    for stale in roles.iter().filter(|r| r.stale) {
        tracing::warn!(
            "role {} ({}) trusts {}, not the cluster's current OIDC provider: re-run `irsa ensure` for it, or `irsa delete`",
            stale.role_name,
            stale.service_account,
            stale.provider_arn.as_deref().unwrap_or("no provider")
        );
    }
    let mut text = serde_json::to_string_pretty(&roles).expect("serializes");
    text.push('\n');
    Ok(text)
}

/// What a person running `irsa` by hand sees on stdout.
pub fn summary(state: &State) -> String {
    let list = state
        .section::<Vec<Entry>>(SECTION)
        .ok()
        .flatten()
        .unwrap_or_default();
    if list.is_empty() {
        return "no IRSA role recorded\n".into();
    }
    list.iter()
        .map(|e| {
            format!(
                "{}/{} on {} ({}): role {}\n",
                e.namespace, e.service_account, e.cluster_name, e.region, e.role_arn
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(role: Option<&str>) -> Target {
        Target {
            cluster: None,
            namespace: "kube-system".into(),
            sa_name: "sa".into(),
            role_name: role.map(str::to_owned),
            kubeconfig: None,
            context: None,
        }
    }

    fn entry(role: &str) -> Entry {
        Entry {
            cluster_name: "c".into(),
            region: "us-east-2".into(),
            namespace: "kube-system".into(),
            service_account: "sa".into(),
            role_name: role.into(),
            role_arn: format!("arn:aws:iam::1:role/{role}"),
            provider_arn: "p".into(),
            inline_policies: vec![],
            managed_policies: vec![],
            service_account_created: false,
            extra: Map::new(),
        }
    }

    #[test]
    fn role_name_precedence() {
        assert_eq!(
            pick_role_name(&target(None), None, "c", "us-east-2").unwrap(),
            "sa-sa-in-c-us-east-2"
        );
        assert_eq!(
            pick_role_name(&target(Some("mine")), None, "c", "r").unwrap(),
            "mine"
        );
        assert_eq!(
            pick_role_name(&target(None), Some(&entry("old")), "c", "r").unwrap(),
            "old"
        );
        assert_eq!(
            pick_role_name(&target(Some("old")), Some(&entry("old")), "c", "r").unwrap(),
            "old"
        );
        let err = pick_role_name(&target(Some("new")), Some(&entry("old")), "c", "r").unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
    }

    #[test]
    fn entries_are_kept_per_account() {
        let mut state = State::new();
        let a = entry("a");
        let mut b = entry("b");
        b.service_account = "other".into();
        store(
            &mut state,
            vec![],
            Some(a.clone()),
            "c",
            "kube-system",
            "sa",
        );
        let now = entries(&state).unwrap();
        store(
            &mut state,
            now,
            Some(b.clone()),
            "c",
            "kube-system",
            "other",
        );
        assert_eq!(entries(&state).unwrap(), vec![a.clone(), b.clone()]);
        let now = entries(&state).unwrap();
        store(&mut state, now, None, "c", "kube-system", "sa");
        assert_eq!(entries(&state).unwrap(), vec![b]);
        let now = entries(&state).unwrap();
        store(&mut state, now, None, "c", "kube-system", "other");
        assert!(state.raw(SECTION).is_none());
        assert_eq!(summary(&state), "no IRSA role recorded\n");
    }

    #[tokio::test]
    async fn documents_are_checked_before_anything() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#).unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"Statement":[]}"#).unwrap();
        let good_s = good.display().to_string();
        let docs = load_documents(std::slice::from_ref(&good_s), &[])
            .await
            .unwrap();
        assert_eq!(docs[0].name, "good");
        assert_eq!(docs[0].text, docs[0].json.to_string());
        let err = load_documents(&[bad.display().to_string()], &[])
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(err.to_string().contains("bad.json"), "{err}");
        let err = load_documents(&["http://example.com/p.json".into()], &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("http:// URL is refused"), "{err}");
        let err = load_documents(&[good_s], &["abc".into()])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ShaCount { given: 1, urls: 0 }));
        let err = load_documents(&["/no/such/file.json".into()], &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot read it"), "{err}");
    }
}
