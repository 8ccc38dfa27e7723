//! A small HTTP/1.1 server over tokio (requests parsed with `httparse`): keep-alive,
//! `Content-Length` and chunked request bodies, `Expect: 100-continue`, whole JSON answers and
//! chunked streams for watches. Enough for kube-rs, curl and kubectl-like clients; over plain
//! TCP or TLS ([`super::tls`]).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::Shared;
use super::router;

/// The reading half of a connection, plain or TLS.
type OwnedReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a connection, plain or TLS.
type OwnedWriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The largest request head and body accepted.
const MAX_HEAD: usize = 256 * 1024;
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

fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        _ => "Error",
    }
}

struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    http10: bool,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn bad_data(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_owned())
}

/// Reads more bytes into `buf`; false at end of stream.
async fn fill(rd: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let n = rd.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

async fn read_head(rd: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> std::io::Result<Option<Head>> {
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut parsed = httparse::Request::new(&mut headers);
            match parsed.parse(buf) {
                Ok(httparse::Status::Complete(used)) => {
                    let head = Head {
                        method: parsed.method.unwrap_or("GET").to_owned(),
                        target: parsed.path.unwrap_or("/").to_owned(),
                        headers: parsed
                            .headers
                            .iter()
                            .map(|h| {
                                (
                                    h.name.to_owned(),
                                    String::from_utf8_lossy(h.value).into_owned(),
                                )
                            })
                            .collect(),
                        http10: parsed.version == Some(0),
                    };
                    buf.drain(..used);
                    return Ok(Some(head));
                }
                Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                    return Err(bad_data("request head too large"));
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(bad_data(&e.to_string())),
            }
        }
        if !fill(rd, buf).await? {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(bad_data("connection closed inside a request head"))
            };
        }
    }
}

async fn read_exact_buffered(
    rd: &mut OwnedReadHalf,
    buf: &mut Vec<u8>,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    while buf.len() < len {
        if !fill(rd, buf).await? {
            return Err(bad_data("connection closed inside a request body"));
        }
    }
    Ok(buf.drain(..len).collect())
}

async fn read_line(rd: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> std::io::Result<String> {
    loop {
        if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..at + 2).take(at).collect();
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        if buf.len() > MAX_HEAD || !fill(rd, buf).await? {
            return Err(bad_data("bad chunked body"));
        }
    }
}

async fn read_chunked(rd: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(rd, buf).await?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad_data("bad chunk size"))?;
        if size == 0 {
            while !read_line(rd, buf).await?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(bad_data("request body too large"));
        }
        let mut chunk = read_exact_buffered(rd, buf, size + 2).await?;
        chunk.truncate(size);
        body.extend_from_slice(&chunk);
    }
}

async fn write_head(
    wr: &mut OwnedWriteHalf,
    code: u16,
    content_type: &str,
    length: Option<usize>,
    close: bool,
    http10: bool,
    warning: Option<&str>,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nCache-Control: no-cache, private\r\n",
        reason_phrase(code)
    );
    if let Some(text) = warning {
        // RFC 7234 warn-code 299, as the API server sends for deprecated APIs.
        head.push_str(&format!("Warning: 299 - \"{text}\"\r\n"));
    }
    match length {
        Some(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
        None if !http10 => head.push_str("Transfer-Encoding: chunked\r\n"),
        None => {}
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    wr.write_all(head.as_bytes()).await
}

/// Serves one connection until the client closes it (or asks to).
pub(crate) async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    // Over TLS when the server has a certificate ([`super::tls`]).
    let (mut rd, mut wr): (OwnedReadHalf, OwnedWriteHalf) = match &shared.tls {
        Some(tls) => match tls.acceptor.accept(stream).await {
            Ok(secured) => {
                let (rd, wr) = tokio::io::split(secured);
                (Box::new(rd), Box::new(wr))
            }
            // A client that does not trust the certificate, or does not speak TLS.
            Err(_) => return,
        },
        None => {
            let (rd, wr) = stream.into_split();
            (Box::new(rd), Box::new(wr))
        }
    };
    let mut buf = Vec::new();
    let _ = serve_requests(&mut rd, &mut wr, &mut buf, &shared).await;
    let _ = wr.shutdown().await;
}

async fn serve_requests(
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    buf: &mut Vec<u8>,
    shared: &Arc<Shared>,
) -> std::io::Result<()> {
    while let Some(head) = read_head(rd, buf).await? {
        let close = head.http10
            || head
                .header("connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
        let length = match head.header("content-length") {
            Some(text) => text
                .trim()
                .parse::<usize>()
                .map_err(|_| bad_data("bad Content-Length"))?,
            None => 0,
        };
        if length > MAX_BODY {
            let status =
                super::store::ApiError::new(413, "RequestEntityTooLarge", "request body too large");
            let body = serde_json::to_vec(&status.status()).expect("JSON");
            write_head(
                wr,
                413,
                "application/json",
                Some(body.len()),
                true,
                head.http10,
                None,
            )
            .await?;
            wr.write_all(&body).await?;
            return Ok(());
        }
        if head
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && (chunked || length > 0)
        {
            wr.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        let body = if chunked {
            read_chunked(rd, buf).await?
        } else {
            read_exact_buffered(rd, buf, length).await?
        };
        let is_head = head.method == "HEAD";
        let request = Request {
            method: if is_head { "GET".into() } else { head.method },
            target: head.target,
            headers: head.headers,
            body,
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
        shared.log_request(
            &method,
            &target,
            match &reply {
                Reply::Full { code, .. } => *code,
                Reply::Stream(_) => 200,
            },
        );
        match reply {
            Reply::Full {
                code,
                content_type,
                body,
            } => {
                write_head(
                    wr,
                    code,
                    content_type,
                    Some(body.len()),
                    close,
                    head.http10,
                    warning,
                )
                .await?;
                if !is_head {
                    wr.write_all(&body).await?;
                }
            }
            Reply::Stream(mut events) => {
                write_head(
                    wr,
                    200,
                    "application/json",
                    None,
                    close,
                    head.http10,
                    warning,
                )
                .await?;
                wr.flush().await?;
                loop {
                    tokio::select! {
                        next = events.recv() => match next {
                            Some(chunk) if head.http10 => wr.write_all(&chunk).await?,
                            Some(chunk) => {
                                let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                                framed.extend_from_slice(&chunk);
                                framed.extend_from_slice(b"\r\n");
                                wr.write_all(&framed).await?;
                            }
                            None => {
                                if head.http10 {
                                    return Ok(());
                                }
                                wr.write_all(b"0\r\n\r\n").await?;
                                break;
                            }
                        },
                        more = fill(rd, buf) => {
                            if !more? {
                                // The client went away: dropping `events` ends the watch.
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
        wr.flush().await?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}
