//! `eks-oidc`: the IAM OIDC identity provider for an EKS cluster's issuer, what lets IAM roles
//! trust the cluster's service-account tokens (IRSA). The seed made it with
//! `eksctl utils associate-iam-oidc-provider`.
//!
//! The provider is found by its ARN (`arn:<partition>:iam::<account>:oidc-provider/<issuer host
//! and path>`), never by listing. A provider that exists already is kept as it is, except that
//! `sts.amazonaws.com` is added to its client ids when missing; a missing one is created with the
//! thumbprint of the issuer's TLS chain when the issuer can be reached and verified, else without
//! one. `delete` removes only a provider this tool created, unless `--force`.

pub mod issuer;
pub mod provider;
pub mod proxy;
pub mod thumbprint;

use std::path::PathBuf;
use std::time::Duration;

use common::aws::AwsError;
use common::state::StateError;
use common::step::{EXIT_FAILED, EXIT_USAGE};
use common::{Context, State, StepFailure};
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::issuer::Issuer;
use crate::provider::{Created, Provider};

/// This step's section of the state document.
pub const SECTION: &str = "oidc";
/// The audience of the tokens EKS pods exchange with STS: the client id the provider needs.
pub const STS_CLIENT_ID: &str = "sts.amazonaws.com";
/// The tag that names the cluster on what this tool makes.
pub const CLUSTER_TAG: &str = "eks-fargate-alb/cluster";
/// The tag that names the step on what this tool makes.
pub const STEP_TAG: &str = "eks-fargate-alb/step";

/// Flags of `ensure`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnsureArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// PEM file with extra CA certificates to trust when reading the issuer's TLS chain (for a
    /// private issuer); the platform's certificates are trusted too.
    #[arg(long, value_name = "FILE")]
    pub issuer_ca: Option<PathBuf>,
    /// How long connecting to the issuer and its TLS handshake may take.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
}

/// Flags of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// EKS cluster name, to find the provider when the state has no `oidc` section.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Delete the provider even though this tool did not create it (other roles may trust it).
    #[arg(long)]
    pub force: bool,
}

/// The `oidc` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    /// The issuer URL, `https://...`.
    pub issuer: String,
    pub provider_arn: String,
    /// The thumbprints IAM keeps for the provider (none when it was made without one).
    #[serde(default)]
    pub thumbprints: Vec<String>,
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// True when this tool created the provider, so `delete` may remove it.
    #[serde(default)]
    pub created_by_us: bool,
    pub cluster_name: String,
    pub region: String,
    /// Keys a newer version wrote, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cluster(#[from] common::cluster::PickError),
    #[error("{0}")]
    StateMismatch(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("--issuer-ca {path}: {reason}")]
    IssuerCa { path: String, reason: String },
    #[error(
        "the state's cluster.oidcIssuer `{issuer}` is not an issuer URL IAM takes: {reason}; fix it or remove it (then DescribeCluster is asked)"
    )]
    StateIssuer { issuer: String, reason: String },

    #[error(
        "cluster {cluster} was not found in {region}; check --cluster and --region (nothing was created)"
    )]
    ClusterNotFound { cluster: String, region: String },
    #[error("DescribeCluster {cluster}")]
    DescribeCluster { cluster: String, source: AwsError },
    #[error(
        "cluster {cluster} reports no OIDC issuer (identity.oidc.issuer); EKS sets it once the cluster is ACTIVE, so check its status (nothing was created)"
    )]
    NoIssuer { cluster: String },
    #[error(
        "cluster {cluster} reports the OIDC issuer `{issuer}`, which is not an issuer URL IAM takes: {reason} (nothing was created)"
    )]
    ReportedIssuer {
        cluster: String,
        issuer: String,
        reason: String,
    },
    #[error("GetCallerIdentity (needed for the account of the provider ARN)")]
    GetCallerIdentity { source: AwsError },
    #[error(
        "GetCallerIdentity returned no account id, so the provider ARN is unknown (nothing was created)"
    )]
    NoAccount,
    #[error("GetOpenIDConnectProvider {arn}")]
    GetOpenIDConnectProvider { arn: String, source: AwsError },
    #[error("CreateOpenIDConnectProvider {arn} (nothing was created)")]
    CreateOpenIDConnectProvider { arn: String, source: AwsError },
    #[error(
        "AddClientIDToOpenIDConnectProvider {client_id} to {arn} (the provider is left as it was)"
    )]
    AddClientIDToOpenIDConnectProvider {
        arn: String,
        client_id: String,
        source: AwsError,
    },
    #[error("DeleteOpenIDConnectProvider {arn} (the provider is left in place)")]
    DeleteOpenIDConnectProvider { arn: String, source: AwsError },
    #[error(
        "CreateOpenIDConnectProvider says {arn} exists, yet GetOpenIDConnectProvider does not find it; run again in a minute (IAM may still be settling)"
    )]
    Vanished { arn: String },
    #[error(
        "the state's oidc section records provider {old}, which this tool created, but cluster {cluster} now needs {new} (was the cluster made again?); run `eks-oidc delete` with this state first (it removes {old}), then `eks-oidc ensure` again. Nothing was changed"
    )]
    StaleProvider {
        cluster: String,
        old: String,
        new: String,
    },
}

impl StepFailure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Cluster(_)
            | Error::StateMismatch(_)
            | Error::State(_)
            | Error::IssuerCa { .. }
            | Error::StateIssuer { .. } => EXIT_USAGE,
            _ => EXIT_FAILED,
        }
    }
}

/// The AWS clients this step uses, built once from the shared configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    pub eks: aws_sdk_eks::Client,
}

impl Clients {
    pub fn new(ctx: &Context) -> Self {
        Self {
            iam: aws_sdk_iam::Client::new(&ctx.aws),
            sts: aws_sdk_sts::Client::new(&ctx.aws),
            eks: aws_sdk_eks::Client::new(&ctx.aws),
        }
    }
}

/// The cluster this run is about: `--cluster`, else the state's. A flag that names another
/// cluster than the state describes is refused, so one state never mixes two clusters.
pub fn pick_cluster(flag: Option<&str>, state: &State) -> Result<String, Error> {
    let known = state
        .str_at("cluster", "name")
        .or_else(|| state.str_at(SECTION, "clusterName"));
    Ok(common::cluster::pick(flag, known)?)
}

fn check_same_place(previous: Option<&Section>, cluster: &str, region: &str) -> Result<(), Error> {
    match previous {
        Some(p) if p.cluster_name != cluster || p.region != region => {
            Err(Error::StateMismatch(format!(
                "the state's oidc section is for cluster {} in {}, not {cluster} in {region}; delete that provider first or use a separate state",
                p.cluster_name, p.region
            )))
        }
        _ => Ok(()),
    }
}

/// The issuer the state's `cluster` section records for `cluster`, if any.
pub fn issuer_from_state(state: &State, cluster: &str) -> Result<Option<Issuer>, Error> {
    if state.str_at("cluster", "name") != Some(cluster) {
        return Ok(None);
    }
    match state
        .str_at("cluster", "oidcIssuer")
        .filter(|s| !s.is_empty())
    {
        None => Ok(None),
        Some(url) => Issuer::parse(url)
            .map(Some)
            .map_err(|reason| Error::StateIssuer {
                issuer: url.to_owned(),
                reason,
            }),
    }
}

/// The issuer `DescribeCluster` reports (`identity.oidc.issuer`, an optional field).
pub fn reported_issuer(
    cluster_name: &str,
    cluster: &aws_sdk_eks::types::Cluster,
) -> Result<Issuer, Error> {
    let url = cluster
        .identity()
        .and_then(|i| i.oidc())
        .and_then(|o| o.issuer())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::NoIssuer {
            cluster: cluster_name.to_owned(),
        })?;
    Issuer::parse(url).map_err(|reason| Error::ReportedIssuer {
        cluster: cluster_name.to_owned(),
        issuer: url.to_owned(),
        reason,
    })
}

async fn describe_issuer(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    region: &str,
) -> Result<Issuer, Error> {
    let not_found = || Error::ClusterNotFound {
        cluster: cluster.to_owned(),
        region: region.to_owned(),
    };
    let described = common::cluster::describe(eks, cluster)
        .await
        .map_err(|source| Error::DescribeCluster {
            cluster: cluster.to_owned(),
            source,
        })?
        .ok_or_else(not_found)?;
    reported_issuer(cluster, &described)
}

/// The account and partition of the credentials.
async fn caller(sts: &aws_sdk_sts::Client, region: &str) -> Result<(String, String), Error> {
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Error::GetCallerIdentity { source: e.into() })?;
    let account = me
        .account()
        .filter(|a| !a.is_empty())
        .ok_or(Error::NoAccount)?
        .to_owned();
    let partition = common::aws::caller_partition(me.arn(), region);
    Ok((account, partition))
}

/// The issuer and provider ARN of `cluster`: the issuer from the state or `DescribeCluster`,
/// the account and partition from `GetCallerIdentity`.
async fn locate(
    clients: &Clients,
    state: &State,
    cluster: &str,
    region: &str,
) -> Result<(Issuer, String), Error> {
    let issuer = match issuer_from_state(state, cluster)? {
        Some(issuer) => {
            tracing::info!(
                "cluster {cluster}: OIDC issuer {} (from the state)",
                issuer.url()
            );
            issuer
        }
        None => {
            let issuer = describe_issuer(&clients.eks, cluster, region).await?;
            tracing::info!("cluster {cluster}: OIDC issuer {}", issuer.url());
            issuer
        }
    };
    let (account, partition) = caller(&clients.sts, region).await?;
    let arn = issuer.provider_arn(&partition, &account);
    Ok((issuer, arn))
}

/// `eks-oidc ensure`.
pub async fn ensure(state: &mut State, ctx: &Context, args: &EnsureArgs) -> Result<(), Error> {
    // Everything that can be refused is checked before any AWS call.
    let previous: Option<Section> = state.section(SECTION)?;
    let cluster = pick_cluster(args.cluster.as_deref(), state)?;
    check_same_place(previous.as_ref(), &cluster, &ctx.region)?;
    let extra_roots = match &args.issuer_ca {
        Some(path) => thumbprint::load_ca_file(path).map_err(|reason| Error::IssuerCa {
            path: path.display().to_string(),
            reason,
        })?,
        None => Vec::new(),
    };
    issuer_from_state(state, &cluster)?;

    let clients = Clients::new(ctx);
    let (issuer, arn) = locate(&clients, state, &cluster, &ctx.region).await?;
    let created_before = match &previous {
        Some(p) if p.provider_arn == arn => p.created_by_us,
        Some(p) if p.created_by_us => {
            return Err(Error::StaleProvider {
                cluster,
                old: p.provider_arn.clone(),
                new: arn,
            });
        }
        Some(p) => {
            tracing::info!(
                "the state recorded provider {} (not made by this tool); cluster {cluster} now needs {arn}",
                p.provider_arn
            );
            false
        }
        None => false,
    };
    let mut section = Section {
        issuer: issuer.url().to_owned(),
        provider_arn: arn.clone(),
        thumbprints: Vec::new(),
        client_ids: Vec::new(),
        created_by_us: created_before,
        cluster_name: cluster.clone(),
        region: ctx.region.clone(),
        extra: previous.map(|p| p.extra).unwrap_or_default(),
    };

    if let Some(existing) = provider::get(&clients.iam, &arn).await? {
        return adopt(state, ctx, &clients, section, existing).await;
    }

    let thumbprints = match read_thumbprint(&issuer, &extra_roots, args.timeout).await {
        Ok(found) => {
            tracing::info!(
                "issuer {} presented {} certificate(s), verified; thumbprint of the top one: {}",
                issuer.address(),
                found.chain_len,
                found.thumbprint
            );
            vec![found.thumbprint]
        }
        Err(reason) => {
            let verb = if ctx.dry_run { "would be" } else { "is" };
            tracing::warn!(
                "no thumbprint for issuer {}: {reason}; the provider {verb} created without one (IAM accepts that for EKS issuers and verifies them against its own trusted CAs)",
                issuer.url()
            );
            Vec::new()
        }
    };
    let shown = match thumbprints.first() {
        Some(t) => format!("thumbprint {t}"),
        None => "no thumbprint".to_owned(),
    };
    if ctx.dry_run {
        tracing::info!(
            "dry run: would create OIDC provider {arn} for {} with client id {STS_CLIENT_ID} and {shown}",
            issuer.url()
        );
        return Ok(());
    }

    tracing::info!("creating OIDC provider {arn} with client id {STS_CLIENT_ID} and {shown}");
    let client_ids = vec![STS_CLIENT_ID.to_owned()];
    let tags = [
        (CLUSTER_TAG.to_owned(), cluster.clone()),
        (STEP_TAG.to_owned(), "oidc".to_owned()),
    ];
    match provider::create(
        &clients.iam,
        &arn,
        issuer.url(),
        &client_ids,
        &thumbprints,
        &tags,
    )
    .await?
    {
        Created::Made(made) => {
            if made != arn {
                tracing::warn!("IAM named the provider {made}, not {arn} as expected");
            }
            section.provider_arn = made;
            section.thumbprints = thumbprints;
            section.client_ids = client_ids;
            section.created_by_us = true;
            state.set_section(SECTION, &section);
            tracing::info!("OIDC provider {} created", section.provider_arn);
            Ok(())
        }
        Created::AlreadyExists => {
            tracing::info!("provider {arn} appeared meanwhile (made by someone else); using it");
            let existing = provider::get(&clients.iam, &arn)
                .await?
                .ok_or_else(|| Error::Vanished { arn: arn.clone() })?;
            adopt(state, ctx, &clients, section, existing).await
        }
    }
}

/// A provider that exists: add the STS client id when missing, change nothing else.
async fn adopt(
    state: &mut State,
    ctx: &Context,
    clients: &Clients,
    mut section: Section,
    existing: Provider,
) -> Result<(), Error> {
    let arn = section.provider_arn.clone();
    // A provider carrying our tags for this cluster was made by this tool: by an earlier run
    // that was stopped before it wrote the state, or whose state was lost.
    if !section.created_by_us && tagged_ours(&existing, &section.cluster_name) {
        tracing::info!(
            "OIDC provider {arn} carries {CLUSTER_TAG}={} and {STEP_TAG}=oidc: made by this tool, so `eks-oidc delete` will remove it",
            section.cluster_name
        );
        section.created_by_us = true;
    }
    let mut client_ids = existing.client_ids;
    let missing = !client_ids.iter().any(|c| c == STS_CLIENT_ID);
    let owner = if section.created_by_us {
        "made by this tool"
    } else {
        "not recorded as made by this tool"
    };
    if ctx.dry_run {
        if missing {
            tracing::info!(
                "dry run: OIDC provider {arn} exists ({owner}); would add client id {STS_CLIENT_ID} to its {}",
                shown_list(&client_ids)
            );
        } else {
            tracing::info!(
                "dry run: OIDC provider {arn} exists ({owner}) with client id {STS_CLIENT_ID}; nothing to change"
            );
        }
        return Ok(());
    }
    if missing {
        tracing::info!(
            "OIDC provider {arn} exists ({owner}) with client ids {}; adding {STS_CLIENT_ID}",
            shown_list(&client_ids)
        );
        provider::add_client_id(&clients.iam, &arn, STS_CLIENT_ID).await?;
        client_ids.push(STS_CLIENT_ID.to_owned());
    } else {
        tracing::info!(
            "OIDC provider {arn} exists ({owner}) with client id {STS_CLIENT_ID}; nothing to change"
        );
    }
    section.client_ids = client_ids;
    section.thumbprints = existing.thumbprints;
    state.set_section(SECTION, &section);
    Ok(())
}

/// True when the provider carries the tags this tool puts on what it makes for `cluster`.
pub fn tagged_ours(provider: &Provider, cluster: &str) -> bool {
    let has = |key: &str, value: &str| provider.tags.iter().any(|(k, v)| k == key && v == value);
    has(CLUSTER_TAG, cluster) && has(STEP_TAG, "oidc")
}

fn shown_list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

/// The thumbprint, or the reason there is none, honouring `HTTPS_PROXY`/`NO_PROXY`.
async fn read_thumbprint(
    issuer: &Issuer,
    extra_roots: &[CertificateDer<'static>],
    timeout: Duration,
) -> Result<thumbprint::ChainThumbprint, String> {
    let proxy = proxy::Proxy::for_host(issuer.host(), |name| std::env::var(name).ok())?;
    if let Some(proxy) = &proxy {
        tracing::info!("reaching issuer {} through proxy {proxy}", issuer.address());
    }
    thumbprint::fetch(issuer, extra_roots, proxy.as_ref(), timeout)
        .await
        .map_err(|e| e.to_string())
}

/// Which provider `delete` is about.
enum Target {
    /// The one the state's section records.
    Recorded { arn: String, ours: bool },
    /// The one named after this cluster's issuer (no section in the state).
    Cluster(String),
}

/// `eks-oidc delete`.
pub async fn delete(state: &mut State, ctx: &Context, args: &DeleteArgs) -> Result<(), Error> {
    let previous: Option<Section> = state.section(SECTION)?;
    // Everything that can be refused is checked before any AWS call.
    let target = match &previous {
        Some(p) => {
            if let Some(flag) = args.cluster.as_deref().filter(|f| *f != p.cluster_name) {
                return Err(Error::StateMismatch(format!(
                    "--cluster {flag} names another cluster than the state's oidc section ({}); drop --cluster or use that cluster's state",
                    p.cluster_name
                )));
            }
            check_same_place(previous.as_ref(), &p.cluster_name, &ctx.region)?;
            Target::Recorded {
                arn: p.provider_arn.clone(),
                ours: p.created_by_us,
            }
        }
        None => {
            let cluster = pick_cluster(args.cluster.as_deref(), state)?;
            issuer_from_state(state, &cluster)?;
            if !args.force {
                tracing::info!(
                    "the state has no oidc section, so nothing records that this tool created an OIDC provider for cluster {cluster}; leaving any provider in place (pass --force to delete it anyway)"
                );
                return Ok(());
            }
            Target::Cluster(cluster)
        }
    };
    let clients = Clients::new(ctx);
    let (arn, ours) = match target {
        Target::Recorded { arn, ours } => (arn, ours),
        Target::Cluster(cluster) => (
            locate(&clients, state, &cluster, &ctx.region).await?.1,
            false,
        ),
    };
    if !ours && !args.force {
        tracing::info!(
            "OIDC provider {arn} was not created by this tool (createdByUs is false): leaving it in place, since other roles may trust it; pass --force to delete it anyway"
        );
        if !ctx.dry_run {
            state.clear_section(SECTION);
        }
        return Ok(());
    }
    let why = if ours { "made by this tool" } else { "--force" };
    let Some(_) = provider::get(&clients.iam, &arn).await? else {
        tracing::info!("OIDC provider {arn} does not exist; nothing to delete");
        if !ctx.dry_run {
            state.clear_section(SECTION);
        }
        return Ok(());
    };
    if ctx.dry_run {
        tracing::info!("dry run: would delete OIDC provider {arn} ({why})");
        return Ok(());
    }
    tracing::info!("deleting OIDC provider {arn} ({why})");
    if provider::delete(&clients.iam, &arn).await? {
        tracing::info!("OIDC provider {arn} deleted");
    } else {
        tracing::info!("OIDC provider {arn} was already gone");
    }
    state.clear_section(SECTION);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(text: &str) -> State {
        State::parse(text).unwrap()
    }

    #[test]
    fn cluster_from_the_state_or_its_own_section() {
        // The rules themselves are common::cluster::pick's; here, where this step looks.
        let with = state(r#"{"schemaVersion":1,"cluster":{"name":"b"}}"#);
        assert_eq!(pick_cluster(None, &with).unwrap(), "b");
        let own = state(r#"{"schemaVersion":1,"oidc":{"clusterName":"c"}}"#);
        assert_eq!(pick_cluster(None, &own).unwrap(), "c");
        let err = pick_cluster(Some("a"), &with).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert_eq!(
            pick_cluster(None, &State::new()).unwrap_err().exit_code(),
            EXIT_USAGE
        );
    }

    fn section() -> Section {
        Section {
            issuer: "https://oidc.example.com/id/X".into(),
            provider_arn: "arn:aws:iam::1:oidc-provider/oidc.example.com/id/X".into(),
            thumbprints: vec![],
            client_ids: vec![STS_CLIENT_ID.into()],
            created_by_us: true,
            cluster_name: "c".into(),
            region: "us-east-2".into(),
            extra: Map::new(),
        }
    }

    #[test]
    fn section_for_another_place_is_refused() {
        let prev = section();
        assert!(check_same_place(Some(&prev), "c", "us-east-2").is_ok());
        assert!(check_same_place(Some(&prev), "c", "eu-west-1").is_err());
        assert!(check_same_place(Some(&prev), "d", "us-east-2").is_err());
        assert!(check_same_place(None, "d", "eu-west-1").is_ok());
    }

    #[test]
    fn section_keeps_unknown_keys_and_uses_camel_case() {
        let text = r#"{"issuer":"https://o/id/X","providerArn":"arn:aws:iam::1:oidc-provider/o/id/X",
            "thumbprints":["ab"],"clientIds":["sts.amazonaws.com"],"createdByUs":true,
            "clusterName":"c","region":"us-east-2","futureKey":{"a":1}}"#;
        let parsed: Section = serde_json::from_str(text).unwrap();
        assert!(parsed.created_by_us);
        assert_eq!(parsed.extra["futureKey"], serde_json::json!({"a": 1}));
        let back = serde_json::to_value(&parsed).unwrap();
        let keys: Vec<&String> = back.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "issuer",
                "providerArn",
                "thumbprints",
                "clientIds",
                "createdByUs",
                "clusterName",
                "region",
                "futureKey"
            ]
        );
        // A section written without the optional lists still reads (createdByUs false).
        let lean: Section = serde_json::from_str(
            r#"{"issuer":"https://o","providerArn":"a","clusterName":"c","region":"r"}"#,
        )
        .unwrap();
        assert!(!lean.created_by_us && lean.thumbprints.is_empty());
    }

    #[test]
    fn issuer_from_the_state_only_for_its_cluster() {
        let with = state(
            r#"{"schemaVersion":1,"cluster":{"name":"c","oidcIssuer":"https://oidc.example.com/id/X"}}"#,
        );
        let found = issuer_from_state(&with, "c").unwrap().unwrap();
        assert_eq!(found.url(), "https://oidc.example.com/id/X");
        assert!(issuer_from_state(&with, "other").unwrap().is_none());
        let empty = state(r#"{"schemaVersion":1,"cluster":{"name":"c","oidcIssuer":""}}"#);
        assert!(issuer_from_state(&empty, "c").unwrap().is_none());
        let bad = state(r#"{"schemaVersion":1,"cluster":{"name":"c","oidcIssuer":"http://x"}}"#);
        let err = issuer_from_state(&bad, "c").unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(err.to_string().contains("https://"), "{err}");
    }

    #[test]
    fn issuer_from_describe_cluster_is_an_optional_field() {
        use aws_sdk_eks::types::{Cluster, Identity, Oidc};
        let bare = Cluster::builder().name("c").build();
        let err = reported_issuer("c", &bare).unwrap_err();
        assert!(matches!(err, Error::NoIssuer { .. }));
        assert_eq!(err.exit_code(), EXIT_FAILED);
        assert!(err.to_string().contains("nothing was created"), "{err}");
        let no_url = Cluster::builder()
            .identity(Identity::builder().oidc(Oidc::builder().build()).build())
            .build();
        assert!(matches!(
            reported_issuer("c", &no_url),
            Err(Error::NoIssuer { .. })
        ));
        let with = |url: &str| {
            Cluster::builder()
                .identity(
                    Identity::builder()
                        .oidc(Oidc::builder().issuer(url).build())
                        .build(),
                )
                .build()
        };
        let good = reported_issuer("c", &with("https://oidc.eks.us-east-2.amazonaws.com/id/A"));
        assert_eq!(
            good.unwrap().host_and_path(),
            "oidc.eks.us-east-2.amazonaws.com/id/A"
        );
        assert!(matches!(
            reported_issuer("c", &with("ftp://x")),
            Err(Error::ReportedIssuer { .. })
        ));
    }
}
