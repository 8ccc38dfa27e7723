//! Reusable [`AwsProxy`] rules that make moto's EKS and EC2 as hard as the real services where
//! our steps depend on it (moto 5.2.5 makes every cluster and Fargate profile ACTIVE at once,
//! lets any number of profiles change together, knows no zone without EKS capacity, and always
//! answers a missing cluster with `ResourceNotFoundException`):
//!
//! - [`FargateProfiles`]: a profile is CREATING for its first describes and DELETING for a
//!   while after its delete; one profile per cluster may be CREATING or DELETING at a time
//!   (`ResourceInUseException` otherwise); a DELETING profile's name cannot be reused; deleting
//!   a profile evicts the pods it placed (with [`FargateProfiles::evicting_pods`]).
//! - [`AccountZones`]: the account's own mapping of zone names to zone ids (names map to other
//!   ids in every account), applied to what EC2 reports.
//! - [`zone_capacity`]: `CreateCluster` refuses subnets in a zone id without EKS capacity
//!   (`UnsupportedAvailabilityZoneException`), `CreateFargateProfile` subnets in a zone id
//!   without Fargate.
//! - [`cluster_update_in_progress`] and [`cluster_gone_as_client_exception`]: the other answers
//!   EKS gives while a cluster is being deleted.
//! - [`ClusterConfig`]: the authentication mode, support type and endpoint settings EKS keeps
//!   and reports (moto drops or leaves them out), and its endpoint updates (`UPDATING`, merged,
//!   refused when they change nothing).
//! - [`blackhole_routes`]: a route to a deleted NAT gateway or network interface is a
//!   `blackhole` (moto keeps it `active`).
//! - [`caller_in_partition`]: an account in another partition than `aws`.
//!
//! The end-to-end tests and `make demo` use them too (`testbed::cli`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::awsproxy::{AwsProxy, AwsReply, AwsRequest, Verdict};

mod access;
mod cluster_config;
mod routes;
mod zones;

pub use access::{
    Access, AccessEntries, AccessEntry, AccessScope, AssociatedPolicy, CLUSTER_ADMIN_POLICY,
    CONFIG_MAP_CREATOR_USERNAME, ClusterAccess,
};
pub use cluster_config::ClusterConfig;
pub use routes::{Targets, blackhole_routes};
pub use zones::{AccountZones, zone_capacity};

/// Zone ids where EKS makes no control plane or Fargate runs no pods (the EKS user guide names
/// these; an account may meet others, which EKS reports by name in its error).
pub const EKS_UNSUPPORTED_ZONE_IDS: [&str; 3] = ["use1-az3", "usw1-az2", "cac1-az3"];

/// What an EKS REST request is, from its method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EksOp {
    CreateCluster,
    DescribeCluster(String),
    DeleteCluster(String),
    ListFargateProfiles(String),
    CreateFargateProfile(String),
    DescribeFargateProfile(String, String),
    DeleteFargateProfile(String, String),
    /// Another EKS call, or not EKS.
    Other,
}

/// The EKS operation of a request.
pub fn eks_op(request: &AwsRequest) -> EksOp {
    if request.service != "eks" || !request.action.is_empty() {
        return EksOp::Other;
    }
    let parts: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let method = request.method.as_str();
    match (method, parts.as_slice()) {
        ("POST", ["clusters"]) => EksOp::CreateCluster,
        ("GET", ["clusters", c]) => EksOp::DescribeCluster((*c).to_owned()),
        ("DELETE", ["clusters", c]) => EksOp::DeleteCluster((*c).to_owned()),
        ("GET", ["clusters", c, "fargate-profiles"]) => EksOp::ListFargateProfiles((*c).to_owned()),
        ("POST", ["clusters", c, "fargate-profiles"]) => {
            EksOp::CreateFargateProfile((*c).to_owned())
        }
        ("GET", ["clusters", c, "fargate-profiles", p]) => {
            EksOp::DescribeFargateProfile((*c).to_owned(), (*p).to_owned())
        }
        ("DELETE", ["clusters", c, "fargate-profiles", p]) => {
            EksOp::DeleteFargateProfile((*c).to_owned(), (*p).to_owned())
        }
        _ => EksOp::Other,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn json_reply(status: u16, body: &Value) -> AwsReply {
    AwsReply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn in_use(request: &AwsRequest, message: String) -> Verdict {
    Verdict::Reply(AwsReply::error(
        request,
        409,
        "ResourceInUseException",
        &message,
    ))
}

/// What happened to a Fargate profile, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileEvent {
    /// `created` or `deleted` (when EKS accepted the call).
    pub what: &'static str,
    pub cluster: String,
    pub profile: String,
    /// The namespaces its selectors name.
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone)]
enum Phase {
    Creating { describes_left: u32 },
    Deleting { describes_left: u32, profile: Value },
}

type Evictor = Arc<dyn Fn(&ProfileEvent) + Send + Sync>;

#[derive(Default)]
struct Profiles {
    phases: BTreeMap<(String, String), Phase>,
    events: Vec<ProfileEvent>,
}

/// The lifecycle of Fargate profiles as EKS runs it (see the module documentation).
#[derive(Clone)]
pub struct FargateProfiles {
    creating_describes: u32,
    deleting_describes: u32,
    state: Arc<Mutex<Profiles>>,
    evict: Option<Evictor>,
}

impl std::fmt::Debug for FargateProfiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FargateProfiles")
            .field("creating_describes", &self.creating_describes)
            .field("deleting_describes", &self.deleting_describes)
            .finish()
    }
}

fn namespaces_of(profile: &Value) -> Vec<String> {
    profile["selectors"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|sel| sel["namespace"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl FargateProfiles {
    /// A new profile answers CREATING to its first `creating_describes` describes; a deleted
    /// one answers DELETING to the next `deleting_describes` describes, then is gone.
    pub fn new(creating_describes: u32, deleting_describes: u32) -> FargateProfiles {
        FargateProfiles {
            creating_describes,
            deleting_describes,
            state: Arc::default(),
            evict: None,
        }
    }

    /// Calls `evict` when EKS accepts a profile's delete (the pods it selected are evicted).
    pub fn on_delete(mut self, evict: impl Fn(&ProfileEvent) + Send + Sync + 'static) -> Self {
        self.evict = Some(Arc::new(evict));
        self
    }

    /// Deletes the pods a deleted profile placed (running on Fargate with its profile label),
    /// through `client`, as EKS evicts them, the moment EKS accepts the delete
    /// ([`crate::sim::evict_profile_pods`]; the Fargate simulator does the same once it sees
    /// the profile gone). Call inside a tokio runtime that outlives the proxy's use.
    pub fn evicting_pods(self, client: kube::Client) -> Self {
        let runtime = tokio::runtime::Handle::current();
        self.on_delete(move |event| {
            let (client, profile) = (client.clone(), event.profile.clone());
            runtime.spawn(async move {
                if let Err(e) = crate::sim::evict_profile_pods(&client, &profile).await {
                    eprintln!("awsrules: cannot evict the pods of Fargate profile {profile}: {e}");
                }
            });
        })
    }

    /// What EKS accepted so far, in order.
    pub fn events(&self) -> Vec<ProfileEvent> {
        lock(&self.state).events.clone()
    }

    /// Installs the rules and rewriters on `proxy`.
    pub fn install(&self, proxy: &AwsProxy) {
        let me = self.clone();
        proxy.rule(move |r| me.decide(r));
        let me = self.clone();
        proxy.rewrite(move |r, reply| me.after_moto(r, reply));
    }

    fn in_flight(state: &Profiles, cluster: &str) -> Option<(String, &'static str)> {
        state
            .phases
            .iter()
            .filter(|((c, _), _)| c == cluster)
            .map(|((_, p), phase)| match phase {
                Phase::Creating { .. } => (p.clone(), "CREATING"),
                Phase::Deleting { .. } => (p.clone(), "DELETING"),
            })
            .next()
    }

    fn decide(&self, request: &AwsRequest) -> Verdict {
        let mut state = lock(&self.state);
        match eks_op(request) {
            EksOp::CreateFargateProfile(cluster) => {
                let name = request
                    .json()
                    .and_then(|b| b["fargateProfileName"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                if let Some(Phase::Deleting { .. }) =
                    state.phases.get(&(cluster.clone(), name.clone()))
                {
                    return in_use(
                        request,
                        format!(
                            "A Fargate profile with the name {name} is being deleted in cluster {cluster}; wait until it is gone"
                        ),
                    );
                }
                if let Some((other, status)) = Self::in_flight(&state, &cluster) {
                    return in_use(
                        request,
                        format!(
                            "Cannot create Fargate profile {name} because cluster {cluster} currently has Fargate profile {other} in status {status}"
                        ),
                    );
                }
                Verdict::Pass
            }
            EksOp::DeleteFargateProfile(cluster, name) => {
                if let Some((other, status)) = Self::in_flight(&state, &cluster) {
                    return in_use(
                        request,
                        format!(
                            "Cannot delete Fargate profile {name} because cluster {cluster} currently has Fargate profile {other} in status {status}"
                        ),
                    );
                }
                Verdict::Pass
            }
            EksOp::DescribeFargateProfile(cluster, name) => {
                let key = (cluster, name);
                let answer = match state.phases.get_mut(&key) {
                    Some(Phase::Deleting {
                        describes_left,
                        profile,
                    }) => {
                        let body = json!({ "fargateProfile": profile.clone() });
                        *describes_left = describes_left.saturating_sub(1);
                        Some((body, *describes_left == 0))
                    }
                    _ => None,
                };
                match answer {
                    Some((body, done)) => {
                        if done {
                            state.phases.remove(&key);
                        }
                        Verdict::Reply(json_reply(200, &body))
                    }
                    None => Verdict::Pass,
                }
            }
            _ => Verdict::Pass,
        }
    }

    fn after_moto(&self, request: &AwsRequest, reply: &mut AwsReply) {
        if reply.status != 200 {
            return;
        }
        let Ok(mut body) = serde_json::from_slice::<Value>(&reply.body) else {
            return;
        };
        let mut state = lock(&self.state);
        match eks_op(request) {
            EksOp::CreateFargateProfile(cluster) => {
                let profile = &mut body["fargateProfile"];
                let name = profile["fargateProfileName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                state.events.push(ProfileEvent {
                    what: "created",
                    cluster: cluster.clone(),
                    profile: name.clone(),
                    namespaces: namespaces_of(profile),
                });
                if self.creating_describes > 0 {
                    profile["status"] = json!("CREATING");
                    state.phases.insert(
                        (cluster, name),
                        Phase::Creating {
                            describes_left: self.creating_describes,
                        },
                    );
                }
            }
            EksOp::DescribeFargateProfile(cluster, name) => {
                let key = (cluster, name);
                if let Some(Phase::Creating { describes_left }) = state.phases.get_mut(&key) {
                    body["fargateProfile"]["status"] = json!("CREATING");
                    *describes_left = describes_left.saturating_sub(1);
                    if *describes_left == 0 {
                        state.phases.remove(&key);
                    }
                }
            }
            EksOp::DeleteFargateProfile(cluster, name) => {
                let profile = &mut body["fargateProfile"];
                profile["status"] = json!("DELETING");
                let event = ProfileEvent {
                    what: "deleted",
                    cluster: cluster.clone(),
                    profile: name.clone(),
                    namespaces: namespaces_of(profile),
                };
                if self.deleting_describes > 0 {
                    state.phases.insert(
                        (cluster, name),
                        Phase::Deleting {
                            describes_left: self.deleting_describes,
                            profile: profile.clone(),
                        },
                    );
                }
                state.events.push(event.clone());
                if let Some(evict) = &self.evict {
                    evict(&event);
                }
            }
            EksOp::ListFargateProfiles(cluster) => {
                // A DELETING profile is still listed.
                let deleting: Vec<String> = state
                    .phases
                    .iter()
                    .filter(|((c, _), p)| c == &cluster && matches!(p, Phase::Deleting { .. }))
                    .map(|((_, p), _)| p.clone())
                    .collect();
                if let Some(names) = body["fargateProfileNames"].as_array_mut() {
                    for name in deleting {
                        if !names.iter().any(|n| n == &json!(name)) {
                            names.push(json!(name));
                        }
                    }
                }
            }
            _ => return,
        }
        reply.body = body.to_string().into_bytes();
    }
}

/// `DeleteCluster` answers `ResourceInUseException` (an update is in progress) the first
/// `times` times; then moto answers. Returns how many times it refused so far.
pub fn cluster_update_in_progress(proxy: &AwsProxy, times: u32) -> Arc<AtomicU32> {
    let refused = Arc::new(AtomicU32::new(0));
    let count = refused.clone();
    proxy.rule(move |request| match eks_op(request) {
        EksOp::DeleteCluster(cluster) if count.load(Ordering::SeqCst) < times => {
            count.fetch_add(1, Ordering::SeqCst);
            in_use(
                request,
                format!(
                    "Cannot delete cluster {cluster} because it currently has update 5c7f3c8e-0000-4000-8000-000000000000 in progress"
                ),
            )
        }
        _ => Verdict::Pass,
    });
    refused
}

/// Every EKS call about `cluster` answers `ClientException` "No cluster found for name: X.",
/// as EKS sometimes reports a cluster that is gone.
pub fn cluster_gone_as_client_exception(proxy: &AwsProxy, cluster: &str) {
    let cluster = cluster.to_owned();
    proxy.rule(move |request| {
        let about = match eks_op(request) {
            EksOp::DescribeCluster(c)
            | EksOp::DeleteCluster(c)
            | EksOp::ListFargateProfiles(c)
            | EksOp::CreateFargateProfile(c)
            | EksOp::DescribeFargateProfile(c, _)
            | EksOp::DeleteFargateProfile(c, _) => c,
            _ => return Verdict::Pass,
        };
        if about != cluster {
            return Verdict::Pass;
        }
        Verdict::Reply(AwsReply::error(
            request,
            400,
            "ClientException",
            &format!("No cluster found for name: {cluster}."),
        ))
    });
}

/// The account is in another partition (`aws-cn`, `aws-us-gov`, `aws-eusc`): STS names the
/// caller with that partition's ARN, as it does there (moto knows only `aws`). What a step
/// derives from the caller (its partition) then follows; ARNs moto makes for other resources
/// keep `aws`.
pub fn caller_in_partition(proxy: &AwsProxy, partition: &'static str) {
    proxy.rewrite(move |request, reply| {
        if request.service == "sts" && request.action == "GetCallerIdentity" {
            let text = reply
                .text()
                .replace("<Arn>arn:aws:", &format!("<Arn>arn:{partition}:"));
            reply.body = text.into_bytes();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eks(method: &str, path: &str) -> AwsRequest {
        AwsRequest {
            service: "eks".into(),
            region: "us-east-2".into(),
            action: String::new(),
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[test]
    fn eks_operations_from_method_and_path() {
        assert_eq!(eks_op(&eks("POST", "/clusters")), EksOp::CreateCluster);
        assert_eq!(
            eks_op(&eks("DELETE", "/clusters/c")),
            EksOp::DeleteCluster("c".into())
        );
        assert_eq!(
            eks_op(&eks("GET", "/clusters/c/fargate-profiles/fp-1")),
            EksOp::DescribeFargateProfile("c".into(), "fp-1".into())
        );
        assert_eq!(
            eks_op(&eks("POST", "/clusters/c/fargate-profiles")),
            EksOp::CreateFargateProfile("c".into())
        );
        assert_eq!(eks_op(&eks("GET", "/clusters/c/addons")), EksOp::Other);
    }
}
