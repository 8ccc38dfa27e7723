//! `eks-oidc ensure`: create the provider, or add the STS client id to the one that exists.

use std::time::Duration;

use common::error::pick_for_section;
use common::owner::NotOurs;
use common::{Context, State};
use rustls::pki_types::CertificateDer;

use crate::error::{Error, Usage};
use crate::issuer::Issuer;
use crate::locate::{issuer_from_state, locate};
use crate::provider::{self, Created, Provider};
use crate::{
    CLUSTER_TAG, Clients, EnsureArgs, SECTION, STEP, STEP_TAG, STS_CLIENT_ID, Section, proxy,
    thumbprint,
};

/// `eks-oidc ensure`.
pub async fn ensure(state: &mut State, ctx: &Context, args: &EnsureArgs) -> Result<(), Error> {
    // Everything that can be refused is checked before any AWS call.
    let (cluster, previous) =
        pick_for_section::<Section>(args.cluster.as_deref(), state, &ctx.region)?;
    let extra_roots = match &args.issuer_ca {
        Some(path) => thumbprint::load_ca_file(path).map_err(|reason| Usage::IssuerCa {
            path: path.display().to_string(),
            reason,
        })?,
        None => Vec::new(),
    };
    issuer_from_state(state, &cluster)?;

    ctx.same_account(state).await?;
    let clients = Clients::new(ctx);
    let (issuer, arn) = locate(&clients, ctx, state, &cluster).await?;
    let created_before = match &previous {
        Some(p) if p.provider_arn == arn => p.created_by_us,
        Some(p) if p.created_by_us => {
            return Err(Error::StaleProvider {
                cluster,
                old: p.provider_arn.clone(),
                new: arn,
            });
        }
        Some(p) => {
            tracing::info!(
                "the state recorded provider {} (not made by this tool); cluster {cluster} now needs {arn}",
                p.provider_arn
            );
            false
        }
        None => false,
    };
    let mut section = Section {
        issuer: issuer.url().to_owned(),
        provider_arn: arn.clone(),
        thumbprints: Vec::new(),
        client_ids: Vec::new(),
        created_by_us: created_before,
        adopted: previous
            .as_ref()
            .is_some_and(|p| p.provider_arn == arn && p.adopted),
        added_client_id: previous
            .as_ref()
            .is_some_and(|p| p.provider_arn == arn && p.added_client_id),
        cluster_name: cluster.clone(),
        region: ctx.region.clone(),
        extra: previous.map(|p| p.extra).unwrap_or_default(),
    };

    if let Some(existing) = provider::get(&clients.iam, &arn).await? {
        return use_existing(state, ctx, &clients, section, existing, args.adopt).await;
    }

    let thumbprints = match read_thumbprint(&issuer, &extra_roots, args.timeout).await {
        Ok(found) => {
            tracing::info!(
                "issuer {} presented {} certificate(s), verified; thumbprint of the top one: {}",
                issuer.address(),
                found.chain_len,
                found.thumbprint
            );
            vec![found.thumbprint]
        }
        Err(reason) => {
            let verb = if ctx.dry_run { "would be" } else { "is" };
            tracing::warn!(
                "no thumbprint for issuer {}: {reason}; the provider {verb} created without one (IAM accepts that for EKS issuers and verifies them against its own trusted CAs)",
                issuer.url()
            );
            Vec::new()
        }
    };
    let shown = match thumbprints.first() {
        Some(t) => format!("thumbprint {t}"),
        None => "no thumbprint".to_owned(),
    };
    if ctx.dry_run {
        tracing::info!(
            "dry run: would create OIDC provider {arn} for {} with client id {STS_CLIENT_ID} and {shown}",
            issuer.url()
        );
        return Ok(());
    }

    tracing::info!("creating OIDC provider {arn} with client id {STS_CLIENT_ID} and {shown}");
    let client_ids = vec![STS_CLIENT_ID.to_owned()];
    let tags: Vec<(String, String)> = common::owner::tags(&cluster, STEP).into_iter().collect();
    match provider::create(
        &clients.iam,
        &arn,
        issuer.url(),
        &client_ids,
        &thumbprints,
        &tags,
    )
    .await?
    {
        Created::Made(made) => {
            if made != arn {
                tracing::warn!("IAM named the provider {made}, not {arn} as expected");
            }
            section.provider_arn = made;
            section.thumbprints = thumbprints;
            section.client_ids = client_ids;
            section.created_by_us = true;
            state.set_section(SECTION, &section);
            tracing::info!("OIDC provider {} created", section.provider_arn);
            Ok(())
        }
        Created::AlreadyExists => {
            // The answer to our create was lost (the SDK's retry was told it exists: then it
            // carries our tags), or someone made it between our look and our create (then it is
            // refused as any provider not ours).
            tracing::info!(
                "provider {arn} exists after our CreateOpenIDConnectProvider; checking whose it is"
            );
            let existing = provider::get(&clients.iam, &arn)
                .await?
                .ok_or_else(|| Error::Vanished { arn: arn.clone() })?;
            use_existing(state, ctx, &clients, section, existing, false).await
        }
    }
}

/// A provider that exists: ours (recorded, or carrying our tags), adopted (recorded, or
/// `--adopt` now), or refused with exit 2 and nothing changed. The STS client id is added when
/// missing (recorded first for an adopted provider, so `delete` removes just that); nothing else
/// is changed.
async fn use_existing(
    state: &mut State,
    ctx: &Context,
    clients: &Clients,
    mut section: Section,
    existing: Provider,
    adopt: bool,
) -> Result<(), Error> {
    let arn = section.provider_arn.clone();
    // A provider carrying our tags for this cluster was made by this tool: by an earlier run
    // that was stopped before it wrote the state, or whose state was lost.
    if !section.created_by_us && tagged_ours(&existing, &section.cluster_name) {
        tracing::info!(
            "OIDC provider {arn} carries {CLUSTER_TAG}={} and {STEP_TAG}=oidc: made by this tool, so `eks-oidc delete` will remove it",
            section.cluster_name
        );
        section.created_by_us = true;
    }
    if !section.created_by_us && !section.adopted {
        if !adopt {
            return Err(NotOurs {
                what: "IAM OIDC provider",
                name: arn,
                why: common::owner::why_not_ours(|k| existing.tag(k)),
                fix: format!(
                    "Pass --adopt to use it (eks-oidc adds the client id {STS_CLIENT_ID} if it is missing; delete then removes only that client id and leaves the provider), or delete it"
                ),
            }
            .into());
        }
        tracing::info!("adopting OIDC provider {arn}: `eks-oidc delete` will leave it in place");
        section.adopted = true;
    }
    let mut client_ids = existing.client_ids;
    let missing = !client_ids.iter().any(|c| c == STS_CLIENT_ID);
    let owner = if section.created_by_us {
        "made by this tool"
    } else {
        "adopted"
    };
    if ctx.dry_run {
        if missing {
            tracing::info!(
                "dry run: OIDC provider {arn} exists ({owner}); would add client id {STS_CLIENT_ID} to its {}",
                shown_list(&client_ids)
            );
        } else {
            tracing::info!(
                "dry run: OIDC provider {arn} exists ({owner}) with client id {STS_CLIENT_ID}; nothing to change"
            );
        }
        return Ok(());
    }
    if missing {
        tracing::info!(
            "OIDC provider {arn} exists ({owner}) with client ids {}; adding {STS_CLIENT_ID}",
            shown_list(&client_ids)
        );
        if section.adopted {
            section.added_client_id = true;
            state.set_section(SECTION, &section);
        }
        provider::add_client_id(&clients.iam, &arn, STS_CLIENT_ID).await?;
        client_ids.push(STS_CLIENT_ID.to_owned());
    } else {
        tracing::info!(
            "OIDC provider {arn} exists ({owner}) with client id {STS_CLIENT_ID}; nothing to change"
        );
    }
    section.client_ids = client_ids;
    section.thumbprints = existing.thumbprints;
    state.set_section(SECTION, &section);
    Ok(())
}

/// True when the provider carries the tags this tool puts on what it makes for `cluster`.
pub fn tagged_ours(provider: &Provider, cluster: &str) -> bool {
    common::owner::proves_ours(|key| provider.tag(key), cluster, STEP, false)
}

fn shown_list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

/// The thumbprint, or the reason there is none, honouring `HTTPS_PROXY`/`NO_PROXY`.
async fn read_thumbprint(
    issuer: &Issuer,
    extra_roots: &[CertificateDer<'static>],
    timeout: Duration,
) -> Result<thumbprint::ChainThumbprint, String> {
    let proxy = proxy::Proxy::for_host(issuer.host(), |name| std::env::var(name).ok())?;
    if let Some(proxy) = &proxy {
        tracing::info!("reaching issuer {} through proxy {proxy}", issuer.address());
    }
    thumbprint::fetch(issuer, extra_roots, proxy.as_ref(), timeout)
        .await
        .map_err(|e| e.to_string())
}
