//! Room in the region for what `eks-cluster create` makes: one more VPC and one more Elastic IP
//! (for its NAT gateway), against the account's quotas.

use aws_config::SdkConfig;
use common::aws::AwsError;
use serde_json::json;

use super::aws_error;
use crate::report::Check;

/// Service Quotas' code of "VPCs per Region" (service `vpc`).
pub const VPC_QUOTA_CODE: &str = "L-F678F1CE";
/// Service Quotas' code of "EC2-VPC Elastic IPs" (service `ec2`), named in the advice.
pub const EIP_QUOTA_CODE: &str = "L-0263D0A3";
/// The documented default of both quotas, assumed when neither API answers.
pub const DOCUMENTED_DEFAULT: u64 = 5;

/// Where a limit came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitSource {
    /// Service Quotas, the value applied to the account.
    Applied,
    /// Service Quotas, the AWS default.
    AwsDefault,
    /// EC2 `DescribeAccountAttributes`.
    AccountAttribute(String),
    /// Nothing answered: the documented default, and why.
    Assumed(String),
}

impl LimitSource {
    fn describe(&self) -> String {
        match self {
            LimitSource::Applied => "the account's quota".into(),
            LimitSource::AwsDefault => "the AWS default quota".into(),
            LimitSource::AccountAttribute(name) => format!("account attribute {name}"),
            LimitSource::Assumed(_) => "the documented default".into(),
        }
    }

    fn id(&self) -> &'static str {
        match self {
            LimitSource::Applied => "service-quotas",
            LimitSource::AwsDefault => "aws-default-quota",
            LimitSource::AccountAttribute(_) => "account-attribute",
            LimitSource::Assumed(_) => "documented-default",
        }
    }
}

/// The room check: `used` of `limit`, one more needed. Fails without room; warns when the limit
/// is only assumed.
pub fn room_result(
    name: &'static str,
    what: &str,
    region: &str,
    used: usize,
    limit: u64,
    source: &LimitSource,
    fix: &str,
) -> Check {
    let data = json!({"used": used, "limit": limit, "limitSource": source.id(), "region": region});
    let base = format!(
        "{used} of {limit} {what} used in {region} ({})",
        source.describe()
    );
    if used as u64 >= limit {
        let mut check = Check::fail(
            name,
            format!("{base}: no room for the one eks-cluster create makes"),
        )
        .fix(fix)
        .data(data);
        if let LimitSource::Assumed(why) = source {
            check = check.details(vec![format!("the quota could not be read: {why}")]);
        }
        return check;
    }
    match source {
        LimitSource::Assumed(why) => Check::warn(name, format!("{base}: room for one more"))
            .details(vec![format!("the quota could not be read: {why}")])
            .data(data),
        _ => Check::ok(name, format!("{base}: room for one more")).data(data),
    }
}

fn quota_value(value: Option<f64>) -> Option<u64> {
    value
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64)
}

/// "VPCs per Region": applied quota, else the AWS default, else the documented 5.
async fn vpc_limit(sdk: &SdkConfig) -> (u64, LimitSource) {
    let quotas = aws_sdk_servicequotas::Client::new(sdk);
    let applied = quotas
        .get_service_quota()
        .service_code("vpc")
        .quota_code(VPC_QUOTA_CODE)
        .send()
        .await
        .map_err(aws_error);
    let applied_err = match applied {
        Ok(out) => match quota_value(out.quota().and_then(|q| q.value())) {
            Some(v) => return (v, LimitSource::Applied),
            None => "GetServiceQuota gave no value".to_owned(),
        },
        Err(err) => format!("GetServiceQuota: {err}"),
    };
    tracing::debug!("{applied_err}");
    let default = quotas
        .get_aws_default_service_quota()
        .service_code("vpc")
        .quota_code(VPC_QUOTA_CODE)
        .send()
        .await
        .map_err(aws_error);
    let default_err = match default {
        Ok(out) => match quota_value(out.quota().and_then(|q| q.value())) {
            Some(v) => return (v, LimitSource::AwsDefault),
            None => "GetAWSDefaultServiceQuota gave no value".to_owned(),
        },
        Err(err) => format!("GetAWSDefaultServiceQuota: {err}"),
    };
    (
        DOCUMENTED_DEFAULT,
        LimitSource::Assumed(format!("{applied_err}; {default_err}")),
    )
}

async fn count_vpcs(ec2: &aws_sdk_ec2::Client) -> Result<usize, AwsError> {
    let mut count = 0;
    let mut token: Option<String> = None;
    loop {
        let out = ec2
            .describe_vpcs()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(aws_error)?;
        count += out.vpcs().len();
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(count);
        }
    }
}

pub(super) async fn vpc_check(sdk: &SdkConfig, region: &str) -> Check {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let (limit, source) = vpc_limit(sdk).await;
    match count_vpcs(&ec2).await {
        Ok(used) => room_result(
            "vpcs",
            "VPCs",
            region,
            used,
            limit,
            &source,
            &format!(
                "delete a VPC you no longer use, ask for a higher \"VPCs per Region\" quota \
                 (Service Quotas: vpc {VPC_QUOTA_CODE}), use another --region, or bring a VPC \
                 with `eks-cluster create --vpc-id` (then no new VPC is made)"
            ),
        ),
        Err(err) => Check::warn("vpcs", format!("could not count the VPCs: {err}"))
            .fix("allow ec2:DescribeVpcs to have the room for a VPC checked"),
    }
}

/// The Elastic IP limit: `vpc-max-elastic-ips`, else `max-elastic-ips`, else the documented 5.
async fn eip_limit(ec2: &aws_sdk_ec2::Client) -> (u64, LimitSource) {
    match ec2.describe_account_attributes().send().await {
        Ok(out) => {
            for name in ["vpc-max-elastic-ips", "max-elastic-ips"] {
                let value = out
                    .account_attributes()
                    .iter()
                    .find(|a| a.attribute_name() == Some(name))
                    .and_then(|a| a.attribute_values().first())
                    .and_then(|v| v.attribute_value())
                    .and_then(|v| v.parse::<u64>().ok());
                if let Some(value) = value {
                    return (value, LimitSource::AccountAttribute(name.to_owned()));
                }
            }
            (
                DOCUMENTED_DEFAULT,
                LimitSource::Assumed("DescribeAccountAttributes has no max-elastic-ips".into()),
            )
        }
        Err(err) => (
            DOCUMENTED_DEFAULT,
            LimitSource::Assumed(format!("DescribeAccountAttributes: {}", aws_error(err))),
        ),
    }
}

pub(super) async fn eip_check(sdk: &SdkConfig, region: &str) -> Check {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let (limit, source) = eip_limit(&ec2).await;
    match ec2.describe_addresses().send().await {
        Ok(out) => room_result(
            "elastic-ips",
            "Elastic IPs",
            region,
            out.addresses().len(),
            limit,
            &source,
            &format!(
                "release an Elastic IP you no longer use, ask for a higher \"EC2-VPC Elastic \
                 IPs\" quota (Service Quotas: ec2 {EIP_QUOTA_CODE}), use another --region, or \
                 bring a VPC with `eks-cluster create --vpc-id` (then no NAT gateway is made)"
            ),
        ),
        Err(err) => Check::warn(
            "elastic-ips",
            format!("could not count the Elastic IPs: {}", aws_error(err)),
        )
        .fix("allow ec2:DescribeAddresses to have the room for an Elastic IP checked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    #[test]
    fn room_needs_one_more_below_the_limit() {
        let fix = "delete one";
        let ok = room_result(
            "vpcs",
            "VPCs",
            "us-east-2",
            4,
            5,
            &LimitSource::Applied,
            fix,
        );
        assert_eq!(ok.status, Status::Ok);
        assert_eq!(
            ok.message,
            "4 of 5 VPCs used in us-east-2 (the account's quota): room for one more"
        );
        let full = room_result(
            "vpcs",
            "VPCs",
            "us-east-2",
            5,
            5,
            &LimitSource::AwsDefault,
            fix,
        );
        assert_eq!(full.status, Status::Fail);
        assert!(full.message.contains("no room"), "{}", full.message);
        assert_eq!(full.fix.as_deref(), Some(fix));
        let assumed = LimitSource::Assumed("GetServiceQuota: AccessDenied".into());
        let guessed = room_result("vpcs", "VPCs", "us-east-2", 1, 5, &assumed, fix);
        assert_eq!(guessed.status, Status::Warn);
        assert!(guessed.details[0].contains("AccessDenied"));
        let over = room_result("vpcs", "VPCs", "us-east-2", 7, 5, &assumed, fix);
        assert_eq!(over.status, Status::Fail);
        assert_eq!(over.data.unwrap()["limitSource"], "documented-default");
    }

    #[test]
    fn quota_values() {
        assert_eq!(quota_value(Some(5.0)), Some(5));
        assert_eq!(quota_value(Some(20.0)), Some(20));
        assert_eq!(quota_value(Some(f64::NAN)), None);
        assert_eq!(quota_value(Some(-1.0)), None);
        assert_eq!(quota_value(None), None);
    }
}
