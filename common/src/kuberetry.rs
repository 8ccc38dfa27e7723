//! Sending an idempotent Kubernetes request again when it got no answer at all: the connection
//! was closed before the answer, reset, refused, or timed out. client-go does this for `GET`;
//! kube-rs 5 retries only the answers 429, 503 and 504 (its `default_retry`), so one dropped
//! connection used to fail a whole step.
//!
//! [`RetryLayer`] is added to every client `common` builds (`crate::kube`), on the outside of the
//! stack, so each attempt also gets a fresh EKS token when it needs one. It retries, with a
//! backoff of [`FIRST_PAUSE`] doubling up to [`MAX_PAUSE`] and at most [`ATTEMPTS`] attempts in
//! all, only requests that may be sent twice:
//! - `GET` and `HEAD` (get, list, the start of a watch; a watch cut later is the watcher's
//!   business);
//! - `PATCH` with `application/apply-patch+yaml` (server-side apply: the same patch gives the same
//!   object, whether the first one arrived or not);
//! - `DELETE`: every caller in the steps takes a 404 as "already gone" and then waits for the
//!   object to be gone, so a second `DELETE` after a lost answer ends where the first one would
//!   have. What it could add is deleting an object of the same name made again by someone else in
//!   the few seconds between the attempts; the objects the steps delete carry names of their own
//!   making, and a caller that must exclude even that sends `preconditions.uid`, which turns
//!   such a retry into a 409 Conflict.
//!
//! `POST`, `PUT` and the other patches are never sent twice: a create whose answer was lost
//! would meet its own object (409), and a JSON patch adding to a list would add twice.
//!
//! Only errors without an answer are retried ([`is_transient`]); every answer, errors included,
//! is given back as it is (401 is [`crate::kubeauth`]'s, 429/503/504 kube-rs's). A request whose
//! body cannot be copied (a stream) is sent once.

use std::error::Error as StdError;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Method, Request, Response};
use kube::client::Body;
use tower::{BoxError, Layer, Service, ServiceExt};

/// Attempts in all for one request (the first one included).
pub const ATTEMPTS: u32 = 6;
/// The pause before the second attempt.
pub const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// The longest pause between two attempts.
pub const MAX_PAUSE: Duration = Duration::from_secs(3);

/// The content type of a server-side apply patch.
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// Whether a request may be sent again after it got no answer (see the module's words).
pub fn idempotent<B>(request: &Request<B>) -> bool {
    match *request.method() {
        Method::GET | Method::HEAD | Method::DELETE => true,
        Method::PATCH => request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().starts_with(APPLY_PATCH)),
        _ => false,
    }
}

/// Whether an error, or one of its causes, says the request got no answer for a reason that may
/// pass: a connection closed before the answer, reset, refused or aborted, a timeout; or the
/// Kubernetes answers that mean "later" (429, 500, 502, 503, 504) when the error is a
/// `kube::Error` (a wait's poll). A certificate, a token or a malformed answer is not.
pub fn is_transient(err: &(dyn StdError + 'static)) -> bool {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(err) = cause {
        if transient_here(err) {
            return true;
        }
        cause = err.source();
    }
    false
}

fn transient_here(err: &(dyn StdError + 'static)) -> bool {
    if let Some(e) = err.downcast_ref::<hyper::Error>() {
        return e.is_incomplete_message()
            || e.is_canceled()
            || e.is_closed()
            || e.is_timeout()
            || e.is_body_write_aborted();
    }
    if let Some(e) = err.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind::*;
        return matches!(
            e.kind(),
            ConnectionReset
                | ConnectionAborted
                | ConnectionRefused
                | BrokenPipe
                | UnexpectedEof
                | TimedOut
                | NotConnected
        );
    }
    if err.is::<tokio::time::error::Elapsed>() {
        return true;
    }
    let kube = err
        .downcast_ref::<kube::Error>()
        .or_else(|| err.downcast_ref::<Box<kube::Error>>().map(|b| &**b));
    if let Some(kube::Error::Api(status)) = kube {
        return matches!(status.code, 429 | 500 | 502 | 503 | 504);
    }
    if let Some(GaveUp { source, .. }) = err.downcast_ref::<GaveUp>() {
        return is_transient(source.as_ref());
    }
    false
}

/// A request that failed on every attempt, or on a later attempt with an error not worth
/// another one.
#[derive(Debug, thiserror::Error)]
#[error("{method} {path} got no answer after {attempts} attempts; the last error: {source}")]
pub struct GaveUp {
    pub method: Method,
    pub path: String,
    pub attempts: u32,
    #[source]
    pub source: BoxError,
}

/// Retries idempotent requests that got no answer (see the module's words).
#[derive(Debug, Clone, Copy)]
pub struct RetryLayer {
    attempts: u32,
    first_pause: Duration,
    max_pause: Duration,
}

impl Default for RetryLayer {
    fn default() -> Self {
        RetryLayer {
            attempts: ATTEMPTS,
            first_pause: FIRST_PAUSE,
            max_pause: MAX_PAUSE,
        }
    }
}

impl RetryLayer {
    /// [`ATTEMPTS`] attempts, pauses from [`FIRST_PAUSE`] to [`MAX_PAUSE`].
    pub fn new() -> RetryLayer {
        RetryLayer::default()
    }

    /// Other bounds (tests).
    pub fn with(attempts: u32, first_pause: Duration, max_pause: Duration) -> RetryLayer {
        RetryLayer {
            attempts: attempts.max(1),
            first_pause,
            max_pause,
        }
    }

    /// The pause after `attempt` attempts (1-based).
    fn pause(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.first_pause.saturating_mul(factor).min(self.max_pause)
    }
}

/// The service [`RetryLayer`] makes. The inner service is shared behind a buffer, since a
/// request is sent again from inside the response future.
pub struct Retrying<S, B>
where
    S: Service<Request<Body>, Response = Response<B>>,
{
    inner: tower::buffer::Buffer<Request<Body>, S::Future>,
    policy: RetryLayer,
}

impl<S, B> std::fmt::Debug for Retrying<S, B>
where
    S: Service<Request<Body>, Response = Response<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retrying")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S, B> Clone for Retrying<S, B>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    fn clone(&self) -> Self {
        Retrying {
            inner: self.inner.clone(),
            policy: self.policy,
        }
    }
}

impl<S, B> Layer<S> for RetryLayer
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + Sync,
    B: Send + 'static,
{
    type Service = Retrying<S, B>;

    /// Must run inside a tokio runtime (the buffer spawns its worker).
    fn layer(&self, inner: S) -> Self::Service {
        Retrying {
            inner: tower::buffer::Buffer::new(inner, 1024),
            policy: *self,
        }
    }
}

impl<S, B> Service<Request<Body>> for Retrying<S, B>
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
        // The buffer was made ready by poll_ready; the clone sends the later attempts.
        let inner = self.inner.clone();
        let mut first = std::mem::replace(&mut self.inner, inner);
        let again = self.inner.clone();
        let policy = self.policy;
        Box::pin(async move {
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let mut next = if idempotent(&request) {
                crate::kubeauth::copy(&request)
            } else {
                None
            };
            let mut result = first.call(request).await;
            let mut attempt = 1;
            loop {
                let err = match result {
                    Ok(answer) => return Ok(answer),
                    Err(err) => err,
                };
                let request = next
                    .take()
                    .filter(|_| attempt < policy.attempts && is_transient(err.as_ref()));
                let Some(request) = request else {
                    if attempt == 1 {
                        return Err(err);
                    }
                    return Err(GaveUp {
                        method,
                        path,
                        attempts: attempt,
                        source: err,
                    }
                    .into());
                };
                let pause = policy.pause(attempt);
                tracing::warn!(
                    "{method} {path} got no answer ({}); sending it again in {pause:?} (attempt {} of {})",
                    crate::step::error_chain(err.as_ref()),
                    attempt + 1,
                    policy.attempts
                );
                tokio::time::sleep(pause).await;
                next = crate::kubeauth::copy(&request);
                attempt += 1;
                result = again.clone().oneshot(request).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use http::StatusCode;

    const FAST: RetryLayer = RetryLayer {
        attempts: ATTEMPTS,
        first_pause: Duration::from_millis(1),
        max_pause: Duration::from_millis(4),
    };

    type Answer = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    /// A server that fails the first `failures` requests with `fail()` and answers 200 after,
    /// and records each request as `METHOD body`.
    fn flaky(
        failures: u32,
        fail: fn() -> BoxError,
        seen: Arc<std::sync::Mutex<Vec<String>>>,
    ) -> impl Service<Request<Body>, Response = Response<Body>, Error = BoxError, Future = Answer>
    + Send
    + 'static {
        let count = Arc::new(AtomicU32::new(0));
        tower::service_fn(move |request: Request<Body>| {
            let (count, seen) = (count.clone(), seen.clone());
            Box::pin(async move {
                let method = request.method().to_string();
                let body = request.into_body().collect_bytes().await?;
                seen.lock()
                    .unwrap()
                    .push(format!("{method} {}", String::from_utf8_lossy(&body)));
                if count.fetch_add(1, Ordering::SeqCst) < failures {
                    return Err(fail());
                }
                let mut answer = Response::new(Body::empty());
                *answer.status_mut() = StatusCode::OK;
                Ok(answer)
            }) as Answer
        })
    }

    fn reset() -> BoxError {
        Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        ))
    }

    /// A cause under another error, as hyper-util wraps its io errors.
    #[derive(Debug, thiserror::Error)]
    #[error("client error (SendRequest)")]
    struct Wrapped(#[source] std::io::Error);

    fn closed() -> BoxError {
        Box::new(Wrapped(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before message completed",
        )))
    }

    fn bad_certificate() -> BoxError {
        Box::new(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        ))
    }

    fn request(method: Method, content_type: Option<&str>, body: &str) -> Request<Body> {
        let mut builder = Request::builder()
            .method(method)
            .uri("/apis/apps/v1/namespaces/kube-system/deployments/x");
        if let Some(content_type) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
        }
        builder.body(Body::from(body.as_bytes().to_vec())).unwrap()
    }

    async fn send(
        failures: u32,
        fail: fn() -> BoxError,
        request: Request<Body>,
    ) -> (Result<Response<Body>, BoxError>, Vec<String>) {
        let seen = Arc::default();
        let mut service = FAST.layer(flaky(failures, fail, Arc::clone(&seen)));
        let answer = service.ready().await.unwrap().call(request).await;
        let seen = seen.lock().unwrap().clone();
        (answer, seen)
    }

    #[tokio::test]
    async fn a_get_is_sent_again_until_it_is_answered() {
        let (answer, seen) = send(3, reset, request(Method::GET, None, "")).await;
        assert_eq!(answer.unwrap().status(), StatusCode::OK);
        assert_eq!(seen.len(), 4);
        let (answer, seen) = send(2, closed, request(Method::HEAD, None, "")).await;
        assert_eq!(answer.unwrap().status(), StatusCode::OK);
        assert_eq!(seen.len(), 3);
    }

    #[tokio::test]
    async fn a_server_side_apply_is_sent_again_with_the_same_body() {
        let (answer, seen) = send(
            1,
            closed,
            request(
                Method::PATCH,
                Some("application/apply-patch+yaml"),
                "{\"a\":1}",
            ),
        )
        .await;
        assert_eq!(answer.unwrap().status(), StatusCode::OK);
        assert_eq!(seen, ["PATCH {\"a\":1}", "PATCH {\"a\":1}"]);
    }

    #[tokio::test]
    async fn a_delete_is_sent_again() {
        let (answer, seen) = send(1, reset, request(Method::DELETE, None, "{}")).await;
        assert_eq!(answer.unwrap().status(), StatusCode::OK);
        assert_eq!(seen.len(), 2);
    }

    #[tokio::test]
    async fn what_is_not_idempotent_is_sent_once() {
        for request in [
            request(Method::POST, Some("application/json"), "{}"),
            request(Method::PUT, Some("application/json"), "{}"),
            request(Method::PATCH, Some("application/merge-patch+json"), "{}"),
            request(Method::PATCH, Some("application/json-patch+json"), "[]"),
        ] {
            let method = request.method().clone();
            let (answer, seen) = send(1, reset, request).await;
            let err = answer.expect_err("the error is given back");
            assert_eq!(seen.len(), 1, "{method} must not be retried");
            assert!(err.to_string().contains("reset by peer"), "{err}");
            assert!(!err.is::<GaveUp>(), "one attempt is not a retry: {err}");
        }
    }

    #[tokio::test]
    async fn the_bound_holds_and_the_error_says_how_many_attempts() {
        let (answer, seen) = send(100, reset, request(Method::GET, None, "")).await;
        let err = answer.expect_err("it gives up");
        assert_eq!(seen.len(), ATTEMPTS as usize);
        let text = crate::step::error_chain(err.as_ref());
        assert!(
            text.contains("GET /apis/apps/v1/namespaces/kube-system/deployments/x")
                && text.contains(&format!("after {ATTEMPTS} attempts"))
                && text.contains("reset by peer"),
            "{text}"
        );
        // Still transient for a wait that polls with it.
        assert!(is_transient(err.as_ref()));
    }

    #[tokio::test]
    async fn an_error_that_does_not_pass_is_not_retried() {
        let (answer, seen) = send(1, bad_certificate, request(Method::GET, None, "")).await;
        assert!(answer.is_err());
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let policy = RetryLayer::new();
        let pauses: Vec<u64> = (1..ATTEMPTS)
            .map(|a| policy.pause(a).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [200, 400, 800, 1600, 3000]);
    }

    #[tokio::test]
    async fn transient_errors_are_told_apart() {
        assert!(is_transient(reset().as_ref()));
        assert!(is_transient(closed().as_ref()));
        assert!(!is_transient(bad_certificate().as_ref()));
        let elapsed = tokio::time::timeout(Duration::ZERO, std::future::pending::<()>())
            .await
            .unwrap_err();
        assert!(is_transient(&elapsed));
        let status = |code: u16| {
            kube::Error::Api(
                kube::core::Status {
                    code,
                    ..kube::core::Status::failure("m", "r")
                }
                .boxed(),
            )
        };
        assert!(is_transient(&status(503)));
        assert!(is_transient(&status(429)));
        assert!(!is_transient(&status(403)));
        assert!(!is_transient(&status(404)));
        assert!(is_transient(&kube::Error::Service(reset())));
    }
}
