//! EKS authentication on the real API server: a TokenReview webhook of ours
//! (`--authentication-token-webhook-config-file`), checking `k8s-aws-v1.` tokens the way
//! aws-iam-authenticator does.
//!
//! A token is `k8s-aws-v1.` + base64url (no padding) of a presigned STS `GetCallerIdentity` URL.
//! It is accepted when the URL is an STS URL for that action, signs the `x-k8s-aws-id` header
//! (the cluster's name, so a token for one cluster is useless on another), carries a signature,
//! and was signed (`X-Amz-Date`) at most the allowed age ago (15 minutes on EKS). The caller is
//! who STS says: with an STS endpoint (moto) the presigned query is replayed there and the
//! answer's `Arn` is the user; without one, the access key id stands in. Every accepted caller
//! is in `system:masters`, as the cluster's creator is on EKS (`bootstrapClusterCreatorAdminPermissions`),
//! unless the control plane plays a cluster whose access entries the test bed keeps
//! ([`crate::awsrules::ClusterAccess`], `Settings::access_entries`): then the caller is mapped
//! as EKS maps it (an assumed role's session by its role's entry): the entry's username and
//! Kubernetes groups, `system:masters` for `AmazonEKSClusterAdminPolicy` on the cluster scope
//! (EKS authorizes access policies with an authorizer of its own; no other policy is modelled),
//! and a caller without an entry is refused ([`Refusal::NoAccessEntry`]: 401).
//!
//! Not checked: the signature itself (moto does not verify signatures), and the value of the
//! signed cluster-id header (only STS could tell, by the signature).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};

use crate::awsrules::ClusterAccess;
use crate::loopback::LoopbackServer;

/// The prefix of an EKS token.
pub const EKS_PREFIX: &str = "k8s-aws-v1.";

/// Why a token was refused (the client sees only 401, as from the real server; the webhook's
/// answer carries the reason, and [`Authenticator::refusals`] keeps them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotEks,
    Malformed(&'static str),
    Expired {
        age_seconds: i64,
    },
    /// Accepted as a token, but the caller (`arn`, as STS names it) has no access entry on the
    /// cluster.
    NoAccessEntry {
        arn: String,
        cluster: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotEks => write!(f, "not an EKS token"),
            Refusal::Malformed(why) => write!(f, "malformed EKS token: {why}"),
            Refusal::Expired { age_seconds } => {
                write!(f, "EKS token expired: signed {age_seconds}s ago")
            }
            Refusal::NoAccessEntry { arn, cluster } => {
                write!(f, "{arn} has no access entry on cluster {cluster}")
            }
        }
    }
}

/// Checks an EKS token at `now`; on success, the presigned URL's query (to ask STS who it is).
pub fn check(
    token: &str,
    max_age: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, Refusal> {
    let body = token.strip_prefix(EKS_PREFIX).ok_or(Refusal::NotEks)?;
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
    Ok(query.to_owned())
}

/// The `X-Amz-Credential` of a presigned query: `<access key id>/<date>/<region>/sts/aws4_request`.
fn credential(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "X-Amz-Credential")
        .map(|(_, v)| v.into_owned())
}

/// The access key id of a credential scope.
fn access_key(credential: &str) -> &str {
    credential.split('/').next().unwrap_or(credential)
}

/// Who STS at `endpoint` (moto) says holds `access_key` (its `GetCallerIdentity` `Arn`), asked
/// in `region`: how the test bed's rules learn who signed a request.
pub fn caller_of_key(endpoint: &str, access_key: &str, region: &str) -> Option<String> {
    let date = chrono::Utc::now().format("%Y%m%d");
    caller_arn(
        endpoint,
        &format!("{access_key}/{date}/{region}/sts/aws4_request"),
    )
}

/// Who STS at `endpoint` (moto) says signed with `credential`: the `Arn` of its answer. moto
/// takes the service and caller from an `Authorization` header, not from a presigned query, so
/// the call carries the token's credential scope there (moto checks no signature).
fn caller_arn(endpoint: &str, credential: &str) -> Option<String> {
    let mut answer = ureq::post(endpoint)
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=0"),
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("Action=GetCallerIdentity&Version=2011-06-15")
        .ok()?;
    let text = answer.body_mut().read_to_string().ok()?;
    let start = text.find("<Arn>")? + "<Arn>".len();
    let end = text[start..].find("</Arn>")? + start;
    Some(text[start..end].to_owned())
}

/// The TokenReview webhook: an HTTP server on loopback the API server asks.
#[derive(Debug)]
pub struct Authenticator {
    server: LoopbackServer,
    refusals: Arc<Mutex<Vec<Refusal>>>,
}

impl Authenticator {
    /// Starts the webhook: tokens older than `max_age` are refused; `sts` is where callers are
    /// looked up (None: the access key id names the caller); with `access`, callers are mapped
    /// through that cluster's access entries (see the module documentation).
    pub fn start(
        max_age: Duration,
        sts: Option<String>,
        access: Option<ClusterAccess>,
    ) -> Authenticator {
        let refusals: Arc<Mutex<Vec<Refusal>>> = Arc::default();
        let kept = refusals.clone();
        let server = LoopbackServer::start("authenticator", move |request| {
            let kept = kept.clone();
            let sts = sts.clone();
            let access = access.clone();
            async move {
                let body = request.into_body().collect().await?.to_bytes();
                let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let token = review["spec"]["token"].as_str().unwrap_or("").to_owned();
                let status = tokio::task::spawn_blocking(move || {
                    review_status(&token, max_age, sts.as_deref(), access.as_ref())
                })
                .await
                .unwrap_or_else(|e| {
                    Err(Refusal::Malformed(if e.is_panic() {
                        "panic"
                    } else {
                        "cancelled"
                    }))
                });
                let status = match status {
                    Ok(user) => json!({"authenticated": true, "user": user}),
                    Err(refusal) => {
                        let error = refusal.to_string();
                        kept.lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push(refusal);
                        json!({"authenticated": false, "error": error})
                    }
                };
                let answer = json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "status": status,
                });
                Ok::<_, hyper::Error>(
                    hyper::Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(answer.to_string())))
                        .expect("a response"),
                )
            }
        });
        Authenticator { server, refusals }
    }

    /// The webhook's kubeconfig, as `--authentication-token-webhook-config-file` reads it.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: eks-authenticator
  cluster:
    server: http://{}/authenticate
users:
- name: kube-apiserver
  user: {{}}
contexts:
- name: webhook
  context:
    cluster: eks-authenticator
    user: kube-apiserver
current-context: webhook
",
            self.server.address
        )
    }

    /// The tokens refused so far, in order, with why.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.refusals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The `status.user` of an accepted token.
fn review_status(
    token: &str,
    max_age: Duration,
    sts: Option<&str>,
    access: Option<&ClusterAccess>,
) -> Result<Value, Refusal> {
    let query = check(token, max_age, chrono::Utc::now())?;
    let credential = credential(&query).ok_or(Refusal::Malformed("no X-Amz-Credential"))?;
    let key = access_key(&credential);
    let arn = sts.and_then(|endpoint| caller_arn(endpoint, &credential));
    let caller = arn.unwrap_or_else(|| format!("aws:{key}"));
    let (username, groups) = match access {
        None => (
            caller.clone(),
            vec![
                "system:masters".to_owned(),
                "system:authenticated".to_owned(),
            ],
        ),
        Some(access) => {
            let found = access
                .lookup(&caller)
                .ok_or_else(|| Refusal::NoAccessEntry {
                    arn: caller.clone(),
                    cluster: access.cluster.clone(),
                })?;
            (found.username.clone(), found.groups())
        }
    };
    Ok(json!({
        "username": username,
        "uid": format!("aws-iam-authenticator:{key}"),
        "groups": groups,
        "extra": {"accessKeyId": [key], "arn": [caller]},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eks_token(date: &str, signed_headers: &str) -> String {
        let url = format!(
            "https://sts.us-east-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261202%2Fus-east-2%2Fsts%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires=60&X-Amz-SignedHeaders={signed_headers}&X-Amz-Signature=abcd"
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
        assert!(check(&token, max, at("2026-12-02T12:00:02Z")).is_ok());
        assert!(check(&token, max, at("2026-12-02T12:00:03Z")).is_ok());
        assert_eq!(
            check(&token, max, at("2026-12-02T12:00:05Z")),
            Err(Refusal::Expired { age_seconds: 5 })
        );
        let query = check(&token, max, at("2026-12-02T12:00:00Z")).unwrap();
        assert_eq!(
            credential(&query).as_deref().map(access_key),
            Some("AKIAEXAMPLE")
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let max = Duration::from_secs(60);
        let now = at("2026-12-02T12:00:00Z");
        assert_eq!(check("other", max, now), Err(Refusal::NotEks));
        assert!(matches!(
            check("k8s-aws-v1.!!", max, now),
            Err(Refusal::Malformed(_))
        ));
        let unsigned = eks_token("20261202T120000Z", "host");
        assert!(matches!(
            check(&unsigned, max, now),
            Err(Refusal::Malformed(_))
        ));
        let bad_date = eks_token("yesterday", "host%3Bx-k8s-aws-id");
        assert!(matches!(
            check(&bad_date, max, now),
            Err(Refusal::Malformed(_))
        ));
    }
}
