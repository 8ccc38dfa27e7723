//! Building the Kubernetes client: from the cluster's endpoint, CA and an EKS token (no aws CLI,
//! no kubectl, no kubeconfig needed), or from a kubeconfig file (`--kubeconfig`, other clusters,
//! tests). Both go through the proxy of `HTTPS_PROXY`/`NO_PROXY` ([`crate::proxy`]).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::kubeauth::{RefreshLayer, TokenSource};
use crate::kuberetry::RetryLayer;

/// Why no Kubernetes client could be built.
#[derive(Debug, thiserror::Error)]
pub enum KubeClientError {
    #[error("the cluster endpoint `{endpoint}` is not a URL: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error(
        "the cluster's certificate authority data is not base64 of a PEM certificate ({reason}); describe the cluster again or pass --kubeconfig"
    )]
    CertificateAuthority { reason: String },
    #[error("cannot read kubeconfig {path}: {source}")]
    ReadKubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("kubeconfig {path} has no usable context{context}: {source}")]
    LoadKubeconfig {
        path: String,
        context: String,
        source: kube::config::KubeconfigError,
    },
    #[error(transparent)]
    Proxy(#[from] crate::proxy::BadProxy),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// Sends the client through the proxy the environment names for its server
/// ([`crate::proxy::ProxyEnv`]: `HTTPS_PROXY`, `NO_PROXY`), unless a kubeconfig set one
/// (`proxy-url`), which wins as it does for kubectl.
fn with_env_proxy(mut config: kube::Config) -> Result<kube::Config, KubeClientError> {
    if config.proxy_url.is_none()
        && let Some(proxy) = crate::proxy::ProxyEnv::from_env().for_https(&config.cluster_url)?
    {
        tracing::debug!(
            "reaching {} through the proxy {}",
            config.cluster_url,
            crate::proxy::without_user_info(&proxy.to_string())
        );
        config.proxy_url = Some(proxy);
    }
    Ok(config)
}

/// A client for an EKS cluster from its endpoint, its `certificateAuthority.data` (base64 of
/// PEM) and the [`TokenSource`] of its bearer tokens, which signs a new token before the old one
/// expires and when the server refuses one (see [`crate::kubeauth`]); an idempotent request
/// that got no answer is sent again ([`crate::kuberetry`]). Call it inside a tokio runtime.
pub fn client_for_eks(
    endpoint: &str,
    ca_data: &str,
    tokens: Arc<TokenSource>,
) -> Result<kube::Client, KubeClientError> {
    let uri: http::Uri =
        endpoint
            .parse()
            .map_err(|e: http::uri::InvalidUri| KubeClientError::Endpoint {
                endpoint: endpoint.to_owned(),
                reason: e.to_string(),
            })?;
    let mut config = kube::Config::new(uri);
    config.root_cert = Some(ca_certificates_der(ca_data)?);
    let builder = kube::client::ClientBuilder::try_from(with_env_proxy(config)?)?;
    Ok(builder
        .with_layer(&RefreshLayer::new(tokens))
        .with_layer(&RetryLayer::new())
        .build())
}

/// A client from a kubeconfig file, with its current context or `context`; an idempotent request
/// that got no answer is sent again ([`crate::kuberetry`]), as from [`client_for_eks`]. Call it
/// inside a tokio runtime.
pub async fn client_from_kubeconfig(
    path: &Path,
    context: Option<&str>,
) -> Result<kube::Client, KubeClientError> {
    let shown = path.display().to_string();
    let kubeconfig =
        Kubeconfig::read_from(path).map_err(|source| KubeClientError::ReadKubeconfig {
            path: shown.clone(),
            source,
        })?;
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| KubeClientError::LoadKubeconfig {
            path: shown,
            context: context.map(|c| format!(" `{c}`")).unwrap_or_default(),
            source,
        })?;
    Ok(
        kube::client::ClientBuilder::try_from(with_env_proxy(config)?)?
            .with_layer(&RetryLayer::new())
            .build(),
    )
}

/// Why a kubeconfig given with `--kubeconfig` (and `--context`) cannot be used: found when the
/// command line is read, before anything else (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigProblem {
    #[error("--kubeconfig {path}: cannot read it: {reason}; pass a readable kubeconfig file")]
    Unreadable { path: String, reason: String },
    #[error(
        "--context {context}: kubeconfig {path} has no such context; its contexts: {known}; pass one of them"
    )]
    NoSuchContext {
        context: String,
        path: String,
        known: String,
    },
    #[error(
        "--kubeconfig {path}: its current-context {}; pass --context NAME (its contexts: {known})",
        match current { Some(c) => format!("`{c}` is not one of its contexts"), None => "is not set".to_owned() }
    )]
    NoCurrentContext {
        path: String,
        current: Option<String>,
        known: String,
    },
}

/// The context a client from the kubeconfig at `path` uses: `context` when given, else the
/// file's `current-context`; either must name one of its contexts (what
/// [`client_from_kubeconfig`] needs). Reads the file; makes no call.
pub fn kubeconfig_context(path: &Path, context: Option<&str>) -> Result<String, KubeconfigProblem> {
    let shown = path.display().to_string();
    let unreadable = |reason: String| KubeconfigProblem::Unreadable {
        path: shown.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let kubeconfig = Kubeconfig::from_yaml(&text).map_err(|e| {
        unreadable(format!(
            "not a kubeconfig: {}",
            crate::step::error_chain(&e)
        ))
    })?;
    let names: Vec<&str> = kubeconfig
        .contexts
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let known = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    };
    match context {
        Some(asked) if names.contains(&asked) => Ok(asked.to_owned()),
        Some(asked) => Err(KubeconfigProblem::NoSuchContext {
            context: asked.to_owned(),
            path: shown,
            known,
        }),
        None => match kubeconfig.current_context.filter(|c| !c.is_empty()) {
            Some(current) if names.contains(&current.as_str()) => Ok(current),
            current => Err(KubeconfigProblem::NoCurrentContext {
                path: shown,
                current,
                known,
            }),
        },
    }
}

/// The DER certificates in base64-encoded PEM (the form EKS returns).
pub fn ca_certificates_der(ca_data: &str) -> Result<Vec<Vec<u8>>, KubeClientError> {
    let bad = |reason: &str| KubeClientError::CertificateAuthority {
        reason: reason.to_owned(),
    };
    let pem_bytes = STANDARD
        .decode(ca_data.trim())
        .map_err(|_| bad("not base64"))?;
    let pem = String::from_utf8(pem_bytes).map_err(|_| bad("not text"))?;
    let mut certificates = Vec::new();
    let mut rest = pem.as_str();
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body_start = start + "-----BEGIN CERTIFICATE-----".len();
        let end = rest[body_start..]
            .find("-----END CERTIFICATE-----")
            .ok_or_else(|| bad("a certificate has no END line"))?;
        let body: String = rest[body_start..body_start + end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        certificates.push(
            STANDARD
                .decode(body)
                .map_err(|_| bad("a certificate body is not base64"))?,
        );
        rest = &rest[body_start + end..];
    }
    if certificates.is_empty() {
        return Err(bad("no certificate in it"));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(bodies: &[&[u8]]) -> String {
        let mut text = String::new();
        for body in bodies {
            text.push_str("-----BEGIN CERTIFICATE-----\n");
            let encoded = STANDARD.encode(body);
            for chunk in encoded.as_bytes().chunks(64) {
                text.push_str(std::str::from_utf8(chunk).unwrap());
                text.push('\n');
            }
            text.push_str("-----END CERTIFICATE-----\n");
        }
        STANDARD.encode(text)
    }

    #[test]
    fn reads_every_certificate() {
        let data = pem(&[
            b"first certificate bytes, long enough to wrap over one line of pem",
            b"second",
        ]);
        let der = ca_certificates_der(&data).unwrap();
        assert_eq!(der.len(), 2);
        assert_eq!(der[1], b"second");
    }

    #[test]
    fn the_context_must_be_in_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let config = |current: &str| {
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: https://127.0.0.1:1}}\n\
                 users:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: one\n  context: {{cluster: c, user: u}}\n\
                 - name: two\n  context: {{cluster: c, user: u}}\n{current}"
            )
        };
        std::fs::write(&path, config("current-context: one\n")).unwrap();
        assert_eq!(kubeconfig_context(&path, None).unwrap(), "one");
        assert_eq!(kubeconfig_context(&path, Some("two")).unwrap(), "two");
        let err = kubeconfig_context(&path, Some("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--context nope:"), "{err}");
        assert!(err.contains("its contexts: one, two"), "{err}");
        std::fs::write(&path, config("")).unwrap();
        let err = kubeconfig_context(&path, None).unwrap_err().to_string();
        assert!(
            err.contains("current-context is not set; pass --context NAME"),
            "{err}"
        );
        std::fs::write(&path, config("current-context: gone\n")).unwrap();
        let err = kubeconfig_context(&path, None).unwrap_err().to_string();
        assert!(err.contains("`gone` is not one of its contexts"), "{err}");
        let err = kubeconfig_context(&dir.path().join("missing"), None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--kubeconfig "), "{err}");
        assert!(err.contains("cannot read it"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_pem() {
        for data in ["not base64 !!", "cmFuZG9tIGxldHRlcnM=", ""] {
            let err = ca_certificates_der(data).unwrap_err();
            assert!(err.to_string().contains("--kubeconfig"), "{err}");
        }
    }

    #[tokio::test]
    async fn bad_endpoint_is_named() {
        let tokens = Arc::new(TokenSource::with_signer(
            std::time::Duration::from_secs(600),
            || Box::pin(async { Err(crate::token::TokenError::NoProvider) }),
        ));
        let Err(err) = client_for_eks("not a url", &pem(&[b"x"]), tokens) else {
            panic!("a bad endpoint must be refused");
        };
        assert!(err.to_string().contains("not a url"), "{err}");
    }
}
