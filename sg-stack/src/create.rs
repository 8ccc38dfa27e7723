//! `eks-sg-stack create`: create the stack, or update it when its inputs changed.

use std::collections::BTreeMap;
use std::time::Duration;

use common::cfn as stack;
use common::cfn::{Phase, Spec, Stack};
use common::error::pick_for_section;
use common::{Context, State};
use serde_json::Value;

use crate::error::Error;
use crate::{
    Clients, CreateArgs, SECTION, Section, network, pick_cidrs, pick_ports, stack_name, template,
};

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
        changes.push("template (allowed CIDRs, target ports or rules)".into());
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
    let (cluster, previous) =
        pick_for_section::<Section>(args.cluster.as_deref(), state, &ctx.region)?;
    let cidrs = pick_cidrs(&args.allowed_cidrs, previous.as_ref())?;
    let ports = pick_ports(&args.target_ports, previous.as_ref());
    let name = stack_name(&cluster, &ctx.region);
    ctx.same_account(state).await?;
    let clients = Clients::new(&ctx.aws);
    let cfn = &clients.cloudformation;

    let network =
        network::resolve(&clients.eks, &clients.ec2, state, &cluster, &ctx.region).await?;
    tracing::info!(
        "cluster {cluster}: VPC {}, cluster security group {} (from {})",
        network.vpc_id,
        network.cluster_security_group_id,
        network.source
    );
    let wanted_template = template::render(&cidrs, &ports);
    let spec = Spec {
        name: name.clone(),
        body: template::render_text(&cidrs, &ports),
        parameters: BTreeMap::from([
            ("ClusterName".to_owned(), cluster.clone()),
            ("VpcId".to_owned(), network.vpc_id.clone()),
            (
                "ClusterSecurityGroupId".to_owned(),
                network.cluster_security_group_id.clone(),
            ),
        ]),
        tags: common::owner::tags(&cluster, crate::STEP),
    };

    let mut existing = stack::describe(cfn, &name).await?;
    // A stack of our name that the state does not record and that lacks our tags is someone
    // else's: refused before anything changes (stacks are never adopted).
    if let Some(found) = &existing
        && !found.carries(&spec.tags)
        && !previous.as_ref().is_some_and(|p| p.records(found))
    {
        return Err(crate::not_ours(
            found,
            &name,
            "Choose another cluster name or region, or delete that stack",
        )
        .into());
    }
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
                "dry run: would create stack {name}: ALB security group in {} open on 80 and 443 to {}, and rules on {} from it to port(s) {}",
                network.vpc_id,
                shown_cidrs.join(", "),
                network.cluster_security_group_id,
                shown_ports(&ports)
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
        target_ports: ports.clone(),
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
                "creating stack {name} (ALB security group in {}, allowed {}, to the pods on port(s) {})",
                network.vpc_id,
                section.allowed_cidrs.join(", "),
                shown_ports(&ports)
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

fn shown_ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn deployed(status: &str, params: &[(&str, &str)]) -> Stack {
        Stack {
            id: "id".into(),
            status: status.into(),
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            outputs: BTreeMap::new(),
            tags: BTreeMap::new(),
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
