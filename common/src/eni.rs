//! Network interfaces that block a delete. A load balancer's network interfaces (description
//! `ELB app/<name>/<id>`, managed by ELB) stay for minutes after the load balancer is deleted,
//! and Fargate pods' and the EKS control plane's stay a while after the pods and the cluster
//! are gone. While one uses a security group, `DeleteSecurityGroup` fails with
//! `DependencyViolation`; while one is in a subnet, the subnet and its VPC cannot go. So a step
//! waits for them (bounded, with progress) before it deletes the stack that holds the group or
//! the VPC.
//!
//! Interfaces that are not the ALB's, Fargate's or EKS's never go by themselves: a VPC endpoint
//! the organisation's security tooling added (GuardDuty adds `guardduty-data` endpoints), a
//! Lambda function's, an instance's. Those are told apart at the first look and named at once
//! with the security groups they use, instead of waiting out the timeout; nothing is deleted
//! (they are not ours).

use std::time::Duration;

use aws_sdk_ec2::types::Filter;

use crate::aws::AwsError;
use crate::wait::{Poll, TimedOut, wait_for};

/// A network interface, as much of it as a person needs to find it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Eni {
    pub id: String,
    pub description: String,
    /// `available`, `in-use`, ...
    pub status: String,
    /// EC2's `InterfaceType`: `interface`, `vpc_endpoint`, `lambda`, ...
    pub interface_type: String,
    /// The instance it is attached to, if any.
    pub instance: Option<String>,
    /// Made and managed by an AWS service (ELB, Fargate, EKS, an endpoint).
    pub requester_managed: bool,
    /// The security groups it uses.
    pub groups: Vec<String>,
    /// The VPC endpoint it belongs to: its id and service name.
    pub endpoint: Option<(String, String)>,
}

impl std::fmt::Display for Eni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.description.is_empty() {
            write!(f, "{} ({})", self.id, self.status)
        } else {
            write!(f, "{} \"{}\" ({})", self.id, self.description, self.status)
        }
    }
}

/// Interface types of services that never remove their interfaces because a cluster, its pods
/// or its load balancer went.
const FOREIGN_TYPES: &[&str] = &[
    "vpc_endpoint",
    "gateway_load_balancer_endpoint",
    "lambda",
    "transit_gateway",
    "api_gateway_managed",
    "quicksight",
    "global_accelerator_managed",
    "iot_rules_managed",
    "aws_codestar_connections_managed",
    "efa",
    "trunk",
];

impl Eni {
    /// Why this interface is not one that goes once the ALB, the Fargate pods or the cluster
    /// are gone (those are waited for); None when it is one of them, or may be.
    pub fn foreign(&self) -> Option<String> {
        if let Some((id, service)) = &self.endpoint {
            return Some(format!("VPC endpoint {id} ({service})"));
        }
        if FOREIGN_TYPES.contains(&self.interface_type.as_str()) {
            return Some(format!("an interface of type {}", self.interface_type));
        }
        // An instance's own interface (a user's; the ALB's, EKS's and Fargate's are managed by
        // their service, and say whose they are).
        let described_ours = ["ELB ", "Amazon EKS"]
            .iter()
            .any(|p| self.description.starts_with(p));
        if let Some(instance) = &self.instance
            && !self.requester_managed
            && !described_ours
        {
            return Some(format!("attached to instance {instance}"));
        }
        None
    }

    /// The interface, why it is foreign, and its security groups.
    fn foreign_line(&self) -> String {
        let why = self.foreign().unwrap_or_default();
        let groups = if self.groups.is_empty() {
            String::new()
        } else {
            format!(", security group(s) {}", self.groups.join(", "))
        };
        format!("{self}: {why}{groups}")
    }
}

/// Which interfaces block a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Those that use the security group (it cannot be deleted while one does).
    Group(String),
    /// Those in the VPC (its subnets cannot be deleted while one is there), except those of
    /// the VPC's own NAT gateways, which the stack deletes with them.
    Vpc(String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Group(id) => write!(f, "security group {id}"),
            Scope::Vpc(id) => write!(f, "VPC {id}"),
        }
    }
}

/// The wait failed.
#[derive(Debug, thiserror::Error)]
pub enum EniError {
    #[error("DescribeNetworkInterfaces in {scope}")]
    Describe { scope: String, source: AwsError },
    #[error("DescribeNatGateways in {scope}")]
    DescribeNatGateways { scope: String, source: AwsError },
    #[error(
        "network interfaces still use {scope} after {}: {}. They belong to a load balancer (description `ELB app/...`), Fargate pods or the EKS cluster, and usually go within minutes after those are deleted. Delete what they belong to if it is still there (e.g. `eks-deploy delete`, or the load balancer tagged elbv2.k8s.aws/cluster), then run the delete again, or raise --eni-timeout. Nothing was deleted in this attempt",
        crate::cli::format_elapsed(*.after),
        list(.left)
    )]
    StillThere {
        scope: String,
        left: Vec<Eni>,
        after: Duration,
    },
    #[error(
        "{scope} holds network interfaces that are not the ALB's, Fargate's or the EKS cluster's, so they will not go by themselves: {}. eks-fargate-alb did not make them and never deletes them. Their owner (for example the organisation's security tooling, which adds GuardDuty's guardduty-data endpoints) must remove them and their security groups, or you do so yourself; then run the delete again. Nothing was deleted in this attempt",
        foreign_list(.foreign)
    )]
    Foreign { scope: String, foreign: Vec<Eni> },
    #[error("DescribeVpcEndpoints in {scope}")]
    DescribeVpcEndpoints { scope: String, source: AwsError },
}

/// Each foreign interface with why, and its security groups, `; ` between.
fn foreign_list(enis: &[Eni]) -> String {
    enis.iter()
        .map(Eni::foreign_line)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `eni-1 "ELB app/a/b" (in-use), ...`.
pub fn list(enis: &[Eni]) -> String {
    enis.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The interfaces that block deleting what `scope` names, now.
pub async fn blocking(ec2: &aws_sdk_ec2::Client, scope: &Scope) -> Result<Vec<Eni>, EniError> {
    let (filter, value, vpc) = match scope {
        Scope::Group(id) => ("group-id", id, None),
        Scope::Vpc(id) => ("vpc-id", id, Some(id)),
    };
    let describe_error = |source: AwsError| EniError::Describe {
        scope: scope.to_string(),
        source,
    };
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let answer = ec2
            .describe_network_interfaces()
            .filters(Filter::builder().name(filter).values(value).build())
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| describe_error(e.into()))?;
        found.extend(answer.network_interfaces().iter().map(|n| {
            Eni {
                id: n.network_interface_id().unwrap_or_default().to_owned(),
                description: n.description().unwrap_or_default().to_owned(),
                status: n
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                interface_type: n
                    .interface_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                instance: n
                    .attachment()
                    .and_then(|a| a.instance_id())
                    .filter(|i| !i.is_empty())
                    .map(str::to_owned),
                requester_managed: n.requester_managed().unwrap_or(false),
                groups: n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect(),
                endpoint: None,
            }
        }));
        match answer.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => break,
        }
    }
    if let Some(vpc) = vpc {
        let own = nat_gateway_interfaces(ec2, vpc).await.map_err(|source| {
            EniError::DescribeNatGateways {
                scope: scope.to_string(),
                source,
            }
        })?;
        found.retain(|e| !own.contains(&e.id));
        if !found.is_empty() {
            let endpoints = vpc_endpoint_interfaces(ec2, vpc).await.map_err(|source| {
                EniError::DescribeVpcEndpoints {
                    scope: scope.to_string(),
                    source,
                }
            })?;
            for eni in &mut found {
                eni.endpoint = endpoints
                    .iter()
                    .find(|(interface, _, _)| interface == &eni.id)
                    .map(|(_, id, service)| (id.clone(), service.clone()));
            }
        }
    }
    Ok(found)
}

/// (interface, endpoint id, service name) of every interface of the VPC endpoints in `vpc`.
async fn vpc_endpoint_interfaces(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
) -> Result<Vec<(String, String, String)>, AwsError> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let answer = ec2
            .describe_vpc_endpoints()
            .filters(Filter::builder().name("vpc-id").values(vpc).build())
            .set_next_token(next.take())
            .send()
            .await?;
        for endpoint in answer.vpc_endpoints() {
            let id = endpoint.vpc_endpoint_id().unwrap_or_default();
            let service = endpoint.service_name().unwrap_or_default();
            for interface in endpoint.network_interface_ids() {
                out.push((interface.clone(), id.to_owned(), service.to_owned()));
            }
        }
        match answer.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

/// The interfaces of the NAT gateways in `vpc` (the network stack deletes them itself).
async fn nat_gateway_interfaces(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
) -> Result<Vec<String>, AwsError> {
    let answer = ec2
        .describe_nat_gateways()
        .filter(Filter::builder().name("vpc-id").values(vpc).build())
        .send()
        .await?;
    Ok(answer
        .nat_gateways()
        .iter()
        .flat_map(|n| n.nat_gateway_addresses())
        .filter_map(|a| a.network_interface_id().map(str::to_owned))
        .collect())
}

/// Waits, at most `timeout`, until no interface blocks deleting what `scope` names. Progress
/// goes to stderr; running out of time names every interface left.
pub async fn wait_gone(
    ec2: &aws_sdk_ec2::Client,
    scope: &Scope,
    timeout: Duration,
) -> Result<(), EniError> {
    let first = blocking(ec2, scope).await?;
    if first.is_empty() {
        return Ok(());
    }
    if let Some(refused) = foreign_among(scope, &first) {
        return Err(refused);
    }
    tracing::info!(
        "{} network interface(s) still use {scope}: {}; waiting for them to go before deleting it",
        first.len(),
        list(&first)
    );
    let what = format!("the network interfaces in {scope} to go");
    let last = std::sync::Mutex::new(first);
    let waited = wait_for(&what, timeout, || {
        let last = &last;
        async move {
            let now = blocking(ec2, scope).await?;
            if now.is_empty() {
                return Ok(Poll::Ready(()));
            }
            if let Some(refused) = foreign_among(scope, &now) {
                return Err(refused.into());
            }
            let status = format!("{} left: {}", now.len(), list(&now));
            *last.lock().unwrap_or_else(|p| p.into_inner()) = now;
            Ok(Poll::Pending(status))
        }
    })
    .await;
    let last = last.into_inner().unwrap_or_else(|p| p.into_inner());
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Eni(e)) => Err(e),
        Err(Waited::Timeout(t)) => Err(EniError::StillThere {
            scope: scope.to_string(),
            left: last,
            after: t.after,
        }),
    }
}

/// The refusal when some of `left` will not go by themselves.
fn foreign_among(scope: &Scope, left: &[Eni]) -> Option<EniError> {
    let foreign: Vec<Eni> = left
        .iter()
        .filter(|e| e.foreign().is_some())
        .cloned()
        .collect();
    (!foreign.is_empty()).then(|| EniError::Foreign {
        scope: scope.to_string(),
        foreign,
    })
}

/// What a wait ends with inside [`wait_gone`].
enum Waited {
    Eni(EniError),
    Timeout(TimedOut),
}

impl From<TimedOut> for Waited {
    fn from(t: TimedOut) -> Self {
        Waited::Timeout(t)
    }
}

impl From<EniError> for Waited {
    fn from(e: EniError) -> Self {
        Waited::Eni(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_are_named_with_what_they_are() {
        let left = vec![
            Eni {
                id: "eni-1".into(),
                description: "ELB app/k8s-game-app-1/abc".into(),
                status: "in-use".into(),
                ..Eni::default()
            },
            Eni {
                id: "eni-2".into(),
                description: String::new(),
                status: "available".into(),
                ..Eni::default()
            },
        ];
        assert_eq!(
            list(&left),
            "eni-1 \"ELB app/k8s-game-app-1/abc\" (in-use), eni-2 (available)"
        );
        let err = EniError::StillThere {
            scope: Scope::Group("sg-1".into()).to_string(),
            left,
            after: Duration::from_secs(600),
        };
        let text = err.to_string();
        assert!(
            text.contains("security group sg-1")
                && text.contains("eni-1")
                && text.contains("ELB app/")
                && text.contains("--eni-timeout")
                && text.contains("run the delete again"),
            "{text}"
        );
    }

    #[test]
    fn foreign_interfaces_are_told_apart_and_named_with_their_groups() {
        let ours = [
            Eni {
                id: "eni-managed".into(),
                instance: Some("i-managed".into()),
                requester_managed: true,
                ..Eni::default()
            },
            Eni {
                id: "eni-alb".into(),
                description: "ELB app/k8s-game-app-1/abc".into(),
                interface_type: "interface".into(),
                ..Eni::default()
            },
            Eni {
                id: "eni-eks".into(),
                description: "Amazon EKS demo".into(),
                interface_type: "interface".into(),
                ..Eni::default()
            },
            Eni {
                id: "eni-pod".into(),
                interface_type: "branch".into(),
                ..Eni::default()
            },
        ];
        for eni in &ours {
            assert_eq!(eni.foreign(), None, "{eni}");
        }
        let endpoint = Eni {
            id: "eni-gd".into(),
            status: "in-use".into(),
            groups: vec!["sg-gd".into()],
            endpoint: Some((
                "vpce-1".into(),
                "com.amazonaws.us-east-2.guardduty-data".into(),
            )),
            ..Eni::default()
        };
        let lambda = Eni {
            id: "eni-fn".into(),
            interface_type: "lambda".into(),
            ..Eni::default()
        };
        let instance = Eni {
            id: "eni-i".into(),
            instance: Some("i-1".into()),
            ..Eni::default()
        };
        let mut left = ours.to_vec();
        left.extend([endpoint, lambda, instance]);
        let err = foreign_among(&Scope::Vpc("vpc-1".into()), &left).unwrap();
        let text = err.to_string();
        for part in [
            "VPC vpc-1",
            "eni-gd (in-use): VPC endpoint vpce-1 (com.amazonaws.us-east-2.guardduty-data), security group(s) sg-gd",
            "eni-fn",
            "type lambda",
            "instance i-1",
            "never deletes them",
            "run the delete again",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert!(
            !text.contains("eni-alb") && !text.contains("eni-pod"),
            "{text}"
        );
        assert!(foreign_among(&Scope::Vpc("vpc-1".into()), &ours).is_none());
    }
}

/// The waits against an EC2 client answered in-process (`aws-smithy-mocks`): which interfaces a
/// scope's describe returns (by the filter the code sends, page by page), which of them the
/// stack deletes itself, and which are foreign and refused at once.
#[cfg(test)]
mod fakes {
    use aws_sdk_ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput;
    use aws_sdk_ec2::operation::describe_network_interfaces::{
        DescribeNetworkInterfacesInput, DescribeNetworkInterfacesOutput,
    };
    use aws_sdk_ec2::operation::describe_vpc_endpoints::DescribeVpcEndpointsOutput;
    use aws_sdk_ec2::types::{
        GroupIdentifier, NatGateway, NatGatewayAddress, NetworkInterface, NetworkInterfaceStatus,
        NetworkInterfaceType, VpcEndpoint,
    };
    use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, mock};

    use super::*;

    fn client(rules: &[&Rule]) -> aws_sdk_ec2::Client {
        let mut mocks = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            mocks = mocks.with_rule(rule);
        }
        use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::v2026_01_12())
            .region(Region::new("us-east-2"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(mocks)
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    /// True when the request filters on `name` = `value` (and nothing else).
    fn filters_on(input: &DescribeNetworkInterfacesInput, name: &str, value: &str) -> bool {
        let filters = input.filters();
        filters.len() == 1
            && filters[0].name() == Some(name)
            && filters[0].values() == [value.to_owned()]
    }

    fn interface(id: &str, description: &str, kind: NetworkInterfaceType) -> NetworkInterface {
        NetworkInterface::builder()
            .network_interface_id(id)
            .description(description)
            .status(NetworkInterfaceStatus::InUse)
            .interface_type(kind)
            .requester_managed(true)
            .groups(
                GroupIdentifier::builder()
                    .group_id(format!("sg-{id}"))
                    .build(),
            )
            .build()
    }

    /// In a VPC: two pages of interfaces; the NAT gateway's is the stack's own and left out;
    /// a GuardDuty endpoint's is foreign: the wait refuses at its first look, naming the
    /// endpoint, its service and its group, instead of waiting out the timeout.
    #[tokio::test]
    async fn a_foreign_interface_in_the_vpc_is_named_at_the_first_look() {
        let first_page = mock!(aws_sdk_ec2::Client::describe_network_interfaces)
            .match_requests(|r| filters_on(r, "vpc-id", "vpc-1") && r.next_token().is_none())
            .then_output(|| {
                DescribeNetworkInterfacesOutput::builder()
                    .network_interfaces(interface(
                        "eni-nat",
                        "Interface for NAT Gateway nat-1",
                        NetworkInterfaceType::NatGateway,
                    ))
                    .network_interfaces(interface(
                        "eni-alb",
                        "ELB app/k8s-game-2048/abc",
                        NetworkInterfaceType::Interface,
                    ))
                    .next_token("page-2")
                    .build()
            });
        let second_page = mock!(aws_sdk_ec2::Client::describe_network_interfaces)
            .match_requests(|r| {
                filters_on(r, "vpc-id", "vpc-1") && r.next_token() == Some("page-2")
            })
            .then_output(|| {
                DescribeNetworkInterfacesOutput::builder()
                    .network_interfaces(interface(
                        "eni-gd",
                        "VPC Endpoint Interface vpce-1",
                        NetworkInterfaceType::Interface,
                    ))
                    .build()
            });
        let gateways = mock!(aws_sdk_ec2::Client::describe_nat_gateways).then_output(|| {
            DescribeNatGatewaysOutput::builder()
                .nat_gateways(
                    NatGateway::builder()
                        .nat_gateway_id("nat-1")
                        .nat_gateway_addresses(
                            NatGatewayAddress::builder()
                                .network_interface_id("eni-nat")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let endpoints = mock!(aws_sdk_ec2::Client::describe_vpc_endpoints).then_output(|| {
            DescribeVpcEndpointsOutput::builder()
                .vpc_endpoints(
                    VpcEndpoint::builder()
                        .vpc_endpoint_id("vpce-1")
                        .service_name("com.amazonaws.us-east-2.guardduty-data")
                        .network_interface_ids("eni-gd")
                        .build(),
                )
                .build()
        });
        let ec2 = client(&[&first_page, &second_page, &gateways, &endpoints]);
        let scope = Scope::Vpc("vpc-1".into());

        let found = blocking(&ec2, &scope).await.expect("the describes answer");
        let ids: Vec<&str> = found.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            ["eni-alb", "eni-gd"],
            "the NAT gateway's is the stack's own"
        );

        let started = std::time::Instant::now();
        let err = wait_gone(&ec2, &scope, Duration::from_secs(600))
            .await
            .expect_err("foreign interfaces never go");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "refused at once"
        );
        let EniError::Foreign { foreign, .. } = &err else {
            panic!("not refused as foreign: {err}");
        };
        assert_eq!(foreign.len(), 1, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("eni-gd")
                && text.contains("VPC endpoint vpce-1 (com.amazonaws.us-east-2.guardduty-data)")
                && text.contains("security group(s) sg-eni-gd")
                && !text.contains("eni-alb"),
            "{text}"
        );
    }

    /// For a security group: the interfaces using it (filter `group-id`), no NAT gateway or
    /// endpoint lookup; the ALB's goes after a while and the wait ends.
    #[tokio::test]
    async fn the_albs_interface_on_a_group_is_waited_for_until_it_goes() {
        let describe = mock!(aws_sdk_ec2::Client::describe_network_interfaces)
            .match_requests(|r| filters_on(r, "group-id", "sg-alb"))
            .sequence()
            .output(|| {
                DescribeNetworkInterfacesOutput::builder()
                    .network_interfaces(interface(
                        "eni-alb",
                        "ELB app/k8s-game-2048/abc",
                        NetworkInterfaceType::Interface,
                    ))
                    .build()
            })
            .times(2)
            .output(|| DescribeNetworkInterfacesOutput::builder().build())
            .build();
        let gateways = mock!(aws_sdk_ec2::Client::describe_nat_gateways)
            .then_output(|| DescribeNatGatewaysOutput::builder().build());
        let ec2 = client(&[&describe, &gateways]);
        wait_gone(
            &ec2,
            &Scope::Group("sg-alb".into()),
            Duration::from_secs(60),
        )
        .await
        .expect("gone within the timeout");
        assert_eq!(describe.num_calls(), 3, "two looks with it, one without");
        assert_eq!(
            gateways.num_calls(),
            0,
            "a group's scope has no NAT gateway"
        );
    }
}
