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
/// public subnets to keep out of the cluster's own subnets.
pub fn check_brought(
    vpc_id: &str,
    private: &[String],
    public: &[String],
    facts: &[SubnetFacts],
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
