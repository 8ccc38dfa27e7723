//! Reaching the issuer through an HTTP proxy, as eksctl (the seed's tool) did: `HTTPS_PROXY`
//! (or `https_proxy`) names an `http://` proxy that the TLS connection is tunnelled through with
//! `CONNECT`; `NO_PROXY` (or `no_proxy`) lists hosts reached directly; `localhost` and loopback
//! addresses are always reached directly.

use std::net::IpAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::issuer::{address, split_authority};

/// An `http://` proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    /// `Proxy-Authorization: Basic` value, when the URL has user information.
    basic: Option<String>,
}

impl std::fmt::Display for Proxy {
    /// The proxy without its credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", address(&self.host, self.port))
    }
}

impl Proxy {
    /// Parses `http://[user:password@]host[:port][/]` or `host:port`; the port defaults to 80.
    pub fn parse(url: &str) -> Result<Proxy, String> {
        let url = url.trim();
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "only http:// proxies are supported, not {scheme}://"
                ));
            }
            None => url,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err("a proxy URL has no path".into());
        }
        let (user_info, authority) = match rest.rsplit_once('@') {
            Some((info, authority)) => (Some(info), authority),
            None => (None, rest),
        };
        let (host, port) = split_authority(authority)?;
        let after_host = authority
            .rsplit_once(']')
            .map_or(authority, |(_, after)| after);
        let port = if after_host.contains(':') { port } else { 80 };
        let basic = user_info.map(|info| {
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            let pair = format!("{}:{}", percent_decode(user), percent_decode(password));
            base64(pair.as_bytes())
        });
        Ok(Proxy { host, port, basic })
    }

    /// The proxy to reach `host` through, from the environment `var` reads; `None` when there
    /// is none or `host` is to be reached directly.
    pub fn for_host(
        host: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, String> {
        let pick = |names: [&str; 2]| {
            names
                .into_iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
        };
        let Some(url) = pick(["HTTPS_PROXY", "https_proxy"]) else {
            return Ok(None);
        };
        if is_loopback(host) || no_proxy_matches(&pick(["NO_PROXY", "no_proxy"]), host) {
            return Ok(None);
        }
        Proxy::parse(&url)
            .map(Some)
            .map_err(|why| format!("HTTPS_PROXY `{url}`: {why}"))
    }

    /// Opens a tunnel to `host:port` through the proxy.
    pub async fn tunnel(&self, host: &str, port: u16) -> Result<TcpStream, String> {
        let target = address(host, port);
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect to it: {e}"))?;
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(basic) = &self.basic {
            request.push_str(&format!("Proxy-Authorization: Basic {basic}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("cannot send CONNECT: {e}"))?;
        // One byte at a time, so that nothing after the answer's head is taken from the tunnel.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 16 * 1024 {
                return Err("its answer to CONNECT has an endless head".into());
            }
            let byte = tcp
                .read_u8()
                .await
                .map_err(|e| format!("no answer to CONNECT {target}: {e}"))?;
            head.push(byte);
        }
        let text = String::from_utf8_lossy(&head);
        let status = text.lines().next().unwrap_or_default().trim().to_owned();
        let code = status.split_whitespace().nth(1).unwrap_or_default();
        if code.len() == 3 && code.starts_with('2') {
            Ok(tcp)
        } else {
            Err(format!("it refused CONNECT {target}: {status}"))
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// True when the `NO_PROXY` list names `host`: `*`, the host itself, or a domain it is in
/// (`example.com` and `.example.com` both cover `a.example.com`). Ports in entries are ignored.
pub fn no_proxy_matches(list: &Option<String>, host: &str) -> bool {
    let Some(list) = list else {
        return false;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    list.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry.to_ascii_lowercase();
        let name = match split_authority(&entry) {
            Ok((name, _)) => name,
            Err(_) => entry.clone(),
        };
        let name = name.trim_start_matches("*.").trim_start_matches('.');
        !name.is_empty() && (host == name || host.ends_with(&format!(".{name}")))
    })
}

/// Decodes the percent-encoding of a proxy URL's user or password (`al%40ice`).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        // RFC 4648, section 10.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded, "{plain}");
        }
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://proxy.example.com:3128").unwrap();
        assert_eq!(p.to_string(), "http://proxy.example.com:3128");
        assert_eq!(p.basic, None);
        assert_eq!(
            Proxy::parse("proxy.example.com:8080").unwrap().to_string(),
            "http://proxy.example.com:8080"
        );
        assert_eq!(Proxy::parse("http://proxy.example.com/").unwrap().port, 80);
        let with_user = Proxy::parse("http://al%40ice:pa%3Ass@[::1]:3128").unwrap();
        assert_eq!(with_user.to_string(), "http://[::1]:3128");
        // base64("al@ice:pa:ss")
        assert_eq!(with_user.basic.as_deref(), Some("YWxAaWNlOnBhOnNz"));
        assert_eq!(Proxy::parse("http://[::1]").unwrap().port, 80);
        assert!(
            Proxy::parse("https://proxy.example.com")
                .unwrap_err()
                .contains("only http://")
        );
        assert!(Proxy::parse("socks5://p:1080").is_err());
        assert!(Proxy::parse("http://p:1/path").is_err());
        assert!(Proxy::parse("http://:3128").is_err());
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn proxy_from_the_environment() {
        let host = "oidc.eks.us-east-2.amazonaws.com";
        assert_eq!(Proxy::for_host(host, env(&[])), Ok(None));
        assert_eq!(
            Proxy::for_host(host, env(&[("HTTPS_PROXY", " ")])),
            Ok(None)
        );
        let upper = Proxy::for_host(
            host,
            env(&[("HTTPS_PROXY", "http://a:1"), ("https_proxy", "http://b:2")]),
        );
        assert_eq!(upper.unwrap().unwrap().to_string(), "http://a:1");
        let lower = Proxy::for_host(host, env(&[("https_proxy", "http://b:2")]));
        assert_eq!(lower.unwrap().unwrap().to_string(), "http://b:2");
        for no_proxy in [
            "*",
            "amazonaws.com",
            ".amazonaws.com",
            "other.org, eks.us-east-2.amazonaws.com:443",
        ] {
            let direct = Proxy::for_host(
                host,
                env(&[("HTTPS_PROXY", "http://a:1"), ("no_proxy", no_proxy)]),
            );
            assert_eq!(direct, Ok(None), "{no_proxy}");
        }
        let not_listed = Proxy::for_host(
            host,
            env(&[
                ("HTTPS_PROXY", "http://a:1"),
                ("NO_PROXY", "zonaws.com,other"),
            ]),
        );
        assert!(not_listed.unwrap().is_some());
        for local in ["localhost", "127.0.0.1", "::1", "x.localhost"] {
            assert_eq!(
                Proxy::for_host(local, env(&[("HTTPS_PROXY", "http://a:1")])),
                Ok(None),
                "{local}"
            );
        }
        let bad = Proxy::for_host(host, env(&[("HTTPS_PROXY", "https://a:1")])).unwrap_err();
        assert!(bad.contains("HTTPS_PROXY `https://a:1`"), "{bad}");
    }
}
