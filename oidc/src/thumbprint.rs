//! The thumbprint IAM keeps for an OIDC provider: the SHA-1 of the last certificate the issuer's
//! server presents (the top of its chain), as AWS's documented `openssl s_client -showcerts`
//! procedure takes it. The chain is verified first (roots: the platform's certificates plus any
//! `--issuer-ca`), so a thumbprint is never taken from a server that is not the issuer.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use sha1::{Digest, Sha1};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::issuer::Issuer;
use crate::proxy::Proxy;

/// How long the connection and the TLS handshake may take, unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the issuer's server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainThumbprint {
    /// SHA-1 of the DER of the last certificate presented: 40 lowercase hex digits.
    pub thumbprint: String,
    /// How many certificates the server presented.
    pub chain_len: usize,
}

/// Why no thumbprint could be taken.
#[derive(Debug, thiserror::Error)]
pub enum ThumbprintError {
    #[error(
        "no trusted root certificates: the platform store is empty and no --issuer-ca was given"
    )]
    NoRoots,
    #[error("`{host}` is not a name a TLS certificate can be checked against")]
    ServerName { host: String },
    #[error("the TLS settings were refused: {0}")]
    Config(#[source] rustls::Error),
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("through proxy {proxy}: {reason}")]
    Proxy { proxy: String, reason: String },
    #[error("{address} did not complete a TLS handshake within {after:?}")]
    Timeout { address: String, after: Duration },
    #[error("the TLS handshake with {address} failed: {source}{hint}")]
    Handshake {
        address: String,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("{address} presented no certificate")]
    NoCertificate { address: String },
}

/// SHA-1 of `der`, 40 lowercase hex digits.
pub fn sha1_hex(der: &[u8]) -> String {
    Sha1::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the CA certificates of a PEM file (for `--issuer-ca`); the reason when it has none or
/// one that cannot serve as a trust anchor.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("it is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("it holds no `BEGIN CERTIFICATE` block".into());
    }
    for (i, cert) in certs.iter().enumerate() {
        RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| format!("certificate {} cannot be trusted as a CA: {e}", i + 1))?;
    }
    Ok(certs)
}

/// The platform's root certificates plus `extra`.
pub fn root_store(extra: &[CertificateDer<'static>]) -> Result<RootCertStore, ThumbprintError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!("platform certificate store: {error}");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!("{added} platform root certificates ({ignored} unusable ones skipped)");
    for cert in extra {
        if let Err(e) = roots.add(cert.clone()) {
            tracing::warn!("an --issuer-ca certificate cannot be trusted as a CA: {e}");
        }
    }
    if roots.is_empty() {
        return Err(ThumbprintError::NoRoots);
    }
    Ok(roots)
}

/// Connects to the issuer (directly, or through `proxy`), verifies its chain against the
/// platform's roots plus `extra_roots`, and returns the SHA-1 of the last certificate it
/// presented. The connection and handshake together are bounded by `timeout`.
pub async fn fetch(
    issuer: &Issuer,
    extra_roots: &[CertificateDer<'static>],
    proxy: Option<&Proxy>,
    timeout: Duration,
) -> Result<ChainThumbprint, ThumbprintError> {
    let roots = root_store(extra_roots)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ThumbprintError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(issuer.host().to_owned()).map_err(|_| {
        ThumbprintError::ServerName {
            host: issuer.host().to_owned(),
        }
    })?;
    let address = issuer.address();
    let work = async {
        let tcp = match proxy {
            None => TcpStream::connect((issuer.host(), issuer.port()))
                .await
                .map_err(|source| ThumbprintError::Connect {
                    address: address.clone(),
                    source,
                })?,
            Some(proxy) => proxy
                .tunnel(issuer.host(), issuer.port())
                .await
                .map_err(|reason| ThumbprintError::Proxy {
                    proxy: proxy.to_string(),
                    reason,
                })?,
        };
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|source| ThumbprintError::Handshake {
                address: address.clone(),
                hint: hint_for(&source),
                source,
            })?;
        let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
        let top = chain.last().ok_or_else(|| ThumbprintError::NoCertificate {
            address: address.clone(),
        })?;
        let found = ChainThumbprint {
            thumbprint: sha1_hex(top),
            chain_len: chain.len(),
        };
        let _ = tls.shutdown().await;
        Ok(found)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ThumbprintError::Timeout {
            address: address.clone(),
            after: timeout,
        })?
}

fn hint_for(error: &std::io::Error) -> &'static str {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            " (its chain does not lead to a trusted root; for a private issuer pass --issuer-ca with its CA)"
        }
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => " (its certificate is not for this host name)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_vectors() {
        // FIPS 180 examples.
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn ca_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load_ca_file(&dir.path().join("nope.pem")).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        assert!(
            load_ca_file(&empty)
                .unwrap_err()
                .contains("no `BEGIN CERTIFICATE`")
        );
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = load_ca_file(&garbage).unwrap_err();
        assert!(err.contains("cannot be trusted as a CA"), "{err}");
    }
}
