//! A cluster's configuration as EKS keeps and reports it, where moto 5.2.5 does not:
//!
//! - `CreateCluster`'s `accessConfig` and `upgradePolicy` are dropped by moto; EKS reports
//!   `accessConfig.authenticationMode` (`CONFIG_MAP` when an API call gave none) and
//!   `upgradePolicy.supportType` (`EXTENDED` when none was given) in every answer about the
//!   cluster;
//! - EKS fills in the endpoint settings of `resourcesVpcConfig` (`endpointPublicAccess` true,
//!   `endpointPrivateAccess` false, `publicAccessCidrs` `["0.0.0.0/0"]`); moto reports what was
//!   sent;
//! - `UpdateClusterConfig` of the endpoint settings merges them into the cluster's (moto replaces
//!   the whole `resourcesVpcConfig`, dropping its subnets), answers an `update` (moto answers the
//!   cluster), refuses an update that changes nothing (`InvalidParameterException` "Cluster is
//!   already at the desired configuration ...") and one while another is in progress
//!   (`ResourceInUseException`), and leaves the cluster `UPDATING` for a number of describes.
//!
//! [`ClusterConfig::created`] and [`ClusterConfig::updates`] tell a test what EKS accepted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{EksOp, eks_op, in_use, json_reply, lock};
use crate::awsproxy::{AwsProxy, AwsReply, AwsRequest, Verdict};

/// `accessConfig.authenticationMode` of a cluster made through the API without one.
pub const DEFAULT_AUTHENTICATION_MODE: &str = "CONFIG_MAP";
/// `upgradePolicy.supportType` of a cluster made without one.
pub const DEFAULT_SUPPORT_TYPE: &str = "EXTENDED";
/// What `publicAccessCidrs` is when none were given.
pub const OPEN_TO_ALL: &str = "0.0.0.0/0";

/// The endpoint settings an `UpdateClusterConfig` may change.
const ENDPOINT_KEYS: [&str; 3] = [
    "endpointPublicAccess",
    "endpointPrivateAccess",
    "publicAccessCidrs",
];

type Key = (String, String);

#[derive(Debug, Clone)]
struct Settings {
    authentication_mode: String,
    bootstrap_admin: bool,
    support_type: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            authentication_mode: DEFAULT_AUTHENTICATION_MODE.into(),
            bootstrap_admin: true,
            support_type: DEFAULT_SUPPORT_TYPE.into(),
        }
    }
}

#[derive(Debug, Default)]
struct Kept {
    settings: BTreeMap<Key, Settings>,
    /// Clusters with an update in progress: its id and the describes left.
    updating: BTreeMap<Key, (String, u32)>,
    created: Vec<Value>,
    updates: Vec<(String, Value)>,
    update_count: u32,
}

/// The rules (see the module documentation).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    updating_describes: u32,
    kept: Arc<Mutex<Kept>>,
}

impl ClusterConfig {
    /// After an accepted endpoint update the cluster answers `UPDATING` to the next
    /// `updating_describes` describes.
    pub fn new(updating_describes: u32) -> ClusterConfig {
        ClusterConfig {
            updating_describes,
            kept: Arc::default(),
        }
    }

    /// The bodies of the `CreateCluster` calls EKS accepted, in order.
    pub fn created(&self) -> Vec<Value> {
        lock(&self.kept).created.clone()
    }

    /// The endpoint updates EKS accepted: the cluster and the `resourcesVpcConfig` asked for.
    pub fn updates(&self) -> Vec<(String, Value)> {
        lock(&self.kept).updates.clone()
    }

    /// Installs the rule and the rewriter on `proxy`; moto is asked directly at
    /// `moto_endpoint`.
    pub fn install(&self, proxy: &AwsProxy, moto_endpoint: &str) {
        let me = self.clone();
        let endpoint = moto_endpoint.to_owned();
        proxy.async_rule(move |request| {
            let (me, endpoint) = (me.clone(), endpoint.clone());
            async move { me.update(&endpoint, request).await }
        });
        let me = self.clone();
        proxy.rewrite(move |request, reply| me.after_moto(request, reply));
    }

    fn after_moto(&self, request: &AwsRequest, reply: &mut AwsReply) {
        if reply.status != 200 {
            return;
        }
        let op = eks_op(request);
        let name = match &op {
            EksOp::CreateCluster => request
                .json()
                .and_then(|b| b["name"].as_str().map(str::to_owned))
                .unwrap_or_default(),
            EksOp::DescribeCluster(name) => name.clone(),
            _ => return,
        };
        let Ok(mut body) = serde_json::from_slice::<Value>(&reply.body) else {
            return;
        };
        let key = (request.region.clone(), name);
        let mut kept = lock(&self.kept);
        if op == EksOp::CreateCluster {
            let sent = request.json().unwrap_or(Value::Null);
            let mut settings = Settings::default();
            if let Some(mode) = sent["accessConfig"]["authenticationMode"].as_str() {
                settings.authentication_mode = mode.to_owned();
            }
            if let Some(bootstrap) =
                sent["accessConfig"]["bootstrapClusterCreatorAdminPermissions"].as_bool()
            {
                settings.bootstrap_admin = bootstrap;
            }
            if let Some(support) = sent["upgradePolicy"]["supportType"].as_str() {
                settings.support_type = support.to_owned();
            }
            kept.settings.insert(key.clone(), settings);
            kept.created.push(sent);
        }
        let settings = kept.settings.get(&key).cloned().unwrap_or_default();
        let cluster = &mut body["cluster"];
        if !cluster.is_object() {
            return;
        }
        as_eks_reports(cluster, &settings);
        if let Some((_, left)) = kept.updating.get_mut(&key) {
            cluster["status"] = json!("UPDATING");
            *left = left.saturating_sub(1);
            if *left == 0 {
                kept.updating.remove(&key);
            }
        }
        reply.body = body.to_string().into_bytes();
    }

    async fn update(&self, endpoint: &str, request: AwsRequest) -> Verdict {
        let parts: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let name = match (request.method.as_str(), parts.as_slice()) {
            ("POST", ["clusters", name, "update-config"]) if request.service == "eks" => {
                (*name).to_owned()
            }
            _ => return Verdict::Pass,
        };
        let asked = request.json().unwrap_or(Value::Null)["resourcesVpcConfig"].clone();
        if !asked.is_object() {
            return Verdict::Pass;
        }
        let key = (request.region.clone(), name.clone());
        if let Some((id, _)) = lock(&self.kept).updating.get(&key) {
            return in_use(
                &request,
                format!("Cluster {name} has update {id} in progress; wait until it is done"),
            );
        }
        let eks = moto_eks(endpoint, &request.region);
        let Ok(found) = eks.describe_cluster().name(&name).send().await else {
            return Verdict::Pass;
        };
        let Some(vpc) = found.cluster().and_then(|c| c.resources_vpc_config()) else {
            return Verdict::Pass;
        };
        let mut current = json!({
            "subnetIds": vpc.subnet_ids(),
            "securityGroupIds": vpc.security_group_ids(),
            "endpointPublicAccess": vpc.endpoint_public_access(),
            "endpointPrivateAccess": vpc.endpoint_private_access(),
            "publicAccessCidrs": vpc.public_access_cidrs(),
        });
        fill_endpoint_defaults(&mut current);
        let mut merged = current.clone();
        for key in ENDPOINT_KEYS {
            if !asked[key].is_null() {
                merged[key] = asked[key].clone();
            }
        }
        fill_endpoint_defaults(&mut merged);
        if ENDPOINT_KEYS.iter().all(|k| merged[*k] == current[*k]) {
            return Verdict::Reply(AwsReply::error(
                &request,
                400,
                "InvalidParameterException",
                &format!(
                    "Cluster is already at the desired configuration with endpointPrivateAccess: {} , endpointPublicAccess: {}, and publicAccessCidrs: {}",
                    current["endpointPrivateAccess"],
                    current["endpointPublicAccess"],
                    current["publicAccessCidrs"]
                ),
            ));
        }
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let sent = eks
            .update_cluster_config()
            .name(&name)
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .set_subnet_ids(Some(strings(&merged["subnetIds"])))
                    .set_security_group_ids(Some(strings(&merged["securityGroupIds"])))
                    .endpoint_public_access(merged["endpointPublicAccess"] == json!(true))
                    .endpoint_private_access(merged["endpointPrivateAccess"] == json!(true))
                    .set_public_access_cidrs(Some(strings(&merged["publicAccessCidrs"])))
                    .build(),
            )
            .send()
            .await;
        if sent.is_err() {
            return Verdict::Pass;
        }
        let mut kept = lock(&self.kept);
        kept.update_count += 1;
        let id = format!("5c7f3c8e-0000-4000-8000-{:012x}", kept.update_count);
        if self.updating_describes > 0 {
            kept.updating
                .insert(key, (id.clone(), self.updating_describes));
        }
        kept.updates.push((name, asked));
        let params: Vec<Value> = [
            ("EndpointPublicAccess", &merged["endpointPublicAccess"]),
            ("EndpointPrivateAccess", &merged["endpointPrivateAccess"]),
            ("PublicAccessCidrs", &merged["publicAccessCidrs"]),
        ]
        .into_iter()
        .map(|(kind, value)| json!({"type": kind, "value": value.to_string()}))
        .collect();
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Verdict::Reply(json_reply(
            200,
            &json!({"update": {
                "id": id,
                "status": "InProgress",
                "type": "EndpointAccessUpdate",
                "params": params,
                "createdAt": created,
                "errors": [],
            }}),
        ))
    }
}

/// The endpoint settings as EKS fills them in.
fn fill_endpoint_defaults(vpc: &mut Value) {
    if !vpc["endpointPublicAccess"].is_boolean() {
        vpc["endpointPublicAccess"] = json!(true);
    }
    if !vpc["endpointPrivateAccess"].is_boolean() {
        vpc["endpointPrivateAccess"] = json!(false);
    }
    let none = vpc["publicAccessCidrs"]
        .as_array()
        .is_none_or(|a| a.is_empty());
    if none {
        vpc["publicAccessCidrs"] = json!([OPEN_TO_ALL]);
    }
}

/// A cluster object of moto's as EKS reports it.
fn as_eks_reports(cluster: &mut Value, settings: &Settings) {
    cluster["accessConfig"] = json!({
        "authenticationMode": settings.authentication_mode,
        "bootstrapClusterCreatorAdminPermissions": settings.bootstrap_admin,
    });
    cluster["upgradePolicy"] = json!({"supportType": settings.support_type});
    if cluster["resourcesVpcConfig"].is_object() {
        fill_endpoint_defaults(&mut cluster["resourcesVpcConfig"]);
    }
}

fn moto_eks(endpoint: &str, region: &str) -> aws_sdk_eks::Client {
    let config = aws_sdk_eks::Config::builder()
        .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
        .region(aws_sdk_eks::config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "awsrules",
        ))
        .build();
    aws_sdk_eks::Client::from_conf(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_report_what_eks_fills_in() {
        let mut cluster = json!({"name": "c", "resourcesVpcConfig": {"subnetIds": ["subnet-1"]}});
        as_eks_reports(&mut cluster, &Settings::default());
        assert_eq!(cluster["accessConfig"]["authenticationMode"], "CONFIG_MAP");
        assert_eq!(cluster["upgradePolicy"]["supportType"], "EXTENDED");
        assert_eq!(
            cluster["resourcesVpcConfig"],
            json!({
                "subnetIds": ["subnet-1"],
                "endpointPublicAccess": true,
                "endpointPrivateAccess": false,
                "publicAccessCidrs": ["0.0.0.0/0"],
            })
        );
        let mut narrowed = json!({"resourcesVpcConfig": {
            "endpointPublicAccess": true,
            "endpointPrivateAccess": true,
            "publicAccessCidrs": ["203.0.113.0/24"],
        }});
        as_eks_reports(
            &mut narrowed,
            &Settings {
                authentication_mode: "API".into(),
                bootstrap_admin: true,
                support_type: "STANDARD".into(),
            },
        );
        assert_eq!(
            narrowed["resourcesVpcConfig"]["publicAccessCidrs"],
            json!(["203.0.113.0/24"])
        );
        assert_eq!(narrowed["accessConfig"]["authenticationMode"], "API");
        assert_eq!(narrowed["upgradePolicy"]["supportType"], "STANDARD");
    }
}
