//! `eks-sg-stack delete`: delete the stack and wait until it is gone.

use common::cfn as stack;
use common::{Context, State};

use crate::error::{Error, Usage};
use crate::{DeleteArgs, SECTION, Section, stack_name, template};

/// `eks-sg-stack delete`.
pub async fn delete(state: &mut State, ctx: &Context, args: &DeleteArgs) -> Result<(), Error> {
    let previous: Option<Section> =
        common::error::recorded_section(args.cluster.as_deref(), state, &ctx.region)?;
    if common::sections::deploy::present(state) && !args.force {
        return Err(Usage::DeployStillThere.into());
    }
    let (name, target, cluster) = match &previous {
        Some(p) => (
            p.stack_name.clone(),
            p.stack_id.clone().unwrap_or_else(|| p.stack_name.clone()),
            p.cluster_name.clone(),
        ),
        None => {
            let cluster = common::cluster::pick_in(args.cluster.as_deref(), state, None)?;
            let name = stack_name(&cluster, &ctx.region);
            (name.clone(), name, cluster)
        }
    };
    ctx.same_account(state).await?;
    let cfn = aws_sdk_cloudformation::Client::new(&ctx.aws);
    let Some(existing) = stack::describe(&cfn, &target).await? else {
        tracing::info!("stack {name} does not exist; nothing to delete");
        if !ctx.dry_run {
            state.clear_section(SECTION);
        }
        return Ok(());
    };
    // Ours when the state records it, or when it carries our tags.
    if !previous.as_ref().is_some_and(|p| p.records(&existing))
        && !existing.carries(&common::owner::tags(&cluster, crate::STEP))
    {
        return Err(crate::not_ours(
            &existing,
            &name,
            &format!("Delete it yourself (aws cloudformation delete-stack --stack-name {name}) or leave it"),
        )
        .into());
    }
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
