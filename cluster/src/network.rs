//! The cluster's network: the CloudFormation stack we make from [`crate::template`], or a
//! network brought with `--vpc-id` (checked in [`crate::brought`]).

use std::collections::BTreeMap;
use std::time::Duration;

use common::cfn::{self as cfn_stack, Phase, Spec, Stack};

use crate::error::Error;
use crate::inputs::Ipv4Net;
use crate::template;

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

    #[test]
    fn stack_names() {
        assert_eq!(stack_name("demo"), "eks-fargate-demo-vpc");
        assert_eq!(stack_name("my_c"), "eks-fargate-my-c-vpc");
        assert!(stack_name(&"c".repeat(100)).len() <= MAX_STACK_NAME);
    }
}
