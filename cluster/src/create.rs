//! `eks-cluster create`: the network (brought, or our stack), the roles, the cluster, the
//! Fargate profile and CoreDNS on Fargate, each recorded in the state as soon as it exists.

use std::time::Duration;

use common::cfn::{Phase, phase};
use common::cluster::AccessError;
use common::iam::role::{self, Owner};
use common::{Context, State};

use crate::inputs::{self, Ipv4Net};
use crate::network::{self, Network};
use crate::ownership::{self, Claim, Claims};
use crate::plan::{CreatePlan, NetworkPlan, check_region, plan_create};
use crate::section::AdoptedRole;
use crate::{
    Clients, CreateArgs, Error, SECTION, Section, access, brought, coredns, eks, profiles,
    refusals, roles, template, zones,
};

/// `eks-cluster create`.
pub async fn create(state: &mut State, ctx: &Context, args: &CreateArgs) -> Result<(), Error> {
    // Everything that can be refused without AWS is refused here.
    let previous: Option<Section> = state.section(SECTION)?;
    check_region(previous.as_ref(), &ctx.region)?;
    let plan = plan_create(args, state, previous.as_ref())?;
    let name = plan.cluster.clone();
    ctx.same_account(state).await?;
    let clients = Clients::new(&ctx.aws);
    access::check_principals(ctx, &clients.iam, &plan, previous.as_ref()).await?;
    // Every name we would make is ours, absent, or adopted (`--adopt`), before anything is made.
    let claims = ownership::check_create(
        &clients,
        &name,
        previous.as_ref(),
        matches!(plan.network, NetworkPlan::Stack { .. }),
        &profiles::profile_name(&plan.namespaces),
        args.adopt,
    )
    .await?;
    access::check_mode(&name, claims.existing.as_ref(), &plan.admins)?;

    if ctx.dry_run {
        return dry_run_create(&clients, ctx, args, &plan, &claims, previous.as_ref()).await;
    }

    let mut section = previous.unwrap_or_default();
    section.facts.name = name.clone();
    section.facts.region = ctx.region.clone();

    // A brought network, or the zones of the network to make, are checked before anything is
    // made.
    let checked: Result<Network, (Ipv4Net, u8, Option<Vec<String>>)> = match &plan.network {
        NetworkPlan::Brought {
            vpc_id,
            private,
            public,
        } => Ok(
            brought::validate_brought(&clients.ec2, &ctx.region, vpc_id, private, public).await?,
        ),
        NetworkPlan::Stack { cidr, azs } => Err((
            *cidr,
            *azs,
            zones_for_new_stack(
                &clients,
                &ctx.region,
                &name,
                *azs,
                &section.refused_zone_ids,
            )
            .await?,
        )),
    };

    warn_if_open(&plan.public_access_cidrs);

    let account: roles::Account = ctx.caller().await?.clone().into();
    section.facts.account_id = Some(account.id.clone());

    // The network: brought, or our stack; without the zones EKS refused for this cluster.
    let net: Network = match checked {
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
    let mut net = refusals::fit(
        &clients,
        &section,
        &ctx.region,
        &plan.network,
        net,
        None,
        args.timeout,
    )
    .await?;
    section.facts.vpc_id = Some(net.vpc_id.clone());
    section.facts.public_subnet_ids = net.public_subnet_ids.clone();
    section.facts.private_subnet_ids = net.private_subnet_ids.clone();
    state.set_section(SECTION, &section);

    // The roles, each recorded as soon as it exists.
    let cluster_role = roles::cluster_role(&name, &account);
    let cluster_role_arn =
        ensure_role(state, &mut section, &clients, &claims, &cluster_role).await?;
    section.cluster_role_arn = Some(cluster_role_arn.clone());
    state.set_section(SECTION, &section);
    let pod_role = roles::pod_execution_role(&name, &ctx.region, &account);
    let pod_role_arn = ensure_role(state, &mut section, &clients, &claims, &pod_role).await?;
    section.pod_execution_role_arn = Some(pod_role_arn.clone());
    state.set_section(SECTION, &section);

    // The cluster (as the ownership check found it).
    let existing = claims.existing.clone();
    match claims.cluster {
        Claim::Adopted if !section.cluster_adopted => {
            section.cluster_adopted = true;
            state.set_section(SECTION, &section);
        }
        Claim::Ours if !section.cluster_created_by_us => {
            section.cluster_created_by_us = true;
            state.set_section(SECTION, &section);
        }
        _ => {}
    }
    match &existing {
        Some(c) => {
            tracing::info!(
                "cluster {name} exists ({}, {}); using it, not creating it",
                c.status,
                if section.cluster_adopted {
                    "adopted: delete leaves it standing"
                } else {
                    "made by eks-cluster"
                }
            );
            if c.version.as_deref().is_some_and(|v| v != plan.version) {
                tracing::warn!(
                    "cluster {name} runs Kubernetes {}, not the {} asked for; it is left as it is",
                    c.version.as_deref().unwrap_or("?"),
                    plan.version
                );
            }
            leave_settings(&name, c, &plan);
            if let Some(support) = &c.support_type {
                section.support_type = Some(support.clone());
            }
            section.facts.arn = Some(c.arn.clone());
        }
        None => {
            tracing::info!(
                "creating cluster {name} (Kubernetes {}) in {} with role {}",
                plan.version,
                net.vpc_id,
                cluster_role_arn
            );
            section.public_access_cidrs = plan.public_access_cidrs.clone();
            section.support_type = Some(plan.support_type.as_str().to_owned());
            state.set_section(SECTION, &section);
            // Zones EKS refuses are recorded and left out, and the cluster made in others.
            let made = refusals::create_cluster(
                state,
                &mut section,
                &clients,
                &ctx.region,
                &plan.network,
                &mut net,
                eks::ClusterSpec {
                    name: name.clone(),
                    version: plan.version.clone(),
                    role_arn: cluster_role_arn.clone(),
                    subnet_ids: Vec::new(),
                    public_access_cidrs: plan.public_access_cidrs.clone(),
                    support_type: plan.support_type,
                },
                args.timeout,
            )
            .await?;
            section.cluster_created_by_us = true;
            section.facts.arn = Some(made.arn).filter(|a| !a.is_empty());
        }
    }
    state.set_section(SECTION, &section);
    let active = eks::wait_active(&clients.eks, &name, args.timeout).await?;
    section.facts.arn = Some(active.arn.clone());
    section.kubernetes_version = active.version.clone().or(Some(plan.version.clone()));
    section.facts.endpoint = active.endpoint.clone();
    section.facts.certificate_authority_data = active.certificate_authority_data.clone();
    section.facts.oidc_issuer = active.oidc_issuer.clone();
    if let Some(vpc) = &active.vpc_id
        && vpc != &net.vpc_id
    {
        tracing::warn!(
            "cluster {name} runs in {vpc}, not in {}; the state records the cluster's VPC",
            net.vpc_id
        );
        section.facts.vpc_id = Some(vpc.clone());
    }
    section.facts.cluster_security_group_id = active.cluster_security_group_id.clone();
    state.set_section(SECTION, &section);
    reconcile_public_access(
        state,
        &mut section,
        &clients.eks,
        &active,
        &plan,
        args.timeout,
    )
    .await?;
    // The administrators, before the steps that need Kubernetes: should one of those fail, they
    // can already finish or tear down.
    access::reconcile(
        state,
        &mut section,
        &clients.eks,
        &plan.admins,
        active.authentication_mode.as_deref(),
        &account.partition,
    )
    .await?;

    // The Fargate profile: a changed one is made anew, the workloads moved onto it, and only
    // then the old one goes.
    let profile = eks::ProfileSpec {
        cluster: name.clone(),
        name: profiles::profile_name(&plan.namespaces),
        namespaces: plan.namespaces.clone(),
        subnets: net.private_subnet_ids.clone(),
        pod_execution_role_arn: pod_role_arn.clone(),
    };
    section.fargate_namespaces = plan.namespaces.clone();
    state.set_section(SECTION, &section);
    let replaced =
        profiles::reconcile(state, &mut section, &clients.eks, &profile, args.timeout).await?;
    let client = kube_client(
        ctx,
        &section,
        args.kubeconfig.as_deref(),
        args.context.as_deref(),
    )
    .await?;
    profiles::finish(
        state,
        &mut section,
        &clients.eks,
        &client,
        &profile,
        &replaced,
        args.timeout,
    )
    .await?;

    // CoreDNS: eks-cluster's to roll onto Fargate on a cluster it made; an adopted cluster's
    // CoreDNS is left as its owner runs it.
    if section.cluster_adopted {
        tracing::warn!(
            "cluster {name} is adopted: its kube-system/coredns is left as it is; if its pods must run on Fargate, remove the pod template annotation {} and restart it",
            coredns::COMPUTE_TYPE
        );
    } else if !plan.namespaces.iter().any(|ns| ns == "kube-system") {
        tracing::warn!(
            "the Fargate profile does not select kube-system: kube-system/coredns has no place to run (DNS in the cluster stops once its pods go); it is left as it is. Add --namespace kube-system"
        );
        section.core_dns_on_fargate = false;
        state.set_section(SECTION, &section);
    } else {
        let outcome = coredns::move_to_fargate(client, &name, args.timeout).await?;
        section.core_dns_on_fargate = outcome != coredns::Outcome::Absent;
        state.set_section(SECTION, &section);
    }
    tracing::info!(
        "cluster {name} is ready: {} (Fargate profile {}, namespaces {})",
        section
            .facts
            .endpoint
            .as_deref()
            .unwrap_or("no endpoint reported"),
        profile.name,
        plan.namespaces.join(", ")
    );
    Ok(())
}

/// Warns that the public API endpoint is open to every address.
fn warn_if_open(cidrs: &[String]) {
    if inputs::open_to_all(cidrs) {
        tracing::warn!(
            "the cluster's public API endpoint is open to all addresses ({}): pass --public-access-cidrs with the public addresses your kubectl and CI connect from (Fargate pods reach the cluster through its private endpoint)",
            inputs::OPEN_TO_ALL
        );
    }
}

/// What an existing cluster keeps as it is, said once: its support type and authentication
/// mode (new clusters get the asked support type and API authentication).
fn leave_settings(name: &str, cluster: &eks::Cluster, plan: &CreatePlan) {
    if let Some(support) = cluster
        .support_type
        .as_deref()
        .filter(|t| *t != plan.support_type.as_str())
    {
        tracing::warn!(
            "cluster {name} has support type {support}, not the {} asked for; it is left as it is (change it with `aws eks update-cluster-config --name {name} --upgrade-policy supportType={}`)",
            plan.support_type.as_str(),
            plan.support_type.as_str()
        );
    }
    if let Some(mode) = cluster
        .authentication_mode
        .as_deref()
        .filter(|m| *m != eks::AUTHENTICATION_MODE.as_str())
    {
        tracing::info!(
            "cluster {name} uses authentication mode {mode}; it is left as it is (clusters eks-cluster creates use {})",
            eks::AUTHENTICATION_MODE.as_str()
        );
    }
}

/// The public endpoint's CIDRs: a cluster eks-cluster made is brought to the asked ones
/// (recorded before the update, so a re-run finishes it); an adopted cluster keeps its own,
/// with a warning when they differ. The state records what the endpoint is open to.
async fn reconcile_public_access(
    state: &mut State,
    section: &mut Section,
    eks_client: &aws_sdk_eks::Client,
    active: &eks::Cluster,
    plan: &CreatePlan,
    timeout: Duration,
) -> Result<(), Error> {
    let name = &plan.cluster;
    let live = eks::effective_public_access_cidrs(active);
    let asked = &plan.public_access_cidrs;
    if eks::same_cidrs(&live, asked) {
        section.public_access_cidrs = live;
    } else if section.cluster_adopted {
        tracing::warn!(
            "cluster {name} is adopted: its public endpoint stays open to {}, not {}; eks-cluster does not change an adopted cluster's configuration",
            live.join(", "),
            asked.join(", ")
        );
        section.public_access_cidrs = live;
    } else {
        tracing::info!(
            "cluster {name}: its public endpoint is open to {}; changing it to {}",
            live.join(", "),
            asked.join(", ")
        );
        section.public_access_cidrs = asked.clone();
        state.set_section(SECTION, section);
        eks::update_public_access(eks_client, name, asked, timeout).await?;
    }
    state.set_section(SECTION, section);
    Ok(())
}

/// One of the two roles ([`common::iam::role`]): made, or a role we made brought to the wanted
/// trust, or an adopted one used as it is; then its managed policy, attached when missing. Its
/// ARN. Recorded as soon as it is made, and for an adopted role before the attachment (so delete
/// detaches only that).
async fn ensure_role(
    state: &mut State,
    section: &mut Section,
    clients: &Clients,
    claims: &Claims,
    desired: &role::Desired,
) -> Result<String, Error> {
    let cluster = section.facts.name.clone();
    let adopted = claims.role(&desired.name) == Claim::Adopted;
    let found = role::read(&clients.iam, &desired.name, false).await?;
    let owner = roles::claim(&desired.name, found.as_ref(), &cluster, adopted)?;
    let changes = role::plan(found.as_ref(), desired, owner, &role::Added::default());
    if changes.trust_kept {
        tracing::warn!(
            "IAM role {} (adopted) has another trust policy than eks-cluster would give it; it is left as it is",
            desired.name
        );
    }
    match owner {
        Owner::Ours => section.roles_created_by_us = true,
        Owner::Adopted => {
            let entry = match section
                .adopted_roles
                .iter()
                .position(|r| r.name == desired.name)
            {
                Some(at) => &mut section.adopted_roles[at],
                None => {
                    section.adopted_roles.push(AdoptedRole {
                        name: desired.name.clone(),
                        attached_policies: Vec::new(),
                    });
                    section.adopted_roles.last_mut().expect("just pushed")
                }
            };
            // Recorded before the call: a lost answer must not leave an attachment delete
            // forgets.
            for policy in &changes.attach {
                if !entry.attached_policies.contains(policy) {
                    entry.attached_policies.push(policy.clone());
                }
            }
        }
        Owner::Absent => {}
    }
    state.set_section(SECTION, section);
    let arn = found.map(|f| f.arn).unwrap_or_default();
    let arn = role::apply(&clients.iam, desired, &changes, arn, |_| {
        section.roles_created_by_us = true;
        state.set_section(SECTION, section);
    })
    .await?;
    Ok(arn)
}

/// The zones of the network stack when it is still to be made (`None` when it exists): chosen
/// by zone id through EC2, so a region with too few usable zones is refused before anything is
/// made.
async fn zones_for_new_stack(
    clients: &Clients,
    region: &str,
    cluster: &str,
    azs: u8,
    refused: &[String],
) -> Result<Option<Vec<String>>, Error> {
    match network::describe_stack(&clients.cloudformation, &network::stack_name(cluster)).await? {
        Some(s) if !matches!(phase(&s.status), Phase::Broken | Phase::Deleted) => Ok(None),
        _ => zones::choose_zones(&clients.ec2, region, azs, refused)
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
            // Subnets added in place of zones EKS refused widen the stack by design.
            let spans = u8::try_from(network::stack_zones(&s).len()).unwrap_or(u8::MAX);
            let widened = !section.refused_zone_ids.is_empty()
                && spans > azs
                && deployed.as_ref() == Some(&template::render(cidr, spans));
            if !widened && deployed.as_ref() != Some(&template::render(cidr, azs)) {
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
                None => {
                    zones::choose_zones(&clients.ec2, region, azs, &section.refused_zone_ids)
                        .await?
                }
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
    context: Option<&str>,
) -> Result<kube::Client, Error> {
    let cluster = section.facts.name.as_str();
    if kubeconfig.is_none() {
        // The cluster was just described ACTIVE: what it did not report is not asked again.
        let missing = if section.facts.endpoint.is_none() {
            Some("endpoint")
        } else if section.facts.certificate_authority_data.is_none() {
            Some("certificate authority")
        } else {
            None
        };
        if let Some(what) = missing {
            return Err(Error::ClusterIncomplete {
                cluster: cluster.to_owned(),
                what,
            });
        }
    }
    common::cluster::kube_client_from(
        kubeconfig,
        context,
        &ctx.aws,
        cluster,
        section.facts.endpoint.as_deref(),
        section.facts.certificate_authority_data.as_deref(),
    )
    .await
    .map_err(|e| match e {
        AccessError::Token(source) => Error::Token {
            cluster: cluster.to_owned(),
            source,
        },
        source => Error::KubernetesClient {
            cluster: cluster.to_owned(),
            source,
        },
    })
}

/// `create --dry-run`: what would be made, asked of AWS without changing anything.
async fn dry_run_create(
    clients: &Clients,
    ctx: &Context,
    args: &CreateArgs,
    plan: &CreatePlan,
    claims: &Claims,
    previous: Option<&Section>,
) -> Result<(), Error> {
    let name = &plan.cluster;
    let say = |what: String| tracing::info!("dry run: {what}");
    warn_if_open(&plan.public_access_cidrs);
    match &plan.network {
        NetworkPlan::Stack { cidr, azs } => {
            let stack = network::stack_name(name);
            match network::describe_stack(&clients.cloudformation, &stack).await? {
                Some(s) => say(format!(
                    "network stack {stack} exists ({}); would use it",
                    s.status
                )),
                None => {
                    let refused = previous
                        .map(|p| p.refused_zone_ids.clone())
                        .unwrap_or_default();
                    let zones =
                        zones::choose_zones(&clients.ec2, &ctx.region, *azs, &refused).await?;
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
            brought::validate_brought(&clients.ec2, &ctx.region, vpc_id, private, public).await?;
            say(format!(
                "would use VPC {vpc_id}: private subnets {}, public subnets {}",
                private.join(","),
                public.join(",")
            ));
        }
    }
    for (role, claim) in &claims.roles {
        say(match claim {
            Claim::Absent => format!("would create IAM role {role}"),
            Claim::Ours => format!(
                "IAM role {role} exists (made by eks-cluster); would check its trust and policy"
            ),
            Claim::Adopted => format!(
                "IAM role {role} exists; would adopt it as it is and attach its managed policy if missing"
            ),
        });
    }
    say(match claims.cluster {
        Claim::Absent => format!(
            "would create cluster {name} (Kubernetes {}) in {}, private endpoint and public endpoint open to {}, authentication {}, support type {}",
            plan.version,
            ctx.region,
            plan.public_access_cidrs.join(", "),
            eks::AUTHENTICATION_MODE.as_str(),
            plan.support_type.as_str()
        ),
        Claim::Ours => match claims
            .existing
            .as_ref()
            .map(eks::effective_public_access_cidrs)
        {
            Some(live) if !eks::same_cidrs(&live, &plan.public_access_cidrs) => format!(
                "cluster {name} exists (made by eks-cluster); would use it, and open its public endpoint to {} instead of {} (UpdateClusterConfig)",
                plan.public_access_cidrs.join(", "),
                live.join(", ")
            ),
            _ => format!("cluster {name} exists (made by eks-cluster); would use it"),
        },
        Claim::Adopted => {
            format!("cluster {name} exists; would adopt it as it is (delete leaves it standing)")
        }
    });
    access::dry_run(&clients.eks, plan, claims.existing.as_ref(), previous).await?;
    let profile = profiles::profile_name(&plan.namespaces);
    let others: Vec<String> = match claims.cluster {
        Claim::Ours | Claim::Adopted => eks::list_profiles(&clients.eks, name)
            .await?
            .into_iter()
            .filter(|p| p != &profile)
            .collect(),
        Claim::Absent => Vec::new(),
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
            "once {profile} is ACTIVE, would move onto it the Deployments that run on those of the Fargate profile(s) {} that eks-cluster made (pod template label {}), wait until they run there, and only then delete those profiles",
            others.join(", "),
            profiles::PROFILE_LABEL
        ));
    }
    if claims.cluster == Claim::Adopted {
        say("would leave kube-system/coredns as it is (an adopted cluster's)".into());
        return Ok(());
    }
    say(format!(
        "would roll kube-system/coredns out again (remove {}, set {}) unless its pods all run on Fargate{}, and wait until it is available",
        coredns::COMPUTE_TYPE,
        common::workload::RESTARTED_AT,
        if args.kubeconfig.is_some() {
            " (through --kubeconfig)"
        } else {
            ""
        }
    ));
    Ok(())
}
