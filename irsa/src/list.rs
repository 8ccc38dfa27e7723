//! `irsa list`: the roles irsa made for a cluster, with a warning for stale trust.

use common::{Context, State};

use crate::args::ListArgs;
use crate::error::Error;
use crate::role;
use crate::target::{Clients, Facts, pick_cluster, provider_arn};

/// `irsa list`: the roles made for the cluster, as JSON, with a warning for stale trust.
pub async fn list(state: &State, ctx: &Context, args: &ListArgs) -> Result<String, Error> {
    let cluster = pick_cluster(args.cluster.as_deref(), state)?;
    let clients = Clients::new(&ctx.aws);
    let current = match Facts::from_state(state, &cluster)?
        .complete(&clients.eks, &cluster, &ctx.region, false)
        .await
    {
        Ok(facts) => Some(provider_arn(state, &cluster, &facts, ctx).await?),
        Err(Error::Describe(common::cluster::DescribeError::NotFound { .. })) => {
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
