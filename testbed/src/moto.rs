//! The moto AWS emulator, started on a free loopback port for a test and stopped when the test
//! ends: the environment and SDK configuration that point at it, and its recording of the calls
//! a binary made ([`Call`]).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::{free_port, venv_tool};

/// A moto server of this test's own. Killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    log: PathBuf,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it answers (at most 60 s).
    pub fn start() -> Moto {
        let server = venv_tool("moto_server");
        let mut last = String::new();
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("eks-fa-moto-")
                .tempdir()
                .expect("a temporary folder");
            let log = dir.path().join("moto.log");
            let port = free_port();
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .current_dir(dir.path())
                .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording.jsonl"))
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).expect("moto log"))
                .stderr(std::fs::File::create(dir.path().join("moto.err")).expect("moto log"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
            let mut moto = Moto {
                child,
                log,
                dir,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            match moto.wait_ready(port, Duration::from_secs(60)) {
                Ok(()) => return moto,
                Err(why) => last = why,
            }
        }
        panic!("moto did not start: {last}");
    }

    fn wait_ready(&mut self, port: u16, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("moto exited with {status}: {}", self.stderr_tail()));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() && self.get("/").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "no answer on port {port} within {limit:?}: {}",
            self.stderr_tail()
        ))
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log.with_file_name("moto.err")).unwrap_or_default();
        text.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }

    fn get(&self, path: &str) -> Result<String, String> {
        let mut answer = Self::agent()
            .get(format!("{}{path}", self.endpoint))
            .call()
            .map_err(|e| e.to_string())?;
        answer
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())
    }

    fn post(&self, path: &str) {
        let answer = Self::agent()
            .post(format!("{}{path}", self.endpoint))
            .send_empty()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        assert!(
            answer.status().is_success(),
            "POST {path}: {}",
            answer.status()
        );
    }

    /// Environment for a binary (or an SDK) to talk to this server and nothing else: endpoint,
    /// fake credentials, no profile or config file of the machine's.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_CONFIG_FILE", self.empty_file("aws-config")),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                self.empty_file("aws-credentials"),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("NO_COLOR", "1".into()),
        ]
    }

    fn empty_file(&self, name: &str) -> String {
        let path = self.dir.path().join(name);
        if !path.exists() {
            std::fs::write(&path, "").expect("an empty AWS config file");
        }
        path.to_string_lossy().into_owned()
    }

    /// Environment variables a test must not inherit from the machine.
    pub const UNSET: [&'static str; 13] = [
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_SESSION_TOKEN",
        "RUST_LOG",
        "KUBECONFIG",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ];

    /// A command for `program` wired to this server (no region set: pass `--region` or set it).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(program);
        for key in Self::UNSET {
            cmd.env_remove(key);
        }
        cmd.envs(self.env());
        cmd.timeout(Duration::from_secs(120));
        cmd
    }

    /// The environment of [`Moto::command`] with credentials for another AWS account of this
    /// server (12 digits): moto switches accounts on `AssumeRole` into a role of that account,
    /// as a real cross-account role does.
    pub async fn other_account_env(&self, account: &str) -> Vec<(&'static str, String)> {
        let sts = aws_sdk_sts::Client::new(&self.sdk_config("us-east-1").await);
        let answer = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/other-account"))
            .role_session_name("testbed")
            .send()
            .await
            .expect("AssumeRole into the other account");
        let creds = answer.credentials().expect("AssumeRole gives credentials");
        let mut env = self.env();
        env.retain(|(key, _)| !key.starts_with("AWS_ACCESS_KEY") && !key.starts_with("AWS_SECRET"));
        env.push(("AWS_ACCESS_KEY_ID", creds.access_key_id().to_owned()));
        env.push((
            "AWS_SECRET_ACCESS_KEY",
            creds.secret_access_key().to_owned(),
        ));
        env.push(("AWS_SESSION_TOKEN", creds.session_token().to_owned()));
        env
    }

    /// An SDK configuration for this server.
    pub async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        let creds =
            aws_credential_types::Credentials::new("testing", "testing", None, None, "testbed");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .load()
            .await
    }

    /// Forgets everything moto holds (as a fresh server would be).
    pub fn reset(&self) {
        self.post("/moto-api/reset");
    }

    /// Starts recording every request the server gets (clearing an earlier recording).
    pub fn start_recording(&self) {
        self.post("/moto-api/recorder/reset-recording");
        self.post("/moto-api/recorder/start-recording");
    }

    /// Stops recording and returns the mutating calls made since [`Moto::start_recording`].
    pub fn mutating_calls(&self) -> Vec<String> {
        self.recorded_calls()
            .iter()
            .filter(|c| c.is_mutating())
            .map(ToString::to_string)
            .collect()
    }

    /// Stops recording and returns the calls made since [`Moto::start_recording`].
    pub fn recorded_calls(&self) -> Vec<Call> {
        self.post("/moto-api/recorder/stop-recording");
        let text = self
            .get("/moto-api/recorder/download-recording")
            .expect("the recording");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Call::parse(l).unwrap_or_else(|| panic!("unreadable recording line: {l}")))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request moto got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The signing name: `ec2`, `eks`, `cloudformation`, `iam`, ...
    pub service: String,
    /// HTTP method.
    pub method: String,
    /// Path of the URL.
    pub path: String,
    /// `Action=` of a query-protocol call, else the `X-Amz-Target` operation, else empty.
    pub action: String,
}

impl Call {
    fn parse(line: &str) -> Option<Call> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let headers = v.get("headers")?;
        let header = |name: &str| {
            headers
                .as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_owned)
        };
        let service = header("Authorization")
            .and_then(|a| a.split("Credential=").nth(1).map(str::to_owned))
            .and_then(|c| c.split('/').nth(3).map(str::to_owned))
            .unwrap_or_default();
        let raw_body = v.get("body").and_then(|b| b.as_str()).unwrap_or_default();
        let body = if v.get("body_encoded").and_then(|b| b.as_bool()) == Some(true) {
            base64::engine::general_purpose::STANDARD
                .decode(raw_body)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default()
        } else {
            raw_body.to_owned()
        };
        let url = v.get("url")?.as_str()?;
        let after_host = url.splitn(4, '/').nth(3).unwrap_or_default();
        let (path, query) = after_host.split_once('?').unwrap_or((after_host, ""));
        let action = [body.as_str(), query]
            .iter()
            .flat_map(|s| s.split('&'))
            .find_map(|kv| kv.strip_prefix("Action=").map(str::to_owned))
            .or_else(|| {
                header("X-Amz-Target").and_then(|t| t.rsplit('.').next().map(str::to_owned))
            })
            .unwrap_or_default();
        Some(Call {
            service,
            method: v.get("method")?.as_str()?.to_owned(),
            path: format!("/{path}"),
            action,
        })
    }

    /// True for a call that may change something: an action not named Describe/Get/List, or a
    /// REST call that is not a GET.
    pub fn is_mutating(&self) -> bool {
        is_mutating(&self.method, &self.action)
    }
}

/// The test bed's rule for a call that may change something: an action not named
/// Describe/Get/List, or a REST call (no action) that is not a GET or HEAD.
pub(crate) fn is_mutating(method: &str, action: &str) -> bool {
    if action.is_empty() {
        return method != "GET" && method != "HEAD";
    }
    !["Describe", "Get", "List"]
        .iter()
        .any(|p| action.starts_with(p))
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.action.is_empty() {
            write!(f, "{} {} {}", self.service, self.method, self.path)
        } else {
            write!(f, "{} {}", self.service, self.action)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_lines_are_understood() {
        let query = r#"{"headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=a/20261125/us-east-2/cloudformation/aws4_request, SignedHeaders=host", "Content-Type": "x"}, "method": "POST", "url": "http://127.0.0.1:5/", "body": "QWN0aW9uPURlc2NyaWJlU3RhY2tzJlZlcnNpb249MjAxMC0wNS0xNQ==", "body_encoded": true}"#;
        let call = Call::parse(query).unwrap();
        assert_eq!(call.service, "cloudformation");
        assert_eq!(call.action, "DescribeStacks");
        assert!(!call.is_mutating());
        let rest = r#"{"headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=a/20261125/us-east-2/eks/aws4_request"}, "method": "POST", "url": "http://127.0.0.1:5/clusters", "body": "{}", "body_encoded": false}"#;
        let call = Call::parse(rest).unwrap();
        assert_eq!(
            (
                call.service.as_str(),
                call.path.as_str(),
                call.action.as_str()
            ),
            ("eks", "/clusters", "")
        );
        assert!(call.is_mutating());
        let get = r#"{"headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=a/20261125/us-east-2/eks/aws4_request"}, "method": "GET", "url": "http://127.0.0.1:5/clusters/x?a=b", "body": "", "body_encoded": false}"#;
        assert!(!Call::parse(get).unwrap().is_mutating());
    }
}
