//! The real `irsa` binary against moto (IAM, EKS) and the real Kubernetes control plane.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use testbed::controlplane::ControlPlane;
use testbed::run::{Run, assert_exit};
use testbed::{Moto, REGION, seed};

const BIN: &str = env!("CARGO_BIN_EXE_irsa");
const ALB_SA: &str = "aws-load-balancer-controller";
const S3_READ: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";

fn alb_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/aws-load-balancer-controller.json")
}

/// moto, the Kubernetes control plane, a cluster and its OIDC provider (as `eks-oidc ensure` makes it).
struct Bed {
    moto: Moto,
    kube: ControlPlane,
    provider_arn: String,
}

impl Bed {
    async fn new(cluster: &str) -> Bed {
        let moto = Moto::start();
        let config = moto.sdk_config(REGION).await;
        seed::cluster(&config, cluster, true).await;
        let issuer = aws_sdk_eks::Client::new(&config)
            .describe_cluster()
            .name(cluster)
            .send()
            .await
            .unwrap()
            .cluster()
            .unwrap()
            .identity()
            .unwrap()
            .oidc()
            .unwrap()
            .issuer()
            .unwrap()
            .to_owned();
        let provider_arn = aws_sdk_iam::Client::new(&config)
            .create_open_id_connect_provider()
            .url(&issuer)
            .client_id_list("sts.amazonaws.com")
            .send()
            .await
            .unwrap()
            .open_id_connect_provider_arn()
            .unwrap()
            .to_owned();
        let kube = ControlPlane::start();
        let client = kube.client().await;
        let ns: Api<Namespace> = Api::all(client);
        ns.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "kube-system"}})).unwrap(),
        )
        .await
        .ok();
        Bed {
            moto,
            kube,
            provider_arn,
        }
    }

    async fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.moto.sdk_config(REGION).await)
    }

    fn run(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(&[], args, stdin)
    }

    /// [`Bed::run`] with more environment (another account's credentials).
    fn run_with(&self, env: &[(&'static str, String)], args: &[&str], stdin: &str) -> Run {
        let kubeconfig = self.kube.kubeconfig();
        let mut all: Vec<&str> = vec!["--region", REGION];
        all.extend_from_slice(args);
        let needs_kube = matches!(args.first(), Some(&"ensure") | Some(&"delete"));
        if needs_kube {
            all.extend_from_slice(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
        }
        testbed::run::run(
            self.moto.command(BIN).envs(env.iter().cloned()).args(&all),
            stdin,
        )
    }

    async fn service_account(&self, ns: &str, name: &str) -> Option<ServiceAccount> {
        let api: Api<ServiceAccount> = Api::namespaced(self.kube.client().await, ns);
        api.get_opt(name).await.unwrap()
    }
}

#[tokio::test]
async fn ensure_rerun_reconcile_and_delete() {
    let bed = Bed::new("demo").await;
    let alb = alb_policy();
    let first = bed.run(
        &[
            "ensure",
            "--cluster",
            "demo",
            "--sa-name",
            ALB_SA,
            "--policy-document",
            alb.to_str().unwrap(),
            "--policy-arn",
            S3_READ,
        ],
        "",
    );
    assert_exit(&first, 0);
    let state = first.json();
    let entry = &state["irsa"][0];
    let role_name = "sa-aws-load-balancer-controller-in-demo-us-east-2";
    assert_eq!(entry["roleName"], role_name);
    assert_eq!(entry["namespace"], "kube-system");
    assert_eq!(entry["providerArn"], bed.provider_arn.as_str());
    assert_eq!(entry["serviceAccountCreated"], true);
    assert_eq!(
        entry["inlinePolicies"][0]["name"],
        "aws-load-balancer-controller"
    );
    assert_eq!(entry["managedPolicies"], json!([S3_READ]));

    // IAM: the role, its trust (sub and aud), its policies.
    let iam = bed.iam().await;
    let role = iam.get_role().role_name(role_name).send().await.unwrap();
    let role = role.role().unwrap();
    assert_eq!(entry["roleArn"], role.arn());
    let trust = common::iam::parse_policy(role.assume_role_policy_document().unwrap());
    let statement = &trust["Statement"][0];
    assert_eq!(
        statement["Principal"]["Federated"],
        bed.provider_arn.as_str()
    );
    assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
    let host = bed.provider_arn.split("oidc-provider/").nth(1).unwrap();
    let cond = &statement["Condition"]["StringEquals"];
    assert_eq!(
        cond[format!("{host}:sub")],
        "system:serviceaccount:kube-system:aws-load-balancer-controller"
    );
    assert_eq!(cond[format!("{host}:aud")], "sts.amazonaws.com");
    let inline = iam
        .list_role_policies()
        .role_name(role_name)
        .send()
        .await
        .unwrap();
    assert_eq!(inline.policy_names(), ["aws-load-balancer-controller"]);
    let attached = iam
        .list_attached_role_policies()
        .role_name(role_name)
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(arns, [S3_READ]);

    // Kubernetes: the service account, created and annotated.
    let sa = bed
        .service_account("kube-system", ALB_SA)
        .await
        .expect("created");
    let annotations = sa.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["eks.amazonaws.com/role-arn"], role.arn());
    let version = sa.metadata.resource_version.clone();

    // A second run: no mutating IAM call, no service account change.
    bed.moto.start_recording();
    let second = bed.run(
        &[
            "ensure",
            "--sa-name",
            ALB_SA,
            "--policy-document",
            alb.to_str().unwrap(),
            "--policy-arn",
            S3_READ,
        ],
        &first.stdout,
    );
    assert_exit(&second, 0);
    assert!(bed.moto.mutating_calls().is_empty());
    assert_eq!(
        bed.service_account("kube-system", ALB_SA)
            .await
            .unwrap()
            .metadata
            .resource_version,
        version
    );
    assert_eq!(second.json()["irsa"], state["irsa"]);

    // A changed policy set: the new inline policy is put before the old one goes; the managed
    // policy is detached.
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("read-secrets.json");
    std::fs::write(&extra, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#).unwrap();
    bed.moto.start_recording();
    let third = bed.run(
        &[
            "ensure",
            "--sa-name",
            ALB_SA,
            "--policy-document",
            extra.to_str().unwrap(),
        ],
        &second.stdout,
    );
    assert_exit(&third, 0);
    assert_eq!(
        bed.moto.mutating_calls(),
        [
            "iam PutRolePolicy",
            "iam DeleteRolePolicy",
            "iam DetachRolePolicy"
        ]
    );
    let inline = iam
        .list_role_policies()
        .role_name(role_name)
        .send()
        .await
        .unwrap();
    assert_eq!(inline.policy_names(), ["read-secrets"]);

    // With credentials for another account, delete is refused before the service account is
    // touched: there it would find no role, drop the entry and strip the annotation.
    let other = bed.moto.other_account_env("111111111111").await;
    let elsewhere = bed.run_with(&other, &["delete", "--sa-name", ALB_SA], &third.stdout);
    assert_exit(&elsewhere, 2);
    assert!(
        elsewhere.stderr.contains("for account 111111111111"),
        "{}",
        elsewhere.stderr
    );
    assert_eq!(elsewhere.json()["irsa"], third.json()["irsa"]);
    assert!(bed.service_account("kube-system", ALB_SA).await.is_some());

    // Delete: the role and the service account irsa created are gone, and so is the entry.
    let deleted = bed.run(&["delete", "--sa-name", ALB_SA], &third.stdout);
    assert_exit(&deleted, 0);
    assert!(deleted.json().get("irsa").is_none());
    assert!(iam.get_role().role_name(role_name).send().await.is_err());
    assert!(bed.service_account("kube-system", ALB_SA).await.is_none());
    let again = bed.run(&["delete", "--cluster", "demo", "--sa-name", ALB_SA], "");
    assert_exit(&again, 0);
}

#[tokio::test]
async fn an_existing_service_account_keeps_everything_else() {
    let bed = Bed::new("keep").await;
    let api: Api<ServiceAccount> = Api::namespaced(bed.kube.client().await, "kube-system");
    let made = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "app", "namespace": "kube-system", "labels": {"team": "a"}, "annotations": {"owner": "me"}}
    });
    api.patch(
        "app",
        &PatchParams::apply("someone-else"),
        &Patch::Apply(made),
    )
    .await
    .unwrap();
    let out = bed.run(
        &[
            "ensure",
            "--cluster",
            "keep",
            "--sa-name",
            "app",
            "--policy-arn",
            S3_READ,
        ],
        "",
    );
    assert_exit(&out, 0);
    assert_eq!(out.json()["irsa"][0]["serviceAccountCreated"], false);
    let sa = api.get("app").await.unwrap();
    let annotations = sa.metadata.annotations.unwrap();
    assert_eq!(annotations["owner"], "me");
    assert!(annotations["eks.amazonaws.com/role-arn"].starts_with("arn:aws:iam::"));
    assert_eq!(sa.metadata.labels.unwrap()["team"], "a");

    let gone = bed.run(&["delete", "--sa-name", "app"], &out.stdout);
    assert_exit(&gone, 0);
    let sa = api.get("app").await.expect("kept: irsa did not create it");
    let annotations = sa.metadata.annotations.unwrap();
    assert_eq!(annotations.get("owner").map(String::as_str), Some("me"));
    assert!(!annotations.contains_key("eks.amazonaws.com/role-arn"));
}

#[tokio::test]
async fn restart_rolls_the_deployments_that_use_the_account() {
    let bed = Bed::new("roll").await;
    let client = bed.kube.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kube-system");
    for (name, account) in [("uses-it", "app"), ("other", "someone")] {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"serviceAccountName": account, "containers": [{"name": "c", "image": "x"}]}}}
        });
        deployments
            .patch(name, &PatchParams::apply("test"), &Patch::Apply(d))
            .await
            .unwrap();
    }
    let out = bed.run(
        &[
            "ensure",
            "--cluster",
            "roll",
            "--sa-name",
            "app",
            "--policy-arn",
            S3_READ,
            "--restart",
        ],
        "",
    );
    assert_exit(&out, 0);
    assert!(
        out.stderr.contains("restarted Deployments uses-it"),
        "{}",
        out.stderr
    );
    let rolled = deployments.get("uses-it").await.unwrap();
    let template = rolled
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap_or_default();
    assert!(template.contains_key(common::workload::RESTARTED_AT));
    let untouched = deployments.get("other").await.unwrap();
    assert!(
        untouched
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .is_none()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // The Deployment controller's revision: one per pod template it rolled out.
    let rollouts = || testbed::sim::rollouts(&client, "kube-system", "uses-it");
    while rollouts().await.unwrap() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(rollouts().await.unwrap(), 2, "created, then restarted");

    let again = bed.run(
        &[
            "ensure",
            "--sa-name",
            "app",
            "--policy-arn",
            S3_READ,
            "--restart",
        ],
        &out.stdout,
    );
    assert_exit(&again, 0);
    assert!(
        again.stderr.contains("no restart needed"),
        "{}",
        again.stderr
    );
}

#[tokio::test]
async fn long_cluster_names_give_a_valid_stable_role_name() {
    let cluster = "c".repeat(100);
    let bed = Bed::new(&cluster).await;
    let out = bed.run(
        &[
            "ensure",
            "--cluster",
            &cluster,
            "--sa-name",
            ALB_SA,
            "--policy-arn",
            S3_READ,
        ],
        "",
    );
    assert_exit(&out, 0);
    let name = out.json()["irsa"][0]["roleName"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(name.len() <= 64, "{name}");
    assert_eq!(name, irsa::role::role_name(ALB_SA, &cluster, REGION));
    assert!(
        bed.iam()
            .await
            .get_role()
            .role_name(&name)
            .send()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn no_provider_means_no_role() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "bare", true).await;
    let kube = ControlPlane::start();
    let kubeconfig = kube.kubeconfig();
    let out = moto
        .command(BIN)
        .args([
            "--region",
            REGION,
            "ensure",
            "--cluster",
            "bare",
            "--sa-name",
            "app",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("run `eks-oidc ensure` first"), "{stderr}");
    let roles = aws_sdk_iam::Client::new(&moto.sdk_config(REGION).await)
        .list_roles()
        .send()
        .await
        .unwrap();
    assert!(roles.roles().is_empty());
}

#[tokio::test]
async fn bad_input_exits_2_with_nothing_made() {
    let bed = Bed::new("bad").await;
    let dir = tempfile::tempdir().unwrap();
    let no_version = dir.path().join("no-version.json");
    std::fs::write(
        &no_version,
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
    )
    .unwrap();
    let not_json = dir.path().join("broken.json");
    std::fs::write(&not_json, "{").unwrap();
    let huge = dir.path().join("huge.json");
    let actions: Vec<String> = (0..1200).map(|i| format!("s3:Action{i}")).collect();
    std::fs::write(&huge, json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":actions,"Resource":"*"}]}).to_string()).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--policy-document", no_version.to_str().unwrap()],
            "no `Version`",
        ),
        (
            vec!["--policy-document", not_json.to_str().unwrap()],
            "not valid JSON",
        ),
        (
            vec!["--policy-document", huge.to_str().unwrap()],
            "IAM allows 10240",
        ),
        (
            vec!["--policy-document", "http://example.com/policy.json"],
            "http:// URL is refused",
        ),
        (
            vec!["--policy-arn", "AmazonS3ReadOnlyAccess"],
            "--policy-arn `AmazonS3ReadOnlyAccess`",
        ),
        (
            vec!["--namespace", "Kube_System"],
            "--namespace `Kube_System`",
        ),
        (vec!["--role-name", "bad/role"], "--role-name `bad/role`"),
    ];
    bed.moto.start_recording();
    for (extra, message) in &cases {
        let mut args = vec!["ensure", "--cluster", "bad", "--sa-name", "app"];
        args.extend_from_slice(extra);
        let out = bed.run(&args, "");
        assert_exit(&out, 2);
        assert!(
            out.stderr.contains(message),
            "{extra:?}: expected `{message}` in {}",
            out.stderr
        );
    }
    let bad_sa = bed.run(&["ensure", "--cluster", "bad", "--sa-name", "App_1"], "");
    assert_exit(&bad_sa, 2);
    assert!(
        bad_sa.stderr.contains("--sa-name `App_1`"),
        "{}",
        bad_sa.stderr
    );
    assert!(bed.moto.recorded_calls().is_empty(), "no AWS call at all");
    assert!(bed.service_account("kube-system", "app").await.is_none());
}

#[tokio::test]
async fn list_shows_the_roles_and_warns_of_stale_trust() {
    let bed = Bed::new("lst").await;
    let made = bed.run(
        &[
            "ensure",
            "--cluster",
            "lst",
            "--sa-name",
            "app",
            "--policy-arn",
            S3_READ,
        ],
        "",
    );
    assert_exit(&made, 0);
    // A role made for an earlier incarnation of the cluster, trusting a provider that is gone.
    let iam = bed.iam().await;
    let old_trust = irsa::role::trust_policy(
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/OLD",
        "https://oidc.eks.us-east-2.amazonaws.com/id/OLD",
        "default",
        "old",
    );
    iam.create_role()
        .role_name("old-role")
        .assume_role_policy_document(old_trust.to_string())
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(irsa::role::TAG_CLUSTER)
                .value("lst")
                .build()
                .unwrap(),
        )
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(irsa::role::TAG_SERVICE_ACCOUNT)
                .value("default/old")
                .build()
                .unwrap(),
        )
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(irsa::role::STEP_TAG)
                .value(irsa::role::STEP)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let listed = bed.run(&["list", "--cluster", "lst"], "");
    assert_exit(&listed, 0);
    let roles = listed.json();
    let names: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["roleName"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{roles}");
    assert!(names.contains(&"sa-app-in-lst-us-east-2") && names.contains(&"old-role"));
    let stale: Vec<&Value> = roles
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["stale"] == true)
        .collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0]["roleName"], "old-role");
    assert!(
        listed.stderr.contains("old-role")
            && listed
                .stderr
                .contains("not the cluster's current OIDC provider"),
        "{}",
        listed.stderr
    );
}

/// Someone else's role of the name irsa would use, with an inline policy of theirs.
async fn foreign_role(bed: &Bed, name: &str) {
    let iam = bed.iam().await;
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name(name)
        .policy_name("theirs")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "s3:ListBucket", "Resource": "*"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
}

async fn inline_policies(bed: &Bed, role: &str) -> Vec<String> {
    bed.iam()
        .await
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap()
        .policy_names()
        .to_vec()
}

#[tokio::test]
async fn a_role_irsa_did_not_make_is_refused_unless_adopted() {
    let bed = Bed::new("own").await;
    let role = "sa-app-in-own-us-east-2";
    foreign_role(&bed, role).await;
    let policy = alb_policy();
    let ensure = [
        "ensure",
        "--cluster",
        "own",
        "--sa-name",
        "app",
        "--policy-document",
        policy.to_str().unwrap(),
    ];

    // ensure and delete (no state, as `make clean` after a lost state.json) refuse it: exit 2,
    // no mutating call, the role as it was.
    for args in [
        &ensure[..],
        &["delete", "--cluster", "own", "--sa-name", "app"][..],
    ] {
        bed.moto.start_recording();
        let refused = bed.run(args, "");
        assert_exit(&refused, 2);
        assert!(
            bed.moto.mutating_calls().is_empty(),
            "{:?}",
            bed.moto.mutating_calls()
        );
        assert!(
            refused
                .stderr
                .contains(&format!("IAM role {role} is not ours"))
                && refused.stderr.contains("no eks-fargate-alb/cluster tag"),
            "{}",
            refused.stderr
        );
        assert_eq!(inline_policies(&bed, role).await, ["theirs"]);
        assert!(bed.service_account("kube-system", "app").await.is_none());
    }

    // --adopt takes it over: trust set for the account, our policy added, theirs kept, no tags.
    let mut adopt = ensure.to_vec();
    adopt.push("--adopt");
    let adopted = bed.run(&adopt, "");
    assert_exit(&adopted, 0);
    let entry = &adopted.json()["irsa"][0];
    assert_eq!(entry["adopted"], true, "{entry}");
    assert!(entry.get("roleCreated").is_none(), "{entry}");
    let mut names = inline_policies(&bed, role).await;
    names.sort();
    assert_eq!(names, ["aws-load-balancer-controller", "theirs"]);
    let tags = bed
        .iam()
        .await
        .list_role_tags()
        .role_name(role)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags().is_empty(),
        "an adopted role is not tagged: {tags:?}"
    );

    // Again, from the state: nothing to change.
    bed.moto.start_recording();
    let again = bed.run(
        &[
            "ensure",
            "--sa-name",
            "app",
            "--policy-document",
            alb_policy().to_str().unwrap(),
        ],
        &adopted.stdout,
    );
    assert_exit(&again, 0);
    assert!(
        bed.moto.mutating_calls().is_empty(),
        "{:?}",
        bed.moto.mutating_calls()
    );

    // Delete removes what irsa added and leaves the role with what was there.
    let deleted = bed.run(&["delete", "--sa-name", "app"], &again.stdout);
    assert_exit(&deleted, 0);
    assert!(deleted.json().get("irsa").is_none());
    assert_eq!(inline_policies(&bed, role).await, ["theirs"]);
    assert!(
        bed.iam()
            .await
            .get_role()
            .role_name(role)
            .send()
            .await
            .is_ok(),
        "kept"
    );
}

#[tokio::test]
async fn a_lost_answer_to_create_role_finishes_in_one_run() {
    let bed = Bed::new("lost").await;
    let proxy = testbed::awsproxy::AwsProxy::in_front_of(&bed.moto);
    let lost = testbed::faults::lose_first_answers(&proxy, &["CreateRole", "PutRolePolicy"]);
    let made = bed.run_with(
        &[("AWS_ENDPOINT_URL", proxy.endpoint.clone())],
        &[
            "ensure",
            "--cluster",
            "lost",
            "--sa-name",
            "app",
            "--policy-document",
            alb_policy().to_str().unwrap(),
        ],
        "",
    );
    assert_exit(&made, 0);
    assert_eq!(
        *lost.lock().unwrap(),
        ["iam CreateRole", "iam PutRolePolicy"],
        "both answers were lost"
    );
    let entry = &made.json()["irsa"][0];
    assert_eq!(entry["roleCreated"], true, "{entry}");
    assert!(
        made.stderr
            .contains("the answer to our CreateRole was lost"),
        "{}",
        made.stderr
    );
    // And the role is ours for a delete without state.
    let deleted = bed.run(&["delete", "--cluster", "lost", "--sa-name", "app"], "");
    assert_exit(&deleted, 0);
    assert!(
        bed.iam()
            .await
            .get_role()
            .role_name("sa-app-in-lost-us-east-2")
            .send()
            .await
            .is_err(),
        "deleted"
    );
}

#[tokio::test]
async fn alone_on_a_terminal_it_prints_a_summary() {
    let bed = Bed::new("tty").await;
    let kubeconfig = bed.kube.kubeconfig();
    // `script` gives the command a terminal on stdin, as a person at a shell has.
    let command = format!(
        "{BIN} --region {REGION} ensure --cluster tty --sa-name cluster-autoscaler --policy-arn {S3_READ} --kubeconfig {}",
        kubeconfig.display()
    );
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &command, "/dev/null"]);
    for key in Moto::UNSET {
        script.env_remove(key);
    }
    script.envs(bed.moto.env());
    let out = script.output().expect("script(1) from util-linux runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("kube-system/cluster-autoscaler on tty (us-east-2): role arn:aws:iam::123456789012:role/sa-cluster-autoscaler-in-tty-us-east-2"),
        "{text}"
    );
    assert!(
        !text.contains("schemaVersion"),
        "no state document on a terminal: {text}"
    );
}

#[test]
fn main_rs_documents_the_contract() {
    testbed::run::check_contract(env!("CARGO_MANIFEST_DIR"), BIN);
}

#[tokio::test]
async fn the_policy_is_rendered_for_the_callers_partition() {
    let bed = Bed::new("parts").await;
    let iam = bed.iam().await;
    let standard: Value =
        serde_json::from_str(&std::fs::read_to_string(alb_policy()).unwrap()).unwrap();
    let in_aws = standard.to_string().matches("\"arn:aws:").count();
    assert!(
        in_aws >= 4,
        "the shipped policy names resources by ARN: {in_aws}"
    );
    for partition in ["aws-cn", "aws-us-gov", "aws-eusc"] {
        let proxy = testbed::awsproxy::AwsProxy::in_front_of(&bed.moto);
        testbed::awsrules::caller_in_partition(&proxy, partition);
        let sa = format!("lbc-{partition}");
        let made = bed.run_with(
            &[("AWS_ENDPOINT_URL", proxy.endpoint.clone())],
            &[
                "ensure",
                "--cluster",
                "parts",
                "--sa-name",
                &sa,
                "--policy-document",
                alb_policy().to_str().unwrap(),
            ],
            "",
        );
        assert_exit(&made, 0);
        let role = made.json()["irsa"][0]["roleName"]
            .as_str()
            .unwrap()
            .to_owned();
        let stored = iam
            .get_role_policy()
            .role_name(&role)
            .policy_name("aws-load-balancer-controller")
            .send()
            .await
            .unwrap();
        let text = common::iam::parse_policy(stored.policy_document()).to_string();
        assert!(!text.contains("\"arn:aws:"), "{partition}: {text}");
        assert_eq!(
            text.matches(&format!("\"arn:{partition}:")).count(),
            in_aws,
            "{partition}: every ARN moved, nothing else: {text}"
        );
        assert!(
            made.stderr.contains(&format!("moved to {partition}")),
            "{}",
            made.stderr
        );
    }
}

/// The control plane's kubeconfig with a second context, `dead` (a server nobody serves), made
/// the current one: only `--context testbed` reaches the control plane.
fn dead_current_context(kubeconfig: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    assert!(text.contains("current-context: testbed"), "{text}");
    let text = text
        .replacen(
            "clusters:\n",
            "clusters:\n- name: dead\n  cluster:\n    server: https://127.0.0.1:1\n",
            1,
        )
        .replacen(
            "contexts:\n",
            "contexts:\n- name: dead\n  context:\n    cluster: dead\n    user: testbed\n",
            1,
        )
        .replacen("current-context: testbed", "current-context: dead", 1);
    let path = dir.join("two-contexts");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn kubeconfig_and_context_go_before_or_after_the_subcommand() {
    let bed = Bed::new("demo").await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dead_current_context(&bed.kube.kubeconfig(), dir.path());
    let k = kubeconfig.to_str().unwrap();
    let run = |args: &[&str]| {
        let all = [&["--region", REGION][..], args].concat();
        testbed::run::run(bed.moto.command(BIN).args(&all), "")
    };
    let ensure = |sa: &'static str| ["ensure", "--cluster", "demo", "--sa-name", sa];
    let annotated = async |sa: &str| {
        bed.service_account("kube-system", sa)
            .await
            .is_some_and(|a| {
                a.metadata
                    .annotations
                    .is_some_and(|m| m.contains_key("eks.amazonaws.com/role-arn"))
            })
    };

    // Its current context, `dead`: the control plane is not reached.
    let unreached = run(&[&ensure("current")[..], &["--kubeconfig", k]].concat());
    assert_exit(&unreached, 1);
    assert!(
        unreached.stderr.contains("Connection refused"),
        "{}",
        unreached.stderr
    );
    assert!(!annotated("current").await);

    // Before the subcommand, after it, and one on each side: `testbed` is reached.
    let before = run(&[
        &["--kubeconfig", k, "--context", "testbed"][..],
        &ensure("before"),
    ]
    .concat());
    assert_exit(&before, 0);
    assert!(annotated("before").await);
    let after = run(&[
        &ensure("after")[..],
        &["--kubeconfig", k, "--context", "testbed"],
    ]
    .concat());
    assert_exit(&after, 0);
    assert!(annotated("after").await);
    let split = run(&[
        &["--context", "testbed"][..],
        &ensure("split"),
        &["--kubeconfig", k],
    ]
    .concat());
    assert_exit(&split, 0);
    assert!(annotated("split").await);

    // delete, too, reaches `testbed` from either side.
    let delete = |sa: &'static str| ["delete", "--cluster", "demo", "--sa-name", sa];
    let before = run(&[
        &["--kubeconfig", k, "--context", "testbed"][..],
        &delete("before"),
    ]
    .concat());
    assert_exit(&before, 0);
    assert!(!annotated("before").await);
    let after = run(&[
        &delete("after")[..],
        &["--kubeconfig", k, "--context", "testbed"],
    ]
    .concat());
    assert_exit(&after, 0);
    assert!(!annotated("after").await);
}
