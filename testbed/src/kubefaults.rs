//! A fault proxy in front of a Kubernetes API server (the test bed's control plane, over HTTPS), as an
//! overloaded or restarting API server and a flaky network behave. On a seeded share of
//! non-watch requests it does one of the [`RequestFault`]s, each as likely:
//! - answers `429 TooManyRequests` (with `Retry-After`, as API priority and fairness does) or
//!   `503 ServiceUnavailable`;
//! - closes the connection without an answer, after reading the request, either before
//!   forwarding it (the server never saw it) or after the server answered (the change is made
//!   and the answer is lost);
//! - resets the connection (TCP RST) after reading the request, without forwarding it: the
//!   accepted socket gets `SO_LINGER` 0 and is dropped without a FIN
//!   ([`crate::loopback::ConnectionReset`]).
//!
//! It also cuts watch streams short (a dropped connection in the middle of a watch). Everything
//! else is passed through, watch streams included, chunk by chunk.
//!
//! Point a kubeconfig at [`KubeFaultProxy::url`] ([`KubeFaultProxy::write_kubeconfig`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};

use crate::controlplane::ControlPlane;
use crate::faults::Generator;
use crate::loopback::{ConnectionReset, LoopbackServer, UpstreamClient, upstream_client};

type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// What the proxy may do to a non-watch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFault {
    /// `429 TooManyRequests` with `Retry-After: 1`.
    TooManyRequests,
    /// `503 ServiceUnavailable`.
    Unavailable,
    /// The connection closed without an answer; the request was not forwarded.
    ClosedBeforeForwarding,
    /// The request forwarded and answered, then the connection closed without the answer (a
    /// lost answer: the change is made).
    ClosedAfterForwarding,
    /// The connection reset (TCP RST) without an answer; the request was not forwarded.
    Reset,
}

impl RequestFault {
    /// Every kind, in the order the generator picks from.
    pub const ALL: [RequestFault; 5] = [
        RequestFault::TooManyRequests,
        RequestFault::Unavailable,
        RequestFault::ClosedBeforeForwarding,
        RequestFault::ClosedAfterForwarding,
        RequestFault::Reset,
    ];
}

/// What to inject.
#[derive(Debug, Clone)]
pub struct KubeFaultPlan {
    /// Share of non-watch requests faulted, 0.0 to 1.0, each with one of [`Self::request_faults`]
    /// (as likely as each other).
    pub error_rate: f64,
    /// The kinds of request faults; every kind unless restricted ([`Self::only`]).
    pub request_faults: Vec<RequestFault>,
    /// Share of watch streams cut short.
    pub watch_cut_rate: f64,
    /// A cut watch ends after this long.
    pub watch_cut_after: Duration,
    /// Seed of the generator.
    pub seed: u64,
    /// Requests that always lose their answer ([`RequestFault::ClosedAfterForwarding`]),
    /// whatever the rate: (method, a text the path contains). See [`Self::losing_answers_to`].
    pub lost_answers: Vec<(String, String)>,
}

impl KubeFaultPlan {
    /// `rate` of requests and of watches faulted.
    pub fn new(rate: f64, seed: u64) -> KubeFaultPlan {
        KubeFaultPlan {
            error_rate: rate,
            request_faults: RequestFault::ALL.to_vec(),
            watch_cut_rate: rate,
            watch_cut_after: Duration::from_millis(300),
            seed,
            lost_answers: Vec::new(),
        }
    }

    /// The same plan, and every `method` request whose path contains `path` is forwarded and
    /// its answer lost (the server acted; the client sees the connection close), every time.
    pub fn losing_answers_to(mut self, method: &str, path: &str) -> KubeFaultPlan {
        self.lost_answers.push((method.to_owned(), path.to_owned()));
        self
    }

    /// The same plan with only these kinds of request faults.
    pub fn only(mut self, faults: &[RequestFault]) -> KubeFaultPlan {
        self.request_faults = faults.to_vec();
        self
    }
}

/// What was injected so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeFaultStats {
    pub requests: u64,
    pub too_many_requests: u64,
    pub unavailable: u64,
    /// Connections closed without an answer, the request not forwarded.
    pub closed_before_forwarding: u64,
    /// Connections closed after the server answered (lost answers).
    pub closed_after_forwarding: u64,
    /// Connections reset, the request not forwarded.
    pub resets: u64,
    pub watches: u64,
    pub watches_cut: u64,
}

impl KubeFaultStats {
    /// Requests faulted (watches cut not counted).
    pub fn requests_faulted(&self) -> u64 {
        self.too_many_requests
            + self.unavailable
            + self.closed_before_forwarding
            + self.closed_after_forwarding
            + self.resets
    }

    /// Faults injected in all.
    pub fn total(&self) -> u64 {
        self.requests_faulted() + self.watches_cut
    }
}

#[derive(Debug)]
struct Inner {
    plan: KubeFaultPlan,
    generator: Generator,
    stats: KubeFaultStats,
    enabled: bool,
}

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decision {
    Pass,
    Fault(RequestFault),
    CutWatch(Duration),
}

/// The proxy, on a [`LoopbackServer`]; stopped on drop.
#[derive(Debug)]
pub struct KubeFaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    _server: LoopbackServer,
    dir: tempfile::TempDir,
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

impl KubeFaultProxy {
    /// Starts a proxy to the API server of `cluster`: clients speak plain HTTP to the proxy,
    /// which speaks HTTPS to the API server (trusting the cluster's CA) and passes the
    /// client's bearer token on.
    pub fn start(cluster: &ControlPlane, plan: KubeFaultPlan) -> KubeFaultProxy {
        let upstream: hyper::Uri = cluster.url.parse().expect("the API server's URL");
        let inner = Arc::new(Mutex::new(Inner {
            generator: Generator::new(plan.seed),
            plan,
            stats: KubeFaultStats::default(),
            enabled: true,
        }));
        let (serving, client) = (inner.clone(), upstream_client(Some(&cluster.ca_pem())));
        let server = LoopbackServer::start("kubefaults", move |request| {
            let (inner, upstream, client) = (serving.clone(), upstream.clone(), client.clone());
            handle(request, upstream, inner, client)
        });
        let proxy = KubeFaultProxy {
            url: format!("http://{}", server.address),
            inner,
            _server: server,
            dir: tempfile::Builder::new()
                .prefix("eks-fa-kubefaults-")
                .tempdir()
                .expect("a temporary folder"),
        };
        proxy.write_kubeconfig(&proxy.kubeconfig());
        proxy
    }

    /// Writes a kubeconfig for the proxy to `path`.
    pub fn write_kubeconfig(&self, path: &Path) {
        std::fs::write(path, crate::controlplane::kubeconfig_yaml(&self.url, None))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// A kubeconfig for the proxy, in a folder it owns.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Stops injecting.
    pub fn stop_faults(&self) {
        lock(&self.inner).enabled = false;
    }

    /// What was injected so far.
    pub fn stats(&self) -> KubeFaultStats {
        lock(&self.inner).stats.clone()
    }
}

fn is_watch(query: &str) -> bool {
    query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1")
}

fn decide(inner: &Mutex<Inner>, watch: bool, method: &str, path: &str) -> Decision {
    let mut inner = lock(inner);
    if !inner.enabled {
        return Decision::Pass;
    }
    if !watch
        && inner
            .plan
            .lost_answers
            .iter()
            .any(|(m, p)| m.eq_ignore_ascii_case(method) && path.contains(p.as_str()))
    {
        inner.stats.requests += 1;
        inner.stats.closed_after_forwarding += 1;
        return Decision::Fault(RequestFault::ClosedAfterForwarding);
    }
    let roll = inner.generator.unit();
    if watch {
        inner.stats.watches += 1;
        if roll < inner.plan.watch_cut_rate {
            inner.stats.watches_cut += 1;
            return Decision::CutWatch(inner.plan.watch_cut_after);
        }
        return Decision::Pass;
    }
    inner.stats.requests += 1;
    let kinds = inner.plan.request_faults.len();
    if kinds == 0 || roll >= inner.plan.error_rate {
        return Decision::Pass;
    }
    let index = ((roll / inner.plan.error_rate) * kinds as f64) as usize;
    let fault = inner.plan.request_faults[index.min(kinds - 1)];
    let stats = &mut inner.stats;
    let counter = match fault {
        RequestFault::TooManyRequests => &mut stats.too_many_requests,
        RequestFault::Unavailable => &mut stats.unavailable,
        RequestFault::ClosedBeforeForwarding => &mut stats.closed_before_forwarding,
        RequestFault::ClosedAfterForwarding => &mut stats.closed_after_forwarding,
        RequestFault::Reset => &mut stats.resets,
    };
    *counter += 1;
    Decision::Fault(fault)
}

/// The error that makes the server end the connection without an answer.
fn no_answer(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, what.to_owned())
}

fn status(code: u16, reason: &str, message: &str) -> hyper::Response<BoxBody> {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
        "details": {"retryAfterSeconds": 1},
    })
    .to_string();
    let mut response = hyper::Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or_default();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        "application/json".parse().expect("a header"),
    );
    headers.insert("retry-after", "1".parse().expect("a header"));
    response
}

/// Passes or faults one request; an `Err` ends the connection without an answer.
async fn handle(
    request: hyper::Request<Incoming>,
    upstream: hyper::Uri,
    inner: Arc<Mutex<Inner>>,
    client: UpstreamClient,
) -> Result<hyper::Response<BoxBody>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let watch = is_watch(parts.uri.query().unwrap_or_default());
    let decision = decide(&inner, watch, parts.method.as_str(), parts.uri.path());
    match decision {
        Decision::Fault(RequestFault::TooManyRequests) => {
            return Ok(status(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ));
        }
        Decision::Fault(RequestFault::Unavailable) => {
            return Ok(status(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ));
        }
        _ => {}
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(status(
                400,
                "BadRequest",
                &format!("unreadable request: {e}"),
            ));
        }
    };
    match decision {
        Decision::Fault(RequestFault::ClosedBeforeForwarding) => {
            return Err(no_answer("closed before forwarding by the fault proxy"));
        }
        Decision::Fault(RequestFault::Reset) => {
            if let Some(reset) = parts.extensions.get::<ConnectionReset>() {
                reset.reset_on_close();
            }
            return Err(no_answer("reset by the fault proxy"));
        }
        _ => {}
    }
    let mut forward = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(format!(
            "{}://{}{}",
            upstream.scheme_str().unwrap_or("http"),
            upstream.authority().map(|a| a.as_str()).unwrap_or_default(),
            target
        ));
    for (name, value) in parts.headers.iter() {
        if !["host", "connection", "content-length", "transfer-encoding"]
            .iter()
            .any(|h| name.as_str().eq_ignore_ascii_case(h))
        {
            forward = forward.header(name, value);
        }
    }
    let forward = match forward.body(Full::new(body)) {
        Ok(f) => f,
        Err(e) => return Ok(status(400, "BadRequest", &e.to_string())),
    };
    let answer = match client.request(forward).await {
        Ok(a) => a,
        Err(e) => {
            return Ok(status(503, "ServiceUnavailable", &format!("upstream: {e}")));
        }
    };
    if decision == Decision::Fault(RequestFault::ClosedAfterForwarding) {
        // The server has acted; its whole answer is read, then lost.
        let _ = answer.into_body().collect().await;
        return Err(no_answer("answer dropped by the fault proxy"));
    }
    let (mut answer_parts, answer_body) = answer.into_parts();
    answer_parts.headers.remove("content-length");
    answer_parts.headers.remove("transfer-encoding");
    let frames = answer_body
        .into_data_stream()
        .map(|chunk| chunk.map(Frame::data).map_err(std::io::Error::other));
    let body: BoxBody = match decision {
        Decision::CutWatch(after) => {
            // The stream ends early with an error, as a dropped connection mid-watch does.
            let cut = futures::stream::once(async move {
                tokio::time::sleep(after).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "watch cut by the fault proxy",
                ))
            });
            let limited = frames.take_until(tokio::time::sleep(after)).chain(cut);
            BodyExt::boxed(StreamBody::new(limited))
        }
        _ => BodyExt::boxed(StreamBody::new(frames)),
    };
    Ok(hyper::Response::from_parts(answer_parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_are_told_apart() {
        assert!(is_watch("watch=true&resourceVersion=5"));
        assert!(is_watch("labelSelector=a&watch=1"));
        assert!(!is_watch("watch=false"));
        assert!(!is_watch(""));
    }

    #[test]
    fn the_rate_holds_and_the_seed_repeats() {
        let make = || {
            Mutex::new(Inner {
                plan: KubeFaultPlan::new(0.3, 11),
                generator: Generator::new(11),
                stats: KubeFaultStats::default(),
                enabled: true,
            })
        };
        let (a, b) = (make(), make());
        let first: Vec<Decision> = (0..1000)
            .map(|i| decide(&a, i % 10 == 0, "GET", "/"))
            .collect();
        let second: Vec<Decision> = (0..1000)
            .map(|i| decide(&b, i % 10 == 0, "GET", "/"))
            .collect();
        assert_eq!(first, second);
        let stats = lock(&a).stats.clone();
        assert_eq!(stats.requests, 900);
        assert_eq!(stats.watches, 100);
        let share = stats.requests_faulted() as f64 / 900.0;
        assert!((0.24..0.36).contains(&share), "{share}");
        assert!(
            [
                stats.too_many_requests,
                stats.unavailable,
                stats.closed_before_forwarding,
                stats.closed_after_forwarding,
                stats.resets,
                stats.watches_cut
            ]
            .iter()
            .all(|&n| n > 0),
            "every kind: {stats:?}"
        );
        assert_eq!(stats.total(), stats.requests_faulted() + stats.watches_cut);
        lock(&a).enabled = false;
        assert_eq!(decide(&a, false, "GET", "/"), Decision::Pass);
    }

    #[test]
    fn a_plan_restricted_to_one_kind_does_only_that() {
        let plan = KubeFaultPlan::new(0.5, 4).only(&[RequestFault::ClosedAfterForwarding]);
        let inner = Mutex::new(Inner {
            generator: Generator::new(4),
            plan,
            stats: KubeFaultStats::default(),
            enabled: true,
        });
        for _ in 0..200 {
            assert!(matches!(
                decide(&inner, false, "GET", "/"),
                Decision::Pass | Decision::Fault(RequestFault::ClosedAfterForwarding)
            ));
        }
        let stats = lock(&inner).stats.clone();
        assert!(stats.closed_after_forwarding > 50, "{stats:?}");
        assert_eq!(stats.requests_faulted(), stats.closed_after_forwarding);
    }

    #[test]
    fn chosen_requests_always_lose_their_answer() {
        let plan = KubeFaultPlan::new(0.0, 4).losing_answers_to("PATCH", "/configmaps/c");
        let inner = Mutex::new(Inner {
            generator: Generator::new(4),
            plan,
            stats: KubeFaultStats::default(),
            enabled: true,
        });
        let lost = Decision::Fault(RequestFault::ClosedAfterForwarding);
        let path = "/api/v1/namespaces/default/configmaps/c";
        assert_eq!(decide(&inner, false, "PATCH", path), lost);
        assert_eq!(decide(&inner, false, "patch", path), lost);
        assert_eq!(decide(&inner, false, "GET", path), Decision::Pass);
        assert_eq!(
            decide(
                &inner,
                false,
                "PATCH",
                "/api/v1/namespaces/default/configmaps/d"
            ),
            Decision::Pass
        );
        assert_eq!(lock(&inner).stats.closed_after_forwarding, 2);
    }
}
