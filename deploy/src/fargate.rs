//! Before anything is applied: every pod the manifests make must be selected by a Fargate
//! profile of the cluster, or it stays Pending for good (a cluster with no nodes has nowhere
//! else to run it, and a profile made later does not move a pod that exists). The profiles come
//! from the state's `cluster` section when eks-cluster made the cluster's one profile
//! (`fargateProfiles` names one profile, `fargateNamespaces` its selectors; not for an adopted
//! cluster, which may have profiles of others), else from EKS
//! (ListFargateProfiles, DescribeFargateProfile; ACTIVE ones).

use std::collections::BTreeMap;

use common::State;
use common::aws::AwsError;
use serde_json::Value;

use crate::manifests::Doc;

/// A profile selector: a namespace and labels that must all match (`*`, `?` wildcards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

/// A Fargate profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub selectors: Vec<Selector>,
}

/// `*` (any run) and `?` (one character), as profile selectors take them.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

impl Selector {
    fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        glob(self.namespace.as_bytes(), namespace.as_bytes())
            && self.labels.iter().all(|(k, v)| {
                labels.iter().any(|(lk, lv)| {
                    glob(k.as_bytes(), lk.as_bytes()) && glob(v.as_bytes(), lv.as_bytes())
                })
            })
    }
}

/// The pods one manifest makes: where and with which labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub label: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

/// The pod template of a workload kind, if `doc` is one.
pub(crate) fn pod_template(doc: &Doc) -> Option<&Value> {
    let v = &doc.value;
    match doc.kind.as_str() {
        "Deployment" | "StatefulSet" | "ReplicaSet" | "DaemonSet" | "Job" => {
            Some(&v["spec"]["template"])
        }
        "CronJob" => Some(&v["spec"]["jobTemplate"]["spec"]["template"]),
        "Pod" => Some(v),
        _ => None,
    }
}

/// The workloads among `docs`.
pub fn workloads(docs: &[Doc]) -> Vec<Workload> {
    docs.iter()
        .filter_map(|doc| {
            let template = pod_template(doc)?;
            let labels = template["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            Some(Workload {
                label: doc.label(),
                namespace: doc.namespace.clone().unwrap_or_else(|| "default".into()),
                labels,
            })
        })
        .collect()
}

/// The workloads no profile selects.
pub fn unselected<'a>(workloads: &'a [Workload], profiles: &[Profile]) -> Vec<&'a Workload> {
    workloads
        .iter()
        .filter(|w| {
            !profiles
                .iter()
                .flat_map(|p| &p.selectors)
                .any(|s| s.selects(&w.namespace, &w.labels))
        })
        .collect()
}

/// The profile as the state's `cluster` section records it, when eks-cluster made the one
/// profile of the cluster (while a profile is being replaced there are two: then `None`). An
/// adopted cluster may have profiles of others, which the state does not record: `None`.
pub fn from_state(state: &State) -> Option<Vec<Profile>> {
    let (name, namespaces) = common::sections::cluster::fargate_profile(state)?;
    Some(vec![Profile {
        name,
        selectors: namespaces
            .into_iter()
            .map(|namespace| Selector {
                namespace,
                labels: BTreeMap::new(),
            })
            .collect(),
    }])
}

/// The ACTIVE profiles of `cluster`, from EKS.
pub async fn from_eks(eks: &aws_sdk_eks::Client, cluster: &str) -> Result<Vec<Profile>, AwsError> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = eks
            .list_fargate_profiles()
            .cluster_name(cluster)
            .set_next_token(token)
            .send()
            .await?;
        names.extend(page.fargate_profile_names().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let mut profiles = Vec::new();
    for name in names {
        let answer = eks
            .describe_fargate_profile()
            .cluster_name(cluster)
            .fargate_profile_name(&name)
            .send()
            .await?;
        let Some(p) = answer.fargate_profile() else {
            continue;
        };
        if p.status().map(|s| s.as_str()) != Some("ACTIVE") {
            continue;
        }
        profiles.push(Profile {
            name,
            selectors: p
                .selectors()
                .iter()
                .map(|s| Selector {
                    namespace: s.namespace().unwrap_or_default().to_owned(),
                    labels: s
                        .labels()
                        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                })
                .collect(),
        });
    }
    Ok(profiles)
}

/// The refusal for workloads no profile selects: names each namespace and the fix. Bad input
/// (exit 2): nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unselected {
    pub cluster: String,
    /// The namespaces of the unselected workloads, each once, in manifest order.
    pub namespaces: Vec<String>,
    /// The unselected workloads (`Deployment apps/w (pod labels app=web)`).
    pub workloads: Vec<String>,
    /// The namespaces the profile should select: those its selectors without labels select
    /// now, then the missing ones.
    pub wanted: Vec<String>,
}

impl std::fmt::Display for Unselected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cluster = &self.cluster;
        let flags: Vec<String> = self
            .wanted
            .iter()
            .map(|n| format!("--namespace {n}"))
            .collect();
        let plural = if self.namespaces.len() == 1 { "" } else { "s" };
        write!(
            f,
            "no Fargate profile of cluster {cluster} selects namespace{plural} {} ({}): their pods would stay Pending, as the cluster has no nodes. Nothing was applied. Add the namespace{plural} to the Fargate profile first: `eks-cluster create --cluster {cluster} {}` (make: FARGATE_NAMESPACES='{}'), then run eks-deploy again",
            self.namespaces.join(", "),
            self.workloads.join(", "),
            flags.join(" "),
            self.wanted.join(" ")
        )
    }
}

impl std::error::Error for Unselected {}

/// The refusal for `missing`, the workloads none of `profiles` selects.
pub fn refusal(cluster: &str, profiles: &[Profile], missing: &[&Workload]) -> Unselected {
    let mut namespaces: Vec<String> = Vec::new();
    for w in missing {
        if !namespaces.contains(&w.namespace) {
            namespaces.push(w.namespace.clone());
        }
    }
    let workloads: Vec<String> = missing
        .iter()
        .map(|w| {
            if w.labels.is_empty() {
                w.label.clone()
            } else {
                let labels: Vec<String> =
                    w.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} (pod labels {})", w.label, labels.join(","))
            }
        })
        .collect();
    let mut wanted: Vec<String> = Vec::new();
    for s in profiles.iter().flat_map(|p| &p.selectors) {
        if s.labels.is_empty() && !wanted.contains(&s.namespace) {
            wanted.push(s.namespace.clone());
        }
    }
    wanted.extend(namespaces.iter().cloned());
    Unselected {
        cluster: cluster.to_owned(),
        namespaces,
        workloads,
        wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(kind: &str, ns: Option<&str>, value: Value) -> Doc {
        Doc {
            file: "f".into(),
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: "w".into(),
            namespace: ns.map(str::to_owned),
            value,
        }
    }

    fn profile(selectors: &[(&str, &[(&str, &str)])]) -> Profile {
        Profile {
            name: "p".into(),
            selectors: selectors
                .iter()
                .map(|(ns, labels)| Selector {
                    namespace: (*ns).into(),
                    labels: labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn globs() {
        assert!(glob(b"game-*", b"game-2048"));
        assert!(glob(b"g?me", b"game"));
        assert!(!glob(b"game", b"game-2048"));
        assert!(glob(b"*", b""));
    }

    #[test]
    fn workloads_and_selection() {
        let template = json!({"spec": {"template": {"metadata": {"labels": {"app": "web"}}}}});
        let docs = [
            doc("Deployment", Some("apps"), template.clone()),
            doc("Service", Some("other"), json!({})),
            doc(
                "CronJob",
                None,
                json!({"spec": {"jobTemplate": {"spec": {"template": {}}}}}),
            ),
        ];
        let found = workloads(&docs);
        assert_eq!(found.len(), 2, "the Service makes no pods");
        assert_eq!(found[1].namespace, "default");
        assert_eq!(found[0].labels["app"], "web");

        assert!(unselected(&found, &[profile(&[("apps", &[]), ("default", &[])])]).is_empty());
        let by_label = [profile(&[("apps", &[("app", "web")]), ("default", &[])])];
        assert!(unselected(&found, &by_label).is_empty());
        let other_label = [profile(&[("apps", &[("app", "db")]), ("default", &[])])];
        let missing = unselected(&found, &other_label);
        assert_eq!(
            missing.len(),
            1,
            "a label selector counts only for pods with its labels"
        );
        let text = refusal("demo", &other_label, &missing).to_string();
        assert!(
            text.contains("selects namespace apps (Deployment apps/w (pod labels app=web))"),
            "{text}"
        );
        assert!(
            text.contains("eks-cluster create --cluster demo --namespace default --namespace apps"),
            "{text}"
        );
        assert!(text.contains("FARGATE_NAMESPACES='default apps'"), "{text}");
        assert_eq!(unselected(&found, &[]).len(), 2);
    }

    #[test]
    fn profiles_from_the_state_only_when_eks_cluster_made_them() {
        let ours = State::parse(&json!({"schemaVersion": 1, "cluster": {
            "name": "demo", "fargateProfiles": ["fp-0123456789ab"], "fargateNamespaces": ["kube-system", "game-2048"]}})
        .to_string())
        .unwrap();
        let profiles = from_state(&ours).unwrap();
        assert_eq!(profiles[0].selectors.len(), 2);
        assert_eq!(profiles[0].selectors[1].namespace, "game-2048");
        for other in [
            json!({"schemaVersion": 1}),
            json!({"schemaVersion": 1, "cluster": {"name": "demo"}}),
            json!({"schemaVersion": 1, "cluster": {"name": "demo", "fargateProfiles": ["fp-0123456789ab", "fp-ba9876543210"], "fargateNamespaces": ["a"]}}),
            json!({"schemaVersion": 1, "cluster": {"name": "demo", "fargateProfiles": ["fp-0123456789ab"]}}),
            json!({"schemaVersion": 1, "cluster": {"name": "demo", "clusterAdopted": true,
                "fargateProfiles": ["fp-0123456789ab"], "fargateNamespaces": ["a"]}}),
        ] {
            assert_eq!(from_state(&State::parse(&other.to_string()).unwrap()), None);
        }
    }
}
