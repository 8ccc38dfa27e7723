//! IAM plumbing more than one step needs: who the caller is (account and partition), the ARN of
//! a cluster's OIDC provider, reading the percent-encoded policy documents IAM returns, and
//! ([`role`]) the one reconciliation of a step's IAM role, and its removal.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;

use crate::aws::{AwsError, CredentialsError, caller_partition};

pub mod role;

pub use role::{Removed, RoleError, remove_role};

/// The caller of `GetCallerIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account id (never empty).
    pub account: String,
    /// The caller's ARN (may be empty when STS sent none).
    pub arn: String,
    /// The caller's unique id (may be empty).
    pub user_id: String,
    /// The partition it works in: from its ARN, else the region's.
    pub partition: String,
}

/// Why the caller is unknown.
#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    #[error("GetCallerIdentity")]
    Call { source: AwsError },
    #[error("GetCallerIdentity returned no account id; check the AWS credentials")]
    NoAccount,
}

/// `GetCallerIdentity`: the account (an empty one is refused) and the partition (the ARN's,
/// else the region's, see [`caller_partition`]). A failure for want of usable credentials (none
/// found, refused as expired or invalid) or because STS could not be reached carries the
/// problem in words ([`AwsError::credentials`]), naming the STS endpoint tried.
pub async fn caller(sts: &aws_sdk_sts::Client, region: &str) -> Result<Caller, CallerError> {
    let seen = SeenEndpoint::default();
    let me = sts
        .get_caller_identity()
        .customize()
        .interceptor(seen.clone())
        .send()
        .await
        .map_err(|e| {
            let unreachable = matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_))
                && CredentialsError::of(&e).is_none();
            let source = if unreachable {
                let endpoint = seen.get().unwrap_or_else(|| {
                    format!(
                        "https://{}",
                        crate::aws::Partition::of_region(region).host("sts", region)
                    )
                });
                AwsError::from_credentials(CredentialsError::unreachable(&endpoint, &e))
            } else {
                AwsError::from(e)
            };
            CallerError::Call { source }
        })?;
    let account = me
        .account()
        .filter(|a| !a.is_empty())
        .ok_or(CallerError::NoAccount)?
        .to_owned();
    Ok(Caller {
        account,
        arn: me.arn().unwrap_or_default().to_owned(),
        user_id: me.user_id().unwrap_or_default().to_owned(),
        partition: caller_partition(me.arn(), region),
    })
}

/// Notes the endpoint (scheme and authority) a request was sent to, for the message when STS
/// could not be reached: `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_STS` or the regional endpoint.
#[derive(Debug, Clone, Default)]
struct SeenEndpoint(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl SeenEndpoint {
    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|seen| seen.clone())
    }
}

impl Intercept for SeenEndpoint {
    fn name(&self) -> &'static str {
        "SeenEndpoint"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let uri = context.request().uri();
        let shown = match uri.parse::<http::Uri>() {
            Ok(parsed) => match (parsed.scheme_str(), parsed.authority()) {
                (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
                _ => uri.to_owned(),
            },
            Err(_) => uri.to_owned(),
        };
        if let Ok(mut seen) = self.0.lock() {
            *seen = Some(shown);
        }
        Ok(())
    }
}

/// Attempts of the `GetCallerIdentity` that checks the credentials: fewer than the steps' 8, so
/// an unreachable STS is reported in seconds, not after minutes of backoff.
pub const CALLER_ATTEMPTS: u32 = 3;

/// The connect timeout of each of those attempts (the steps' is 10 s).
pub const CALLER_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The longest one attempt may take, the credentials' loading included (the SDK gives that 5 s):
/// an STS that never answers is reported after at most 3 x 8 s plus 1.5 s of backoff, not
/// never (the steps' calls have no such bound).
pub const CALLER_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

impl crate::step::Context {
    /// Who the credentials are ([`caller`]), asked once a run and kept; a failed call is asked
    /// again next time. The STS client makes [`CALLER_ATTEMPTS`] attempts, each bounded by
    /// [`CALLER_CONNECT_TIMEOUT`] and [`CALLER_ATTEMPT_TIMEOUT`].
    pub async fn caller(&self) -> Result<&Caller, CallerError> {
        self.caller
            .get_or_try_init(|| async {
                let config = aws_sdk_sts::config::Builder::from(&self.aws)
                    .retry_config(
                        aws_config::retry::RetryConfig::standard()
                            .with_max_attempts(CALLER_ATTEMPTS)
                            .with_initial_backoff(std::time::Duration::from_millis(500)),
                    )
                    .timeout_config(
                        aws_config::timeout::TimeoutConfig::builder()
                            .connect_timeout(CALLER_CONNECT_TIMEOUT)
                            .operation_attempt_timeout(CALLER_ATTEMPT_TIMEOUT)
                            .build(),
                    )
                    .build();
                caller(&aws_sdk_sts::Client::from_conf(config), &self.region).await
            })
            .await
    }

    /// Checks that the run has usable AWS credentials, with one `GetCallerIdentity` (which needs
    /// no permission): none found, refused as expired or invalid, or STS out of reach is bad
    /// input (exit 2, [`crate::Usage::Credentials`]) naming the sources tried or the endpoint,
    /// and the fix. Any other failure (throttling, a 5xx) only warns: the calls that follow fail
    /// with their own errors. The caller, when known.
    pub async fn check_credentials(&self) -> Result<Option<&Caller>, crate::Usage> {
        match self.caller().await {
            Ok(me) => Ok(Some(me)),
            Err(CallerError::Call { source }) if source.credentials().is_some() => Err(
                crate::Usage::Credentials(source.credentials().cloned().unwrap_or_else(|| {
                    CredentialsError::NotLoaded {
                        reason: source.to_string(),
                    }
                })),
            ),
            Err(e) => {
                tracing::warn!(
                    "could not check who these credentials are ({}); going on",
                    crate::step::error_chain(&e)
                );
                Ok(None)
            }
        }
    }

    /// The check every step command that calls AWS makes after its own input checks and before
    /// its first other AWS call: usable credentials ([`Context::check_credentials`]), and for
    /// the AWS account the state records, if any. Refuses (bad input, exit 2) credentials that
    /// are missing, expired or invalid, an STS out of reach, and credentials for another AWS
    /// account than the one the state records ([`crate::State::accounts`]): in that account the
    /// run would find none of what the state records, take it as gone, and make it anew or
    /// forget it. Costs one `GetCallerIdentity` (which needs no permission), shared with
    /// [`Context::caller`]. When the identity cannot be read for another reason it warns and
    /// goes on: the calls that follow fail with their own errors.
    pub async fn same_account(&self, state: &crate::State) -> Result<(), crate::Usage> {
        let Some(me) = self.check_credentials().await? else {
            return Ok(());
        };
        let recorded = state.accounts();
        if recorded.is_empty() || recorded.contains(&me.account) {
            return Ok(());
        }
        Err(crate::Usage::OtherAccount {
            recorded: recorded.into_iter().collect::<Vec<_>>().join(", "),
            account: me.account.clone(),
            arn: me.arn.clone(),
        })
    }
}

/// The partition and account of an ARN (`arn:PARTITION:service:region:ACCOUNT:...`), when it
/// has both.
pub fn partition_and_account(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.split(':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("arn"), Some(partition), Some(_), Some(_), Some(account))
            if !partition.is_empty() && !account.is_empty() =>
        {
            Some((partition, account))
        }
        _ => None,
    }
}

/// `arn:<partition>:iam::<account>:oidc-provider/<issuer without https://>`: the ARN IAM gives
/// the OIDC provider of an issuer.
pub fn oidc_provider_arn(partition: &str, account: &str, issuer: &str) -> String {
    let host_and_path = issuer_host_path(issuer).trim_end_matches('/');
    format!("arn:{partition}:iam::{account}:oidc-provider/{host_and_path}")
}

/// The issuer URL without `https://`, as IAM names its provider (in the ARN and in the keys of
/// trust policy conditions, `<host and path>:sub`). Textual, as IAM's naming is: no URL
/// normalization (a lowercased host or an added `/` would name another provider).
pub fn issuer_host_path(issuer: &str) -> &str {
    issuer.strip_prefix("https://").unwrap_or(issuer)
}

/// Decodes the percent-encoding (RFC 3986) IAM puts on the policy documents it returns.
pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// A policy document as IAM returns it (percent-encoded, or plain JSON from some emulators),
/// parsed; `Null` when it is not JSON either way.
pub fn parse_policy(text: &str) -> Value {
    serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&percent_decode(text)))
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_arn_from_issuer() {
        assert_eq!(
            oidc_provider_arn(
                "aws",
                "123456789012",
                "https://oidc.eks.us-east-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71"
            ),
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71"
        );
        assert_eq!(
            oidc_provider_arn(
                "aws-cn",
                "1",
                "https://oidc.eks.cn-north-1.amazonaws.com.cn/id/X/"
            ),
            "arn:aws-cn:iam::1:oidc-provider/oidc.eks.cn-north-1.amazonaws.com.cn/id/X"
        );
    }

    #[test]
    fn arn_parts() {
        assert_eq!(
            partition_and_account("arn:aws-us-gov:eks:us-gov-west-1:123:cluster/c"),
            Some(("aws-us-gov", "123"))
        );
        assert_eq!(
            partition_and_account("arn:aws:iam::123:role/r"),
            Some(("aws", "123"))
        );
        assert_eq!(partition_and_account("arn:aws:s3:::bucket"), None);
        assert_eq!(partition_and_account("not an arn"), None);
    }

    #[test]
    fn policies_decode_to_the_last_byte() {
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]});
        let encoded: String = percent_encoding::utf8_percent_encode(
            &doc.to_string(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        assert!(encoded.ends_with("%7D"), "{encoded}");
        assert_eq!(parse_policy(&encoded), doc);
        assert_eq!(parse_policy(&doc.to_string()), doc);
        assert_eq!(parse_policy("%zz"), Value::Null);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%2Bb+c"), "a+b+c");
    }
}
