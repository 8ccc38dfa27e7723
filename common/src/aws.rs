//! AWS configuration, region resolution and readable AWS errors.

use std::time::Duration;

use aws_config::meta::ProviderChainError;
use aws_config::meta::region::ProvideRegion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError as SdkCredentialsError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Where the region came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionSource {
    /// `--region`.
    Flag,
    /// The state document.
    State,
    /// `AWS_REGION`, `AWS_DEFAULT_REGION` or the profile.
    Environment,
}

/// No region, or a malformed one. Usage errors (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    #[error(
        "no AWS region: pass --region (for example --region us-east-2), set AWS_REGION, or give the profile a region"
    )]
    Missing,
    #[error(
        "region `{region}` from {source_name} is not an AWS region name (like us-east-2); fix {source_name}"
    )]
    Malformed {
        region: String,
        source_name: &'static str,
    },
}

impl RegionSource {
    fn describe(self) -> &'static str {
        match self {
            RegionSource::Flag => "--region",
            RegionSource::State => "the state document",
            RegionSource::Environment => "AWS_REGION / the profile",
        }
    }
}

/// Picks the region by precedence: flag, then state, then environment/profile; checks its shape.
pub fn pick_region(
    flag: Option<&str>,
    state: Option<&str>,
    environment: Option<&str>,
) -> Result<(String, RegionSource), RegionError> {
    let (region, source) = [
        (flag, RegionSource::Flag),
        (state, RegionSource::State),
        (environment, RegionSource::Environment),
    ]
    .into_iter()
    .find_map(|(value, source)| value.filter(|v| !v.is_empty()).map(|v| (v, source)))
    .ok_or(RegionError::Missing)?;
    if !is_region_name(region) {
        return Err(RegionError::Malformed {
            region: region.to_owned(),
            source_name: source.describe(),
        });
    }
    Ok((region.to_owned(), source))
}

/// The region from the environment and the profile files, without asking any network service
/// (no instance metadata), so that a missing region is reported at once.
pub async fn environment_region(profile: Option<&str>) -> Option<String> {
    let env = aws_config::environment::region::EnvironmentVariableRegionProvider::new();
    if let Some(region) = env.region().await {
        return Some(region.to_string());
    }
    let mut files = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(name) = profile {
        files = files.profile_name(name);
    }
    files.build().region().await.map(|r| r.to_string())
}

/// `us-east-2`, `us-gov-west-1`, `cn-north-1`, `eusc-de-east-1`: letters-and-dashes, then a number.
pub fn is_region_name(name: &str) -> bool {
    let mut parts = name.split('-');
    let Some(first) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    let Some((number, middle)) = rest.split_last() else {
        return false;
    };
    (2..=4).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !middle.is_empty()
        && middle
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS partition: the ARN prefix and the DNS suffix of its service hosts. The one place
/// that knows them; every ARN, partition or service host name is built from this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// `aws`, `aws-cn`, `aws-us-gov`, `aws-eusc`: the second field of an ARN.
    pub name: &'static str,
    /// `amazonaws.com`, `amazonaws.com.cn`, `amazonaws.eu`: service hosts are
    /// `<service>.<region>.<dns_suffix>`.
    pub dns_suffix: &'static str,
}

impl Partition {
    /// The partition of a region (the SDK's partition table: `cn-*` is aws-cn, `us-gov-*`
    /// aws-us-gov, `eusc-*` the AWS European Sovereign Cloud, aws-eusc; everything else aws).
    pub fn of_region(region: &str) -> Partition {
        if region.starts_with("cn-") {
            Partition {
                name: "aws-cn",
                dns_suffix: "amazonaws.com.cn",
            }
        } else if region.starts_with("us-gov-") {
            Partition {
                name: "aws-us-gov",
                dns_suffix: "amazonaws.com",
            }
        } else if region.starts_with("eusc-") {
            Partition {
                name: "aws-eusc",
                dns_suffix: "amazonaws.eu",
            }
        } else {
            Partition {
                name: "aws",
                dns_suffix: "amazonaws.com",
            }
        }
    }

    /// The host of a regional service endpoint: `sts.eu-west-1.amazonaws.com`.
    pub fn host(&self, service: &str, region: &str) -> String {
        format!("{service}.{region}.{}", self.dns_suffix)
    }
}

/// The DNS suffix of the region's partition.
pub fn dns_suffix(region: &str) -> &'static str {
    Partition::of_region(region).dns_suffix
}

/// The ARN partition of the region.
pub fn partition(region: &str) -> &'static str {
    Partition::of_region(region).name
}

/// The partition field of an ARN (`arn:PARTITION:service:...`), when it has one.
pub fn partition_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    match (parts.next(), parts.next()) {
        (Some("arn"), Some(p)) if !p.is_empty() && parts.next().is_some() => Some(p),
        _ => None,
    }
}

/// The partition a caller works in: from its ARN (GetCallerIdentity), else the region's.
pub fn caller_partition(caller_arn: Option<&str>, region: &str) -> String {
    caller_arn
        .and_then(partition_of_arn)
        .unwrap_or_else(|| partition(region))
        .to_owned()
}

/// The shared AWS configuration, built once per run. The endpoint follows `AWS_ENDPOINT_URL`
/// (and the per-service variables) as the SDK does; retries ride out throttling.
pub async fn load_config(region: &str, profile: Option<&str>) -> SdkConfig {
    let retry = RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(Duration::from_secs(20));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::v2026_01_12())
        .region(Region::new(region.to_owned()))
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(name) = profile {
        loader = loader.profile_name(name);
    }
    loader.load().await
}

/// How to give the pipeline credentials: the fix every message about missing or refused
/// credentials ends with (`eks-preflight` and the steps word it alike).
pub const CREDENTIALS_FIX: &str = "give the pipeline credentials: `aws configure`, `aws sso login` \
     (with --profile or AWS_PROFILE), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";

/// The STS error codes that mean the credentials themselves are bad (expired, unknown, or with
/// a wrong secret), not that a call failed: asking again with them cannot succeed.
pub const REFUSED_CREDENTIALS_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

/// Why this run has no usable AWS credentials. A step meets it at its first AWS call (the
/// `GetCallerIdentity` of [`crate::Context::same_account`]) and stops there with exit 2. Shown
/// as one line: the problem, then `fix: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsError {
    /// No source of the SDK's credential chain had any.
    Missing {
        /// The sources the chain tried, in order, in words.
        tried: String,
    },
    /// A source was configured but failed (an expired SSO session, a profile that does not
    /// exist, a failing `credential_process`, web identity refused).
    NotLoaded { reason: String },
    /// STS answered that the credentials are expired or invalid.
    Refused { code: String, message: String },
    /// STS could not be reached to check the credentials.
    Unreachable { endpoint: String, reason: String },
}

impl std::fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; fix: {}", self.problem(), self.fix())
    }
}

impl std::error::Error for CredentialsError {}

/// Longest cause text kept in a [`CredentialsError`] (a credential process may print a lot).
const MAX_REASON: usize = 200;

impl CredentialsError {
    /// What is wrong, without the fix.
    pub fn problem(&self) -> String {
        match self {
            CredentialsError::Missing { tried } => {
                format!("no AWS credentials found (tried: {tried})")
            }
            CredentialsError::NotLoaded { reason } => {
                format!("the AWS credentials could not be loaded: {reason}")
            }
            CredentialsError::Refused { code, message } => {
                format!("the AWS credentials were refused ({code}: {message})")
            }
            CredentialsError::Unreachable { endpoint, reason } => {
                format!("cannot reach STS at {endpoint} to check the AWS credentials ({reason})")
            }
        }
    }

    /// How to fix it.
    pub fn fix(&self) -> String {
        match self {
            CredentialsError::Missing { .. } | CredentialsError::NotLoaded { .. } => {
                CREDENTIALS_FIX.to_owned()
            }
            CredentialsError::Refused { .. } => {
                format!("renew them (`aws sso login`, a new session token), or {CREDENTIALS_FIX}")
            }
            CredentialsError::Unreachable { .. } => {
                "check the network, HTTPS_PROXY/NO_PROXY and AWS_ENDPOINT_URL".to_owned()
            }
        }
    }

    /// The credentials problem in an SDK error, if it is one: the credential chain found none
    /// or failed ([`CredentialsError::Missing`], [`CredentialsError::NotLoaded`]), or the
    /// service refused them ([`REFUSED_CREDENTIALS_CODES`], [`CredentialsError::Refused`]).
    pub fn of<E, R>(err: &SdkError<E, R>) -> Option<CredentialsError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        if let SdkError::ServiceError(service) = err {
            let meta = service.err().meta();
            return meta
                .code()
                .filter(|code| REFUSED_CREDENTIALS_CODES.contains(code))
                .map(|code| CredentialsError::Refused {
                    code: code.to_owned(),
                    message: meta.message().unwrap_or("(no message)").to_owned(),
                });
        }
        Self::in_chain(err)
    }

    /// The credential chain's failure among the causes of `err`, in words.
    pub fn in_chain(err: &(dyn std::error::Error + 'static)) -> Option<CredentialsError> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(current) = cause {
            if let Some(failed) = current.downcast_ref::<SdkCredentialsError>() {
                return Some(Self::from_provider(failed));
            }
            cause = current.source();
        }
        None
    }

    /// A failure of the SDK's credential provider (chain), in words.
    pub fn from_provider(failed: &SdkCredentialsError) -> CredentialsError {
        let chain = std::error::Error::source(failed)
            .and_then(|s| s.downcast_ref::<ProviderChainError<SdkCredentialsError>>());
        match (failed, chain) {
            (SdkCredentialsError::CredentialsNotLoaded(_), Some(chain)) => {
                let tried: Vec<String> = chain
                    .attempts()
                    .iter()
                    .map(|a| source_in_words(a.name(), &crate::step::error_chain(a.error())))
                    .collect();
                CredentialsError::Missing {
                    tried: if tried.is_empty() {
                        "no source: the chain is empty".into()
                    } else {
                        tried.join(", ")
                    },
                }
            }
            _ => CredentialsError::NotLoaded {
                reason: one_line(&crate::step::error_chain(failed), MAX_REASON),
            },
        }
    }

    /// The credentials problem anywhere in the causes of `err`: an [`AwsError`] about
    /// credentials, an EKS token that could not be signed for want of them, or this type.
    pub fn found_in(err: &(dyn std::error::Error + 'static)) -> Option<CredentialsError> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(current) = cause {
            if let Some(problem) = current
                .downcast_ref::<AwsError>()
                .and_then(AwsError::credentials)
                .or_else(|| current.downcast_ref::<CredentialsError>())
            {
                return Some(problem.clone());
            }
            if let Some(crate::token::TokenError::Credentials(problem)) =
                current.downcast_ref::<crate::token::TokenError>()
            {
                return Some(problem.as_ref().clone());
            }
            cause = current.source();
        }
        None
    }

    /// STS could not be reached at `endpoint`, because of `err`.
    pub fn unreachable(endpoint: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        CredentialsError::Unreachable {
            endpoint: endpoint.to_owned(),
            reason: one_line(&crate::step::error_chain(err), MAX_REASON),
        }
    }
}

/// A source of the SDK's default credential chain (its name in the chain) in words.
fn source_in_words(name: &str, why: &str) -> String {
    let words = match name {
        "Environment" => "environment variables",
        "Profile" => "profile files (incl. SSO)",
        "WebIdentityToken" => "web identity",
        "EcsContainer" => "container",
        "Ec2InstanceMetadata" if why.contains("disabled") => "instance metadata (disabled)",
        "Ec2InstanceMetadata" => "instance metadata",
        other => other,
    };
    words.to_owned()
}

/// `text` on one line (line breaks become `; `), cut at `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match joined.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

/// An AWS error reduced to what a person needs: the error code and message of a service error,
/// the credentials problem in words ([`CredentialsError`]), or the cause chain of anything else
/// (no connection, a bad answer), never a Rust debug dump.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text}")]
pub struct AwsError {
    /// Boxed strings: every step's error variants carry an `AwsError` beside their ids, and
    /// clippy's `result_large_err` holds them to 128 bytes.
    code: Option<Box<str>>,
    text: Box<str>,
    /// Boxed: every step's error carries `AwsError`s, and they stay small.
    credentials: Option<Box<CredentialsError>>,
}

impl AwsError {
    /// The AWS error code (`ValidationError`, `ResourceNotFoundException`, ...), if the service sent one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// True when the service's error code is `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code() == Some(code)
    }

    /// The message, without the code.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The credentials problem behind the error, when the call failed for want of usable
    /// credentials (none found, or refused as expired or invalid).
    pub fn credentials(&self) -> Option<&CredentialsError> {
        self.credentials.as_deref()
    }

    /// An error made by hand (tests, and answers read from somewhere else than the SDK):
    /// `code` when the service sent one, `text` as it is shown.
    pub fn from_parts(code: Option<&str>, text: impl Into<String>) -> AwsError {
        AwsError {
            code: code.map(Box::from),
            text: text.into().into_boxed_str(),
            credentials: None,
        }
    }

    /// An error about the credentials, shown as they are described.
    pub fn from_credentials(problem: CredentialsError) -> AwsError {
        let code = match &problem {
            CredentialsError::Refused { code, .. } => Some(Box::from(code.as_str())),
            _ => None,
        };
        AwsError {
            code,
            text: problem.to_string().into_boxed_str(),
            credentials: Some(Box::new(problem)),
        }
    }
}

impl<E, R> From<SdkError<E, R>> for AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn from(err: SdkError<E, R>) -> Self {
        let credentials = CredentialsError::of(&err);
        if let SdkError::ServiceError(service) = &err {
            let meta = service.err().meta();
            if let Some(code) = meta.code() {
                let message = meta.message().unwrap_or("(no message)");
                return AwsError {
                    code: Some(Box::from(code)),
                    text: format!("{code}: {message}").into_boxed_str(),
                    credentials: credentials.map(Box::new),
                };
            }
        }
        match credentials {
            Some(problem) => AwsError::from_credentials(problem),
            None => AwsError {
                code: None,
                text: crate::step::error_chain(&err).into_boxed_str(),
                credentials: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_precedence_flag_then_state_then_environment() {
        let all = pick_region(Some("eu-west-1"), Some("us-east-2"), Some("ap-south-1"));
        assert_eq!(all, Ok(("eu-west-1".into(), RegionSource::Flag)));
        let no_flag = pick_region(None, Some("us-east-2"), Some("ap-south-1"));
        assert_eq!(no_flag, Ok(("us-east-2".into(), RegionSource::State)));
        let env_only = pick_region(None, None, Some("ap-south-1"));
        assert_eq!(
            env_only,
            Ok(("ap-south-1".into(), RegionSource::Environment))
        );
        let empty_flag = pick_region(Some(""), None, Some("ap-south-1"));
        assert_eq!(empty_flag.unwrap().1, RegionSource::Environment);
        assert_eq!(pick_region(None, None, None), Err(RegionError::Missing));
    }

    #[test]
    fn malformed_region_names_its_source() {
        let err = pick_region(Some("useast2"), None, None).unwrap_err();
        assert!(err.to_string().contains("--region"), "{err}");
        let err = pick_region(None, Some("US-EAST-2"), None).unwrap_err();
        assert!(err.to_string().contains("state"), "{err}");
    }

    #[test]
    fn region_names() {
        for good in [
            "us-east-2",
            "us-gov-west-1",
            "cn-north-1",
            "eusc-de-east-1",
            "ap-southeast-5",
        ] {
            assert!(is_region_name(good), "{good}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "us-east-",
            "-east-1",
            "us--1",
            "US-east-1",
            "u-east-1",
            "us-east-1a",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    /// A chain of the SDK's shape (its sources' names), where no source had credentials.
    async fn chain_failure() -> SdkCredentialsError {
        use aws_config::meta::credentials::CredentialsProviderChain;
        use aws_credential_types::credential_fn::provide_credentials_fn;
        use aws_credential_types::provider::ProvideCredentials;
        let none = |why: &'static str| {
            provide_credentials_fn(move || async move { Err(SdkCredentialsError::not_loaded(why)) })
        };
        CredentialsProviderChain::first_try("Environment", none("environment variable not set"))
            .or_else("Profile", none("no profile"))
            .or_else(
                "Ec2InstanceMetadata",
                none("IMDS disabled by AWS_EC2_METADATA_DISABLED env var set to `true`"),
            )
            .provide_credentials()
            .await
            .expect_err("no source has credentials")
    }

    #[tokio::test]
    async fn missing_credentials_name_the_sources_tried_and_the_fix_on_one_line() {
        let problem = CredentialsError::from_provider(&chain_failure().await);
        assert_eq!(
            problem,
            CredentialsError::Missing {
                tried:
                    "environment variables, profile files (incl. SSO), instance metadata (disabled)"
                        .into()
            }
        );
        let text = problem.to_string();
        assert!(
            text.ends_with(&format!("; fix: {CREDENTIALS_FIX}")),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");

        // Through an SDK error (the identity resolver's failure is a dispatch failure): the
        // same words, no debug structure.
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        type StsError = aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
        let err: SdkError<StsError, HttpResponse> = SdkError::dispatch_failure(
            ConnectorError::other(Box::new(chain_failure().await), None),
        );
        let aws = AwsError::from(err);
        assert_eq!(aws.credentials(), Some(&problem));
        assert_eq!(aws.text(), text);
        let found = CredentialsError::found_in(&aws);
        assert_eq!(found.as_ref(), Some(&problem));
    }

    #[test]
    fn errors_without_a_code_show_their_causes_not_a_debug_dump() {
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        type StsError = aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let err: SdkError<StsError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(refused)));
        let aws = AwsError::from(err);
        assert_eq!(aws.text(), "dispatch failure: io error: Connection refused");
        assert_eq!(aws.credentials(), None);
        assert_eq!(aws.code(), None);
    }

    #[test]
    fn refused_credentials_keep_their_code_and_say_so() {
        let refused = AwsError::from_credentials(CredentialsError::Refused {
            code: "ExpiredToken".into(),
            message: "The security token included in the request is expired".into(),
        });
        assert!(refused.is("ExpiredToken"));
        assert_eq!(
            refused.to_string(),
            format!(
                "the AWS credentials were refused (ExpiredToken: The security token included in \
                 the request is expired); fix: renew them (`aws sso login`, a new session token), \
                 or {CREDENTIALS_FIX}"
            )
        );
        let unreachable = CredentialsError::Unreachable {
            endpoint: "https://sts.us-east-2.amazonaws.com".into(),
            reason: "timeout".into(),
        };
        assert!(unreachable.to_string().starts_with(
            "cannot reach STS at https://sts.us-east-2.amazonaws.com to check the AWS credentials (timeout); fix: check the network"
        ));
        assert_eq!(one_line("a\n  b\n\nc", 100), "a; b; c");
        assert_eq!(one_line("abcdef", 3), "abc...");
    }

    #[test]
    fn partitions() {
        assert_eq!(partition("us-east-2"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(dns_suffix("cn-northwest-1"), "amazonaws.com.cn");
        assert_eq!(dns_suffix("eu-west-1"), "amazonaws.com");
        // The AWS European Sovereign Cloud is a partition of its own (the SDK's table).
        assert_eq!(partition("eusc-de-east-1"), "aws-eusc");
        assert_eq!(dns_suffix("eusc-de-east-1"), "amazonaws.eu");
        assert_eq!(
            Partition::of_region("eusc-de-east-1").host("sts", "eusc-de-east-1"),
            "sts.eusc-de-east-1.amazonaws.eu"
        );
        assert!(is_region_name("eusc-de-east-1"));
        assert_eq!(
            partition_of_arn("arn:aws-eusc:sts::1:assumed-role/r/s"),
            Some("aws-eusc")
        );
        assert_eq!(partition_of_arn("nonsense"), None);
        assert_eq!(partition_of_arn("arn::sts::1:x"), None);
        assert_eq!(caller_partition(None, "eusc-de-east-1"), "aws-eusc");
        assert_eq!(
            caller_partition(Some("arn:aws-cn:iam::1:user/u"), "us-east-1"),
            "aws-cn"
        );
    }
}
