//! The real `eks-preflight` binary against a moto server of each test's own.
//!
//! Each test runs a copy of the binary in a folder of its own, next to stand-ins for the step
//! binaries (or without them), so the result does not hang on what else target/ holds.

use std::path::{Path, PathBuf};

use serde_json::Value;
use testbed::awsproxy::AwsProxy;
use testbed::iamrules::{self, Simulation};
use testbed::run::{Run, assert_exit};
use testbed::{Moto, REGION, seed};

const BIN: &str = env!("CARGO_BIN_EXE_eks-preflight");

const STEPS: [&str; 6] = [
    "eks-cluster",
    "eks-oidc",
    "irsa",
    "eks-sg-stack",
    "eks-patch",
    "eks-deploy",
];

/// A folder with a copy of the binary and, when `with_steps`, executable stand-ins for the steps.
fn install(with_steps: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let bin = dir.path().join("eks-preflight");
    std::fs::copy(BIN, &bin).expect("copy the binary");
    if with_steps {
        for step in STEPS {
            let path = dir.path().join(step);
            std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
            make_executable(&path);
        }
    }
    (dir, bin)
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) {}

fn run(moto: &Moto, bin: &Path, args: &[&str]) -> Run {
    testbed::run::run(moto.command(bin).args(args), "")
}

/// The line of the check `name`, which must be there.
fn line<'a>(run: &'a Run, name: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| {
            l.get(6..)
                .is_some_and(|rest| rest.starts_with(&format!("{name} ")))
        })
        .unwrap_or_else(|| {
            panic!(
                "no `{name}` line\nstdout: {}\nstderr: {}",
                run.stdout, run.stderr
            )
        })
}

/// The calls moto got that are not reads. SimulatePrincipalPolicy changes nothing, whatever its
/// name says.
fn mutating_calls(moto: &Moto) -> Vec<String> {
    moto.recorded_calls()
        .into_iter()
        .filter(|c| c.is_mutating() && c.action != "SimulatePrincipalPolicy")
        .map(|c| c.to_string())
        .collect()
}

async fn ec2(moto: &Moto) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&moto.sdk_config(REGION).await)
}

#[tokio::test]
async fn every_check_passes_on_a_fresh_account_and_nothing_changes() {
    let moto = Moto::start();
    let (_dir, bin) = install(true);
    moto.start_recording();
    let started = std::time::Instant::now();
    let result = run(&moto, &bin, &["--region", REGION]);
    assert_exit(&result, 0);
    assert!(
        started.elapsed().as_secs() < 30,
        "a preflight answers in seconds: {:?}",
        started.elapsed()
    );
    assert!(line(&result, "binaries").starts_with("ok    binaries     eks-cluster, eks-oidc"));
    assert_eq!(
        line(&result, "region"),
        "ok    region       us-east-2 (from --region)"
    );
    assert_eq!(
        line(&result, "identity"),
        "ok    identity     account 123456789012 as arn:aws:sts::123456789012:user/moto"
    );
    // moto 5.2.5 has no SimulatePrincipalPolicy (HTTP 500 without an error code): the check
    // degrades to a warning that lists the actions to check by hand.
    let permissions = line(&result, "permissions");
    assert!(
        permissions.starts_with(
            "warn  permissions  not checked: iam:SimulatePrincipalPolicy on \
             arn:aws:sts::123456789012:user/moto failed: HTTP 500"
        ),
        "{permissions}"
    );
    assert!(
        result.stdout.contains("ec2: CreateVpc, DeleteVpc"),
        "{}",
        result.stdout
    );
    // moto's Service Quotas answers GetServiceQuota for vpc L-F678F1CE (5); its default VPC
    // counts.
    assert_eq!(
        line(&result, "vpcs"),
        "ok    vpcs         1 of 5 VPCs used in us-east-2 (the account's quota): room for one more"
    );
    assert_eq!(
        line(&result, "elastic-ips"),
        "ok    elastic-ips  0 of 5 Elastic IPs used in us-east-2 (account attribute \
         vpc-max-elastic-ips): room for one more"
    );
    assert_eq!(
        line(&result, "cluster"),
        "ok    cluster      eks-fargate does not exist in us-east-2: eks-cluster create makes it"
    );
    assert!(
        result
            .stdout
            .ends_with("\npreflight: all 7 checks passed (1 warning)\n"),
        "{}",
        result.stdout
    );
    let mutating = mutating_calls(&moto);
    assert!(mutating.is_empty(), "mutating calls: {mutating:?}");
}

#[tokio::test]
async fn five_vpcs_leave_no_room_and_fail_with_the_fix() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    // moto's default VPC and four more: the quota of 5 is used up.
    for i in 1..=4 {
        ec2.create_vpc()
            .cidr_block(format!("10.{i}.0.0/16"))
            .send()
            .await
            .expect("CreateVpc");
    }
    let (_dir, bin) = install(true);
    let result = run(&moto, &bin, &["--region", REGION, "--cluster", "prod"]);
    assert_exit(&result, 1);
    assert_eq!(
        line(&result, "vpcs"),
        "FAIL  vpcs         5 of 5 VPCs used in us-east-2 (the account's quota): no room for the \
         one eks-cluster create makes"
    );
    assert!(line(&result, "elastic-ips").starts_with("ok    "));
    let summary = result
        .stdout
        .split_once("\npreflight: 1 check failed (1 warning); to fix:\n")
        .map(|(_, tail)| tail)
        .unwrap_or_else(|| panic!("no summary: {}", result.stdout));
    assert!(
        summary.starts_with("  - vpcs: 5 of 5 VPCs used in us-east-2"),
        "{summary}"
    );
    assert!(
        summary.contains("fix: delete a VPC you no longer use")
            && summary.contains("L-F678F1CE")
            && summary.contains("--vpc-id"),
        "{summary}"
    );

    let json = run(&moto, &bin, &["--region", REGION, "--json"]);
    assert_exit(&json, 1);
    let report = json.json();
    let vpcs = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "vpcs")
        .expect("a vpcs check");
    assert_eq!(vpcs["status"], "fail");
    assert_eq!(vpcs["data"]["used"], 5);
    assert_eq!(vpcs["data"]["limit"], 5);
    assert_eq!(vpcs["data"]["limitSource"], "service-quotas");
    assert!(vpcs["fix"].as_str().unwrap().contains("VPCs per Region"));
}

#[tokio::test]
async fn json_report_and_an_existing_cluster_and_missing_binaries() {
    let moto = Moto::start();
    let config = moto.sdk_config(REGION).await;
    seed::cluster(&config, "demo", true).await;
    let (_dir, bin) = install(false);
    let result = run(
        &moto,
        &bin,
        &["--region", REGION, "--cluster", "demo", "--json"],
    );
    assert_exit(&result, 1);
    let report: Value = result.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["exitCode"], 1);
    assert_eq!(report["cluster"], "demo");
    assert_eq!(report["region"], REGION);
    assert_eq!(report["account"], "123456789012");
    let checks = report["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "binaries",
            "region",
            "identity",
            "permissions",
            "vpcs",
            "elastic-ips",
            "cluster"
        ]
    );
    let status = |name: &str| {
        checks.iter().find(|c| c["name"] == name).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status("binaries"), "fail");
    assert_eq!(status("permissions"), "warn");
    assert_eq!(status("cluster"), "warn");
    assert_eq!(status("vpcs"), "ok");
    let binaries = &checks[0];
    assert_eq!(binaries["data"]["missing"].as_array().unwrap().len(), 6);
    assert!(binaries["fix"].as_str().unwrap().contains("make build"));
    let cluster = checks.iter().find(|c| c["name"] == "cluster").unwrap();
    assert!(
        cluster["message"]
            .as_str()
            .unwrap()
            .starts_with("demo exists in us-east-2 (ACTIVE"),
        "{cluster}"
    );
    assert!(cluster["message"].as_str().unwrap().contains("adopt"));
    assert_eq!(cluster["data"]["exists"], true);
    let permissions = checks.iter().find(|c| c["name"] == "permissions").unwrap();
    assert!(
        permissions["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().starts_with("iam: GetRole, CreateRole")),
        "{permissions}"
    );
    assert_eq!(permissions["data"]["simulated"], 0);
    assert_eq!(
        permissions["data"]["unchecked"]["sts"][0],
        "GetCallerIdentity"
    );

    // The same as lines: the cluster warns, the binaries fail.
    let text = run(&moto, &bin, &["--region", REGION, "--cluster", "demo"]);
    assert_exit(&text, 1);
    assert!(line(&text, "cluster").starts_with("warn  cluster      demo exists"));
    assert!(
        line(&text, "binaries").starts_with("FAIL  binaries     missing eks-cluster, eks-oidc, irsa, eks-sg-stack, eks-patch, eks-deploy in ")
    );
    assert!(
        text.stdout
            .contains("fix: build them next to eks-preflight: `make build`")
    );
}

/// A role with a path, as IAM Identity Center makes them; the session ARN does not show the path.
async fn role_with_a_path(moto: &Moto) -> String {
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config(REGION).await);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name("deployer")
        .path("/team/")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("CreateRole")
        .role()
        .expect("a role")
        .arn()
        .to_owned()
}

const SESSION: &str = "arn:aws:sts::123456789012:assumed-role/deployer/ci-run-42";

#[tokio::test(flavor = "multi_thread")]
async fn denied_actions_fail_grouped_by_service_for_the_role_behind_the_session() {
    let moto = Moto::start();
    let role = role_with_a_path(&moto).await;
    assert_eq!(role, "arn:aws:iam::123456789012:role/team/deployer");
    let denied = [
        "ec2:CreateNatGateway",
        "iam:CreateOpenIDConnectProvider",
        "ec2:AllocateAddress",
    ];
    let proxy = AwsProxy::in_front_of(&moto);
    iamrules::caller_identity(&proxy, SESSION);
    let simulations = iamrules::simulate_principal_policy(
        &proxy,
        Simulation::Decide {
            denied: denied.iter().map(|a| a.to_string()).collect(),
        },
    );
    let (_dir, bin) = install(true);
    let result = testbed::run::run(
        moto.command(&bin)
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args(["--region", REGION]),
        "",
    );
    assert_exit(&result, 1);
    assert_eq!(
        line(&result, "identity"),
        format!("ok    identity     account 123456789012 as {SESSION}")
    );
    let simulated = simulations.asked();
    assert!(
        simulated.len() >= 2,
        "the actions go in batches: {simulated:?}"
    );
    assert!(
        simulated.iter().all(|s| s.policy_source_arn == role),
        "the role, with its path from iam:GetRole: {simulated:?}"
    );
    let asked: usize = simulated.iter().map(|s| s.actions.len()).sum();
    let permissions = line(&result, "permissions");
    assert_eq!(
        permissions,
        format!("FAIL  permissions  3 of {asked} actions the pipeline needs are denied to {role}")
    );
    let indent = " ".repeat(19);
    assert!(
        result.stdout.contains(&format!(
            "{permissions}\n{indent}ec2: AllocateAddress, CreateNatGateway\n\
             {indent}iam: CreateOpenIDConnectProvider\n\
             {indent}iam:PassRole depends on iam:PassedToService\n"
        )),
        "{}",
        result.stdout
    );
    assert!(
        result
            .stdout
            .contains(&format!("fix: grant the denied actions to {role}")),
        "{}",
        result.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_that_may_not_simulate_gets_a_warning_not_a_failure() {
    let moto = Moto::start();
    let role = role_with_a_path(&moto).await;
    let proxy = AwsProxy::in_front_of(&moto);
    iamrules::caller_identity(&proxy, SESSION);
    iamrules::simulate_principal_policy(&proxy, Simulation::Refuse);
    let (_dir, bin) = install(true);
    let result = testbed::run::run(
        moto.command(&bin)
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args(["--region", REGION, "--json"]),
        "",
    );
    assert_exit(&result, 0);
    let report = result.json();
    let permissions = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "permissions")
        .unwrap()
        .clone();
    assert_eq!(permissions["status"], "warn");
    assert_eq!(
        permissions["message"],
        format!(
            "not checked: {role} may not call iam:SimulatePrincipalPolicy (AccessDenied: not \
             authorized to perform: iam:SimulatePrincipalPolicy)"
        )
    );
    assert!(
        permissions["fix"]
            .as_str()
            .unwrap()
            .starts_with(&format!("allow iam:SimulatePrincipalPolicy on {role}"))
    );
    assert_eq!(report["ok"], true);
}

/// A command with nothing of the machine's AWS setup and no endpoint: no call can succeed.
fn offline(bin: &Path, config_dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(bin);
    for key in Moto::UNSET {
        cmd.env_remove(key);
    }
    let empty = config_dir.join("empty");
    std::fs::write(&empty, "").unwrap();
    cmd.env("AWS_CONFIG_FILE", &empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

#[test]
fn no_region_or_a_bad_one_is_a_usage_error() {
    let (dir, bin) = install(true);
    let none = testbed::run::run(&mut offline(&bin, dir.path()), "");
    assert_exit(&none, 2);
    assert!(
        line(&none, "region").starts_with("FAIL  region       no AWS region: pass --region"),
        "{}",
        none.stdout
    );
    assert!(!none.stdout.contains("identity"), "{}", none.stdout);

    let json = testbed::run::run(offline(&bin, dir.path()).arg("--json"), "");
    assert_exit(&json, 2);
    assert_eq!(json.json()["exitCode"], 2);

    let bad = testbed::run::run(offline(&bin, dir.path()).args(["--region", "useast2"]), "");
    assert_exit(&bad, 2);
    assert!(line(&bad, "region").contains("`useast2`"), "{}", bad.stdout);

    let cluster = testbed::run::run(
        offline(&bin, dir.path()).args(["--region", REGION, "--cluster", "no/slash"]),
        "",
    );
    assert_exit(&cluster, 2);
    assert!(line(&cluster, "cluster").contains("not an EKS cluster name"));

    let flag = testbed::run::run(offline(&bin, dir.path()).arg("--no-such-flag"), "");
    assert_exit(&flag, 2);
}

#[test]
fn no_credentials_fail_the_identity_check_and_stop() {
    let (dir, bin) = install(true);
    let result = testbed::run::run(
        offline(&bin, dir.path())
            .args(["--region", REGION])
            // Nothing listens there: even a credential source that found something could not
            // reach an endpoint.
            .env(
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", testbed::free_port()),
            ),
        "",
    );
    assert_exit(&result, 1);
    let identity = line(&result, "identity");
    assert!(
        identity.starts_with("FAIL  identity     sts:GetCallerIdentity failed: "),
        "{identity}"
    );
    assert!(result.stdout.contains("the other AWS checks were not run"));
    assert!(result.stdout.contains("fix: give the pipeline credentials"));
    assert!(!result.stdout.contains("vpcs"), "{}", result.stdout);
}

#[test]
fn main_rs_documents_what_it_needs() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs"))
        .expect("src/main.rs");
    let doc: String = text
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "changes nothing",
        "Exit codes",
        "IAM permissions",
        "`sts:GetCallerIdentity`",
        "`iam:SimulatePrincipalPolicy`",
        "`iam:GetRole`",
        "`ec2:DescribeAccountAttributes`",
        "`ec2:DescribeAddresses`",
        "`ec2:DescribeVpcs`",
        "`servicequotas:GetServiceQuota`",
        "`servicequotas:GetAWSDefaultServiceQuota`",
        "`eks:DescribeCluster`",
    ] {
        assert!(doc.contains(needle), "main.rs doc lacks {needle}");
    }
    let help = assert_cmd::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--region",
        "--profile",
        "--cluster",
        "--json",
        "--verbose",
        "--quiet",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}: {help}");
    }
}
