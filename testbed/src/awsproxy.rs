//! A proxy on 127.0.0.1 in front of moto, to make the emulator as hard as AWS where it is kinder:
//! every request is forwarded to moto unchanged unless a rule says otherwise. A rule sees the
//! request (service, action, parameters, body) and answers with a verdict: forward it, answer it
//! itself (an AWS error in the service's own wire format, or any body), wait first, or drop the
//! connection without an answer. Rules may keep state of their own (a counter, a clock), and may
//! be async (to ask moto something through an SDK client before deciding). Every request is
//! recorded with the status it got, so a test can assert which calls a binary made and in what
//! order.
//!
//! The proxy runs on a [`LoopbackServer`] (a thread with its own tokio runtime), so it works
//! from `#[test]` and `#[tokio::test]` alike; it stops on drop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};

use crate::Moto;
use crate::loopback::{LoopbackServer, UpstreamClient, upstream_client};

mod reply;
mod request;

pub use reply::AwsReply;
pub use request::AwsRequest;

/// What a rule decides for a request.
#[derive(Debug)]
pub enum Verdict {
    /// Not this rule's business: the next rule decides, else moto answers.
    Pass,
    /// Answer this instead of moto.
    Reply(AwsReply),
    /// Wait this long, then let the next rule decide (a slow answer).
    Delay(Duration),
    /// Close the connection without an answer (a dropped connection); moto never sees it.
    Drop,
    /// Let moto carry the request out, then close the connection without its answer (the
    /// answer lost on the way back: the change is made, the caller does not know it).
    ForwardThenDrop,
}

type SyncRule = Arc<dyn Fn(&AwsRequest) -> Verdict + Send + Sync>;
type AsyncRule = Arc<dyn Fn(AwsRequest) -> BoxFuture<'static, Verdict> + Send + Sync>;
type Observer = Arc<dyn Fn(&AwsRequest, &AwsReply) + Send + Sync>;
type Rewriter = Arc<dyn Fn(&AwsRequest, &mut AwsReply) + Send + Sync>;

enum Rule {
    Sync(SyncRule),
    Async(AsyncRule),
}

/// One request seen, with the status it was answered (0: dropped).
#[derive(Debug, Clone)]
pub struct ProxyCall {
    pub request: AwsRequest,
    pub status: u16,
    /// True when a rule answered (or dropped it) rather than moto.
    pub by_rule: bool,
}

impl std::fmt::Display for ProxyCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.request.name(), self.status)
    }
}

#[derive(Default)]
struct Inner {
    rules: Mutex<Vec<Rule>>,
    observers: Mutex<Vec<Observer>>,
    rewriters: Mutex<Vec<Rewriter>>,
    calls: Mutex<Vec<ProxyCall>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The proxy. Point a binary's `AWS_ENDPOINT_URL` at [`AwsProxy::endpoint`] (see
/// [`AwsProxy::command`]).
pub struct AwsProxy {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    inner: Arc<Inner>,
    _server: LoopbackServer,
}

impl std::fmt::Debug for AwsProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProxy")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl AwsProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:<port>`, moto's endpoint).
    pub fn start(upstream: &str) -> AwsProxy {
        let upstream: hyper::Uri = upstream.parse().expect("an http:// upstream");
        let inner = Arc::new(Inner::default());
        let (serving, client) = (inner.clone(), upstream_client(None));
        let server = LoopbackServer::start("awsproxy", move |request| {
            let (inner, upstream, client) = (serving.clone(), upstream.clone(), client.clone());
            async move { handle(request, &upstream, &inner, &client).await }
        });
        AwsProxy {
            endpoint: format!("http://{}", server.address),
            inner,
            _server: server,
        }
    }

    /// Starts a proxy in front of `moto`.
    pub fn in_front_of(moto: &Moto) -> AwsProxy {
        AwsProxy::start(&moto.endpoint)
    }

    /// Adds a rule; rules are asked in the order they were added.
    pub fn rule(&self, rule: impl Fn(&AwsRequest) -> Verdict + Send + Sync + 'static) {
        lock(&self.inner.rules).push(Rule::Sync(Arc::new(rule)));
    }

    /// Adds an async rule (it runs on the proxy's runtime, and may call moto through an SDK
    /// client made for [`Moto::endpoint`]).
    pub fn async_rule<F>(&self, rule: impl Fn(AwsRequest) -> F + Send + Sync + 'static)
    where
        F: std::future::Future<Output = Verdict> + Send + 'static,
    {
        lock(&self.inner.rules).push(Rule::Async(Arc::new(move |r| Box::pin(rule(r)))));
    }

    /// Adds an observer of every answer moto gave (not of the ones rules gave), e.g. to note
    /// when a delete went through.
    pub fn observe(&self, observer: impl Fn(&AwsRequest, &AwsReply) + Send + Sync + 'static) {
        lock(&self.inner.observers).push(Arc::new(observer));
    }

    /// Adds a rewriter of moto's answers (not of the ones rules gave): it may change the status,
    /// headers or body before observers see the answer and the binary gets it (e.g. a status
    /// the real service reports that moto never does). Rewriters run in the order added.
    pub fn rewrite(&self, rewriter: impl Fn(&AwsRequest, &mut AwsReply) + Send + Sync + 'static) {
        lock(&self.inner.rewriters).push(Arc::new(rewriter));
    }

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<ProxyCall> {
        lock(&self.inner.calls).clone()
    }

    /// The names ([`AwsRequest::name`]) of the requests so far that may change something.
    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| c.request.is_mutating())
            .map(|c| c.request.name())
            .collect()
    }

    /// Forgets the requests so far.
    pub fn clear_calls(&self) {
        lock(&self.inner.calls).clear();
    }

    /// The environment of [`Moto::env`] with the endpoint pointed at this proxy.
    pub fn env(&self, moto: &Moto) -> Vec<(&'static str, String)> {
        let mut env = moto.env();
        for (key, value) in &mut env {
            if *key == "AWS_ENDPOINT_URL" {
                *value = self.endpoint.clone();
            }
        }
        env
    }

    /// A command for `program` wired to moto through this proxy (see [`Moto::command`]).
    pub fn command(
        &self,
        moto: &Moto,
        program: impl AsRef<std::ffi::OsStr>,
    ) -> assert_cmd::Command {
        let mut cmd = moto.command(program);
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint);
        cmd
    }
}

/// An error of the proxy; hyper closes the connection without an answer on it (which is how a
/// rule drops a connection).
#[derive(Debug)]
struct ProxyError(String);

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProxyError {}

fn failed(what: &str) -> impl FnOnce(String) -> ProxyError + '_ {
    move |e| ProxyError(format!("{what}: {e}"))
}

async fn handle(
    request: hyper::Request<Incoming>,
    upstream: &hyper::Uri,
    inner: &Inner,
    client: &UpstreamClient,
) -> Result<hyper::Response<Full<Bytes>>, ProxyError> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| e.to_string())
        .map_err(failed("reading the request"))?
        .to_bytes();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let aws = AwsRequest::new(parts.method.as_str(), &target, headers, body.to_vec());

    let rules: Vec<Rule> = lock(&inner.rules)
        .iter()
        .map(|r| match r {
            Rule::Sync(f) => Rule::Sync(f.clone()),
            Rule::Async(f) => Rule::Async(f.clone()),
        })
        .collect();
    let mut lose_answer = false;
    for rule in rules {
        let verdict = match rule {
            Rule::Sync(f) => f(&aws),
            Rule::Async(f) => f(aws.clone()).await,
        };
        match verdict {
            Verdict::Pass => {}
            Verdict::Delay(wait) => tokio::time::sleep(wait).await,
            Verdict::Drop => {
                record(inner, &aws, 0, true);
                return Err(ProxyError("connection dropped by a proxy rule".into()));
            }
            Verdict::Reply(reply) => {
                record(inner, &aws, reply.status, true);
                return Ok(to_response(reply));
            }
            Verdict::ForwardThenDrop => {
                lose_answer = true;
                break;
            }
        }
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
        if !is_hop_by_hop(name.as_str()) {
            forward = forward.header(name, value);
        }
    }
    let forward = forward
        .body(Full::new(body))
        .map_err(|e| e.to_string())
        .map_err(failed("building the request"))?;
    let answer = client
        .request(forward)
        .await
        .map_err(|e| e.to_string())
        .map_err(failed("forwarding to moto"))?;
    let (answer_parts, answer_body) = answer.into_parts();
    let answer_body = answer_body
        .collect()
        .await
        .map_err(|e| e.to_string())
        .map_err(failed("reading moto's answer"))?
        .to_bytes();
    let mut reply = AwsReply {
        status: answer_parts.status.as_u16(),
        headers: answer_parts
            .headers
            .iter()
            .filter(|(k, _)| !is_hop_by_hop(k.as_str()))
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: answer_body.to_vec(),
    };
    let rewriters: Vec<Rewriter> = lock(&inner.rewriters).clone();
    for rewriter in rewriters {
        rewriter(&aws, &mut reply);
    }
    let observers: Vec<Observer> = lock(&inner.observers).clone();
    for observer in observers {
        observer(&aws, &reply);
    }
    if lose_answer {
        record(inner, &aws, 0, true);
        return Err(ProxyError(
            "answer dropped by a proxy rule after moto carried the request out".into(),
        ));
    }
    record(inner, &aws, reply.status, false);
    Ok(to_response(reply))
}

fn record(inner: &Inner, request: &AwsRequest, status: u16, by_rule: bool) {
    lock(&inner.calls).push(ProxyCall {
        request: request.clone(),
        status,
        by_rule,
    });
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "upgrade",
        "proxy-connection",
        "te",
        "trailer",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

fn to_response(reply: AwsReply) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| {
            let mut fallback = hyper::Response::new(Full::new(Bytes::from_static(b"bad reply")));
            *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}

#[cfg(test)]
mod tests;
