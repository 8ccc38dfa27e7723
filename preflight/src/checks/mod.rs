//! The checks that ask AWS: identity, IAM permissions, room for a VPC and an Elastic IP, an
//! existing cluster. Read calls only.

mod identity;
mod network;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use common::aws::AwsError;
use serde_json::json;

pub use identity::{Decision, permission_result};
pub use network::{DOCUMENTED_DEFAULT, EIP_QUOTA_CODE, LimitSource, VPC_QUOTA_CODE, room_result};

use crate::report::{Check, Report};

/// Longest cause chain shown.
const MAX_ERROR_TEXT: usize = 300;

/// An AWS error in one short line, keeping its code: a service error as `Code: message`, an
/// answer without a code by its HTTP status, anything else (no connection, no credentials) by
/// its cause chain, cut at [`MAX_ERROR_TEXT`] characters.
fn aws_error<E>(err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let SdkError::ServiceError(service) = &err
        && service.err().meta().code().is_none()
    {
        return AwsError::from_parts(
            None,
            format!(
                "HTTP {} without an AWS error code (does the endpoint implement the call?)",
                service.raw().status().as_u16()
            ),
        );
    }
    shorten(AwsError::from(err))
}

/// An error without a code (a cause chain) cut at [`MAX_ERROR_TEXT`] characters.
fn shorten(err: AwsError) -> AwsError {
    if err.code().is_some() {
        return err;
    }
    match err.text().char_indices().nth(MAX_ERROR_TEXT) {
        Some((cut, _)) => AwsError::from_parts(None, format!("{}...", &err.text()[..cut])),
        None => err,
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

    let caller = match identity::caller(&sdk, region).await {
        Ok(caller) => caller,
        Err(failed) => {
            report.push(failed);
            return;
        }
    };
    report.account = Some(caller.account.clone());
    report.push(identity::found(&caller));

    let (permissions, vpcs, eips, existing) = tokio::join!(
        identity::permissions_check(&sdk, &caller.arn),
        network::vpc_check(&sdk, region),
        network::eip_check(&sdk, region),
        cluster_check(&sdk, region, cluster),
    );
    report.push(permissions);
    report.push(vpcs);
    report.push(eips);
    report.push(existing);
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
            let ours = found.and_then(|c| c.tags()).is_some_and(|tags| {
                common::owner::proves_ours(
                    |k| tags.get(k).map(String::as_str),
                    cluster,
                    "cluster",
                    true,
                )
            });
            let what = if ours {
                "eks-fargate-alb made it: eks-cluster create goes on with it"
            } else {
                "eks-fargate-alb did not make it: eks-cluster create refuses it unless --adopt"
            };
            Check::warn(
                "cluster",
                format!("{cluster} exists in {region} ({status}, Kubernetes {version}): {what}"),
            )
            .fix("pass another --cluster (make CLUSTER=...) for a new cluster")
            .data(json!({"exists": true, "status": status, "version": version}))
        }
        Err(err) => {
            let err = aws_error(err);
            if common::cluster::not_found(&err) {
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

    #[test]
    fn errors_without_a_code_are_cut_short() {
        let long = "x".repeat(MAX_ERROR_TEXT + 10);
        let cut = shorten(AwsError::from_parts(None, long));
        assert_eq!(cut.text().len(), MAX_ERROR_TEXT + 3);
        assert!(cut.text().ends_with("..."));
        let coded = shorten(AwsError::from_parts(Some("AccessDenied"), "y".repeat(400)));
        assert_eq!(coded.text().len(), 400);
        assert!(is_access_denied(&coded));
    }
}
