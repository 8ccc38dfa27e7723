//! `eks-cluster`: an EKS cluster whose every pod runs on Fargate, from nothing (VPC stack, IAM
//! roles, cluster, Fargate profile, CoreDNS moved onto Fargate) and back to nothing; plus the
//! kubeconfig entry and the token its exec user runs. What `eksctl create cluster --fargate
//! --without-nodegroup` did for the seed, through the AWS SDK.

pub mod coredns;
mod delete;
pub mod eks;
mod error;
pub mod inputs;
pub mod kubeconfig;
pub mod network;
pub mod profiles;
pub mod roles;
pub mod template;
pub mod zones;

use std::path::PathBuf;
use std::time::Duration;

use common::cfn::{Phase, phase};
use common::{Context, State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::delete::delete;
pub use crate::error::Error;
use crate::inputs::Ipv4Net;
use crate::network::Network;

/// This step's section of the state document.
pub const SECTION: &str = "cluster";
/// Sections of later steps that must be gone before the cluster may go.
pub const LATER_SECTIONS: [&str; 2] = ["deploy", "sgStack"];

/// Flags of `create`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Kubernetes minor version, like 1.35 (default: the state's, else 1.35).
    #[arg(long, value_name = "1.NN")]
    pub kubernetes_version: Option<String>,
    /// Namespace the Fargate profile selects; repeatable (default: the state's, else default,
    /// kube-system and game-2048, the app eks-patch renders).
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// CIDR of the VPC we make (/16 to /20).
    #[arg(long, value_name = "CIDR", default_value = inputs::DEFAULT_VPC_CIDR, conflicts_with = "vpc_id")]
    pub vpc_cidr: String,
    /// Availability zones of the VPC we make: 2 or 3.
    #[arg(long, value_name = "N", default_value_t = 2, conflicts_with = "vpc_id")]
    pub azs: u8,
    /// Bring your own VPC instead of making one (with --private-subnets).
    #[arg(long, value_name = "VPC_ID", requires = "private_subnets")]
    pub vpc_id: Option<String>,
    /// Private subnets of the brought VPC (Fargate pods), comma separated.
    #[arg(long, value_name = "IDS", requires = "vpc_id")]
    pub private_subnets: Option<String>,
    /// Public subnets of the brought VPC (internet-facing load balancers), comma separated.
    #[arg(long, value_name = "IDS", requires = "vpc_id")]
    pub public_subnets: Option<String>,
    /// How long to wait for each of CloudFormation, the cluster and the Fargate profile.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
    /// Reach Kubernetes through this kubeconfig instead of the cluster's endpoint and an EKS token.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

/// Flags of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Delete even though the state still has `deploy` or `sgStack` sections.
    #[arg(long)]
    pub force: bool,
    /// How long to wait for each deletion.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
    /// How long to wait, before each delete attempt of the network stack, for the network
    /// interfaces left in its VPC (a deleted ALB's, Fargate pods', the cluster's) to go.
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = common::cli::parse_duration)]
    pub eni_timeout: Duration,
}

/// Flags of `kubeconfig`.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeconfigArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig to merge into (`-` prints the entry instead). Default: the first file of
    /// KUBECONFIG, else ~/.kube/config.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Flags of `token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// EKS cluster name.
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
}

/// Flags of `template`.
#[derive(Debug, Clone, clap::Args)]
pub struct TemplateArgs {
    /// CIDR of the VPC (/16 to /20).
    #[arg(long, value_name = "CIDR", default_value = inputs::DEFAULT_VPC_CIDR)]
    pub vpc_cidr: String,
    /// Availability zones: 2 or 3.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub azs: u8,
}

/// The `cluster` section. Other steps read these keys (`irsa`: `oidcIssuer`, `arn`,
/// `endpoint`, `certificateAuthorityData`; `eks-sg-stack`: `vpcId`, `clusterSecurityGroupId`;
/// every step: `region`), so they keep their names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    pub name: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Base64 of the PEM, as EKS returns it (public, not a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_subnet_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_subnet_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_security_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_stack_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_stack_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fargate_profiles: Vec<String>,
    /// The namespaces the `fp-<hash>` profile selects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fargate_namespaces: Vec<String>,
    /// Namespaces whose Deployments must be restarted onto the new Fargate profile (its old
    /// profile was deleted); emptied once they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fargate_restart_namespaces: Vec<String>,
    #[serde(default)]
    pub network_created_by_us: bool,
    #[serde(default)]
    pub roles_created_by_us: bool,
    #[serde(default)]
    pub core_dns_on_fargate: bool,
    /// Keys a newer version wrote, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The cluster this run is about: `--cluster`, else the state's; never both differing.
pub fn pick_cluster(flag: Option<&str>, state: &State) -> Result<String, Error> {
    let from_state = state.str_at(SECTION, "name");
    let name = match (flag, from_state) {
        (Some(flag), Some(known)) if flag != known => {
            return Err(Error::StateMismatch(format!(
                "--cluster {flag} names another cluster than the state document ({known}); use a separate state for each cluster, or drop --cluster"
            )));
        }
        (Some(flag), _) => flag,
        (None, Some(known)) => known,
        (None, None) => return Err(Error::NoCluster),
    };
    common::names::check_cluster_name(name).map_err(|reason| Error::ClusterName {
        name: name.to_owned(),
        reason,
    })?;
    Ok(name.to_owned())
}

pub(crate) fn check_region(previous: Option<&Section>, region: &str) -> Result<(), Error> {
    match previous {
        Some(p) if !p.region.is_empty() && p.region != region => {
            Err(Error::StateMismatch(format!(
                "the state's cluster {} is in {}, not {region}; drop --region or use a separate state",
                p.name, p.region
            )))
        }
        _ => Ok(()),
    }
}

/// Where the network comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkPlan {
    /// Our stack, with this VPC CIDR and zone count.
    Stack { cidr: Ipv4Net, azs: u8 },
    /// Brought: checked through EC2.
    Brought {
        vpc_id: String,
        private: Vec<String>,
        public: Vec<String>,
    },
}

/// Everything `create` needs, checked before any AWS call.
#[derive(Debug, Clone)]
pub struct CreatePlan {
    pub cluster: String,
    pub version: String,
    pub namespaces: Vec<String>,
    pub network: NetworkPlan,
}

/// Checks the flags of `create` against each other and the state.
pub fn plan_create(
    args: &CreateArgs,
    state: &State,
    previous: Option<&Section>,
) -> Result<CreatePlan, Error> {
    let cluster = pick_cluster(args.cluster.as_deref(), state)?;
    let version = match (
        &args.kubernetes_version,
        previous.and_then(|p| p.kubernetes_version.as_ref()),
    ) {
        (Some(flag), _) => flag.clone(),
        (None, Some(known)) => known.clone(),
        (None, None) => inputs::DEFAULT_KUBERNETES_VERSION.to_owned(),
    };
    inputs::check_version(&version)
        .map_err(|e| Error::Input(format!("--kubernetes-version: {e}")))?;
    let mut namespaces: Vec<String> = Vec::new();
    let given: Vec<String> = match previous.map(|p| &p.fargate_namespaces) {
        _ if !args.namespaces.is_empty() => args.namespaces.clone(),
        Some(known) if !known.is_empty() => known.clone(),
        _ => inputs::DEFAULT_NAMESPACES.map(str::to_owned).to_vec(),
    };
    for ns in given {
        inputs::check_namespace(&ns).map_err(|e| Error::Input(format!("--namespace: {e}")))?;
        if !namespaces.contains(&ns) {
            namespaces.push(ns);
        }
    }
    if namespaces.len() > 5 {
        return Err(Error::Input(format!(
            "--namespace given {} times; a Fargate profile takes at most 5 selectors",
            namespaces.len()
        )));
    }
    let network = match &args.vpc_id {
        Some(vpc_id) => {
            inputs::check_vpc_id(vpc_id).map_err(Error::Input)?;
            let private = inputs::parse_subnet_list(
                "--private-subnets",
                args.private_subnets.as_deref().unwrap_or_default(),
            )
            .map_err(Error::Input)?;
            let public = match &args.public_subnets {
                Some(text) => {
                    inputs::parse_subnet_list("--public-subnets", text).map_err(Error::Input)?
                }
                None => Vec::new(),
            };
            NetworkPlan::Brought {
                vpc_id: vpc_id.clone(),
                private,
                public,
            }
        }
        None => {
            let cidr = inputs::check_vpc_cidr(&args.vpc_cidr)
                .map_err(|e| Error::Input(format!("--vpc-cidr: {e}")))?;
            inputs::check_azs(args.azs).map_err(Error::Input)?;
            match previous {
                // A network brought on an earlier run stays what the cluster uses.
                Some(p)
                    if !p.network_created_by_us
                        && p.vpc_id.is_some()
                        && !p.private_subnet_ids.is_empty() =>
                {
                    NetworkPlan::Brought {
                        vpc_id: p.vpc_id.clone().unwrap_or_default(),
                        private: p.private_subnet_ids.clone(),
                        public: p.public_subnet_ids.clone(),
                    }
                }
                _ => NetworkPlan::Stack {
                    cidr,
                    azs: args.azs,
                },
            }
        }
    };
    if let (Some(p), NetworkPlan::Brought { vpc_id, .. }) = (previous, &network)
        && p.network_created_by_us
    {
        return Err(Error::StateMismatch(format!(
            "the state's cluster {} runs in the VPC {} that eks-cluster made; it cannot move to --vpc-id {vpc_id}. Delete it first or use a separate state",
            p.name,
            p.vpc_id.as_deref().unwrap_or("(being made)")
        )));
    }
    Ok(CreatePlan {
        cluster,
        version,
        namespaces,
        network,
    })
}

/// The AWS clients of this step, built once.
#[derive(Debug, Clone)]
pub struct Clients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub eks: aws_sdk_eks::Client,
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            cloudformation: aws_sdk_cloudformation::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
        }
    }
}

/// `eks-cluster create`.
pub async fn create(state: &mut State, ctx: &Context, args: &CreateArgs) -> Result<(), Error> {
    // Everything that can be refused without AWS is refused here.
    let previous: Option<Section> = state.section(SECTION)?;
    check_region(previous.as_ref(), &ctx.region)?;
    let plan = plan_create(args, state, previous.as_ref())?;
    let name = plan.cluster.clone();
    let clients = Clients::new(&ctx.aws);

    if ctx.dry_run {
        return dry_run_create(&clients, ctx, args, &plan).await;
    }

    let mut section = previous.unwrap_or_default();
    section.name = name.clone();
    section.region = ctx.region.clone();

    // A brought network, or the zones of the network to make, are checked before anything is
    // made.
    let brought: Result<Network, (Ipv4Net, u8, Option<Vec<String>>)> = match &plan.network {
        NetworkPlan::Brought {
            vpc_id,
            private,
            public,
        } => Ok(network::validate_brought(&clients.ec2, vpc_id, private, public).await?),
        NetworkPlan::Stack { cidr, azs } => Err((
            *cidr,
            *azs,
            zones_for_new_stack(&clients, &ctx.region, &name, *azs).await?,
        )),
    };

    let account = roles::caller(&clients.sts, &ctx.region).await?;
    section.account_id = Some(account.id.clone());

    // The network: brought, or our stack.
    let net: Network = match brought {
        Ok(net) => {
            section.network_created_by_us = false;
            net
        }
        Err((cidr, azs, zones)) => {
            ensure_network_stack(
                state,
                &mut section,
                &clients,
                &ctx.region,
                &name,
                &cidr,
                (azs, zones),
                args.timeout,
            )
            .await?
        }
    };
    section.vpc_id = Some(net.vpc_id.clone());
    section.public_subnet_ids = net.public_subnet_ids.clone();
    section.private_subnet_ids = net.private_subnet_ids.clone();
    state.set_section(SECTION, &section);

    // The roles, each recorded as soon as it exists.
    let cluster_spec = roles::cluster_role(&name, &account);
    let cluster_role = roles::ensure(&clients.iam, &cluster_spec, &name).await?;
    section.cluster_role_arn = Some(cluster_role.arn.clone());
    section.roles_created_by_us = section.roles_created_by_us || cluster_role.ours;
    state.set_section(SECTION, &section);
    roles::ensure_policy(&clients.iam, &cluster_spec).await?;
    let pod_spec = roles::pod_execution_role(&name, &ctx.region, &account);
    let pod_role = roles::ensure(&clients.iam, &pod_spec, &name).await?;
    section.pod_execution_role_arn = Some(pod_role.arn.clone());
    section.roles_created_by_us = section.roles_created_by_us || pod_role.ours;
    state.set_section(SECTION, &section);
    roles::ensure_policy(&clients.iam, &pod_spec).await?;

    // The cluster.
    let existing = eks::describe(&clients.eks, &name).await?;
    match &existing {
        Some(c) => {
            tracing::info!(
                "cluster {name} exists ({}); adopting it, not creating it",
                c.status
            );
            if c.version.as_deref().is_some_and(|v| v != plan.version) {
                tracing::warn!(
                    "cluster {name} runs Kubernetes {}, not the {} asked for; it is left as it is",
                    c.version.as_deref().unwrap_or("?"),
                    plan.version
                );
            }
            section.arn = Some(c.arn.clone());
        }
        None => {
            let subnets = net.cluster_subnet_ids();
            tracing::info!(
                "creating cluster {name} (Kubernetes {}) in {} with role {}",
                plan.version,
                net.vpc_id,
                cluster_role.arn
            );
            let made = eks::create(
                &clients.eks,
                &eks::ClusterSpec {
                    name: name.clone(),
                    version: plan.version.clone(),
                    role_arn: cluster_role.arn.clone(),
                    subnet_ids: subnets,
                },
            )
            .await?;
            section.arn = Some(made.arn).filter(|a| !a.is_empty());
        }
    }
    state.set_section(SECTION, &section);
    let active = eks::wait_active(&clients.eks, &name, args.timeout).await?;
    section.arn = Some(active.arn.clone());
    section.kubernetes_version = active.version.clone().or(Some(plan.version.clone()));
    section.endpoint = active.endpoint.clone();
    section.certificate_authority_data = active.certificate_authority_data.clone();
    section.oidc_issuer = active.oidc_issuer.clone();
    if let Some(vpc) = &active.vpc_id
        && vpc != &net.vpc_id
    {
        tracing::warn!(
            "cluster {name} runs in {vpc}, not in {}; the state records the cluster's VPC",
            net.vpc_id
        );
        section.vpc_id = Some(vpc.clone());
    }
    section.cluster_security_group_id = active.cluster_security_group_id.clone();
    state.set_section(SECTION, &section);

    // The Fargate profile: a changed one is made anew before the old one goes.
    let profile = eks::ProfileSpec {
        cluster: name.clone(),
        name: profiles::profile_name(&plan.namespaces),
        namespaces: plan.namespaces.clone(),
        subnets: net.private_subnet_ids.clone(),
        pod_execution_role_arn: pod_role.arn.clone(),
    };
    section.fargate_namespaces = plan.namespaces.clone();
    state.set_section(SECTION, &section);
    profiles::reconcile(state, &mut section, &clients.eks, &profile, args.timeout).await?;

    // The Deployments an old profile ran are restarted onto the new one.
    let client = kube_client(ctx, &section, args.kubeconfig.as_deref()).await?;
    if !section.fargate_restart_namespaces.is_empty() {
        let restarted =
            profiles::restart_deployments(&client, &name, &section.fargate_restart_namespaces)
                .await?;
        tracing::info!(
            "restarted {restarted} Deployment(s) in {} onto Fargate profile {}",
            section.fargate_restart_namespaces.join(", "),
            profile.name
        );
        section.fargate_restart_namespaces.clear();
        state.set_section(SECTION, &section);
    }

    // CoreDNS.
    let outcome = coredns::move_to_fargate(client, &name, args.timeout).await?;
    section.core_dns_on_fargate = outcome != coredns::Outcome::Absent;
    state.set_section(SECTION, &section);
    tracing::info!(
        "cluster {name} is ready: {} (Fargate profile {}, namespaces {})",
        section
            .endpoint
            .as_deref()
            .unwrap_or("no endpoint reported"),
        profile.name,
        plan.namespaces.join(", ")
    );
    Ok(())
}

/// The zones of the network stack when it is still to be made (`None` when it exists): chosen
/// by zone id through EC2, so a region with too few usable zones is refused before anything is
/// made.
async fn zones_for_new_stack(
    clients: &Clients,
    region: &str,
    cluster: &str,
    azs: u8,
) -> Result<Option<Vec<String>>, Error> {
    match network::describe_stack(&clients.cloudformation, &network::stack_name(cluster)).await? {
        Some(s) if !matches!(phase(&s.status), Phase::Broken | Phase::Deleted) => Ok(None),
        _ => zones::choose_zones(&clients.ec2, region, azs)
            .await
            .map(Some),
    }
}

#[allow(clippy::too_many_arguments)]
async fn ensure_network_stack(
    state: &mut State,
    section: &mut Section,
    clients: &Clients,
    region: &str,
    cluster: &str,
    cidr: &Ipv4Net,
    (azs, zones): (u8, Option<Vec<String>>),
    timeout: Duration,
) -> Result<Network, Error> {
    let cfn = &clients.cloudformation;
    let name = network::stack_name(cluster);
    section.network_stack_name = Some(name.clone());
    let mut existing = network::describe_stack(cfn, &name).await?;
    if let Some(busy) = existing
        .as_ref()
        .filter(|s| phase(&s.status) == Phase::InProgress)
    {
        tracing::info!(
            "network stack {name} is busy ({}); waiting for it",
            busy.status
        );
        section.network_stack_id = Some(busy.id.clone());
        section.network_created_by_us = true;
        state.set_section(SECTION, section);
        existing =
            network::settle(cfn, &busy.id, &format!("network stack {name}"), timeout).await?;
    }
    let done = match existing {
        Some(s) if matches!(phase(&s.status), Phase::Complete | Phase::UpdateRolledBack) => {
            tracing::info!("network stack {name} exists ({}); using it", s.status);
            let deployed = common::cfn::deployed_template(cfn, &s.id)
                .await
                .map_err(|source| Error::NetworkStack {
                    stack: name.clone(),
                    source,
                })?;
            if deployed.as_ref() != Some(&template::render(cidr, azs)) {
                tracing::warn!(
                    "network stack {name} was made with another VPC CIDR, zone count or template version than asked now (--vpc-cidr {cidr}, --azs {azs}); it is kept as it is, since a cluster cannot move to another VPC"
                );
            }
            s
        }
        Some(s) if phase(&s.status) == Phase::Stuck => {
            return Err(Error::NetworkStackStuck {
                stack: name,
                status: s.status,
            });
        }
        other => {
            if let Some(broken) = other {
                network::replace_broken(cfn, &broken, &name, timeout).await?;
            }
            let zones = match zones {
                Some(zones) => zones,
                None => zones::choose_zones(&clients.ec2, region, azs).await?,
            };
            let spec = network::spec(cluster, cidr, &zones);
            tracing::info!(
                "creating network stack {name} (VPC {cidr} over zones {})",
                zones.join(", ")
            );
            let id = network::create_stack(cfn, &spec).await?;
            section.network_stack_id = Some(id.clone());
            section.network_created_by_us = true;
            state.set_section(SECTION, section);
            network::finish_create(cfn, &id, &name, timeout).await?
        }
    };
    section.network_stack_id = Some(done.id.clone());
    section.network_created_by_us = true;
    network::from_outputs(&name, &done)
}

/// The Kubernetes client: `--kubeconfig`, else the cluster's endpoint, CA and an EKS token.
async fn kube_client(
    ctx: &Context,
    section: &Section,
    kubeconfig: Option<&std::path::Path>,
) -> Result<kube::Client, Error> {
    let cluster = section.name.clone();
    let client_error = |source| Error::KubernetesClient {
        cluster: cluster.clone(),
        source,
    };
    if let Some(path) = kubeconfig {
        return common::kube::client_from_kubeconfig(path, None)
            .await
            .map_err(client_error);
    }
    let endpoint = section
        .endpoint
        .as_deref()
        .ok_or(Error::ClusterIncomplete {
            cluster: cluster.clone(),
            what: "endpoint",
        })?;
    let ca = section
        .certificate_authority_data
        .as_deref()
        .ok_or(Error::ClusterIncomplete {
            cluster: cluster.clone(),
            what: "certificate authority",
        })?;
    let tokens = common::kubeauth::TokenSource::eks(&ctx.aws, &cluster);
    tokens.sign_now().await.map_err(|source| Error::Token {
        cluster: cluster.clone(),
        source,
    })?;
    common::kube::client_for_eks(endpoint, ca, std::sync::Arc::new(tokens)).map_err(client_error)
}

async fn dry_run_create(
    clients: &Clients,
    ctx: &Context,
    args: &CreateArgs,
    plan: &CreatePlan,
) -> Result<(), Error> {
    let name = &plan.cluster;
    let say = |what: String| tracing::info!("dry run: {what}");
    match &plan.network {
        NetworkPlan::Stack { cidr, azs } => {
            let stack = network::stack_name(name);
            match network::describe_stack(&clients.cloudformation, &stack).await? {
                Some(s) => say(format!(
                    "network stack {stack} exists ({}); would use it",
                    s.status
                )),
                None => {
                    let zones = zones::choose_zones(&clients.ec2, &ctx.region, *azs).await?;
                    say(format!(
                        "would create network stack {stack}: VPC {cidr} over zones {}, public and private subnets, internet gateway, one NAT gateway",
                        zones.join(", ")
                    ))
                }
            }
        }
        NetworkPlan::Brought {
            vpc_id,
            private,
            public,
        } => {
            network::validate_brought(&clients.ec2, vpc_id, private, public).await?;
            say(format!(
                "would use VPC {vpc_id}: private subnets {}, public subnets {}",
                private.join(","),
                public.join(",")
            ));
        }
    }
    for role in [
        roles::cluster_role_name(name),
        roles::pod_execution_role_name(name),
    ] {
        match roles::read(&clients.iam, &role).await? {
            Some(r) => say(format!(
                "IAM role {role} exists ({}); would check its trust and policy",
                r.arn
            )),
            None => say(format!("would create IAM role {role}")),
        }
    }
    match eks::describe(&clients.eks, name).await? {
        Some(c) => say(format!(
            "cluster {name} exists ({}); would adopt it",
            c.status
        )),
        None => say(format!(
            "would create cluster {name} (Kubernetes {}) in {}, public and private endpoint, authentication API_AND_CONFIG_MAP",
            plan.version, ctx.region
        )),
    }
    let profile = profiles::profile_name(&plan.namespaces);
    let others: Vec<String> = match eks::describe(&clients.eks, name).await? {
        Some(_) => eks::list_profiles(&clients.eks, name)
            .await?
            .into_iter()
            .filter(|p| p != &profile)
            .collect(),
        None => Vec::new(),
    };
    match eks::describe_profile(&clients.eks, name, &profile).await? {
        Some(p) => say(format!(
            "Fargate profile {profile} exists ({}, namespaces {})",
            p.status,
            p.namespaces.join(",")
        )),
        None => say(format!(
            "would create Fargate profile {profile} for namespaces {}",
            plan.namespaces.join(", ")
        )),
    }
    if !others.is_empty() {
        say(format!(
            "once {profile} is ACTIVE, would delete those of the Fargate profile(s) {} that eks-cluster made, and restart the Deployments they ran",
            others.join(", ")
        ));
    }
    say(format!(
        "would roll kube-system/coredns out again (remove {}, set {}) unless its pods all run on Fargate{}, and wait until it is available",
        coredns::COMPUTE_TYPE,
        coredns::RESTARTED_AT,
        if args.kubeconfig.is_some() {
            " (through --kubeconfig)"
        } else {
            ""
        }
    ));
    Ok(())
}

/// What `kubeconfig` needs to know of the cluster: from the state, else DescribeCluster.
pub async fn kubeconfig_entry(
    state: &State,
    ctx: &Context,
    args: &KubeconfigArgs,
    profile: Option<&str>,
) -> Result<kubeconfig::Entry, Error> {
    let previous: Option<Section> = state.section(SECTION)?;
    let name = pick_cluster(args.cluster.as_deref(), state)?;
    let command = std::env::current_exe()
        .map_err(|source| Error::CurrentExe { source })?
        .to_string_lossy()
        .into_owned();
    let known = previous.filter(|p| p.endpoint.is_some() && p.arn.is_some());
    let (arn, endpoint, ca) = match known {
        Some(p) => (
            p.arn.unwrap_or_default(),
            p.endpoint.unwrap_or_default(),
            p.certificate_authority_data,
        ),
        None => {
            let eks_client = aws_sdk_eks::Client::new(&ctx.aws);
            let c =
                eks::describe(&eks_client, &name)
                    .await?
                    .ok_or_else(|| Error::ClusterNotFound {
                        cluster: name.clone(),
                        region: ctx.region.clone(),
                    })?;
            let endpoint = c.endpoint.ok_or(Error::ClusterIncomplete {
                cluster: name.clone(),
                what: "endpoint",
            })?;
            (c.arn, endpoint, c.certificate_authority_data)
        }
    };
    Ok(kubeconfig::Entry {
        name: if arn.is_empty() {
            format!("{name}.{}", ctx.region)
        } else {
            arn
        },
        cluster: name,
        region: ctx.region.clone(),
        endpoint,
        certificate_authority_data: ca,
        command,
        profile: profile.map(str::to_owned),
    })
}

/// `eks-cluster kubeconfig`: merges the entry; returns what goes to stdout (the kubeconfig for
/// `-o -`, else nothing).
pub async fn write_kubeconfig(
    state: &State,
    ctx: &Context,
    args: &KubeconfigArgs,
    profile: Option<&str>,
) -> Result<String, Error> {
    let entry = kubeconfig_entry(state, ctx, args, profile).await?;
    let path = match &args.output {
        Some(p) if p.as_os_str() == "-" => {
            return Ok(kubeconfig::to_yaml(&kubeconfig::merge(Value::Null, &entry)));
        }
        Some(p) => p.clone(),
        None => {
            let env = std::env::var("KUBECONFIG").ok();
            let home = std::env::var_os("HOME").map(PathBuf::from);
            kubeconfig::default_path(env.as_deref(), home.as_deref()).ok_or_else(|| {
                Error::Input("no kubeconfig path: pass -o PATH, or set KUBECONFIG or HOME".into())
            })?
        }
    };
    if ctx.dry_run {
        tracing::info!(
            "dry run: would merge context {} into {}",
            entry.name,
            path.display()
        );
        return Ok(String::new());
    }
    kubeconfig::write_merged(&path, &entry)?;
    tracing::info!(
        "merged cluster {} into {} and selected context {}",
        entry.cluster,
        path.display(),
        entry.name
    );
    Ok(String::new())
}

/// `eks-cluster token`: the ExecCredential JSON.
pub async fn token(config: &aws_config::SdkConfig, args: &TokenArgs) -> Result<String, Error> {
    common::names::check_cluster_name(&args.cluster).map_err(|reason| Error::ClusterName {
        name: args.cluster.clone(),
        reason,
    })?;
    let token = common::token::eks_token(config, &args.cluster)
        .await
        .map_err(|source| Error::Token {
            cluster: args.cluster.clone(),
            source,
        })?;
    let expires: chrono::DateTime<chrono::Utc> = token.expires_at.into();
    let mut text = kubeconfig::exec_credential(&token.token, expires).to_string();
    text.push('\n');
    Ok(text)
}

/// Runs `eks-cluster token`: region from `--region` or the environment (no state is read),
/// the credential JSON on stdout; exit 2 on bad input, 1 when no token could be made.
pub async fn run_token(
    common_args: &common::CommonArgs,
    args: &TokenArgs,
    info: common::StepInfo,
) -> std::process::ExitCode {
    use std::io::Write;
    use std::process::ExitCode;
    common::logging::init(info.crate_name, common_args.verbose, common_args.quiet);
    let from_env = if common_args.region.is_none() {
        common::aws::environment_region(common_args.profile.as_deref()).await
    } else {
        None
    };
    let region =
        match common::aws::pick_region(common_args.region.as_deref(), None, from_env.as_deref()) {
            Ok((region, _)) => region,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(common::step::EXIT_USAGE);
            }
        };
    let config = common::aws::load_config(&region, common_args.profile.as_deref()).await;
    match token(&config, args).await {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::from(common::step::EXIT_FAILED);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{}", common::step::error_chain(&e));
            ExitCode::from(common::StepFailure::exit_code(&e))
        }
    }
}

/// `eks-cluster template`: prints the network template; exit 2 on bad flags.
pub fn print_template(args: &TemplateArgs) -> std::process::ExitCode {
    let checked = inputs::check_vpc_cidr(&args.vpc_cidr)
        .map_err(|e| format!("--vpc-cidr: {e}"))
        .and_then(|cidr| inputs::check_azs(args.azs).map(|()| cidr));
    match checked {
        Ok(cidr) => {
            print!("{}", template::render_text(&cidr, args.azs));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(common::step::EXIT_USAGE)
        }
    }
}

/// One line for a person running `create` by hand.
pub fn summary(state: &State) -> String {
    match state.section::<Section>(SECTION) {
        Ok(Some(s)) => format!(
            "cluster {} ({}): {}, VPC {}, Fargate profiles {}\n",
            s.name,
            s.region,
            s.endpoint.as_deref().unwrap_or("no endpoint yet"),
            s.vpc_id.as_deref().unwrap_or("?"),
            s.fargate_profiles.join(",")
        ),
        _ => "no cluster recorded\n".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use common::StepFailure;
    use common::step::EXIT_USAGE;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        create: CreateArgs,
    }

    fn args(extra: &[&str]) -> CreateArgs {
        let mut all = vec!["x"];
        all.extend_from_slice(extra);
        Cli::try_parse_from(all).unwrap().create
    }

    #[test]
    fn defaults() {
        let plan = plan_create(&args(&["--cluster", "demo"]), &State::new(), None).unwrap();
        assert_eq!(plan.version, inputs::DEFAULT_KUBERNETES_VERSION);
        assert_eq!(plan.namespaces, ["default", "kube-system", "game-2048"]);
        assert_eq!(
            plan.network,
            NetworkPlan::Stack {
                cidr: inputs::check_vpc_cidr("192.168.0.0/16").unwrap(),
                azs: 2
            }
        );
    }

    #[test]
    fn bad_input_is_usage() {
        for bad in [
            vec!["--cluster", "bad.name"],
            vec!["--cluster", "c", "--vpc-cidr", "10.0.0.0/8"],
            vec!["--cluster", "c", "--kubernetes-version", "v1.35"],
            vec!["--cluster", "c", "--azs", "4"],
            vec!["--cluster", "c", "--namespace", "Bad"],
            vec![
                "--cluster",
                "c",
                "--vpc-id",
                "vpc-1",
                "--private-subnets",
                "x",
            ],
        ] {
            let err = plan_create(&args(&bad), &State::new(), None).unwrap_err();
            assert_eq!(err.exit_code(), EXIT_USAGE, "{bad:?}: {err}");
        }
        let err = plan_create(&args(&[]), &State::new(), None).unwrap_err();
        assert!(matches!(err, Error::NoCluster));
    }

    #[test]
    fn brought_network_is_kept_on_rerun() {
        let previous = Section {
            name: "c".into(),
            region: "us-east-2".into(),
            vpc_id: Some("vpc-1".into()),
            private_subnet_ids: vec!["subnet-1".into()],
            ..Section::default()
        };
        let mut state = State::new();
        state.set_section(SECTION, &previous);
        let plan = plan_create(&args(&[]), &state, Some(&previous)).unwrap();
        assert!(matches!(plan.network, NetworkPlan::Brought { .. }));
        let ours = Section {
            network_created_by_us: true,
            ..previous
        };
        state.set_section(SECTION, &ours);
        let err = plan_create(
            &args(&["--vpc-id", "vpc-2", "--private-subnets", "subnet-2"]),
            &state,
            Some(&ours),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
    }

    #[test]
    fn version_and_namespaces_come_from_the_state_unless_given() {
        let previous = Section {
            name: "c".into(),
            region: "us-east-2".into(),
            kubernetes_version: Some("1.33".into()),
            fargate_namespaces: vec!["apps".into()],
            ..Section::default()
        };
        let mut state = State::new();
        state.set_section(SECTION, &previous);
        let plan = plan_create(&args(&[]), &state, Some(&previous)).unwrap();
        assert_eq!(
            (plan.version.as_str(), plan.namespaces.as_slice()),
            ("1.33", &["apps".to_owned()][..])
        );
        let plan = plan_create(
            &args(&["--kubernetes-version", "1.34", "--namespace", "web"]),
            &state,
            Some(&previous),
        )
        .unwrap();
        assert_eq!(
            (plan.version.as_str(), plan.namespaces.as_slice()),
            ("1.34", &["web".to_owned()][..])
        );
    }

    #[test]
    fn section_keys_are_the_contract() {
        let s = Section {
            name: "c".into(),
            region: "r".into(),
            account_id: Some("1".into()),
            certificate_authority_data: Some("Q0E=".into()),
            oidc_issuer: Some("https://oidc".into()),
            cluster_security_group_id: Some("sg-1".into()),
            core_dns_on_fargate: true,
            ..Section::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        for key in [
            "name",
            "region",
            "accountId",
            "certificateAuthorityData",
            "oidcIssuer",
            "clusterSecurityGroupId",
            "networkCreatedByUs",
            "rolesCreatedByUs",
            "coreDnsOnFargate",
        ] {
            assert!(v.get(key).is_some(), "{key} in {v}");
        }
        let with_extra: Section =
            serde_json::from_value(serde_json::json!({"name": "c", "region": "r", "future": 1}))
                .unwrap();
        assert_eq!(with_extra.extra.get("future"), Some(&serde_json::json!(1)));
    }

    #[test]
    fn cluster_and_region_never_mixed() {
        let mut state = State::new();
        let s = Section {
            name: "a".into(),
            region: "us-east-2".into(),
            ..Section::default()
        };
        state.set_section(SECTION, &s);
        assert!(pick_cluster(Some("b"), &state).is_err());
        assert_eq!(pick_cluster(None, &state).unwrap(), "a");
        assert!(check_region(Some(&s), "eu-west-1").is_err());
        assert!(check_region(Some(&s), "us-east-2").is_ok());
    }
}
