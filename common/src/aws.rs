//! AWS configuration, region resolution and readable AWS errors.

use std::time::Duration;

use aws_config::meta::region::ProvideRegion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
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

/// An AWS error reduced to what a person needs: the error code and message of a service error,
/// or the full cause chain of anything else (no connection, no credentials, a bad answer).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text}")]
pub struct AwsError {
    code: Option<String>,
    text: String,
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

    /// An error made by hand (tests, and answers read from somewhere else than the SDK):
    /// `code` when the service sent one, `text` as it is shown.
    pub fn from_parts(code: Option<&str>, text: impl Into<String>) -> AwsError {
        AwsError {
            code: code.map(str::to_owned),
            text: text.into(),
        }
    }
}

impl<E, R> From<SdkError<E, R>> for AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn from(err: SdkError<E, R>) -> Self {
        if let SdkError::ServiceError(service) = &err {
            let meta = service.err().meta();
            if let Some(code) = meta.code() {
                let message = meta.message().unwrap_or("(no message)");
                return AwsError {
                    code: Some(code.to_owned()),
                    text: format!("{code}: {message}"),
                };
            }
        }
        AwsError {
            code: None,
            text: DisplayErrorContext(&err).to_string(),
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
