//! An HTTP/1.1 server on a free 127.0.0.1 port (hyper), served from a thread with its own tokio
//! runtime so it works from `#[test]` and `#[tokio::test]` alike; stopped on drop. The proxies
//! of the test bed ([`crate::awsproxy`], [`crate::kubefaults`]) are built on it, each with a
//! handler of its own, and share [`upstream_client`] to forward what they pass.
//!
//! Every request carries a [`ConnectionReset`] in its extensions: a handler that calls
//! [`ConnectionReset::reset_on_close`] and then fails makes the connection end with a TCP reset
//! (`SO_LINGER` 0, no FIN) instead of a close.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The client a proxy forwards with: plain HTTP, or HTTPS to a server whose CA it is given.
pub(crate) type UpstreamClient =
    HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for forwarding to an upstream on loopback, over HTTP or over HTTPS trusting
/// `ca_pem` (a PEM bundle; none: no HTTPS upstream is trusted).
pub(crate) fn upstream_client(ca_pem: Option<&str>) -> UpstreamClient {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.unwrap_or("").as_bytes()).flatten() {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    HttpClient::builder(TokioExecutor::new()).build(connector)
}

/// Asks for the connection of a request to end with a TCP reset (found in each request's
/// extensions).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionReset(Arc<AtomicBool>);

impl ConnectionReset {
    /// When the connection ends (the handler fails), it is reset instead of closed.
    pub(crate) fn reset_on_close(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wanted(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// An accepted connection that can end with a reset: with [`ConnectionReset::reset_on_close`],
/// a shutdown sends no FIN and the socket is dropped with `SO_LINGER` 0, which sends an RST.
struct Resettable {
    stream: tokio::net::TcpStream,
    reset: ConnectionReset,
}

impl Drop for Resettable {
    fn drop(&mut self) {
        if self.reset.wanted() {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl tokio::io::AsyncRead for Resettable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Resettable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.reset.wanted() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The server; stopped (its thread joined) on drop.
#[derive(Debug)]
pub(crate) struct LoopbackServer {
    /// `127.0.0.1:<port>`.
    pub address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackServer {
    /// Serves every request with `handler` on a thread named `name`. An `Err` from the handler
    /// makes hyper close the connection without an answer.
    pub(crate) fn start<H, F, B, E>(name: &str, handler: H) -> LoopbackServer
    where
        H: Fn(hyper::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<hyper::Response<B>, E>> + Send + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let address = listener.local_addr().expect("a local address");
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("a runtime for the server");
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("the server listens");
                    loop {
                        let (stream, _) = tokio::select! {
                            _ = &mut stopped => return,
                            accepted = listener.accept() => match accepted {
                                Ok(accepted) => accepted,
                                Err(_) => continue,
                            },
                        };
                        let handler = handler.clone();
                        let reset = ConnectionReset::default();
                        let stream = Resettable {
                            stream,
                            reset: reset.clone(),
                        };
                        let service = move |mut request: hyper::Request<Incoming>| {
                            request.extensions_mut().insert(reset.clone());
                            handler(request)
                        };
                        tokio::spawn(async move {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(
                                    TokioIo::new(stream),
                                    hyper::service::service_fn(service),
                                )
                                .await;
                        });
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("a thread for the server");
        LoopbackServer {
            address,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
