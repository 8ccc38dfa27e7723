//! Authentication, when [`super::Settings::eks_token_max_age`] is set: what an EKS API server
//! does with the bearer token. Two authenticators, as on EKS: the static token of the test bed's
//! own kubeconfig (the simulators' "cluster admin", [`TESTBED_TOKEN`]), and the AWS IAM
//! authenticator for `k8s-aws-v1.` tokens, which refuses a token whose presigned STS
//! `GetCallerIdentity` URL was signed (`X-Amz-Date`) longer ago than the allowed age, as the real
//! one refuses tokens older than 15 minutes. Anything else (no token, another token, a token that
//! does not decode) is 401 `Unauthorized`, as from the real server.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::http::{Reply, Request};

/// The token of the test bed's kubeconfig ([`super::kubeconfig_yaml`]).
pub const TESTBED_TOKEN: &str = "testbed-token";
/// The prefix of an EKS token.
const EKS_PREFIX: &str = "k8s-aws-v1.";

/// Why a request was refused (logged by nobody; the client sees only 401, as from the real
/// server, which never says why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoToken,
    UnknownToken,
    Malformed(&'static str),
    Expired { age_seconds: i64 },
}

/// Checks the request's bearer token at `now`; `Ok` when it may go on.
pub(crate) fn check(
    request: &Request,
    max_age: std::time::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Refusal> {
    let header = request.header("authorization").ok_or(Refusal::NoToken)?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or(Refusal::Malformed("not a bearer token"))?
        .trim();
    if token == TESTBED_TOKEN {
        return Ok(());
    }
    let body = token
        .strip_prefix(EKS_PREFIX)
        .ok_or(Refusal::UnknownToken)?;
    let url = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(Refusal::Malformed("not base64url of a URL"))?;
    let (base, query) = url
        .split_once('?')
        .ok_or(Refusal::Malformed("no query string"))?;
    if !(base.starts_with("https://sts.") && base.ends_with('/')) {
        return Err(Refusal::Malformed("not an STS URL"));
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if param("Action") != Some("GetCallerIdentity") {
        return Err(Refusal::Malformed("not GetCallerIdentity"));
    }
    if !param("X-Amz-SignedHeaders").is_some_and(|h| h.split(';').any(|h| h == "x-k8s-aws-id")) {
        return Err(Refusal::Malformed("the cluster id header is not signed"));
    }
    if param("X-Amz-Signature").is_none_or(str::is_empty) {
        return Err(Refusal::Malformed("no signature"));
    }
    let date = param("X-Amz-Date").ok_or(Refusal::Malformed("no X-Amz-Date"))?;
    let signed = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| Refusal::Malformed("X-Amz-Date is not a date"))?
        .and_utc();
    let age = now.signed_duration_since(signed);
    let allowed = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    if age > allowed {
        return Err(Refusal::Expired {
            age_seconds: age.num_seconds(),
        });
    }
    Ok(())
}

/// The answer to a refused request: 401 with the Status the real server sends.
pub(crate) fn unauthorized() -> Reply {
    Reply::json(
        401,
        &serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(token: Option<&str>) -> Request {
        Request {
            method: "GET".into(),
            target: "/api".into(),
            headers: token
                .map(|t| vec![("Authorization".to_owned(), format!("Bearer {t}"))])
                .unwrap_or_default(),
            body: Vec::new(),
        }
    }

    fn eks_token(date: &str, signed_headers: &str) -> String {
        let url = format!(
            "https://sts.us-east-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={date}&X-Amz-Expires=60&X-Amz-SignedHeaders={signed_headers}&X-Amz-Signature=abcd"
        );
        format!("{EKS_PREFIX}{}", URL_SAFE_NO_PAD.encode(url))
    }

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().into()
    }

    #[test]
    fn eks_tokens_expire() {
        let max = Duration::from_secs(3);
        let token = eks_token("20261202T120000Z", "host%3Bx-k8s-aws-id");
        let r = request(Some(&token));
        assert_eq!(check(&r, max, at("2026-12-02T12:00:02Z")), Ok(()));
        assert_eq!(check(&r, max, at("2026-12-02T12:00:03Z")), Ok(()));
        assert_eq!(
            check(&r, max, at("2026-12-02T12:00:05Z")),
            Err(Refusal::Expired { age_seconds: 5 })
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let max = Duration::from_secs(60);
        let now = at("2026-12-02T12:00:00Z");
        assert_eq!(check(&request(None), max, now), Err(Refusal::NoToken));
        assert_eq!(check(&request(Some(TESTBED_TOKEN)), max, now), Ok(()));
        assert_eq!(
            check(&request(Some("other")), max, now),
            Err(Refusal::UnknownToken)
        );
        assert!(matches!(
            check(&request(Some("k8s-aws-v1.!!")), max, now),
            Err(Refusal::Malformed(_))
        ));
        let unsigned = eks_token("20261202T120000Z", "host");
        assert!(matches!(
            check(&request(Some(&unsigned)), max, now),
            Err(Refusal::Malformed(_))
        ));
        let bad_date = eks_token("yesterday", "host%3Bx-k8s-aws-id");
        assert!(matches!(
            check(&request(Some(&bad_date)), max, now),
            Err(Refusal::Malformed(_))
        ));
    }
}
