//! What AWS answers to credentials it does not take, which moto (it takes any key) never does:
//! a session whose token has expired is refused by every service with `403`, code
//! `ExpiredToken` (query and EC2 protocols) or `ExpiredTokenException` (JSON protocols), message
//! "The security token included in the request is expired", as real STS, IAM, CloudFormation
//! and EKS answer it. Which credentials are expired is told by the access key id the request is
//! signed with (the `Credential=` of its SigV4 `Authorization` header).

use crate::awsproxy::{AwsReply, AwsRequest, Verdict};

/// The message every service gives with `ExpiredToken`.
pub const EXPIRED_MESSAGE: &str = "The security token included in the request is expired";

/// Environment for a binary whose credentials are the expired session `access_key_id` (with a
/// secret and a session token, as a session has).
pub fn expired_session_env(access_key_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", access_key_id.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "expired-session-secret".to_owned()),
        ("AWS_SESSION_TOKEN", "expired-session-token".to_owned()),
    ]
}

/// The access key id a request is signed with: `Credential=<key>/<date>/<region>/<service>/...`
/// of its `Authorization` header, or `X-Amz-Credential` of a presigned query.
pub fn signing_key(request: &AwsRequest) -> Option<String> {
    let from_header = request.header("authorization").and_then(|auth| {
        let (_, rest) = auth.split_once("Credential=")?;
        rest.split('/').next().map(str::to_owned)
    });
    from_header.or_else(|| {
        request
            .param("X-Amz-Credential")
            .and_then(|c| c.split('/').next().map(str::to_owned))
    })
}

/// A rule for [`crate::awsproxy::AwsProxy::rule`]: every request signed with `access_key_id`
/// is refused as a real service refuses an expired session token; others pass.
pub fn expired(access_key_id: &str) -> impl Fn(&AwsRequest) -> Verdict + Send + Sync + 'static {
    let key = access_key_id.to_owned();
    move |request| {
        if signing_key(request).as_deref() != Some(key.as_str()) {
            return Verdict::Pass;
        }
        Verdict::Reply(expired_reply(request))
    }
}

/// The answer to a request signed with an expired session token, in the service's protocol.
pub fn expired_reply(request: &AwsRequest) -> AwsReply {
    // JSON protocols (an `X-Amz-Target`, or REST with no `Action`) name the exception.
    let json = request.header("x-amz-target").is_some()
        || (request.action.is_empty() && request.service != "ec2");
    let code = if json {
        "ExpiredTokenException"
    } else {
        "ExpiredToken"
    };
    AwsReply::error(request, 403, code, EXPIRED_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_signing_key_and_refuses_only_it() {
        let mut request = AwsRequest::query_for_tests("sts", "Action=GetCallerIdentity");
        request.headers.retain(|(name, _)| name != "authorization");
        request.headers.push((
            "authorization".into(),
            "AWS4-HMAC-SHA256 Credential=ASIAEXPIRED/20261206/us-east-2/sts/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc"
                .into(),
        ));
        assert_eq!(signing_key(&request).as_deref(), Some("ASIAEXPIRED"));
        let Verdict::Reply(reply) = expired("ASIAEXPIRED")(&request) else {
            panic!("refused");
        };
        assert_eq!(reply.status, 403);
        let body = String::from_utf8(reply.body).unwrap();
        assert!(body.contains("<Code>ExpiredToken</Code>"), "{body}");
        assert!(body.contains(EXPIRED_MESSAGE), "{body}");
        assert!(matches!(expired("AKIAOTHER")(&request), Verdict::Pass));
    }
}
