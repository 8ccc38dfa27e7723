//! The cluster's Fargate profile, changed without a gap. A profile cannot be changed in place,
//! and deleting one evicts every pod it placed (both CoreDNS replicas, both controller replicas
//! and their fail-closed webhooks, the app), so a changed profile is never deleted first: the
//! new one is made under a new name (`fp-<hash of its namespaces>`) and waited ACTIVE
//! ([`reconcile`]); then the Deployments the old profiles run in the namespaces both select are
//! moved onto it, rolled with the label `eks.amazonaws.com/fargate-profile: <new profile>` on
//! their pod template (a pod several profiles select lands on one of them at random unless it
//! names one) and waited until the rollout is done; only then are the old profiles deleted
//! ([`finish`]). EKS changes one profile of a cluster at a time; the calls are repeated while it
//! says another is CREATING or DELETING.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::State;
use common::wait::{Poll, wait_for_kube};
use common::workload::rollout;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

use crate::eks::{self, ProfileSpec};
use crate::{Error, SECTION, Section};

/// The pod label that names the Fargate profile a pod runs with: EKS puts it on the pods a
/// profile places, and a pod that carries it goes on that profile only.
pub const PROFILE_LABEL: &str = "eks.amazonaws.com/fargate-profile";

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

/// The profiles eks-cluster made for the cluster that the new one replaces, still to be
/// deleted once their workloads moved ([`finish`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replaced {
    pub profiles: Vec<String>,
}

/// Makes `spec` the cluster's profile: creates it (or waits for it) first, then finds the
/// profiles eks-cluster made before for this cluster, and records in the section which
/// namespaces' Deployments move onto the new profile before those go ([`finish`]). Every step
/// is recorded in the state as it happens.
pub async fn reconcile(
    state: &mut State,
    section: &mut Section,
    eks_client: &aws_sdk_eks::Client,
    spec: &ProfileSpec,
    timeout: Duration,
) -> Result<Replaced, Error> {
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

    // The new profile serves now; the ones it replaces go once their workloads moved.
    let mut replaced = Replaced::default();
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
        replaced.profiles.push(name);
    }
    state.set_section(SECTION, section);
    Ok(replaced)
}

/// Moves the Deployments of the recorded namespaces onto the new profile ([`move_deployments`])
/// and, once they run there, deletes the profiles it replaces; then the section records the
/// profiles eks-cluster made that still exist, and no pending move.
pub async fn finish(
    state: &mut State,
    section: &mut Section,
    eks_client: &aws_sdk_eks::Client,
    client: &kube::Client,
    spec: &ProfileSpec,
    replaced: &Replaced,
    timeout: Duration,
) -> Result<(), Error> {
    let cluster = spec.cluster.as_str();
    let moving: Vec<String> = section
        .fargate_restart_namespaces
        .iter()
        .filter(|ns| spec.namespaces.contains(ns))
        .cloned()
        .collect();
    if !moving.is_empty() {
        let moved = move_deployments(client, cluster, &moving, &spec.name, timeout).await?;
        tracing::info!(
            "{moved} Deployment(s) of {} run on Fargate profile {}",
            moving.join(", "),
            spec.name
        );
    }
    for name in &replaced.profiles {
        tracing::info!(
            "the workloads run on Fargate profile {}; deleting {name} that it replaces",
            spec.name
        );
        eks::delete_profile(eks_client, cluster, name, timeout).await?;
        section.fargate_profiles.retain(|p| p != name);
        state.set_section(SECTION, section);
    }
    section.fargate_restart_namespaces.clear();
    // The section records the profiles eks-cluster made that still exist, never others'.
    let listed = eks::list_profiles(eks_client, cluster).await?;
    section.fargate_profiles.retain(|p| listed.contains(p));
    if !section.fargate_profiles.contains(&spec.name) {
        section.fargate_profiles.push(spec.name.clone());
    }
    state.set_section(SECTION, section);
    Ok(())
}

/// The merge patch that moves a Deployment onto `profile`: the profile label on its pod
/// template (a new pod template: the Deployment rolls, as with `kubectl rollout restart`).
pub fn move_patch(profile: &str) -> serde_json::Value {
    serde_json::json!({
        "spec": { "template": { "metadata": { "labels": { PROFILE_LABEL: profile } } } }
    })
}

/// The profile label of the Deployment's pod template.
fn template_profile(d: &Deployment) -> Option<&str> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .labels
        .as_ref()?
        .get(PROFILE_LABEL)
        .map(String::as_str)
}

/// Why a Deployment cannot be moved by its pod template's labels: its selector names the
/// profile label (a changed label would leave its pods unselected; the API server refuses
/// it), or it is paused (it would not roll).
fn cannot_move(d: &Deployment) -> Option<&'static str> {
    let spec = d.spec.as_ref()?;
    let selector = &spec.selector;
    let in_labels = selector
        .match_labels
        .as_ref()
        .is_some_and(|m| m.contains_key(PROFILE_LABEL));
    let in_expressions = selector
        .match_expressions
        .iter()
        .flatten()
        .any(|e| e.key == PROFILE_LABEL);
    if in_labels || in_expressions {
        return Some("its selector names the label");
    }
    (spec.paused == Some(true)).then_some("it is paused")
}

/// The Deployments (by name) whose live pods run with another Fargate profile than `profile`:
/// `pods` and `replica_sets` of one namespace, tied through their owner references.
pub fn placed_elsewhere(
    profile: &str,
    pods: &[Pod],
    replica_sets: &[ReplicaSet],
) -> BTreeSet<String> {
    let owner =
        |refs: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
         kind: &str| {
            refs.into_iter()
                .flatten()
                .find(|r| r.kind == kind && r.controller == Some(true))
                .map(|r| r.name.clone())
        };
    let deployment_of: BTreeMap<String, String> = replica_sets
        .iter()
        .filter_map(|rs| {
            Some((
                rs.name_any(),
                owner(rs.metadata.owner_references.as_ref(), "Deployment")?,
            ))
        })
        .collect();
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(PROFILE_LABEL))
                .is_some_and(|on| on != profile)
        })
        .filter_map(|p| owner(p.metadata.owner_references.as_ref(), "ReplicaSet"))
        .filter_map(|rs| deployment_of.get(&rs).cloned())
        .collect()
}

/// Moves onto `profile` every Deployment of `namespaces` whose pods run with another Fargate
/// profile (the one being replaced, or one deleted by an earlier run): its pod template gets
/// the profile label ([`move_patch`]), then the wait (within `timeout`, with progress) lasts
/// until each is rolled out, its pods all on `profile`. A Deployment labelled so by a run that
/// stopped is waited for again. Returns how many Deployments were moved or waited for.
pub async fn move_deployments(
    client: &kube::Client,
    cluster: &str,
    namespaces: &[String],
    profile: &str,
    timeout: Duration,
) -> Result<usize, Error> {
    let mut moving: Vec<(String, String)> = Vec::new();
    for ns in namespaces {
        let error = |source| Error::MoveDeployments {
            cluster: cluster.to_owned(),
            namespace: ns.clone(),
            profile: profile.to_owned(),
            source: Box::new(source),
        };
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let listed = deployments
            .list(&Default::default())
            .await
            .map_err(error)?
            .items;
        if listed.is_empty() {
            continue;
        }
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&Default::default())
            .await
            .map_err(error)?
            .items;
        let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .list(&Default::default())
            .await
            .map_err(error)?
            .items;
        let elsewhere = placed_elsewhere(profile, &pods, &replica_sets);
        for d in listed {
            let name = d.name_any();
            let labelled = template_profile(&d) == Some(profile);
            if !elsewhere.contains(&name) && (!labelled || rollout(&d).is_done()) {
                continue;
            }
            if let Some(why) = cannot_move(&d) {
                tracing::warn!(
                    "Deployment {ns}/{name} runs on another Fargate profile but is not moved onto {profile}: {why}; its pods are evicted with the old profile and made again"
                );
                continue;
            }
            if !labelled {
                let strategy = d
                    .spec
                    .as_ref()
                    .and_then(|s| s.strategy.as_ref())
                    .and_then(|s| s.type_.as_deref());
                if strategy == Some("Recreate") {
                    tracing::warn!(
                        "Deployment {ns}/{name} uses the Recreate strategy: it has no pod while it moves onto {profile}"
                    );
                }
                deployments
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&move_patch(profile)),
                    )
                    .await
                    .map_err(error)?;
                tracing::info!(
                    "moving Deployment {ns}/{name} onto Fargate profile {profile} (pod template label {PROFILE_LABEL})"
                );
            }
            moving.push((ns.clone(), name));
        }
    }
    if moving.is_empty() {
        return Ok(0);
    }
    let what = format!(
        "{} Deployment(s) to run on Fargate profile {profile}",
        moving.len()
    );
    wait_for_kube::<_, Error, _, _>(&what, timeout, || async {
        let mut waiting = Vec::new();
        for (ns, name) in &moving {
            let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
            let Some(d) = api
                .get_opt(name)
                .await
                .map_err(|source| Error::MoveDeployments {
                    cluster: cluster.to_owned(),
                    namespace: ns.clone(),
                    profile: profile.to_owned(),
                    source: Box::new(source),
                })?
            else {
                continue;
            };
            if !rollout(&d).is_done() {
                let s = d.status.clone().unwrap_or_default();
                waiting.push(format!(
                    "{ns}/{name} {} updated, {} available of {}",
                    s.updated_replicas.unwrap_or(0),
                    s.available_replicas.unwrap_or(0),
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
                ));
            }
        }
        Ok(if waiting.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending(waiting.join("; "))
        })
    })
    .await?;
    Ok(moving.len())
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
    fn the_move_labels_the_pod_template_only() {
        let p = move_patch("fp-0123456789ab");
        assert_eq!(
            p,
            serde_json::json!({"spec": {"template": {"metadata": {"labels": {
                "eks.amazonaws.com/fargate-profile": "fp-0123456789ab"}}}}})
        );
    }

    fn deployment(value: serde_json::Value) -> Deployment {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn what_cannot_move_and_what_is_rolled_out() {
        let plain = deployment(serde_json::json!({
            "metadata": {"name": "d", "generation": 3},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}, "template": {}},
            "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
        }));
        assert_eq!(cannot_move(&plain), None);
        assert!(rollout(&plain).is_done());
        let mut half = plain.clone();
        half.status.as_mut().unwrap().replicas = Some(3);
        assert!(
            !rollout(&half).is_done(),
            "a pod of the old template is left"
        );
        let mut old = plain.clone();
        old.metadata.generation = Some(4);
        assert!(
            !rollout(&old).is_done(),
            "the new template is not observed yet"
        );
        let selected = deployment(serde_json::json!({
            "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {PROFILE_LABEL: "fp-1"}}, "template": {}}
        }));
        assert!(cannot_move(&selected).unwrap().contains("selector"));
        let paused = deployment(serde_json::json!({
            "metadata": {"name": "d"},
            "spec": {"paused": true, "selector": {}, "template": {}}
        }));
        assert_eq!(cannot_move(&paused), Some("it is paused"));
    }

    #[test]
    fn deployments_are_found_through_their_replica_sets() {
        let rs = |name: &str, owner: &str| -> ReplicaSet {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "ownerReferences": [{"apiVersion": "apps/v1",
                    "kind": "Deployment", "name": owner, "uid": "u", "controller": true}]},
                "spec": {"selector": {}}
            }))
            .unwrap()
        };
        let pod = |name: &str, rs: &str, profile: Option<&str>, deleting: bool| -> Pod {
            let mut p = serde_json::json!({
                "metadata": {"name": name, "labels": {}, "ownerReferences": [{"apiVersion": "apps/v1",
                    "kind": "ReplicaSet", "name": rs, "uid": "u", "controller": true}]}
            });
            if let Some(profile) = profile {
                p["metadata"]["labels"][PROFILE_LABEL] = serde_json::json!(profile);
            }
            if deleting {
                p["metadata"]["deletionTimestamp"] = serde_json::json!("2026-01-01T00:00:00Z");
            }
            serde_json::from_value(p).unwrap()
        };
        let sets = [
            rs("coredns-1", "coredns"),
            rs("web-1", "web"),
            rs("ec2-1", "ec2"),
            rs("done-1", "done"),
        ];
        let pods = [
            pod("coredns-1-a", "coredns-1", Some("fp-old"), false),
            pod("coredns-1-b", "coredns-1", Some("fp-new"), false),
            pod("web-1-a", "web-1", Some("fp-new"), false),
            pod("ec2-1-a", "ec2-1", None, false),
            pod("done-1-a", "done-1", Some("fp-old"), true),
        ];
        assert_eq!(
            placed_elsewhere("fp-new", &pods, &sets),
            BTreeSet::from(["coredns".to_owned()])
        );
    }
}
