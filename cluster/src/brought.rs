//! A network brought with `--vpc-id`: checked through EC2 before anything is created (a
//! refusal is exit 2, nothing made).

use std::collections::BTreeSet;

use aws_sdk_ec2::types::Filter;
use common::aws::AwsError;

use crate::error::{Error, Usage};
use crate::network::Network;
use crate::zones::zone_id_unsupported;

/// What EC2 says of one brought subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetFacts {
    pub id: String,
    pub vpc_id: String,
    pub zone: String,
    /// The zone's id (names map to other ids in every account).
    pub zone_id: String,
    /// Its route table: the one explicitly associated, else the VPC's main table (`None`: the
    /// VPC has neither).
    pub route_table: Option<String>,
    /// The route table is the VPC's main table (no explicit association).
    pub main_table: bool,
    /// Its route table routes to an internet gateway.
    pub routes_to_internet_gateway: bool,
    /// Where its route table sends `0.0.0.0/0`.
    pub default_route: DefaultRoute,
    /// The gateway endpoints (`vpce-…`) its route table routes to (a prefix list route each).
    pub gateway_endpoints: Vec<String>,
}

/// Where a route table sends `0.0.0.0/0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultRoute {
    /// No route to `0.0.0.0/0`.
    Missing,
    /// A way out: a NAT gateway, transit gateway, virtual private gateway or network interface
    /// (an instance), with a warning when it may not reach the internet itself.
    Out {
        target: String,
        warning: Option<String>,
    },
    /// A route that leads nowhere out, and why (a blackhole, a VPC peering connection, ...).
    Dead { target: String, why: String },
}

/// What EC2 says of one VPC endpoint of the brought VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointFacts {
    pub id: String,
    /// `com.amazonaws.<region>.<service>` (the prefix differs by partition).
    pub service_name: String,
    /// `Interface`, `Gateway`, ...
    pub kind: String,
    /// `available`, `pending`, `pendingAcceptance`, `deleting`, `failed`, ...
    pub state: String,
    /// Private DNS names on (an interface endpoint serves the service's own host name only then).
    pub private_dns: bool,
    /// The route tables a gateway endpoint is on.
    pub route_tables: Vec<String>,
}

/// The services Fargate pods reach when they start (ECR's API and registry, S3 for image
/// layers) and that the AWS Load Balancer Controller on Fargate calls (STS for its role, EC2,
/// ELB): what a private subnet with no way out needs as VPC endpoints.
pub const ENDPOINT_SERVICES: [&str; 6] = [
    "ecr.api",
    "ecr.dkr",
    "s3",
    "sts",
    "elasticloadbalancing",
    "ec2",
];

/// The endpoint service name of `service` in `region`: `com.amazonaws.us-east-1.sts`; the
/// prefix is the partition's DNS suffix reversed (`cn.com.amazonaws` in China).
pub fn endpoint_service_name(region: &str, service: &str) -> String {
    let suffix = common::aws::Partition::of_region(region).dns_suffix;
    let prefix: Vec<&str> = suffix.split('.').rev().collect();
    format!("{}.{region}.{service}", prefix.join("."))
}

/// True when `name` is the endpoint service of `service` in `region`, whatever its partition's
/// prefix (China names some services `com.amazonaws.…`, others `cn.com.amazonaws.…`).
fn serves(name: &str, region: &str, service: &str) -> bool {
    name.strip_suffix(service)
        .and_then(|rest| rest.strip_suffix('.'))
        .is_some_and(|rest| rest.ends_with(&format!(".{region}")))
}

/// Where the routes send `0.0.0.0/0`, from EC2's routes of one table (NAT gateways are looked
/// at more closely once their states are known, [`nat_route`]).
pub fn default_route(routes: &[aws_sdk_ec2::types::Route]) -> DefaultRoute {
    let Some(route) = routes
        .iter()
        .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
    else {
        return DefaultRoute::Missing;
    };
    let target = [
        route.nat_gateway_id(),
        route.transit_gateway_id(),
        route.network_interface_id(),
        route.instance_id(),
        route.vpc_peering_connection_id(),
        route.gateway_id(),
        route.local_gateway_id(),
        route.carrier_gateway_id(),
        route.egress_only_internet_gateway_id(),
        route.core_network_arn(),
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or("(no target)")
    .to_owned();
    if route.state().is_some_and(|s| s.as_str() == "blackhole") {
        return DefaultRoute::Dead {
            target,
            why: "a blackhole (its target is gone)".into(),
        };
    }
    let out = route.nat_gateway_id().is_some()
        || route.transit_gateway_id().is_some()
        || route.network_interface_id().is_some()
        || route.instance_id().is_some()
        || route
            .gateway_id()
            .is_some_and(|g| g.starts_with("vgw-") || g.starts_with("igw-"));
    if out {
        return DefaultRoute::Out {
            target,
            warning: None,
        };
    }
    let why = if route.vpc_peering_connection_id().is_some() {
        "a VPC peering connection, which carries no traffic beyond the peer VPC (no edge-to-edge routing through its NAT or internet gateway)"
    } else {
        "not a NAT gateway, transit gateway, virtual private gateway or network interface"
    };
    DefaultRoute::Dead {
        target,
        why: why.into(),
    }
}

/// A default route to a NAT gateway, given what EC2 says of the VPC's NAT gateways (`None`: not
/// found): a deleted or failed one leads nowhere; a private one reaches the internet only
/// through its own subnet's routes, which is warned of.
pub fn nat_route(nat: &str, found: Option<(&str, &str)>) -> DefaultRoute {
    match found {
        None => DefaultRoute::Dead {
            target: nat.to_owned(),
            why: "a NAT gateway that does not exist".into(),
        },
        Some((state, _)) if !matches!(state, "available" | "pending") => DefaultRoute::Dead {
            target: nat.to_owned(),
            why: format!("a NAT gateway that is {state}"),
        },
        Some((_, "private")) => DefaultRoute::Out {
            target: nat.to_owned(),
            warning: Some(format!(
                "{nat} is a private NAT gateway: it reaches the internet (ECR, S3, STS, EC2, ELB) only if its own subnet routes on to a transit gateway or another NAT"
            )),
        },
        Some(_) => DefaultRoute::Out {
            target: nat.to_owned(),
            warning: None,
        },
    }
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
            return Err(Usage::BadNetwork {
                vpc_id: vpc_id.to_owned(),
                reason: format!(
                    "its attribute {attribute} is off; EKS needs DNS support and DNS hostnames on. Turn it on with `aws ec2 modify-vpc-attribute --vpc-id {vpc_id} {flag}`, then run again"
                ),
            }
            .into());
        }
    }
    Ok(())
}

/// The checks on a brought network, given what EC2 says (pure, for tests): warnings, and the
/// public subnets to keep out of the cluster's own subnets. `endpoints` are the VPC's endpoints
/// (asked only when a private subnet has no way out).
pub fn check_brought(
    vpc_id: &str,
    region: &str,
    private: &[String],
    public: &[String],
    facts: &[SubnetFacts],
    endpoints: &[EndpointFacts],
) -> Result<(Vec<String>, Vec<String>), Error> {
    let bad = |reason: String| {
        Error::from(Usage::BadNetwork {
            vpc_id: vpc_id.to_owned(),
            reason,
        })
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
    let public_zones: BTreeSet<&str> = public
        .iter()
        .filter_map(|id| find(id).map(|f| f.zone.as_str()))
        .collect();
    if public.is_empty() {
        warnings.push(format!(
            "no public subnets brought (--public-subnets): the AWS Load Balancer Controller will discover the ALB's subnets by their tags, so tag public subnets (routed to an internet gateway) of at least two zones of {vpc_id} `{ELB_ROLE_TAG}=1`, or pass --public-subnets"
        ));
    } else if public_zones.len() < 2 {
        return Err(bad(format!(
            "the public subnets {} lie in {} availability zone ({}); an application load balancer needs subnets in at least two zones. Add a public subnet of another zone to --public-subnets (or leave --public-subnets out and tag public subnets of two zones `{ELB_ROLE_TAG}=1` for the controller to discover)",
            public.join(", "),
            public_zones.len(),
            public_zones.iter().copied().collect::<Vec<_>>().join(", ")
        )));
    }
    for id in private {
        if let Some(DefaultRoute::Out {
            warning: Some(w), ..
        }) = find(id).map(|f| &f.default_route)
            && !warnings.contains(w)
        {
            warnings.push(w.clone());
        }
    }
    // Subnets that share a route table (and so what they lack) are named together.
    let mut stuck: Vec<(Vec<&str>, String)> = Vec::new();
    for f in private.iter().filter_map(find) {
        if let Some(lack) = no_way_out(region, f, endpoints) {
            match stuck.iter_mut().find(|(_, l)| *l == lack) {
                Some((ids, _)) => ids.push(&f.id),
                None => stuck.push((vec![&f.id], lack)),
            }
        }
    }
    let stuck: Vec<String> = stuck
        .into_iter()
        .map(|(ids, lack)| match ids.as_slice() {
            [one] => format!("private subnet {one} {}", lack.replace("{has}", "has")),
            many => format!(
                "private subnets {} {}",
                many.join(", "),
                lack.replace("{has}", "have")
            ),
        })
        .collect();
    if !stuck.is_empty() {
        return Err(bad(format!(
            "Fargate pods in its private subnets could not pull images nor reach STS, EC2 and ELB: {}. Fix: route 0.0.0.0/0 of the route table to a NAT gateway in a public subnet (`aws ec2 create-route --route-table-id <table> --destination-cidr-block 0.0.0.0/0 --nat-gateway-id <nat>`), a transit gateway or a network interface; or create the missing VPC endpoints in {vpc_id} (interface endpoints with private DNS on; for s3 a gateway endpoint on the subnet's route table), then run again",
            stuck.join("; ")
        )));
    }
    Ok((warnings, not_for_control_plane))
}

/// The tag the AWS Load Balancer Controller finds internet-facing subnets by.
pub const ELB_ROLE_TAG: &str = "kubernetes.io/role/elb";

/// What a private subnet lacks to reach ECR, S3, STS, EC2 and ELB (`None`: nothing): a way
/// out through its route table, or else the VPC endpoints of [`ENDPOINT_SERVICES`] it can use;
/// worded after the subnet's id, with `{has}` for the verb.
fn no_way_out(region: &str, subnet: &SubnetFacts, endpoints: &[EndpointFacts]) -> Option<String> {
    let route = match &subnet.default_route {
        DefaultRoute::Out { .. } => return None,
        DefaultRoute::Missing => "no route to 0.0.0.0/0".to_owned(),
        DefaultRoute::Dead { target, why } => {
            format!("a route to 0.0.0.0/0 that goes to {target}, {why}")
        }
    };
    let missing: Vec<String> = ENDPOINT_SERVICES
        .iter()
        .filter_map(|service| endpoint_missing(region, service, subnet, endpoints))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let table = match (&subnet.route_table, subnet.main_table) {
        (Some(t), true) => format!("route table {t}, the VPC's main table"),
        (Some(t), false) => format!("route table {t}"),
        (None, _) => "no route table".to_owned(),
    };
    Some(format!(
        "({table}) {{has}} {route}, and the VPC endpoints needed instead are missing: {}",
        missing.join(", ")
    ))
}

/// Why no endpoint of the VPC serves `service` to `subnet` (`None`: one does). An interface
/// endpoint serves the whole VPC when it is available (or pending) with private DNS on; a
/// gateway endpoint only the route tables it is on.
fn endpoint_missing(
    region: &str,
    service: &str,
    subnet: &SubnetFacts,
    endpoints: &[EndpointFacts],
) -> Option<String> {
    let mut why_not = Vec::new();
    for e in endpoints
        .iter()
        .filter(|e| serves(&e.service_name, region, service))
    {
        // EC2 answers `available`; its API reference spells the values `Available`.
        if !matches!(
            e.state.to_ascii_lowercase().as_str(),
            "available" | "pending"
        ) {
            why_not.push(format!("{} is {}", e.id, e.state));
        } else if e.kind == "Gateway" {
            let on_table = subnet
                .route_table
                .as_ref()
                .is_some_and(|t| e.route_tables.contains(t))
                || subnet.gateway_endpoints.contains(&e.id);
            if on_table {
                return None;
            }
            why_not.push(format!(
                "gateway endpoint {} is not on {}",
                e.id,
                subnet.route_table.as_deref().unwrap_or("its route table")
            ));
        } else if e.kind == "Interface" {
            if e.private_dns {
                return None;
            }
            why_not.push(format!("{} has private DNS off", e.id));
        } else {
            why_not.push(format!("{} is a {} endpoint", e.id, e.kind));
        }
    }
    let name = endpoint_service_name(region, service);
    Some(if why_not.is_empty() {
        name
    } else {
        format!("{name} ({})", why_not.join(", "))
    })
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
    region: &str,
    vpc_id: &str,
    private: &[String],
    public: &[String],
) -> Result<Network, Error> {
    let bad = |reason: String| {
        Error::from(Usage::BadNetwork {
            vpc_id: vpc_id.to_owned(),
            reason,
        })
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
        .filters(vpc_filter(vpc_id))
        .send()
        .await
        .map_err(|e| Error::DescribeRouteTables {
            vpc_id: vpc_id.to_owned(),
            source: e.into(),
        })?;
    let mut facts: Vec<SubnetFacts> = subnets
        .iter()
        .map(|s| subnet_facts(s, tables.route_tables()))
        .collect();
    nat_gateways(ec2, vpc_id, &mut facts).await?;
    let stuck = facts
        .iter()
        .any(|f| private.contains(&f.id) && !matches!(f.default_route, DefaultRoute::Out { .. }));
    let endpoints = if stuck {
        vpc_endpoints(ec2, vpc_id).await?
    } else {
        Vec::new()
    };
    let (warnings, not_for_control_plane) =
        check_brought(vpc_id, region, private, public, &facts, &endpoints)?;
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

fn vpc_filter(vpc_id: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc_id).build()
}

/// A subnet's facts, with its route table: the one explicitly associated, else the VPC's main
/// table.
fn subnet_facts(
    subnet: &aws_sdk_ec2::types::Subnet,
    tables: &[aws_sdk_ec2::types::RouteTable],
) -> SubnetFacts {
    let id = subnet.subnet_id().unwrap_or_default().to_owned();
    let explicit = tables.iter().find(|t| {
        t.associations()
            .iter()
            .any(|a| a.subnet_id() == Some(id.as_str()))
    });
    let main = tables
        .iter()
        .find(|t| t.associations().iter().any(|a| a.main() == Some(true)));
    let table = explicit.or(main);
    let live = |r: &&aws_sdk_ec2::types::Route| r.state().is_none_or(|s| s.as_str() != "blackhole");
    SubnetFacts {
        vpc_id: subnet.vpc_id().unwrap_or_default().to_owned(),
        zone: subnet.availability_zone().unwrap_or_default().to_owned(),
        zone_id: subnet.availability_zone_id().unwrap_or_default().to_owned(),
        route_table: table.and_then(|t| t.route_table_id()).map(str::to_owned),
        main_table: explicit.is_none() && main.is_some(),
        routes_to_internet_gateway: table.is_some_and(|t| {
            t.routes()
                .iter()
                .filter(live)
                .any(|r| r.gateway_id().is_some_and(|g| g.starts_with("igw-")))
        }),
        default_route: table.map_or(DefaultRoute::Missing, |t| default_route(t.routes())),
        gateway_endpoints: table
            .map(|t| {
                t.routes()
                    .iter()
                    .filter(live)
                    .filter_map(|r| r.gateway_id().filter(|g| g.starts_with("vpce-")))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        id,
    }
}

/// Looks at the NAT gateways default routes go to (their state and connectivity), when any
/// does.
async fn nat_gateways(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    facts: &mut [SubnetFacts],
) -> Result<(), Error> {
    let nat_of = |f: &SubnetFacts| match &f.default_route {
        DefaultRoute::Out { target, .. } if target.starts_with("nat-") => Some(target.clone()),
        _ => None,
    };
    if !facts.iter().any(|f| nat_of(f).is_some()) {
        return Ok(());
    }
    let mut known: Vec<(String, String, String)> = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let answer = ec2
            .describe_nat_gateways()
            .filter(vpc_filter(vpc_id))
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| Error::DescribeNatGateways {
                vpc_id: vpc_id.to_owned(),
                source: e.into(),
            })?;
        for nat in answer.nat_gateways() {
            known.push((
                nat.nat_gateway_id().unwrap_or_default().to_owned(),
                nat.state()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                nat.connectivity_type()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_else(|| "public".into()),
            ));
        }
        match answer.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => break,
        }
    }
    for f in facts.iter_mut() {
        if let Some(nat) = nat_of(f) {
            // A deleted NAT gateway stays listed a while; a live one of the same id wins.
            let found = known
                .iter()
                .filter(|(id, _, _)| *id == nat)
                .min_by_key(|(_, state, _)| !matches!(state.as_str(), "available" | "pending"))
                .map(|(_, state, kind)| (state.as_str(), kind.as_str()));
            f.default_route = nat_route(&nat, found);
        }
    }
    Ok(())
}

/// The VPC's endpoints, interface and gateway alike.
async fn vpc_endpoints(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
) -> Result<Vec<EndpointFacts>, Error> {
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let answer = ec2
            .describe_vpc_endpoints()
            .filters(vpc_filter(vpc_id))
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| Error::DescribeVpcEndpoints {
                vpc_id: vpc_id.to_owned(),
                source: e.into(),
            })?;
        for e in answer.vpc_endpoints() {
            found.push(EndpointFacts {
                id: e.vpc_endpoint_id().unwrap_or_default().to_owned(),
                service_name: e.service_name().unwrap_or_default().to_owned(),
                kind: e
                    .vpc_endpoint_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                state: e.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                private_dns: e.private_dns_enabled().unwrap_or(false),
                route_tables: e.route_table_ids().to_vec(),
            });
        }
        match answer.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => break,
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGION: &str = "us-east-2";

    /// A subnet whose route table sends 0.0.0.0/0 to a NAT gateway (or, `igw`, to an internet
    /// gateway).
    fn fact(id: &str, vpc: &str, zone: &str, igw: bool) -> SubnetFacts {
        SubnetFacts {
            id: id.into(),
            vpc_id: vpc.into(),
            zone: zone.into(),
            zone_id: format!("id-{zone}"),
            route_table: Some(if igw { "rtb-public" } else { "rtb-private" }.into()),
            main_table: false,
            routes_to_internet_gateway: igw,
            default_route: DefaultRoute::Out {
                target: if igw { "igw-1" } else { "nat-1" }.into(),
                warning: None,
            },
            gateway_endpoints: Vec::new(),
        }
    }

    fn check(
        private: &[&str],
        public: &[&str],
        facts: &[SubnetFacts],
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        check_brought("vpc-1", REGION, &ids(private), &ids(public), facts, &[])
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
            fact("subnet-5", "vpc-1", "b", true),
        ];
        let refused = check(&["subnet-1", "subnet-2"], &[], &facts)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("subnet-1") && refused.contains("use1-az3"),
            "{refused}"
        );
        let (warnings, kept_out) =
            check(&["subnet-2", "subnet-4"], &["subnet-3", "subnet-5"], &facts).unwrap();
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
    fn brought_networks() {
        let facts = [
            fact("subnet-1", "vpc-1", "a", false),
            fact("subnet-2", "vpc-1", "b", false),
            fact("subnet-3", "vpc-1", "a", true),
            fact("subnet-4", "vpc-2", "b", false),
            fact("subnet-6", "vpc-1", "b", true),
        ];
        let ok = check(&["subnet-1", "subnet-2"], &["subnet-3", "subnet-6"], &facts);
        assert_eq!(ok.unwrap(), (Vec::<String>::new(), Vec::<String>::new()));
        let public_as_private = check(&["subnet-1", "subnet-3"], &[], &facts).unwrap_err();
        assert!(
            public_as_private.to_string().contains("subnet-3"),
            "{public_as_private}"
        );
        let elsewhere = check(&["subnet-1", "subnet-4"], &[], &facts).unwrap_err();
        assert!(elsewhere.to_string().contains("vpc-2"));
        let missing = check(&["subnet-9"], &[], &facts).unwrap_err();
        assert!(missing.to_string().contains("does not exist"));
        let one_zone = check(&["subnet-1"], &[], &facts).unwrap_err();
        assert!(one_zone.to_string().contains("two"));
        let warned = check(
            &["subnet-1", "subnet-2"],
            &["subnet-5", "subnet-6"],
            &[
                fact("subnet-1", "vpc-1", "a", false),
                fact("subnet-2", "vpc-1", "b", false),
                fact("subnet-5", "vpc-1", "a", false),
                fact("subnet-6", "vpc-1", "b", true),
            ],
        )
        .unwrap()
        .0;
        assert_eq!(
            warned.len(),
            1,
            "a public subnet with no internet route is warned of"
        );
        let both = check(&["subnet-1"], &["subnet-1"], &facts);
        assert!(both.is_err());
    }

    #[test]
    fn public_subnets_span_two_zones_or_are_discovered() {
        let facts = [
            fact("subnet-1", "vpc-1", "us-east-2a", false),
            fact("subnet-2", "vpc-1", "us-east-2b", false),
            fact("subnet-3", "vpc-1", "us-east-2a", true),
            fact("subnet-5", "vpc-1", "us-east-2a", true),
        ];
        let refused = check(&["subnet-1", "subnet-2"], &["subnet-3", "subnet-5"], &facts)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("subnet-3, subnet-5")
                && refused.contains("1 availability zone (us-east-2a)")
                && refused.contains("at least two zones")
                && refused.contains("--public-subnets"),
            "{refused}"
        );
        let (warnings, _) = check(&["subnet-1", "subnet-2"], &[], &facts).unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("kubernetes.io/role/elb=1") && w.contains("--public-subnets")),
            "{warnings:?}"
        );
    }

    fn endpoint(id: &str, service: &str, kind: &str) -> EndpointFacts {
        EndpointFacts {
            id: id.into(),
            service_name: endpoint_service_name(REGION, service),
            kind: kind.into(),
            state: "available".into(),
            private_dns: kind == "Interface",
            route_tables: if kind == "Gateway" {
                vec!["rtb-private".into()]
            } else {
                Vec::new()
            },
        }
    }

    fn all_endpoints() -> Vec<EndpointFacts> {
        ENDPOINT_SERVICES
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let kind = if *s == "s3" { "Gateway" } else { "Interface" };
                endpoint(&format!("vpce-{i}"), s, kind)
            })
            .collect()
    }

    #[test]
    fn private_subnets_need_a_way_out_or_the_endpoints() {
        let stuck = |mut f: SubnetFacts, route: DefaultRoute| {
            f.default_route = route;
            f
        };
        let facts = [
            stuck(fact("subnet-1", "vpc-1", "a", false), DefaultRoute::Missing),
            stuck(
                fact("subnet-2", "vpc-1", "b", false),
                DefaultRoute::Dead {
                    target: "pcx-1".into(),
                    why: "a VPC peering connection".into(),
                },
            ),
            fact("subnet-3", "vpc-1", "a", true),
            fact("subnet-4", "vpc-1", "b", true),
        ];
        let private = ids(&["subnet-1", "subnet-2"]);
        let public = ids(&["subnet-3", "subnet-4"]);
        let run = |endpoints: &[EndpointFacts]| {
            check_brought("vpc-1", REGION, &private, &public, &facts, endpoints)
        };
        let refused = run(&[]).unwrap_err().to_string();
        for needle in [
            "private subnet subnet-1 (route table rtb-private) has no route to 0.0.0.0/0",
            "private subnet subnet-2 (route table rtb-private) has a route to 0.0.0.0/0 that goes to pcx-1, a VPC peering connection",
            "com.amazonaws.us-east-2.ecr.api, com.amazonaws.us-east-2.ecr.dkr, com.amazonaws.us-east-2.s3, com.amazonaws.us-east-2.sts, com.amazonaws.us-east-2.elasticloadbalancing, com.amazonaws.us-east-2.ec2",
            "aws ec2 create-route --route-table-id",
            "--nat-gateway-id",
            "gateway endpoint on the subnet's route table",
        ] {
            assert!(refused.contains(needle), "{needle}: {refused}");
        }
        // Subnets that lack the same are named together.
        let same = [
            stuck(fact("subnet-1", "vpc-1", "a", false), DefaultRoute::Missing),
            stuck(fact("subnet-2", "vpc-1", "b", false), DefaultRoute::Missing),
            fact("subnet-3", "vpc-1", "a", true),
            fact("subnet-4", "vpc-1", "b", true),
        ];
        let together = check_brought("vpc-1", REGION, &private, &public, &same, &[])
            .unwrap_err()
            .to_string();
        assert!(
            together.contains(
                "private subnets subnet-1, subnet-2 (route table rtb-private) have no route to 0.0.0.0/0, and the VPC endpoints needed instead are missing: com.amazonaws.us-east-2.ecr.api,"
            ) && together.matches("rtb-private").count() == 1,
            "{together}"
        );
        // Every endpoint, usable: accepted.
        assert!(run(&all_endpoints()).is_ok());
        // One missing, one without private DNS, the gateway endpoint on another table, one
        // pending acceptance: each named.
        let mut some = all_endpoints();
        some.retain(|e| !e.service_name.ends_with(".ecr.dkr"));
        some.iter_mut()
            .find(|e| e.service_name.ends_with(".sts"))
            .unwrap()
            .private_dns = false;
        some.iter_mut()
            .find(|e| e.service_name.ends_with(".s3"))
            .unwrap()
            .route_tables = vec!["rtb-other".into()];
        some.iter_mut()
            .find(|e| e.service_name.ends_with(".ec2"))
            .unwrap()
            .state = "pendingAcceptance".into();
        let refused = run(&some).unwrap_err().to_string();
        for needle in [
            "com.amazonaws.us-east-2.ecr.dkr",
            "com.amazonaws.us-east-2.sts (vpce-3 has private DNS off)",
            "com.amazonaws.us-east-2.s3 (gateway endpoint vpce-2 is not on rtb-private)",
            "com.amazonaws.us-east-2.ec2 (vpce-5 is pendingAcceptance)",
        ] {
            assert!(refused.contains(needle), "{needle}: {refused}");
        }
        assert!(!refused.contains("ecr.api"), "{refused}");
        // A gateway endpoint shows as a prefix-list route to it in the table, too.
        let mut via_route = all_endpoints();
        via_route[2].route_tables.clear();
        assert!(run(&via_route).is_err());
        let mut routed = facts.clone();
        for f in &mut routed {
            f.gateway_endpoints = vec!["vpce-2".into()];
        }
        assert!(check_brought("vpc-1", REGION, &private, &public, &routed, &via_route).is_ok());
    }

    #[test]
    fn default_routes() {
        use aws_sdk_ec2::types::{Route, RouteState};
        let route = |f: fn(
            aws_sdk_ec2::types::builders::RouteBuilder,
        ) -> aws_sdk_ec2::types::builders::RouteBuilder| {
            vec![
                Route::builder()
                    .destination_cidr_block("10.0.0.0/16")
                    .gateway_id("local")
                    .build(),
                f(Route::builder().destination_cidr_block("0.0.0.0/0")).build(),
            ]
        };
        let out = |r: DefaultRoute| matches!(r, DefaultRoute::Out { .. });
        assert!(out(default_route(&route(|r| r.nat_gateway_id("nat-1")))));
        assert!(out(default_route(
            &route(|r| r.transit_gateway_id("tgw-1"))
        )));
        assert!(out(default_route(&route(
            |r| r.network_interface_id("eni-1")
        ))));
        assert!(out(default_route(&route(|r| r.gateway_id("vgw-1")))));
        assert_eq!(
            default_route(&route(|r| r
                .nat_gateway_id("nat-1")
                .state(RouteState::Blackhole))),
            DefaultRoute::Dead {
                target: "nat-1".into(),
                why: "a blackhole (its target is gone)".into()
            }
        );
        assert!(matches!(
            default_route(&route(|r| r.vpc_peering_connection_id("pcx-1"))),
            DefaultRoute::Dead { why, .. } if why.contains("peering")
        ));
        assert_eq!(
            default_route(&route(|r| r
                .destination_cidr_block("10.1.0.0/16")
                .nat_gateway_id("nat-1"))),
            DefaultRoute::Missing
        );
        assert!(matches!(
            nat_route("nat-1", Some(("deleted", "public"))),
            DefaultRoute::Dead { why, .. } if why.contains("deleted")
        ));
        assert!(matches!(
            nat_route("nat-1", None),
            DefaultRoute::Dead { .. }
        ));
        assert!(matches!(
            nat_route("nat-1", Some(("available", "private"))),
            DefaultRoute::Out { warning: Some(w), .. } if w.contains("private NAT")
        ));
        assert_eq!(
            nat_route("nat-1", Some(("pending", "public"))),
            DefaultRoute::Out {
                target: "nat-1".into(),
                warning: None
            }
        );
    }

    #[test]
    fn endpoint_service_names_by_partition() {
        assert_eq!(
            endpoint_service_name("us-east-2", "ecr.api"),
            "com.amazonaws.us-east-2.ecr.api"
        );
        assert_eq!(
            endpoint_service_name("cn-north-1", "sts"),
            "cn.com.amazonaws.cn-north-1.sts"
        );
        assert_eq!(
            endpoint_service_name("eusc-de-east-1", "ec2"),
            "eu.amazonaws.eusc-de-east-1.ec2"
        );
        assert!(serves("com.amazonaws.cn-north-1.s3", "cn-north-1", "s3"));
        assert!(serves(
            "cn.com.amazonaws.cn-north-1.ecr.dkr",
            "cn-north-1",
            "ecr.dkr"
        ));
        assert!(!serves(
            "com.amazonaws.us-east-2.ec2messages",
            "us-east-2",
            "ec2"
        ));
        assert!(!serves("com.amazonaws.us-east-1.sts", "us-east-2", "sts"));
        assert!(!serves(
            "com.amazonaws.us-east-2.api",
            "us-east-2",
            "ecr.api"
        ));
    }
}
