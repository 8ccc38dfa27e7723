//! The HTTPS proxy the environment asks for, as curl and the AWS CLI read it: `HTTPS_PROXY` (or
//! `https_proxy`, else `ALL_PROXY`/`all_proxy`) names the proxy that `https://` connections are
//! tunnelled through with `CONNECT`; `NO_PROXY` (or `no_proxy`) lists the hosts reached directly
//! (comma-separated host names, each also matching its subdomains, `.domain` suffixes, IP
//! addresses and CIDR ranges, `*` for every host). `localhost` and loopback addresses are always
//! reached directly, as kubectl does. The one place that decides, for the Kubernetes client
//! ([`crate::kube`]) and the AWS SDK ([`crate::aws::load_config`]); the `NO_PROXY` matching
//! itself is hyper-util's (curl's rules).

use hyper_util::client::proxy::matcher::Matcher;

/// Hosts every run reaches directly, whatever `NO_PROXY` says.
const ALWAYS_DIRECT: &str = "localhost,127.0.0.0/8,::1";

/// The proxy settings of the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// The proxy URL as given (with its user information, if any); `None` when unset or empty.
    https: Option<String>,
    /// `NO_PROXY` as given.
    no_proxy: String,
}

/// Why a proxy setting cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "HTTPS_PROXY `{shown}` is not a proxy URL (like http://proxy.example.com:3128); fix or unset it"
)]
pub struct BadProxy {
    /// The URL without its user information.
    pub shown: String,
}

impl ProxyEnv {
    /// From this process's environment.
    pub fn from_env() -> ProxyEnv {
        ProxyEnv::from_vars(|name| std::env::var(name).ok())
    }

    /// From the variables `var` reads (for tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| var(name).filter(|v| !v.trim().is_empty()))
        };
        ProxyEnv {
            https: first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"])
                .map(|v| v.trim().to_owned()),
            no_proxy: first(&["NO_PROXY", "no_proxy"]).unwrap_or_default(),
        }
    }

    /// The proxy URL, when one is set (`http://` added when it names no scheme).
    pub fn proxy(&self) -> Option<Result<http::Uri, BadProxy>> {
        let raw = self.https.as_deref()?;
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("http://{raw}")
        };
        let shown = || BadProxy {
            shown: without_user_info(&with_scheme),
        };
        Some(match with_scheme.parse::<http::Uri>() {
            Ok(uri) if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
            _ => Err(shown()),
        })
    }

    /// `NO_PROXY` with the hosts always reached directly. A port on an entry
    /// (`host.example.com:443`) is dropped: every connection here is to 443, and hyper-util
    /// would never match such an entry.
    pub fn no_proxy(&self) -> String {
        let given: Vec<&str> = self
            .no_proxy
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| match entry.rsplit_once(':') {
                Some((host, port))
                    if !host.contains(':')
                        && !port.is_empty()
                        && port.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    host
                }
                _ => entry,
            })
            .collect();
        if given.is_empty() {
            ALWAYS_DIRECT.to_owned()
        } else {
            format!("{},{ALWAYS_DIRECT}", given.join(","))
        }
    }

    /// The proxy to reach the `https://` URL `endpoint` through, or `None` for a direct
    /// connection (no proxy set, `NO_PROXY` names the host, a loopback host, another scheme).
    pub fn for_https(&self, endpoint: &http::Uri) -> Result<Option<http::Uri>, BadProxy> {
        let Some(proxy) = self.proxy() else {
            return Ok(None);
        };
        let proxy = proxy?;
        if endpoint.scheme_str() != Some("https") || self.bypasses_every_host() {
            return Ok(None);
        }
        let matcher = Matcher::builder()
            .https(proxy.to_string())
            .no(self.no_proxy())
            .build();
        Ok(matcher.intercept(endpoint).map(|_| proxy))
    }

    /// [`ProxyEnv::for_https`] for `https://host/`: the proxy URL (user information kept), or
    /// `None` for a direct connection.
    pub fn for_https_host(&self, host: &str) -> Result<Option<String>, BadProxy> {
        let bracketed = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let Ok(endpoint) = format!("https://{bracketed}/").parse::<http::Uri>() else {
            return Ok(None);
        };
        Ok(self.for_https(&endpoint)?.map(|uri| uri.to_string()))
    }

    /// `NO_PROXY=*` (hyper-util matches `*` against names only; curl against every host).
    fn bypasses_every_host(&self) -> bool {
        self.no_proxy.split(',').any(|entry| entry.trim() == "*")
    }
}

/// A URL without the `user:password@` of its authority, for messages.
pub fn without_user_info(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => url.rsplit_once('@').map_or(url, |(_, h)| h).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ProxyEnv {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_vars(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn via(env: &ProxyEnv, url: &str) -> Option<String> {
        env.for_https(&url.parse().unwrap())
            .unwrap()
            .map(|p| p.to_string())
    }

    #[test]
    fn https_proxy_is_used_unless_no_proxy_names_the_host() {
        let e = env(&[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            (
                "NO_PROXY",
                "internal.corp, .eks.amazonaws.com,10.0.0.0/8, 192.168.1.7,fd00::/8",
            ),
        ]);
        let proxied = Some("http://proxy.corp:3128/".to_owned());
        assert_eq!(via(&e, "https://ABC.gr7.us-east-2.eks.amazonaws.com"), None);
        assert_eq!(via(&e, "https://internal.corp:443"), None);
        assert_eq!(via(&e, "https://api.internal.corp"), None, "subdomains too");
        assert_eq!(
            via(&e, "https://notinternal.corp"),
            proxied,
            "not a suffix match"
        );
        assert_eq!(via(&e, "https://10.1.2.3:443"), None, "CIDR");
        assert_eq!(via(&e, "https://192.168.1.7"), None, "IP");
        assert_eq!(via(&e, "https://192.168.1.8"), proxied);
        assert_eq!(via(&e, "https://[fd00::1]:443"), None, "IPv6 CIDR");
        assert_eq!(via(&e, "https://kube.example.com:6443"), proxied);
        assert_eq!(via(&e, "http://kube.example.com"), None, "only https");
    }

    #[test]
    fn loopback_and_star_are_direct() {
        let e = env(&[("https_proxy", "proxy.corp:8080")]);
        assert_eq!(
            via(&e, "https://kube.example.com"),
            Some("http://proxy.corp:8080/".into()),
            "no scheme means http"
        );
        for direct in [
            "https://127.0.0.1:6443",
            "https://127.9.9.9",
            "https://localhost:6443",
            "https://[::1]:6443",
        ] {
            assert_eq!(via(&e, direct), None, "{direct}");
        }
        let star = env(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", " * ")]);
        assert_eq!(via(&star, "https://10.0.0.1"), None);
        assert_eq!(via(&star, "https://kube.example.com"), None);
    }

    #[test]
    fn all_proxy_is_the_fallback_and_empty_values_are_unset() {
        let e = env(&[("HTTPS_PROXY", " "), ("ALL_PROXY", "http://all:1")]);
        assert_eq!(
            via(&e, "https://k.example.com"),
            Some("http://all:1/".into())
        );
        assert_eq!(via(&env(&[]), "https://k.example.com"), None);
        assert_eq!(env(&[]).no_proxy(), ALWAYS_DIRECT);
    }

    #[test]
    fn user_information_is_kept_for_the_proxy_and_hidden_in_messages() {
        let e = env(&[("HTTPS_PROXY", "http://me:s%40cret@proxy.corp:3128")]);
        assert_eq!(
            via(&e, "https://k.example.com"),
            Some("http://me:s%40cret@proxy.corp:3128/".into())
        );
        let bad = env(&[("HTTPS_PROXY", "http://me:pw@")]);
        let err = bad
            .for_https(&"https://k.example.com".parse().unwrap())
            .unwrap_err();
        assert_eq!(err.shown, "http://");
        assert!(!err.to_string().contains("pw"), "{err}");
        assert_eq!(without_user_info("http://u:p@host:1/x"), "http://host:1/x");
    }
}
