//! EKS's refusal of availability zones, used at once and never forgotten. `CreateCluster`
//! answers `UnsupportedAvailabilityZoneException` when a subnet's zone has no capacity for a
//! control plane, naming the zones it would take (`validZones`). The zone list of
//! [`crate::zones`] cannot know every such zone, so the answer is used before anything else is
//! made ([`create_cluster`]): the refused zone ids are recorded in the state
//! (`refusedZoneIds`), the subnets in them are left out of the cluster and its Fargate profile,
//! and our own network stack gets subnets in other zones in their place (an update that only
//! adds subnets: the VPC, its NAT gateway and the other subnets stay); then `CreateCluster` is
//! sent again, in the same run. A brought VPC is never changed: the cluster is made in its
//! other private subnets when they span two zones, else the run stops naming the subnets, the
//! zones EKS takes and what was made. On every later run ([`fit`]) the recorded zones are left
//! out the same way, and a network made anew never uses them ([`crate::zones::pick_zones`]).

use std::collections::BTreeSet;
use std::time::Duration;

use common::State;
use common::aws::AwsError;

use crate::network::{self, Network};
use crate::plan::NetworkPlan;
use crate::zones::{self, ZoneFacts};
use crate::{Clients, Error, SECTION, Section, Usage, eks};

/// How many times `CreateCluster` is sent when EKS refuses zones (each refusal rules out more).
pub const ATTEMPTS: usize = 3;

/// How many zones the cluster's private subnets must span: the asked `--azs` for our stack, two
/// (EKS's minimum) for a brought VPC.
fn wanted(plan: &NetworkPlan) -> usize {
    match plan {
        NetworkPlan::Stack { azs, .. } => usize::from(*azs).max(2),
        NetworkPlan::Brought { .. } => 2,
    }
}

/// Leaves the subnets in the zones the section records as refused out of the network the
/// cluster and its Fargate profile get, and gives our stack subnets in other zones when too
/// few are left. Nothing to do (and no call) when no zone was refused. With `refusal` (EKS's
/// answer in this run), a brought VPC left with too few zones fails (exit 1: the roles were
/// made); without it (a later run, nothing made yet) that is bad input (exit 2).
pub async fn fit(
    clients: &Clients,
    section: &Section,
    region: &str,
    plan: &NetworkPlan,
    mut net: Network,
    refusal: Option<AwsError>,
    timeout: Duration,
) -> Result<Network, Error> {
    let refused = &section.refused_zone_ids;
    if refused.is_empty() {
        return Ok(net);
    }
    let cluster = section.facts.name.as_str();
    let want = wanted(plan);
    let refused_error = |detail: String, source: Option<AwsError>| Error::ZonesRefused {
        cluster: cluster.to_owned(),
        refused: refused.join(", "),
        detail,
        source,
    };
    let mut added = false;
    let mut left_out: Vec<String> = Vec::new();
    loop {
        let all: Vec<String> = net
            .private_subnet_ids
            .iter()
            .chain(&net.public_subnet_ids)
            .cloned()
            .collect();
        let zone_of = zones::subnet_zones(&clients.ec2, &all).await?;
        let dropped: Vec<String> = net
            .leave_out(&zone_of, refused)
            .into_iter()
            .filter(|d| !left_out.contains(d))
            .collect();
        if !dropped.is_empty() {
            tracing::info!(
                "leaving private subnet(s) {} out of cluster {cluster} and its Fargate profile: EKS refused their zones (cluster.refusedZoneIds)",
                dropped.join(", ")
            );
        }
        left_out.extend(dropped);
        let left = net.private_zones(&zone_of);
        if left.len() >= want {
            return Ok(net);
        }
        let spread = format!(
            "{}the private subnets left ({}) span {} zone(s){}",
            if left_out.is_empty() {
                String::new()
            } else {
                format!(
                    "the private subnets in those zones are left out ({}); ",
                    left_out.join(", ")
                )
            },
            if net.private_subnet_ids.is_empty() {
                "none".to_owned()
            } else {
                net.private_subnet_ids.join(", ")
            },
            left.len(),
            if left.is_empty() {
                String::new()
            } else {
                format!(" ({})", left.iter().cloned().collect::<Vec<_>>().join(", "))
            }
        );
        if !section.network_created_by_us {
            let valid =
                zones::usable_names(&zones::region_zones(&clients.ec2, region).await?, refused);
            let reason = format!(
                "{spread}, and EKS needs private subnets in two zones it takes ({}); bring private subnets of those zones with --private-subnets",
                valid.join(", ")
            );
            return Err(match refusal {
                None => Usage::Zones {
                    region: region.to_owned(),
                    reason: format!(
                        "EKS refused zone(s) {} for cluster {cluster} on an earlier run (cluster.refusedZoneIds); {reason}",
                        refused.join(", ")
                    ),
                }
                .into(),
                Some(source) => refused_error(
                    format!(
                        "{reason}. The brought VPC was not changed; the IAM roles made are recorded in the state and used again on the next run"
                    ),
                    Some(source),
                ),
            });
        }
        if added {
            return Err(refused_error(
                format!("{spread} after subnets were added to the network stack"),
                refusal,
            ));
        }
        let stack_name = network::stack_name(cluster);
        let Some(stack) = network::describe_stack(&clients.cloudformation, &stack_name).await?
        else {
            return Err(Error::NetworkStackZones {
                stack: stack_name,
                reason: "it does not exist".into(),
            });
        };
        let spans = network::stack_zones(&stack);
        let region_zones = zones::region_zones(&clients.ec2, region).await?;
        let more = zones::more_zones(&region_zones, &spans, refused, want - left.len())
            .map_err(|reason| {
                refused_error(
                    format!(
                        "{spread}; {reason}. Delete the cluster's network (eks-cluster delete) and create it with --azs 2 or in another region, or bring a VPC with --vpc-id"
                    ),
                    refusal.clone(),
                )
            })?;
        net = network::add_zones(&clients.cloudformation, cluster, &more, timeout).await?;
        added = true;
    }
}

/// `CreateCluster` with the network's cluster subnets; when EKS refuses zones, records them
/// (every zone it does not name as valid), fits the network ([`fit`]) and sends it again, at
/// most [`ATTEMPTS`] times. The section's subnets follow the network; `net` is the network the
/// cluster was made in.
#[allow(clippy::too_many_arguments)]
pub async fn create_cluster(
    state: &mut State,
    section: &mut Section,
    clients: &Clients,
    region: &str,
    plan: &NetworkPlan,
    net: &mut Network,
    mut spec: eks::ClusterSpec,
    timeout: Duration,
) -> Result<eks::Cluster, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        spec.subnet_ids = net.cluster_subnet_ids();
        let (valid, source) = match eks::create(&clients.eks, &spec).await {
            Err(Error::UnsupportedZones {
                valid_zones,
                source,
                ..
            }) => (valid_zones, source),
            other => return other,
        };
        let tried: Vec<ZoneFacts> = zones::subnet_zones(&clients.ec2, &spec.subnet_ids)
            .await?
            .into_values()
            .collect::<Vec<_>>();
        let region_zones = zones::region_zones(&clients.ec2, region).await?;
        let known: BTreeSet<&String> = section.refused_zone_ids.iter().collect();
        let new: Vec<ZoneFacts> =
            zones::refused_by_answer(&region_zones, &tried, &valid, source.text())
                .into_iter()
                .filter(|z| !known.contains(&z.id))
                .collect();
        if new.is_empty() {
            return Err(Error::CreateCluster {
                cluster: spec.name.clone(),
                source,
            });
        }
        tracing::warn!(
            "EKS refused availability zone(s) {} for cluster {} ({}); recorded in the state (cluster.refusedZoneIds), they are never chosen again, and the cluster is made in other zones",
            new.iter()
                .map(ZoneFacts::shown)
                .collect::<Vec<_>>()
                .join(", "),
            spec.name,
            source.text()
        );
        section
            .refused_zone_ids
            .extend(new.iter().map(|z| z.id.clone()));
        state.set_section(SECTION, section);
        if attempt >= ATTEMPTS {
            return Err(Error::ZonesRefused {
                cluster: spec.name.clone(),
                refused: section.refused_zone_ids.join(", "),
                detail: format!("EKS refused zones {ATTEMPTS} times; run create again"),
                source: Some(source),
            });
        }
        *net = fit(
            clients,
            section,
            region,
            plan,
            net.clone(),
            Some(source),
            timeout,
        )
        .await?;
        section.facts.public_subnet_ids = net.public_subnet_ids.clone();
        section.facts.private_subnet_ids = net.private_subnet_ids.clone();
        state.set_section(SECTION, section);
    }
}
