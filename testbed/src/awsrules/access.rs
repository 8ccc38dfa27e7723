//! EKS access entries, which moto 5.2.5 does not implement (its answer to every access-entry call
//! is an HTML 404): the test bed's own model of them, answered on the [`AwsProxy`] in EKS's REST
//! JSON, and consulted by the control plane's authenticator
//! ([`crate::controlplane::Settings::access_entries`]) to map a caller to a Kubernetes identity.
//!
//! - `CreateAccessEntry`, `DescribeAccessEntry`, `ListAccessEntries`, `UpdateAccessEntry`,
//!   `DeleteAccessEntry`, `AssociateAccessPolicy`, `DisassociateAccessPolicy` and
//!   `ListAssociatedAccessPolicies`, per cluster, with EKS's field names and errors: a cluster
//!   moto does not have is `ResourceNotFoundException` "No cluster found for name: X." (404); an
//!   entry that does not exist is `ResourceNotFoundException` "The specified principalArn could
//!   not be found. ..." (404); a second entry for the same IAM principal is
//!   `ResourceInUseException` "The specified access entry resource is already in use on this
//!   cluster." (409); every call on a cluster whose authentication mode is `CONFIG_MAP` is
//!   `InvalidRequestException` "The cluster's authentication mode must be set to one of [API,
//!   API_AND_CONFIG_MAP] to perform this operation." (400); an STS session ARN, or an IAM role or
//!   user of the caller's account that IAM does not have, is `InvalidParameterException` "The
//!   specified principalArn is invalid: invalid principal." (400).
//! - `CreateCluster`: `accessConfig.authenticationMode` is `CONFIG_MAP` when not given (what EKS
//!   does for API callers), `bootstrapClusterCreatorAdminPermissions` true; `CONFIG_MAP` with the
//!   bootstrap off is refused (`InvalidParameterException`, before moto sees it). The creator is
//!   who STS says signed the request (asked of moto as the authenticator does,
//!   [`crate::controlplane::authn::caller_of_key`]); an assumed role's session stands for its role
//!   (`arn:aws:iam::<account>:role/<path><name>`, the path from IAM). With the bootstrap on, in the
//!   `API` and `API_AND_CONFIG_MAP` modes the creator gets an access entry with
//!   `AmazonEKSClusterAdminPolicy` on the cluster scope, as EKS makes it; in `CONFIG_MAP` mode
//!   the creator is an administrator without an entry (user `kubernetes-admin`).
//! - `DeleteCluster` forgets the cluster's entries.
//!
//! `DescribeCluster`'s `accessConfig` is [`super::ClusterConfig`]'s (install both to have it);
//! this model reads the same request fields with the same defaults.
//!
//! Not modelled: the `aws-auth` ConfigMap (a caller without an entry is refused even in
//! `API_AND_CONFIG_MAP` mode), changes of the authentication mode, the entries EKS makes for
//! node and Fargate pod execution roles, tags through `TagResource`, pagination tokens beyond a
//! plain index, and accounts: entries are kept per region and cluster name.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::cluster_config::DEFAULT_AUTHENTICATION_MODE;
use super::{EksOp, eks_op, json_reply, lock};
use crate::awsproxy::{AwsProxy, AwsReply, AwsRequest, Verdict};
use crate::credentials::signing_key;

/// The access policy EKS associates with the cluster creator's entry (in the `aws` partition).
pub const CLUSTER_ADMIN_POLICY: &str =
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
/// What every access policy ARN holds after its partition.
const POLICY_INFIX: &str = ":eks::aws:cluster-access-policy/";
/// The name of the cluster administrator policy.
const ADMIN_POLICY_NAME: &str = "AmazonEKSClusterAdminPolicy";
/// The Kubernetes user of the cluster creator in `CONFIG_MAP` mode (no access entry).
pub const CONFIG_MAP_CREATOR_USERNAME: &str = "kubernetes-admin";
/// The access entry types EKS knows.
const ENTRY_TYPES: [&str; 7] = [
    "STANDARD",
    "EC2_LINUX",
    "EC2_WINDOWS",
    "FARGATE_LINUX",
    "EC2",
    "HYBRID_LINUX",
    "HYPERPOD_LINUX",
];
/// Prefixes a username of an access entry may not have.
const RESERVED_USERNAME_PREFIXES: [&str; 5] = ["system:", "eks:", "aws:", "amazon:", "iam:"];

const INVALID_PRINCIPAL: &str = "The specified principalArn is invalid: invalid principal.";
const ENTRY_NOT_FOUND: &str = "The specified principalArn could not be found. You can view your available access entries with 'list-access-entries'.";
const ENTRY_IN_USE: &str = "The specified access entry resource is already in use on this cluster.";
const MODE_REFUSES: &str = "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.";

/// Where an access policy applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessScope {
    /// `cluster` or `namespace`.
    pub kind: String,
    /// The namespaces of a `namespace` scope.
    pub namespaces: Vec<String>,
}

/// An access policy associated with an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AssociatedPolicy {
    pub policy_arn: String,
    pub scope: AccessScope,
    /// Unix epoch seconds.
    pub associated_at: f64,
    pub modified_at: f64,
}

/// An access entry as EKS keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessEntry {
    pub cluster: String,
    /// The IAM principal's ARN as given (a role's may hold a path).
    pub principal_arn: String,
    pub kubernetes_groups: Vec<String>,
    pub access_entry_arn: String,
    /// Unix epoch seconds.
    pub created_at: f64,
    pub modified_at: f64,
    pub tags: BTreeMap<String, String>,
    /// The Kubernetes username, maybe with `{{SessionName}}` in it.
    pub username: String,
    /// `STANDARD`, `FARGATE_LINUX`, ...
    pub kind: String,
    pub policies: Vec<AssociatedPolicy>,
}

/// Who a caller is to Kubernetes on a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The principal of the entry that matched (the creator's in `CONFIG_MAP` mode).
    pub principal_arn: String,
    /// The Kubernetes username, templates resolved for this caller.
    pub username: String,
    /// The entry's Kubernetes groups.
    pub kubernetes_groups: Vec<String>,
    /// The access policies associated with the entry.
    pub policy_arns: Vec<String>,
    /// `AmazonEKSClusterAdminPolicy` on the cluster scope (or the creator in `CONFIG_MAP` mode).
    pub admin: bool,
}

impl Access {
    /// The Kubernetes groups the authenticator reports: the entry's, `system:masters` for an
    /// administrator (EKS authorizes access policies with an authorizer of its own; the test bed
    /// stands the cluster admin policy in with `system:masters`, and models no other policy), and
    /// `system:authenticated`.
    pub fn groups(&self) -> Vec<String> {
        let mut groups = self.kubernetes_groups.clone();
        if self.admin {
            groups.push("system:masters".to_owned());
        }
        groups.push("system:authenticated".to_owned());
        groups
    }
}

/// A cluster's access settings and entries.
#[derive(Debug, Clone)]
struct ClusterRecord {
    account: String,
    partition: String,
    mode: String,
    creator: Option<String>,
    /// By principal ARN.
    entries: BTreeMap<String, AccessEntry>,
}

/// What a `CreateCluster` asked for, until moto answers it.
#[derive(Debug, Clone)]
struct Pending {
    mode: String,
    bootstrap: bool,
    creator: Option<String>,
}

type Key = (String, String);

#[derive(Debug, Default)]
struct Kept {
    clusters: BTreeMap<Key, ClusterRecord>,
    pending: BTreeMap<Key, Pending>,
    made: u64,
}

/// The access-entry model (see the module documentation). Clones share their state.
#[derive(Clone)]
pub struct AccessEntries {
    moto: String,
    kept: Arc<Mutex<Kept>>,
}

impl std::fmt::Debug for AccessEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessEntries")
            .field("moto", &self.moto)
            .field("clusters", &lock(&self.kept).clusters.len())
            .finish()
    }
}

/// One cluster's access entries, as the control plane's authenticator consults them.
#[derive(Debug, Clone)]
pub struct ClusterAccess {
    pub entries: AccessEntries,
    pub region: String,
    pub cluster: String,
}

impl ClusterAccess {
    /// [`AccessEntries::lookup`] on this cluster.
    pub fn lookup(&self, caller_arn: &str) -> Option<Access> {
        self.entries.lookup(&self.region, &self.cluster, caller_arn)
    }
}

/// An IAM identity, from an IAM or STS ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    /// `arn:<p>:iam::<account>:user/<path><name>` (moto names its default caller
    /// `arn:aws:sts::<account>:user/moto`; that is taken as the IAM user).
    User {
        partition: String,
        account: String,
        arn: String,
        name: String,
    },
    /// An IAM role, or a session of it (`arn:<p>:sts::<account>:assumed-role/<name>/<session>`).
    Role {
        partition: String,
        account: String,
        name: String,
        session: Option<String>,
    },
}

impl Principal {
    fn parse(arn: &str) -> Option<Principal> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", partition, service, "", account, resource] = parts.as_slice() else {
            return None;
        };
        let (partition, account) = ((*partition).to_owned(), (*account).to_owned());
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (kind, rest) = resource.split_once('/')?;
        let last = rest.rsplit('/').next().unwrap_or_default().to_owned();
        if last.is_empty() {
            return None;
        }
        match (*service, kind) {
            ("iam", "user") | ("sts", "user") => Some(Principal::User {
                arn: format!("arn:{partition}:iam::{account}:user/{rest}"),
                partition,
                account,
                name: last,
            }),
            ("iam", "role") => Some(Principal::Role {
                partition,
                account,
                name: last,
                session: None,
            }),
            ("sts", "assumed-role") => {
                let (name, session) = rest.split_once('/')?;
                if name.is_empty() || session.is_empty() || session.contains('/') {
                    return None;
                }
                Some(Principal::Role {
                    partition,
                    account,
                    name: name.to_owned(),
                    session: Some(session.to_owned()),
                })
            }
            _ => None,
        }
    }

    fn account(&self) -> &str {
        match self {
            Principal::User { account, .. } | Principal::Role { account, .. } => account,
        }
    }

    /// The same IAM identity: a user by its ARN, a role by partition, account and name (EKS
    /// takes a session of `role/<name>` for the role's entry whatever its path).
    fn same(&self, other: &Principal) -> bool {
        match (self, other) {
            (Principal::User { arn: a, .. }, Principal::User { arn: b, .. }) => a == b,
            (
                Principal::Role {
                    partition: p1,
                    account: a1,
                    name: n1,
                    ..
                },
                Principal::Role {
                    partition: p2,
                    account: a2,
                    name: n2,
                    ..
                },
            ) => p1 == p2 && a1 == a2 && n1 == n2,
            _ => false,
        }
    }

    /// The username EKS gives an entry made without one.
    fn default_username(&self) -> String {
        match self {
            Principal::User { arn, .. } => arn.clone(),
            Principal::Role {
                partition,
                account,
                name,
                ..
            } => format!("arn:{partition}:sts::{account}:assumed-role/{name}/{{{{SessionName}}}}"),
        }
    }

    /// `username` with its templates filled in for this caller.
    fn resolve(&self, username: &str) -> String {
        let mut name = username.replace("{{AccountID}}", self.account());
        if let Principal::Role {
            session: Some(session),
            ..
        } = self
        {
            name = name
                .replace("{{SessionNameRaw}}", session)
                .replace("{{SessionName}}", &session.replace('@', "-"));
        }
        name
    }

    /// `role` or `user`, and the name, as an access entry's ARN has them.
    fn arn_part(&self) -> (&'static str, &str) {
        match self {
            Principal::User { name, .. } => ("user", name),
            Principal::Role { name, .. } => ("role", name),
        }
    }
}

/// What an access-entry call is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Create,
    List,
    Describe(String),
    Update(String),
    Delete(String),
    Associate(String),
    ListPolicies(String),
    Disassociate(String, String),
}

/// The cluster and the operation of an access-entry request (its path is percent-decoded, so a
/// principal ARN's `/` are there as such).
fn access_op(request: &AwsRequest) -> Option<(String, Op)> {
    if request.service != "eks" || !request.action.is_empty() {
        return None;
    }
    let rest = request.path.strip_prefix("/clusters/")?;
    let (cluster, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("access-entries")?;
    let method = request.method.as_str();
    let op = if rest.is_empty() || rest == "/" {
        match method {
            "POST" => Op::Create,
            "GET" => Op::List,
            _ => return None,
        }
    } else {
        let rest = rest.strip_prefix('/')?;
        let policies = rest
            .find("/access-policies")
            .filter(|&i| {
                let after = &rest[i + "/access-policies".len()..];
                after.is_empty() || after.starts_with('/')
            })
            .map(|i| (&rest[..i], &rest[i + "/access-policies".len()..]));
        match (method, policies) {
            ("GET", None) => Op::Describe(rest.to_owned()),
            ("POST", None) => Op::Update(rest.to_owned()),
            ("DELETE", None) => Op::Delete(rest.to_owned()),
            ("POST", Some((p, ""))) => Op::Associate(p.to_owned()),
            ("GET", Some((p, ""))) => Op::ListPolicies(p.to_owned()),
            ("DELETE", Some((p, policy))) if policy.len() > 1 => {
                Op::Disassociate(p.to_owned(), policy[1..].to_owned())
            }
            _ => return None,
        }
    };
    Some((cluster.to_owned(), op))
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

fn error(request: &AwsRequest, status: u16, code: &str, message: &str) -> Verdict {
    Verdict::Reply(AwsReply::error(request, status, code, message))
}

fn invalid(request: &AwsRequest, message: &str) -> Verdict {
    error(request, 400, "InvalidParameterException", message)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn entry_json(entry: &AccessEntry) -> Value {
    json!({
        "clusterName": entry.cluster,
        "principalArn": entry.principal_arn,
        "kubernetesGroups": entry.kubernetes_groups,
        "accessEntryArn": entry.access_entry_arn,
        "createdAt": entry.created_at,
        "modifiedAt": entry.modified_at,
        "tags": entry.tags,
        "username": entry.username,
        "type": entry.kind,
    })
}

fn policy_json(policy: &AssociatedPolicy) -> Value {
    let mut scope = json!({"type": policy.scope.kind});
    if policy.scope.kind == "namespace" {
        scope["namespaces"] = json!(policy.scope.namespaces);
    }
    json!({
        "policyArn": policy.policy_arn,
        "accessScope": scope,
        "associatedAt": policy.associated_at,
        "modifiedAt": policy.modified_at,
    })
}

fn is_admin_policy(policy: &AssociatedPolicy) -> bool {
    policy
        .policy_arn
        .ends_with(&format!("{POLICY_INFIX}{ADMIN_POLICY_NAME}"))
        && policy.scope.kind == "cluster"
}

fn reserved_username(username: &str) -> bool {
    RESERVED_USERNAME_PREFIXES
        .iter()
        .any(|p| username.starts_with(p))
}

/// A page of `items` from the `nextToken` (an index) for `maxResults` (1 to 100, 100 when none).
fn page<T: Clone>(request: &AwsRequest, items: &[T]) -> Result<(Vec<T>, Option<String>), Verdict> {
    let max = match request.param("maxResults") {
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err(invalid(request, "maxResults must be between 1 and 100.")),
        },
        None => 100,
    };
    let start = match request.param("nextToken") {
        Some(t) => match t.parse::<usize>() {
            Ok(n) if n <= items.len() => n,
            _ => return Err(invalid(request, "The nextToken is not valid.")),
        },
        None => 0,
    };
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

impl AccessEntries {
    /// A model with no clusters; moto (for clusters, IAM and STS) is at `moto_endpoint`.
    pub fn new(moto_endpoint: &str) -> AccessEntries {
        AccessEntries {
            moto: moto_endpoint.to_owned(),
            kept: Arc::default(),
        }
    }

    /// Installs the rule and the observer on `proxy`.
    pub fn install(&self, proxy: &AwsProxy) {
        let me = self.clone();
        proxy.async_rule(move |request| {
            let me = me.clone();
            async move { me.decide(request).await }
        });
        let me = self.clone();
        proxy.observe(move |request, reply| me.after_moto(request, reply));
    }

    /// This model seen from one cluster (for [`crate::controlplane::Settings::access_entries`]).
    pub fn for_cluster(&self, region: &str, cluster: &str) -> ClusterAccess {
        ClusterAccess {
            entries: self.clone(),
            region: region.to_owned(),
            cluster: cluster.to_owned(),
        }
    }

    /// The access entries of `cluster` in `region` (none for a cluster not made through the
    /// proxy), by principal ARN.
    pub fn entries(&self, region: &str, cluster: &str) -> Vec<AccessEntry> {
        lock(&self.kept)
            .clusters
            .get(&(region.to_owned(), cluster.to_owned()))
            .map(|c| c.entries.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The authentication mode `cluster` was made with through the proxy.
    pub fn authentication_mode(&self, region: &str, cluster: &str) -> Option<String> {
        lock(&self.kept)
            .clusters
            .get(&(region.to_owned(), cluster.to_owned()))
            .map(|c| c.mode.clone())
    }

    /// The IAM principal that made `cluster` (a role's ARN for an assumed role).
    pub fn creator(&self, region: &str, cluster: &str) -> Option<String> {
        lock(&self.kept)
            .clusters
            .get(&(region.to_owned(), cluster.to_owned()))
            .and_then(|c| c.creator.clone())
    }

    /// Who the caller `caller_arn` (STS's answer to `GetCallerIdentity`: an IAM user's ARN, or
    /// an assumed role's session) is on `cluster`: by its access entry in the `API` modes, the
    /// creator alone in `CONFIG_MAP` mode; None when it has no access (the API server answers
    /// 401).
    pub fn lookup(&self, region: &str, cluster: &str, caller_arn: &str) -> Option<Access> {
        let caller = Principal::parse(caller_arn)?;
        let kept = lock(&self.kept);
        let record = kept
            .clusters
            .get(&(region.to_owned(), cluster.to_owned()))?;
        if record.mode == "CONFIG_MAP" {
            let creator = record.creator.as_ref()?;
            return Principal::parse(creator)
                .is_some_and(|p| p.same(&caller))
                .then(|| Access {
                    principal_arn: creator.clone(),
                    username: CONFIG_MAP_CREATOR_USERNAME.to_owned(),
                    kubernetes_groups: Vec::new(),
                    policy_arns: Vec::new(),
                    admin: true,
                });
        }
        let entry = record
            .entries
            .values()
            .find(|e| Principal::parse(&e.principal_arn).is_some_and(|p| p.same(&caller)))?;
        Some(Access {
            principal_arn: entry.principal_arn.clone(),
            username: caller.resolve(&entry.username),
            kubernetes_groups: entry.kubernetes_groups.clone(),
            policy_arns: entry
                .policies
                .iter()
                .map(|p| p.policy_arn.clone())
                .collect(),
            admin: entry.policies.iter().any(is_admin_policy),
        })
    }

    fn aws_credentials(request: &AwsRequest) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            signing_key(request).unwrap_or_else(|| "testing".to_owned()),
            "awsrules",
            None,
            None,
            "awsrules",
        )
    }

    fn eks_client(&self, request: &AwsRequest) -> aws_sdk_eks::Client {
        let config = aws_sdk_eks::Config::builder()
            .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
            .region(aws_sdk_eks::config::Region::new(request.region.clone()))
            .endpoint_url(&self.moto)
            .credentials_provider(Self::aws_credentials(request))
            .build();
        aws_sdk_eks::Client::from_conf(config)
    }

    fn iam_client(&self, request: &AwsRequest) -> aws_sdk_iam::Client {
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .endpoint_url(&self.moto)
            .credentials_provider(Self::aws_credentials(request))
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    /// Who signed `request`, as moto's STS says.
    async fn caller(&self, request: &AwsRequest) -> Option<String> {
        let key = signing_key(request)?;
        let (moto, region) = (self.moto.clone(), request.region.clone());
        tokio::task::spawn_blocking(move || {
            crate::controlplane::authn::caller_of_key(&moto, &key, &region)
        })
        .await
        .ok()
        .flatten()
    }

    /// The IAM ARN of the principal that signed `request`: an assumed role's session stands for
    /// the role, its path from IAM when IAM has it.
    async fn creator_of(&self, request: &AwsRequest) -> Option<String> {
        let caller = self.caller(request).await?;
        match Principal::parse(&caller)? {
            Principal::User { arn, .. } => Some(arn),
            Principal::Role {
                partition,
                account,
                name,
                ..
            } => {
                let found = self
                    .iam_client(request)
                    .get_role()
                    .role_name(&name)
                    .send()
                    .await;
                let arn = found
                    .ok()
                    .and_then(|r| r.role().map(|r| r.arn().to_owned()))
                    .filter(|arn| arn.contains(&format!(":{account}:")));
                Some(arn.unwrap_or_else(|| format!("arn:{partition}:iam::{account}:role/{name}")))
            }
        }
    }

    async fn decide(&self, request: AwsRequest) -> Verdict {
        if eks_op(&request) == EksOp::CreateCluster {
            return self.before_create(request).await;
        }
        let Some((cluster, op)) = access_op(&request) else {
            return Verdict::Pass;
        };
        let found = self
            .eks_client(&request)
            .describe_cluster()
            .name(&cluster)
            .send()
            .await;
        match found {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return error(
                    &request,
                    404,
                    "ResourceNotFoundException",
                    &format!("No cluster found for name: {cluster}."),
                );
            }
            Err(e) => {
                return error(
                    &request,
                    500,
                    "ServerException",
                    &format!("the test bed could not ask moto about cluster {cluster}: {e}"),
                );
            }
        }
        let key = (request.region.clone(), cluster.clone());
        let mode = lock(&self.kept)
            .clusters
            .get(&key)
            .map(|c| c.mode.clone())
            .unwrap_or_else(|| DEFAULT_AUTHENTICATION_MODE.to_owned());
        if mode == "CONFIG_MAP" {
            return error(&request, 400, "InvalidRequestException", MODE_REFUSES);
        }
        if op == Op::Create {
            // An entry of that principal already there: in use, whatever IAM says of it (moto's
            // default caller, often the creator, is no user IAM has).
            if self.has_entry(&key, &request) {
                return error(&request, 409, "ResourceInUseException", ENTRY_IN_USE);
            }
            if let Err(refused) = self.check_new_principal(&request).await {
                return refused;
            }
        }
        self.answer(&request, key, op)
    }

    /// Refuses a `CreateCluster` EKS refuses for its access settings; otherwise notes who makes
    /// the cluster, for when moto has made it.
    async fn before_create(&self, request: AwsRequest) -> Verdict {
        let body = request.json().unwrap_or(Value::Null);
        let Some(name) = body["name"].as_str().map(str::to_owned) else {
            return Verdict::Pass;
        };
        let access = &body["accessConfig"];
        let mode = access["authenticationMode"]
            .as_str()
            .unwrap_or(DEFAULT_AUTHENTICATION_MODE)
            .to_owned();
        let bootstrap = access["bootstrapClusterCreatorAdminPermissions"]
            .as_bool()
            .unwrap_or(true);
        if mode == "CONFIG_MAP" && !bootstrap {
            return invalid(
                &request,
                "bootstrapClusterCreatorAdminPermissions must be true if cluster authentication mode is set to CONFIG_MAP",
            );
        }
        let creator = self.creator_of(&request).await;
        lock(&self.kept).pending.insert(
            (request.region.clone(), name),
            Pending {
                mode,
                bootstrap,
                creator,
            },
        );
        Verdict::Pass
    }

    /// Whether the cluster `key` has an entry of the very principal ARN a `CreateAccessEntry`
    /// names.
    fn has_entry(&self, key: &Key, request: &AwsRequest) -> bool {
        let body = request.json().unwrap_or(Value::Null);
        let Some(arn) = body["principalArn"].as_str() else {
            return false;
        };
        lock(&self.kept)
            .clusters
            .get(key)
            .is_some_and(|c| c.entries.contains_key(arn))
    }

    /// The checks of a new entry's principal that need IAM: not a session, and (in the caller's
    /// account) a role or user IAM has, with that path.
    async fn check_new_principal(&self, request: &AwsRequest) -> Result<(), Verdict> {
        let body = request.json().unwrap_or(Value::Null);
        let Some(arn) = body["principalArn"].as_str() else {
            return Err(invalid(request, "principalArn is required."));
        };
        let principal = match Principal::parse(arn) {
            Some(p) if !arn.contains(":sts::") => p,
            _ => return Err(invalid(request, INVALID_PRINCIPAL)),
        };
        let caller_account = self
            .caller(request)
            .await
            .and_then(|c| Principal::parse(&c))
            .map(|c| c.account().to_owned());
        if caller_account.as_deref() != Some(principal.account()) {
            return Ok(());
        }
        let iam = self.iam_client(request);
        let known = match &principal {
            Principal::Role { name, .. } => iam
                .get_role()
                .role_name(name)
                .send()
                .await
                .ok()
                .and_then(|r| r.role().map(|r| r.arn().to_owned())),
            Principal::User { name, .. } => iam
                .get_user()
                .user_name(name)
                .send()
                .await
                .ok()
                .and_then(|r| r.user().map(|u| u.arn().to_owned())),
        };
        if known.as_deref() != Some(arn) {
            return Err(invalid(request, INVALID_PRINCIPAL));
        }
        Ok(())
    }

    /// Answers an access-entry call on a cluster that allows them.
    fn answer(&self, request: &AwsRequest, key: Key, op: Op) -> Verdict {
        let mut kept = lock(&self.kept);
        kept.made += 1;
        let made = kept.made;
        let cluster_name = key.1.clone();
        let Some(cluster) = kept.clusters.get_mut(&key) else {
            return error(
                request,
                404,
                "ResourceNotFoundException",
                &format!("No cluster found for name: {cluster_name}."),
            );
        };
        let body = request.json().unwrap_or(Value::Null);
        let not_found = || error(request, 404, "ResourceNotFoundException", ENTRY_NOT_FOUND);
        match op {
            Op::Create => {
                let arn = body["principalArn"].as_str().unwrap_or_default().to_owned();
                let Some(principal) = Principal::parse(&arn) else {
                    return invalid(request, INVALID_PRINCIPAL);
                };
                let kind = body["type"].as_str().unwrap_or("STANDARD").to_owned();
                if !ENTRY_TYPES.contains(&kind.as_str()) {
                    return invalid(
                        request,
                        &format!(
                            "The type {kind} is not valid; valid types are {}.",
                            ENTRY_TYPES.join(", ")
                        ),
                    );
                }
                if kind != "STANDARD" && !matches!(principal, Principal::Role { .. }) {
                    return invalid(request, INVALID_PRINCIPAL);
                }
                let username = match body["username"].as_str() {
                    Some(u) if reserved_username(u) => {
                        return invalid(
                            request,
                            "The username can't start with system:, eks:, aws:, amazon:, or iam:.",
                        );
                    }
                    Some(u) => u.to_owned(),
                    None => principal.default_username(),
                };
                let taken = cluster.entries.values().any(|e| {
                    Principal::parse(&e.principal_arn).is_some_and(|p| p.same(&principal))
                });
                if taken {
                    return error(request, 409, "ResourceInUseException", ENTRY_IN_USE);
                }
                let tags: BTreeMap<String, String> = body["tags"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                let entry = new_entry(
                    &key,
                    cluster,
                    &principal,
                    &arn,
                    made,
                    NewEntry {
                        kind,
                        username,
                        groups: strings(&body["kubernetesGroups"]),
                        tags,
                    },
                );
                cluster.entries.insert(arn, entry.clone());
                Verdict::Reply(json_reply(200, &json!({"accessEntry": entry_json(&entry)})))
            }
            Op::List => {
                let filter = request.param("associatedPolicyArn");
                let arns: Vec<String> = cluster
                    .entries
                    .values()
                    .filter(|e| {
                        filter
                            .as_ref()
                            .is_none_or(|f| e.policies.iter().any(|p| &p.policy_arn == f))
                    })
                    .map(|e| e.principal_arn.clone())
                    .collect();
                match page(request, &arns) {
                    Ok((arns, next)) => {
                        let mut answer = json!({"accessEntries": arns});
                        if let Some(next) = next {
                            answer["nextToken"] = json!(next);
                        }
                        Verdict::Reply(json_reply(200, &answer))
                    }
                    Err(refused) => refused,
                }
            }
            Op::Describe(arn) => match cluster.entries.get(&arn) {
                Some(entry) => {
                    Verdict::Reply(json_reply(200, &json!({"accessEntry": entry_json(entry)})))
                }
                None => not_found(),
            },
            Op::Update(arn) => {
                let Some(entry) = cluster.entries.get_mut(&arn) else {
                    return not_found();
                };
                if let Some(username) = body["username"].as_str() {
                    if reserved_username(username) {
                        return invalid(
                            request,
                            "The username can't start with system:, eks:, aws:, amazon:, or iam:.",
                        );
                    }
                    entry.username = username.to_owned();
                }
                if body["kubernetesGroups"].is_array() {
                    entry.kubernetes_groups = strings(&body["kubernetesGroups"]);
                }
                entry.modified_at = now();
                Verdict::Reply(json_reply(200, &json!({"accessEntry": entry_json(entry)})))
            }
            Op::Delete(arn) => match cluster.entries.remove(&arn) {
                Some(_) => Verdict::Reply(json_reply(200, &json!({}))),
                None => not_found(),
            },
            Op::Associate(arn) => {
                let Some(entry) = cluster.entries.get_mut(&arn) else {
                    return not_found();
                };
                if entry.kind != "STANDARD" {
                    return invalid(
                        request,
                        "This operation can only be performed on Access Entries with a type of \"STANDARD\".",
                    );
                }
                let policy_arn = body["policyArn"].as_str().unwrap_or_default().to_owned();
                let well_formed = policy_arn.starts_with("arn:")
                    && policy_arn
                        .split_once(POLICY_INFIX)
                        .is_some_and(|(_, name)| !name.is_empty() && !name.contains('/'));
                if !well_formed {
                    return invalid(
                        request,
                        &format!("The specified policyArn {policy_arn} is invalid."),
                    );
                }
                let scope = AccessScope {
                    kind: body["accessScope"]["type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    namespaces: strings(&body["accessScope"]["namespaces"]),
                };
                match (scope.kind.as_str(), scope.namespaces.is_empty()) {
                    ("cluster", true) | ("namespace", false) => {}
                    ("cluster", false) => {
                        return invalid(
                            request,
                            "Namespaces can't be specified for an access scope of type cluster.",
                        );
                    }
                    ("namespace", true) => {
                        return invalid(
                            request,
                            "At least one namespace is required for an access scope of type namespace.",
                        );
                    }
                    _ => {
                        return invalid(
                            request,
                            "The accessScope type must be one of [cluster, namespace].",
                        );
                    }
                }
                let at = now();
                let policy = match entry
                    .policies
                    .iter_mut()
                    .find(|p| p.policy_arn == policy_arn)
                {
                    Some(existing) => {
                        existing.scope = scope;
                        existing.modified_at = at;
                        existing.clone()
                    }
                    None => {
                        let policy = AssociatedPolicy {
                            policy_arn,
                            scope,
                            associated_at: at,
                            modified_at: at,
                        };
                        entry.policies.push(policy.clone());
                        policy
                    }
                };
                Verdict::Reply(json_reply(
                    200,
                    &json!({
                        "clusterName": entry.cluster,
                        "principalArn": entry.principal_arn,
                        "associatedAccessPolicy": policy_json(&policy),
                    }),
                ))
            }
            Op::ListPolicies(arn) => {
                let Some(entry) = cluster.entries.get(&arn) else {
                    return not_found();
                };
                match page(request, &entry.policies) {
                    Ok((policies, next)) => {
                        let mut answer = json!({
                            "clusterName": entry.cluster,
                            "principalArn": entry.principal_arn,
                            "associatedAccessPolicies":
                                policies.iter().map(policy_json).collect::<Vec<_>>(),
                        });
                        if let Some(next) = next {
                            answer["nextToken"] = json!(next);
                        }
                        Verdict::Reply(json_reply(200, &answer))
                    }
                    Err(refused) => refused,
                }
            }
            Op::Disassociate(arn, policy_arn) => {
                let Some(entry) = cluster.entries.get_mut(&arn) else {
                    return not_found();
                };
                let before = entry.policies.len();
                entry.policies.retain(|p| p.policy_arn != policy_arn);
                if entry.policies.len() == before {
                    return error(
                        request,
                        404,
                        "ResourceNotFoundException",
                        &format!(
                            "The specified policyArn {policy_arn} is not associated with this access entry."
                        ),
                    );
                }
                Verdict::Reply(json_reply(200, &json!({})))
            }
        }
    }

    /// Records a cluster moto made (with its creator's entry) or deleted.
    fn after_moto(&self, request: &AwsRequest, reply: &AwsReply) {
        if reply.status != 200 {
            return;
        }
        let mut kept = lock(&self.kept);
        match eks_op(request) {
            EksOp::CreateCluster => {
                let name = request
                    .json()
                    .and_then(|b| b["name"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let key = (request.region.clone(), name);
                let Some(pending) = kept.pending.remove(&key) else {
                    return;
                };
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                let cluster_arn = answer["cluster"]["arn"].as_str().unwrap_or_default();
                let parts: Vec<&str> = cluster_arn.split(':').collect();
                let mut record = ClusterRecord {
                    partition: parts.get(1).copied().unwrap_or("aws").to_owned(),
                    account: parts.get(4).copied().unwrap_or_default().to_owned(),
                    mode: pending.mode,
                    creator: pending.creator,
                    entries: BTreeMap::new(),
                };
                let creator = record.creator.clone();
                let principal = creator.as_deref().and_then(Principal::parse);
                if let (Some(arn), Some(principal), true, true) = (
                    creator,
                    principal,
                    pending.bootstrap,
                    record.mode != "CONFIG_MAP",
                ) {
                    kept.made += 1;
                    let mut entry = new_entry(
                        &key,
                        &record,
                        &principal,
                        &arn,
                        kept.made,
                        NewEntry {
                            kind: "STANDARD".to_owned(),
                            username: principal.default_username(),
                            groups: Vec::new(),
                            tags: BTreeMap::new(),
                        },
                    );
                    entry.policies.push(AssociatedPolicy {
                        policy_arn: format!(
                            "arn:{}{POLICY_INFIX}{ADMIN_POLICY_NAME}",
                            record.partition
                        ),
                        scope: AccessScope {
                            kind: "cluster".to_owned(),
                            namespaces: Vec::new(),
                        },
                        associated_at: entry.created_at,
                        modified_at: entry.created_at,
                    });
                    record.entries.insert(arn, entry);
                }
                kept.clusters.insert(key, record);
            }
            EksOp::DeleteCluster(name) => {
                let key = (request.region.clone(), name);
                kept.clusters.remove(&key);
                kept.pending.remove(&key);
            }
            _ => {}
        }
    }
}

/// The fields of a new entry a request chooses.
struct NewEntry {
    kind: String,
    username: String,
    groups: Vec<String>,
    tags: BTreeMap<String, String>,
}

/// A new entry of `principal` (given as `arn`) on the cluster `key`; `made` makes its id unique.
fn new_entry(
    key: &Key,
    cluster: &ClusterRecord,
    principal: &Principal,
    arn: &str,
    made: u64,
    fields: NewEntry,
) -> AccessEntry {
    let at = now();
    let (kind, name) = principal.arn_part();
    let id = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (at as u64) & 0xffff_ffff,
        made & 0xffff,
        0x4000 | ((made >> 16) & 0x0fff),
        0x8000 | (made & 0x0fff),
        made
    );
    AccessEntry {
        cluster: key.1.clone(),
        principal_arn: arn.to_owned(),
        kubernetes_groups: fields.groups,
        access_entry_arn: format!(
            "arn:{}:eks:{}:{}:access-entry/{}/{kind}/{}/{name}/{id}",
            cluster.partition,
            key.0,
            cluster.account,
            key.1,
            principal.account()
        ),
        created_at: at,
        modified_at: at,
        tags: fields.tags,
        username: fields.username,
        kind: fields.kind,
        policies: Vec::new(),
    }
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
    fn operations_from_decoded_paths() {
        let role = "arn:aws:iam::123456789012:role/team/apps/deployer";
        let base = "/clusters/demo/access-entries";
        assert_eq!(
            access_op(&eks("POST", base)),
            Some(("demo".into(), Op::Create))
        );
        assert_eq!(
            access_op(&eks("GET", base)),
            Some(("demo".into(), Op::List))
        );
        assert_eq!(
            access_op(&eks("GET", &format!("{base}/{role}"))),
            Some(("demo".into(), Op::Describe(role.into())))
        );
        assert_eq!(
            access_op(&eks("POST", &format!("{base}/{role}/access-policies"))),
            Some(("demo".into(), Op::Associate(role.into())))
        );
        assert_eq!(
            access_op(&eks(
                "DELETE",
                &format!("{base}/{role}/access-policies/{CLUSTER_ADMIN_POLICY}")
            )),
            Some((
                "demo".into(),
                Op::Disassociate(role.into(), CLUSTER_ADMIN_POLICY.into())
            ))
        );
        assert_eq!(access_op(&eks("GET", "/clusters/demo")), None);
        assert_eq!(access_op(&eks("GET", "/clusters/demo/addons")), None);
    }

    #[test]
    fn a_session_stands_for_its_role_whatever_the_path() {
        let session =
            Principal::parse("arn:aws:sts::123456789012:assumed-role/deployer/ci@example").unwrap();
        let with_path =
            Principal::parse("arn:aws:iam::123456789012:role/team/apps/deployer").unwrap();
        assert!(with_path.same(&session));
        let other_account = Principal::parse("arn:aws:iam::111111111111:role/deployer").unwrap();
        assert!(!other_account.same(&session));
        assert_eq!(
            session.resolve(&with_path.default_username()),
            "arn:aws:sts::123456789012:assumed-role/deployer/ci-example"
        );
        assert_eq!(
            session.resolve("deploy:{{AccountID}}:{{SessionNameRaw}}"),
            "deploy:123456789012:ci@example"
        );
        // moto's default caller is an IAM user under an STS ARN.
        let moto_user = Principal::parse("arn:aws:sts::123456789012:user/moto").unwrap();
        let user = Principal::parse("arn:aws:iam::123456789012:user/moto").unwrap();
        assert!(user.same(&moto_user));
        assert_eq!(
            moto_user.default_username(),
            "arn:aws:iam::123456789012:user/moto"
        );
        assert!(!user.same(&session));
        assert_eq!(Principal::parse("arn:aws:s3:::bucket"), None);
        assert_eq!(
            Principal::parse("arn:aws:sts::123456789012:assumed-role/deployer"),
            None
        );
    }

    #[test]
    fn the_admin_policy_counts_on_the_cluster_scope_only() {
        let policy = |kind: &str| AssociatedPolicy {
            policy_arn: CLUSTER_ADMIN_POLICY.into(),
            scope: AccessScope {
                kind: kind.into(),
                namespaces: if kind == "namespace" {
                    vec!["game".into()]
                } else {
                    Vec::new()
                },
            },
            associated_at: 0.0,
            modified_at: 0.0,
        };
        assert!(is_admin_policy(&policy("cluster")));
        assert!(!is_admin_policy(&policy("namespace")));
        let access = Access {
            principal_arn: String::new(),
            username: String::new(),
            kubernetes_groups: vec!["readers".into()],
            policy_arns: Vec::new(),
            admin: true,
        };
        assert_eq!(
            access.groups(),
            ["readers", "system:masters", "system:authenticated"]
        );
    }
}
