//! Who the caller is (`sts:GetCallerIdentity`) and whether it may do what the pipeline does
//! (`iam:SimulatePrincipalPolicy` over [`PIPELINE_ACTIONS`]).

use aws_config::SdkConfig;
use aws_sdk_iam::types::PolicyEvaluationDecisionType;
use common::aws::{AwsError, CREDENTIALS_FIX};
use common::iam::{Caller, CallerError};
use serde_json::json;

use super::{aws_error, is_access_denied, shorten};
use crate::actions::{self, PIPELINE_ACTIONS};
use crate::principal::{self, Principal};
use crate::report::Check;

/// Actions per simulation request.
const SIMULATION_BATCH: usize = 50;

/// The caller, or the failed identity check (after which no other AWS check is run).
pub(super) async fn caller(sdk: &SdkConfig, region: &str) -> Result<Caller, Check> {
    let sts = aws_sdk_sts::Client::new(sdk);
    common::iam::caller(&sts, region).await.map_err(|err| {
        let (message, fix) = match err {
            CallerError::Call { source } => match source.credentials() {
                // The steps say the same, with the same fix (`common::aws::CredentialsError`).
                Some(problem) => (
                    format!("sts:GetCallerIdentity failed: {}", problem.problem()),
                    problem.fix(),
                ),
                None => (
                    format!("sts:GetCallerIdentity failed: {}", shorten(source)),
                    format!("{CREDENTIALS_FIX}; check the network to the STS endpoint"),
                ),
            },
            other => (
                other.to_string(),
                format!("{CREDENTIALS_FIX}; check the network to the STS endpoint"),
            ),
        };
        Check::fail("identity", message)
            .details(vec!["the other AWS checks were not run".into()])
            .fix(fix)
    })
}

/// The passed identity check.
pub(super) fn found(caller: &Caller) -> Check {
    Check::ok(
        "identity",
        format!("account {} as {}", caller.account, caller.arn),
    )
    .data(json!({"account": caller.account, "arn": caller.arn, "userId": caller.user_id}))
}

/// What a simulation said about one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Denied,
    /// Denied because a condition needs context keys a simulation does not have.
    NeedsContext(Vec<String>),
}

pub(super) async fn permissions_check(sdk: &SdkConfig, caller_arn: &str) -> Check {
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
                .details(grouped(&PIPELINE_ACTIONS))
                .fix("make sure the identity may call the actions above")
                .data(unchecked(None));
        }
        Principal::User { arn } => arn,
        Principal::Role { arn, name } => match iam.get_role().role_name(&name).send().await {
            // GetRole gives the ARN with the role's path, which the session ARN lacks.
            Ok(out) => out.role().map_or(arn, |r| r.arn().to_owned()),
            Err(err) => {
                tracing::debug!("iam:GetRole {name}: {}", aws_error(err));
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
        .details(grouped(&PIPELINE_ACTIONS))
        .fix(format!(
            "allow iam:SimulatePrincipalPolicy on {source_arn} to have the {} actions above checked",
            PIPELINE_ACTIONS.len()
        ))
        .data(unchecked(Some(&source_arn))),
        Err(err) => Check::warn(
            "permissions",
            format!("not checked: iam:SimulatePrincipalPolicy on {source_arn} failed: {err}"),
        )
        .details(grouped(&PIPELINE_ACTIONS))
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
                .await
                .map_err(aws_error)?;
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
}
