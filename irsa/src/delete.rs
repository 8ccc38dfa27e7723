//! `irsa delete`: the service account's annotation (or the account irsa created), then the role
//! with its policies.

use common::owner::NotOurs;
use common::{Context, State};

use crate::args::DeleteArgs;
use crate::error::Error;
use crate::record::store;
use crate::role;
use crate::sa;
use crate::target::{Clients, Facts, Resolved, kube_client, resolve};

/// `irsa delete`.
pub async fn delete(state: &mut State, ctx: &Context, args: &DeleteArgs) -> Result<(), Error> {
    let target = &args.target;
    let Resolved {
        list,
        cluster,
        recorded,
        role_name,
        known,
    } = resolve(state, target, &ctx.region)?;
    let account = format!("{}/{}", target.namespace, target.sa_name);
    ctx.same_account(state).await?;
    let clients = Clients::new(&ctx.aws);
    let current = role::read(&clients.iam, &role_name).await?;
    // The role is ours (recorded as made, or carrying our tags), adopted (recorded), or not
    // ours: refused before the service account or the role is touched.
    let adopted = recorded.as_ref().is_some_and(|r| r.adopted);
    if let Some(c) = &current
        && !adopted
        && !role::tagged_ours(&c.tags, &cluster, &account)
        && !recorded.as_ref().is_some_and(|r| r.role_created)
    {
        let tag = format!(
            "aws iam tag-role --role-name {role_name} --tags Key={},Value={cluster} Key={},Value={} Key={},Value={account}",
            role::TAG_CLUSTER,
            role::STEP_TAG,
            role::STEP,
            role::TAG_SERVICE_ACCOUNT
        );
        return Err(NotOurs {
            what: "IAM role",
            name: role_name,
            why: common::owner::why_not_ours(|k| c.tags.get(k).map(String::as_str)),
            fix: common::owner::delete_fix(&tag),
        }
        .into());
    }

    // The service account first: a cluster that is gone already has no account to clean.
    let facts = if target.kubeconfig.is_some() {
        known
    } else {
        match known
            .complete(&clients.eks, &cluster, &ctx.region, true)
            .await
        {
            Ok(facts) => facts,
            Err(Error::Describe(common::cluster::DescribeError::NotFound { .. })) => {
                tracing::info!("cluster {cluster} is gone; only the IAM role is left to delete");
                Facts::default()
            }
            Err(e) => return Err(e),
        }
    };
    if target.kubeconfig.is_some() || facts.endpoint.is_some() {
        let kube = kube_client(target, &facts, &ctx.aws, &cluster).await?;
        let ours = current
            .as_ref()
            .map(|c| c.arn.clone())
            .or(recorded.as_ref().map(|r| r.role_arn.clone()));
        match sa::current(&kube, &target.namespace, &target.sa_name).await? {
            None => tracing::info!("service account {account} does not exist"),
            Some(now) if now.is_some() && now != ours => {
                tracing::warn!(
                    "service account {account} names another role ({}); leaving it",
                    now.unwrap_or_default()
                );
            }
            Some(_) if ctx.dry_run => tracing::info!(
                "dry run: would {} service account {account}",
                if recorded.as_ref().is_some_and(|r| r.service_account_created) {
                    "delete"
                } else {
                    "remove the role annotation from"
                }
            ),
            Some(_) if recorded.as_ref().is_some_and(|r| r.service_account_created) => {
                sa::delete(&kube, &target.namespace, &target.sa_name).await?;
                tracing::info!("deleted service account {account} (irsa created it)");
            }
            Some(_) => {
                sa::remove_annotation(&kube, &target.namespace, &target.sa_name).await?;
                tracing::info!(
                    "removed {} from service account {account}",
                    sa::ROLE_ANNOTATION
                );
            }
        }
    }

    match (&current, ctx.dry_run) {
        (None, _) => tracing::info!("role {role_name} does not exist"),
        (Some(_), dry_run) if adopted => {
            let entry = recorded.as_ref().expect("adopted is recorded");
            let inline: Vec<String> = entry
                .inline_policies
                .iter()
                .map(|p| p.name.clone())
                .collect();
            if dry_run {
                tracing::info!(
                    "dry run: would remove what irsa added to the adopted role {role_name} (inline {}; attached {}) and keep the role",
                    inline.join(", "),
                    entry.managed_policies.join(", ")
                );
            } else {
                role::remove_added(&clients.iam, &role_name, &inline, &entry.managed_policies)
                    .await?;
                tracing::info!(
                    "removed what irsa added to the adopted role {role_name}; the role stays"
                );
            }
        }
        (Some(_), true) => tracing::info!(
            "dry run: would detach and delete every policy of role {role_name} and delete it"
        ),
        (Some(_), false) => {
            if common::iam::remove_role(&clients.iam, &role_name)
                .await?
                .role
            {
                tracing::info!("deleted role {role_name}");
            } else {
                tracing::info!("role {role_name} does not exist");
            }
        }
    }
    if !ctx.dry_run {
        store(
            state,
            list,
            None,
            &cluster,
            &target.namespace,
            &target.sa_name,
        );
    }
    Ok(())
}
