//! A corporate proxy: the cluster's endpoint resolves nowhere from here and is reached only
//! through `HTTPS_PROXY` (a CONNECT proxy of the test bed that routes the name to the real API
//! server), as behind a corporate proxy. The Kubernetes client that `common` builds from the
//! endpoint and CA (EKS tokens) must tunnel through it, and go direct for hosts `NO_PROXY`
//! names; the AWS SDK must use it too.
//!
//! The binaries are the workspace's, from the target folder (`cargo build --bins` first).

use std::path::{Path, PathBuf};

use serde_json::json;
use testbed::connectproxy::ConnectProxy;
use testbed::controlplane::{ControlPlane, PROXIED_NAME, Settings};
use testbed::run::{Run, assert_exit};
use testbed::{Moto, REGION};

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --bins` (make test builds them first)",
        path.display()
    );
    path
}

/// A real API server that takes EKS tokens (asking moto's STS who signed them), and the
/// `host:port` under which the proxy reaches it.
struct Cluster {
    moto: Moto,
    kube: ControlPlane,
    /// `kube.test.invalid:<port>`.
    target: String,
    manifests: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let moto = Moto::start();
        let kube = ControlPlane::start_with(Settings {
            sts_endpoint: Some(moto.endpoint.clone()),
            ..Settings::default()
        });
        let port = kube
            .url
            .rsplit(':')
            .next()
            .expect("https://127.0.0.1:<port>")
            .to_owned();
        let manifests = tempfile::tempdir().unwrap();
        std::fs::write(
            manifests.path().join("01-config.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: through-the-proxy\n  namespace: default\ndata:\n  a: b\n",
        )
        .unwrap();
        Cluster {
            moto,
            kube,
            target: format!("{PROXIED_NAME}:{port}"),
            manifests,
        }
    }

    /// The state of a cluster whose endpoint is the name only the proxy knows.
    fn state(&self) -> String {
        json!({
            "schemaVersion": 1,
            "cluster": {
                "name": "demo",
                "region": REGION,
                "endpoint": format!("https://{}", self.target),
                "certificateAuthorityData": self.kube.ca_data(),
            }
        })
        .to_string()
    }

    /// `eks-deploy apply` of one ConfigMap with the EKS token client, in `env`.
    fn apply(&self, env: &[(&str, String)]) -> Run {
        let mut command = self.moto.command(bin("eks-deploy"));
        command
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args([
                "--region",
                REGION,
                "apply",
                "--timeout",
                "60s",
                "--manifests",
                &self.manifests.path().display().to_string(),
            ]);
        testbed::run::run(&mut command, &self.state())
    }

    /// Whether the ConfigMap was written by an EKS-token caller (an `arn:aws:` user).
    fn written_with_an_eks_token(&self) -> bool {
        self.kube.requests().iter().any(|r| {
            r.path.ends_with("/configmaps/through-the-proxy")
                && r.is_write()
                && r.code < 300
                && r.user.starts_with("arn:aws:")
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_client_tunnels_through_https_proxy() {
    let cluster = Cluster::start();
    let proxy = ConnectProxy::start();
    let api_server = cluster
        .kube
        .url
        .strip_prefix("https://")
        .unwrap()
        .parse()
        .unwrap();
    proxy.route(&cluster.target, api_server);
    let with_user = proxy.url().replace("http://", "http://corp%5Cme:s3cr%40t@");

    let run = tokio::task::block_in_place(|| {
        cluster.apply(&[
            ("HTTPS_PROXY", with_user),
            ("NO_PROXY", "example.com,10.0.0.0/8".to_owned()),
        ])
    });
    assert_exit(&run, 0);
    assert!(
        proxy.tunnels_to(&cluster.target) >= 1,
        "{:?}",
        proxy.connects()
    );
    assert!(
        cluster.written_with_an_eks_token(),
        "{:?}",
        cluster.kube.requests()
    );
    // The proxy's user and password went as Basic authorization, percent-decoded.
    let authorization = proxy.connects()[0].authorization.clone();
    assert_eq!(authorization.as_deref(), Some("Basic Y29ycFxtZTpzM2NyQHQ="));
    // AWS (moto on http://127.0.0.1) was not sent through it: only the cluster was.
    assert!(
        proxy.connects().iter().all(|c| c.target == cluster.target),
        "{:?}",
        proxy.connects()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_no_proxy_names_is_reached_directly() {
    let cluster = Cluster::start();
    let proxy = ConnectProxy::start();
    proxy.route(
        &cluster.target,
        cluster
            .kube
            .url
            .strip_prefix("https://")
            .unwrap()
            .parse()
            .unwrap(),
    );
    let run = tokio::task::block_in_place(|| {
        cluster.apply(&[
            ("https_proxy", proxy.url()),
            ("no_proxy", "localhost, .test.invalid".to_owned()),
        ])
    });
    // Direct, the name resolves nowhere: the run fails on the name's lookup, and the proxy saw
    // nothing.
    assert_exit(&run, 1);
    assert!(run.stderr.contains("dns error"), "{}", run.stderr);
    assert!(proxy.connects().is_empty(), "{:?}", proxy.connects());
    assert!(!cluster.written_with_an_eks_token());
}

#[test]
fn the_aws_sdk_goes_through_https_proxy_too() {
    // An https AWS endpoint that resolves nowhere: the SDK must ask the proxy for it (the
    // proxy knows no route and answers 502, so the credentials check cannot reach STS).
    let moto = Moto::start();
    let proxy = ConnectProxy::start();
    let mut command = moto.command(bin("eks-oidc"));
    command
        .env("AWS_ENDPOINT_URL", "https://sts.test.invalid")
        .env("HTTPS_PROXY", proxy.url())
        .args(["--region", REGION, "ensure", "--cluster", "demo"]);
    let run = testbed::run::run(&mut command, "");
    assert_exit(&run, 2);
    assert!(
        run.stderr
            .contains("cannot reach STS at https://sts.test.invalid to check the AWS credentials"),
        "{}",
        run.stderr
    );
    let connects = proxy.connects();
    assert!(!connects.is_empty(), "the SDK asked the proxy");
    assert!(
        connects
            .iter()
            .all(|c| c.target == "sts.test.invalid:443" && c.status == 502),
        "{connects:?}"
    );
}
