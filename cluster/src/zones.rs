//! The availability zones of the VPC `eks-cluster` makes: chosen by zone id (names map to other
//! ids in every account), leaving out zones where EKS makes no control plane or Fargate runs no
//! pods, instead of taking CloudFormation's `Fn::GetAZs`, whose first zones may be such a zone;
//! and the zones EKS refused for this cluster (its `UnsupportedAvailabilityZoneException`,
//! recorded in the state: [`crate::refusals`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Usage};

/// Zone ids where EKS makes no control plane or Fargate runs no pods, as the EKS user guide
/// lists them and eksctl avoids them (`pkg/az`). Zone names map to other ids in every account,
/// so zones are judged by id. eksctl avoided `cnn1-az4` from 2021 and allows it again since
/// February 2025 (eksctl PR 8240), so it is not listed: should EKS refuse it, its answer is
/// used and the zone recorded (`refusedZoneIds`).
pub const UNSUPPORTED_ZONE_IDS: [&str; 3] = ["use1-az3", "usw1-az2", "cac1-az3"];

/// The most zones the network stack spans: its VPC CIDR is cut in 8 blocks, one public and one
/// private subnet per zone (zones added in place of refused ones included).
pub const MAX_STACK_ZONES: u8 = 4;

/// True for a zone id EKS or Fargate does not serve.
pub fn zone_id_unsupported(id: &str) -> bool {
    UNSUPPORTED_ZONE_IDS.contains(&id)
}

/// One zone of the region, as DescribeAvailabilityZones reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneFacts {
    pub name: String,
    pub id: String,
    /// `availability-zone`, `local-zone` or `wavelength-zone`.
    pub kind: String,
    pub state: String,
}

impl ZoneFacts {
    /// `us-east-2a (use2-az1)`.
    pub fn shown(&self) -> String {
        format!("{} ({})", self.name, self.id)
    }

    /// A standard zone (not a local or wavelength zone) that is available.
    fn standard(&self) -> bool {
        (self.kind.is_empty() || self.kind == "availability-zone")
            && (self.state.is_empty() || self.state == "available")
    }
}

/// The region's available standard zones by name that neither EKS's list
/// ([`UNSUPPORTED_ZONE_IDS`]) nor `refused` (zone ids) rule out.
fn usable<'a>(zones: &'a [ZoneFacts], refused: &[String]) -> Vec<&'a ZoneFacts> {
    let mut usable: Vec<&ZoneFacts> = zones
        .iter()
        .filter(|z| z.standard())
        .filter(|z| !zone_id_unsupported(&z.id) && !refused.contains(&z.id))
        .collect();
    usable.sort_by(|a, b| a.name.cmp(&b.name));
    usable
}

/// The names of the region's zones EKS takes: available standard zones, neither listed nor
/// `refused` (zone ids), by name.
pub fn usable_names(zones: &[ZoneFacts], refused: &[String]) -> Vec<String> {
    usable(zones, refused)
        .iter()
        .map(|z| z.name.clone())
        .collect()
}

/// The zones for the VPC we make (pure, for tests): the first `count` by name of the region's
/// available standard zones, leaving out the zone ids EKS or Fargate does not serve and those
/// EKS refused for this cluster on an earlier run (`refused`, zone ids). Too few left is bad
/// input (exit 2).
pub fn pick_zones(
    region: &str,
    zones: &[ZoneFacts],
    count: u8,
    refused: &[String],
) -> Result<Vec<String>, Error> {
    let mut standard: Vec<&ZoneFacts> = zones.iter().filter(|z| z.standard()).collect();
    standard.sort_by(|a, b| a.name.cmp(&b.name));
    let left_out: Vec<String> = standard
        .iter()
        .filter(|z| zone_id_unsupported(&z.id))
        .map(|z| z.shown())
        .collect();
    let was_refused: Vec<String> = standard
        .iter()
        .filter(|z| !zone_id_unsupported(&z.id) && refused.contains(&z.id))
        .map(|z| z.shown())
        .collect();
    let chosen: Vec<String> = usable(zones, refused)
        .iter()
        .map(|z| z.name.clone())
        .take(usize::from(count))
        .collect();
    if chosen.len() < usize::from(count) {
        let fix = if chosen.len() >= 2 {
            format!("pass --azs {}", chosen.len())
        } else {
            "choose another region".to_owned()
        };
        return Err(Usage::Zones {
            region: region.to_owned(),
            reason: format!(
                "--azs {count} asks for {count} availability zones, but only {} of {region} can run EKS and Fargate{}{}{}; {fix}, or bring a VPC with --vpc-id",
                chosen.len(),
                if chosen.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", chosen.join(", "))
                },
                if left_out.is_empty() {
                    String::new()
                } else {
                    format!(" (left out: {})", left_out.join(", "))
                },
                if was_refused.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (refused by EKS for this cluster, cluster.refusedZoneIds: {})",
                        was_refused.join(", ")
                    )
                }
            ),
        }
        .into());
    }
    if !left_out.is_empty() {
        tracing::info!(
            "leaving out availability zone(s) {}: EKS or Fargate does not run there",
            left_out.join(", ")
        );
    }
    if !was_refused.is_empty() {
        tracing::info!(
            "leaving out availability zone(s) {}: EKS refused them for this cluster before (cluster.refusedZoneIds)",
            was_refused.join(", ")
        );
    }
    Ok(chosen)
}

/// The zones of the region, from DescribeAvailabilityZones.
pub async fn region_zones(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
) -> Result<Vec<ZoneFacts>, Error> {
    let answer = ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| Error::DescribeAvailabilityZones {
            region: region.to_owned(),
            source: e.into(),
        })?;
    Ok(answer
        .availability_zones()
        .iter()
        .map(|z| ZoneFacts {
            name: z.zone_name().unwrap_or_default().to_owned(),
            id: z.zone_id().unwrap_or_default().to_owned(),
            kind: z.zone_type().unwrap_or_default().to_owned(),
            state: z.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        })
        .collect())
}

/// The zones for the VPC we make, from DescribeAvailabilityZones ([`pick_zones`]).
pub async fn choose_zones(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    count: u8,
    refused: &[String],
) -> Result<Vec<String>, Error> {
    pick_zones(region, &region_zones(ec2, region).await?, count, refused)
}

/// The zones EKS's `UnsupportedAvailabilityZoneException` rules out (pure): every standard zone
/// of the region whose name is not among `valid` (the zones EKS names as the ones it would
/// take), or, when EKS named none, the zones of `tried` (those of the subnets sent) that its
/// `message` names before the zones it suggests (`... Retry and choose from ...`).
pub fn refused_by_answer(
    zones: &[ZoneFacts],
    tried: &[ZoneFacts],
    valid: &[String],
    message: &str,
) -> Vec<ZoneFacts> {
    if !valid.is_empty() {
        let mut refused: Vec<ZoneFacts> = zones
            .iter()
            .filter(|z| z.standard() && !valid.contains(&z.name))
            .cloned()
            .collect();
        refused.sort_by(|a, b| a.name.cmp(&b.name));
        return refused;
    }
    let refusal = message.find("Retry").map_or(message, |at| &message[..at]);
    let mut named: Vec<ZoneFacts> = Vec::new();
    for zone in tried {
        let shown = refusal.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
        if shown
            .clone()
            .any(|word| word == zone.name || word == zone.id)
            && !named.contains(zone)
        {
            named.push(zone.clone());
        }
    }
    named
}

/// `count` more zones for the network stack, which spans `in_stack` (zone names) already (pure):
/// the first by name of the usable zones ([`pick_zones`]' rule, `refused` zone ids left out)
/// that it does not span. The reason when there are too few.
pub fn more_zones(
    zones: &[ZoneFacts],
    in_stack: &[String],
    refused: &[String],
    count: usize,
) -> Result<Vec<String>, String> {
    let added: Vec<String> = usable(zones, refused)
        .iter()
        .filter(|z| !in_stack.contains(&z.name))
        .map(|z| z.name.clone())
        .take(count)
        .collect();
    if added.len() < count {
        return Err(format!(
            "the region has {} zone(s) EKS takes that the network does not span yet, {count} needed",
            added.len()
        ));
    }
    Ok(added)
}

/// The zone of each of `subnets` (DescribeSubnets); a subnet EC2 does not report is missing.
pub async fn subnet_zones(
    ec2: &aws_sdk_ec2::Client,
    subnets: &[String],
) -> Result<BTreeMap<String, ZoneFacts>, Error> {
    let ids: Vec<String> = subnets
        .iter()
        .cloned()
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let answer = ec2
        .describe_subnets()
        .set_subnet_ids(Some(ids.clone()))
        .send()
        .await
        .map_err(|e| Error::DescribeSubnets {
            subnets: ids.join(","),
            source: e.into(),
        })?;
    Ok(answer
        .subnets()
        .iter()
        .filter_map(|s| {
            Some((
                s.subnet_id()?.to_owned(),
                ZoneFacts {
                    name: s.availability_zone().unwrap_or_default().to_owned(),
                    id: s.availability_zone_id().unwrap_or_default().to_owned(),
                    kind: String::new(),
                    state: String::new(),
                },
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str, id: &str) -> ZoneFacts {
        ZoneFacts {
            name: name.into(),
            id: id.into(),
            kind: "availability-zone".into(),
            state: "available".into(),
        }
    }

    #[test]
    fn zones_are_chosen_by_id() {
        let us_east_1 = [
            zone("us-east-1b", "use1-az1"),
            zone("us-east-1a", "use1-az3"),
            zone("us-east-1c", "use1-az2"),
            ZoneFacts {
                kind: "local-zone".into(),
                ..zone("us-east-1-bos-1a", "use1-bos1-az1")
            },
        ];
        assert_eq!(
            pick_zones("us-east-1", &us_east_1, 2, &[]).unwrap(),
            ["us-east-1b", "us-east-1c"]
        );
        let err = pick_zones("us-east-1", &us_east_1, 3, &[]).unwrap_err();
        assert_eq!(
            common::StepFailure::exit_code(&err),
            common::step::EXIT_USAGE
        );
        let text = err.to_string();
        assert!(
            text.contains("--azs 3")
                && text.contains("us-east-1a (use1-az3)")
                && text.contains("pass --azs 2"),
            "{text}"
        );
        let one = pick_zones(
            "us-west-1",
            &[
                zone("us-west-1a", "usw1-az1"),
                zone("us-west-1b", "usw1-az2"),
            ],
            2,
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(one.contains("choose another region"), "{one}");
    }

    #[test]
    fn refused_zones_are_never_chosen_again() {
        let us_east_2 = [
            zone("us-east-2a", "use2-az1"),
            zone("us-east-2b", "use2-az2"),
            zone("us-east-2c", "use2-az3"),
        ];
        let refused = vec!["use2-az1".to_owned()];
        assert_eq!(
            pick_zones("us-east-2", &us_east_2, 2, &refused).unwrap(),
            ["us-east-2b", "us-east-2c"]
        );
        let err = pick_zones("us-east-2", &us_east_2, 3, &refused)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("refused by EKS for this cluster")
                && err.contains("us-east-2a (use2-az1)")
                && err.contains("pass --azs 2"),
            "{err}"
        );
        assert_eq!(
            more_zones(
                &us_east_2,
                &["us-east-2a".into(), "us-east-2b".into()],
                &refused,
                1
            )
            .unwrap(),
            ["us-east-2c"]
        );
        assert!(
            more_zones(
                &us_east_2,
                &["us-east-2b".into(), "us-east-2c".into()],
                &refused,
                1
            )
            .unwrap_err()
            .contains("0 zone(s)")
        );
    }

    #[test]
    fn eks_s_answer_names_the_refused_zones() {
        let zones = [
            zone("us-east-1a", "use1-az6"),
            zone("us-east-1b", "use1-az1"),
            zone("us-east-1e", "use1-az3"),
            ZoneFacts {
                kind: "local-zone".into(),
                ..zone("us-east-1-bos-1a", "use1-bos1-az1")
            },
        ];
        let tried = [zones[0].clone(), zones[1].clone()];
        let message = "Cannot create cluster 'c' because us-east-1a, the targeted availability zone, does not currently have sufficient capacity to support the cluster. Retry and choose from these availability zones: us-east-1b";
        let by_valid = refused_by_answer(&zones, &tried, &["us-east-1b".into()], message);
        assert_eq!(
            by_valid.iter().map(|z| z.id.as_str()).collect::<Vec<_>>(),
            ["use1-az6", "use1-az3"],
            "every standard zone EKS does not name as valid"
        );
        let by_message = refused_by_answer(&zones, &tried, &[], message);
        assert_eq!(by_message, [zones[0].clone()], "the zone its message names");
        assert!(refused_by_answer(&zones, &tried, &[], "no zone named").is_empty());
    }
}
