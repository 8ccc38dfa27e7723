//! The real `eks-oidc` binary against a moto server of each test's own.
//!
//! moto's clusters all share one issuer on a public host name. So that these tests touch only
//! 127.0.0.1, every run that could reach for that issuer gets `HTTPS_PROXY` pointing at a closed
//! loopback port (the tool honours `HTTPS_PROXY` as eksctl did): the issuer is then unreachable
//! on any machine, with or without a network.

#[path = "support/tls.rs"]
mod tls;

use eks_oidc::thumbprint::sha1_hex;
use serde_json::{Value, json};
use testbed::awsproxy::{AwsProxy, AwsRequest};
use testbed::run::{Run, assert_exit};
use testbed::{Moto, REGION, iamrules, seed};

const BIN: &str = env!("CARGO_BIN_EXE_eks-oidc");
const ACCOUNT: &str = "123456789012";

/// Runs the binary against `endpoint` (moto, or a proxy in front of it), with the issuer
/// unreachable through a closed loopback proxy.
fn run_at(moto: &Moto, endpoint: &str, args: &[&str], stdin: &str) -> Run {
    let mut command = moto.command(BIN);
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env_remove("https_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env(
            "HTTPS_PROXY",
            format!("http://127.0.0.1:{}", tls::closed_port()),
        );
    testbed::run::run(command.args(args), stdin)
}

fn run(moto: &Moto, args: &[&str], stdin: &str) -> Run {
    run_at(moto, &moto.endpoint, args, stdin)
}

fn assert_no_mutating_call(moto: &Moto) {
    let mutating = moto.mutating_calls();
    assert!(mutating.is_empty(), "mutating calls: {mutating:?}");
}

async fn iam(moto: &Moto) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&moto.sdk_config(REGION).await)
}

/// What IAM holds for the provider, or None.
async fn provider(moto: &Moto, arn: &str) -> Option<eks_oidc::provider::Provider> {
    eks_oidc::provider::get(&iam(moto).await, arn)
        .await
        .expect("GetOpenIDConnectProvider")
}

async fn moto_issuer(moto: &Moto, cluster: &str) -> String {
    aws_sdk_eks::Client::new(&moto.sdk_config(REGION).await)
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .expect("DescribeCluster")
        .cluster()
        .and_then(|c| c.identity())
        .and_then(|i| i.oidc())
        .and_then(|o| o.issuer())
        .expect("moto reports an issuer")
        .to_owned()
}

fn arn_of(issuer: &str) -> String {
    format!(
        "arn:aws:iam::{ACCOUNT}:oidc-provider/{}",
        issuer.strip_prefix("https://").unwrap()
    )
}

fn without_timings(mut state: Value) -> Value {
    state.as_object_mut().unwrap().remove("timings");
    state
}

#[tokio::test]
async fn ensure_creates_then_changes_nothing_and_delete_removes() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "demo", false).await;
    let issuer = moto_issuer(&moto, "demo").await;
    let arn = arn_of(&issuer);

    let first = run(
        &moto,
        &["--region", REGION, "ensure", "--cluster", "demo"],
        "",
    );
    assert_exit(&first, 0);
    // The issuer cannot be reached: created without a thumbprint, with a warning saying why.
    let warning = first
        .stderr
        .lines()
        .find(|l| l.contains("WARN"))
        .unwrap_or_else(|| panic!("a warn line: {}", first.stderr));
    assert!(
        warning.starts_with("[20")
            && warning.contains(&format!("no thumbprint for issuer {issuer}"))
            && warning.contains("through proxy http://127.0.0.1:")
            && warning.contains("created without one"),
        "{warning}"
    );
    let state = first.json();
    assert_eq!(
        state["oidc"],
        json!({
            "issuer": issuer,
            "providerArn": arn,
            "thumbprints": [],
            "clientIds": ["sts.amazonaws.com"],
            "createdByUs": true,
            "clusterName": "demo",
            "region": REGION,
        })
    );
    assert!(state["timings"]["oidc"]["ensure"]["seconds"].is_number());
    assert!(state.get("error").is_none());

    let made = provider(&moto, &arn).await.expect("the provider exists");
    assert_eq!(made.client_ids, ["sts.amazonaws.com"]);
    assert!(made.thumbprints.is_empty());
    assert_eq!(made.url.as_deref(), issuer.strip_prefix("https://"));
    assert!(
        made.tags
            .contains(&("eks-fargate-alb/cluster".into(), "demo".into())),
        "{:?}",
        made.tags
    );

    // A second run changes nothing and makes no mutating call; the cluster comes from the state.
    moto.start_recording();
    let second = run(&moto, &["ensure"], &first.stdout);
    assert_exit(&second, 0);
    assert_no_mutating_call(&moto);
    assert!(
        second.stderr.contains("nothing to change"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("WARN"), "{}", second.stderr);
    assert_eq!(
        without_timings(second.json()),
        without_timings(state.clone())
    );

    // With credentials for another account, delete is refused: there it would find no provider
    // and drop the section.
    let other = moto.other_account_env("111111111111").await;
    let elsewhere = testbed::run::run(moto.command(BIN).envs(other).arg("delete"), &second.stdout);
    assert_exit(&elsewhere, 2);
    assert!(
        elsewhere.stderr.contains("for account 111111111111"),
        "{}",
        elsewhere.stderr
    );
    assert_eq!(elsewhere.json()["oidc"], state["oidc"]);
    assert!(provider(&moto, &arn).await.is_some(), "the provider stays");

    // Delete removes what this tool made and clears the section.
    let deleted = run(&moto, &["delete"], &second.stdout);
    assert_exit(&deleted, 0);
    let after = deleted.json();
    assert!(after.get("oidc").is_none(), "{after}");
    assert!(after["timings"]["oidc"]["delete"].is_object());
    assert!(
        provider(&moto, &arn).await.is_none(),
        "the provider is gone"
    );

    // Deleting again, from the same state, is success with nothing to do.
    let again = run(&moto, &["delete"], &second.stdout);
    assert_exit(&again, 0);
    assert!(again.stderr.contains("does not exist"), "{}", again.stderr);
    assert!(again.json().get("oidc").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_made_by_someone_else_is_refused_unless_adopted() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "theirs", false).await;
    let issuer = moto_issuer(&moto, "theirs").await;
    let arn = arn_of(&issuer);
    let their_thumbprint = "0123456789abcdef0123456789abcdef01234567";
    iam(&moto)
        .await
        .create_open_id_connect_provider()
        .url(&issuer)
        .client_id_list("their-app")
        .thumbprint_list(their_thumbprint)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("owner")
                .value("platform-team")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateOpenIDConnectProvider");

    // Not ours: refused, dry run or not, with exit 2, no change and the way to adopt it.
    for extra in [&["--dry-run"][..], &[][..]] {
        moto.start_recording();
        let mut args = vec!["--region", REGION, "ensure", "--cluster", "theirs"];
        args.extend_from_slice(extra);
        let refused = run(&moto, &args, "");
        assert_exit(&refused, 2);
        assert_no_mutating_call(&moto);
        assert!(
            refused
                .stderr
                .contains(&format!("IAM OIDC provider {arn} is not ours"))
                && refused.stderr.contains("no eks-fargate-alb/cluster tag")
                && refused.stderr.contains("--adopt"),
            "{}",
            refused.stderr
        );
        assert!(refused.json().get("oidc").is_none());
    }
    let untouched = provider(&moto, &arn).await.unwrap();
    assert_eq!(untouched.client_ids, ["their-app"]);

    // A dry run with --adopt says what it would add and adds nothing.
    moto.start_recording();
    let dry = run(
        &moto,
        &[
            "--region",
            REGION,
            "ensure",
            "--cluster",
            "theirs",
            "--adopt",
            "--dry-run",
        ],
        "",
    );
    assert_exit(&dry, 0);
    assert_no_mutating_call(&moto);
    assert!(
        dry.stderr
            .contains("would add client id sts.amazonaws.com to its their-app"),
        "{}",
        dry.stderr
    );
    assert_eq!(dry.json(), json!({"schemaVersion": 1}));

    // moto lacks AddClientIDToOpenIDConnectProvider (HTTP 500, no error code), so a proxy rule
    // carries it out. When a newer moto has it, this fails: then drop the rule.
    let no_retry = aws_sdk_iam::config::Builder::from(&moto.sdk_config(REGION).await)
        .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled())
        .build();
    let lacking = aws_sdk_iam::Client::from_conf(no_retry)
        .add_client_id_to_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .client_id("probe")
        .send()
        .await
        .expect_err("moto 5.2.5 does not implement AddClientIDToOpenIDConnectProvider");
    assert_eq!(
        lacking.raw_response().map(|r| r.status().as_u16()),
        Some(500),
        "{lacking:?}"
    );
    let proxy = AwsProxy::in_front_of(&moto);
    iamrules::oidc_client_ids(&proxy, &moto.endpoint);
    let ensured = run_at(
        &moto,
        &proxy.endpoint,
        &[
            "--region",
            REGION,
            "ensure",
            "--cluster",
            "theirs",
            "--adopt",
        ],
        "",
    );
    assert_exit(&ensured, 0);
    let mutating: Vec<AwsRequest> = proxy
        .calls()
        .into_iter()
        .map(|c| c.request)
        .filter(AwsRequest::is_mutating)
        .collect();
    let shown: Vec<String> = mutating.iter().map(AwsRequest::name).collect();
    assert_eq!(mutating.len(), 1, "{shown:?}");
    assert_eq!(mutating[0].action, "AddClientIDToOpenIDConnectProvider");
    assert_eq!(
        mutating[0].param("ClientID").as_deref(),
        Some("sts.amazonaws.com")
    );
    assert_eq!(
        mutating[0].param("OpenIDConnectProviderArn").as_deref(),
        Some(arn.as_str())
    );
    let state = ensured.json();
    assert_eq!(state["oidc"]["createdByUs"], false);
    assert_eq!(state["oidc"]["adopted"], true);
    assert_eq!(state["oidc"]["addedClientId"], true);
    assert_eq!(
        state["oidc"]["clientIds"],
        json!(["their-app", "sts.amazonaws.com"])
    );
    assert_eq!(state["oidc"]["thumbprints"], json!([their_thumbprint]));
    assert_eq!(state["oidc"]["providerArn"], arn.as_str());
    let now = provider(&moto, &arn).await.unwrap();
    assert_eq!(now.client_ids, ["their-app", "sts.amazonaws.com"]);
    assert_eq!(now.thumbprints, [their_thumbprint]);
    assert_eq!(now.tags, [("owner".into(), "platform-team".into())]);

    // Again, without --adopt (the state records it): nothing to add, no mutating call.
    moto.start_recording();
    let again = run(&moto, &["ensure"], &ensured.stdout);
    assert_exit(&again, 0);
    assert_no_mutating_call(&moto);
    assert_eq!(
        without_timings(again.json()),
        without_timings(state.clone())
    );

    // Without a section, delete finds the provider through the cluster and refuses it: not
    // ours, nothing changed, and how to take it over.
    moto.start_recording();
    let refused = run(
        &moto,
        &["--region", REGION, "delete", "--cluster", "theirs"],
        "",
    );
    assert_exit(&refused, 2);
    assert_no_mutating_call(&moto);
    assert!(
        refused.stderr.contains("is not ours")
            && refused
                .stderr
                .contains("aws iam tag-open-id-connect-provider"),
        "{}",
        refused.stderr
    );

    // Delete of the adopted provider removes only the client id it added, and keeps it.
    let left = run_at(&moto, &proxy.endpoint, &["delete"], &again.stdout);
    assert_exit(&left, 0);
    assert!(
        left.stderr.contains("removed client id sts.amazonaws.com")
            && left.stderr.contains("the provider stays"),
        "{}",
        left.stderr
    );
    assert!(left.json().get("oidc").is_none());
    let kept = provider(&moto, &arn).await.expect("still there");
    assert_eq!(kept.client_ids, ["their-app"]);
    assert_eq!(kept.tags, [("owner".into(), "platform-team".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbprint_of_a_local_issuer_end_to_end() {
    let moto = Moto::start();
    let pki = tls::Pki::new(&["localhost", "127.0.0.1"]);
    let port = tls::serve(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(dir.path());
    let issuer = format!("https://localhost:{port}/id/LOCAL");
    let input = json!({
        "schemaVersion": 1,
        "cluster": {"name": "local", "region": REGION, "oidcIssuer": issuer},
    })
    .to_string();

    moto.start_recording();
    let out = run(
        &moto,
        &["ensure", "--issuer-ca", ca.to_str().unwrap()],
        &input,
    );
    assert_exit(&out, 0);
    let calls = moto.recorded_calls();
    assert!(
        calls.iter().all(|c| c.service != "eks"),
        "the issuer came from the state, no EKS call: {calls:?}"
    );
    let expected = sha1_hex(&pki.ca_der);
    let state = out.json();
    assert_eq!(state["oidc"]["thumbprints"], json!([expected]));
    assert_eq!(state["oidc"]["issuer"], issuer.as_str());
    assert!(!out.stderr.contains("WARN"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("thumbprint of the top one: {expected}")),
        "{}",
        out.stderr
    );
    let arn = arn_of(&issuer);
    assert_eq!(state["oidc"]["providerArn"], arn.as_str());
    assert_eq!(provider(&moto, &arn).await.unwrap().thumbprints, [expected]);

    // Without --issuer-ca the private chain is not trusted: no thumbprint, and the reason.
    let other = format!("https://127.0.0.1:{port}/id/UNTRUSTED");
    let untrusted = run(
        &moto,
        &["ensure"],
        &json!({"schemaVersion": 1, "cluster": {"name": "local", "region": REGION, "oidcIssuer": other}})
            .to_string(),
    );
    assert_exit(&untrusted, 0);
    assert!(
        untrusted.stderr.contains("WARN")
            && untrusted.stderr.contains("UnknownIssuer")
            && untrusted.stderr.contains("--issuer-ca"),
        "{}",
        untrusted.stderr
    );
    assert_eq!(untrusted.json()["oidc"]["thumbprints"], json!([]));
    assert!(
        provider(&moto, &arn_of(&other))
            .await
            .unwrap()
            .thumbprints
            .is_empty()
    );
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "dry", false).await;
    let arn = arn_of(&moto_issuer(&moto, "dry").await);
    moto.start_recording();
    let out = run(
        &moto,
        &[
            "--region",
            REGION,
            "ensure",
            "--cluster",
            "dry",
            "--dry-run",
        ],
        "",
    );
    assert_exit(&out, 0);
    assert_no_mutating_call(&moto);
    assert!(
        out.stderr.contains(&format!(
            "dry run: would create OIDC provider {arn} for https://"
        )) && out
            .stderr
            .contains("with client id sts.amazonaws.com and no thumbprint"),
        "{}",
        out.stderr
    );
    assert_eq!(out.json(), json!({"schemaVersion": 1}));
    assert!(provider(&moto, &arn).await.is_none());

    let made = run(
        &moto,
        &["--region", REGION, "ensure", "--cluster", "dry"],
        "",
    );
    assert_exit(&made, 0);
    moto.start_recording();
    let dry_delete = run(&moto, &["delete", "--dry-run"], &made.stdout);
    assert_exit(&dry_delete, 0);
    assert_no_mutating_call(&moto);
    assert!(
        dry_delete
            .stderr
            .contains(&format!("dry run: would delete OIDC provider {arn}")),
        "{}",
        dry_delete.stderr
    );
    assert_eq!(dry_delete.json(), made.json(), "passed on unchanged");
    assert!(provider(&moto, &arn).await.is_some());
}

#[tokio::test]
async fn a_missing_cluster_fails_with_nothing_created() {
    let moto = Moto::start();
    moto.start_recording();
    let out = run(
        &moto,
        &["--region", REGION, "ensure", "--cluster", "nosuch"],
        "",
    );
    assert_exit(&out, 1);
    assert!(
        out.stderr
            .contains("cluster nosuch was not found in us-east-2")
            && out.stderr.contains("nothing was created"),
        "{}",
        out.stderr
    );
    let state = out.json();
    assert_eq!(state["error"]["step"], "oidc");
    assert_eq!(state["error"]["command"], "ensure");
    assert_eq!(state["error"]["exitCode"], 1);
    assert!(state.get("oidc").is_none());
    assert_no_mutating_call(&moto);
}

#[tokio::test]
async fn a_provider_the_state_recorded_for_an_old_issuer_is_not_forgotten() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "again", false).await;
    let old = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/OLD";
    let input = json!({
        "schemaVersion": 1,
        "cluster": {"name": "again", "region": REGION},
        "oidc": {
            "issuer": "https://oidc.eks.us-east-2.amazonaws.com/id/OLD",
            "providerArn": old,
            "thumbprints": [],
            "clientIds": ["sts.amazonaws.com"],
            "createdByUs": true,
            "clusterName": "again",
            "region": REGION
        }
    });
    moto.start_recording();
    let out = run(&moto, &["ensure"], &input.to_string());
    assert_exit(&out, 1);
    assert_no_mutating_call(&moto);
    assert!(
        out.stderr.contains(&format!("records provider {old}"))
            && out
                .stderr
                .contains("run `eks-oidc delete` with this state first"),
        "{}",
        out.stderr
    );
    let state = out.json();
    assert_eq!(state["oidc"], input["oidc"], "the record of it is kept");
    assert_eq!(state["error"]["exitCode"], 1);
}

#[tokio::test]
async fn bad_input_exits_2_without_any_call() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    moto.start_recording();
    let with_cluster = r#"{"schemaVersion":1,"cluster":{"name":"c","region":"us-east-2"}}"#;
    let bad_issuer = r#"{"schemaVersion":1,"cluster":{"name":"c","region":"us-east-2","oidcIssuer":"http://x/id/1"}}"#;
    let cases: [(&[&str], &str, &str); 11] = [
        (&["--region", REGION, "ensure"], "", "pass --cluster"),
        (
            &["--region", REGION, "ensure", "--cluster", "bad.name"],
            "",
            "cluster name `bad.name`",
        ),
        (
            &["--region", REGION, "ensure", "--cluster", "c"],
            "{not json",
            "not valid JSON",
        ),
        (
            &["--region", REGION, "ensure", "--cluster", "c"],
            r#"{"schemaVersion": 99}"#,
            "newer",
        ),
        (
            &["ensure", "--cluster", "other"],
            with_cluster,
            "--cluster other names another cluster",
        ),
        (
            &["ensure", "--issuer-ca", not_pem],
            with_cluster,
            "no `BEGIN CERTIFICATE` block",
        ),
        (
            &["ensure", "--issuer-ca", missing],
            with_cluster,
            "cannot read it",
        ),
        (&["ensure"], bad_issuer, "must start with https://"),
        (&["--region", REGION, "delete"], "", "pass --cluster"),
        (
            &["--region", "eu-west-1", "delete"],
            r#"{"schemaVersion":1,"oidc":{"issuer":"https://o/id/X","providerArn":"a","clusterName":"c","region":"us-east-2"}}"#,
            "not c in eu-west-1",
        ),
        (&["ensure", "--cluster", "c"], "", "no AWS region"),
    ];
    for (args, stdin, message) in cases {
        let out = run(&moto, args, stdin);
        assert_exit(&out, 2);
        assert!(
            out.stderr.contains(message),
            "{args:?}: expected `{message}` in {}",
            out.stderr
        );
        assert_eq!(out.json()["error"]["exitCode"], 2, "{args:?}");
    }
    let usage = run(&moto, &["ensure", "--timeout", "soon"], with_cluster);
    assert_exit(&usage, 2);
    assert_eq!(usage.json()["cluster"]["name"], "c", "passed on");
    assert_eq!(usage.json()["error"]["command"], "usage");
    assert!(moto.recorded_calls().is_empty(), "no AWS call at all");
}

#[tokio::test]
async fn an_earlier_error_is_passed_through() {
    let moto = Moto::start();
    let input = json!({
        "schemaVersion": 1,
        "cluster": {"name": "err", "region": REGION},
        "error": {"step": "cluster", "command": "create", "message": "boom", "exitCode": 1, "at": "2026-11-25T00:00:00Z"}
    });
    moto.start_recording();
    for command in ["ensure", "delete"] {
        let out = run(&moto, &[command], &input.to_string());
        assert_exit(&out, 1);
        assert_eq!(out.json(), input, "{command}: passed through untouched");
        assert!(out.stderr.contains("boom"), "{}", out.stderr);
    }
    assert!(moto.recorded_calls().is_empty());
}

#[test]
fn main_rs_documents_the_contract() {
    testbed::run::check_contract(env!("CARGO_MANIFEST_DIR"), BIN);
    for (command, flags) in [
        (
            "ensure",
            &["--cluster", "--issuer-ca", "--timeout", "--adopt"][..],
        ),
        ("delete", &["--cluster"][..]),
    ] {
        let help = assert_cmd::Command::new(BIN)
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8(help.stdout).unwrap();
        for flag in flags {
            assert!(help.contains(flag), "{command} --help lacks {flag}: {help}");
        }
    }
}
