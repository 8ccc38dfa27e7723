//! Network interfaces that outlive what they belong to, and what they block, made as hard as
//! AWS on top of moto:
//!
//! - [`ElbInterfaceSim`]: ELB's side of an ALB. For every Ingress of class `alb` that has its
//!   load balancer (a host name in its status) and names a security group in
//!   `alb.ingress.kubernetes.io/security-groups`, a network interface in a subnet of that
//!   group's VPC, in the group, described `ELB app/<name>/<id>` as ELB describes its own; when
//!   the Ingress is gone (the controller deleted the ALB and released the finalizer), the
//!   interface stays for a while ([`ElbInterfaceSim::linger`]) before it goes, as real ALB
//!   interfaces stay for minutes.
//! - [`DependencyRules`]: proxy rules for what such an interface blocks. moto deletes a security
//!   group that an interface uses, and its CloudFormation deletes a stack synchronously whatever
//!   its resources' dependents. Real EC2 answers `DeleteSecurityGroup` with `DependencyViolation`
//!   ("resource sg-… has a dependent object"), and a CloudFormation stack whose security group
//!   (or subnet) still has an interface goes `DELETE_IN_PROGRESS`, then `DELETE_FAILED`, and
//!   stays, with the resource's failure in its events; a later `DeleteStack` tries again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use futures::StreamExt;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::awsproxy::{AwsProxy, AwsReply, AwsRequest, Verdict};

/// The annotation that names the ALB's security groups.
pub const SECURITY_GROUPS_ANNOTATION: &str = "alb.ingress.kubernetes.io/security-groups";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An SDK configuration for moto at `endpoint`.
pub async fn moto_config(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    let creds = aws_credential_types::Credentials::new("testing", "testing", None, None, "testbed");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .load()
        .await
}

/// The interfaces (id, description) that use a security group, in moto.
async fn interfaces_using_group(
    ec2: &aws_sdk_ec2::Client,
    group: &str,
) -> Result<Vec<(String, String)>, String> {
    let answer = ec2
        .describe_network_interfaces()
        .filters(Filter::builder().name("group-id").values(group).build())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(answer
        .network_interfaces()
        .iter()
        .map(|n| {
            (
                n.network_interface_id().unwrap_or_default().to_owned(),
                n.description().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

/// The interfaces in a subnet that are not a NAT gateway's (the stack deletes those itself).
async fn interfaces_in_subnet(
    ec2: &aws_sdk_ec2::Client,
    subnet: &str,
) -> Result<Vec<(String, String)>, String> {
    let answer = ec2
        .describe_network_interfaces()
        .filters(Filter::builder().name("subnet-id").values(subnet).build())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let nat = ec2
        .describe_nat_gateways()
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let nat_enis: Vec<&str> = nat
        .nat_gateways()
        .iter()
        .flat_map(|n| n.nat_gateway_addresses())
        .filter_map(|a| a.network_interface_id())
        .collect();
    Ok(answer
        .network_interfaces()
        .iter()
        .filter(|n| !nat_enis.contains(&n.network_interface_id().unwrap_or_default()))
        .map(|n| {
            (
                n.network_interface_id().unwrap_or_default().to_owned(),
                n.description().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

/// ELB's network interfaces for the simulated ALBs (see the module documentation). Stops on
/// drop; interfaces waiting out their linger are still deleted.
#[derive(Debug)]
pub struct ElbInterfaceSim {
    task: tokio::task::JoinHandle<()>,
    made: Arc<Mutex<BTreeMap<(String, String), String>>>,
    linger: Duration,
}

impl ElbInterfaceSim {
    /// How long an interface stays after its load balancer went, by default (real ones: minutes).
    pub const DEFAULT_LINGER: Duration = Duration::from_secs(4);

    /// Starts it, making interfaces in moto at `moto_endpoint` (`Moto::endpoint`, not through a
    /// proxy: ELB is not the step under test) that stay `linger` after their Ingress is gone.
    /// Call inside a tokio runtime.
    pub fn start(client: Client, moto_endpoint: &str, region: &str, linger: Duration) -> Self {
        let made: Arc<Mutex<BTreeMap<(String, String), String>>> = Arc::default();
        let task = tokio::spawn(run(
            client,
            moto_endpoint.to_owned(),
            region.to_owned(),
            linger,
            made.clone(),
        ));
        ElbInterfaceSim { task, made, linger }
    }

    /// The interface of the ALB of `namespace/name`, while its Ingress exists.
    pub fn interface(&self, namespace: &str, name: &str) -> Option<String> {
        lock(&self.made)
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// How long an interface stays after its Ingress is gone.
    pub fn linger(&self) -> Duration {
        self.linger
    }
}

impl Drop for ElbInterfaceSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn has_load_balancer(ingress: &Ingress) -> bool {
    ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .is_some_and(|list| list.iter().any(|i| i.hostname.is_some()))
}

fn is_alb(ingress: &Ingress) -> bool {
    ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        == Some("alb")
        || ingress
            .annotations()
            .get("kubernetes.io/ingress.class")
            .map(String::as_str)
            == Some("alb")
}

/// Makes the interface of an ALB: in the first subnet (by id) of the group's VPC, preferring
/// subnets tagged `kubernetes.io/role/elb`, as the controller picks public subnets. Described
/// `ELB app/<alb_name>/<16 hex digits>`, as ELB describes them. Its id.
pub async fn make_interface(
    ec2: &aws_sdk_ec2::Client,
    group: &str,
    alb_name: &str,
) -> Result<String, String> {
    let groups = ec2
        .describe_security_groups()
        .group_ids(group)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let vpc = groups
        .security_groups()
        .first()
        .and_then(|g| g.vpc_id())
        .ok_or_else(|| format!("no VPC for {group}"))?
        .to_owned();
    let subnets = ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut candidates: Vec<(bool, String)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            let public = s
                .tags()
                .iter()
                .any(|t| t.key() == Some("kubernetes.io/role/elb"));
            (!public, s.subnet_id().unwrap_or_default().to_owned())
        })
        .collect();
    candidates.sort();
    let subnet = candidates
        .first()
        .map(|(_, id)| id.clone())
        .ok_or_else(|| format!("no subnet in {vpc}"))?;
    let id = format!(
        "{:016x}",
        alb_name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    );
    let made = ec2
        .create_network_interface()
        .subnet_id(subnet)
        .groups(group)
        .description(format!("ELB app/{alb_name}/{id}"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    made.network_interface()
        .and_then(|n| n.network_interface_id())
        .map(str::to_owned)
        .ok_or_else(|| "no interface id".to_owned())
}

async fn run(
    client: Client,
    endpoint: String,
    region: String,
    linger: Duration,
    made: Arc<Mutex<BTreeMap<(String, String), String>>>,
) {
    let ec2 = aws_sdk_ec2::Client::new(&moto_config(&endpoint, &region).await);
    let all: Api<Ingress> = Api::all(client);
    let mut events = watcher(all, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let Ok(event) = event else { continue };
        let (applied, deleted): (Vec<Ingress>, Vec<Ingress>) = match event {
            watcher::Event::Apply(i) | watcher::Event::InitApply(i) => (vec![i], vec![]),
            watcher::Event::Delete(i) => (vec![], vec![i]),
            _ => continue,
        };
        for ingress in deleted {
            let key = (ingress.namespace().unwrap_or_default(), ingress.name_any());
            if let Some(eni) = lock(&made).remove(&key) {
                let ec2 = ec2.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(linger).await;
                    let _ = ec2
                        .delete_network_interface()
                        .network_interface_id(eni)
                        .send()
                        .await;
                });
            }
        }
        for ingress in applied {
            let key = (ingress.namespace().unwrap_or_default(), ingress.name_any());
            if !is_alb(&ingress) || !has_load_balancer(&ingress) || lock(&made).contains_key(&key) {
                continue;
            }
            let Some(group) = ingress
                .annotations()
                .get(SECURITY_GROUPS_ANNOTATION)
                .and_then(|g| g.split(',').map(str::trim).find(|g| g.starts_with("sg-")))
                .map(str::to_owned)
            else {
                continue;
            };
            let alb_name = format!("k8s-{}-{}", key.0, key.1);
            if let Ok(eni) = make_interface(&ec2, &group, &alb_name).await {
                lock(&made).insert(key, eni);
            }
        }
    }
}

/// A stack delete CloudFormation could not finish.
#[derive(Debug, Clone)]
struct FailedDelete {
    name: String,
    since: Instant,
    logical_id: String,
    physical_id: String,
    resource_type: String,
    reason: String,
}

/// The proxy rules of the module documentation: `DeleteSecurityGroup` on a group in use is
/// `DependencyViolation`; `DeleteStack` of a stack whose security group or subnet still has a
/// network interface leaves the stack `DELETE_IN_PROGRESS` for [`DependencyRules::in_progress`],
/// then `DELETE_FAILED`.
#[derive(Debug, Clone)]
pub struct DependencyRules {
    moto: String,
    in_progress: Duration,
    failed: Arc<Mutex<BTreeMap<String, FailedDelete>>>,
}

impl DependencyRules {
    /// Rules that look things up in moto at `moto_endpoint` (`Moto::endpoint`).
    pub fn new(moto_endpoint: &str) -> DependencyRules {
        DependencyRules {
            moto: moto_endpoint.to_owned(),
            in_progress: Duration::from_millis(800),
            failed: Arc::default(),
        }
    }

    /// How long a failing delete shows `DELETE_IN_PROGRESS` before `DELETE_FAILED`.
    pub fn in_progress(mut self, time: Duration) -> Self {
        self.in_progress = time;
        self
    }

    /// How many stack deletes failed so far.
    pub fn failed_deletes(&self) -> usize {
        lock(&self.failed).len()
    }

    /// Installs the rules and rewriters on `proxy`.
    pub fn install(&self, proxy: &AwsProxy) {
        let me = self.clone();
        proxy.async_rule(move |r| {
            let me = me.clone();
            async move { me.decide(r).await }
        });
        let me = self.clone();
        proxy.rewrite(move |r, reply| me.rewrite(r, reply));
    }

    async fn decide(&self, request: AwsRequest) -> Verdict {
        match (request.service.as_str(), request.action.as_str()) {
            ("ec2", "DeleteSecurityGroup") => {
                let Some(group) = request.param("GroupId") else {
                    return Verdict::Pass;
                };
                let config = moto_config(&self.moto, &request.region).await;
                let ec2 = aws_sdk_ec2::Client::new(&config);
                match interfaces_using_group(&ec2, &group).await {
                    Ok(found) if !found.is_empty() => Verdict::Reply(AwsReply::error(
                        &request,
                        400,
                        "DependencyViolation",
                        &format!("resource {group} has a dependent object"),
                    )),
                    _ => Verdict::Pass,
                }
            }
            ("cloudformation", "DeleteStack") => self.delete_stack(&request).await,
            _ => Verdict::Pass,
        }
    }

    async fn delete_stack(&self, request: &AwsRequest) -> Verdict {
        let Some(stack) = request.param("StackName") else {
            return Verdict::Pass;
        };
        let config = moto_config(&self.moto, &request.region).await;
        let cfn = aws_sdk_cloudformation::Client::new(&config);
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let Ok(described) = cfn.describe_stacks().stack_name(&stack).send().await else {
            return Verdict::Pass;
        };
        // A deleted stack (a `DeleteStack` sent again after its answer was lost) has nothing
        // left to block; its resources must not be asked for either: moto 5.2.5 makes a deleted
        // stack's resources again when `DescribeStackResources` names it by its id.
        let Some((id, name)) = described
            .stacks()
            .first()
            .filter(|s| {
                s.stack_status()
                    .is_some_and(|status| status.as_str() != "DELETE_COMPLETE")
            })
            .map(|s| {
                (
                    s.stack_id().unwrap_or_default().to_owned(),
                    s.stack_name().unwrap_or_default().to_owned(),
                )
            })
        else {
            return Verdict::Pass;
        };
        let Ok(resources) = cfn.describe_stack_resources().stack_name(&id).send().await else {
            return Verdict::Pass;
        };
        let mut blocked = None;
        for resource in resources.stack_resources() {
            let kind = resource.resource_type().unwrap_or_default();
            let Some(physical) = resource.physical_resource_id() else {
                continue;
            };
            let found = match kind {
                "AWS::EC2::SecurityGroup" => interfaces_using_group(&ec2, physical).await,
                "AWS::EC2::Subnet" => interfaces_in_subnet(&ec2, physical).await,
                _ => continue,
            };
            if let Ok(found) = found
                && !found.is_empty()
            {
                let reason = if kind == "AWS::EC2::Subnet" {
                    format!(
                        "The subnet '{physical}' has dependencies and cannot be deleted. (Service: Ec2, Status Code: 400, Request ID: eks-fa-awsproxy) (SDK Attempt Count: 1)"
                    )
                } else {
                    format!(
                        "resource {physical} has a dependent object (Service: Ec2, Status Code: 400, Request ID: eks-fa-awsproxy) (SDK Attempt Count: 1)"
                    )
                };
                blocked = Some(FailedDelete {
                    name: name.clone(),
                    since: Instant::now(),
                    logical_id: resource
                        .logical_resource_id()
                        .unwrap_or_default()
                        .to_owned(),
                    physical_id: physical.to_owned(),
                    resource_type: kind.to_owned(),
                    reason,
                });
                break;
            }
        }
        match blocked {
            Some(failed) => {
                lock(&self.failed).insert(id, failed);
                Verdict::Reply(AwsReply {
                    status: 200,
                    headers: vec![("content-type".into(), "text/xml".into())],
                    body: b"<DeleteStackResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><ResponseMetadata><RequestId>eks-fa-awsproxy</RequestId></ResponseMetadata></DeleteStackResponse>".to_vec(),
                })
            }
            None => {
                lock(&self.failed).remove(&id);
                Verdict::Pass
            }
        }
    }

    fn rewrite(&self, request: &AwsRequest, reply: &mut AwsReply) {
        if request.service != "cloudformation" || reply.status != 200 {
            return;
        }
        let failed = lock(&self.failed).clone();
        if failed.is_empty() {
            return;
        }
        let mut body = reply.text();
        match request.action.as_str() {
            "DescribeStacks" => {
                for (id, f) in &failed {
                    let status = if f.since.elapsed() < self.in_progress {
                        "DELETE_IN_PROGRESS".to_owned()
                    } else {
                        format!(
                            "DELETE_FAILED</StackStatus><StackStatusReason>The following resource(s) failed to delete: [{}]. </StackStatusReason><StackStatus-end>",
                            f.logical_id
                        )
                    };
                    body = set_stack_status(&body, id, &status);
                }
            }
            "DescribeStackEvents" => {
                let asked = request.param("StackName").unwrap_or_default();
                let Some((id, f)) = failed
                    .iter()
                    .find(|(id, f)| **id == asked || f.name == asked)
                else {
                    return;
                };
                if f.since.elapsed() < self.in_progress {
                    return;
                }
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let event = |logical: &str, physical: &str, kind: &str, reason: &str| {
                    format!(
                        "<member><StackId>{id}</StackId><EventId>{logical}-DELETE_FAILED</EventId><StackName>{}</StackName><LogicalResourceId>{logical}</LogicalResourceId><PhysicalResourceId>{physical}</PhysicalResourceId><ResourceType>{kind}</ResourceType><Timestamp>{now}</Timestamp><ResourceStatus>DELETE_FAILED</ResourceStatus><ResourceStatusReason>{reason}</ResourceStatusReason></member>",
                        f.name
                    )
                };
                let events = format!(
                    "{}{}",
                    event(
                        &f.name,
                        id,
                        "AWS::CloudFormation::Stack",
                        &format!(
                            "The following resource(s) failed to delete: [{}]. ",
                            f.logical_id
                        )
                    ),
                    event(&f.logical_id, &f.physical_id, &f.resource_type, &f.reason)
                );
                body = body.replacen("<StackEvents>", &format!("<StackEvents>{events}"), 1);
            }
            _ => return,
        }
        reply.body = body.into_bytes();
    }
}

/// The XML with the `StackStatus` of the stack `id` (the first after its `StackId`) set to
/// `status` (which may carry a `StackStatusReason` after it, see the caller).
fn set_stack_status(xml: &str, id: &str, status: &str) -> String {
    let marker = format!("<StackId>{id}</StackId>");
    let Some(at) = xml.find(&marker) else {
        return xml.to_owned();
    };
    let rest = &xml[at..];
    let Some(open) = rest.find("<StackStatus>") else {
        return xml.to_owned();
    };
    let value_start = at + open + "<StackStatus>".len();
    let Some(close) = xml[value_start..].find("</StackStatus>") else {
        return xml.to_owned();
    };
    let mut after = &xml[value_start + close + "</StackStatus>".len()..];
    // A reason moto gave goes: ours replaces it.
    if status.contains("<StackStatusReason>")
        && let Some(tail) = after.strip_prefix("<StackStatusReason>")
        && let Some(end) = tail.find("</StackStatusReason>")
    {
        after = &tail[end + "</StackStatusReason>".len()..];
    }
    let status = status.replace("<StackStatus-end>", "");
    let closing = if status.contains("</StackStatus>") {
        ""
    } else {
        "</StackStatus>"
    };
    format!("{}{status}{closing}{after}", &xml[..value_start])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_of_one_stack_is_set() {
        let xml = "<Stacks><member><StackId>a</StackId><Parameters><member><ParameterKey>k</ParameterKey></member></Parameters><StackStatus>CREATE_COMPLETE</StackStatus><Tags/></member><member><StackId>b</StackId><StackStatus>CREATE_COMPLETE</StackStatus></member></Stacks>";
        let busy = set_stack_status(xml, "a", "DELETE_IN_PROGRESS");
        assert_eq!(
            busy,
            xml.replacen("CREATE_COMPLETE", "DELETE_IN_PROGRESS", 1)
        );
        let failed = set_stack_status(
            xml,
            "b",
            "DELETE_FAILED</StackStatus><StackStatusReason>why</StackStatusReason><StackStatus-end>",
        );
        assert!(
            failed.ends_with("<StackId>b</StackId><StackStatus>DELETE_FAILED</StackStatus><StackStatusReason>why</StackStatusReason></member></Stacks>"),
            "{failed}"
        );
        assert_eq!(set_stack_status(xml, "c", "X"), xml);
    }
}
