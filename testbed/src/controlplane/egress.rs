//! kube-apiserver's way into the cluster network: an HTTP CONNECT proxy that the API server's
//! `cluster` egress selection goes through, so the calls it makes to pods (admission webhooks,
//! conversion webhooks and aggregated APIs behind a Service) reach servers of the test bed on
//! loopback instead of pod addresses (`10.0.X.Y`) that do not exist on this machine.
//!
//! ```no_run
//! # let cluster = testbed::controlplane::ControlPlane::start();
//! # let webhook: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
//! let egress = cluster.egress().expect("Settings::egress is on by default");
//! egress.route("10.0.9.9:9443".parse().unwrap(), webhook);
//! // ... a call the API server makes to a pod at 10.0.9.9:9443 now reaches `webhook`
//! assert!(egress.connects().iter().any(|c| c.target == "10.0.9.9:9443"));
//! ```
//!
//! - **Routes** map a pod's `IP:port` to a loopback address ([`Routes`], shared by whoever plays
//!   the pods, such as [`crate::webhooksim`]). A target without a route, or whose route has
//!   nothing listening any more, is answered `502 Bad Gateway`: the API server's call fails as
//!   a call to an unreachable pod does ("proxy error ... while dialing 10.0.9.9:9443, code 502").
//! - **The log** ([`EgressProxy::connects`]) keeps every CONNECT with where it went, for tests.
//! - **The transport is a Unix socket.** kube-apiserver v1.37 dials an HTTPConnect proxy of a
//!   `tcp` transport always with TLS and a client certificate (`tls.Dialer` with the
//!   `tlsConfig`'s client pair, which validation requires for `https://`); an `http://` URL
//!   passes validation, but without a `tlsConfig` v1.37.2 panics as it starts (a nil pointer in
//!   `egressselector.getTLSConfig`, seen here). The `uds` transport is plain HTTP CONNECT: the
//!   Unix socket keeps the proxy free of certificates and of a port.
//! - Only the `cluster` selection goes through it ([`selector_configuration`]); `controlplane`
//!   (URL webhooks, the TokenReview webhook) and `etcd` stay direct.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The longest CONNECT request head read (Go's client sends about 60 bytes).
const MAX_HEAD: usize = 8 * 1024;

/// One CONNECT the proxy was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The address asked for, as the request line gave it (`10.0.9.9:9443`); empty when the
    /// request was not a CONNECT.
    pub target: String,
    /// The loopback address its route led to; None when there was no route.
    pub routed_to: Option<SocketAddr>,
    /// What was answered: 200 (tunnel open), 502 (no route, or nothing listening at the
    /// route), 400 (not a request), 405 (not a CONNECT).
    pub status: u16,
}

#[derive(Debug, Default)]
struct Table {
    routes: HashMap<SocketAddr, SocketAddr>,
    log: Vec<Connect>,
}

/// The routing table and log of a proxy; a cheap handle, cloned to whoever plays the pods.
#[derive(Debug, Clone, Default)]
pub struct Routes(Arc<Mutex<Table>>);

impl Routes {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends connections to `target` (a pod's `IP:port`) to `to` (a loopback address) from now
    /// on; returns the route it replaced.
    pub fn add(&self, target: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
        self.table().routes.insert(target, to)
    }

    /// Removes the route of `target` (the pod is gone); returns where it led.
    pub fn remove(&self, target: SocketAddr) -> Option<SocketAddr> {
        self.table().routes.remove(&target)
    }

    /// Removes the route of `target` only while it still leads to `to` (so an owner never
    /// removes a route someone else put there since); returns whether it did.
    pub fn remove_if(&self, target: SocketAddr, to: SocketAddr) -> bool {
        let mut table = self.table();
        if table.routes.get(&target) == Some(&to) {
            table.routes.remove(&target);
            true
        } else {
            false
        }
    }

    /// Where connections to `target` go now.
    pub fn get(&self, target: SocketAddr) -> Option<SocketAddr> {
        self.table().routes.get(&target).copied()
    }

    /// Every route, target to loopback address.
    pub fn all(&self) -> HashMap<SocketAddr, SocketAddr> {
        self.table().routes.clone()
    }

    /// Every CONNECT so far, in order.
    pub fn connects(&self) -> Vec<Connect> {
        self.table().log.clone()
    }

    /// The route for a CONNECT to `target`, logged with its outcome by [`Self::record`].
    fn lookup(&self, target: &str) -> Option<SocketAddr> {
        let target: SocketAddr = target.parse().ok()?;
        self.get(target)
    }

    fn record(&self, connect: Connect) {
        self.table().log.push(connect);
    }
}

/// The proxy, listening on a Unix socket; stopped (its thread joined, the socket removed) on
/// drop.
#[derive(Debug)]
pub struct EgressProxy {
    socket: PathBuf,
    routes: Routes,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EgressProxy {
    /// Listens on the Unix socket `socket` (a path short enough for one: 107 bytes), served
    /// from a thread with a runtime of its own, so it works from `#[test]` and `#[tokio::test]`
    /// alike and outlives any test's runtime.
    pub fn start(socket: &Path) -> std::io::Result<EgressProxy> {
        if socket.exists() {
            std::fs::remove_file(socket)?;
        }
        let listener = std::os::unix::net::UnixListener::bind(socket)?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let routes = Routes::default();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let served = routes.clone();
        let thread = std::thread::Builder::new()
            .name("egress-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::UnixListener::from_std(listener) else {
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
                        tokio::spawn(tunnel(stream, served.clone()));
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(EgressProxy {
            socket: socket.to_path_buf(),
            routes,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The Unix socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A handle on its routing table and log, for whoever plays the pods.
    pub fn routes(&self) -> Routes {
        self.routes.clone()
    }

    /// Sends connections to `target` (a pod's `IP:port`) to `to` (a loopback address).
    pub fn route(&self, target: SocketAddr, to: SocketAddr) {
        self.routes.add(target, to);
    }

    /// Removes the route of `target`.
    pub fn unroute(&self, target: SocketAddr) {
        self.routes.remove(target);
    }

    /// Every CONNECT so far, in order.
    pub fn connects(&self) -> Vec<Connect> {
        self.routes.connects()
    }

    /// The `EgressSelectorConfiguration` (for `--egress-selector-config-file`) that sends the
    /// API server's `cluster` traffic through this proxy.
    pub fn selector_configuration(&self) -> String {
        selector_configuration(&self.socket)
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// An `EgressSelectorConfiguration` (`apiserver.k8s.io/v1beta1`, the newest version kube-apiserver
/// v1.37 reads for it) whose `cluster` selection uses HTTP CONNECT over the Unix socket
/// `socket`. JSON, which the API server's decoder reads as it reads YAML.
pub fn selector_configuration(socket: &Path) -> String {
    let config = serde_json::json!({
        "apiVersion": "apiserver.k8s.io/v1beta1",
        "kind": "EgressSelectorConfiguration",
        "egressSelections": [{
            "name": "cluster",
            "connection": {
                "proxyProtocol": "HTTPConnect",
                "transport": {"uds": {"udsName": socket.display().to_string()}}
            }
        }]
    });
    serde_json::to_string_pretty(&config).expect("a configuration serializes")
}

/// The target of a CONNECT request head (up to and with its blank line), or the status to
/// answer it with: 405 for another method, 400 for anything that is not a request line.
fn connect_target(head: &[u8]) -> Result<String, u16> {
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let line = text.lines().next().ok_or(400u16)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") || target.is_empty() {
        return Err(400);
    }
    if method != "CONNECT" {
        return Err(405);
    }
    Ok(target.to_owned())
}

/// The status line and headers of an answer that ends the connection.
fn refusal(status: u16) -> String {
    let reason = match status {
        400 => "Bad Request",
        405 => "Method Not Allowed",
        _ => "Bad Gateway",
    };
    format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

/// Where a request head ends (after its blank line), if it has.
fn head_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// Serves one connection of the API server: reads the CONNECT, opens the route's connection,
/// answers 200 and relays both ways until either side closes.
async fn tunnel(mut client: tokio::net::UnixStream, routes: Routes) {
    let mut buffer = Vec::with_capacity(512);
    let end = loop {
        if let Some(end) = head_end(&buffer) {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            routes.record(Connect {
                target: String::new(),
                routed_to: None,
                status: 400,
            });
            let _ = client.write_all(refusal(400).as_bytes()).await;
            return;
        }
        let mut chunk = [0u8; 1024];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let target = match connect_target(&buffer[..end]) {
        Ok(target) => target,
        Err(status) => {
            routes.record(Connect {
                target: String::new(),
                routed_to: None,
                status,
            });
            let _ = client.write_all(refusal(status).as_bytes()).await;
            return;
        }
    };
    let routed_to = routes.lookup(&target);
    let upstream = match routed_to {
        Some(to) => tokio::net::TcpStream::connect(to).await.ok(),
        None => None,
    };
    let Some(mut upstream) = upstream else {
        routes.record(Connect {
            target,
            routed_to,
            status: 502,
        });
        let _ = client.write_all(refusal(502).as_bytes()).await;
        return;
    };
    routes.record(Connect {
        target,
        routed_to,
        status: 200,
    });
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    // Whatever the client sent after its head (nothing, from Go's client, which waits for the
    // answer) belongs to the tunnel.
    if upstream.write_all(&buffer[end..]).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_line_names_its_target() {
        let head = b"CONNECT 10.0.9.9:9443 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert_eq!(connect_target(head), Ok("10.0.9.9:9443".to_owned()));
        assert_eq!(
            connect_target(b"CONNECT [fd00::1]:9443 HTTP/1.1\r\n\r\n"),
            Ok("[fd00::1]:9443".to_owned())
        );
        assert_eq!(connect_target(b"GET / HTTP/1.1\r\n\r\n"), Err(405));
        assert_eq!(connect_target(b"CONNECT 10.0.9.9:9443\r\n\r\n"), Err(400));
        assert_eq!(connect_target(b"hello\r\n\r\n"), Err(400));
        assert_eq!(connect_target(b"CONNECT x SPDY/3\r\n\r\n"), Err(400));
        assert_eq!(head_end(b"CONNECT a HTTP/1.1\r\n\r\nrest"), Some(22));
        assert_eq!(head_end(b"CONNECT a HTTP/1.1\r\n"), None);
    }

    #[test]
    fn the_configuration_names_the_socket_for_the_cluster_selection() {
        let text = selector_configuration(Path::new("/tmp/a b/egress.sock"));
        let config: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(config["apiVersion"], "apiserver.k8s.io/v1beta1");
        assert_eq!(config["kind"], "EgressSelectorConfiguration");
        let selection = &config["egressSelections"][0];
        assert_eq!(selection["name"], "cluster");
        assert_eq!(selection["connection"]["proxyProtocol"], "HTTPConnect");
        assert_eq!(
            selection["connection"]["transport"]["uds"]["udsName"],
            "/tmp/a b/egress.sock"
        );
    }

    #[test]
    fn routes_are_replaced_and_removed_only_by_their_owner() {
        let routes = Routes::default();
        let pod: SocketAddr = "10.0.1.2:9443".parse().unwrap();
        let a: SocketAddr = "127.0.0.1:1001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:1002".parse().unwrap();
        assert_eq!(routes.add(pod, a), None);
        assert_eq!(routes.add(pod, b), Some(a));
        assert!(!routes.remove_if(pod, a));
        assert_eq!(routes.get(pod), Some(b));
        assert!(routes.remove_if(pod, b));
        assert_eq!(routes.lookup("10.0.1.2:9443"), None);
        assert_eq!(routes.lookup("not-an-address:9443"), None);
    }

    /// Sends a CONNECT for `target` through the proxy at `socket`; returns the answer's head
    /// and the open stream.
    async fn connect(socket: &Path, target: &str) -> (String, tokio::net::UnixStream) {
        let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
        stream
            .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut head = Vec::new();
        while head_end(&head).is_none() {
            let mut byte = [0u8; 1];
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        (String::from_utf8(head).unwrap(), stream)
    }

    #[tokio::test]
    async fn a_routed_target_is_tunnelled_and_others_are_a_bad_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = EgressProxy::start(&dir.path().join("egress.sock")).unwrap();
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_address = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = echo.accept().await.unwrap();
            let (mut read, mut write) = stream.split();
            let _ = tokio::io::copy(&mut read, &mut write).await;
        });
        let pod: SocketAddr = "10.0.9.9:9443".parse().unwrap();
        proxy.route(pod, echo_address);

        let (head, mut stream) = connect(proxy.socket(), "10.0.9.9:9443").await;
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        stream.write_all(b"ping").await.unwrap();
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"ping");

        let (head, _) = connect(proxy.socket(), "10.0.9.8:9443").await;
        assert!(head.starts_with("HTTP/1.1 502 "), "{head}");
        proxy.unroute(pod);
        let (head, _) = connect(proxy.socket(), "10.0.9.9:9443").await;
        assert!(head.starts_with("HTTP/1.1 502 "), "{head}");

        assert_eq!(
            proxy.connects(),
            vec![
                Connect {
                    target: "10.0.9.9:9443".into(),
                    routed_to: Some(echo_address),
                    status: 200
                },
                Connect {
                    target: "10.0.9.8:9443".into(),
                    routed_to: None,
                    status: 502
                },
                Connect {
                    target: "10.0.9.9:9443".into(),
                    routed_to: None,
                    status: 502
                },
            ]
        );
        let socket = proxy.socket().to_path_buf();
        drop(proxy);
        assert!(!socket.exists(), "the socket is removed with the proxy");
    }
}
