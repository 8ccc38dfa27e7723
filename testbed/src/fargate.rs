//! EKS on Fargate as the test bed models it: Fargate profiles (a static list, or read from the
//! EKS API the binaries talk to), which pods a profile selects, and which pod specs Fargate
//! refuses. [`crate::sim::FargateSim`] applies these rules to every new pod once, when it first
//! sees it, as EKS does when the pod is made:
//!
//! - EKS's admission webhook gives a new pod `schedulerName: fargate-scheduler` (and the label
//!   `eks.amazonaws.com/fargate-profile`) when an ACTIVE profile selects it (namespace, and every
//!   label of the selector; `*` and `?` wildcards) and it does not carry the annotation
//!   `eks.amazonaws.com/compute-type: ec2`. Otherwise the pod keeps `default-scheduler`, which
//!   has no node that fits on a Fargate-only cluster, and stays Pending for good: a profile made
//!   later does not move it (it must be made again, e.g. by a rollout). The test bed's control
//!   plane has no such webhook and `schedulerName` is immutable once the pod exists, so there
//!   every pod keeps `default-scheduler`; the simulator adds the profile label, and its
//!   `FailedScheduling` Events name the scheduler that refused.
//! - The Fargate scheduler refuses what Fargate cannot run (privileged containers, added Linux
//!   capabilities, privilege escalation asked for, hostNetwork/hostPID/hostIPC, host ports,
//!   hostPath volumes) with a `FailedScheduling` event "Pod not supported on Fargate: ...",
//!   worded as EKS words it; the pod stays Pending.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};

/// The scheduler EKS gives to pods a Fargate profile selects.
pub const FARGATE_SCHEDULER: &str = "fargate-scheduler";
/// The scheduler of every other pod.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// The pod annotation that keeps a pod off Fargate (`ec2`).
pub const COMPUTE_TYPE: &str = "eks.amazonaws.com/compute-type";
/// The label EKS puts on a pod a Fargate profile selected: the profile's name.
pub const PROFILE_LABEL: &str = "eks.amazonaws.com/fargate-profile";
/// kube-scheduler's message when the cluster has no node at all.
pub const NO_NODES: &str = "no nodes available to schedule pods";

/// One selector of a Fargate profile: a namespace and labels that must all match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    /// A selector for every pod of `namespace`.
    pub fn namespace(namespace: &str) -> Selector {
        Selector {
            namespace: namespace.to_owned(),
            labels: BTreeMap::new(),
        }
    }

    /// True when it selects a pod of `namespace` with `labels`.
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        glob(&self.namespace, namespace)
            && self
                .labels
                .iter()
                .all(|(key, value)| labels.iter().any(|(k, v)| glob(key, k) && glob(value, v)))
    }
}

/// An ACTIVE Fargate profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub selectors: Vec<Selector>,
}

impl Profile {
    /// True when one of its selectors selects the pod.
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.selectors.iter().any(|s| s.selects(namespace, labels))
    }
}

/// `*` (any run) and `?` (one character) as EKS profile selectors take them.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Where a simulator gets the Fargate profiles from, each time it places a pod.
#[derive(Debug, Clone)]
pub enum Profiles {
    /// A fixed list (tests of something other than the profiles).
    Static(Vec<Profile>),
    /// The EKS API (moto in the test bed): the ACTIVE profiles of `cluster`, or of every
    /// cluster of the client's region when `None` (the control plane is then "the" cluster).
    Eks {
        eks: aws_sdk_eks::Client,
        cluster: Option<String>,
    },
}

impl Profiles {
    /// One profile, `fp-default`, selecting every pod of each of `namespaces`.
    pub fn namespaces(namespaces: &[&str]) -> Profiles {
        Profiles::Static(vec![Profile {
            name: "fp-default".to_owned(),
            selectors: namespaces.iter().map(|n| Selector::namespace(n)).collect(),
        }])
    }

    /// No profile at all: every pod stays Pending.
    pub fn none() -> Profiles {
        Profiles::Static(Vec::new())
    }

    /// The profiles of every cluster the EKS API at `config` has in its region.
    pub fn eks(config: &aws_config::SdkConfig) -> Profiles {
        Profiles::Eks {
            eks: aws_sdk_eks::Client::new(config),
            cluster: None,
        }
    }

    /// The profiles of `cluster` in the EKS API at `config`.
    pub fn eks_cluster(config: &aws_config::SdkConfig, cluster: &str) -> Profiles {
        Profiles::Eks {
            eks: aws_sdk_eks::Client::new(config),
            cluster: Some(cluster.to_owned()),
        }
    }

    /// The profiles now, sorted by name.
    pub async fn current(&self) -> Result<Vec<Profile>, String> {
        let mut profiles = match self {
            Profiles::Static(list) => list.clone(),
            Profiles::Eks { eks, cluster } => {
                let clusters = match cluster {
                    Some(name) => vec![name.clone()],
                    None => list_clusters(eks).await?,
                };
                let mut all = Vec::new();
                for name in clusters {
                    all.extend(cluster_profiles(eks, &name).await?);
                }
                all
            }
        };
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(profiles)
    }
}

async fn list_clusters(eks: &aws_sdk_eks::Client) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = eks
            .list_clusters()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "ListClusters: {}",
                    aws_sdk_eks::error::DisplayErrorContext(e)
                )
            })?;
        names.extend(page.clusters().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(names);
        }
    }
}

async fn cluster_profiles(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<Vec<Profile>, String> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = eks
            .list_fargate_profiles()
            .cluster_name(cluster)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "ListFargateProfiles {cluster}: {}",
                    aws_sdk_eks::error::DisplayErrorContext(e)
                )
            })?;
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
            .await
            .map_err(|e| {
                format!(
                    "DescribeFargateProfile {cluster}/{name}: {}",
                    aws_sdk_eks::error::DisplayErrorContext(e)
                )
            })?;
        let Some(profile) = answer.fargate_profile() else {
            continue;
        };
        // Only an ACTIVE profile schedules pods (not one being made or deleted).
        if profile.status().map(|s| s.as_str()) != Some("ACTIVE") {
            continue;
        }
        profiles.push(Profile {
            name,
            selectors: profile
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

/// Where EKS puts a new pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Selected by `profile` and runnable: it runs on a Fargate node of its own.
    Fargate { profile: String },
    /// Selected by `profile`, but the Fargate scheduler refuses it with `message`.
    Refused { profile: String, message: String },
    /// No profile selects it (or it is pinned to EC2): `default-scheduler`, no node fits.
    Unselected,
}

/// What EKS does with a pod of `namespace` with `labels`, `annotations` and `spec`, made while
/// `profiles` exist. A pod that names a profile in [`PROFILE_LABEL`] goes on that profile only,
/// and only when that profile selects it (otherwise no profile takes it: it stays Pending); an
/// unlabelled pod that several profiles select lands on one of them at random, as on EKS:
/// `pick` is the random number that chooses (`pick % count` of the selecting profiles by name).
pub fn place(
    namespace: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    spec: &PodSpec,
    profiles: &[Profile],
    pick: u64,
) -> Placement {
    if annotations.get(COMPUTE_TYPE).map(String::as_str) == Some("ec2") {
        return Placement::Unselected;
    }
    let selecting: Vec<&Profile> = profiles
        .iter()
        .filter(|p| p.selects(namespace, labels))
        .collect();
    let chosen = match labels.get(PROFILE_LABEL) {
        Some(wanted) => selecting.iter().find(|p| &p.name == wanted).copied(),
        None if selecting.is_empty() => None,
        None => {
            let count = u64::try_from(selecting.len()).unwrap_or(u64::MAX);
            let at = usize::try_from(pick % count).unwrap_or(0);
            Some(selecting[at])
        }
    };
    let Some(profile) = chosen else {
        return Placement::Unselected;
    };
    match refusal(spec) {
        Some(message) => Placement::Refused {
            profile: profile.name.clone(),
            message,
        },
        None => Placement::Fargate {
            profile: profile.name.clone(),
        },
    }
}

/// A deterministic stream of pseudo-random numbers (SplitMix64) for [`place`]'s `pick`: the
/// same sequence on every run, different numbers for the pods made one after another.
#[derive(Debug, Default)]
pub struct Picks(std::sync::atomic::AtomicU64);

impl Picks {
    /// The next number.
    pub fn next(&self) -> u64 {
        let seed = self
            .0
            .fetch_add(0x9e37_79b9_7f4a_7c15, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

/// The Fargate scheduler's refusal of `spec`, worded as EKS words it, or `None` when Fargate
/// can run it.
pub fn refusal(spec: &PodSpec) -> Option<String> {
    let mut parts = Vec::new();

    let mut fields = Vec::new();
    for (set, name) in [
        (spec.host_network, "HostNetwork"),
        (spec.host_pid, "HostPID"),
        (spec.host_ipc, "HostIPC"),
    ] {
        if set == Some(true) {
            fields.push(name);
        }
    }
    if !fields.is_empty() {
        parts.push(format!("fields not supported: {}", fields.join(", ")));
    }

    let mut invalid = Vec::new();
    let contexts = || containers(spec).filter_map(|c| c.security_context.as_ref());
    if contexts().any(|s| s.privileged == Some(true)) {
        invalid.push("Privileged".to_owned());
    }
    if contexts().any(|s| s.allow_privilege_escalation == Some(true)) {
        invalid.push("AllowPrivilegeEscalation".to_owned());
    }
    let mut added: Vec<String> = Vec::new();
    for cap in contexts()
        .filter_map(|s| s.capabilities.as_ref())
        .flat_map(|c| c.add.iter().flatten())
    {
        if !added.contains(cap) {
            added.push(cap.clone());
        }
    }
    if !added.is_empty() {
        invalid.push(format!("Capabilities added: {}", added.join(", ")));
    }
    if !invalid.is_empty() {
        parts.push(format!(
            "invalid SecurityContext fields: {}",
            invalid.join(", ")
        ));
    }

    let host_port = containers(spec)
        .flat_map(|c| c.ports.iter().flatten())
        .any(|p| p.host_port.is_some() || p.host_ip.as_deref().is_some_and(|ip| !ip.is_empty()));
    if host_port {
        parts.push("port contains HostIP or HostPort".to_owned());
    }

    let host_paths: Vec<String> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.host_path.is_some())
        .map(|v| format!("{} is of an unsupported volume Type", v.name))
        .collect();
    if !host_paths.is_empty() {
        parts.push(format!("volumes not supported: {}", host_paths.join(", ")));
    }

    (!parts.is_empty()).then(|| format!("Pod not supported on Fargate: {}", parts.join(", ")))
}

/// kube-scheduler's message for a pod no node fits on a cluster of `fargate_nodes` Fargate
/// nodes (one per Fargate pod, each tainted so only Fargate pods go there).
pub fn unschedulable_message(fargate_nodes: usize) -> String {
    if fargate_nodes == 0 {
        return NO_NODES.to_owned();
    }
    format!(
        "0/{fargate_nodes} nodes are available: {fargate_nodes} node(s) had untolerated taint {{eks.amazonaws.com/compute-type: fargate}}. preemption: 0/{fargate_nodes} nodes are available: {fargate_nodes} Preemption is not helpful for scheduling."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn plain() -> PodSpec {
        spec(json!({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}]}]}))
    }

    #[test]
    fn globs() {
        assert!(glob("kube-system", "kube-system"));
        assert!(!glob("kube-system", "kube-systems"));
        assert!(glob("*", ""));
        assert!(glob("game-*", "game-2048"));
        assert!(glob("g?me-*8", "game-2048"));
        assert!(!glob("game-*", "games"));
        assert!(glob("*-2048", "game-2048"));
        assert!(!glob("", "x"));
    }

    #[test]
    fn selectors_need_the_namespace_and_every_label() {
        let s = Selector {
            namespace: "apps".into(),
            labels: labels(&[("tier", "web")]),
        };
        assert!(s.selects("apps", &labels(&[("tier", "web"), ("x", "y")])));
        assert!(!s.selects("apps", &labels(&[("tier", "db")])));
        assert!(!s.selects("apps", &labels(&[])));
        assert!(!s.selects("other", &labels(&[("tier", "web")])));
        assert!(Selector::namespace("apps").selects("apps", &labels(&[])));
    }

    #[test]
    fn placement_follows_profiles_annotation_and_spec() {
        let profiles = vec![
            Profile {
                name: "b-web".into(),
                selectors: vec![Selector {
                    namespace: "apps".into(),
                    labels: labels(&[("tier", "web")]),
                }],
            },
            Profile {
                name: "a-system".into(),
                selectors: vec![Selector::namespace("kube-system")],
            },
        ];
        let none = BTreeMap::new();
        assert_eq!(
            place("kube-system", &none, &none, &plain(), &profiles, 0),
            Placement::Fargate {
                profile: "a-system".into()
            }
        );
        assert_eq!(
            place(
                "apps",
                &labels(&[("tier", "web")]),
                &none,
                &plain(),
                &profiles,
                0
            ),
            Placement::Fargate {
                profile: "b-web".into()
            }
        );
        assert_eq!(
            place("apps", &none, &none, &plain(), &profiles, 0),
            Placement::Unselected,
            "a label selector selects only pods with the labels"
        );
        assert_eq!(
            place("default", &none, &none, &plain(), &profiles, 0),
            Placement::Unselected
        );
        assert_eq!(
            place(
                "kube-system",
                &none,
                &labels(&[(COMPUTE_TYPE, "ec2")]),
                &plain(),
                &profiles,
                0
            ),
            Placement::Unselected,
            "pinned to EC2"
        );
        assert_eq!(
            place("kube-system", &none, &none, &plain(), &[], 0),
            Placement::Unselected
        );
        let privileged =
            spec(json!({"containers": [{"name": "c", "securityContext": {"privileged": true}}]}));
        assert_eq!(
            place("kube-system", &none, &none, &privileged, &profiles, 0),
            Placement::Refused {
                profile: "a-system".into(),
                message: "Pod not supported on Fargate: invalid SecurityContext fields: Privileged"
                    .into()
            }
        );
    }

    #[test]
    fn several_profiles_pick_at_random_unless_the_pod_names_one() {
        let profiles = vec![
            Profile {
                name: "fp-new".into(),
                selectors: vec![Selector::namespace("game")],
            },
            Profile {
                name: "fp-old".into(),
                selectors: vec![Selector::namespace("game")],
            },
            Profile {
                name: "fp-other".into(),
                selectors: vec![Selector::namespace("other")],
            },
        ];
        let none = BTreeMap::new();
        let on = |pick| match place("game", &none, &none, &plain(), &profiles, pick) {
            Placement::Fargate { profile } => profile,
            other => panic!("{other:?}"),
        };
        assert_eq!(on(0), "fp-new");
        assert_eq!(on(1), "fp-old");
        let picks = Picks::default();
        let chosen: std::collections::BTreeSet<String> =
            (0..32).map(|_| on(picks.next())).collect();
        assert_eq!(chosen.len(), 2, "both profiles are picked: {chosen:?}");
        let (one, two) = (Picks::default(), Picks::default());
        assert_eq!(
            (0..8).map(|_| one.next()).collect::<Vec<_>>(),
            (0..8).map(|_| two.next()).collect::<Vec<_>>(),
            "the same sequence every time"
        );

        // The label names the profile: that one, whatever the pick; it must select the pod.
        for pick in 0..4 {
            assert_eq!(
                place(
                    "game",
                    &labels(&[(PROFILE_LABEL, "fp-old")]),
                    &none,
                    &plain(),
                    &profiles,
                    pick
                ),
                Placement::Fargate {
                    profile: "fp-old".into()
                }
            );
        }
        assert_eq!(
            place(
                "game",
                &labels(&[(PROFILE_LABEL, "fp-other")]),
                &none,
                &plain(),
                &profiles,
                0
            ),
            Placement::Unselected,
            "the named profile does not select the pod"
        );
        assert_eq!(
            place(
                "game",
                &labels(&[(PROFILE_LABEL, "fp-gone")]),
                &none,
                &plain(),
                &profiles,
                0
            ),
            Placement::Unselected,
            "the named profile does not exist"
        );
    }

    #[test]
    fn refusals_are_worded_as_eks_words_them() {
        assert_eq!(refusal(&plain()), None);
        let fine = spec(json!({"containers": [{"name": "c", "securityContext": {
            "privileged": false, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "v", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "x"}}]}));
        assert_eq!(refusal(&fine), None, "dropping capabilities is fine");
        let caps = spec(json!({"containers": [{"name": "c", "securityContext": {
            "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "DAC_OVERRIDE"]}}},
            {"name": "d", "securityContext": {"capabilities": {"add": ["CHOWN", "NET_ADMIN"]}}}]}));
        assert_eq!(
            refusal(&caps).unwrap(),
            "Pod not supported on Fargate: invalid SecurityContext fields: Capabilities added: CHOWN, DAC_OVERRIDE, NET_ADMIN"
        );
        let all = spec(json!({
            "hostNetwork": true,
            "hostPID": true,
            "initContainers": [{"name": "i", "securityContext": {"privileged": true}}],
            "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}],
                            "securityContext": {"allowPrivilegeEscalation": true}}],
            "volumes": [{"name": "data", "hostPath": {"path": "/data"}}, {"name": "e", "emptyDir": {}}]
        }));
        assert_eq!(
            refusal(&all).unwrap(),
            "Pod not supported on Fargate: fields not supported: HostNetwork, HostPID, invalid SecurityContext fields: Privileged, AllowPrivilegeEscalation, port contains HostIP or HostPort, volumes not supported: data is of an unsupported volume Type"
        );
        let host_ip = spec(
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostIP": "10.0.0.1"}]}]}),
        );
        assert!(
            refusal(&host_ip)
                .unwrap()
                .ends_with("port contains HostIP or HostPort")
        );
    }

    #[test]
    fn unschedulable_messages() {
        assert_eq!(unschedulable_message(0), NO_NODES);
        assert!(unschedulable_message(3).starts_with(
            "0/3 nodes are available: 3 node(s) had untolerated taint {eks.amazonaws.com/compute-type: fargate}."
        ));
    }

    #[tokio::test]
    async fn static_profiles_come_sorted() {
        let profiles = Profiles::Static(vec![
            Profile {
                name: "z".into(),
                selectors: vec![],
            },
            Profile {
                name: "a".into(),
                selectors: vec![],
            },
        ]);
        let names: Vec<String> = profiles
            .current()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["a", "z"]);
        assert!(Profiles::none().current().await.unwrap().is_empty());
        let ns = Profiles::namespaces(&["default", "kube-system"])
            .current()
            .await
            .unwrap();
        assert!(ns[0].selects("kube-system", &BTreeMap::new()));
    }
}
