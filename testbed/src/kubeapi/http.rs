//! The HTTP/1.1 side of the stand-in, on hyper: keep-alive, `Content-Length` and chunked
//! request bodies, `Expect: 100-continue`, whole JSON answers and chunked streams for watches
//! (a watch ends when its client goes: hyper then drops the body, and with it the receiver).
//! Over plain TCP or TLS ([`super::tls`]).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::Shared;
use super::router;

/// The largest request body accepted.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// One parsed request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the router answers.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A whole body.
    Full {
        code: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// A 200 whose body is streamed, one chunk per message, until the sender ends.
    Stream(mpsc::Receiver<Vec<u8>>),
}

impl Reply {
    /// A JSON answer.
    pub fn json(code: u16, value: &serde_json::Value) -> Reply {
        Reply::Full {
            code,
            content_type: "application/json",
            body: serde_json::to_vec(value).expect("JSON values serialize"),
        }
    }
}

/// The body of an answer: whole, or one chunk per message until the sender ends.
enum Body {
    Whole(Option<Bytes>),
    Events(mpsc::Receiver<Vec<u8>>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Whole(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            Body::Events(events) => events
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| Ok(Frame::data(Bytes::from(c))))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Whole(body) => SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Events(_) => SizeHint::default(),
        }
    }
}

/// An error that makes hyper close the connection without an answer.
#[derive(Debug)]
struct Closed(String);

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Closed {}

fn answer(
    code: u16,
    content_type: &str,
    warning: Option<&str>,
    body: Body,
) -> hyper::Response<Body> {
    let mut response = hyper::Response::builder()
        .status(code)
        .header("Content-Type", content_type)
        .header("Cache-Control", "no-cache, private");
    if let Some(text) = warning {
        // RFC 7234 warn-code 299, as the API server sends for deprecated APIs.
        response = response.header("Warning", format!("299 - \"{text}\""));
    }
    response.body(body).unwrap_or_else(|_| {
        let mut failed = hyper::Response::new(Body::Whole(None));
        *failed.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        failed
    })
}

/// Serves one connection until the client closes it (or asks to).
pub(crate) async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    // Over TLS when the server has a certificate ([`super::tls`]).
    match &shared.tls {
        // A client that does not trust the certificate, or does not speak TLS, gets nothing.
        Some(tls) => {
            if let Ok(secured) = tls.acceptor.accept(stream).await {
                serve(secured, shared).await;
            }
        }
        None => serve(stream, shared).await,
    }
}

async fn serve(io: impl AsyncRead + AsyncWrite + Send + Unpin + 'static, shared: Arc<Shared>) {
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { handle(request, &shared).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .title_case_headers(true)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn handle(
    request: hyper::Request<Incoming>,
    shared: &Arc<Shared>,
) -> Result<hyper::Response<Body>, Closed> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if declared > MAX_BODY {
        let status =
            super::store::ApiError::new(413, "RequestEntityTooLarge", "request body too large");
        let body = serde_json::to_vec(&status.status()).expect("JSON");
        let mut response = answer(
            413,
            "application/json",
            None,
            Body::Whole(Some(Bytes::from(body))),
        );
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            "close".parse().expect("a header"),
        );
        return Ok(response);
    }
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| Closed(format!("reading the request body: {e}")))?
        .to_bytes();
    let is_head = parts.method == hyper::Method::HEAD;
    let request = Request {
        method: if is_head {
            "GET".into()
        } else {
            parts.method.as_str().to_owned()
        },
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let (method, target) = (request.method.clone(), request.target.clone());
    let warning = router::warning(&target);
    // Authentication first, when the server checks tokens ([`super::auth`]).
    let refused = shared
        .settings
        .eks_token_max_age
        .is_some_and(|max| super::auth::check(&request, max, chrono::Utc::now()).is_err());
    let reply = if refused {
        super::auth::unauthorized()
    } else {
        router::handle(shared, request).await
    };
    let (code, content_type, body) = match reply {
        Reply::Full {
            code,
            content_type,
            body,
        } => (code, content_type, Body::Whole(Some(Bytes::from(body)))),
        Reply::Stream(events) => (200, "application/json", Body::Events(events)),
    };
    shared.log_request(&method, &target, code);
    Ok(answer(code, content_type, warning, body))
}
