//! The EKS calls: the cluster and its Fargate profiles, each waited on.

use std::time::Duration;

use aws_sdk_eks::Client;
use aws_sdk_eks::types::{
    AuthenticationMode, CreateAccessConfigRequest, FargateProfileSelector, UpgradePolicyRequest,
    VpcConfigRequest,
};
use common::aws::AwsError;
use common::cluster::{not_found, removed};
use common::wait::{Poll, wait_for};

use crate::Error;

/// The tag the cluster and its profiles carry, valued with the cluster's name.
pub use common::owner::CLUSTER_TAG as OWNER_TAG;
/// The step named in [`common::owner::STEP_TAG`] on what eks-cluster makes.
pub const STEP: &str = "cluster";

/// What we keep of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    pub arn: String,
    pub status: String,
    pub version: Option<String>,
    pub endpoint: Option<String>,
    pub certificate_authority_data: Option<String>,
    pub oidc_issuer: Option<String>,
    pub vpc_id: Option<String>,
    pub subnet_ids: Vec<String>,
    pub cluster_security_group_id: Option<String>,
    /// The CIDRs its public endpoint is open to, as reported (EKS reports `0.0.0.0/0` when none
    /// were given; an emulator may report none).
    pub public_access_cidrs: Vec<String>,
    /// `accessConfig.authenticationMode`, when reported.
    pub authentication_mode: Option<String>,
    /// `upgradePolicy.supportType`, when reported.
    pub support_type: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl Cluster {
    /// True when its tags prove eks-cluster made it (clusters made before the step tag carry
    /// only the cluster tag).
    pub fn tagged_ours(&self, name: &str) -> bool {
        common::owner::map_proves_ours(&self.tags, name, STEP, true)
    }
}

/// True when EKS refuses because something else is under way on the cluster (an update, or
/// another Fargate profile being created or deleted): worth asking again later. A name that
/// exists already is not.
pub fn is_busy(source: &AwsError) -> bool {
    source.is("ResourceInUseException") && !source.text().contains("already exists")
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_owned)
}

fn cluster_of(c: &aws_sdk_eks::types::Cluster) -> Cluster {
    let vpc = c.resources_vpc_config();
    Cluster {
        arn: c.arn().unwrap_or_default().to_owned(),
        status: c
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        version: non_empty(c.version()),
        endpoint: non_empty(c.endpoint()),
        certificate_authority_data: non_empty(c.certificate_authority().and_then(|a| a.data())),
        oidc_issuer: non_empty(c.identity().and_then(|i| i.oidc()).and_then(|o| o.issuer())),
        vpc_id: non_empty(vpc.and_then(|v| v.vpc_id())),
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        cluster_security_group_id: non_empty(vpc.and_then(|v| v.cluster_security_group_id())),
        public_access_cidrs: vpc
            .map(|v| v.public_access_cidrs().to_vec())
            .unwrap_or_default(),
        authentication_mode: c
            .access_config()
            .and_then(|a| a.authentication_mode())
            .map(|m| m.as_str().to_owned()),
        support_type: c
            .upgrade_policy()
            .and_then(|u| u.support_type())
            .map(|t| t.as_str().to_owned()),
        tags: c
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

/// The cluster, `None` when there is none of that name.
pub async fn describe(eks: &Client, name: &str) -> Result<Option<Cluster>, Error> {
    common::cluster::describe(eks, name)
        .await
        .map(|found| found.as_ref().map(cluster_of))
        .map_err(|source| Error::DescribeCluster {
            cluster: name.to_owned(),
            source,
        })
}

/// What `CreateCluster` sends.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: String,
    pub version: String,
    pub role_arn: String,
    pub subnet_ids: Vec<String>,
    /// The CIDRs the public endpoint is open to.
    pub public_access_cidrs: Vec<String>,
    pub support_type: crate::SupportType,
}

/// The authentication mode of the clusters eks-cluster makes: access entries only (no
/// `aws-auth` ConfigMap).
pub const AUTHENTICATION_MODE: AuthenticationMode = AuthenticationMode::Api;

/// Starts creating the cluster: public endpoint (open to the spec's CIDRs) and private
/// endpoint, API authentication (access entries) with the creator as admin, the spec's support
/// type, our tags, an idempotency token. A role made moments ago may not be
/// visible to EKS yet; the call is repeated for a while when EKS says so. When a retry after a
/// lost answer is told the cluster already exists, the cluster found is ours if it carries our
/// tags (the caller found no cluster of that name before), and it is returned.
pub async fn create(eks: &Client, spec: &ClusterSpec) -> Result<Cluster, Error> {
    let token = common::owner::client_token();
    // The zones EKS names when it refuses one of the subnets' zones.
    let valid_zones: std::sync::Mutex<Option<Vec<String>>> = std::sync::Mutex::new(None);
    let sent = retry_new_role(
        &format!("IAM role {} to be usable by EKS", spec.role_arn),
        || async {
            eks.create_cluster()
                .name(&spec.name)
                .version(&spec.version)
                .role_arn(&spec.role_arn)
                .resources_vpc_config(
                    VpcConfigRequest::builder()
                        .set_subnet_ids(Some(spec.subnet_ids.clone()))
                        .endpoint_public_access(true)
                        .endpoint_private_access(true)
                        .set_public_access_cidrs(Some(spec.public_access_cidrs.clone()))
                        .build(),
                )
                .access_config(
                    CreateAccessConfigRequest::builder()
                        .authentication_mode(AUTHENTICATION_MODE)
                        .bootstrap_cluster_creator_admin_permissions(true)
                        .build(),
                )
                .upgrade_policy(
                    UpgradePolicyRequest::builder()
                        .support_type(spec.support_type.as_str().into())
                        .build(),
                )
                .set_tags(Some(
                    common::owner::tags(&spec.name, STEP).into_iter().collect(),
                ))
                .client_request_token(&token)
                .send()
                .await
                .map_err(|e| {
                    if let Some(aws_sdk_eks::operation::create_cluster::CreateClusterError::UnsupportedAvailabilityZoneException(refused)) = e.as_service_error() {
                        *valid_zones.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(refused.valid_zones().to_vec());
                    }
                    AwsError::from(e)
                })
        },
    )
    .await;
    let source = match sent {
        Ok(answer) => return Ok(answer.cluster().map(cluster_of).unwrap_or_default()),
        Err(Retried::Timeout(t)) => return Err(Error::Timeout(t)),
        Err(Retried::Aws(source)) => source,
    };
    if source.is("UnsupportedAvailabilityZoneException") {
        return Err(Error::UnsupportedZones {
            cluster: spec.name.clone(),
            valid_zones: valid_zones
                .into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_default(),
            source,
        });
    }
    if common::owner::is_already_exists(&source)
        && let Some(found) = describe(eks, &spec.name).await?
        && found.tagged_ours(&spec.name)
    {
        tracing::info!(
            "cluster {} already exists and carries our tags: the answer to our CreateCluster was lost; going on with it",
            spec.name
        );
        return Ok(found);
    }
    Err(Error::CreateCluster {
        cluster: spec.name.clone(),
        source,
    })
}

/// The CIDRs a cluster's public endpoint is open to, as EKS means them: none reported is EKS's
/// default, open to all.
pub fn effective_public_access_cidrs(cluster: &Cluster) -> Vec<String> {
    if cluster.public_access_cidrs.is_empty() {
        vec![crate::inputs::OPEN_TO_ALL.to_owned()]
    } else {
        cluster.public_access_cidrs.clone()
    }
}

/// True when the two lists name the same CIDRs (in any order).
pub fn same_cidrs(a: &[String], b: &[String]) -> bool {
    let set = |v: &[String]| {
        v.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<String>>()
    };
    set(a) == set(b)
}

/// True for EKS's refusal of an update that changes nothing (a retry of an update whose answer
/// was lost meets it).
fn is_already_desired(source: &AwsError) -> bool {
    source.is("InvalidParameterException")
        && source
            .text()
            .contains("already at the desired configuration")
}

/// Opens the cluster's public endpoint to `cidrs` only (`UpdateClusterConfig`; both endpoints
/// stay on), sent again while EKS is busy with another update, for at most `timeout`; then
/// waits until the cluster is ACTIVE and reports those CIDRs.
pub async fn update_public_access(
    eks: &Client,
    name: &str,
    cidrs: &[String],
    timeout: Duration,
) -> Result<(), Error> {
    let token = common::owner::client_token();
    let sent = retry_while(
        &format!(
            "the update in progress on cluster {name} to end before changing its public endpoint"
        ),
        timeout,
        is_busy,
        || async {
            eks.update_cluster_config()
                .name(name)
                .resources_vpc_config(
                    VpcConfigRequest::builder()
                        .endpoint_public_access(true)
                        .endpoint_private_access(true)
                        .set_public_access_cidrs(Some(cidrs.to_vec()))
                        .build(),
                )
                .client_request_token(&token)
                .send()
                .await
                .map_err(AwsError::from)
        },
    )
    .await;
    match sent {
        Ok(answer) => tracing::info!(
            "update {} of cluster {name} started: public endpoint open to {}",
            answer.update().and_then(|u| u.id()).unwrap_or("(no id)"),
            cidrs.join(", ")
        ),
        Err(Retried::Aws(source)) if is_already_desired(&source) => {}
        Err(Retried::Aws(source)) => {
            return Err(Error::UpdateClusterConfig {
                cluster: name.to_owned(),
                source,
            });
        }
        Err(Retried::Timeout(t)) => return Err(Error::Timeout(t)),
    }
    wait_for(
        &format!(
            "cluster {name} to open its public endpoint to {}",
            cidrs.join(", ")
        ),
        timeout,
        || async {
            match describe(eks, name).await? {
                None => Err(Error::ClusterNotFound {
                    cluster: name.to_owned(),
                    region: "this region (it disappeared while being updated)".into(),
                }),
                Some(c)
                    if c.status == "ACTIVE"
                        && same_cidrs(&effective_public_access_cidrs(&c), cidrs) =>
                {
                    Ok(Poll::Ready(()))
                }
                Some(c) if c.status == "FAILED" || c.status == "DELETING" => {
                    Err(Error::ClusterState {
                        cluster: name.to_owned(),
                        status: c.status,
                        hint: String::new(),
                    })
                }
                Some(c) => Ok(Poll::Pending(format!(
                    "{}, public endpoint open to {}",
                    c.status,
                    effective_public_access_cidrs(&c).join(", ")
                ))),
            }
        },
    )
    .await
}

/// How long a new IAM role may take to be visible to EKS (IAM is eventually consistent).
pub const ROLE_PROPAGATION: Duration = Duration::from_secs(120);

/// True for the error EKS gives while a new role is not visible to it yet.
pub fn is_role_not_ready(source: &AwsError) -> bool {
    source.is("InvalidParameterException") && source.text().to_ascii_lowercase().contains("role")
}

#[derive(Debug)]
enum Retried {
    Aws(AwsError),
    Timeout(common::wait::TimedOut),
}

impl From<common::wait::TimedOut> for Retried {
    fn from(t: common::wait::TimedOut) -> Self {
        Retried::Timeout(t)
    }
}

/// Sends `call` again while EKS says the role is not usable yet, for [`ROLE_PROPAGATION`].
async fn retry_new_role<T, F, Fut>(what: &str, call: F) -> Result<T, Retried>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    retry_while(what, ROLE_PROPAGATION, is_role_not_ready, call).await
}

/// Sends `call` again while `retry` says its error is passing, for at most `limit`, with
/// progress; the last error when time runs out.
async fn retry_while<T, F, Fut>(
    what: &str,
    limit: Duration,
    retry: fn(&AwsError) -> bool,
    mut call: F,
) -> Result<T, Retried>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    // Most of the time the first call goes through; only a refusal starts the wait.
    match call().await {
        Ok(value) => return Ok(value),
        Err(e) if retry(&e) => {
            tracing::info!("{}; trying again", e.text());
        }
        Err(e) => return Err(Retried::Aws(e)),
    }
    let last: std::cell::RefCell<Option<AwsError>> = std::cell::RefCell::new(None);
    let outcome = wait_for::<T, Retried, _, _>(what, limit, || {
        let sent = call();
        let last = &last;
        async move {
            match sent.await {
                Ok(value) => Ok(Poll::Ready(value)),
                Err(e) if retry(&e) => {
                    let status = e.text().to_owned();
                    *last.borrow_mut() = Some(e);
                    Ok(Poll::Pending(status))
                }
                Err(e) => Err(Retried::Aws(e)),
            }
        }
    })
    .await;
    match (outcome, last.into_inner()) {
        (Err(Retried::Timeout(_)), Some(e)) => Err(Retried::Aws(e)),
        (other, _) => other,
    }
}

/// Waits until the cluster is ACTIVE.
pub async fn wait_active(eks: &Client, name: &str, timeout: Duration) -> Result<Cluster, Error> {
    wait_for(&format!("cluster {name} to be ACTIVE"), timeout, || async {
        match describe(eks, name).await? {
            None => Err(Error::ClusterNotFound {
                cluster: name.to_owned(),
                region: "this region (it disappeared while being created)".into(),
            }),
            Some(c) if c.status == "ACTIVE" => Ok(Poll::Ready(c)),
            Some(c) if c.status == "FAILED" || c.status == "DELETING" => Err(Error::ClusterState {
                cluster: name.to_owned(),
                status: c.status,
                hint: "; delete it (eks-cluster delete) and create it again".into(),
            }),
            Some(c) => Ok(Poll::Pending(c.status)),
        }
    })
    .await
}

/// Starts deleting the cluster; false when it was already gone. While EKS answers
/// `ResourceInUseException` (an update in progress) the call is repeated, with progress, for at
/// most `timeout`.
pub async fn delete(eks: &Client, name: &str, timeout: Duration) -> Result<bool, Error> {
    let sent = retry_while(
        &format!("the update in progress on cluster {name} to end before deleting it"),
        timeout,
        is_busy,
        || async {
            // A delete whose answer was lost: EKS may refuse the retry while the cluster is
            // DELETING; then the delete went through.
            match removed(eks.delete_cluster().name(name).send().await) {
                Err(source) if is_busy(&source) => match describe(eks, name).await {
                    Ok(None) => Ok(false),
                    Ok(Some(c)) if c.status == "DELETING" => Ok(true),
                    _ => Err(source),
                },
                other => other,
            }
        },
    )
    .await;
    sent.map_err(|e| match e {
        Retried::Aws(source) => Error::DeleteCluster {
            cluster: name.to_owned(),
            source,
        },
        Retried::Timeout(t) => Error::Timeout(t),
    })
}

/// Waits until the cluster is gone.
pub async fn wait_gone(eks: &Client, name: &str, timeout: Duration) -> Result<(), Error> {
    wait_for(
        &format!("cluster {name} to be deleted"),
        timeout,
        || async {
            Ok(match describe(eks, name).await? {
                None => Poll::Ready(()),
                Some(c) => Poll::Pending(c.status),
            })
        },
    )
    .await
}

/// A Fargate profile as EKS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub status: String,
    pub namespaces: Vec<String>,
    pub subnets: Vec<String>,
    pub pod_execution_role_arn: String,
    pub health: String,
    /// The value of its [`OWNER_TAG`]: the cluster that made it, when eks-cluster made it.
    pub owner: Option<String>,
}

/// The profile, `None` when it does not exist (or the cluster does not).
pub async fn describe_profile(
    eks: &Client,
    cluster: &str,
    name: &str,
) -> Result<Option<Profile>, Error> {
    match eks
        .describe_fargate_profile()
        .cluster_name(cluster)
        .fargate_profile_name(name)
        .send()
        .await
    {
        Ok(answer) => Ok(answer.fargate_profile().map(|p| Profile {
            name: p.fargate_profile_name().unwrap_or(name).to_owned(),
            status: p
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            namespaces: p
                .selectors()
                .iter()
                .filter_map(|s| s.namespace().map(str::to_owned))
                .collect(),
            subnets: p.subnets().to_vec(),
            pod_execution_role_arn: p.pod_execution_role_arn().unwrap_or_default().to_owned(),
            health: p
                .health()
                .map(|h| {
                    h.issues()
                        .iter()
                        .map(|i| i.message().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default(),
            owner: p
                .tags()
                .and_then(|t| t.get(OWNER_TAG))
                .map(|v| v.to_owned()),
        })),
        Err(e) => {
            let source = AwsError::from(e);
            if not_found(&source) {
                Ok(None)
            } else {
                Err(Error::DescribeFargateProfile {
                    cluster: cluster.to_owned(),
                    profile: name.to_owned(),
                    source,
                })
            }
        }
    }
}

/// The names of the cluster's Fargate profiles; empty when the cluster is gone.
pub async fn list_profiles(eks: &Client, cluster: &str) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let answer = match eks
            .list_fargate_profiles()
            .cluster_name(cluster)
            .set_next_token(token)
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                let source = AwsError::from(e);
                if not_found(&source) {
                    return Ok(names);
                }
                return Err(Error::ListFargateProfiles {
                    cluster: cluster.to_owned(),
                    source,
                });
            }
        };
        names.extend(answer.fargate_profile_names().iter().cloned());
        token = answer.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(names);
        }
    }
}

/// What `CreateFargateProfile` sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSpec {
    pub cluster: String,
    pub name: String,
    pub namespaces: Vec<String>,
    pub subnets: Vec<String>,
    pub pod_execution_role_arn: String,
}

impl ProfileSpec {
    /// True when `profile` is what this asks for (selectors and subnets in any order).
    pub fn matches(&self, profile: &Profile) -> bool {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        sorted(&self.namespaces) == sorted(&profile.namespaces)
            && sorted(&self.subnets) == sorted(&profile.subnets)
            && self.pod_execution_role_arn == profile.pod_execution_role_arn
    }
}

/// True for the errors worth sending `CreateFargateProfile` again for: the new pod execution
/// role not visible to EKS yet, or another profile of the cluster being created or deleted.
fn create_profile_passing(source: &AwsError) -> bool {
    is_role_not_ready(source) || is_busy(source)
}

/// Creates the profile and waits until it is ACTIVE. EKS makes one profile of a cluster at a
/// time: while another is CREATING or DELETING the call is repeated (within `timeout`).
pub async fn create_profile(
    eks: &Client,
    spec: &ProfileSpec,
    timeout: Duration,
) -> Result<(), Error> {
    let selectors: Vec<FargateProfileSelector> = spec
        .namespaces
        .iter()
        .map(|ns| FargateProfileSelector::builder().namespace(ns).build())
        .collect();
    let token = common::owner::client_token();
    let sent = retry_while(
        &format!(
            "EKS to accept Fargate profile {} (another profile of {} is changing, or role {} is not usable yet)",
            spec.name, spec.cluster, spec.pod_execution_role_arn
        ),
        timeout.max(ROLE_PROPAGATION),
        create_profile_passing,
        || async {
            let sent = eks
                .create_fargate_profile()
                .cluster_name(&spec.cluster)
                .fargate_profile_name(&spec.name)
                .pod_execution_role_arn(&spec.pod_execution_role_arn)
                .set_subnets(Some(spec.subnets.clone()))
                .set_selectors(Some(selectors.clone()))
                .set_tags(Some(
                    common::owner::tags(&spec.cluster, STEP)
                        .into_iter()
                        .collect(),
                ))
                .client_request_token(&token)
                .send()
                .await;
            let source = match sent {
                Ok(_) => return Ok(false),
                Err(e) => AwsError::from(e),
            };
            // A create whose answer was lost: the SDK's retry (or ours, while EKS says a profile
            // of the cluster is CREATING: the one we made) meets the profile it made. It is ours
            // when it carries our tag (the caller found no profile of that name, or deleted it).
            if (is_busy(&source) || common::owner::is_already_exists(&source))
                && let Ok(Some(found)) = describe_profile(eks, &spec.cluster, &spec.name).await
                && found.owner.as_deref() == Some(spec.cluster.as_str())
            {
                return Ok(true);
            }
            Err(source)
        },
    )
    .await;
    match sent {
        Ok(false) => {}
        Ok(true) => tracing::info!(
            "Fargate profile {} exists and carries our tag: the answer to our CreateFargateProfile was lost; going on with it",
            spec.name
        ),
        Err(Retried::Timeout(t)) => return Err(Error::Timeout(t)),
        Err(Retried::Aws(source)) => {
            return Err(Error::CreateFargateProfile {
                cluster: spec.cluster.clone(),
                profile: spec.name.clone(),
                source,
            });
        }
    }
    wait_profile_active(eks, &spec.cluster, &spec.name, timeout).await
}

/// Waits until the profile is ACTIVE.
pub async fn wait_profile_active(
    eks: &Client,
    cluster: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), Error> {
    wait_for(
        &format!("Fargate profile {name} to be ACTIVE"),
        timeout,
        || async {
            match describe_profile(eks, cluster, name).await? {
                Some(p) if p.status == "ACTIVE" => Ok(Poll::Ready(())),
                Some(p) if p.status.ends_with("FAILED") || p.status == "DELETING" => {
                    Err(Error::FargateProfileFailed {
                        cluster: cluster.to_owned(),
                        profile: name.to_owned(),
                        status: p.status,
                        reasons: if p.health.is_empty() {
                            "EKS gave no reason".into()
                        } else {
                            p.health
                        },
                    })
                }
                Some(p) => Ok(Poll::Pending(p.status)),
                None => Ok(Poll::Pending("not visible yet".into())),
            }
        },
    )
    .await
}

/// Deletes the profile and waits until it is gone; false when it was not there. While another
/// profile of the cluster is being created or deleted, EKS refuses: the call is repeated
/// (within `timeout`).
pub async fn delete_profile(
    eks: &Client,
    cluster: &str,
    name: &str,
    timeout: Duration,
) -> Result<bool, Error> {
    let existed = match describe_profile(eks, cluster, name).await? {
        None => return Ok(false),
        Some(p) if p.status == "DELETING" => true,
        Some(_) => {
            tracing::info!("deleting Fargate profile {name} of cluster {cluster}");
            retry_while(
                &format!("EKS to accept deleting Fargate profile {name} (another profile of {cluster} is changing)"),
                timeout,
                is_busy,
                || async {
                    let sent = removed(
                        eks.delete_fargate_profile()
                            .cluster_name(cluster)
                            .fargate_profile_name(name)
                            .send()
                            .await,
                    );
                    // A delete whose answer was lost: the retry is told a profile of the cluster
                    // is DELETING, the very one. Gone or DELETING, the delete went through.
                    match sent {
                        Err(source) if is_busy(&source) => {
                            match describe_profile(eks, cluster, name).await {
                                Ok(None) => Ok(false),
                                Ok(Some(p)) if p.status == "DELETING" => Ok(true),
                                _ => Err(source),
                            }
                        }
                        other => other,
                    }
                },
            )
            .await
            .map_err(|e| match e {
                Retried::Aws(source) => Error::DeleteFargateProfile {
                    cluster: cluster.to_owned(),
                    profile: name.to_owned(),
                    source,
                },
                Retried::Timeout(t) => Error::Timeout(t),
            })?
        }
    };
    if !existed {
        return Ok(false);
    }
    wait_profile_gone(eks, cluster, name, timeout).await?;
    Ok(true)
}

/// Waits until the profile is gone.
pub async fn wait_profile_gone(
    eks: &Client,
    cluster: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), Error> {
    wait_for::<_, Error, _, _>(
        &format!("Fargate profile {name} to be deleted"),
        timeout,
        || async {
            Ok(match describe_profile(eks, cluster, name).await? {
                None => Poll::Ready(()),
                Some(p) => Poll::Pending(p.status),
            })
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(code: &str, text: &str) -> AwsError {
        AwsError::from(aws_sdk_eks::error::SdkError::<
            aws_sdk_eks::operation::delete_cluster::DeleteClusterError,
            (),
        >::service_error(
            aws_sdk_eks::operation::delete_cluster::DeleteClusterError::generic(
                aws_sdk_eks::error::ErrorMetadata::builder()
                    .code(code)
                    .message(text)
                    .build(),
            ),
            (),
        ))
    }

    #[test]
    fn the_forms_of_busy() {
        // Gone is common::cluster::not_found, tested there.
        assert!(not_found(&aws(
            "ClientException",
            "No cluster found for name: c."
        )));
        assert!(is_busy(&aws(
            "ResourceInUseException",
            "Cannot delete cluster c because it currently has update u in progress"
        )));
        assert!(!is_busy(&aws(
            "ResourceInUseException",
            "A Fargate Profile already exists with this name in this cluster."
        )));
        assert!(!is_busy(&aws("InvalidParameterException", "role")));
    }
}
