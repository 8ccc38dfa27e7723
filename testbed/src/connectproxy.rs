//! A corporate HTTP proxy on loopback, as `HTTPS_PROXY` names one: it takes `CONNECT host:port`,
//! opens the connection and relays bytes both ways (the TLS inside is the client's and the
//! server's, end to end). Its routes map the names a test uses, which resolve nowhere
//! (`kube.test.invalid:6443`), to loopback addresses, so a client reaches them only through
//! the proxy, as a client behind a corporate proxy reaches hosts its own DNS does not know. A
//! target without a route is answered `502 Bad Gateway`, as a proxy that cannot resolve or
//! reach it answers. Every CONNECT is logged ([`ConnectProxy::connects`]).
//!
//! Stopped (its thread joined) on drop; works from `#[test]` and `#[tokio::test]` alike.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The longest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// One request the proxy got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// `host:port` of the CONNECT; the request line's target for another method.
    pub target: String,
    /// The request's method (`CONNECT`, or what a client sent instead).
    pub method: String,
    /// What was answered: 200 (tunnel open), 502 (no route, nothing listening), 405 (not a
    /// CONNECT), 400 (not a request).
    pub status: u16,
    /// The `Proxy-Authorization` header, if the client sent one.
    pub authorization: Option<String>,
}

#[derive(Debug, Default)]
struct Table {
    routes: HashMap<String, SocketAddr>,
    log: Vec<Connect>,
}

#[derive(Debug, Clone, Default)]
struct Shared(Arc<Mutex<Table>>);

impl Shared {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The proxy.
#[derive(Debug)]
pub struct ConnectProxy {
    /// Where it listens (`127.0.0.1:<port>`).
    pub address: SocketAddr,
    shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConnectProxy {
    /// Starts it on a free loopback port, with no routes.
    pub fn start() -> ConnectProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        let address = listener.local_addr().expect("its address");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let shared = Shared::default();
        let served = shared.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("connect-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        let stream = tokio::select! {
                            _ = &mut stopped => return,
                            accepted = listener.accept() => match accepted {
                                Ok((stream, _)) => stream,
                                Err(_) => continue,
                            },
                        };
                        tokio::spawn(serve(stream, served.clone()));
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("the proxy's thread");
        ConnectProxy {
            address,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`, for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Sends `CONNECT target` (`host:port`) to `to` from now on.
    pub fn route(&self, target: &str, to: SocketAddr) {
        self.shared.table().routes.insert(target.to_owned(), to);
    }

    /// Every request so far, in order.
    pub fn connects(&self) -> Vec<Connect> {
        self.shared.table().log.clone()
    }

    /// The CONNECTs to `target` that opened a tunnel.
    pub fn tunnels_to(&self, target: &str) -> usize {
        self.connects()
            .iter()
            .filter(|c| c.target == target && c.status == 200)
            .count()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Method, target and `Proxy-Authorization` of a request head, or the status to refuse it with.
fn parse_head(head: &[u8]) -> Result<(String, String, Option<String>), u16> {
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let mut lines = text.split("\r\n");
    let line = lines.next().ok_or(400u16)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") || target.is_empty() {
        return Err(400);
    }
    let authorization = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    Ok((method.to_owned(), target.to_owned(), authorization))
}

fn refusal(status: u16) -> String {
    let reason = match status {
        400 => "Bad Request",
        405 => "Method Not Allowed",
        _ => "Bad Gateway",
    };
    format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

async fn serve(mut client: tokio::net::TcpStream, shared: Shared) {
    let mut buffer = Vec::with_capacity(512);
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 1024];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
        if buffer.len() > MAX_HEAD {
            let _ = client.write_all(refusal(400).as_bytes()).await;
            return;
        }
    };
    let (method, target, authorization) = match parse_head(&buffer[..end]) {
        Ok(parsed) => parsed,
        Err(status) => {
            let _ = client.write_all(refusal(status).as_bytes()).await;
            return;
        }
    };
    let mut record = Connect {
        target: target.clone(),
        method: method.clone(),
        status: 405,
        authorization,
    };
    if method != "CONNECT" {
        shared.table().log.push(record);
        let _ = client.write_all(refusal(405).as_bytes()).await;
        return;
    }
    let route = shared.table().routes.get(&target).copied();
    let upstream = match route {
        Some(to) => tokio::net::TcpStream::connect(to).await.ok(),
        None => None,
    };
    let Some(mut upstream) = upstream else {
        record.status = 502;
        shared.table().log.push(record);
        let _ = client.write_all(refusal(502).as_bytes()).await;
        return;
    };
    record.status = 200;
    shared.table().log.push(record);
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
        || upstream.write_all(&buffer[end..]).await.is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_request_head() {
        let head = b"CONNECT kube.test.invalid:6443 HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic dTpw\r\n\r\n";
        assert_eq!(
            parse_head(head),
            Ok((
                "CONNECT".into(),
                "kube.test.invalid:6443".into(),
                Some("Basic dTpw".into())
            ))
        );
        assert_eq!(parse_head(b"nonsense\r\n\r\n"), Err(400));
    }

    #[test]
    fn tunnels_routed_targets_and_refuses_others() {
        use std::io::{Read, Write};
        let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let echo_address = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = echo.accept().unwrap();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).unwrap();
            stream.write_all(&buf).unwrap();
        });
        let proxy = ConnectProxy::start();
        proxy.route("echo.test.invalid:7", echo_address);

        let mut client = std::net::TcpStream::connect(proxy.address).unwrap();
        client
            .write_all(b"CONNECT echo.test.invalid:7 HTTP/1.1\r\n\r\nhello")
            .unwrap();
        let mut answer = vec![0u8; "HTTP/1.1 200 Connection established\r\n\r\nhello".len()];
        client.read_exact(&mut answer).unwrap();
        assert!(
            answer.ends_with(b"\r\n\r\nhello"),
            "{}",
            String::from_utf8_lossy(&answer)
        );

        let mut other = std::net::TcpStream::connect(proxy.address).unwrap();
        other
            .write_all(b"CONNECT nowhere.test.invalid:443 HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut refused = String::new();
        other.read_to_string(&mut refused).unwrap();
        assert!(refused.starts_with("HTTP/1.1 502"), "{refused}");
        assert_eq!(proxy.tunnels_to("echo.test.invalid:7"), 1);
        let statuses: Vec<u16> = proxy.connects().iter().map(|c| c.status).collect();
        assert_eq!(statuses, [200, 502]);
    }
}
