//! The HTTP check: GET the app's URL until it answers 200, with curl's `--connect-to` to send it
//! elsewhere (tests, private DNS).

use std::time::Duration;

use common::wait::{Poll, wait_for};

use crate::Error;

/// `HOST:PORT:ADDR:PORT2`: a request for HOST:PORT goes to ADDR:PORT2 (an empty HOST or PORT
/// matches any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    pub host: String,
    pub port: Option<u16>,
    pub addr: String,
    pub to_port: u16,
}

/// Parses `--connect-to` (clap value parser).
pub fn parse_connect_to(text: &str) -> Result<ConnectTo, String> {
    let parts: Vec<&str> = text.splitn(4, ':').collect();
    let [host, port, addr, to_port] = parts.as_slice() else {
        return Err(
            "write it as HOST:PORT:ADDR:PORT2, like app.example.com:80:127.0.0.1:8080".into(),
        );
    };
    let port = if port.is_empty() {
        None
    } else {
        Some(
            port.parse()
                .map_err(|_| format!("`{port}` is not a port"))?,
        )
    };
    if addr.is_empty() {
        return Err("the address to connect to is empty".into());
    }
    Ok(ConnectTo {
        host: (*host).to_owned(),
        port,
        addr: (*addr).to_owned(),
        to_port: to_port
            .parse()
            .map_err(|_| format!("`{to_port}` is not a port"))?,
    })
}

/// Where a request for `host:port` really goes: (address, port).
pub fn route(rules: &[ConnectTo], host: &str, port: u16) -> (String, u16) {
    rules
        .iter()
        .find(|r| (r.host.is_empty() || r.host == host) && r.port.is_none_or(|p| p == port))
        .map(|r| (r.addr.clone(), r.to_port))
        .unwrap_or_else(|| (host.to_owned(), port))
}

/// Polls `url` (http) until HTTP 200.
pub async fn wait_200(url: &str, rules: &[ConnectTo], timeout: Duration) -> Result<(), Error> {
    let host = url
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let (addr, port) = route(rules, &host, 80);
    let target = format!("http://{addr}:{port}/");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    if addr != host {
        tracing::info!("checking {url} through {addr}:{port} (--connect-to)");
    }
    wait_for(&format!("{url} to answer HTTP 200"), timeout, || async {
        Ok::<_, Error>(
            match client
                .get(&target)
                .header(reqwest::header::HOST, &host)
                .send()
                .await
            {
                Ok(answer) if answer.status() == reqwest::StatusCode::OK => Poll::Ready(()),
                Ok(answer) => Poll::Pending(format!("HTTP {}", answer.status())),
                Err(e) if e.is_connect() => {
                    Poll::Pending("cannot connect yet (DNS or the ALB is not ready)".into())
                }
                Err(e) => Poll::Pending(e.to_string()),
            },
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_rules() {
        let rule = parse_connect_to("a.example:80:127.0.0.1:8080").unwrap();
        assert_eq!(rule.port, Some(80));
        assert_eq!(
            route(std::slice::from_ref(&rule), "a.example", 80),
            ("127.0.0.1".to_string(), 8080)
        );
        assert_eq!(
            route(std::slice::from_ref(&rule), "b.example", 80),
            ("b.example".to_string(), 80)
        );
        let any = parse_connect_to("::127.0.0.1:9").unwrap();
        assert_eq!(route(&[any], "x", 80), ("127.0.0.1".to_string(), 9));
        assert!(parse_connect_to("a:80:127.0.0.1").is_err());
        assert!(parse_connect_to("a:x:127.0.0.1:1").is_err());
        assert!(parse_connect_to("a:80::1").is_err());
    }
}
