//! The cluster's network: the CloudFormation stack we make from [`crate::template`], or a
//! network brought with `--vpc-id` (checked in [`crate::brought`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cfn::{self as cfn_stack, Phase, Spec, Stack};

use crate::error::Error;
use crate::inputs::Ipv4Net;
use crate::template;
use crate::zones::{MAX_STACK_ZONES, ZoneFacts};

/// The longest stack name CloudFormation accepts.
pub const MAX_STACK_NAME: usize = 128;

/// The network the cluster goes into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    pub vpc_id: String,
    pub public_subnet_ids: Vec<String>,
    pub private_subnet_ids: Vec<String>,
    /// Public subnets in a zone without EKS: kept for load balancers, left out of the
    /// cluster's own subnets (EKS would refuse them).
    pub not_for_control_plane: Vec<String>,
}

impl Network {
    /// Leaves the subnets in `refused` zones (ids) out of the cluster and its Fargate profile:
    /// private ones are dropped, public ones kept for load balancers but not given to
    /// `CreateCluster`. `zone_of` gives each subnet's zone; the private subnets dropped, shown
    /// with their zone.
    pub fn leave_out(
        &mut self,
        zone_of: &BTreeMap<String, ZoneFacts>,
        refused: &[String],
    ) -> Vec<String> {
        let in_refused = |id: &String| zone_of.get(id).is_some_and(|z| refused.contains(&z.id));
        let mut dropped = Vec::new();
        self.private_subnet_ids.retain(|id| {
            if in_refused(id) {
                dropped.push(format!("{id} ({})", zone_of[id].shown()));
                false
            } else {
                true
            }
        });
        for id in &self.public_subnet_ids {
            if in_refused(id) && !self.not_for_control_plane.contains(id) {
                self.not_for_control_plane.push(id.clone());
            }
        }
        dropped
    }

    /// The zone names of the private subnets, by `zone_of`.
    pub fn private_zones(&self, zone_of: &BTreeMap<String, ZoneFacts>) -> BTreeSet<String> {
        self.private_subnet_ids
            .iter()
            .filter_map(|id| zone_of.get(id).map(|z| z.name.clone()))
            .collect()
    }

    /// The subnets `CreateCluster` gets: the private ones, then the public ones EKS accepts.
    pub fn cluster_subnet_ids(&self) -> Vec<String> {
        let mut ids = self.private_subnet_ids.clone();
        ids.extend(
            self.public_subnet_ids
                .iter()
                .filter(|id| !self.not_for_control_plane.contains(id))
                .cloned(),
        );
        ids
    }
}

/// `eks-fargate-<cluster>-vpc` (CloudFormation refuses `_`).
pub fn stack_name(cluster: &str) -> String {
    common::names::fit(
        &format!("eks-fargate-{cluster}-vpc").replace('_', "-"),
        MAX_STACK_NAME,
    )
}

fn stack_error(stack: &str) -> impl FnOnce(common::cfn::CfnError) -> Error + use<> {
    let stack = stack.to_owned();
    move |source| Error::NetworkStack { stack, source }
}

/// The stack, `None` when it does not exist.
pub async fn describe_stack(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Option<Stack>, Error> {
    cfn_stack::describe(cfn, stack)
        .await
        .map_err(stack_error(stack))
}

/// The stack's spec for a cluster over `zones` (their names, chosen by [`crate::zones::choose_zones`]).
pub fn spec(cluster: &str, vpc: &Ipv4Net, zones: &[String]) -> Spec {
    let azs = u8::try_from(zones.len()).unwrap_or(u8::MAX);
    let mut parameters = BTreeMap::from([("ClusterName".to_owned(), cluster.to_owned())]);
    for (i, zone) in zones.iter().enumerate() {
        parameters.insert(template::zone_parameter(i + 1), zone.clone());
    }
    Spec {
        name: stack_name(cluster),
        body: template::render_text(vpc, azs),
        parameters,
        tags: common::owner::tags(cluster, crate::eks::STEP),
    }
}

/// The network in a finished stack's outputs.
pub fn from_outputs(stack_name: &str, done: &Stack) -> Result<Network, Error> {
    let output = |key: &'static str| {
        done.outputs
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NetworkStackOutput {
                stack: stack_name.to_owned(),
                output: key,
            })
    };
    Ok(Network {
        vpc_id: output(template::OUTPUT_VPC)?,
        public_subnet_ids: template::split_ids(&output(template::OUTPUT_PUBLIC)?),
        private_subnet_ids: template::split_ids(&output(template::OUTPUT_PRIVATE)?),
        not_for_control_plane: Vec::new(),
    })
}

/// Waits until no operation runs on the stack.
pub async fn settle(
    cfn: &aws_sdk_cloudformation::Client,
    id: &str,
    what: &str,
    timeout: Duration,
) -> Result<Option<Stack>, Error> {
    cfn_stack::settle(cfn, id, what, timeout)
        .await
        .map_err(stack_error(id))
}

/// Starts creating the stack; its id.
pub async fn create_stack(
    cfn: &aws_sdk_cloudformation::Client,
    spec: &Spec,
) -> Result<String, Error> {
    cfn_stack::create(cfn, spec)
        .await
        .map_err(stack_error(&spec.name))
}

/// The zones (names) the stack's template parameters give its subnets, in order.
pub fn stack_zones(stack: &Stack) -> Vec<String> {
    (1..)
        .map_while(|n| stack.parameters.get(&template::zone_parameter(n)).cloned())
        .collect()
}

/// Adds a public and a private subnet in each of `zones` to the network stack (an update that
/// only adds resources: the subnets of the zones it spans, its NAT gateway and route tables are
/// kept), and waits for it; the network it then has. The stack must be ours, made from this
/// template: its VPC CIDR is read from the deployed template.
pub async fn add_zones(
    cfn: &aws_sdk_cloudformation::Client,
    cluster: &str,
    zones: &[String],
    timeout: Duration,
) -> Result<Network, Error> {
    let name = stack_name(cluster);
    let refuse = |reason: String| Error::NetworkStackZones {
        stack: name.clone(),
        reason,
    };
    let Some(stack) = describe_stack(cfn, &name).await? else {
        return Err(refuse("it does not exist".into()));
    };
    if cfn_stack::phase(&stack.status) != Phase::Complete
        && cfn_stack::phase(&stack.status) != Phase::UpdateRolledBack
    {
        return Err(refuse(format!("it is {}", stack.status)));
    }
    let spans = stack_zones(&stack);
    let deployed = cfn_stack::deployed_template(cfn, &stack.id)
        .await
        .map_err(stack_error(&name))?;
    let cidr = deployed
        .as_ref()
        .and_then(|t| t["Resources"]["Vpc"]["Properties"]["CidrBlock"].as_str())
        .and_then(|c| crate::inputs::check_vpc_cidr(c).ok());
    let Some(cidr) = cidr else {
        return Err(refuse(
            "its template has no VPC CIDR eks-cluster can read".into(),
        ));
    };
    let count = u8::try_from(spans.len()).unwrap_or(u8::MAX);
    if deployed.as_ref() != Some(&template::render(&cidr, count)) {
        return Err(refuse(
            "it was made by another version of eks-cluster's template, which is not changed in place"
                .into(),
        ));
    }
    let all: Vec<String> = spans.iter().chain(zones).cloned().collect();
    if all.len() > usize::from(MAX_STACK_ZONES) {
        return Err(refuse(format!(
            "it spans {} zone(s) ({}), and its VPC takes subnets of {MAX_STACK_ZONES} zones at most",
            spans.len(),
            spans.join(", ")
        )));
    }
    let spec = spec(cluster, &cidr, &all);
    tracing::info!(
        "adding public and private subnets in {} to network stack {name} (it spans {})",
        zones.join(", "),
        spans.join(", ")
    );
    cfn_stack::update(cfn, &spec)
        .await
        .map_err(stack_error(&name))?;
    match settle(cfn, &stack.id, &format!("network stack {name}"), timeout).await? {
        Some(s) if cfn_stack::phase(&s.status) == Phase::Complete => from_outputs(&name, &s),
        Some(s) => Err(Error::NetworkStackFailed {
            stack: name.clone(),
            reasons: cfn_stack::failure_reasons(cfn, &stack.id).await,
            left: format!(
                "The stack ({}) is left in {}, as it was before; run create again to retry.",
                stack.id, s.status
            ),
            status: s.status,
        }),
        None => Err(Error::NetworkStackFailed {
            stack: name.clone(),
            status: "DELETE_COMPLETE".into(),
            reasons: "the stack disappeared while this step worked on it".into(),
            left: "Nothing of it is left; run again to create it.".into(),
        }),
    }
}

/// Waits for a create to end and explains a failure.
pub async fn finish_create(
    cfn: &aws_sdk_cloudformation::Client,
    id: &str,
    name: &str,
    timeout: Duration,
) -> Result<Stack, Error> {
    match settle(cfn, id, &format!("network stack {name}"), timeout).await? {
        Some(s) if cfn_stack::phase(&s.status) == Phase::Complete => Ok(s),
        Some(s) => Err(Error::NetworkStackFailed {
            stack: name.to_owned(),
            reasons: cfn_stack::failure_reasons(cfn, id).await,
            left: format!(
                "The stack ({id}) is left in {}; the next `eks-cluster create` replaces it, `eks-cluster delete` removes it.",
                s.status
            ),
            status: s.status,
        }),
        None => Err(Error::NetworkStackFailed {
            stack: name.to_owned(),
            status: "DELETE_COMPLETE".into(),
            reasons: "the stack disappeared while this step worked on it".into(),
            left: "Nothing of it is left; run again to create it.".into(),
        }),
    }
}

/// What stops a network stack delete.
enum Blocked {
    Stack(common::cfn::CfnError),
    Eni(common::eni::EniError),
}

impl From<common::cfn::CfnError> for Blocked {
    fn from(e: common::cfn::CfnError) -> Self {
        Blocked::Stack(e)
    }
}

impl From<common::eni::EniError> for Blocked {
    fn from(e: common::eni::EniError) -> Self {
        Blocked::Eni(e)
    }
}

/// Deletes the stack and waits until it is gone; false when it was not there. With `enis`
/// (EC2 and a bound), waits before each attempt until no network interface is left in the VPC
/// but the stack's own NAT gateways' (a load balancer's, Fargate pods' and the cluster's stay a
/// while after they are deleted, and block the subnets), and deletes again a stack that ended
/// DELETE_FAILED ([`cfn_stack::delete_with_retries`]).
pub async fn delete_stack(
    cfn: &aws_sdk_cloudformation::Client,
    target: &str,
    name: &str,
    timeout: Duration,
    enis: Option<(&aws_sdk_ec2::Client, Duration)>,
) -> Result<bool, Error> {
    let Some(existing) = describe_stack(cfn, target).await? else {
        return Ok(false);
    };
    let scope = existing
        .outputs
        .get(template::OUTPUT_VPC)
        .map(|vpc| common::eni::Scope::Vpc(vpc.clone()));
    let scope = &scope;
    let left = cfn_stack::delete_with_retries(
        cfn,
        &existing.id,
        &format!("network stack {name}"),
        timeout,
        cfn_stack::DELETE_ATTEMPTS,
        move || async move {
            if let (Some((ec2, bound)), Some(scope)) = (enis, scope) {
                common::eni::wait_gone(ec2, scope, bound).await?;
            }
            Ok::<(), Blocked>(())
        },
    )
    .await
    .map_err(|e| match e {
        Blocked::Stack(source) => Error::NetworkStack {
            stack: name.to_owned(),
            source,
        },
        Blocked::Eni(e) => Error::Eni(e),
    })?;
    let Some(s) = left else {
        return Ok(true);
    };
    let still = match (enis, scope) {
        (Some((ec2, _)), Some(scope)) => match common::eni::blocking(ec2, scope).await {
            Ok(found) if found.is_empty() => format!("no network interface is left in {scope}"),
            Ok(found) => format!(
                "network interfaces still in {scope}: {}",
                common::eni::list(&found)
            ),
            Err(e) => format!("(could not list the network interfaces: {e})"),
        },
        _ => "load balancers or network interfaces still in the VPC block its deletion".to_owned(),
    };
    Err(Error::NetworkStackFailed {
        stack: name.to_owned(),
        reasons: cfn_stack::failure_reasons(cfn, &existing.id).await,
        left: format!(
            "The stack ({}) and what is left of its VPC remain; {still}. Remove what they belong to (load balancers tagged elbv2.k8s.aws/cluster, Fargate pods), then run delete again; stack status {}.",
            existing.id, s.status
        ),
        status: s.status,
    })
}

/// Deletes a stack an earlier failure left unusable, before creating it again.
pub async fn replace_broken(
    cfn: &aws_sdk_cloudformation::Client,
    broken: &Stack,
    name: &str,
    timeout: Duration,
) -> Result<(), Error> {
    tracing::warn!(
        "network stack {name} is in {} after an earlier failure; deleting it and creating it again",
        broken.status
    );
    delete_stack(cfn, &broken.id, name, timeout, None)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str, id: &str) -> ZoneFacts {
        ZoneFacts {
            name: name.into(),
            id: id.into(),
            kind: String::new(),
            state: String::new(),
        }
    }

    #[test]
    fn subnets_in_refused_zones_are_left_out_of_the_cluster() {
        let mut net = Network {
            vpc_id: "vpc-1".into(),
            private_subnet_ids: vec!["subnet-pa".into(), "subnet-pb".into(), "subnet-pc".into()],
            public_subnet_ids: vec!["subnet-ua".into(), "subnet-ub".into()],
            not_for_control_plane: Vec::new(),
        };
        let zone_of: BTreeMap<String, ZoneFacts> = [
            ("subnet-pa", zone("us-east-2a", "use2-az1")),
            ("subnet-ua", zone("us-east-2a", "use2-az1")),
            ("subnet-pb", zone("us-east-2b", "use2-az2")),
            ("subnet-ub", zone("us-east-2b", "use2-az2")),
            ("subnet-pc", zone("us-east-2c", "use2-az3")),
        ]
        .into_iter()
        .map(|(id, z)| (id.to_owned(), z))
        .collect();
        let dropped = net.leave_out(&zone_of, &["use2-az1".to_owned()]);
        assert_eq!(dropped, ["subnet-pa (us-east-2a (use2-az1))"]);
        assert_eq!(net.private_subnet_ids, ["subnet-pb", "subnet-pc"]);
        assert_eq!(
            net.public_subnet_ids,
            ["subnet-ua", "subnet-ub"],
            "kept for load balancers"
        );
        assert_eq!(
            net.cluster_subnet_ids(),
            ["subnet-pb", "subnet-pc", "subnet-ub"]
        );
        assert_eq!(
            net.private_zones(&zone_of),
            BTreeSet::from(["us-east-2b".to_owned(), "us-east-2c".to_owned()])
        );
        let again = net.clone();
        assert!(net.leave_out(&zone_of, &["use2-az1".to_owned()]).is_empty());
        assert_eq!(net, again, "leaving out twice changes nothing");
    }

    #[test]
    fn the_stack_s_zones_come_from_its_parameters_in_order() {
        let stack = Stack {
            id: "id".into(),
            status: "UPDATE_COMPLETE".into(),
            parameters: BTreeMap::from([
                ("ClusterName".to_owned(), "c".to_owned()),
                ("AvailabilityZone1".to_owned(), "us-east-2a".to_owned()),
                ("AvailabilityZone2".to_owned(), "us-east-2b".to_owned()),
                ("AvailabilityZone3".to_owned(), "us-east-2c".to_owned()),
            ]),
            outputs: BTreeMap::new(),
            tags: BTreeMap::new(),
        };
        assert_eq!(
            stack_zones(&stack),
            ["us-east-2a", "us-east-2b", "us-east-2c"]
        );
    }

    #[test]
    fn stack_names() {
        assert_eq!(stack_name("demo"), "eks-fargate-demo-vpc");
        assert_eq!(stack_name("my_c"), "eks-fargate-my-c-vpc");
        assert!(stack_name(&"c".repeat(100)).len() <= MAX_STACK_NAME);
    }
}
