//! A private CA, a certificate signed by it, and a TLS server on 127.0.0.1 that presents the
//! leaf and the CA: an OIDC issuer of the tests' own. Also a minimal HTTP CONNECT proxy.
//! Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A CA and a server certificate it signed.
pub struct Pki {
    pub ca_der: CertificateDer<'static>,
    pub ca_pem: String,
    pub leaf_der: CertificateDer<'static>,
    leaf_key: Vec<u8>,
}

impl Pki {
    /// A new CA, and a leaf for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "eks-oidc test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf_params = CertificateParams::new(names).unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "eks-oidc test issuer");
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        Pki {
            ca_der: ca.der().clone(),
            ca_pem: ca.pem(),
            leaf_der: leaf.der().clone(),
            leaf_key: leaf_key.serialize_der(),
        }
    }

    /// Writes the CA certificate as PEM into `dir` and returns its path.
    pub fn write_ca(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("issuer-ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

/// Serves TLS on a free 127.0.0.1 port, presenting the leaf then the CA; returns the port. The
/// server is a task of the current runtime and ends with it.
pub async fn serve(pki: &Pki) -> u16 {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key.clone()));
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf_der.clone(), pki.ca_der.clone()], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

/// A server on 127.0.0.1 that accepts connections and never answers; returns the port.
pub async fn silent() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    port
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An HTTP CONNECT proxy on 127.0.0.1 that tunnels every request to `127.0.0.1:to_port`
/// (whatever host it names) and records the request lines; with `refuse`, it answers 403.
pub async fn connect_proxy(to_port: u16, refuse: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    match client.read_u8().await {
                        Ok(b) => head.push(b),
                        Err(_) => return,
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                log.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or_default().to_owned());
                if refuse {
                    let _ = client
                        .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", to_port)).await else {
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (port, seen)
}
