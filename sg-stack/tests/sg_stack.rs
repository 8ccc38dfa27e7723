//! The real `eks-sg-stack` binary against a moto server of each test's own.

use serde_json::{Value, json};
use testbed::run::{Run, assert_exit};
use testbed::{Moto, REGION, seed};

const BIN: &str = env!("CARGO_BIN_EXE_eks-sg-stack");

fn run(moto: &Moto, args: &[&str], stdin: &str) -> Run {
    testbed::run::run(moto.command(BIN).args(args), stdin)
}

fn create(moto: &Moto, extra: &[&str], stdin: &str) -> Run {
    let mut args = vec!["--region", REGION, "create"];
    args.extend_from_slice(extra);
    run(moto, &args, stdin)
}

async fn ec2(moto: &Moto) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&moto.sdk_config(REGION).await)
}

async fn cfn(moto: &Moto) -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&moto.sdk_config(REGION).await)
}

async fn stack_names(moto: &Moto) -> Vec<String> {
    cfn(moto)
        .await
        .describe_stacks()
        .send()
        .await
        .expect("DescribeStacks")
        .stacks()
        .iter()
        .filter(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
        .filter_map(|s| s.stack_name().map(str::to_owned))
        .collect()
}

async fn group(moto: &Moto, id: &str) -> Option<aws_sdk_ec2::types::SecurityGroup> {
    ec2(moto)
        .await
        .describe_security_groups()
        .group_ids(id)
        .send()
        .await
        .ok()
        .and_then(|a| a.security_groups().first().cloned())
}

fn assert_no_mutating_call(moto: &Moto) {
    let mutating = moto.mutating_calls();
    assert!(mutating.is_empty(), "mutating calls: {mutating:?}");
}

#[tokio::test]
async fn create_rerun_and_delete_on_a_cluster_that_reports_no_network() {
    let moto = Moto::start();
    let seeded = seed::cluster(&moto.sdk_config(REGION).await, "demo", true).await;
    let cluster_group = seeded.cluster_security_group_id.clone().unwrap();

    let first = create(&moto, &["--cluster", "demo"], "");
    assert_exit(&first, 0);
    assert!(
        first.stderr.contains("[20"),
        "timestamped logs on stderr: {}",
        first.stderr
    );
    let state = first.json();
    assert_eq!(state["schemaVersion"], 1);
    let section = &state["sgStack"];
    assert_eq!(section["stackName"], "alb-securitygroup-demo-us-east-2");
    assert_eq!(section["vpcId"], seeded.vpc_id.as_str());
    assert_eq!(section["clusterSecurityGroupId"], cluster_group.as_str());
    assert_eq!(section["clusterSecurityGroupSource"], "tag");
    assert_eq!(section["allowedCidrs"], json!(["0.0.0.0/0"]));
    assert_eq!(section["region"], REGION);
    assert!(
        section["stackId"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:cloudformation:us-east-2:")
    );
    assert!(state["timings"]["sgStack"]["create"]["seconds"].is_number());
    assert!(state.get("error").is_none());

    // The rules, as EC2 sees them.
    let alb_group_id = section["securityGroupId"].as_str().unwrap();
    let alb = group(&moto, alb_group_id)
        .await
        .expect("the ALB group exists");
    assert_eq!(alb.vpc_id(), Some(seeded.vpc_id.as_str()));
    let mut ports: Vec<(i32, String)> = alb
        .ip_permissions()
        .iter()
        .flat_map(|p| {
            p.ip_ranges()
                .iter()
                .map(move |r| (p.from_port().unwrap(), r.cidr_ip().unwrap().to_owned()))
        })
        .collect();
    ports.sort();
    assert_eq!(
        ports,
        [
            (80, "0.0.0.0/0".to_string()),
            (443, "0.0.0.0/0".to_string())
        ]
    );
    let tags: Vec<(String, String)> = alb
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
        .collect();
    assert!(
        tags.contains(&(
            "Name".into(),
            "demo-us-east-2-ALB-Custom-SecurityGroup".into()
        )),
        "{tags:?}"
    );
    assert!(
        tags.contains(&("kubernetes.io/cluster/demo".into(), "Shared".into())),
        "{tags:?}"
    );
    let cluster_sg = group(&moto, &cluster_group).await.unwrap();
    let from_alb = cluster_sg.ip_permissions().iter().any(|p| {
        p.from_port() == Some(80)
            && p.to_port() == Some(80)
            && p.user_id_group_pairs()
                .iter()
                .any(|g| g.group_id() == Some(alb_group_id))
    });
    assert!(
        from_alb,
        "cluster group lets the ALB in: {:?}",
        cluster_sg.ip_permissions()
    );

    // A second run with the same inputs changes nothing and makes no mutating call.
    moto.start_recording();
    let second = create(&moto, &[], &first.stdout);
    assert_exit(&second, 0);
    assert_no_mutating_call(&moto);
    assert!(second.stderr.contains("up to date"), "{}", second.stderr);
    assert_eq!(second.json()["sgStack"], state["sgStack"]);

    // Delete in another region than the stack's is refused before any call: there it would find
    // no stack, and the section, the one record of the stack, would be dropped.
    let calls = moto.recorded_calls().len();
    let elsewhere = run(&moto, &["--region", "eu-west-1", "delete"], &second.stdout);
    assert_exit(&elsewhere, 2);
    assert!(
        elsewhere
            .stderr
            .contains("is for cluster demo in us-east-2, not demo in eu-west-1"),
        "{}",
        elsewhere.stderr
    );
    assert_eq!(elsewhere.json()["sgStack"], state["sgStack"]);
    assert_eq!(moto.recorded_calls().len(), calls, "no AWS call");
    assert_eq!(
        stack_names(&moto).await,
        ["alb-securitygroup-demo-us-east-2"]
    );

    // With credentials for another account, create and delete are refused: there they would
    // find no stack, and make a second one or drop the section.
    let other = moto.other_account_env("111111111111").await;
    for command in ["create", "delete"] {
        let out = testbed::run::run(
            moto.command(BIN).envs(other.clone()).arg(command),
            &second.stdout,
        );
        assert_exit(&out, 2);
        assert!(
            out.stderr.contains(
                "the state records what was made in AWS account 123456789012, but these credentials are for account 111111111111"
            ),
            "{command}: {}",
            out.stderr
        );
        assert_eq!(out.json()["sgStack"], state["sgStack"], "{command}");
        assert_eq!(out.json()["error"]["exitCode"], 2, "{command}");
    }
    assert_eq!(
        stack_names(&moto).await,
        ["alb-securitygroup-demo-us-east-2"]
    );

    // Delete: no stack, no ALB group, no section; the cluster group is not ours to delete.
    let deleted = run(&moto, &["delete"], &second.stdout);
    assert_exit(&deleted, 0);
    let after = deleted.json();
    assert!(after.get("sgStack").is_none(), "{after}");
    assert!(after["timings"]["sgStack"]["delete"].is_object());
    assert!(stack_names(&moto).await.is_empty());
    assert!(
        group(&moto, alb_group_id).await.is_none(),
        "the ALB group is gone"
    );
    assert!(group(&moto, &cluster_group).await.is_some());

    // Deleting again is success with nothing to do.
    let again = run(
        &moto,
        &["--region", REGION, "delete", "--cluster", "demo"],
        "",
    );
    assert_exit(&again, 0);
    assert!(again.stderr.contains("does not exist"), "{}", again.stderr);
}

#[tokio::test]
async fn network_facts_from_the_state_skip_describe_cluster() {
    let moto = Moto::start();
    let seeded = seed::cluster(&moto.sdk_config(REGION).await, "st", true).await;
    let input = json!({
        "schemaVersion": 1,
        "cluster": {
            "name": "st",
            "region": REGION,
            "vpcId": seeded.vpc_id,
            "clusterSecurityGroupId": seeded.cluster_security_group_id,
            "futureKey": {"kept": [1, 2, 3]}
        },
        "somethingNew": "kept as is"
    })
    .to_string();
    moto.start_recording();
    // No --region and no --cluster: both come from the state.
    let out = run(&moto, &["create"], &input);
    assert_exit(&out, 0);
    let calls = moto.recorded_calls();
    assert!(
        calls.iter().all(|c| c.service != "eks"),
        "no EKS call: {calls:?}"
    );
    let state = out.json();
    assert_eq!(state["sgStack"]["clusterSecurityGroupSource"], "state");
    assert_eq!(state["cluster"]["futureKey"], json!({"kept": [1, 2, 3]}));
    assert_eq!(state["somethingNew"], "kept as is");
    let keys: Vec<&String> = state.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "schemaVersion",
            "cluster",
            "somethingNew",
            "sgStack",
            "timings"
        ]
    );
}

#[tokio::test]
async fn changed_cidrs_update_the_stack_and_its_rules() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "upd", true).await;
    let first = create(&moto, &["--cluster", "upd"], "");
    assert_exit(&first, 0);
    moto.start_recording();
    let second = create(
        &moto,
        &[
            "--allowed-cidr",
            "203.0.113.0/24",
            "--allowed-cidr",
            "2001:db8::/32",
        ],
        &first.stdout,
    );
    assert_exit(&second, 0);
    let actions: Vec<String> = moto
        .recorded_calls()
        .iter()
        .filter(|c| c.is_mutating())
        .map(|c| c.action.clone())
        .collect();
    assert_eq!(actions, ["UpdateStack"]);
    let state = second.json();
    assert_eq!(
        state["sgStack"]["allowedCidrs"],
        json!(["203.0.113.0/24", "2001:db8::/32"])
    );
    // The state follows the stack's output (real CloudFormation updates the group's rules in
    // place; moto replaces the group, so its id is not compared with the first one).
    let output = cfn(&moto)
        .await
        .describe_stacks()
        .stack_name("alb-securitygroup-upd-us-east-2")
        .send()
        .await
        .unwrap()
        .stacks()[0]
        .outputs()[0]
        .output_value()
        .unwrap()
        .to_owned();
    assert_eq!(state["sgStack"]["securityGroupId"], output.as_str());
    let alb = group(&moto, state["sgStack"]["securityGroupId"].as_str().unwrap())
        .await
        .unwrap();
    let v4: Vec<&str> = alb
        .ip_permissions()
        .iter()
        .flat_map(|p| p.ip_ranges())
        .filter_map(|r| r.cidr_ip())
        .collect();
    let v6: Vec<&str> = alb
        .ip_permissions()
        .iter()
        .flat_map(|p| p.ipv6_ranges())
        .filter_map(|r| r.cidr_ipv6())
        .collect();
    assert!(
        v4.iter().all(|c| *c == "203.0.113.0/24") && v4.len() == 2,
        "{v4:?} {alb:?}"
    );
    assert!(v6.iter().all(|c| *c == "2001:db8::/32"), "{v6:?} {alb:?}");
    // moto's CloudFormation drops inline CidrIpv6 rules; the deployed template has them.
    let deployed = cfn(&moto)
        .await
        .get_template()
        .stack_name("alb-securitygroup-upd-us-east-2")
        .send()
        .await
        .unwrap()
        .template_body()
        .unwrap()
        .to_owned();
    assert_eq!(
        deployed.matches("\"CidrIpv6\": \"2001:db8::/32\"").count(),
        2,
        "{deployed}"
    );

    // Without --allowed-cidr the state's CIDRs are kept, not widened to 0.0.0.0/0.
    moto.start_recording();
    let third = create(&moto, &[], &second.stdout);
    assert_exit(&third, 0);
    assert_no_mutating_call(&moto);
    assert_eq!(
        third.json()["sgStack"]["allowedCidrs"],
        state["sgStack"]["allowedCidrs"]
    );
}

#[tokio::test]
async fn a_lost_answer_to_create_stack_makes_one_stack_and_one_group() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "demo", true).await;
    let proxy = testbed::awsproxy::AwsProxy::in_front_of(&moto);
    let lost = testbed::faults::lose_first_answers(&proxy, &["CreateStack"]);
    let made = testbed::run::run(
        proxy
            .command(&moto, BIN)
            .args(["--region", REGION, "create", "--cluster", "demo"]),
        "",
    );
    assert_exit(&made, 0);
    assert_eq!(*lost.lock().unwrap(), ["cloudformation CreateStack"]);
    assert!(
        made.stderr.contains("CreateStack was lost"),
        "{}",
        made.stderr
    );
    let groups = ec2(&moto)
        .await
        .describe_security_groups()
        .send()
        .await
        .unwrap();
    let albs: Vec<(&str, &str)> = groups
        .security_groups()
        .iter()
        .filter(|g| {
            g.group_name()
                .is_some_and(|n| n.starts_with("alb-securitygroup"))
        })
        .map(|g| {
            (
                g.group_id().unwrap_or_default(),
                g.group_name().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(albs.len(), 1, "{albs:?}");
    assert_eq!(
        made.json()["sgStack"]["securityGroupId"].as_str(),
        Some(albs[0].0),
        "{albs:?}"
    );
    let deleted = run(&moto, &["delete"], &made.stdout);
    assert_exit(&deleted, 0);
    let groups = ec2(&moto)
        .await
        .describe_security_groups()
        .send()
        .await
        .unwrap();
    assert!(
        !groups.security_groups().iter().any(|g| g
            .group_name()
            .is_some_and(|n| n.starts_with("alb-securitygroup"))),
        "{groups:?}"
    );
}

#[tokio::test]
async fn a_stack_of_our_name_it_did_not_make_is_refused() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "demo", true).await;
    // Someone else's stack under the name eks-sg-stack would use, without our tags.
    let body = json!({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}).to_string();
    cfn(&moto)
        .await
        .create_stack()
        .stack_name("alb-securitygroup-demo-us-east-2")
        .template_body(body)
        .send()
        .await
        .unwrap();
    moto.start_recording();
    let created = create(&moto, &["--cluster", "demo"], "");
    let deleted = run(
        &moto,
        &["--region", REGION, "delete", "--cluster", "demo"],
        "",
    );
    for refused in [&created, &deleted] {
        assert_exit(refused, 2);
        assert!(
            refused
                .stderr
                .contains("CloudFormation stack alb-securitygroup-demo-us-east-2 is not ours"),
            "{}",
            refused.stderr
        );
    }
    assert_no_mutating_call(&moto);
    assert_eq!(
        stack_names(&moto).await,
        ["alb-securitygroup-demo-us-east-2"]
    );
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "dry", true).await;
    moto.start_recording();
    let out = create(&moto, &["--cluster", "dry", "--dry-run"], "");
    assert_exit(&out, 0);
    assert_no_mutating_call(&moto);
    assert!(
        out.stderr
            .contains("would create stack alb-securitygroup-dry-us-east-2"),
        "{}",
        out.stderr
    );
    assert_eq!(out.json(), json!({"schemaVersion": 1}));
    assert!(stack_names(&moto).await.is_empty());
}

#[tokio::test]
async fn missing_cluster_or_its_group_fails_with_nothing_created() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "nogroup", false).await;
    moto.start_recording();
    let unknown = create(&moto, &["--cluster", "nosuch"], "");
    assert_exit(&unknown, 1);
    assert!(
        unknown
            .stderr
            .contains("cluster nosuch was not found in us-east-2"),
        "{}",
        unknown.stderr
    );
    let state = unknown.json();
    assert_eq!(state["error"]["step"], "sgStack");
    assert_eq!(state["error"]["exitCode"], 1);
    let no_group = create(&moto, &["--cluster", "nogroup"], "");
    assert_exit(&no_group, 1);
    assert!(
        no_group
            .stderr
            .contains("tagged aws:eks:cluster-name=nogroup"),
        "{}",
        no_group.stderr
    );
    assert_no_mutating_call(&moto);
    assert!(stack_names(&moto).await.is_empty());
}

#[tokio::test]
async fn bad_input_exits_2_without_any_call() {
    let moto = Moto::start();
    moto.start_recording();
    let cases: [(&[&str], &str, &str); 7] = [
        (
            &["--region", REGION, "create", "--cluster", "c"],
            "{not json",
            "not valid JSON",
        ),
        (
            &["--region", REGION, "create", "--cluster", "c"],
            r#"{"schemaVersion": 99}"#,
            "newer",
        ),
        (
            &[
                "--region",
                REGION,
                "create",
                "--cluster",
                "c",
                "--allowed-cidr",
                "10.0.0.1/8",
            ],
            "",
            "did you mean 10.0.0.0/8",
        ),
        (
            &[
                "--region",
                REGION,
                "create",
                "--cluster",
                "c",
                "--allowed-cidr",
                "nonsense",
            ],
            "",
            "--allowed-cidr `nonsense`",
        ),
        (&["--region", REGION, "create"], "", "pass --cluster"),
        (
            &["--region", REGION, "create", "--cluster", "bad.name"],
            "",
            "cluster name `bad.name`",
        ),
        (&["create", "--cluster", "c"], "", "no AWS region"),
    ];
    for (args, stdin, message) in cases {
        let out = run(&moto, args, stdin);
        assert_exit(&out, 2);
        assert!(
            out.stderr.contains(message),
            "{args:?}: expected `{message}` in {}",
            out.stderr
        );
        // The pipe still gets a document with the error, so the next step stops.
        assert_eq!(out.json()["error"]["exitCode"], 2, "{args:?}");
    }
    let usage = run(
        &moto,
        &["create", "--no-such-flag"],
        r#"{"schemaVersion":1,"cluster":{"name":"x"}}"#,
    );
    assert_exit(&usage, 2);
    let passed = usage.json();
    assert_eq!(
        passed["cluster"]["name"], "x",
        "the incoming state is passed on"
    );
    assert_eq!(passed["error"]["command"], "usage");
    assert!(moto.recorded_calls().is_empty(), "no AWS call at all");
}

#[tokio::test]
async fn an_earlier_error_stops_the_step_unless_resumed() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "err", true).await;
    let input = json!({
        "schemaVersion": 1,
        "cluster": {"name": "err", "region": REGION},
        "error": {"step": "cluster", "command": "create", "message": "boom", "exitCode": 1, "at": "2026-11-25T00:00:00Z"}
    });
    moto.start_recording();
    let stopped = run(&moto, &["create"], &input.to_string());
    assert_exit(&stopped, 1);
    assert_eq!(stopped.json(), input, "passed through untouched");
    assert!(stopped.stderr.contains("boom"), "{}", stopped.stderr);
    assert!(moto.recorded_calls().is_empty());

    let resumed = run(&moto, &["create", "--resume"], &input.to_string());
    assert_exit(&resumed, 0);
    let state = resumed.json();
    assert!(state.get("error").is_none());
    assert!(state["sgStack"]["securityGroupId"].is_string());
}

#[tokio::test]
async fn state_file_is_rewritten_atomically_and_left_alone_on_bad_input() {
    use std::os::unix::fs::PermissionsExt;
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "file", true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let file = path.to_str().unwrap();

    let made = run(
        &moto,
        &[
            "--state",
            file,
            "--region",
            REGION,
            "create",
            "--cluster",
            "file",
        ],
        "",
    );
    assert_exit(&made, 0);
    assert!(
        made.stdout.is_empty(),
        "stdout stays empty: {}",
        made.stdout
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let state: Value = serde_json::from_str(&text).unwrap();
    assert!(state["sgStack"]["securityGroupId"].is_string());

    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let bad = run(
        &moto,
        &["--state", file, "create", "--allowed-cidr", "bad"],
        "",
    );
    assert_exit(&bad, 2);
    assert!(bad.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "untouched");
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    let usage = run(&moto, &["--state", file, "create", "--bogus"], "");
    assert_exit(&usage, 2);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "untouched");

    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1, "no temporary file left: {files:?}");

    let gone = run(&moto, &["--state", file, "delete"], "");
    assert_exit(&gone, 0);
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(after.get("sgStack").is_none());
}

#[tokio::test]
async fn delete_waits_for_the_deployment_to_go_first() {
    let moto = Moto::start();
    let input = json!({"schemaVersion": 1, "cluster": {"name": "c", "region": REGION}, "deploy": {"hostname": "x"}});
    moto.start_recording();
    let refused = run(&moto, &["delete"], &input.to_string());
    assert_exit(&refused, 2);
    assert!(
        refused.stderr.contains("eks-deploy delete"),
        "{}",
        refused.stderr
    );
    assert!(moto.recorded_calls().is_empty());
    let forced = run(&moto, &["delete", "--force"], &input.to_string());
    assert_exit(&forced, 0);
}

#[test]
fn template_passes_cfn_lint() {
    let dir = tempfile::tempdir().unwrap();
    for (name, cidrs) in [
        ("default.json", vec![]),
        (
            "many.json",
            vec![
                "--allowed-cidr",
                "203.0.113.0/24",
                "--allowed-cidr",
                "::/0",
                "--allowed-cidr",
                "198.51.100.0/24",
            ],
        ),
    ] {
        let mut args = vec!["template"];
        args.extend(cidrs);
        let out = assert_cmd::Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success());
        let path = dir.path().join(name);
        std::fs::write(&path, &out.stdout).unwrap();
        let (ok, text) = testbed::run_venv_tool("cfn-lint", &[path.as_os_str()]);
        assert!(ok && text.trim().is_empty(), "cfn-lint on {name}: {text}");
    }
    let bad = assert_cmd::Command::new(BIN)
        .args(["template", "--allowed-cidr", "1.2.3.4/8"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn cfn_lint_does_find_faults() {
    // The check above can fail: cfn-lint reports a broken template.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(
        &path,
        r#"{"Resources":{"G":{"Type":"AWS::EC2::SecurityGroup","Properties":{}}}}"#,
    )
    .unwrap();
    let (ok, text) = testbed::run_venv_tool("cfn-lint", &[path.as_os_str()]);
    assert!(!ok && text.contains("GroupDescription"), "{text}");
}

#[test]
fn main_rs_documents_the_contract() {
    testbed::run::check_contract(env!("CARGO_MANIFEST_DIR"), BIN);
}

/// The ports other security groups may reach on the cluster security group, by rule (only the
/// ALB's are there in these tests; moto replaces the ALB group on a stack update and keeps the
/// rules' old group id, so the group is not compared).
async fn ports_from_groups(moto: &Moto, cluster_group: &str) -> Vec<(i32, i32)> {
    let cluster = group(moto, cluster_group).await.unwrap();
    let mut ports: Vec<(i32, i32)> = cluster
        .ip_permissions()
        .iter()
        .filter(|p| !p.user_id_group_pairs().is_empty())
        .map(|p| (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1)))
        .collect();
    ports.sort_unstable();
    ports
}

#[tokio::test]
async fn the_alb_reaches_the_pods_on_their_target_ports_only() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "ports", true).await;
    let first = create(&moto, &["--cluster", "ports"], "");
    assert_exit(&first, 0);
    let state = first.json();
    assert_eq!(state["sgStack"]["targetPorts"], json!([80]));
    let cluster_group = state["sgStack"]["clusterSecurityGroupId"].as_str().unwrap();
    // Not every TCP port: the webhook server (9443) and the kubelet (10250) stay closed to it.
    assert_eq!(ports_from_groups(&moto, cluster_group).await, [(80, 80)]);

    let second = create(
        &moto,
        &["--target-port", "8080", "--target-port", "80"],
        &first.stdout,
    );
    assert_exit(&second, 0);
    let state = second.json();
    assert_eq!(state["sgStack"]["targetPorts"], json!([80, 8080]));
    assert_eq!(
        ports_from_groups(&moto, cluster_group).await,
        [(80, 80), (8080, 8080)]
    );

    // Without --target-port the state's ports are kept.
    moto.start_recording();
    let third = create(&moto, &[], &second.stdout);
    assert_exit(&third, 0);
    assert_no_mutating_call(&moto);

    // Port 0 is bad input.
    let bad = create(&moto, &["--target-port", "0"], &third.stdout);
    assert_exit(&bad, 2);
    assert!(bad.stderr.contains("--target-port"), "{}", bad.stderr);
}
