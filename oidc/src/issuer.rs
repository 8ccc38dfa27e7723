//! The cluster's OIDC issuer URL, and the IAM provider ARN named after it.

/// The longest provider URL IAM accepts.
pub const MAX_URL: usize = 255;

/// An OIDC issuer URL as IAM takes it: `https://host[:port][/path]`, no query, no fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    url: String,
    host: String,
    port: u16,
}

impl Issuer {
    /// Checks and splits an issuer URL; the reason when it is not one IAM would take.
    pub fn parse(url: &str) -> Result<Issuer, String> {
        if url.chars().any(char::is_whitespace) {
            return Err("it contains whitespace".into());
        }
        let Some(rest) = url.strip_prefix("https://") else {
            return Err("it must start with https://".into());
        };
        if url.len() > MAX_URL {
            return Err(format!(
                "it has {} characters; IAM allows at most {MAX_URL}",
                url.len()
            ));
        }
        if rest.contains(['?', '#']) {
            return Err("it has a query or a fragment; IAM allows neither".into());
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err("it carries user information before the host".into());
        }
        let (host, port) = split_authority(authority)?;
        Ok(Issuer {
            url: url.to_owned(),
            host,
            port,
        })
    }

    /// The URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The host name or IP address (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port (443 unless the URL names one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn address(&self) -> String {
        address(&self.host, self.port)
    }

    /// The URL without `https://`: how IAM names the provider.
    pub fn host_and_path(&self) -> &str {
        common::iam::issuer_host_path(&self.url)
    }

    /// `arn:<partition>:iam::<account>:oidc-provider/<host and path>`.
    pub fn provider_arn(&self, partition: &str, account: &str) -> String {
        common::iam::oidc_provider_arn(partition, account, &self.url)
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`; the port defaults to 443.
pub fn split_authority(authority: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("its IPv6 address lacks the closing `]`")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`[{host}]` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("only `:port` may follow the IPv6 address")?,
            ),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host".into());
    }
    if !authority.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(format!(
            "host `{host}` may only have letters, digits, `-` and `.`"
        ));
    }
    let port = match port {
        None => 443,
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{text}` is not a TCP port"))?,
    };
    Ok((host.to_owned(), port))
}

/// The partition of an ARN (`aws` in `arn:aws:sts::123456789012:assumed-role/...`).
pub fn partition_of_arn(arn: &str) -> Option<&str> {
    common::aws::partition_of_arn(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eks_issuers() {
        let issuer =
            Issuer::parse("https://oidc.eks.us-east-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71")
                .unwrap();
        assert_eq!(issuer.host(), "oidc.eks.us-east-2.amazonaws.com");
        assert_eq!(issuer.port(), 443);
        assert_eq!(
            issuer.host_and_path(),
            "oidc.eks.us-east-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71"
        );
        assert_eq!(
            issuer.provider_arn("aws", "123456789012"),
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71"
        );
        assert_eq!(
            Issuer::parse("https://oidc.eks.cn-north-1.amazonaws.com.cn/id/X")
                .unwrap()
                .provider_arn("aws-cn", "1"),
            "arn:aws-cn:iam::1:oidc-provider/oidc.eks.cn-north-1.amazonaws.com.cn/id/X"
        );
    }

    #[test]
    fn ports_and_addresses() {
        let local = Issuer::parse("https://localhost:8443/id/X").unwrap();
        assert_eq!((local.host(), local.port()), ("localhost", 8443));
        assert_eq!(local.address(), "localhost:8443");
        assert_eq!(local.host_and_path(), "localhost:8443/id/X");
        let v6 = Issuer::parse("https://[::1]:9443/id").unwrap();
        assert_eq!((v6.host(), v6.port()), ("::1", 9443));
        assert_eq!(v6.address(), "[::1]:9443");
        let bare = Issuer::parse("https://127.0.0.1").unwrap();
        assert_eq!(bare.address(), "127.0.0.1:443");
    }

    #[test]
    fn refused_issuers_say_why() {
        for (url, why) in [
            ("http://oidc.example.com/id/X", "https://"),
            ("oidc.example.com/id/X", "https://"),
            ("https://", "no host"),
            ("https:///id/X", "no host"),
            ("https://a.example.com/id?x=1", "query"),
            ("https://a.example.com/id#f", "fragment"),
            ("https://user@a.example.com/", "user information"),
            ("https://a.example.com:0/", "not a TCP port"),
            ("https://a.example.com:99999/", "not a TCP port"),
            ("https://a.example.com:/", "not a TCP port"),
            ("https://[::1/", "closing"),
            ("https://[zz]/", "not an IPv6"),
            ("https://a_b.example.com/", "may only have"),
            ("https://a.example.com/ id", "whitespace"),
        ] {
            let err = Issuer::parse(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
        let long = format!("https://a.example.com/{}", "x".repeat(250));
        assert!(Issuer::parse(&long).unwrap_err().contains("at most 255"));
    }

    #[test]
    fn partitions_from_arns() {
        assert_eq!(
            partition_of_arn("arn:aws:sts::123456789012:user/moto"),
            Some("aws")
        );
        assert_eq!(
            partition_of_arn("arn:aws-us-gov:sts::1:assumed-role/r/s"),
            Some("aws-us-gov")
        );
        assert_eq!(partition_of_arn("nonsense"), None);
        assert_eq!(partition_of_arn("arn::sts::1:x"), None);
    }
}
