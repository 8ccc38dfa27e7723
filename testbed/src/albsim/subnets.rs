//! How the AWS Load Balancer Controller chooses an ALB's subnets (v2.12.1 and later, as its
//! `pkg/networking/subnet_resolver.go` and `docs/deploy/subnet_discovery.md` describe it), against
//! what EC2 (moto) holds:
//!
//! - **Named** in `alb.ingress.kubernetes.io/subnets` (ids `subnet-…`, else values of the `Name`
//!   tag in the controller's VPC): those, all of which must exist, at most one per zone and at
//!   least two zones. No tag or free-address check.
//! - **Discovered** otherwise, in the controller's VPC (`--aws-vpc-id`):
//!   1. candidates: the subnets tagged with the scheme's role tag (`kubernetes.io/role/elb` for
//!      internet-facing, `kubernetes.io/role/internal-elb` for internal; value `""` or `"1"`);
//!      when none is, every subnet whose reachability matches the scheme (public: its route
//!      table, else the VPC's main one, routes to an internet gateway `igw-…`);
//!   2. filtered: a subnet carrying a `kubernetes.io/cluster/<name>` tag, but none for this
//!      cluster, is dropped; so is one with fewer than 8 free addresses;
//!   3. one subnet per zone: this cluster's tag first, then the lowest id;
//!   4. an ALB needs two zones at least.
//!
//! Errors are worded as the controller words them, so its events read the same.
//!
//! Not modelled: IngressClassParams subnet selectors, local zones and Outposts (every moto zone
//! is an availability zone), the ALBSingleSubnet gate, dual-stack's IPv6 requirement, and the
//! controller keeping an existing ALB's subnets (the simulator resolves them once, when it
//! makes the ALB, which comes to the same).

use std::collections::BTreeMap;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::Filter;

/// The annotation naming the ALB's subnets.
pub const SUBNETS_ANNOTATION: &str = "alb.ingress.kubernetes.io/subnets";
/// The annotation naming the ALB's scheme.
pub const SCHEME_ANNOTATION: &str = "alb.ingress.kubernetes.io/scheme";
/// The role tag of subnets for internet-facing load balancers.
pub const PUBLIC_ROLE_TAG: &str = "kubernetes.io/role/elb";
/// The role tag of subnets for internal load balancers.
pub const INTERNAL_ROLE_TAG: &str = "kubernetes.io/role/internal-elb";
/// The prefix of the cluster tags.
pub const CLUSTER_TAG_PREFIX: &str = "kubernetes.io/cluster";
/// Fewer free addresses than this and a subnet is not discovered.
pub const MIN_FREE_ADDRESSES: i32 = 8;
/// The zones an ALB needs.
pub const MIN_ZONES: usize = 2;

/// What the controller needs to know of a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub zone: String,
    pub tags: BTreeMap<String, String>,
    /// `AvailableIpAddressCount`.
    pub available: i32,
}

/// What the controller needs to know of a route table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    /// The VPC's main route table (the one of every subnet without an association).
    pub main: bool,
    /// The subnets explicitly associated with it.
    pub subnets: Vec<String>,
    /// Whether a route goes to an internet gateway.
    pub to_internet_gateway: bool,
}

/// A load balancer's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    InternetFacing,
    Internal,
}

impl Scheme {
    /// The scheme an Ingress asks for (its annotation), else the controller's default
    /// (`--default-load-balancer-scheme`, `internal` unless set).
    pub fn of(annotation: Option<&str>, default: &str) -> Result<Scheme, String> {
        match annotation.unwrap_or(default) {
            "internet-facing" => Ok(Scheme::InternetFacing),
            "internal" => Ok(Scheme::Internal),
            other => Err(format!("unknown scheme: {other}")),
        }
    }

    fn role_tag(self) -> &'static str {
        match self {
            Scheme::InternetFacing => PUBLIC_ROLE_TAG,
            Scheme::Internal => INTERNAL_ROLE_TAG,
        }
    }
}

/// Go's `%v` of a string slice: `[a b]`.
fn go_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("[{}]", items.join(" "))
}

fn cluster_tag(cluster: &str) -> String {
    format!("{CLUSTER_TAG_PREFIX}/{cluster}")
}

fn has_role(subnet: &Subnet, role: &str) -> bool {
    subnet
        .tags
        .get(role)
        .is_some_and(|v| v.is_empty() || v == "1")
}

/// Public when its route table (its own, else the main one) routes to an internet gateway.
fn is_public(subnet: &str, tables: &[RouteTable]) -> bool {
    let own = tables
        .iter()
        .find(|t| t.subnets.iter().any(|s| s == subnet));
    own.or_else(|| tables.iter().find(|t| t.main))
        .is_some_and(|t| t.to_internet_gateway)
}

/// No cluster tag, or one for `cluster`.
fn eligible_by_cluster_tag(subnet: &Subnet, cluster: &str) -> bool {
    let ours = cluster_tag(cluster);
    subnet.tags.contains_key(&ours)
        || !subnet
            .tags
            .keys()
            .any(|k| k.starts_with(CLUSTER_TAG_PREFIX))
}

/// One subnet per zone (this cluster's tag first, then the lowest id), in id order.
fn one_per_zone(eligible: Vec<Subnet>, cluster: &str) -> Vec<Subnet> {
    let ours = cluster_tag(cluster);
    let mut by_zone: BTreeMap<String, Vec<Subnet>> = BTreeMap::new();
    for subnet in eligible {
        by_zone.entry(subnet.zone.clone()).or_default().push(subnet);
    }
    let mut chosen: Vec<Subnet> = by_zone
        .into_values()
        .filter_map(|mut in_zone| {
            in_zone.sort_by(|a, b| {
                let (a_ours, b_ours) = (a.tags.contains_key(&ours), b.tags.contains_key(&ours));
                b_ours.cmp(&a_ours).then_with(|| a.id.cmp(&b.id))
            });
            in_zone.into_iter().next()
        })
        .collect();
    chosen.sort_by(|a, b| a.id.cmp(&b.id));
    chosen
}

fn at_least_two_zones(subnets: &[Subnet]) -> Result<(), String> {
    if subnets.len() < MIN_ZONES {
        return Err(format!(
            "subnets count less than minimal required count: {} < {MIN_ZONES}",
            subnets.len()
        ));
    }
    Ok(())
}

/// Discovery among the subnets of the controller's VPC (see the module documentation); the
/// error as the controller words it, before its `couldn't auto-discover subnets: ` prefix.
pub fn discover(
    in_vpc: &[Subnet],
    tables: &[RouteTable],
    scheme: Scheme,
    cluster: &str,
) -> Result<Vec<Subnet>, String> {
    let role = scheme.role_tag();
    let mut candidates: Vec<Subnet> = in_vpc
        .iter()
        .filter(|s| has_role(s, role))
        .cloned()
        .collect();
    if candidates.is_empty() {
        let public = scheme == Scheme::InternetFacing;
        candidates = in_vpc
            .iter()
            .filter(|s| is_public(&s.id, tables) == public)
            .cloned()
            .collect();
    }
    let evaluated = candidates.len();
    let (mut other_clusters, mut too_full) = (0, 0);
    let mut eligible = Vec::new();
    for subnet in candidates {
        if !eligible_by_cluster_tag(&subnet, cluster) {
            other_clusters += 1;
        } else if subnet.available < MIN_FREE_ADDRESSES {
            too_full += 1;
        } else {
            eligible.push(subnet);
        }
    }
    let chosen = one_per_zone(eligible, cluster);
    if chosen.is_empty() {
        return Err(format!(
            "unable to resolve at least one subnet. Evaluated {evaluated} subnets: {other_clusters} are tagged for other clusters, and {too_full} have insufficient available IP addresses"
        ));
    }
    at_least_two_zones(&chosen)?;
    Ok(chosen)
}

/// The checks of subnets named in the annotation (found, in the order named).
pub fn check_named(found: Vec<Subnet>) -> Result<Vec<Subnet>, String> {
    if found.is_empty() {
        return Err("unable to resolve at least one subnet".into());
    }
    let mut by_zone: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for subnet in &found {
        by_zone.entry(&subnet.zone).or_default().push(&subnet.id);
    }
    if let Some((zone, ids)) = by_zone.iter().find(|(_, ids)| ids.len() > 1) {
        return Err(format!(
            "multiple subnets in same Availability Zone {zone}: {}",
            go_list(ids)
        ));
    }
    at_least_two_zones(&found)?;
    Ok(found)
}

/// The words of an EC2 error, as the controller (aws-sdk-go-v2) shows one.
fn ec2_error<E>(operation: &str, error: &aws_sdk_ec2::error::SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (error.code(), error.message()) {
        (Some(code), message) => format!(
            "operation error EC2: {operation}, https response error StatusCode: {}, api error {code}: {}",
            error
                .raw_response()
                .map(|r| r.status().as_u16())
                .unwrap_or(400),
            message.unwrap_or_default()
        ),
        (None, _) => format!("operation error EC2: {operation}, {error}"),
    }
}

fn subnet_of(s: &aws_sdk_ec2::types::Subnet) -> Subnet {
    Subnet {
        id: s.subnet_id().unwrap_or_default().to_owned(),
        zone: s.availability_zone().unwrap_or_default().to_owned(),
        tags: s
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        available: s.available_ip_address_count().unwrap_or(0),
    }
}

async fn describe_subnets(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
    filters: Vec<Filter>,
) -> Result<Vec<Subnet>, String> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_subnets()
        .set_subnet_ids((!ids.is_empty()).then(|| ids.to_vec()))
        .set_filters((!filters.is_empty()).then_some(filters))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ec2_error("DescribeSubnets", &e))?;
        out.extend(page.subnets().iter().map(subnet_of));
    }
    Ok(out)
}

fn vpc_filter(vpc: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc).build()
}

async fn route_tables(ec2: &aws_sdk_ec2::Client, vpc: &str) -> Result<Vec<RouteTable>, String> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_route_tables()
        .filters(vpc_filter(vpc))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ec2_error("DescribeRouteTables", &e))?;
        out.extend(page.route_tables().iter().map(|t| {
            RouteTable {
                main: t.associations().iter().any(|a| a.main() == Some(true)),
                subnets: t
                    .associations()
                    .iter()
                    .filter_map(|a| a.subnet_id().map(str::to_owned))
                    .collect(),
                to_internet_gateway: t
                    .routes()
                    .iter()
                    .any(|r| r.gateway_id().is_some_and(|g| g.starts_with("igw"))),
            }
        }));
    }
    Ok(out)
}

/// The subnets named in the annotation's value (ids, else `Name` tags in `vpc`), in its order.
async fn named(ec2: &aws_sdk_ec2::Client, vpc: &str, value: &str) -> Result<Vec<Subnet>, String> {
    let wanted: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let (ids, names): (Vec<String>, Vec<String>) = wanted
        .iter()
        .cloned()
        .partition(|w| w.starts_with("subnet-"));
    let mut by_id = Vec::new();
    if !ids.is_empty() {
        by_id = describe_subnets(ec2, &ids, Vec::new()).await?;
        if by_id.len() != ids.len() {
            let found: Vec<&str> = by_id.iter().map(|s| s.id.as_str()).collect();
            return Err(format!(
                "couldn't find all subnets, want: {}, found: {}",
                go_list(&ids),
                go_list(&found)
            ));
        }
    }
    let mut by_name = Vec::new();
    if !names.is_empty() {
        let filters = vec![
            vpc_filter(vpc),
            Filter::builder()
                .name("tag:Name")
                .set_values(Some(names.clone()))
                .build(),
        ];
        by_name = describe_subnets(ec2, &[], filters).await?;
        by_name.sort_by(|a, b| a.id.cmp(&b.id));
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !by_name.iter().any(|s| s.tags.get("Name") == Some(*n)))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "couldn't find all subnets, missing names: {}",
                go_list(&missing.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            ));
        }
    }
    let mut used: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for want in &wanted {
        if want.starts_with("subnet-") {
            if let Some(found) = by_id.iter().find(|s| &s.id == want) {
                out.push(found.clone());
            }
        } else {
            let same: Vec<&Subnet> = by_name
                .iter()
                .filter(|s| s.tags.get("Name") == Some(want))
                .collect();
            let index = used.entry(want.as_str()).or_default();
            match same.get(*index) {
                Some(found) => out.push((*found).clone()),
                None => {
                    return Err(format!(
                        "subnet with Name tag {want:?} requested {} times but only {} subnet(s) found with that name",
                        *index + 1,
                        same.len()
                    ));
                }
            }
            *index += 1;
        }
    }
    Ok(out)
}

/// The ALB's subnets for an Ingress with these annotations, as the controller of `cluster` in
/// `vpc` resolves them; the error as the controller's `FailedBuildModel` event words it after
/// `Failed build model due to `.
pub async fn resolve(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    cluster: &str,
    annotations: &BTreeMap<String, String>,
    default_scheme: &str,
) -> Result<Vec<Subnet>, String> {
    let scheme = Scheme::of(
        annotations.get(SCHEME_ANNOTATION).map(String::as_str),
        default_scheme,
    )?;
    if let Some(value) = annotations.get(SUBNETS_ANNOTATION) {
        let found = named(ec2, vpc, value)
            .await
            .map_err(|e| format!("failed to list subnets by names or IDs: {e}"))?;
        return check_named(found);
    }
    let discovered = async {
        let in_vpc = describe_subnets(ec2, &[], vec![vpc_filter(vpc)]).await?;
        let tables = route_tables(ec2, vpc).await?;
        discover(&in_vpc, &tables, scheme, cluster)
    };
    discovered
        .await
        .map_err(|e| format!("couldn't auto-discover subnets: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, zone: &str, tags: &[(&str, &str)], available: i32) -> Subnet {
        Subnet {
            id: id.into(),
            zone: zone.into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            available,
        }
    }

    fn ids(subnets: &[Subnet]) -> Vec<&str> {
        subnets.iter().map(|s| s.id.as_str()).collect()
    }

    const ELB: (&str, &str) = (PUBLIC_ROLE_TAG, "1");

    #[test]
    fn role_tagged_subnets_only_one_per_zone_ours_first() {
        let all = [
            subnet("subnet-1", "a", &[ELB], 100),
            subnet("subnet-0", "a", &[(PUBLIC_ROLE_TAG, "")], 100),
            subnet(
                "subnet-9",
                "b",
                &[ELB, ("kubernetes.io/cluster/demo", "owned")],
                100,
            ),
            subnet("subnet-2", "b", &[ELB], 100),
            // Not tagged: left out while others are.
            subnet("subnet-3", "c", &[], 100),
        ];
        let chosen = discover(&all, &[], Scheme::InternetFacing, "demo").unwrap();
        assert_eq!(ids(&chosen), ["subnet-0", "subnet-9"]);
    }

    #[test]
    fn other_clusters_and_full_subnets_are_dropped() {
        let all = [
            subnet(
                "subnet-1",
                "a",
                &[ELB, ("kubernetes.io/cluster/other", "owned")],
                100,
            ),
            subnet(
                "subnet-2",
                "b",
                &[ELB, ("kubernetes.io/cluster/other", "shared")],
                100,
            ),
        ];
        assert_eq!(
            discover(&all, &[], Scheme::InternetFacing, "demo").unwrap_err(),
            "unable to resolve at least one subnet. Evaluated 2 subnets: 2 are tagged for other clusters, and 0 have insufficient available IP addresses"
        );
        let both = [
            subnet(
                "subnet-1",
                "a",
                &[
                    ELB,
                    ("kubernetes.io/cluster/other", "owned"),
                    ("kubernetes.io/cluster/demo", "shared"),
                ],
                100,
            ),
            subnet("subnet-2", "b", &[ELB], 7),
            subnet("subnet-3", "c", &[ELB], 8),
        ];
        let chosen = discover(&both, &[], Scheme::InternetFacing, "demo").unwrap();
        assert_eq!(ids(&chosen), ["subnet-1", "subnet-3"]);
    }

    #[test]
    fn one_zone_is_not_enough() {
        let all = [
            subnet("subnet-1", "a", &[ELB], 100),
            subnet("subnet-2", "a", &[ELB], 100),
        ];
        assert_eq!(
            discover(&all, &[], Scheme::InternetFacing, "demo").unwrap_err(),
            "subnets count less than minimal required count: 1 < 2"
        );
    }

    #[test]
    fn untagged_vpcs_fall_back_to_reachability() {
        let all = [
            subnet("subnet-pub-a", "a", &[], 100),
            subnet("subnet-pub-b", "b", &[], 100),
            subnet("subnet-priv-a", "a", &[], 100),
            subnet("subnet-priv-b", "b", &[], 100),
        ];
        let tables = [
            RouteTable {
                main: true,
                subnets: vec![],
                to_internet_gateway: false,
            },
            RouteTable {
                main: false,
                subnets: vec!["subnet-pub-a".into(), "subnet-pub-b".into()],
                to_internet_gateway: true,
            },
        ];
        let public = discover(&all, &tables, Scheme::InternetFacing, "demo").unwrap();
        assert_eq!(ids(&public), ["subnet-pub-a", "subnet-pub-b"]);
        let private = discover(&all, &tables, Scheme::Internal, "demo").unwrap();
        assert_eq!(ids(&private), ["subnet-priv-a", "subnet-priv-b"]);
        // Internal-elb tags are not public candidates, and no route out is not public.
        let tagged_internal = [
            subnet("subnet-1", "a", &[(INTERNAL_ROLE_TAG, "1")], 100),
            subnet("subnet-2", "b", &[(INTERNAL_ROLE_TAG, "1")], 100),
        ];
        assert!(
            discover(
                &tagged_internal,
                &tables[..1],
                Scheme::InternetFacing,
                "demo"
            )
            .unwrap_err()
            .starts_with("unable to resolve at least one subnet. Evaluated 0 subnets")
        );
    }

    #[test]
    fn named_subnets_need_two_zones_one_each() {
        let two = vec![
            subnet("subnet-2", "b", &[], 3),
            subnet(
                "subnet-1",
                "a",
                &[("kubernetes.io/cluster/other", "owned")],
                3,
            ),
        ];
        assert_eq!(ids(&check_named(two).unwrap()), ["subnet-2", "subnet-1"]);
        let same_zone = vec![
            subnet("subnet-1", "a", &[], 9),
            subnet("subnet-2", "a", &[], 9),
        ];
        assert_eq!(
            check_named(same_zone).unwrap_err(),
            "multiple subnets in same Availability Zone a: [subnet-1 subnet-2]"
        );
        assert_eq!(
            check_named(vec![subnet("subnet-1", "a", &[], 9)]).unwrap_err(),
            "subnets count less than minimal required count: 1 < 2"
        );
    }

    #[test]
    fn schemes() {
        assert_eq!(Scheme::of(None, "internal"), Ok(Scheme::Internal));
        assert_eq!(
            Scheme::of(Some("internet-facing"), "internal"),
            Ok(Scheme::InternetFacing)
        );
        assert_eq!(
            Scheme::of(Some("public"), "internal").unwrap_err(),
            "unknown scheme: public"
        );
    }
}
