//! The availability zones of the VPC `eks-cluster` makes: chosen by zone id (names map to other
//! ids in every account), leaving out zones where EKS makes no control plane or Fargate runs no
//! pods, instead of taking CloudFormation's `Fn::GetAZs`, whose first zones may be such a zone.

use crate::error::{Error, Usage};

/// Zone ids where EKS makes no control plane or Fargate runs no pods, as the EKS user guide
/// lists them. Zone names map to other ids in every account, so zones are judged by id.
pub const UNSUPPORTED_ZONE_IDS: [&str; 3] = ["use1-az3", "usw1-az2", "cac1-az3"];

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

/// The zones for the VPC we make (pure, for tests): the first `count` by name of the region's
/// available standard zones, leaving out the zone ids EKS or Fargate does not serve. Too few
/// left is bad input (exit 2).
pub fn pick_zones(region: &str, zones: &[ZoneFacts], count: u8) -> Result<Vec<String>, Error> {
    let mut usable: Vec<&ZoneFacts> = zones
        .iter()
        .filter(|z| z.kind.is_empty() || z.kind == "availability-zone")
        .filter(|z| z.state.is_empty() || z.state == "available")
        .collect();
    usable.sort_by(|a, b| a.name.cmp(&b.name));
    let left_out: Vec<String> = usable
        .iter()
        .filter(|z| zone_id_unsupported(&z.id))
        .map(|z| format!("{} ({})", z.name, z.id))
        .collect();
    let chosen: Vec<String> = usable
        .iter()
        .filter(|z| !zone_id_unsupported(&z.id))
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
                "--azs {count} asks for {count} availability zones, but only {} of {region} can run EKS and Fargate{}{}; {fix}, or bring a VPC with --vpc-id",
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
    Ok(chosen)
}

/// The zones for the VPC we make, from DescribeAvailabilityZones ([`pick_zones`]).
pub async fn choose_zones(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    count: u8,
) -> Result<Vec<String>, Error> {
    let answer = ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| Error::DescribeAvailabilityZones {
            region: region.to_owned(),
            source: e.into(),
        })?;
    let facts: Vec<ZoneFacts> = answer
        .availability_zones()
        .iter()
        .map(|z| ZoneFacts {
            name: z.zone_name().unwrap_or_default().to_owned(),
            id: z.zone_id().unwrap_or_default().to_owned(),
            kind: z.zone_type().unwrap_or_default().to_owned(),
            state: z.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        })
        .collect();
    pick_zones(region, &facts, count)
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
            pick_zones("us-east-1", &us_east_1, 2).unwrap(),
            ["us-east-1b", "us-east-1c"]
        );
        let err = pick_zones("us-east-1", &us_east_1, 3).unwrap_err();
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
        )
        .unwrap_err()
        .to_string();
        assert!(one.contains("choose another region"), "{one}");
    }
}
