//! The EKS bearer token, as `aws eks get-token` makes it: `k8s-aws-v1.` followed by the unpadded
//! base64url of an STS `GetCallerIdentity` URL presigned for 60 seconds with the cluster name in
//! the signed header `x-k8s-aws-id`. The API server's authenticator calls that URL to learn who
//! we are; the token itself holds no secret key.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::aws::Partition;

/// The prefix of every EKS token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds the token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// How long the presigned URL is valid (what `aws eks get-token` uses).
pub const PRESIGN_SECONDS: u64 = 60;
/// How long a client may reuse the token (the authenticator accepts it for 15 minutes; the CLI
/// reports 14 so a client renews it in time).
pub const REUSE_FOR: Duration = Duration::from_secs(14 * 60);

/// A token and when to stop using it.
#[derive(Debug, Clone)]
pub struct EksToken {
    /// `k8s-aws-v1.…`; a credential: never log it or put it in the state.
    pub token: String,
    /// When a client should get a new one.
    pub expires_at: SystemTime,
}

/// Why no token could be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no AWS credentials provider is configured")]
    NoProvider,
    #[error("{0}")]
    Credentials(Box<crate::aws::CredentialsError>),
    #[error("could not presign the STS request: {0}")]
    Sign(String),
}

/// Makes a token for `cluster` with the configuration's credentials.
pub async fn eks_token(config: &SdkConfig, cluster: &str) -> Result<EksToken, TokenError> {
    let provider = config
        .credentials_provider()
        .ok_or(TokenError::NoProvider)?;
    let credentials = provider.provide_credentials().await.map_err(|e| {
        TokenError::Credentials(Box::new(crate::aws::CredentialsError::from_provider(&e)))
    })?;
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| TokenError::Sign("no region".into()))?;
    presign_token(cluster, &region, credentials, SystemTime::now())
}

/// Makes a token for `cluster` in `region` with `credentials`, signed at `now`.
pub fn presign_token(
    cluster: &str,
    region: &str,
    credentials: Credentials,
    now: SystemTime,
) -> Result<EksToken, TokenError> {
    let base = format!(
        "https://{}/?Action=GetCallerIdentity&Version=2011-06-15",
        Partition::of_region(region).host("sts", region)
    );
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(PRESIGN_SECONDS));
    let identity: Identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| TokenError::Sign(e.to_string()))?
        .into();
    let request = SignableRequest::new(
        "GET",
        base.as_str(),
        [(CLUSTER_ID_HEADER, cluster)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| TokenError::Sign(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| TokenError::Sign(e.to_string()))?
        .into_parts();
    let mut url = base;
    for (name, value) in instructions.params() {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.push_str(&percent_encode(value));
    }
    Ok(EksToken {
        token: format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(url)),
        expires_at: now + REUSE_FOR,
    })
}

/// The presigned URL inside a token (for tests and troubleshooting).
pub fn decode_token(token: &str) -> Option<String> {
    let body = token.strip_prefix(TOKEN_PREFIX)?;
    String::from_utf8(URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}

/// Every byte but RFC 3986's unreserved characters (letters, digits, `-`, `_`, `.`, `~`).
const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 wants.
fn percent_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query parameters, decoded.
    fn query(url: &str) -> Vec<(String, String)> {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    fn get<'a>(q: &'a [(String, String)], key: &str) -> &'a str {
        &q.iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("{key} missing"))
            .1
    }

    #[test]
    fn token_is_a_presigned_get_caller_identity() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("sessiontoken/+=".into()),
            None,
            "test",
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let token = presign_token("my-cluster", "us-east-2", creds, now).unwrap();
        assert!(token.token.starts_with("k8s-aws-v1."));
        assert!(!token.token.contains('='), "unpadded");
        assert!(
            !token.token[TOKEN_PREFIX.len()..].contains(['+', '/']),
            "url-safe alphabet"
        );
        assert_eq!(token.expires_at, now + Duration::from_secs(14 * 60));

        let url = decode_token(&token.token).unwrap();
        assert!(
            url.starts_with("https://sts.us-east-2.amazonaws.com/?"),
            "{url}"
        );
        let q = query(&url);
        assert_eq!(get(&q, "Action"), "GetCallerIdentity");
        assert_eq!(get(&q, "Version"), "2011-06-15");
        assert_eq!(get(&q, "X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(get(&q, "X-Amz-Expires"), "60");
        assert_eq!(get(&q, "X-Amz-SignedHeaders"), "host;x-k8s-aws-id");
        assert_eq!(get(&q, "X-Amz-Date"), "20251124T160000Z");
        assert_eq!(
            get(&q, "X-Amz-Credential"),
            "AKIDEXAMPLE/20251124/us-east-2/sts/aws4_request"
        );
        assert_eq!(get(&q, "X-Amz-Security-Token"), "sessiontoken/+=");
        // Encoded as RFC 3986 wants (`/`, `+`, `=` and `;` too), not as a form would.
        for encoded in [
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Credential=AKIDEXAMPLE%2F20251124%2Fus-east-2%2Fsts%2Faws4_request",
            "X-Amz-Security-Token=sessiontoken%2F%2B%3D",
        ] {
            assert!(url.contains(encoded), "{encoded} in {url}");
        }
        let signature = get(&q, "X-Amz-Signature");
        assert_eq!(signature.len(), 64);
        assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!url.contains("secret"), "the secret key never leaves");
    }

    #[test]
    fn token_depends_on_the_cluster() {
        let creds = Credentials::new("AKID", "secret", None, None, "test");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let a = presign_token("a", "eu-west-1", creds.clone(), now).unwrap();
        let b = presign_token("b", "eu-west-1", creds, now).unwrap();
        assert_ne!(a.token, b.token);
        let url = decode_token(&a.token).unwrap();
        assert!(url.starts_with("https://sts.eu-west-1.amazonaws.com/"));
        assert!(!url.contains("X-Amz-Security-Token"));
    }

    #[test]
    fn china_regions_use_their_suffix() {
        let creds = Credentials::new("AKID", "secret", None, None, "test");
        let token = presign_token("c", "cn-north-1", creds, SystemTime::now()).unwrap();
        assert!(
            decode_token(&token.token)
                .unwrap()
                .starts_with("https://sts.cn-north-1.amazonaws.com.cn/")
        );
    }

    #[test]
    fn decode_refuses_other_strings() {
        assert_eq!(decode_token("Bearer abc"), None);
        assert_eq!(decode_token("k8s-aws-v1.!!!"), None);
    }
}
