//! The thumbprint of an issuer's TLS chain, read from a TLS server of the test's own on 127.0.0.1.

#[path = "support/tls.rs"]
mod tls;

use std::time::{Duration, Instant};

use eks_oidc::issuer::Issuer;
use eks_oidc::proxy::Proxy;
use eks_oidc::thumbprint::{ThumbprintError, fetch, load_ca_file, sha1_hex};
use tls::Pki;

const TIMEOUT: Duration = Duration::from_secs(5);

fn issuer(url: &str) -> Issuer {
    Issuer::parse(url).unwrap()
}

#[tokio::test]
async fn thumbprint_is_the_sha1_of_the_top_certificate() {
    let pki = Pki::new(&["localhost", "127.0.0.1"]);
    let port = tls::serve(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let roots = load_ca_file(&pki.write_ca(dir.path())).unwrap();
    assert_eq!(roots, std::slice::from_ref(&pki.ca_der));
    let expected = sha1_hex(&pki.ca_der);
    assert_eq!(expected.len(), 40);
    assert!(
        expected
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    );
    assert_ne!(expected, sha1_hex(&pki.leaf_der), "not the leaf's");

    for url in [
        format!("https://localhost:{port}/id/TEST"),
        format!("https://127.0.0.1:{port}/id/TEST"),
    ] {
        let found = fetch(&issuer(&url), &roots, None, TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(found.thumbprint, expected, "{url}");
        assert_eq!(found.chain_len, 2, "leaf and CA: {url}");
    }
}

#[tokio::test]
async fn an_untrusted_chain_is_refused_with_the_reason() {
    let pki = Pki::new(&["localhost"]);
    let port = tls::serve(&pki).await;
    let err = fetch(
        &issuer(&format!("https://localhost:{port}/id/X")),
        &[],
        None,
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ThumbprintError::Handshake { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("UnknownIssuer") && text.contains("--issuer-ca"),
        "{text}"
    );

    // Another CA (of the same name, so webpki tries it and finds the signature wrong) does not
    // help either.
    let other = Pki::new(&["localhost"]);
    let err = fetch(
        &issuer(&format!("https://localhost:{port}/id/X")),
        std::slice::from_ref(&other.ca_der),
        None,
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid peer certificate: BadSignature"),
        "{err}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::new(&["localhost"]);
    let port = tls::serve(&pki).await;
    let err = fetch(
        &issuer(&format!("https://127.0.0.1:{port}/id/X")),
        std::slice::from_ref(&pki.ca_der),
        None,
        TIMEOUT,
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("not for this host name") && text.contains("127.0.0.1"),
        "{text}"
    );
}

#[tokio::test]
async fn nothing_listening_fails_at_once() {
    let port = tls::closed_port();
    let started = Instant::now();
    let err = fetch(
        &issuer(&format!("https://127.0.0.1:{port}/")),
        &[],
        None,
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ThumbprintError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_silent_server_is_bounded_by_the_timeout() {
    let port = tls::silent().await;
    let started = Instant::now();
    let err = fetch(
        &issuer(&format!("https://127.0.0.1:{port}/")),
        &[],
        None,
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, ThumbprintError::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string().contains("did not complete a TLS handshake"),
        "{err}"
    );
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn through_an_http_connect_proxy() {
    let pki = Pki::new(&["issuer.example.com"]);
    let port = tls::serve(&pki).await;
    let (proxy_port, seen) = tls::connect_proxy(port, false).await;
    let proxy = Proxy::parse(&format!("http://127.0.0.1:{proxy_port}")).unwrap();
    // The name is never resolved here: the proxy gets it and tunnels to the local server.
    let found = fetch(
        &issuer("https://issuer.example.com/id/X"),
        std::slice::from_ref(&pki.ca_der),
        Some(&proxy),
        TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(found.thumbprint, sha1_hex(&pki.ca_der));
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["CONNECT issuer.example.com:443 HTTP/1.1"]
    );
}

#[tokio::test]
async fn a_refusing_or_absent_proxy_is_reported() {
    let (proxy_port, _) = tls::connect_proxy(1, true).await;
    let refusing = Proxy::parse(&format!("http://127.0.0.1:{proxy_port}")).unwrap();
    let err = fetch(
        &issuer("https://issuer.example.com/id/X"),
        &[],
        Some(&refusing),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("through proxy http://127.0.0.1:")
            && text.contains("refused CONNECT issuer.example.com:443: HTTP/1.1 403 Forbidden"),
        "{text}"
    );

    let absent = Proxy::parse(&format!("http://127.0.0.1:{}", tls::closed_port())).unwrap();
    let err = fetch(
        &issuer("https://issuer.example.com/id/X"),
        &[],
        Some(&absent),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cannot connect to it"), "{err}");
}
