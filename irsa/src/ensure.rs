//! `irsa ensure`: the role, its policies and the service account annotation, as asked.

use std::collections::BTreeSet;

use common::iam::role::{Added, Owner};
use common::{Context, State};

use crate::args::EnsureArgs;
use crate::documents::load_documents;
use crate::error::{Error, Usage};
use crate::record::{Entry, InlineRecord, store};
use crate::target::{Clients, Resolved, check_provider, kube_client, provider_arn, resolve};
use crate::{policy, role, sa};

/// `irsa ensure`.
pub async fn ensure(state: &mut State, ctx: &Context, args: &EnsureArgs) -> Result<(), Error> {
    // Every refusal comes before any call.
    let target = &args.target;
    let Resolved {
        list,
        cluster,
        recorded,
        role_name,
        known,
    } = resolve(state, target, &ctx.region)?;
    let mut managed = BTreeSet::new();
    for arn in &args.policy_arns {
        policy::check_policy_arn(arn).map_err(|reason| Usage::PolicyArn {
            value: arn.clone(),
            reason,
        })?;
        managed.insert(arn.clone());
    }
    let mut documents = load_documents(&args.policy_documents, &args.policy_sha256).await?;

    ctx.same_account(state).await?;
    // Policies name resources in the standard partition; IAM in aws-cn, aws-us-gov or aws-eusc
    // would take them and never match them.
    let partition = ctx.caller().await?.partition.clone();
    for document in &mut documents {
        document.for_partition(&partition);
    }
    let clients = Clients::new(&ctx.aws);
    let facts = known
        .complete(
            &clients.eks,
            &cluster,
            &ctx.region,
            target.kubeconfig.is_none(),
        )
        .await?;
    let provider = provider_arn(state, &cluster, &facts, ctx).await?;
    check_provider(&clients.iam, &provider).await?;
    let issuer = facts.issuer.clone().unwrap_or_default();
    let account = format!("{}/{}", target.namespace, target.sa_name);
    let current = role::read(&clients.iam, &role_name).await?;
    // Ours (recorded as made, or carrying our tags), adopted (recorded, or --adopt now), or
    // refused before anything changes.
    let owner = role::claim(
        &role_name,
        current.as_ref(),
        &cluster,
        &account,
        recorded.as_ref().is_some_and(|r| r.role_created),
        args.adopt || recorded.as_ref().is_some_and(|r| r.adopted),
    )?;
    let adopted = owner == Owner::Adopted;
    let wanted = role::desired(
        &role_name,
        role::trust_policy(&provider, &issuer, &target.namespace, &target.sa_name),
        &cluster,
        &account,
        &documents,
        managed,
    );
    // Of an adopted role (never tagged: tags would prove it ours to a later delete), only what
    // irsa added before may be removed.
    let added = Added {
        inline: recorded
            .iter()
            .flat_map(|r| r.inline_policies.iter().map(|p| p.name.clone()))
            .collect(),
        managed: recorded
            .iter()
            .flat_map(|r| r.managed_policies.iter().cloned())
            .collect(),
    };
    let changes = common::iam::role::plan(current.as_ref(), &wanted, owner, &added);
    let kube = kube_client(target, &facts, &ctx.aws, &cluster).await?;
    let annotation = sa::current(&kube, &target.namespace, &target.sa_name).await?;

    if ctx.dry_run {
        for line in changes.describe(&role_name) {
            tracing::info!("dry run: would {line}");
        }
        if changes.is_empty() {
            tracing::info!("dry run: role {role_name} is up to date");
        }
        let arn = current
            .as_ref()
            .map_or("(the new role's ARN)", |c| c.arn.as_str());
        match &annotation {
            None => tracing::info!(
                "dry run: would create service account {account} annotated {}={arn}",
                sa::ROLE_ANNOTATION
            ),
            Some(Some(now)) if now == arn => {
                tracing::info!("dry run: service account {account} is up to date")
            }
            Some(_) => tracing::info!(
                "dry run: would set {}={arn} on service account {account}",
                sa::ROLE_ANNOTATION
            ),
        }
        return Ok(());
    }

    if changes.is_empty() {
        tracing::info!("role {role_name} is up to date");
    }
    // What irsa added, which delete removes: everything on a role it made; on an adopted role,
    // what it puts or attaches now and what it recorded adding before.
    let inline_policies: Vec<InlineRecord> = documents
        .iter()
        .filter(|d| !adopted || changes.put.contains(&d.name) || added.inline.contains(&d.name))
        .map(|d| InlineRecord {
            name: d.name.clone(),
            source: d.source.to_string(),
            sha256: d.sha256.clone(),
        })
        .collect();
    let managed_policies: Vec<String> = wanted
        .managed
        .iter()
        .filter(|a| !adopted || changes.attach.contains(a) || added.managed.contains(*a))
        .cloned()
        .collect();
    let mut entry = Entry {
        cluster_name: cluster.clone(),
        region: ctx.region.clone(),
        namespace: target.namespace.clone(),
        service_account: target.sa_name.clone(),
        role_name: role_name.clone(),
        role_arn: current.as_ref().map(|c| c.arn.clone()).unwrap_or_default(),
        provider_arn: provider.clone(),
        inline_policies,
        managed_policies,
        service_account_created: recorded.as_ref().is_some_and(|r| r.service_account_created),
        role_created: !adopted,
        adopted,
        extra: recorded.map(|r| r.extra).unwrap_or_default(),
    };
    let role_arn = {
        let early = |arn: &str| {
            let mut made = entry.clone();
            made.role_arn = arn.to_owned();
            store(
                state,
                list.clone(),
                Some(made),
                &cluster,
                &target.namespace,
                &target.sa_name,
            );
        };
        common::iam::role::apply(
            &clients.iam,
            &wanted,
            &changes,
            entry.role_arn.clone(),
            early,
        )
        .await?
    };
    entry.role_arn = role_arn.clone();
    store(
        state,
        list.clone(),
        Some(entry.clone()),
        &cluster,
        &target.namespace,
        &target.sa_name,
    );

    let changed = match &annotation {
        Some(Some(now)) if *now == role_arn => {
            tracing::info!("service account {account} already carries the role");
            false
        }
        _ => {
            sa::annotate(&kube, &target.namespace, &target.sa_name, &role_arn).await?;
            if annotation.is_none() {
                tracing::info!(
                    "created service account {account} with {}={role_arn}",
                    sa::ROLE_ANNOTATION
                );
                entry.service_account_created = true;
            } else {
                tracing::info!(
                    "annotated service account {account} with {}={role_arn}",
                    sa::ROLE_ANNOTATION
                );
            }
            true
        }
    };
    store(
        state,
        list,
        Some(entry),
        &cluster,
        &target.namespace,
        &target.sa_name,
    );
    if args.restart {
        if changed {
            let rolled = sa::restart_users(&kube, &target.namespace, &target.sa_name).await?;
            if rolled.is_empty() {
                tracing::info!(
                    "no Deployment in {} runs as {}; nothing to restart",
                    target.namespace,
                    target.sa_name
                );
            } else {
                tracing::info!(
                    "restarted Deployments {} so their pods get the role",
                    rolled.join(", ")
                );
            }
        } else {
            tracing::info!("the annotation did not change; no restart needed");
        }
    }
    Ok(())
}
