//! moto 5.2.5 has no `iam:SimulatePrincipalPolicy` (HTTP 500). This stand-in sits on 127.0.0.1
//! between the binary and moto and answers two calls itself: `sts:GetCallerIdentity` with the
//! caller ARN the test picks (an assumed-role session, which moto's fixed credentials cannot
//! give), and `SimulatePrincipalPolicy` with the decisions the test picks, or AccessDenied. It
//! forwards everything else to moto unchanged and records the simulations asked for.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the stand-in answers a simulation.
#[derive(Debug, Clone)]
pub enum Simulation {
    /// Every action allowed except `denied`; `iam:PassRole` hangs on `iam:PassedToService`.
    Decide { denied: Vec<String> },
    /// AccessDenied, as for a caller without `iam:SimulatePrincipalPolicy`.
    Refuse,
}

/// One simulation request: the principal and the actions.
#[derive(Debug, Clone)]
pub struct Simulated {
    pub policy_source_arn: String,
    pub actions: Vec<String>,
}

pub struct IamSim {
    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    simulated: Arc<Mutex<Vec<Simulated>>>,
}

#[derive(Debug, Clone)]
struct Setup {
    upstream: String,
    caller_arn: String,
    simulation: Simulation,
}

impl IamSim {
    /// Starts on a task of the current (multi-thread) runtime, in front of `moto_endpoint`.
    pub async fn start(moto_endpoint: &str, caller_arn: &str, simulation: Simulation) -> IamSim {
        let setup = Setup {
            upstream: moto_endpoint
                .strip_prefix("http://")
                .expect("moto speaks plain HTTP")
                .to_owned(),
            caller_arn: caller_arn.to_owned(),
            simulation,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let simulated = Arc::new(Mutex::new(Vec::new()));
        let log = simulated.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (setup, log) = (setup.clone(), log.clone());
                tokio::spawn(async move {
                    if let Err(e) = handle(client, &setup, &log).await {
                        eprintln!("iam sim: {e}");
                    }
                });
            }
        });
        IamSim {
            endpoint,
            simulated,
        }
    }

    /// The simulations asked for so far.
    pub fn simulated(&self) -> Vec<Simulated> {
        self.simulated.lock().unwrap().clone()
    }
}

async fn handle(
    mut client: TcpStream,
    setup: &Setup,
    log: &Mutex<Vec<Simulated>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(client.read_u8().await?);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    client.read_exact(&mut body).await?;
    let params = parse_form(&String::from_utf8_lossy(&body));
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };

    let answer = match param("Action").as_str() {
        "GetCallerIdentity" => http(
            "200 OK",
            &format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                 <GetCallerIdentityResult><Arn>{}</Arn><UserId>AROAEXAMPLE:session</UserId>\
                 <Account>123456789012</Account></GetCallerIdentityResult>\
                 <ResponseMetadata><RequestId>iam-sim</RequestId></ResponseMetadata>\
                 </GetCallerIdentityResponse>",
                setup.caller_arn
            ),
        ),
        "SimulatePrincipalPolicy" => {
            let actions: Vec<String> = params
                .iter()
                .filter(|(k, _)| k.starts_with("ActionNames.member."))
                .map(|(_, v)| v.clone())
                .collect();
            log.lock().unwrap().push(Simulated {
                policy_source_arn: param("PolicySourceArn"),
                actions: actions.clone(),
            });
            simulation_answer(&setup.simulation, &actions)
        }
        _ => return forward(client, &setup.upstream, &head, &body).await,
    };
    client.write_all(answer.as_bytes()).await?;
    client.shutdown().await
}

fn simulation_answer(simulation: &Simulation, actions: &[String]) -> String {
    let denied = match simulation {
        Simulation::Refuse => {
            return http(
                "403 Forbidden",
                "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
                 <Error><Type>Sender</Type><Code>AccessDenied</Code>\
                 <Message>not authorized to perform: iam:SimulatePrincipalPolicy</Message>\
                 </Error><RequestId>iam-sim</RequestId></ErrorResponse>",
            );
        }
        Simulation::Decide { denied } => denied,
    };
    let members: String = actions
        .iter()
        .map(|action| {
            let (decision, missing) = if denied.contains(action) {
                ("implicitDeny", "")
            } else if action == "iam:PassRole" {
                ("implicitDeny", "<member>iam:PassedToService</member>")
            } else {
                ("allowed", "")
            };
            format!(
                "<member><EvalActionName>{action}</EvalActionName>\
                 <EvalResourceName>*</EvalResourceName><EvalDecision>{decision}</EvalDecision>\
                 <MatchedStatements/><MissingContextValues>{missing}</MissingContextValues>\
                 </member>"
            )
        })
        .collect();
    http(
        "200 OK",
        &format!(
            "<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
             <SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>\
             <EvaluationResults>{members}</EvaluationResults></SimulatePrincipalPolicyResult>\
             <ResponseMetadata><RequestId>iam-sim</RequestId></ResponseMetadata>\
             </SimulatePrincipalPolicyResponse>"
        ),
    )
}

/// Forwards the request as it came, on a connection of its own that moto closes after answering.
async fn forward(
    mut client: TcpStream,
    upstream: &str,
    head: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let mut forwarded = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut moto = TcpStream::connect(upstream).await?;
    moto.write_all(forwarded.as_bytes()).await?;
    moto.write_all(body).await?;
    let mut answer = Vec::new();
    moto.read_to_end(&mut answer).await?;
    client.write_all(&answer).await?;
    client.shutdown().await
}

fn http(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
