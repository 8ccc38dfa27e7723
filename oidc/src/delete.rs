//! `eks-oidc delete`: remove the provider if this tool made it (recorded in the state, or, with
//! no `oidc` section, carrying our tags); of an adopted provider only the client id it added.

use common::owner::NotOurs;
use common::{Context, State};

use crate::error::Error;
use crate::locate::{issuer_from_state, locate};
use crate::{Clients, DeleteArgs, SECTION, STEP, STS_CLIENT_ID, Section, provider, tagged_ours};

/// `eks-oidc delete`.
pub async fn delete(state: &mut State, ctx: &Context, args: &DeleteArgs) -> Result<(), Error> {
    // Everything that can be refused without AWS is checked before any AWS call.
    let previous: Option<Section> =
        common::error::recorded_section(args.cluster.as_deref(), state, &ctx.region)?;
    // The recorded section, or (none recorded) the cluster whose issuer names the provider.
    let target: Result<&Section, String> = match &previous {
        Some(p) => Ok(p),
        None => {
            let cluster = common::cluster::pick_in(args.cluster.as_deref(), state, None)?;
            issuer_from_state(state, &cluster)?;
            Err(cluster)
        }
    };
    ctx.same_account(state).await?;
    let clients = Clients::new(ctx);
    let (arn, cluster) = match target {
        Ok(p) => (p.provider_arn.clone(), p.cluster_name.clone()),
        Err(cluster) => (locate(&clients, ctx, state, &cluster).await?.1, cluster),
    };
    let Some(found) = provider::get(&clients.iam, &arn).await? else {
        tracing::info!("OIDC provider {arn} does not exist; nothing to delete");
        if !ctx.dry_run {
            state.clear_section(SECTION);
        }
        return Ok(());
    };
    let ours = previous.as_ref().is_some_and(|p| p.created_by_us) || tagged_ours(&found, &cluster);
    if !ours {
        match &previous {
            None => {
                let tag = format!(
                    "aws iam tag-open-id-connect-provider --open-id-connect-provider-arn {arn} --tags Key={},Value={cluster} Key={},Value={STEP}",
                    common::owner::CLUSTER_TAG,
                    common::owner::STEP_TAG
                );
                return Err(NotOurs {
                    what: "IAM OIDC provider",
                    name: arn,
                    why: common::owner::why_not_ours(|k| found.tag(k)),
                    fix: common::owner::delete_fix(&tag),
                }
                .into());
            }
            Some(p) if p.adopted && p.added_client_id => {
                if ctx.dry_run {
                    tracing::info!(
                        "dry run: would remove client id {STS_CLIENT_ID} (added by this tool) from the adopted OIDC provider {arn} and keep the provider"
                    );
                    return Ok(());
                }
                provider::remove_client_id(&clients.iam, &arn, STS_CLIENT_ID).await?;
                tracing::info!(
                    "removed client id {STS_CLIENT_ID} (added by this tool) from the adopted OIDC provider {arn}; the provider stays"
                );
            }
            Some(p) => tracing::info!(
                "OIDC provider {arn} was not made by this tool ({}): leaving it in place",
                if p.adopted {
                    "adopted"
                } else {
                    "the state records it as used, not made"
                }
            ),
        }
        if !ctx.dry_run {
            state.clear_section(SECTION);
        }
        return Ok(());
    }
    if ctx.dry_run {
        tracing::info!("dry run: would delete OIDC provider {arn} (made by this tool)");
        return Ok(());
    }
    tracing::info!("deleting OIDC provider {arn} (made by this tool)");
    if provider::delete(&clients.iam, &arn).await? {
        tracing::info!("OIDC provider {arn} deleted");
    } else {
        tracing::info!("OIDC provider {arn} was already gone");
    }
    state.clear_section(SECTION);
    Ok(())
}
