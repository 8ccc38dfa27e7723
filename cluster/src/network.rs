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
use crate::zones::zone_id_unsupported;

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

/// What EC2 says of one brought subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetFacts {
    pub id: String,
    pub vpc_id: String,
    pub zone: String,
    /// The zone's id (names map to other ids in every account).
    pub zone_id: String,
    /// Its route table (explicit association, else the VPC's main table) routes to an
    /// internet gateway.
    pub routes_to_internet_gateway: bool,
}

/// The VPC attributes EKS needs on (private endpoint and Fargate pods resolve names through the
/// VPC's DNS): refused with the attribute and the command that turns it on.
pub fn check_dns(vpc_id: &str, dns_support: bool, dns_hostnames: bool) -> Result<(), Error> {
    for (on, attribute, flag) in [
        (dns_support, "enableDnsSupport", "--enable-dns-support"),
        (
            dns_hostnames,
            "enableDnsHostnames",
            "--enable-dns-hostnames",
        ),
    ] {
        if !on {
            return Err(Error::BadNetwork {
                vpc_id: vpc_id.to_owned(),
                reason: format!(
                    "its attribute {attribute} is off; EKS needs DNS support and DNS hostnames on. Turn it on with `aws ec2 modify-vpc-attribute --vpc-id {vpc_id} {flag}`, then run again"
                ),
            });
        }
    }
    Ok(())
}

/// The checks on a brought network, given what EC2 says (pure, for tests): warnings, and the
/// public subnets to keep out of the cluster's own subnets.
pub fn check_brought(
    vpc_id: &str,
    private: &[String],
    public: &[String],
    facts: &[SubnetFacts],
) -> Result<(Vec<String>, Vec<String>), Error> {
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
    for id in private {
        if let Some(f) = find(id).filter(|f| zone_id_unsupported(&f.zone_id)) {
            return Err(bad(format!(
                "private subnet {id} lies in {} ({}), a zone where EKS or Fargate does not run; give private subnets in other zones",
                f.zone, f.zone_id
            )));
        }
    }
    let mut not_for_control_plane = Vec::new();
    for id in public {
        if let Some(f) = find(id).filter(|f| zone_id_unsupported(&f.zone_id)) {
            warnings.push(format!(
                "public subnet {id} lies in {} ({}), where EKS makes no control plane; it is kept for load balancers and left out of the cluster's subnets",
                f.zone, f.zone_id
            ));
            not_for_control_plane.push(id.clone());
        }
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
    Ok((warnings, not_for_control_plane))
}

async fn vpc_attribute(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    attribute: aws_sdk_ec2::types::VpcAttributeName,
) -> Result<bool, Error> {
    let answer = ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(attribute.clone())
        .send()
        .await
        .map_err(|e| Error::DescribeVpcAttribute {
            vpc_id: vpc_id.to_owned(),
            attribute: attribute.as_str().to_owned(),
            source: e.into(),
        })?;
    let value = match attribute {
        aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport => answer.enable_dns_support(),
        _ => answer.enable_dns_hostnames(),
    };
    Ok(value.and_then(|v| v.value()).unwrap_or(false))
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
    use aws_sdk_ec2::types::VpcAttributeName;
    let dns_support = vpc_attribute(ec2, vpc_id, VpcAttributeName::EnableDnsSupport).await?;
    let dns_hostnames = vpc_attribute(ec2, vpc_id, VpcAttributeName::EnableDnsHostnames).await?;
    check_dns(vpc_id, dns_support, dns_hostnames)?;
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
                zone_id: s.availability_zone_id().unwrap_or_default().to_owned(),
                routes_to_internet_gateway: table.is_some_and(to_igw),
                id,
            }
        })
        .collect();
    let (warnings, not_for_control_plane) = check_brought(vpc_id, private, public, &facts)?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(Network {
        vpc_id: vpc_id.to_owned(),
        public_subnet_ids: public.to_vec(),
        private_subnet_ids: private.to_vec(),
        not_for_control_plane,
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
            zone_id: format!("id-{zone}"),
            routes_to_internet_gateway: igw,
        }
    }

    #[test]
    fn dns_attributes_are_required() {
        assert!(check_dns("vpc-1", true, true).is_ok());
        let off = check_dns("vpc-1", true, false).unwrap_err().to_string();
        assert!(
            off.contains("enableDnsHostnames")
                && off
                    .contains("aws ec2 modify-vpc-attribute --vpc-id vpc-1 --enable-dns-hostnames"),
            "{off}"
        );
        let off = check_dns("vpc-1", false, true).unwrap_err().to_string();
        assert!(
            off.contains("enableDnsSupport") && off.contains("--enable-dns-support"),
            "{off}"
        );
    }

    #[test]
    fn subnets_in_zones_without_eks() {
        let mut bad = fact("subnet-1", "vpc-1", "us-east-1a", false);
        bad.zone_id = "use1-az3".into();
        let mut bad_public = fact("subnet-3", "vpc-1", "us-east-1a", true);
        bad_public.zone_id = "use1-az3".into();
        let facts = [
            bad,
            fact("subnet-2", "vpc-1", "b", false),
            fact("subnet-4", "vpc-1", "c", false),
            bad_public,
        ];
        let refused = check_brought("vpc-1", &ids(&["subnet-1", "subnet-2"]), &[], &facts)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("subnet-1") && refused.contains("use1-az3"),
            "{refused}"
        );
        let (warnings, kept_out) = check_brought(
            "vpc-1",
            &ids(&["subnet-2", "subnet-4"]),
            &ids(&["subnet-3"]),
            &facts,
        )
        .unwrap();
        assert_eq!(kept_out, ["subnet-3"]);
        assert!(
            warnings.iter().any(|w| w.contains("use1-az3")),
            "{warnings:?}"
        );
        let net = Network {
            vpc_id: "vpc-1".into(),
            private_subnet_ids: ids(&["subnet-2", "subnet-4"]),
            public_subnet_ids: ids(&["subnet-3", "subnet-5"]),
            not_for_control_plane: kept_out,
        };
        assert_eq!(
            net.cluster_subnet_ids(),
            ["subnet-2", "subnet-4", "subnet-5"]
        );
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
        assert_eq!(ok.unwrap(), (Vec::<String>::new(), Vec::<String>::new()));
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
        .unwrap()
        .0;
        assert_eq!(
            warned.len(),
            1,
            "a public subnet with no internet route is warned of"
        );
        let both = check_brought("vpc-1", &ids(&["subnet-1"]), &ids(&["subnet-1"]), &facts);
        assert!(both.is_err());
    }
}
