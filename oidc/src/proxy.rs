//! Reaching the issuer through an HTTP proxy, as eksctl (the seed's tool) did: whether to, and
//! which, is `common::proxy`'s decision (`HTTPS_PROXY`, `NO_PROXY`, loopback always direct), the
//! same as for every other connection of the steps; here the TLS connection is tunnelled through
//! an `http://` proxy with `CONNECT`.

use base64::Engine;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::issuer::address;

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
    pub fn parse(text: &str) -> Result<Proxy, String> {
        let text = text.trim();
        let with_scheme = match text.split_once("://") {
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => text.to_owned(),
            Some((scheme, _)) => {
                return Err(format!(
                    "only http:// proxies are supported, not {scheme}://"
                ));
            }
            None => format!("http://{text}"),
        };
        let url = url::Url::parse(&with_scheme).map_err(|e| format!("not a proxy URL: {e}"))?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err("a proxy URL has no path".into());
        }
        let host = match url.host() {
            // Without brackets, as `address` adds them.
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err("it has no host".into()),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let basic = (!url.username().is_empty() || url.password().is_some()).then(|| {
            let pair = format!(
                "{}:{}",
                percent_decode(url.username()),
                percent_decode(url.password().unwrap_or_default())
            );
            base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
        });
        Ok(Proxy { host, port, basic })
    }

    /// The proxy to reach `host` through, from the environment `var` reads; `None` when there
    /// is none or `host` is to be reached directly.
    pub fn for_host(
        host: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, String> {
        let chosen = common::proxy::ProxyEnv::from_vars(var)
            .for_https_host(host)
            .map_err(|bad| bad.to_string())?;
        let Some(url) = chosen else {
            return Ok(None);
        };
        Proxy::parse(&url).map(Some).map_err(|why| {
            format!(
                "HTTPS_PROXY `{}`: {why}",
                common::proxy::without_user_info(&url)
            )
        })
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

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            bad.contains("HTTPS_PROXY `https://a:1") && bad.contains("only http://"),
            "{bad}"
        );
    }
}
