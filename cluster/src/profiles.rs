//! The cluster's Fargate profile, changed without a gap. A profile cannot be changed in place,
//! and deleting one evicts every pod it selected, so a changed profile is never deleted first:
//! the new one is made under a new name (`fp-<hash of its namespaces>`), waited ACTIVE, and only
//! then is the old one deleted and the Deployments it selected restarted, so their pods come
//! back on the new profile. EKS changes one profile of a cluster at a time; the calls are
//! repeated while it says another is CREATING or DELETING.

use std::time::Duration;

use common::State;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};

use crate::eks::{self, ProfileSpec};
use crate::{Error, SECTION, Section};

/// The annotation `kubectl rollout restart` sets on a Deployment's pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// `fp-` and 12 hex digits of a stable hash (64-bit FNV-1a) of the sorted namespaces: the same
/// selectors always give the same name, other selectors another one.
pub fn profile_name(namespaces: &[String]) -> String {
    let mut sorted: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sorted.join(",").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fp-{:012x}", hash >> 16)
}

/// Makes `spec` the cluster's profile: creates it (or waits for it) first, then deletes the
/// profiles eks-cluster made before for this cluster and notes in the section which
/// namespaces' Deployments must be restarted ([`restart_deployments`]). Every step is recorded
/// in the state as it happens.
pub async fn reconcile(
    state: &mut State,
    section: &mut Section,
    eks_client: &aws_sdk_eks::Client,
    spec: &ProfileSpec,
    timeout: Duration,
) -> Result<(), Error> {
    let cluster = spec.cluster.as_str();
    match eks::describe_profile(eks_client, cluster, &spec.name).await? {
        Some(p) if spec.matches(&p) && p.status == "ACTIVE" => {
            tracing::info!("Fargate profile {} is up to date", spec.name);
        }
        Some(p) if spec.matches(&p) && p.status == "CREATING" => {
            eks::wait_profile_active(eks_client, cluster, &spec.name, timeout).await?;
        }
        found => {
            if let Some(p) = found {
                // Being deleted (an earlier run), failed, or made another way under our name:
                // it cannot serve, so it goes first (its name is ours to reuse).
                tracing::info!(
                    "Fargate profile {} is {} (namespaces {}); it is made again",
                    spec.name,
                    p.status,
                    p.namespaces.join(",")
                );
                eks::delete_profile(eks_client, cluster, &spec.name, timeout).await?;
            }
            if !section.fargate_profiles.contains(&spec.name) {
                section.fargate_profiles.push(spec.name.clone());
            }
            state.set_section(SECTION, section);
            tracing::info!(
                "creating Fargate profile {} (namespaces {}) on {}",
                spec.name,
                spec.namespaces.join(", "),
                spec.subnets.join(", ")
            );
            eks::create_profile(eks_client, spec, timeout).await?;
        }
    }

    // The new profile serves now; the ones it replaces may go.
    for name in eks::list_profiles(eks_client, cluster).await? {
        if name == spec.name {
            continue;
        }
        let Some(old) = eks::describe_profile(eks_client, cluster, &name).await? else {
            continue;
        };
        if old.owner.as_deref() != Some(cluster) {
            tracing::info!(
                "keeping Fargate profile {name}: it was not made by eks-cluster for {cluster}"
            );
            continue;
        }
        let (kept, dropped): (Vec<String>, Vec<String>) = old
            .namespaces
            .iter()
            .cloned()
            .partition(|ns| spec.namespaces.contains(ns));
        for ns in &dropped {
            tracing::warn!(
                "namespace {ns} is no longer selected by a Fargate profile: its pods are evicted with {name} and stay Pending"
            );
        }
        for ns in kept {
            if !section.fargate_restart_namespaces.contains(&ns) {
                section.fargate_restart_namespaces.push(ns);
            }
        }
        state.set_section(SECTION, section);
        tracing::info!(
            "Fargate profile {} is ACTIVE; deleting {name} (namespaces {}) that it replaces",
            spec.name,
            old.namespaces.join(",")
        );
        eks::delete_profile(eks_client, cluster, &name, timeout).await?;
        section.fargate_profiles.retain(|p| p != &name);
        state.set_section(SECTION, section);
    }
    // The section records the profiles eks-cluster made that still exist, never others'.
    let listed = eks::list_profiles(eks_client, cluster).await?;
    section.fargate_profiles.retain(|p| listed.contains(p));
    if !section.fargate_profiles.contains(&spec.name) {
        section.fargate_profiles.push(spec.name.clone());
    }
    state.set_section(SECTION, section);
    Ok(())
}

/// The merge patch `kubectl rollout restart` sends.
pub fn restart_patch(at: &str) -> serde_json::Value {
    serde_json::json!({
        "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: at } } } }
    })
}

/// Restarts every Deployment of `namespaces` (as `kubectl rollout restart`), so pods evicted
/// with a deleted profile come back on the new one. Returns how many were restarted.
pub async fn restart_deployments(
    client: &kube::Client,
    cluster: &str,
    namespaces: &[String],
) -> Result<usize, Error> {
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut count = 0;
    for ns in namespaces {
        let api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), ns);
        let error = |source| Error::RestartDeployments {
            cluster: cluster.to_owned(),
            namespace: ns.clone(),
            source,
        };
        let list = api.list(&Default::default()).await.map_err(error)?;
        for d in list.items {
            let Some(name) = d.metadata.name else {
                continue;
            };
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&restart_patch(&at)),
            )
            .await
            .map_err(error)?;
            tracing::info!("restarted Deployment {ns}/{name} onto the new Fargate profile");
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn names_follow_the_selectors_only() {
        let a = profile_name(&names(&["default", "kube-system"]));
        assert_eq!(a, profile_name(&names(&["kube-system", "default"])));
        assert_eq!(
            a,
            profile_name(&names(&["kube-system", "default", "default"]))
        );
        assert_ne!(
            a,
            profile_name(&names(&["default", "kube-system", "game-2048"]))
        );
        assert!(a.starts_with("fp-") && a.len() == 15, "{a}");
        assert!(a[3..].bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        // Stable across builds and platforms (a state names it): FNV-1a of "a" is pinned.
        assert_eq!(
            profile_name(&names(&["a"])),
            format!("fp-{:012x}", (0xaf63_dc4c_8601_ec8cu64) >> 16)
        );
    }

    #[test]
    fn the_restart_is_kubectl_s() {
        let p = restart_patch("2026-12-02T17:00:00Z");
        assert_eq!(
            p["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT],
            "2026-12-02T17:00:00Z"
        );
    }
}
