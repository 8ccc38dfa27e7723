//! `eks-cluster delete`: the Fargate profiles, the cluster, the roles and the network stack,
//! each only when eks-cluster made it, recorded in the state as each goes.

use common::{Context, State};

use crate::error::{Error, Usage};
use crate::plan::{check_region, pick_cluster};
use crate::{Clients, DeleteArgs, SECTION, Section, access, eks, network, ownership, roles};

/// `eks-cluster delete`.
pub async fn delete(state: &mut State, ctx: &Context, args: &DeleteArgs) -> Result<(), Error> {
    let previous: Option<Section> = state.section(SECTION)?;
    check_region(previous.as_ref(), &ctx.region)?;
    let name = pick_cluster(args.cluster.as_deref(), state)?;
    // Named in teardown order, the order they must go in.
    let later: Vec<&'static str> = common::steps::later_network_sections(SECTION)
        .into_iter()
        .rev()
        .filter(|s| state.raw(s).is_some())
        .collect();
    if !later.is_empty() && !args.force {
        return Err(Usage::StillInUse { sections: later }.into());
    }
    ctx.same_account(state).await?;
    let clients = Clients::new(&ctx.aws);
    let stack_name = previous
        .as_ref()
        .and_then(|p| p.network_stack_name.clone())
        .unwrap_or_else(|| network::stack_name(&name));
    let stack_target = previous
        .as_ref()
        .and_then(|p| p.network_stack_id.clone())
        .unwrap_or_else(|| stack_name.clone());
    let role_names = [
        roles::cluster_role_name(&name),
        roles::pod_execution_role_name(&name),
    ];

    // The cluster first: one that is neither ours nor adopted is refused before anything goes.
    let recorded = previous.as_ref().filter(|p| p.facts.name == name);
    let adopted = recorded.is_some_and(|p| p.cluster_adopted);
    let cluster_now = eks::describe(&clients.eks, &name).await?;
    let cluster_ours = cluster_now
        .as_ref()
        .is_some_and(|c| c.tagged_ours(&name) || recorded.is_some_and(|p| p.cluster_created_by_us));
    if let Some(c) = &cluster_now
        && !cluster_ours
        && !adopted
    {
        let tag = format!(
            "aws eks tag-resource --resource-arn {} --tags {}={name},{}={}",
            c.arn,
            common::owner::CLUSTER_TAG,
            common::owner::STEP_TAG,
            eks::STEP
        );
        return Err(ownership::cluster_not_ours(&name, c, common::owner::delete_fix(&tag)).into());
    }

    // What else is ours: the state says; without a state, what carries our tags for this
    // cluster.
    let (network_ours, roles_ours) = match &previous {
        Some(p) => (p.network_created_by_us, p.roles_created_by_us),
        None => {
            let stack_ours = network::describe_stack(&clients.cloudformation, &stack_name)
                .await?
                .is_some_and(|s| s.carries(&common::owner::tags(&name, eks::STEP)));
            let mut any_role = false;
            for role in &role_names {
                if roles::read(&clients.iam, role)
                    .await?
                    .is_some_and(|r| roles::tagged_ours(&r.tags, &name))
                {
                    any_role = true;
                }
            }
            (stack_ours, any_role)
        }
    };
    let adopted_roles = recorded
        .map(|p| p.adopted_roles.clone())
        .unwrap_or_default();

    // A cluster that goes takes every profile with it (EKS deletes no cluster that has one); an
    // adopted cluster keeps all but the ones eks-cluster made. Profiles are listed only for a
    // cluster that exists (asking moto 5.2.5 anyway answers HTTP 500, not
    // ResourceNotFoundException).
    let mut profiles = Vec::new();
    if cluster_now.is_some() {
        for p in eks::list_profiles(&clients.eks, &name).await? {
            if cluster_ours
                || eks::describe_profile(&clients.eks, &name, &p)
                    .await?
                    .is_some_and(|found| found.owner.as_deref() == Some(name.as_str()))
            {
                profiles.push(p);
            } else {
                tracing::info!(
                    "keeping Fargate profile {p} of the adopted cluster {name}: eks-cluster did not make it"
                );
            }
        }
    }
    if ctx.dry_run {
        let say = |what: String| tracing::info!("dry run: {what}");
        for p in &profiles {
            say(format!("would delete Fargate profile {p}"));
        }
        let ours_entries: Vec<&str> = recorded
            .map(|p| {
                p.access_entries
                    .iter()
                    .filter(|e| e.created_by_us)
                    .map(|e| e.principal_arn.as_str())
                    .collect()
            })
            .unwrap_or_default();
        match &cluster_now {
            Some(c) if cluster_ours => say(format!("would delete cluster {name} ({})", c.status)),
            Some(_) => {
                if !ours_entries.is_empty() {
                    say(format!(
                        "would delete the access entries eks-cluster made for {}",
                        ours_entries.join(", ")
                    ));
                }
                say(format!(
                    "would keep cluster {name} (adopted, not made by eks-cluster)"
                ))
            }
            None => say(format!("cluster {name} does not exist")),
        }
        if network_ours {
            say(format!("would delete network stack {stack_name}"));
        } else {
            say("would keep the network (not made by eks-cluster)".into());
        }
        if roles_ours {
            say(format!("would delete IAM roles {}", role_names.join(", ")));
        } else {
            say("would keep the IAM roles (not made by eks-cluster)".into());
        }
        for r in &adopted_roles {
            for policy in &r.attached_policies {
                say(format!(
                    "would detach {policy} from the adopted IAM role {} and keep the role",
                    r.name
                ));
            }
        }
        return Ok(());
    }

    let mut section = previous.clone().unwrap_or_default();
    for p in &profiles {
        eks::delete_profile(&clients.eks, &name, p, args.timeout).await?;
        section.fargate_profiles.retain(|x| x != p);
        if previous.is_some() {
            state.set_section(SECTION, &section);
        }
    }
    if cluster_now.is_some() && !cluster_ours {
        // The cluster stays: the administrators eks-cluster added go (a cluster that goes takes
        // its access entries with it).
        access::remove_recorded(state, &mut section, &clients.eks, previous.is_some()).await?;
        tracing::info!("keeping cluster {name}: it was adopted, not made by eks-cluster");
    } else if cluster_now.is_some() && eks::delete(&clients.eks, &name, args.timeout).await? {
        tracing::info!("deleting cluster {name}");
        eks::wait_gone(&clients.eks, &name, args.timeout).await?;
    } else {
        tracing::info!("cluster {name} does not exist; nothing to delete");
    }
    section.facts.arn = None;
    section.facts.endpoint = None;
    section.facts.certificate_authority_data = None;
    section.facts.oidc_issuer = None;
    section.core_dns_on_fargate = false;
    if previous.is_some() {
        state.set_section(SECTION, &section);
    }
    // The roles go before the network, so a network that cannot go yet (a load balancer or
    // its network interfaces still in the VPC) is all that is left.
    if roles_ours {
        for role in &role_names {
            // Only a role that carries our tag for this cluster is ours to delete.
            match roles::read(&clients.iam, role).await? {
                Some(r) if roles::tagged_ours(&r.tags, &name) => {
                    let removed = common::iam::remove_role(&clients.iam, role).await?;
                    if removed.role {
                        tracing::info!("deleted IAM role {role}");
                    }
                }
                Some(_) => tracing::info!(
                    "keeping IAM role {role}: it was not made by eks-cluster for {name}"
                ),
                None => {}
            }
        }
        section.cluster_role_arn = None;
        section.pod_execution_role_arn = None;
        section.roles_created_by_us = false;
        if previous.is_some() {
            state.set_section(SECTION, &section);
        }
    }
    // Adopted roles stay; only the policies eks-cluster attached to them go.
    for r in &adopted_roles {
        for policy in &r.attached_policies {
            if roles::detach_policy(&clients.iam, &r.name, policy).await? {
                tracing::info!(
                    "detached {policy} from the adopted IAM role {} (kept)",
                    r.name
                );
            }
        }
        section.adopted_roles.retain(|a| a.name != r.name);
        if previous.is_some() {
            state.set_section(SECTION, &section);
        }
    }
    if network_ours {
        if !network::delete_stack(
            &clients.cloudformation,
            &stack_target,
            &stack_name,
            args.timeout,
            Some((&clients.ec2, args.eni_timeout)),
        )
        .await?
        {
            tracing::info!("network stack {stack_name} does not exist; nothing to delete");
        }
    } else if section.facts.vpc_id.is_some() {
        tracing::info!(
            "keeping VPC {} (brought, not made by eks-cluster)",
            section.facts.vpc_id.as_deref().unwrap_or_default()
        );
    }
    state.clear_section(SECTION);
    if adopted {
        tracing::info!(
            "what eks-cluster made for the adopted cluster {name} is gone; the cluster stays"
        );
    } else {
        tracing::info!("cluster {name} and what eks-cluster made for it are gone");
    }
    Ok(())
}
