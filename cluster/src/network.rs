//! The cluster's network: the CloudFormation stack we make from [`crate::template`], or a
//! network brought with `--vpc-id`, checked through EC2 before anything is created.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use common::aws::AwsError;
use common::cfn::{self as cfn_stack, Phase, Spec, Stack};

use crate::Error;
use crate::inputs::Ipv4Net;
use crate::template;

/// The longest stack name CloudFormation accepts.
pub const MAX_STACK_NAME: usize = 128;

/// The network the cluster goes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub vpc_id: String,
    pub public_subnet_ids: Vec<String>,
    pub private_subnet_ids: Vec<String>,
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

/// The stack's spec for a cluster.
pub fn spec(cluster: &str, vpc: &Ipv4Net, azs: u8) -> Spec {
    Spec {
        name: stack_name(cluster),
        body: template::render_text(vpc, azs),
        parameters: BTreeMap::from([("ClusterName".to_owned(), cluster.to_owned())]),
        tags: BTreeMap::from([
            (crate::eks::OWNER_TAG.to_owned(), cluster.to_owned()),
            ("eks-fargate-alb/step".to_owned(), "cluster".to_owned()),
        ]),
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

/// Deletes the stack and waits until it is gone; false when it was not there.
pub async fn delete_stack(
    cfn: &aws_sdk_cloudformation::Client,
    target: &str,
    name: &str,
    timeout: Duration,
) -> Result<bool, Error> {
    let Some(existing) = describe_stack(cfn, target).await? else {
        return Ok(false);
    };
    if existing.status != "DELETE_IN_PROGRESS" {
        if cfn_stack::phase(&existing.status) == Phase::InProgress {
            settle(
                cfn,
                &existing.id,
                &format!("network stack {name} to settle"),
                timeout,
            )
            .await?;
        }
        tracing::info!("deleting network stack {name}");
        cfn_stack::delete(cfn, &existing.id)
            .await
            .map_err(stack_error(name))?;
    }
    match settle(
        cfn,
        &existing.id,
        &format!("network stack {name} to be deleted"),
        timeout,
    )
    .await?
    {
        None => Ok(true),
        Some(s) => Err(Error::NetworkStackFailed {
            stack: name.to_owned(),
            reasons: cfn_stack::failure_reasons(cfn, &existing.id).await,
            left: format!(
                "The stack ({}) and what is left of its VPC remain; load balancers or network interfaces still in the VPC block its deletion. Remove them, then run delete again; stack status {}.",
                existing.id, s.status
            ),
            status: s.status,
        }),
    }
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
    delete_stack(cfn, &broken.id, name, timeout)
        .await
        .map(|_| ())
}

/// What EC2 says of one brought subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetFacts {
    pub id: String,
    pub vpc_id: String,
    pub zone: String,
    /// Its route table (explicit association, else the VPC's main table) routes to an
    /// internet gateway.
    pub routes_to_internet_gateway: bool,
}

/// The checks on a brought network, given what EC2 says (pure, for tests).
pub fn check_brought(
    vpc_id: &str,
    private: &[String],
    public: &[String],
    facts: &[SubnetFacts],
) -> Result<Vec<String>, Error> {
    let bad = |reason: String| Error::BadNetwork {
        vpc_id: vpc_id.to_owned(),
        reason,
    };
    let mut warnings = Vec::new();
    if let Some(both) = private.iter().find(|s| public.contains(s)) {
        return Err(bad(format!("{both} is given as both private and public")));
    }
    let find = |id: &String| facts.iter().find(|f| &f.id == id);
    for id in private.iter().chain(public) {
        let Some(f) = find(id) else {
            return Err(bad(format!("subnet {id} does not exist")));
        };
        if f.vpc_id != vpc_id {
            return Err(bad(format!(
                "subnet {id} is in {}, not in {vpc_id}",
                f.vpc_id
            )));
        }
    }
    for id in private {
        if find(id).is_some_and(|f| f.routes_to_internet_gateway) {
            return Err(bad(format!(
                "private subnet {id} has a route to an internet gateway, so it is public; Fargate runs pods only in private subnets (route 0.0.0.0/0 through a NAT gateway instead)"
            )));
        }
    }
    for id in public {
        if find(id).is_some_and(|f| !f.routes_to_internet_gateway) {
            warnings.push(format!(
                "public subnet {id} has no route to an internet gateway; an internet-facing load balancer there cannot be reached"
            ));
        }
    }
    let zones: BTreeSet<&str> = private
        .iter()
        .filter_map(|id| find(id).map(|f| f.zone.as_str()))
        .collect();
    if zones.len() < 2 {
        return Err(bad(format!(
            "the private subnets lie in {} availability zone(s); EKS needs subnets in at least two",
            zones.len()
        )));
    }
    Ok(warnings)
}

/// Checks a brought network through EC2; refuses it (exit 2) before anything is created.
pub async fn validate_brought(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    private: &[String],
    public: &[String],
) -> Result<Network, Error> {
    let bad = |reason: String| Error::BadNetwork {
        vpc_id: vpc_id.to_owned(),
        reason,
    };
    match ec2.describe_vpcs().vpc_ids(vpc_id).send().await {
        Ok(answer) if !answer.vpcs().is_empty() => {}
        Ok(_) => return Err(bad("it does not exist".into())),
        Err(e) => {
            let source = AwsError::from(e);
            if source.code().is_some_and(|c| c.contains("NotFound")) {
                return Err(bad("it does not exist".into()));
            }
            return Err(Error::DescribeVpcs {
                vpc_id: vpc_id.to_owned(),
                source,
            });
        }
    }
    let all: Vec<String> = private.iter().chain(public).cloned().collect();
    let subnets = match ec2
        .describe_subnets()
        .set_subnet_ids(Some(all.clone()))
        .send()
        .await
    {
        Ok(answer) => answer.subnets().to_vec(),
        Err(e) => {
            let source = AwsError::from(e);
            if source.code().is_some_and(|c| c.contains("NotFound")) {
                return Err(bad(format!("a subnet does not exist ({})", source.text())));
            }
            return Err(Error::DescribeSubnets {
                subnets: all.join(","),
                source,
            });
        }
    };
    let tables = ec2
        .describe_route_tables()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .send()
        .await
        .map_err(|e| Error::DescribeRouteTables {
            vpc_id: vpc_id.to_owned(),
            source: e.into(),
        })?;
    let to_igw = |table: &aws_sdk_ec2::types::RouteTable| {
        table.routes().iter().any(|r| {
            r.gateway_id().is_some_and(|g| g.starts_with("igw-"))
                && r.state().is_none_or(|s| s.as_str() != "blackhole")
        })
    };
    let main_table = tables
        .route_tables()
        .iter()
        .find(|t| t.associations().iter().any(|a| a.main() == Some(true)));
    let facts: Vec<SubnetFacts> = subnets
        .iter()
        .map(|s| {
            let id = s.subnet_id().unwrap_or_default().to_owned();
            let table = tables
                .route_tables()
                .iter()
                .find(|t| {
                    t.associations()
                        .iter()
                        .any(|a| a.subnet_id() == Some(id.as_str()))
                })
                .or(main_table);
            SubnetFacts {
                vpc_id: s.vpc_id().unwrap_or_default().to_owned(),
                zone: s.availability_zone().unwrap_or_default().to_owned(),
                routes_to_internet_gateway: table.is_some_and(to_igw),
                id,
            }
        })
        .collect();
    for warning in check_brought(vpc_id, private, public, &facts)? {
        tracing::warn!("{warning}");
    }
    Ok(Network {
        vpc_id: vpc_id.to_owned(),
        public_subnet_ids: public.to_vec(),
        private_subnet_ids: private.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(id: &str, vpc: &str, zone: &str, igw: bool) -> SubnetFacts {
        SubnetFacts {
            id: id.into(),
            vpc_id: vpc.into(),
            zone: zone.into(),
            routes_to_internet_gateway: igw,
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stack_names() {
        assert_eq!(stack_name("demo"), "eks-fargate-demo-vpc");
        assert_eq!(stack_name("my_c"), "eks-fargate-my-c-vpc");
        assert!(stack_name(&"c".repeat(100)).len() <= MAX_STACK_NAME);
    }

    #[test]
    fn brought_networks() {
        let facts = [
            fact("subnet-1", "vpc-1", "a", false),
            fact("subnet-2", "vpc-1", "b", false),
            fact("subnet-3", "vpc-1", "a", true),
            fact("subnet-4", "vpc-2", "b", false),
        ];
        let ok = check_brought(
            "vpc-1",
            &ids(&["subnet-1", "subnet-2"]),
            &ids(&["subnet-3"]),
            &facts,
        );
        assert_eq!(ok.unwrap(), Vec::<String>::new());
        let public_as_private =
            check_brought("vpc-1", &ids(&["subnet-1", "subnet-3"]), &[], &facts).unwrap_err();
        assert!(
            public_as_private.to_string().contains("subnet-3"),
            "{public_as_private}"
        );
        let elsewhere =
            check_brought("vpc-1", &ids(&["subnet-1", "subnet-4"]), &[], &facts).unwrap_err();
        assert!(elsewhere.to_string().contains("vpc-2"));
        let missing = check_brought("vpc-1", &ids(&["subnet-9"]), &[], &facts).unwrap_err();
        assert!(missing.to_string().contains("does not exist"));
        let one_zone = check_brought("vpc-1", &ids(&["subnet-1"]), &[], &facts).unwrap_err();
        assert!(one_zone.to_string().contains("two"));
        let warned = check_brought(
            "vpc-1",
            &ids(&["subnet-1", "subnet-2"]),
            &ids(&["subnet-5"]),
            &[
                fact("subnet-1", "vpc-1", "a", false),
                fact("subnet-2", "vpc-1", "b", false),
                fact("subnet-5", "vpc-1", "b", false),
            ],
        )
        .unwrap();
        assert_eq!(
            warned.len(),
            1,
            "a public subnet with no internet route is warned of"
        );
        let both = check_brought("vpc-1", &ids(&["subnet-1"]), &ids(&["subnet-1"]), &facts);
        assert!(both.is_err());
    }
}
