//! `eks-sg-stack`: the CloudFormation stack with the ALB security group (HTTP and HTTPS in from
//! the allowed CIDRs, TCP out to the pods) and the rule on the EKS cluster security group that
//! lets the ALB reach the pods. Fargate pods carry the cluster security group, so this is what
//! lets an `ip`-target ALB talk to them.

pub mod cidr;
pub mod network;
pub mod template;

use std::collections::BTreeMap;
use std::time::Duration;

use common::aws::AwsError;
use common::state::StateError;
use common::step::{EXIT_FAILED, EXIT_USAGE};
use common::{Context, State, StepFailure};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cidr::Cidr;
use common::cfn as stack;
use common::cfn::{Phase, Spec, Stack};

/// This step's section of the state document.
pub const SECTION: &str = "sgStack";
/// The default allowed CIDR, as the seed's Makefile had it.
pub const DEFAULT_CIDR: &str = "0.0.0.0/0";
/// The longest stack name CloudFormation accepts.
pub const MAX_STACK_NAME: usize = 128;

/// Flags of `create`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// CIDR allowed to reach the ALB on ports 80 and 443; repeatable, IPv4 or IPv6. Default: the
    /// CIDRs already in the state, else 0.0.0.0/0.
    #[arg(long = "allowed-cidr", value_name = "CIDR")]
    pub allowed_cidrs: Vec<String>,
    /// How long to wait for CloudFormation.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
}

/// Flags of `delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// EKS cluster name, to name the stack when the state has no `sgStack` section.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Delete even though the state still has a `deploy` section (the ALB may still use the group).
    #[arg(long)]
    pub force: bool,
    /// How long to wait for CloudFormation.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = common::cli::parse_duration)]
    pub timeout: Duration,
    /// How long to wait, before each delete attempt, for the network interfaces that still use
    /// the ALB security group (a deleted ALB's stay for minutes) to go.
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = common::cli::parse_duration)]
    pub eni_timeout: Duration,
}

/// Flags of `template`.
#[derive(Debug, Clone, clap::Args)]
pub struct TemplateArgs {
    /// CIDR allowed to reach the ALB; repeatable (default 0.0.0.0/0).
    #[arg(long = "allowed-cidr", value_name = "CIDR")]
    pub allowed_cidrs: Vec<String>,
}

/// The `sgStack` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    pub stack_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<String>,
    pub region: String,
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_id: Option<String>,
    pub vpc_id: String,
    pub cluster_security_group_id: String,
    pub cluster_security_group_source: network::Source,
    pub allowed_cidrs: Vec<String>,
    /// Keys a newer version wrote, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cluster(#[from] common::cluster::PickError),
    #[error("--allowed-cidr `{value}`: {reason}")]
    Cidr { value: String, reason: String },
    #[error("{0}")]
    StateMismatch(String),
    #[error(
        "the state still has a `deploy` section, so the ALB may still use this security group; run `eks-deploy delete` first, or pass --force"
    )]
    DeployStillThere,
    #[error(transparent)]
    State(#[from] StateError),

    #[error(
        "cluster {cluster} was not found in {region}; check --cluster and --region (nothing was created)"
    )]
    ClusterNotFound { cluster: String, region: String },
    #[error("DescribeCluster {cluster}")]
    DescribeCluster { cluster: String, source: AwsError },
    #[error("DescribeSubnets of cluster {cluster}")]
    DescribeSubnets { cluster: String, source: AwsError },
    #[error("DescribeSecurityGroups for cluster {cluster}")]
    DescribeSecurityGroups { cluster: String, source: AwsError },
    #[error(
        "cluster {cluster} reports neither a VPC nor subnets, so its VPC is unknown (nothing was created)"
    )]
    NoVpc { cluster: String },
    #[error("the subnets of cluster {cluster} lie in several VPCs ({vpcs}); nothing was created")]
    SubnetsInManyVpcs { cluster: String, vpcs: String },
    #[error(
        "no cluster security group for cluster {cluster}: EKS reported none and no security group in {vpc_id} is tagged aws:eks:cluster-name={cluster} (nothing was created)"
    )]
    NoClusterSecurityGroup { cluster: String, vpc_id: String },
    #[error(
        "several security groups are tagged aws:eks:cluster-name={cluster} ({groups}); put the right one in the state's cluster.clusterSecurityGroupId (nothing was created)"
    )]
    AmbiguousClusterSecurityGroup { cluster: String, groups: String },

    #[error("stack {stack} ended in {status}: {reasons}. {left}")]
    StackFailed {
        stack: String,
        status: String,
        reasons: String,
        left: String,
    },
    #[error(
        "stack {stack} is in {status}, which needs a person: continue the update rollback or delete the stack in the CloudFormation console, then run again"
    )]
    StackStuck { stack: String, status: String },
    #[error(
        "stack {stack} has no output {output}; it was not made by this tool's template. Delete it or pick another cluster"
    )]
    NoOutput { stack: String, output: &'static str },
    #[error(transparent)]
    Stack(#[from] common::cfn::CfnError),
    #[error(transparent)]
    Eni(#[from] common::eni::EniError),
}

impl StepFailure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Cluster(_)
            | Error::Cidr { .. }
            | Error::StateMismatch(_)
            | Error::DeployStillThere
            | Error::State(_) => EXIT_USAGE,
            _ => EXIT_FAILED,
        }
    }
}

/// The AWS clients this step uses, built once from the shared configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub eks: aws_sdk_eks::Client,
    pub ec2: aws_sdk_ec2::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            cloudformation: aws_sdk_cloudformation::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
        }
    }
}

/// The seed's stack name, `alb-securitygroup-<cluster>-<region>`, made valid for CloudFormation
/// (`_` becomes `-`) and shortened with a hash when it is longer than 128 characters.
pub fn stack_name(cluster: &str, region: &str) -> String {
    let name = format!("alb-securitygroup-{cluster}-{region}").replace('_', "-");
    common::names::fit(&name, MAX_STACK_NAME)
}

/// The cluster this run is about: `--cluster`, else the state's. A flag that names another
/// cluster than the state describes is refused, so one state never mixes two clusters.
pub fn pick_cluster(flag: Option<&str>, state: &State) -> Result<String, Error> {
    let known = state
        .str_at("cluster", "name")
        .or_else(|| state.str_at(SECTION, "clusterName"));
    Ok(common::cluster::pick(flag, known)?)
}

/// The allowed CIDRs: the flags, else those in the state, else 0.0.0.0/0.
pub fn pick_cidrs(flags: &[String], previous: Option<&Section>) -> Result<Vec<Cidr>, Error> {
    let values: Vec<String> = if !flags.is_empty() {
        flags.to_vec()
    } else if let Some(section) = previous.filter(|s| !s.allowed_cidrs.is_empty()) {
        tracing::info!(
            "no --allowed-cidr given; keeping the state's {}",
            section.allowed_cidrs.join(", ")
        );
        section.allowed_cidrs.clone()
    } else {
        vec![DEFAULT_CIDR.to_owned()]
    };
    cidr::parse_all(&values).map_err(|(value, reason)| Error::Cidr { value, reason })
}

fn check_same_place(previous: Option<&Section>, cluster: &str, region: &str) -> Result<(), Error> {
    match previous {
        Some(p) if p.cluster_name != cluster || p.region != region => {
            Err(Error::StateMismatch(format!(
                "the state's sgStack section is for cluster {} in {}, not {cluster} in {region}; delete that stack first or use a separate state",
                p.cluster_name, p.region
            )))
        }
        _ => Ok(()),
    }
}

/// What `create` decided to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Create,
    Recreate { status: String },
    Update { changes: Vec<String> },
    Unchanged,
}

/// Compares the deployed stack with what is wanted.
pub fn plan_for(
    existing: Option<&Stack>,
    deployed_template: Option<&Value>,
    wanted_template: &Value,
    wanted_parameters: &BTreeMap<String, String>,
) -> Result<Plan, Error> {
    let Some(stack) = existing else {
        return Ok(Plan::Create);
    };
    match stack::phase(&stack.status) {
        Phase::Broken => {
            return Ok(Plan::Recreate {
                status: stack.status.clone(),
            });
        }
        Phase::Stuck | Phase::InProgress => {
            return Err(Error::StackStuck {
                stack: stack.id.clone(),
                status: stack.status.clone(),
            });
        }
        Phase::Complete | Phase::UpdateRolledBack | Phase::Deleted => {}
    }
    let mut changes: Vec<String> = wanted_parameters
        .iter()
        .filter(|(k, v)| stack.parameters.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: {} -> {v}",
                stack.parameters.get(k).map_or("(none)", String::as_str)
            )
        })
        .collect();
    if deployed_template != Some(wanted_template) {
        changes.push("template (allowed CIDRs or rules)".into());
    }
    Ok(if changes.is_empty() {
        Plan::Unchanged
    } else {
        Plan::Update { changes }
    })
}

/// `eks-sg-stack create`.
pub async fn create(state: &mut State, ctx: &Context, args: &CreateArgs) -> Result<(), Error> {
    // Everything that can be refused is checked before any AWS call.
    let previous: Option<Section> = state.section(SECTION)?;
    let cluster = pick_cluster(args.cluster.as_deref(), state)?;
    check_same_place(previous.as_ref(), &cluster, &ctx.region)?;
    let cidrs = pick_cidrs(&args.allowed_cidrs, previous.as_ref())?;
    let name = stack_name(&cluster, &ctx.region);
    let clients = Clients::new(&ctx.aws);
    let cfn = &clients.cloudformation;

    let network = match network::from_state(state, &cluster) {
        Some(found) => found,
        None => network::discover(&clients.eks, &clients.ec2, &cluster, &ctx.region).await?,
    };
    tracing::info!(
        "cluster {cluster}: VPC {}, cluster security group {} (from {})",
        network.vpc_id,
        network.cluster_security_group_id,
        network.source
    );
    let wanted_template = template::render(&cidrs);
    let spec = Spec {
        name: name.clone(),
        body: template::render_text(&cidrs),
        parameters: BTreeMap::from([
            ("ClusterName".to_owned(), cluster.clone()),
            ("VpcId".to_owned(), network.vpc_id.clone()),
            (
                "ClusterSecurityGroupId".to_owned(),
                network.cluster_security_group_id.clone(),
            ),
        ]),
        tags: BTreeMap::from([
            ("eks-fargate-alb/cluster".to_owned(), cluster.clone()),
            ("eks-fargate-alb/step".to_owned(), "sg-stack".to_owned()),
        ]),
    };

    let mut existing = stack::describe(cfn, &name).await?;
    if let Some(busy) = existing
        .as_ref()
        .filter(|s| stack::phase(&s.status) == Phase::InProgress)
    {
        tracing::info!(
            "stack {name} is busy ({}); waiting for it to settle",
            busy.status
        );
        existing = stack::settle(
            cfn,
            &busy.id,
            &format!("stack {name} to settle"),
            args.timeout,
        )
        .await?;
    }
    let deployed = match &existing {
        Some(s)
            if matches!(
                stack::phase(&s.status),
                Phase::Complete | Phase::UpdateRolledBack
            ) =>
        {
            stack::deployed_template(cfn, &s.id).await?
        }
        _ => None,
    };
    let plan = plan_for(
        existing.as_ref(),
        deployed.as_ref(),
        &wanted_template,
        &spec.parameters,
    )?;
    let shown_cidrs: Vec<String> = cidrs.iter().map(ToString::to_string).collect();

    if ctx.dry_run {
        match &plan {
            Plan::Create => tracing::info!(
                "dry run: would create stack {name}: ALB security group in {} open on 80 and 443 to {}, and a rule on {} from it",
                network.vpc_id,
                shown_cidrs.join(", "),
                network.cluster_security_group_id
            ),
            Plan::Recreate { status } => tracing::info!(
                "dry run: stack {name} is in {status}; would delete it and create it again"
            ),
            Plan::Update { changes } => {
                tracing::info!("dry run: would update stack {name}: {}", changes.join("; "))
            }
            Plan::Unchanged => {
                tracing::info!("dry run: stack {name} is up to date; nothing to change")
            }
        }
        return Ok(());
    }

    let mut section = Section {
        stack_name: name.clone(),
        stack_id: existing.as_ref().map(|s| s.id.clone()),
        region: ctx.region.clone(),
        cluster_name: cluster.clone(),
        security_group_id: existing
            .as_ref()
            .and_then(|s| s.outputs.get(template::OUTPUT_GROUP_ID).cloned()),
        vpc_id: network.vpc_id.clone(),
        cluster_security_group_id: network.cluster_security_group_id.clone(),
        cluster_security_group_source: network.source,
        allowed_cidrs: shown_cidrs,
        extra: previous.map(|p| p.extra).unwrap_or_default(),
    };

    let done = match plan {
        Plan::Unchanged => {
            tracing::info!("stack {name} is up to date; nothing to change");
            existing.expect("unchanged means it exists")
        }
        Plan::Update { changes } => {
            tracing::info!("updating stack {name}: {}", changes.join("; "));
            let stack_id = section.stack_id.clone().unwrap_or_else(|| name.clone());
            if stack::update(cfn, &spec).await? {
                finish(cfn, &stack_id, &name, "UPDATE_COMPLETE", args.timeout).await?
            } else {
                tracing::info!("CloudFormation found nothing to change in stack {name}");
                stack::describe(cfn, &stack_id)
                    .await?
                    .ok_or_else(|| gone(&name))?
            }
        }
        Plan::Create | Plan::Recreate { .. } => {
            if let (Plan::Recreate { status }, Some(old)) = (&plan, &existing) {
                tracing::warn!(
                    "stack {name} is in {status} after an earlier failure; deleting it and creating it again"
                );
                stack::delete(cfn, &old.id).await?;
                remove_wait(cfn, &old.id, &name, args.timeout).await?;
            }
            tracing::info!(
                "creating stack {name} (ALB security group in {}, allowed {})",
                network.vpc_id,
                section.allowed_cidrs.join(", ")
            );
            let id = stack::create(cfn, &spec).await?;
            section.stack_id = Some(id.clone());
            section.security_group_id = None;
            state.set_section(SECTION, &section);
            finish(cfn, &id, &name, "CREATE_COMPLETE", args.timeout).await?
        }
    };

    let group = done
        .outputs
        .get(template::OUTPUT_GROUP_ID)
        .cloned()
        .ok_or_else(|| Error::NoOutput {
            stack: name.clone(),
            output: template::OUTPUT_GROUP_ID,
        })?;
    tracing::info!("ALB security group {group} (stack {name})");
    section.stack_id = Some(done.id);
    section.security_group_id = Some(group);
    state.set_section(SECTION, &section);
    Ok(())
}

fn gone(name: &str) -> Error {
    Error::StackFailed {
        stack: name.to_owned(),
        status: "DELETE_COMPLETE".into(),
        reasons: "the stack disappeared while this step worked on it".into(),
        left: "Nothing of it is left; run again to create it.".into(),
    }
}

/// Waits for a create or an update to end, and explains a failure.
async fn finish(
    cfn: &aws_sdk_cloudformation::Client,
    id: &str,
    name: &str,
    success: &str,
    timeout: Duration,
) -> Result<Stack, Error> {
    let settled = stack::settle(cfn, id, &format!("stack {name}"), timeout).await?;
    match settled {
        Some(s) if s.status == success => Ok(s),
        Some(s) => Err(Error::StackFailed {
            stack: name.to_owned(),
            reasons: stack::failure_reasons(cfn, id).await,
            left: format!(
                "The stack ({id}) is left in {}; the next `eks-sg-stack create` replaces it, `eks-sg-stack delete` removes it.",
                s.status
            ),
            status: s.status,
        }),
        None => Err(gone(name)),
    }
}

/// Waits until a stack being deleted is gone, and explains a failed delete.
async fn remove_wait(
    cfn: &aws_sdk_cloudformation::Client,
    id: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), Error> {
    match stack::settle(cfn, id, &format!("stack {name} to be deleted"), timeout).await? {
        None => Ok(()),
        Some(s) => Err(Error::StackFailed {
            stack: name.to_owned(),
            reasons: stack::failure_reasons(cfn, id).await,
            left: format!(
                "The stack ({id}) and its security group remain. If the ALB still uses the group, delete the Ingress (eks-deploy delete) or the load balancer, then run delete again; stack status {}.",
                s.status
            ),
            status: s.status,
        }),
    }
}

/// `eks-sg-stack delete`.
pub async fn delete(state: &mut State, ctx: &Context, args: &DeleteArgs) -> Result<(), Error> {
    let previous: Option<Section> = state.section(SECTION)?;
    if state.raw("deploy").is_some() && !args.force {
        return Err(Error::DeployStillThere);
    }
    let (name, target) = match &previous {
        Some(p) => {
            if let Some(flag) = args.cluster.as_deref().filter(|f| *f != p.cluster_name) {
                return Err(Error::StateMismatch(format!(
                    "--cluster {flag} names another cluster than the state's sgStack section ({}); drop --cluster or use that cluster's state",
                    p.cluster_name
                )));
            }
            (
                p.stack_name.clone(),
                p.stack_id.clone().unwrap_or_else(|| p.stack_name.clone()),
            )
        }
        None => {
            let cluster = pick_cluster(args.cluster.as_deref(), state)?;
            let name = stack_name(&cluster, &ctx.region);
            (name.clone(), name)
        }
    };
    let cfn = aws_sdk_cloudformation::Client::new(&ctx.aws);
    let Some(existing) = stack::describe(&cfn, &target).await? else {
        tracing::info!("stack {name} does not exist; nothing to delete");
        if !ctx.dry_run {
            state.clear_section(SECTION);
        }
        return Ok(());
    };
    if ctx.dry_run {
        tracing::info!(
            "dry run: would delete stack {name} ({}) and its security group{}",
            existing.status,
            existing
                .outputs
                .get(template::OUTPUT_GROUP_ID)
                .map(|g| format!(" {g}"))
                .unwrap_or_default()
        );
        return Ok(());
    }
    // The ALB's network interfaces stay for minutes after it is deleted, and hold the group:
    // wait for them before each attempt, and delete again a stack that ended DELETE_FAILED.
    let group = existing
        .outputs
        .get(template::OUTPUT_GROUP_ID)
        .cloned()
        .or_else(|| previous.as_ref().and_then(|p| p.security_group_id.clone()));
    let scope = group.map(common::eni::Scope::Group);
    let ec2 = aws_sdk_ec2::Client::new(&ctx.aws);
    let (scope, ec2_ref) = (&scope, &ec2);
    let left = stack::delete_with_retries(
        &cfn,
        &existing.id,
        &format!("stack {name}"),
        args.timeout,
        stack::DELETE_ATTEMPTS,
        move || async move {
            if let Some(scope) = scope {
                common::eni::wait_gone(ec2_ref, scope, args.eni_timeout).await?;
            }
            Ok::<(), Error>(())
        },
    )
    .await?;
    if let Some(s) = left {
        let still = match scope {
            Some(scope) => match common::eni::blocking(&ec2, scope).await {
                Ok(enis) if enis.is_empty() => format!("no network interface uses {scope} now"),
                Ok(enis) => format!(
                    "network interfaces still using {scope}: {}",
                    common::eni::list(&enis)
                ),
                Err(e) => format!("(could not list the network interfaces: {e})"),
            },
            None => "the stack reports no security group".to_owned(),
        };
        return Err(Error::StackFailed {
            stack: name.clone(),
            reasons: stack::failure_reasons(&cfn, &existing.id).await,
            left: format!(
                "The stack ({}) and its security group remain after {} attempts; {still}. Delete what still uses the group (the Ingress with `eks-deploy delete`, or the load balancer tagged elbv2.k8s.aws/cluster), then run `eks-sg-stack delete` again; stack status {}.",
                existing.id,
                stack::DELETE_ATTEMPTS,
                s.status
            ),
            status: s.status,
        });
    }
    tracing::info!("stack {name} deleted");
    state.clear_section(SECTION);
    Ok(())
}

/// `eks-sg-stack template`: prints the template; exit 2 on a bad CIDR.
pub fn print_template(args: &TemplateArgs) -> std::process::ExitCode {
    match pick_cidrs(&args.allowed_cidrs, None) {
        Ok(cidrs) => {
            print!("{}", template::render_text(&cidrs));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(EXIT_USAGE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names() {
        assert_eq!(
            stack_name("eks-fargate", "us-east-2"),
            "alb-securitygroup-eks-fargate-us-east-2"
        );
        assert_eq!(
            stack_name("my_cluster", "eu-west-1"),
            "alb-securitygroup-my-cluster-eu-west-1"
        );
        let long = stack_name(&"c".repeat(100), "ap-southeast-5");
        assert!(long.len() <= MAX_STACK_NAME && long.len() > 100, "{long}");
        assert_eq!(long, stack_name(&"c".repeat(100), "ap-southeast-5"));
        assert_ne!(long, stack_name(&"c".repeat(100), "ap-southeast-4"));
    }

    fn state(text: &str) -> State {
        State::parse(text).unwrap()
    }

    #[test]
    fn cluster_from_the_state_or_its_own_section() {
        // The rules themselves are common::cluster::pick's; here, where this step looks.
        let with = state(r#"{"schemaVersion":1,"cluster":{"name":"b"}}"#);
        assert_eq!(pick_cluster(None, &with).unwrap(), "b");
        let own = state(r#"{"schemaVersion":1,"sgStack":{"clusterName":"c"}}"#);
        assert_eq!(pick_cluster(None, &own).unwrap(), "c");
        let err = pick_cluster(Some("a"), &with).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert_eq!(
            pick_cluster(None, &State::new()).unwrap_err().exit_code(),
            EXIT_USAGE
        );
    }

    fn section(cidrs: &[&str]) -> Section {
        Section {
            stack_name: "s".into(),
            stack_id: None,
            region: "us-east-2".into(),
            cluster_name: "c".into(),
            security_group_id: None,
            vpc_id: "vpc".into(),
            cluster_security_group_id: "sg".into(),
            cluster_security_group_source: network::Source::Tag,
            allowed_cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
            extra: Map::new(),
        }
    }

    #[test]
    fn cidrs_from_flags_then_state_then_default() {
        let shown = |v: Vec<Cidr>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        let prev = section(&["10.0.0.0/8"]);
        assert_eq!(
            shown(pick_cidrs(&["::/0".into()], Some(&prev)).unwrap()),
            ["::/0"]
        );
        assert_eq!(shown(pick_cidrs(&[], Some(&prev)).unwrap()), ["10.0.0.0/8"]);
        assert_eq!(shown(pick_cidrs(&[], None).unwrap()), ["0.0.0.0/0"]);
        let err = pick_cidrs(&["10.0.0.1/8".into()], None).unwrap_err();
        assert!(
            err.to_string().contains("--allowed-cidr `10.0.0.1/8`"),
            "{err}"
        );
    }

    #[test]
    fn section_for_another_place_is_refused() {
        let prev = section(&[]);
        assert!(check_same_place(Some(&prev), "c", "us-east-2").is_ok());
        assert!(check_same_place(Some(&prev), "c", "eu-west-1").is_err());
        assert!(check_same_place(Some(&prev), "d", "us-east-2").is_err());
        assert!(check_same_place(None, "d", "eu-west-1").is_ok());
    }

    fn deployed(status: &str, params: &[(&str, &str)]) -> Stack {
        Stack {
            id: "id".into(),
            status: status.into(),
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            outputs: BTreeMap::new(),
        }
    }

    #[test]
    fn plans() {
        let t = serde_json::json!({"a": 1});
        let other = serde_json::json!({"a": 2});
        let params = BTreeMap::from([("VpcId".to_string(), "vpc-1".to_string())]);
        let same = deployed("CREATE_COMPLETE", &[("VpcId", "vpc-1")]);
        assert_eq!(plan_for(None, None, &t, &params).unwrap(), Plan::Create);
        assert_eq!(
            plan_for(Some(&same), Some(&t), &t, &params).unwrap(),
            Plan::Unchanged
        );
        let Plan::Update { changes } = plan_for(Some(&same), Some(&other), &t, &params).unwrap()
        else {
            panic!("template change must update");
        };
        assert_eq!(changes.len(), 1);
        let moved = deployed("UPDATE_ROLLBACK_COMPLETE", &[("VpcId", "vpc-0")]);
        let Plan::Update { changes } = plan_for(Some(&moved), Some(&t), &t, &params).unwrap()
        else {
            panic!("parameter change must update");
        };
        assert_eq!(changes, ["VpcId: vpc-0 -> vpc-1"]);
        let broken = deployed("ROLLBACK_COMPLETE", &[]);
        assert_eq!(
            plan_for(Some(&broken), None, &t, &params).unwrap(),
            Plan::Recreate {
                status: "ROLLBACK_COMPLETE".into()
            }
        );
        let stuck = deployed("UPDATE_ROLLBACK_FAILED", &[]);
        assert!(matches!(
            plan_for(Some(&stuck), None, &t, &params),
            Err(Error::StackStuck { .. })
        ));
    }
}
