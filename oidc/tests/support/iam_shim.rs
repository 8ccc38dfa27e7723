//! moto 5.2.5 does not implement `AddClientIDToOpenIDConnectProvider` (it answers HTTP 500 with
//! `NotImplementedError` in its log). This stand-in sits on 127.0.0.1 between a binary and moto:
//! it forwards every request to moto unchanged, except that one call, which it carries out the
//! way IAM documents it (add the client id if missing, change nothing else, idempotent) through
//! the calls moto has: get, delete and create the provider again with the same URL, client ids
//! plus the new one, thumbprints and tags. It records every request the binary made.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the binary made.
#[derive(Debug, Clone)]
pub struct ShimCall {
    pub method: String,
    pub path: String,
    /// `Action=` of a query-protocol call, else empty.
    pub action: String,
    pub params: Vec<(String, String)>,
}

impl ShimCall {
    /// A form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// True for a call that may change something (the test bed's rule).
    pub fn is_mutating(&self) -> bool {
        if self.action.is_empty() {
            return self.method != "GET" && self.method != "HEAD";
        }
        !["Describe", "Get", "List"]
            .iter()
            .any(|p| self.action.starts_with(p))
    }
}

impl std::fmt::Display for ShimCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.method, self.path, self.action)
    }
}

/// The stand-in, serving on a task of the current runtime.
pub struct IamShim {
    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    calls: Arc<Mutex<Vec<ShimCall>>>,
}

impl IamShim {
    /// Starts forwarding to `moto_endpoint` (`http://127.0.0.1:<port>`); `iam` talks to moto.
    pub async fn start(moto_endpoint: &str, iam: aws_sdk_iam::Client) -> IamShim {
        let upstream = moto_endpoint
            .strip_prefix("http://")
            .expect("moto speaks plain HTTP")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let log = calls.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (log, iam, upstream) = (log.clone(), iam.clone(), upstream.clone());
                tokio::spawn(async move {
                    if let Err(e) = handle(client, &upstream, &iam, &log).await {
                        eprintln!("iam shim: {e}");
                    }
                });
            }
        });
        IamShim { endpoint, calls }
    }

    /// The requests so far.
    pub fn calls(&self) -> Vec<ShimCall> {
        self.calls.lock().unwrap().clone()
    }
}

async fn handle(
    mut client: TcpStream,
    upstream: &str,
    iam: &aws_sdk_iam::Client,
    log: &Mutex<Vec<ShimCall>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(client.read_u8().await?);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")),
        "the shim reads Content-Length bodies only"
    );
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    client.read_exact(&mut body).await?;

    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let params = parse_form(&String::from_utf8_lossy(&body));
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let call = ShimCall {
        method,
        path,
        action,
        params,
    };
    log.lock().unwrap().push(call.clone());

    if call.action == "AddClientIDToOpenIDConnectProvider" {
        let arn = call.param("OpenIDConnectProviderArn").unwrap_or_default();
        let client_id = call.param("ClientID").unwrap_or_default();
        let answer = match add_client_id(iam, arn, client_id).await {
            Ok(()) => http(
                "200 OK",
                "<AddClientIDToOpenIDConnectProviderResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
                 <ResponseMetadata><RequestId>iam-shim</RequestId></ResponseMetadata>\
                 </AddClientIDToOpenIDConnectProviderResponse>",
            ),
            Err(message) => http(
                "404 Not Found",
                &format!(
                    "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
                     <Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>{message}</Message></Error>\
                     <RequestId>iam-shim</RequestId></ErrorResponse>"
                ),
            ),
        };
        client.write_all(answer.as_bytes()).await?;
        return client.shutdown().await;
    }

    // Forward as it came, on a connection of its own that moto closes after answering.
    let mut forwarded = format!("{request_line}\r\n");
    for line in head.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut moto = TcpStream::connect(upstream).await?;
    moto.write_all(forwarded.as_bytes()).await?;
    moto.write_all(&body).await?;
    let mut answer = Vec::new();
    moto.read_to_end(&mut answer).await?;
    client.write_all(&answer).await?;
    client.shutdown().await
}

async fn add_client_id(
    iam: &aws_sdk_iam::Client,
    arn: &str,
    client_id: &str,
) -> Result<(), String> {
    let found = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
        .map_err(|_| format!("OpenIDConnect Provider not found for arn {arn}"))?;
    if found.client_id_list().iter().any(|c| c == client_id) {
        return Ok(());
    }
    let mut client_ids = found.client_id_list().to_vec();
    client_ids.push(client_id.to_owned());
    iam.delete_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
        .expect("moto deletes");
    let mut create = iam
        .create_open_id_connect_provider()
        .url(format!("https://{}", found.url().expect("a URL")))
        .set_client_id_list(Some(client_ids));
    if !found.thumbprint_list().is_empty() {
        create = create.set_thumbprint_list(Some(found.thumbprint_list().to_vec()));
    }
    if !found.tags().is_empty() {
        create = create.set_tags(Some(found.tags().to_vec()));
    }
    create.send().await.expect("moto creates");
    Ok(())
}

fn http(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
