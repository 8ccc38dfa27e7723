//! Zones: the account's own zone ids, and EKS's refusal of zones without capacity.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::{EksOp, eks_op};
use crate::awsproxy::{AwsProxy, AwsReply, Verdict};

/// The account's mapping of zone names to zone ids. moto gives every account the same ids; a
/// real account maps names to ids of its own, so code that trusts a zone *name* to mean a zone
/// fails elsewhere. Swapping two ids makes moto's EC2 report this account's mapping.
#[derive(Debug, Clone, Default)]
pub struct AccountZones {
    /// moto's zone id -> this account's zone id.
    ids: Arc<BTreeMap<String, String>>,
}

impl AccountZones {
    /// moto's mapping, unchanged.
    pub fn moto() -> AccountZones {
        AccountZones::default()
    }

    /// The zone moto reports as `a` is `b` in this account, and the other way round.
    pub fn swapped(a: &str, b: &str) -> AccountZones {
        AccountZones {
            ids: Arc::new(BTreeMap::from([
                (a.to_owned(), b.to_owned()),
                (b.to_owned(), a.to_owned()),
            ])),
        }
    }

    /// This account's id of the zone moto calls `moto_id`.
    pub fn account_id(&self, moto_id: &str) -> String {
        self.ids
            .get(moto_id)
            .cloned()
            .unwrap_or_else(|| moto_id.to_owned())
    }

    fn rewrite_xml(&self, xml: &str) -> String {
        let mut out = String::with_capacity(xml.len());
        let mut rest = xml;
        while let Some(i) = rest.find('>') {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
            let end = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..end];
            match self.ids.get(text) {
                Some(id) => out.push_str(id),
                None => out.push_str(text),
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    /// Makes EC2's DescribeAvailabilityZones, DescribeSubnets and CreateSubnet answers report
    /// this account's zone ids.
    pub fn install(&self, proxy: &AwsProxy) {
        if self.ids.is_empty() {
            return;
        }
        let me = self.clone();
        proxy.rewrite(move |request, reply| {
            if request.service == "ec2"
                && matches!(
                    request.action.as_str(),
                    "DescribeAvailabilityZones" | "DescribeSubnets" | "CreateSubnet"
                )
            {
                reply.body = me.rewrite_xml(&reply.text()).into_bytes();
            }
        });
    }
}

pub(super) fn moto_ec2(endpoint: &str, region: &str) -> aws_sdk_ec2::Client {
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "awsrules",
        ))
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

/// A zone as this account sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Zone {
    name: String,
    id: String,
}

async fn zones_of_subnets(
    ec2: &aws_sdk_ec2::Client,
    zones: &AccountZones,
    subnets: &[String],
) -> Vec<(String, Zone)> {
    let Ok(answer) = ec2
        .describe_subnets()
        .set_subnet_ids(Some(subnets.to_vec()))
        .send()
        .await
    else {
        return Vec::new();
    };
    answer
        .subnets()
        .iter()
        .map(|s| {
            (
                s.subnet_id().unwrap_or_default().to_owned(),
                Zone {
                    name: s.availability_zone().unwrap_or_default().to_owned(),
                    id: zones.account_id(s.availability_zone_id().unwrap_or_default()),
                },
            )
        })
        .collect()
}

async fn usable_zone_names(
    ec2: &aws_sdk_ec2::Client,
    zones: &AccountZones,
    unsupported: &BTreeSet<String>,
) -> Vec<String> {
    let Ok(answer) = ec2.describe_availability_zones().send().await else {
        return Vec::new();
    };
    answer
        .availability_zones()
        .iter()
        .filter(|z| !unsupported.contains(&zones.account_id(z.zone_id().unwrap_or_default())))
        .filter_map(|z| z.zone_name().map(str::to_owned))
        .collect()
}

/// `CreateCluster` answers `UnsupportedAvailabilityZoneException` (with EKS's message and
/// `validZones`) for a subnet whose zone id (in `zones`' mapping) is in `unsupported`;
/// `CreateFargateProfile` answers `InvalidParameterException` for such a subnet. Asks moto's
/// EC2 directly (`moto_endpoint`) where each subnet lies.
pub fn zone_capacity(
    proxy: &AwsProxy,
    moto_endpoint: &str,
    zones: AccountZones,
    unsupported: &[&str],
) {
    let endpoint = moto_endpoint.to_owned();
    let unsupported: Arc<BTreeSet<String>> =
        Arc::new(unsupported.iter().map(|z| (*z).to_owned()).collect());
    proxy.async_rule(move |request| {
        let (endpoint, zones, unsupported) = (endpoint.clone(), zones.clone(), unsupported.clone());
        async move {
            let op = eks_op(&request);
            let body = request.json().unwrap_or(Value::Null);
            let subnets: Vec<String> = match &op {
                EksOp::CreateCluster => &body["resourcesVpcConfig"]["subnetIds"],
                EksOp::CreateFargateProfile(_) => &body["subnets"],
                _ => return Verdict::Pass,
            }
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
            if subnets.is_empty() {
                return Verdict::Pass;
            }
            let ec2 = moto_ec2(&endpoint, &request.region);
            let placed = zones_of_subnets(&ec2, &zones, &subnets).await;
            let Some((subnet, zone)) = placed
                .into_iter()
                .find(|(_, zone)| unsupported.contains(&zone.id))
            else {
                return Verdict::Pass;
            };
            let valid = usable_zone_names(&ec2, &zones, &unsupported).await;
            match op {
                EksOp::CreateCluster => {
                    let cluster = body["name"].as_str().unwrap_or_default();
                    let message = format!(
                        "Cannot create cluster '{cluster}' because {}, the targeted availability zone, does not currently have sufficient capacity to support the cluster. Retry and choose from these availability zones: {}",
                        zone.name,
                        valid.join(", ")
                    );
                    let mut reply = AwsReply::error(
                        &request,
                        400,
                        "UnsupportedAvailabilityZoneException",
                        &message,
                    );
                    reply.body = json!({
                        "message": message,
                        "clusterName": cluster,
                        "validZones": valid,
                    })
                    .to_string()
                    .into_bytes();
                    Verdict::Reply(reply)
                }
                _ => Verdict::Reply(AwsReply::error(
                    &request,
                    400,
                    "InvalidParameterException",
                    &format!(
                        "Fargate is not supported in the availability zone {} ({}) of subnet {subnet}. Choose subnets in: {}",
                        zone.name,
                        zone.id,
                        valid.join(", ")
                    ),
                )),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_are_swapped_in_ec2_answers() {
        let zones = AccountZones::swapped("use1-az6", "use1-az3");
        let xml = "<item><zoneName>us-east-1a</zoneName><zoneId>use1-az6</zoneId></item><item><zoneName>us-east-1e</zoneName><zoneId>use1-az3</zoneId></item><x>use1-az1</x>";
        assert_eq!(
            zones.rewrite_xml(xml),
            "<item><zoneName>us-east-1a</zoneName><zoneId>use1-az3</zoneId></item><item><zoneName>us-east-1e</zoneName><zoneId>use1-az6</zoneId></item><x>use1-az1</x>"
        );
        assert_eq!(zones.account_id("use1-az1"), "use1-az1");
        assert_eq!(AccountZones::moto().account_id("use1-az6"), "use1-az6");
    }
}
