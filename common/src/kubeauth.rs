//! A refreshing EKS token for the Kubernetes client. The API server accepts a token for 15
//! minutes after it was signed, while one run of a step may wait longer than that (CoreDNS,
//! the ALB, a stack delete). So the client does not carry a fixed token: every request asks a
//! [`TokenSource`], which signs a new token when the one it has is older than
//! [`REFRESH_AFTER`], and a request the server answers 401 is sent once more with a newly signed
//! token (clock skew, or a token refused for a reason the age does not tell).
//!
//! The hook is a tower layer on the outside of kube's own stack ([`RefreshLayer`]), since
//! kube-rs 5 offers refreshable tokens only for its own sources (exec plugins, token files, OIDC),
//! and an exec plugin would need a binary on `PATH` and a process per refresh.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode};
use kube::client::Body;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::token::{EksToken, TokenError};

/// How old a token may get before a request signs a new one (the server takes it for 15
/// minutes; `aws eks get-token` says 14).
pub const REFRESH_AFTER: Duration = Duration::from_secs(10 * 60);

/// What signs a token.
type Signer = Arc<dyn Fn() -> BoxFuture<'static, Result<EksToken, TokenError>> + Send + Sync>;

/// A token in use.
#[derive(Debug, Clone)]
struct Current {
    token: String,
    signed: Instant,
    /// Counts the tokens signed, so concurrent 401s re-sign once.
    generation: u64,
}

/// Where the client's bearer token comes from: signed on first use, signed again when older
/// than the refresh age or when the server refused it.
pub struct TokenSource {
    sign: Signer,
    refresh_after: Duration,
    current: tokio::sync::Mutex<Option<Current>>,
    /// The EKS cluster the tokens are for, named when the server refuses a fresh one.
    cluster: Option<String>,
    /// The refusal of a fresh token was said (once a run).
    refusal_said: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("refresh_after", &self.refresh_after)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Tokens for `cluster` signed with the configuration's credentials and region.
    pub fn eks(aws: &aws_config::SdkConfig, cluster: &str) -> TokenSource {
        let (aws, name) = (aws.clone(), cluster.to_owned());
        let mut source = TokenSource::with_signer(REFRESH_AFTER, move || {
            let (aws, cluster) = (aws.clone(), name.clone());
            Box::pin(async move { crate::token::eks_token(&aws, &cluster).await })
        });
        source.cluster = Some(cluster.to_owned());
        source
    }

    /// Tokens from `sign`, re-signed after `refresh_after` (tests).
    pub fn with_signer(
        refresh_after: Duration,
        sign: impl Fn() -> BoxFuture<'static, Result<EksToken, TokenError>> + Send + Sync + 'static,
    ) -> TokenSource {
        TokenSource {
            sign: Arc::new(sign),
            refresh_after,
            current: tokio::sync::Mutex::new(None),
            cluster: None,
            refusal_said: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Says (once) what a 401 to a token signed a moment ago means on EKS: the credentials'
    /// IAM identity has no access to the cluster.
    fn say_refused(&self) {
        if self
            .refusal_said
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let cluster = self.cluster.as_deref().unwrap_or("the cluster");
        tracing::warn!(
            "the API server refused a newly signed EKS token too (401 Unauthorized): the IAM role or user of these AWS credentials has no access to {cluster} (no EKS access entry; `aws sts get-caller-identity` names it, and for an assumed-role session the role is what counts). The cluster's creator or an administrator can make it an administrator: `eks-cluster create --admin <role or user ARN>` on the state of a cluster eks-cluster made, else `aws eks create-access-entry` and `aws eks associate-access-policy` with AmazonEKSClusterAdminPolicy. (A local clock minutes off gives 401 too.)"
        );
    }

    async fn signed(&self, generation: u64) -> Result<Current, TokenError> {
        let token = (self.sign)().await?;
        Ok(Current {
            token: token.token,
            signed: Instant::now(),
            generation,
        })
    }

    /// Signs the first token now, so missing credentials are reported before any request.
    pub async fn sign_now(&self) -> Result<(), TokenError> {
        self.token().await.map(|_| ())
    }

    /// The token to send now: the one in use, or a new one when there is none yet or it is
    /// older than the refresh age.
    async fn token(&self) -> Result<Current, TokenError> {
        let mut current = self.current.lock().await;
        match &*current {
            Some(c) if c.signed.elapsed() < self.refresh_after => Ok(c.clone()),
            other => {
                let generation = other.as_ref().map_or(0, |c| c.generation + 1);
                if other.is_some() {
                    tracing::debug!(
                        "the EKS token is older than {:?}; signing a new one",
                        self.refresh_after
                    );
                }
                let fresh = self.signed(generation).await?;
                *current = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    /// A new token after the server refused `refused` (unless another request already got one
    /// since).
    async fn renew(&self, refused: u64) -> Result<Current, TokenError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| c.generation > refused) {
            return Ok(c.clone());
        }
        let fresh = self.signed(refused + 1).await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }
}

/// Adds `Authorization: Bearer <token>` from a [`TokenSource`] and retries a 401 once.
#[derive(Debug, Clone)]
pub struct RefreshLayer {
    tokens: Arc<TokenSource>,
}

impl RefreshLayer {
    pub fn new(tokens: Arc<TokenSource>) -> RefreshLayer {
        RefreshLayer { tokens }
    }
}

/// The service [`RefreshLayer`] makes. The inner service is shared behind a buffer, since a
/// refused request is sent again from inside the response future.
pub struct Refreshing<S, B>
where
    S: Service<Request<Body>, Response = Response<B>>,
{
    inner: tower::buffer::Buffer<Request<Body>, S::Future>,
    tokens: Arc<TokenSource>,
}

impl<S, B> std::fmt::Debug for Refreshing<S, B>
where
    S: Service<Request<Body>, Response = Response<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshing").finish_non_exhaustive()
    }
}

impl<S, B> Clone for Refreshing<S, B>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    fn clone(&self) -> Self {
        Refreshing {
            inner: self.inner.clone(),
            tokens: self.tokens.clone(),
        }
    }
}

impl<S, B> Layer<S> for RefreshLayer
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + Sync,
    B: Send + 'static,
{
    type Service = Refreshing<S, B>;

    /// Must run inside a tokio runtime (the buffer spawns its worker).
    fn layer(&self, inner: S) -> Self::Service {
        Refreshing {
            inner: tower::buffer::Buffer::new(inner, 1024),
            tokens: self.tokens.clone(),
        }
    }
}

fn with_token(mut request: Request<Body>, token: &str) -> Result<Request<Body>, BoxError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
    value.set_sensitive(true);
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, value);
    Ok(request)
}

/// A copy of a request whose body is in memory (every request kube-rs makes but uploads).
pub(crate) fn copy(request: &Request<Body>) -> Option<Request<Body>> {
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    if let Some(name) = request.extensions().get::<&'static str>() {
        copy.extensions_mut().insert(*name);
    }
    Some(copy)
}

impl<S, B> Service<Request<Body>> for Refreshing<S, B>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + Sync,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<B>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The buffer was made ready by poll_ready; this clone goes through it again.
        let inner = self.inner.clone();
        let first = std::mem::replace(&mut self.inner, inner);
        let again = self.inner.clone();
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let retry = copy(&request);
            let token = tokens.token().await?;
            let mut first = first;
            let answer = first.call(with_token(request, &token.token)?).await?;
            if answer.status() != StatusCode::UNAUTHORIZED {
                return Ok(answer);
            }
            let Some(retry) = retry else {
                return Ok(answer);
            };
            tracing::info!(
                "the API server refused the EKS token (401 Unauthorized); signing a new one and sending the request again"
            );
            let token = tokens.renew(token.generation).await?;
            let answer = again.oneshot(with_token(retry, &token.token)?).await?;
            if answer.status() == StatusCode::UNAUTHORIZED {
                tokens.say_refused();
            }
            Ok(answer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A source whose tokens are `t1`, `t2`, ... and that counts its signatures.
    fn counting(refresh_after: Duration) -> (Arc<TokenSource>, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        let seen = count.clone();
        let source = TokenSource::with_signer(refresh_after, move || {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move {
                Ok(EksToken {
                    token: format!("t{n}"),
                    expires_at: std::time::SystemTime::now(),
                })
            })
        });
        (Arc::new(source), count)
    }

    /// A server that takes only the tokens in `good` and records what it was sent.
    fn server(
        good: &'static [&'static str],
        seen: Arc<std::sync::Mutex<Vec<String>>>,
    ) -> impl Service<
        Request<Body>,
        Response = Response<Body>,
        Error = BoxError,
        Future = BoxFuture<'static, Result<Response<Body>, BoxError>>,
    > + Send
    + 'static {
        tower::service_fn(move |request: Request<Body>| {
            let seen = seen.clone();
            Box::pin(async move {
                let token = request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default()
                    .to_owned();
                let body = request.into_body().collect_bytes().await?;
                seen.lock()
                    .unwrap()
                    .push(format!("{token} {}", String::from_utf8_lossy(&body)));
                let status = if good.contains(&token.as_str()) {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                };
                let mut answer = Response::new(Body::empty());
                *answer.status_mut() = status;
                Ok(answer)
            }) as BoxFuture<'static, Result<Response<Body>, BoxError>>
        })
    }

    /// Sends a POST of `body` through `service` (a fresh request each time).
    async fn send<S>(service: &mut S, body: &str) -> Response<Body>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
    {
        service
            .ready()
            .await
            .unwrap()
            .call(post(body))
            .await
            .unwrap()
    }

    fn post(body: &str) -> Request<Body> {
        Request::post("/api/v1/namespaces")
            .body(Body::from(body.as_bytes().to_vec()))
            .unwrap()
    }

    #[tokio::test]
    async fn a_refused_token_is_signed_again_and_the_request_sent_once_more() {
        let (tokens, signed) = counting(REFRESH_AFTER);
        let seen = Arc::default();
        let mut service = RefreshLayer::new(tokens).layer(server(&["t2"], Arc::clone(&seen)));
        let answer = send(&mut service, "x").await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(
            *seen.lock().unwrap(),
            ["t1 x", "t2 x"],
            "same body, new token"
        );
        assert_eq!(signed.load(Ordering::SeqCst), 2);
        // The new token is kept for the next request.
        let answer = send(&mut service, "y").await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(signed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_second_401_is_the_answer() {
        let (tokens, signed) = counting(REFRESH_AFTER);
        let seen = Arc::default();
        let mut service = RefreshLayer::new(tokens).layer(server(&[], Arc::clone(&seen)));
        let answer = send(&mut service, "x").await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(seen.lock().unwrap().len(), 2, "one retry, not a loop");
        assert_eq!(signed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_old_token_is_replaced_before_it_is_sent() {
        let (tokens, signed) = counting(Duration::from_millis(50));
        let seen = Arc::default();
        let mut service = RefreshLayer::new(tokens).layer(server(&["t1", "t2"], Arc::clone(&seen)));
        send(&mut service, "a").await;
        send(&mut service, "b").await;
        tokio::time::sleep(Duration::from_millis(80)).await;
        send(&mut service, "c").await;
        assert_eq!(*seen.lock().unwrap(), ["t1 a", "t1 b", "t2 c"]);
        assert_eq!(signed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_refusals_sign_once() {
        let (tokens, signed) = counting(REFRESH_AFTER);
        tokens.token().await.unwrap();
        let (a, b) = tokio::join!(tokens.renew(0), tokens.renew(0));
        assert_eq!(a.unwrap().token, "t2");
        assert_eq!(b.unwrap().token, "t2");
        assert_eq!(signed.load(Ordering::SeqCst), 2);
    }
}
