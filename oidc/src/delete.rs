//! `eks-oidc delete`: remove the provider if this tool created it (or with `--force`).

use common::{Context, State};

use crate::error::Error;
use crate::locate::{issuer_from_state, locate};
use crate::provider;
use crate::{Clients, DeleteArgs, SECTION, Section};

/// Which provider `delete` is about.
enum Target {
    /// The one the state's section records.
    Recorded { arn: String, ours: bool },
    /// The one named after this cluster's issuer (no section in the state).
    Cluster(String),
}

/// `eks-oidc delete`.
pub async fn delete(state: &mut State, ctx: &Context, args: &DeleteArgs) -> Result<(), Error> {
    // Everything that can be refused is checked before any AWS call.
    let previous: Option<Section> =
        common::error::recorded_section(args.cluster.as_deref(), state, &ctx.region)?;
    let target = match &previous {
        Some(p) => Target::Recorded {
            arn: p.provider_arn.clone(),
            ours: p.created_by_us,
        },
        None => {
            let cluster = common::cluster::pick_in(args.cluster.as_deref(), state, None)?;
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
    ctx.same_account(state).await?;
    let clients = Clients::new(ctx);
    let (arn, ours) = match target {
        Target::Recorded { arn, ours } => (arn, ours),
        Target::Cluster(cluster) => (locate(&clients, ctx, state, &cluster).await?.1, false),
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
