//! The checks that ask AWS: identity, IAM permissions, room for a VPC and an Elastic IP, an
//! existing cluster. Read calls only.

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_iam::types::PolicyEvaluationDecisionType;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::json;

use crate::actions::{self, PIPELINE_ACTIONS};
use crate::principal::{self, Principal};
use crate::report::{Check, Report};

/// Service Quotas' code of "VPCs per Region" (service `vpc`).
pub const VPC_QUOTA_CODE: &str = "L-F678F1CE";
/// Service Quotas' code of "EC2-VPC Elastic IPs" (service `ec2`), named in the advice.
pub const EIP_QUOTA_CODE: &str = "L-0263D0A3";
/// The documented default of both quotas, assumed when neither API answers.
pub const DOCUMENTED_DEFAULT: u64 = 5;
/// Actions per simulation request.
const SIMULATION_BATCH: usize = 50;

/// An AWS error in one short line, keeping its code: a service error as `Code: message`, an
/// answer without a code by its HTTP status, anything else (no connection, no credentials) by
/// its cause chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    code: Option<String>,
    text: String,
}

/// Longest cause chain shown.
const MAX_ERROR_TEXT: usize = 300;

impl AwsError {
    fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl<E> From<SdkError<E, HttpResponse>> for AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        if let SdkError::ServiceError(service) = &err {
            let meta = service.err().meta();
            return match meta.code() {
                Some(code) => AwsError {
                    code: Some(code.to_owned()),
                    text: format!("{code}: {}", meta.message().unwrap_or("(no message)")),
                },
                None => AwsError {
                    code: None,
                    text: format!(
                        "HTTP {} without an AWS error code (does the endpoint implement the call?)",
                        service.raw().status().as_u16()
                    ),
                },
            };
        }
        let full = common::aws::AwsError::from(err).to_string();
        let text = match full.char_indices().nth(MAX_ERROR_TEXT) {
            Some((cut, _)) => format!("{}...", &full[..cut]),
            None => full,
        };
        AwsError { code: None, text }
    }
}

/// The error codes of a refused call, across the query and JSON protocols.
fn is_access_denied(err: &AwsError) -> bool {
    [
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
    ]
    .iter()
    .any(|code| err.is(code))
}

/// The AWS checks, in order; after a failed identity check the rest are not run (they would all
/// fail the same way).
pub async fn aws_checks(report: &mut Report, region: &str, profile: Option<&str>, cluster: &str) {
    let sdk = common::aws::load_config(region, profile).await;
    // A check should answer in seconds: fewer retries than the steps' (which ride out throttling).
    let sdk = sdk
        .to_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .build();

    let identity = match identity(&sdk).await {
        Ok(identity) => identity,
        Err(err) => {
            report.push(
                Check::fail("identity", format!("sts:GetCallerIdentity failed: {err}"))
                    .details(vec!["the other AWS checks were not run".into()])
                    .fix(
                        "give the pipeline credentials: `aws configure`, `aws sso login` \
                         (with --profile), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; check the \
                         network to the STS endpoint",
                    ),
            );
            return;
        }
    };
    report.account = Some(identity.account.clone());
    report.push(
        Check::ok(
            "identity",
            format!("account {} as {}", identity.account, identity.arn),
        )
        .data(
            json!({"account": identity.account, "arn": identity.arn, "userId": identity.user_id}),
        ),
    );

    let (permissions, vpcs, eips, existing) = tokio::join!(
        permissions_check(&sdk, &identity.arn),
        vpc_check(&sdk, region),
        eip_check(&sdk, region),
        cluster_check(&sdk, region, cluster),
    );
    report.push(permissions);
    report.push(vpcs);
    report.push(eips);
    report.push(existing);
}

#[derive(Debug, Clone)]
struct Identity {
    account: String,
    arn: String,
    user_id: String,
}

async fn identity(sdk: &SdkConfig) -> Result<Identity, AwsError> {
    let out = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await?;
    Ok(Identity {
        account: out.account().unwrap_or_default().to_owned(),
        arn: out.arn().unwrap_or_default().to_owned(),
        user_id: out.user_id().unwrap_or_default().to_owned(),
    })
}

/// What a simulation said about one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Denied,
    /// Denied because a condition needs context keys a simulation does not have.
    NeedsContext(Vec<String>),
}

async fn permissions_check(sdk: &SdkConfig, caller_arn: &str) -> Check {
    let iam = aws_sdk_iam::Client::new(sdk);
    let source_arn = match principal::for_caller(caller_arn) {
        Principal::Root { account } => {
            return Check::warn(
                "permissions",
                format!("the root user of {account} may do everything; not simulated"),
            )
            .fix("run the pipeline as an IAM role or user rather than the root user");
        }
        Principal::Unsupported { reason } => {
            return Check::warn("permissions", format!("not checked: {reason}"))
                .details(grouped(PIPELINE_ACTIONS))
                .fix("make sure the identity may call the actions above")
                .data(unchecked(None));
        }
        Principal::User { arn } => arn,
        Principal::Role { arn, name } => match iam.get_role().role_name(&name).send().await {
            // GetRole gives the ARN with the role's path, which the session ARN lacks.
            Ok(out) => out.role().map_or(arn, |r| r.arn().to_owned()),
            Err(err) => {
                tracing::debug!("iam:GetRole {name}: {}", AwsError::from(err));
                arn
            }
        },
    };
    match simulate(&iam, &source_arn).await {
        Ok(decisions) => permission_result(&source_arn, &decisions),
        Err(err) if is_access_denied(&err) => Check::warn(
            "permissions",
            format!(
                "not checked: {source_arn} may not call iam:SimulatePrincipalPolicy ({err})"
            ),
        )
        .details(grouped(PIPELINE_ACTIONS))
        .fix(format!(
            "allow iam:SimulatePrincipalPolicy on {source_arn} to have the {} actions above checked",
            PIPELINE_ACTIONS.len()
        ))
        .data(unchecked(Some(&source_arn))),
        Err(err) => Check::warn(
            "permissions",
            format!("not checked: iam:SimulatePrincipalPolicy on {source_arn} failed: {err}"),
        )
        .details(grouped(PIPELINE_ACTIONS))
        .fix("make sure the identity may call the actions above")
        .data(unchecked(Some(&source_arn))),
    }
}

/// The facts of a permissions check that could not simulate: the actions to check by hand.
fn unchecked(principal: Option<&str>) -> serde_json::Value {
    json!({
        "principal": principal,
        "simulated": 0,
        "unchecked": actions::by_service(PIPELINE_ACTIONS.iter().copied()),
    })
}

fn grouped(actions: &[&str]) -> Vec<String> {
    actions::grouped_lines(actions.iter().copied())
}

async fn simulate(
    iam: &aws_sdk_iam::Client,
    source_arn: &str,
) -> Result<Vec<(String, Decision)>, AwsError> {
    let mut decisions = Vec::new();
    for batch in PIPELINE_ACTIONS.chunks(SIMULATION_BATCH) {
        let mut marker: Option<String> = None;
        loop {
            let out = iam
                .simulate_principal_policy()
                .policy_source_arn(source_arn)
                .set_action_names(Some(batch.iter().map(|a| a.to_string()).collect()))
                .set_marker(marker.take())
                .send()
                .await?;
            for result in out.evaluation_results() {
                let decision = match result.eval_decision() {
                    PolicyEvaluationDecisionType::Allowed => Decision::Allowed,
                    PolicyEvaluationDecisionType::ImplicitDeny
                        if !result.missing_context_values().is_empty() =>
                    {
                        Decision::NeedsContext(result.missing_context_values().to_vec())
                    }
                    _ => Decision::Denied,
                };
                decisions.push((result.eval_action_name().to_owned(), decision));
            }
            marker = out.marker().map(str::to_owned);
            if !out.is_truncated() || marker.is_none() {
                break;
            }
        }
    }
    Ok(decisions)
}

/// The permissions check from the simulation's decisions: denied actions fail it, actions that
/// hang on context keys only warn.
pub fn permission_result(source_arn: &str, decisions: &[(String, Decision)]) -> Check {
    let denied: Vec<&str> = decisions
        .iter()
        .filter(|(_, d)| *d == Decision::Denied)
        .map(|(a, _)| a.as_str())
        .collect();
    let conditional: Vec<(&str, &[String])> = decisions
        .iter()
        .filter_map(|(a, d)| match d {
            Decision::NeedsContext(keys) => Some((a.as_str(), keys.as_slice())),
            _ => None,
        })
        .collect();
    let total = decisions.len();
    let data = json!({
        "principal": source_arn,
        "simulated": total,
        "denied": actions::by_service(denied.iter().copied()),
        "needContext": conditional
            .iter()
            .map(|(a, keys)| json!({"action": a, "contextKeys": keys}))
            .collect::<Vec<_>>(),
    });
    let conditional_lines = conditional
        .iter()
        .map(|(a, keys)| format!("{a} depends on {}", keys.join(", ")))
        .collect::<Vec<_>>();
    if !denied.is_empty() {
        let mut details = actions::grouped_lines(denied.iter().copied());
        details.extend(conditional_lines);
        return Check::fail(
            "permissions",
            format!(
                "{} of {total} actions the pipeline needs are denied to {source_arn}",
                denied.len()
            ),
        )
        .details(details)
        .fix(format!(
            "grant the denied actions to {source_arn} (the list: `eks-preflight --json`, \
             check `permissions`); the simulation used Resource \"*\", so a policy that grants \
             them only on named resources shows here as denied"
        ))
        .data(data);
    }
    if !conditional.is_empty() {
        return Check::warn(
            "permissions",
            format!(
                "{} of {total} actions are allowed to {source_arn}; {} depend on conditions a \
                 simulation cannot decide",
                total - conditional.len(),
                conditional.len()
            ),
        )
        .details(conditional_lines)
        .data(data);
    }
    Check::ok(
        "permissions",
        format!("all {total} actions the pipeline needs are allowed to {source_arn}"),
    )
    .data(data)
}

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
        .map_err(AwsError::from);
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
        .map_err(AwsError::from);
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
            .await?;
        count += out.vpcs().len();
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(count);
        }
    }
}

async fn vpc_check(sdk: &SdkConfig, region: &str) -> Check {
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
            LimitSource::Assumed(format!(
                "DescribeAccountAttributes: {}",
                AwsError::from(err)
            )),
        ),
    }
}

async fn eip_check(sdk: &SdkConfig, region: &str) -> Check {
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
            format!("could not count the Elastic IPs: {}", AwsError::from(err)),
        )
        .fix("allow ec2:DescribeAddresses to have the room for an Elastic IP checked"),
    }
}

async fn cluster_check(sdk: &SdkConfig, region: &str, cluster: &str) -> Check {
    let eks = aws_sdk_eks::Client::new(sdk);
    match eks.describe_cluster().name(cluster).send().await {
        Ok(out) => {
            let found = out.cluster();
            let status = found
                .and_then(|c| c.status())
                .map_or("unknown status", |s| s.as_str())
                .to_owned();
            let version = found.and_then(|c| c.version()).unwrap_or("?").to_owned();
            Check::warn(
                "cluster",
                format!(
                    "{cluster} exists in {region} ({status}, Kubernetes {version}): \
                     eks-cluster create will adopt it, not make a new one"
                ),
            )
            .fix("pass another --cluster (make CLUSTER=...) for a new cluster")
            .data(json!({"exists": true, "status": status, "version": version}))
        }
        Err(err) => {
            let err = AwsError::from(err);
            if err.is("ResourceNotFoundException") {
                Check::ok(
                    "cluster",
                    format!("{cluster} does not exist in {region}: eks-cluster create makes it"),
                )
                .data(json!({"exists": false}))
            } else {
                Check::warn(
                    "cluster",
                    format!("could not tell whether {cluster} exists: {err}"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    fn decisions(list: &[(&str, Decision)]) -> Vec<(String, Decision)> {
        list.iter()
            .map(|(a, d)| (a.to_string(), d.clone()))
            .collect()
    }

    #[test]
    fn denied_actions_fail_grouped_by_service() {
        let check = permission_result(
            "arn:aws:iam::1:role/r",
            &decisions(&[
                ("ec2:CreateVpc", Decision::Denied),
                (
                    "iam:PassRole",
                    Decision::NeedsContext(vec!["iam:PassedToService".into()]),
                ),
                ("ec2:DeleteVpc", Decision::Denied),
                ("eks:CreateCluster", Decision::Allowed),
            ]),
        );
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "2 of 4 actions the pipeline needs are denied to arn:aws:iam::1:role/r"
        );
        assert_eq!(
            check.details,
            [
                "ec2: CreateVpc, DeleteVpc",
                "iam:PassRole depends on iam:PassedToService"
            ]
        );
        let data = check.data.unwrap();
        assert_eq!(data["denied"]["ec2"][1], "DeleteVpc");
        assert_eq!(data["needContext"][0]["action"], "iam:PassRole");
    }

    #[test]
    fn conditions_only_warn_and_all_allowed_is_ok() {
        let warn = permission_result(
            "arn:x",
            &decisions(&[
                (
                    "iam:PassRole",
                    Decision::NeedsContext(vec!["iam:PassedToService".into()]),
                ),
                ("eks:CreateCluster", Decision::Allowed),
            ]),
        );
        assert_eq!(warn.status, Status::Warn);
        let ok = permission_result(
            "arn:x",
            &decisions(&[("eks:CreateCluster", Decision::Allowed)]),
        );
        assert_eq!(ok.status, Status::Ok);
        assert_eq!(
            ok.message,
            "all 1 actions the pipeline needs are allowed to arn:x"
        );
    }

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
