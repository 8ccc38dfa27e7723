//! The real `eks-patch` binary: rendering from a state, the validators on every rendered file,
//! the webhook certificate, stable re-renders, and bad input. No AWS and no moto: the step is
//! offline.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_eks-patch");
const ROLE: &str =
    "arn:aws:iam::123456789012:role/sa-aws-load-balancer-controller-in-demo-us-east-2";
/// Every Kubernetes version the validator knows, from 1.29 on.
const VERSIONS: &[&str] = &[
    "1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37",
];

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

fn state() -> Value {
    json!({
        "schemaVersion": 1,
        "cluster": { "name": "demo", "region": "us-east-2", "vpcId": "vpc-0123456789abcdef0" },
        "sgStack": {
            "stackName": "alb-securitygroup-demo-us-east-2",
            "clusterName": "demo",
            "region": "us-east-2",
            "securityGroupId": "sg-0abc1234def567890",
            "vpcId": "vpc-0123456789abcdef0"
        },
        "irsa": [
            { "namespace": "kube-system", "serviceAccount": "cluster-autoscaler",
              "roleArn": "arn:aws:iam::123456789012:role/other" },
            { "namespace": "kube-system", "serviceAccount": "aws-load-balancer-controller",
              "roleArn": ROLE }
        ]
    })
}

fn run_in(dir: &Path, args: &[&str], stdin: &str) -> Run {
    let config = dir.join("empty-aws-config");
    std::fs::write(&config, "").unwrap();
    let mut cmd = assert_cmd::Command::new(BIN);
    for key in [
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "RUST_LOG",
    ] {
        cmd.env_remove(key);
    }
    let output = cmd
        .current_dir(dir)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &config)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .args(args)
        .write_stdin(stdin)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("runs");
    Run {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).expect("utf-8"),
        stderr: String::from_utf8(output.stderr).expect("utf-8"),
    }
}

fn assert_exit(run: &Run, code: i32) {
    assert_eq!(
        run.code, code,
        "exit code\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
}

/// The YAML documents of a rendered file.
fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn all_docs(out: &Path) -> Vec<Value> {
    rendered_files(out).iter().flat_map(|p| docs(p)).collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn rendered_files(out: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn unb64(value: &Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// kubernetes-validate, strict, for every version: Ok, or the complaint. A kind it has no schema
/// for is a failure too, except the custom resources our own CRDs define (checked by
/// [`validate_custom_resources`]).
fn kubernetes_validate(files: &[PathBuf]) -> Result<(), String> {
    let mut args: Vec<std::ffi::OsString> = vec!["--strict".into(), "--quiet".into()];
    for v in VERSIONS {
        args.push("-k".into());
        args.push((*v).into());
    }
    args.extend(files.iter().map(|f| f.as_os_str().to_owned()));
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (ok, text) = testbed::run_venv_tool("kubernetes-validate", &refs);
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !(l.starts_with("WARN")
                && l.contains("kind IngressClassParams with api version elbv2.k8s.aws/v1beta1"))
        })
        .collect();
    if ok && complaints.is_empty() {
        Ok(())
    } else {
        Err(text)
    }
}

/// The custom resources of the rendered set against the openAPIV3Schema of the rendered CRDs
/// (jsonschema from the venv), which kubernetes-validate has no schema for.
fn validate_custom_resources(out: &Path) -> Result<(), String> {
    let docs = all_docs(out);
    let crds: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    let mut checked = 0;
    for doc in &docs {
        let api = doc["apiVersion"].as_str().unwrap();
        let Some((group, version)) = api.split_once('/') else {
            continue;
        };
        let Some(crd) = crds
            .iter()
            .find(|c| c["spec"]["group"] == group && c["spec"]["names"]["kind"] == doc["kind"])
        else {
            continue;
        };
        let schema = crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == version)
            .map(|v| v["schema"]["openAPIV3Schema"].clone())
            .ok_or_else(|| format!("no version {version} in the CRD of {}", doc["kind"]))?;
        let dir = tempfile::tempdir().unwrap();
        let schema_path = dir.path().join("schema.json");
        let doc_path = dir.path().join("doc.json");
        std::fs::write(&schema_path, schema.to_string()).unwrap();
        std::fs::write(&doc_path, doc.to_string()).unwrap();
        let script = "import json,sys,jsonschema\n\
                      s=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2]))\n\
                      jsonschema.Draft7Validator(s).validate(d)\n";
        let (ok, text) = testbed::run_venv_tool(
            "python",
            &[
                "-c".as_ref(),
                script.as_ref(),
                schema_path.as_os_str(),
                doc_path.as_os_str(),
            ],
        );
        if !ok {
            return Err(format!(
                "{} {}: {text}",
                doc["kind"], doc["metadata"]["name"]
            ));
        }
        checked += 1;
    }
    if checked == 0 {
        return Err("no custom resource was checked".into());
    }
    Ok(())
}

fn first_render(dir: &Path) -> (Run, PathBuf) {
    let run = run_in(dir, &["--out", "out"], &state().to_string());
    assert_exit(&run, 0);
    (run, dir.join("out"))
}

#[test]
fn renders_valid_manifests_with_the_facts_set() {
    let dir = tempfile::tempdir().unwrap();
    let (run, out) = first_render(dir.path());
    let after = run.json();
    let section = &after["patch"];

    // The section: facts, files in apply order with their hashes, the controller version.
    let version = include_str!("../../manifests/VERSION").trim();
    assert_eq!(section["controllerVersion"], version);
    assert_eq!(section["outputDir"], "out");
    assert_eq!(section["clusterName"], "demo");
    assert_eq!(section["securityGroupId"], "sg-0abc1234def567890");
    assert_eq!(section["roleArn"], ROLE);
    let names: Vec<&str> = section["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "apply order is file-name order");
    assert_eq!(names.first(), Some(&"00-crds.yaml"));
    for file in section["files"].as_array().unwrap() {
        let text = std::fs::read_to_string(out.join(file["name"].as_str().unwrap())).unwrap();
        assert_eq!(file["sha256"], eks_patch::sha256(&text));
    }
    assert_eq!(rendered_files(&out).len(), names.len());
    assert!(after["timings"]["patch"]["render"]["seconds"].is_number());
    // Everything else passed through untouched.
    for key in ["cluster", "sgStack", "irsa"] {
        assert_eq!(after[key], state()[key]);
    }

    // Every rendered file passes kubernetes-validate (strict) for 1.29 through 1.37, and the
    // custom resources pass the schema of our CRDs.
    kubernetes_validate(&rendered_files(&out)).unwrap();
    validate_custom_resources(&out).unwrap();

    // The fields.
    let docs = all_docs(&out);
    let deployment = find(&docs, "Deployment", "aws-load-balancer-controller");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        format!("public.ecr.aws/eks/aws-load-balancer-controller:{version}")
    );
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for wanted in [
        "--cluster-name=demo",
        "--ingress-class=alb",
        "--aws-region=us-east-2",
        "--aws-vpc-id=vpc-0123456789abcdef0",
    ] {
        assert!(args.contains(&wanted), "{wanted} in {args:?}");
    }
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["defaultMode"],
        json!(0o444),
        "an integer mode, not a float"
    );
    let sa = find(&docs, "ServiceAccount", "aws-load-balancer-controller");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        ROLE
    );
    let ingress = find(&docs, "Ingress", "2048-ingress");
    assert_eq!(
        ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/security-groups"],
        "sg-0abc1234def567890"
    );
    assert_eq!(ingress["spec"]["ingressClassName"], "alb");
    assert_eq!(ingress["apiVersion"], "networking.k8s.io/v1");

    // Webhook TLS: the CA is in every caBundle and the Secret; the serving certificate and key
    // are the recorded certificate and the kept key.
    let ca_pem = section["webhookCertificate"]["caPem"].as_str().unwrap();
    let cert_pem = section["webhookCertificate"]["certPem"].as_str().unwrap();
    let mut bundles = 0;
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let config = find(&docs, kind, "aws-load-balancer-webhook");
        for hook in config["webhooks"].as_array().unwrap() {
            assert_eq!(hook["clientConfig"]["caBundle"], b64(ca_pem), "{hook}");
            bundles += 1;
        }
    }
    assert!(bundles >= 6, "{bundles} webhooks");
    let secret = find(&docs, "Secret", "aws-load-balancer-tls");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(unb64(&secret["data"]["ca.crt"]), ca_pem);
    assert_eq!(unb64(&secret["data"]["tls.crt"]), cert_pem);
    let key = std::fs::read_to_string(out.join(".webhook-tls/tls.key")).unwrap();
    assert_eq!(unb64(&secret["data"]["tls.key"]), key);
    assert!(
        section["webhookCertificate"]["notAfter"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // Private material: mode 0600, and never in the state.
    for path in [
        out.join(".webhook-tls/tls.key"),
        out.join("03-webhook-secret.yaml"),
    ] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let mode = std::fs::metadata(out.join("00-crds.yaml"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644);
    assert!(!run.stdout.contains("PRIVATE KEY"));
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!run.stdout.contains(&key_body[..40]));
    assert!(!run.stdout.contains(&b64(&key)[..40]));
}

#[test]
fn the_validators_do_fail_on_bad_manifests() {
    let dir = tempfile::tempdir().unwrap();
    // The seed's API: no schema in any current version, which counts as a failure.
    let old = dir.path().join("old-ingress.yaml");
    std::fs::write(
        &old,
        "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: x\nspec:\n  backend:\n    serviceName: s\n    servicePort: 80\n",
    )
    .unwrap();
    let err = kubernetes_validate(std::slice::from_ref(&old)).unwrap_err();
    assert!(err.contains("Couldn't find schema"), "{err}");
    // A typo in a current kind: strict validation rejects the unknown field.
    let typo = dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  prots:\n  - port: 80\n",
    )
    .unwrap();
    let err = kubernetes_validate(std::slice::from_ref(&typo)).unwrap_err();
    assert!(err.contains("ERROR"), "{err}");
    // A custom resource against our CRD schema: a wrong enum value is refused.
    let (_, out) = first_render(dir.path());
    let params = out.join("05-ingressclass.yaml");
    let text = std::fs::read_to_string(&params)
        .unwrap()
        .replace("ipAddressType: ipv4", "ipAddressType: ipv5");
    std::fs::write(&params, text).unwrap();
    let err = validate_custom_resources(&out).unwrap_err();
    assert!(err.contains("ipv5"), "{err}");
}

#[test]
fn the_serving_certificate_verifies_against_the_ca_for_the_service_name() {
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = first_render(dir.path());
    let record = &run.json()["patch"]["webhookCertificate"];
    let der = |pem: &str| -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    let ca = CertificateDer::from(der(record["caPem"].as_str().unwrap()));
    let cert = CertificateDer::from(der(record["certPem"].as_str().unwrap()));
    let anchor = webpki::anchor_from_trusted_cert(&ca).unwrap();
    let end = webpki::EndEntityCert::try_from(&cert).unwrap();
    end.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        std::slice::from_ref(&anchor),
        &[],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .expect("the serving certificate chains to the CA");
    for name in [
        "aws-load-balancer-webhook-service.kube-system.svc",
        "aws-load-balancer-webhook-service.kube-system.svc.cluster.local",
    ] {
        end.verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    assert!(
        end.verify_is_valid_for_subject_name(&ServerName::try_from("example.com").unwrap())
            .is_err()
    );
    // And a certificate of another CA does not verify against this one.
    let other_dir = tempfile::tempdir().unwrap();
    let (other, _) = first_render(other_dir.path());
    let other_cert =
        CertificateDer::from(der(other.json()["patch"]["webhookCertificate"]["certPem"]
            .as_str()
            .unwrap()));
    let other_end = webpki::EndEntityCert::try_from(&other_cert).unwrap();
    assert!(
        other_end
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &[anchor],
                &[],
                UnixTime::now(),
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .is_err()
    );
}

#[test]
fn a_rerun_is_stable_and_a_missing_key_means_a_new_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (first, out) = first_render(dir.path());
    let before: Vec<(PathBuf, String)> = rendered_files(&out)
        .into_iter()
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect();

    // Unknown keys of the section are kept.
    let mut input = first.json();
    input["patch"]["future"] = json!({"x": 1});
    let second = run_in(dir.path(), &["--out", "out"], &input.to_string());
    assert_exit(&second, 0);
    let s1 = &first.json()["patch"];
    let s2 = &second.json()["patch"];
    assert_eq!(s2["files"], s1["files"], "same sha256 for every file");
    assert_eq!(s2["webhookCertificate"], s1["webhookCertificate"]);
    assert_eq!(s2["future"], json!({"x": 1}));
    for (path, text) in &before {
        assert_eq!(
            &std::fs::read_to_string(path).unwrap(),
            text,
            "{}",
            path.display()
        );
    }
    assert!(second.stderr.contains("reusing"), "{}", second.stderr);

    // Without the key the pair is made anew, and it says why.
    std::fs::remove_file(out.join(".webhook-tls/tls.key")).unwrap();
    let third = run_in(dir.path(), &["--out", "out"], &second.stdout);
    assert_exit(&third, 0);
    assert!(third.stderr.contains("is missing"), "{}", third.stderr);
    let s3 = &third.json()["patch"];
    assert_ne!(
        s3["webhookCertificate"]["caPem"],
        s1["webhookCertificate"]["caPem"]
    );
    assert!(out.join(".webhook-tls/tls.key").is_file());
    kubernetes_validate(&rendered_files(&out)).unwrap();

    // A `patch` section this version cannot read is replaced, with a warning.
    let mut input = third.json();
    input["patch"]["webhookCertificate"] = json!("garbage");
    let fourth = run_in(dir.path(), &["--out", "out"], &input.to_string());
    assert_exit(&fourth, 0);
    assert!(fourth.stderr.contains("ignoring"), "{}", fourth.stderr);
    assert!(fourth.json()["patch"]["webhookCertificate"]["caPem"].is_string());
}

#[test]
fn bad_input_is_exit_2_and_writes_nothing() {
    let cases: Vec<(Value, Vec<&str>, &str)> = vec![
        (
            {
                let mut s = state();
                s.as_object_mut().unwrap().remove("sgStack");
                s
            },
            vec![],
            "--security-group-id",
        ),
        (
            {
                let mut s = state();
                s["cluster"].as_object_mut().unwrap().remove("vpcId");
                s["sgStack"].as_object_mut().unwrap().remove("vpcId");
                s
            },
            vec![],
            "--vpc-id",
        ),
        (
            {
                let mut s = state();
                s["cluster"].as_object_mut().unwrap().remove("name");
                s["sgStack"].as_object_mut().unwrap().remove("clusterName");
                s
            },
            vec![],
            "--cluster",
        ),
        (
            {
                let mut s = state();
                s["cluster"].as_object_mut().unwrap().remove("region");
                s["sgStack"].as_object_mut().unwrap().remove("region");
                s
            },
            vec![],
            "region",
        ),
        (state(), vec!["--vpc-id", "subnet-123"], "--vpc-id"),
        (state(), vec!["--cluster", "other"], "another cluster"),
        (state(), vec!["--manifests", "no-such-dir"], "no-such-dir"),
    ];
    for (input, extra, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["--out", "out"];
        args.extend(extra.iter().copied());
        let run = run_in(dir.path(), &args, &input.to_string());
        assert_exit(&run, 2);
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        assert!(
            !dir.path().join("out").exists(),
            "{needle}: nothing written"
        );
        // In a pipe the document goes on with an error record, so the next step stops.
        assert_eq!(run.json()["error"]["exitCode"], 2, "{needle}");
    }

    // With --state FILE the file is left as it was.
    let dir = tempfile::tempdir().unwrap();
    let mut s = state();
    s.as_object_mut().unwrap().remove("sgStack");
    let text = s.to_string();
    std::fs::write(dir.path().join("state.json"), &text).unwrap();
    let run = run_in(dir.path(), &["--state", "state.json", "--out", "out"], "");
    assert_exit(&run, 2);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state.json")).unwrap(),
        text
    );
    assert!(!dir.path().join("out").exists());

    // A broken manifest of the user's copy: nothing of the set is written either.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("mine");
    copy_manifests(&copy);
    std::fs::write(copy.join("09-broken.yaml"), "kind: [\n").unwrap();
    let run = run_in(
        dir.path(),
        &["--out", "out", "--manifests", "mine"],
        &state().to_string(),
    );
    assert_exit(&run, 2);
    assert!(run.stderr.contains("09-broken.yaml"), "{}", run.stderr);
    assert!(!dir.path().join("out").exists());
}

fn copy_manifests(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn user_manifests_and_edited_copies() {
    let dir = tempfile::tempdir().unwrap();
    // An edited copy of manifests/: rendered structurally, with the edit kept.
    let copy = dir.path().join("mine");
    copy_manifests(&copy);
    let app = copy.join("06-app-2048.yaml");
    let text = std::fs::read_to_string(&app)
        .unwrap()
        .replace("replicas: 4", "replicas: 3");
    std::fs::write(&app, text).unwrap();
    // An old-style file with the seed's placeholder words.
    let old = dir.path().join("extra-configmap.yaml");
    std::fs::write(
        &old,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: facts\n  namespace: game-2048\ndata:\n  cluster: CLUSTER_NAME\n  region: REGION\n  vpc: VPC_ID\n  sg: SG_ID\n  env: AWS_REGION\n",
    )
    .unwrap();
    let run = run_in(
        dir.path(),
        &["--out", "out", "--manifests", "mine", old.to_str().unwrap()],
        &state().to_string(),
    );
    assert_exit(&run, 0);
    let out = dir.path().join("out");
    let docs = all_docs(&out);
    assert_eq!(
        find(&docs, "Deployment", "deployment-2048")["spec"]["replicas"],
        3
    );
    let cm = find(&docs, "ConfigMap", "facts");
    assert_eq!(
        cm["data"],
        json!({"cluster": "demo", "region": "us-east-2", "vpc": "vpc-0123456789abcdef0",
               "sg": "sg-0abc1234def567890", "env": "AWS_REGION"})
    );
    let names: Vec<String> = run.json()["patch"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names.last().map(String::as_str),
        Some("extra-configmap.yaml")
    );
    kubernetes_validate(&rendered_files(&out)).unwrap();

    // Rendered again without the extra file: the file it left is removed, nothing else.
    let again = run_in(
        dir.path(),
        &["--out", "out", "--manifests", "mine"],
        &run.stdout,
    );
    assert_exit(&again, 0);
    assert!(!out.join("extra-configmap.yaml").exists());
    assert_eq!(rendered_files(&out).len(), names.len() - 1);
}

#[test]
fn flags_override_the_state_and_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = state().to_string();
    let run = run_in(
        dir.path(),
        &[
            "--out",
            "out",
            "--security-group-id",
            "sg-0fff",
            "--role-arn",
            "arn:aws:iam::123456789012:role/mine",
            "--dry-run",
        ],
        &input,
    );
    assert_exit(&run, 0);
    assert!(!dir.path().join("out").exists());
    assert_eq!(run.json(), state(), "the state passes unchanged");
    assert!(run.stderr.contains("would write"), "{}", run.stderr);

    let run = run_in(
        dir.path(),
        &[
            "--out",
            "out",
            "--security-group-id",
            "sg-0fff",
            "--role-arn",
            "arn:aws:iam::123456789012:role/mine",
        ],
        &input,
    );
    assert_exit(&run, 0);
    let docs = all_docs(&dir.path().join("out"));
    assert_eq!(
        find(&docs, "Ingress", "2048-ingress")["metadata"]["annotations"]["alb.ingress.kubernetes.io/security-groups"],
        "sg-0fff"
    );
    assert_eq!(
        find(&docs, "ServiceAccount", "aws-load-balancer-controller")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/mine"
    );

    // Without any role the annotation is left out (irsa sets it later), with a warning.
    let mut s = state();
    s.as_object_mut().unwrap().remove("irsa");
    let run = run_in(dir.path(), &["--out", "out2"], &s.to_string());
    assert_exit(&run, 0);
    assert!(run.stderr.contains("irsa ensure"), "{}", run.stderr);
    let docs = all_docs(&dir.path().join("out2"));
    let sa = find(&docs, "ServiceAccount", "aws-load-balancer-controller");
    assert!(sa["metadata"].get("annotations").is_none(), "{sa}");
}

#[test]
fn main_rs_documents_the_contract() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs")).unwrap();
    assert!(text.starts_with("//!"));
    let doc: String = text
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    for needle in ["stdin", "stdout", "Exit codes", "IAM permissions: none"] {
        assert!(doc.contains(needle), "main.rs doc lacks {needle}");
    }
    let help = assert_cmd::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--state",
        "--region",
        "--dry-run",
        "--resume",
        "--cluster",
        "--vpc-id",
        "--security-group-id",
        "--role-arn",
        "--manifests",
        "--out",
        "--version",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}: {help}");
    }
}

/// What upstream v3.7.0 serves and configures, and what this project adds: the release's image,
/// admission reviews in v1, the pod mutator failing open, the CRD versions and v3.7.0's GENEVE
/// target groups, the Gateway API's ListenerSets in the controller's role, a
/// PodDisruptionBudget and a zone spread for the controller, a ten-year certificate.
#[test]
fn manifest_facts_match_upstream_and_the_controller_is_kept_available() {
    let dir = tempfile::tempdir().unwrap();
    let (run, out) = first_render(dir.path());
    let docs = all_docs(&out);

    let mut policies = Vec::new();
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        for hook in find(&docs, kind, "aws-load-balancer-webhook")["webhooks"]
            .as_array()
            .unwrap()
        {
            assert_eq!(hook["admissionReviewVersions"], json!(["v1"]), "{hook}");
            policies.push((
                hook["name"].as_str().unwrap().to_owned(),
                hook["failurePolicy"].as_str().unwrap().to_owned(),
            ));
        }
    }
    for (name, policy) in &policies {
        let wanted = if name == "mpod.elbv2.k8s.aws" {
            "Ignore"
        } else {
            "Fail"
        };
        assert_eq!(policy, wanted, "{name}");
    }
    assert!(policies.iter().any(|(n, _)| n == "mpod.elbv2.k8s.aws"));

    let versions = |crd: &str| -> Vec<(String, bool, bool)> {
        find(&docs, "CustomResourceDefinition", crd)["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap().to_owned(),
                    v["served"].as_bool().unwrap(),
                    v["storage"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        versions("targetgroupbindings.elbv2.k8s.aws"),
        [
            ("v1alpha1".to_owned(), true, false),
            ("v1beta1".to_owned(), true, true)
        ]
    );
    assert_eq!(
        versions("ingressclassparams.elbv2.k8s.aws"),
        [("v1beta1".to_owned(), true, true)]
    );
    // v3.7.0 accepts GENEVE target groups in a TargetGroupBinding (v1beta1 only has the field).
    let tgb_versions = find(
        &docs,
        "CustomResourceDefinition",
        "targetgroupbindings.elbv2.k8s.aws",
    )["spec"]["versions"]
        .clone();
    let protocol = |v: usize| {
        tgb_versions[v]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["targetGroupProtocol"]
            .clone()
    };
    assert!(protocol(0).is_null(), "v1alpha1: {}", protocol(0));
    assert!(
        protocol(1)["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("GENEVE")),
        "{}",
        protocol(1)
    );
    let listenersets = find(&docs, "ClusterRole", "aws-load-balancer-controller")["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["apiGroups"] == json!(["gateway.networking.k8s.io"]))
        .flat_map(|r| r["resources"].as_array().unwrap().clone())
        .filter(|r| r.as_str().unwrap().starts_with("listenersets"))
        .count();
    assert_eq!(listenersets, 3, "listenersets, their finalizers and status");

    let deployment = find(&docs, "Deployment", "aws-load-balancer-controller");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "public.ecr.aws/eks/aws-load-balancer-controller:v3.7.0"
    );
    assert_eq!(run.json()["patch"]["controllerVersion"], "v3.7.0");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let pdb = find(&docs, "PodDisruptionBudget", "aws-load-balancer-controller");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["metadata"]["namespace"], "kube-system");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    let selected = pdb["spec"]["selector"]["matchLabels"].as_object().unwrap();
    assert!(!selected.is_empty());
    for (k, v) in selected {
        assert_eq!(&labels[k], v, "the budget selects the controller's pods");
    }
    let spread = &deployment["spec"]["template"]["spec"]["topologySpreadConstraints"];
    assert_eq!(spread.as_array().unwrap().len(), 1);
    assert_eq!(spread[0]["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(spread[0]["whenUnsatisfiable"], "ScheduleAnyway");
    assert_eq!(spread[0]["maxSkew"], 1);
    for (k, v) in spread[0]["labelSelector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&labels[k], v);
    }

    // Ten years, CA and serving certificate alike.
    let record = &run.json()["patch"]["webhookCertificate"];
    let now = chrono::Utc::now();
    for pem in [&record["certPem"], &record["caPem"]] {
        let (from, to) = validity(pem.as_str().unwrap());
        assert!(to - from >= chrono::Duration::days(3652), "{from} {to}");
        assert!(to - now >= chrono::Duration::days(3651), "{to}");
    }
    assert!(record.get("previousCaPem").is_none());

    // The webhook configurations are applied before the Secret (a new CA is trusted before
    // the certificate it signed is served).
    let names: Vec<String> = run.json()["patch"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    let at = |n: &str| names.iter().position(|x| x == n).unwrap();
    assert!(at("02-webhook.yaml") < at("03-webhook-secret.yaml"));
    assert!(at("03-webhook-secret.yaml") < at("04-controller.yaml"));
}

fn der_of(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn validity(pem: &str) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let der = der_of(pem);
    let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
    (
        chrono::DateTime::from_timestamp(x509.validity().not_before.timestamp(), 0).unwrap(),
        chrono::DateTime::from_timestamp(x509.validity().not_after.timestamp(), 0).unwrap(),
    )
}

/// The PEM certificates of a base64 caBundle.
fn bundle_certs(bundle: &Value) -> Vec<String> {
    unb64(bundle)
        .split_inclusive("-----END CERTIFICATE-----")
        .map(|c| c.trim().to_owned())
        .filter(|c| c.starts_with("-----BEGIN CERTIFICATE-----"))
        .collect()
}

/// True when the API server, trusting `bundle`, accepts `cert_pem` as the webhook's certificate.
fn accepted(bundle: &[String], cert_pem: &str) -> bool {
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    let anchors_der: Vec<CertificateDer> = bundle
        .iter()
        .map(|c| CertificateDer::from(der_of(c)))
        .collect();
    let anchors: Vec<_> = anchors_der
        .iter()
        .map(|c| webpki::anchor_from_trusted_cert(c).unwrap())
        .collect();
    let cert = CertificateDer::from(der_of(cert_pem));
    let end = webpki::EndEntityCert::try_from(&cert).unwrap();
    end.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .is_ok()
        && end
            .verify_is_valid_for_subject_name(
                &ServerName::try_from("aws-load-balancer-webhook-service.kube-system.svc").unwrap(),
            )
            .is_ok()
}

/// A certificate with less than a year left is renewed with a new CA; the webhooks' caBundle
/// trusts the old CA and the new one, so the API server accepts the certificate the running pods
/// still serve and the one they pick up next: no webhook call is refused during the change.
#[test]
fn a_certificate_close_to_expiry_is_rotated_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (first, out) = first_render(dir.path());
    // Make the recorded pair one of nine and a half years ago (half a year left).
    let old =
        eks_patch::tls::make(chrono::Utc::now() - chrono::Duration::days(9 * 365 + 180)).unwrap();
    std::fs::write(out.join(".webhook-tls/tls.key"), &old.key_pem).unwrap();
    let mut input = first.json();
    input["patch"]["webhookCertificate"] = serde_json::to_value(&old.record).unwrap();

    let rotated = run_in(dir.path(), &["--out", "out"], &input.to_string());
    assert_exit(&rotated, 0);
    assert!(
        rotated.stderr.contains("making a new webhook certificate")
            && rotated.stderr.contains("carries the previous CA as well"),
        "{}",
        rotated.stderr
    );
    let record = rotated.json()["patch"]["webhookCertificate"].clone();
    let new_cert = record["certPem"].as_str().unwrap().to_owned();
    assert_ne!(new_cert, old.record.cert_pem);
    let (_, to) = validity(&new_cert);
    assert!(to - chrono::Utc::now() >= chrono::Duration::days(3651));
    assert!(record["previousCaUntil"].as_str().unwrap().ends_with('Z'));
    let docs = all_docs(&out);
    let secret = find(&docs, "Secret", "aws-load-balancer-tls");
    assert_eq!(unb64(&secret["data"]["tls.crt"]), new_cert);
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        for hook in find(&docs, kind, "aws-load-balancer-webhook")["webhooks"]
            .as_array()
            .unwrap()
        {
            let bundle = bundle_certs(&hook["clientConfig"]["caBundle"]);
            assert_eq!(bundle.len(), 2, "{hook}");
            assert!(
                accepted(&bundle, &old.record.cert_pem),
                "the old certificate"
            );
            assert!(accepted(&bundle, &new_cert), "the new certificate");
        }
    }
    kubernetes_validate(&rendered_files(&out)).unwrap();

    // Rendered again: the same files (the old CA stays until previousCaUntil).
    let again = run_in(dir.path(), &["--out", "out"], &rotated.stdout);
    assert_exit(&again, 0);
    assert_eq!(
        again.json()["patch"]["files"],
        rotated.json()["patch"]["files"]
    );

    // Before this change a renewal gave a caBundle of the new CA alone: the certificate the
    // pods still serve would then be refused. The bundle of a fresh cluster holds one CA.
    let other = tempfile::tempdir().unwrap();
    let (_, other_out) = first_render(other.path());
    let other_docs = all_docs(&other_out);
    let config = find(
        &other_docs,
        "ValidatingWebhookConfiguration",
        "aws-load-balancer-webhook",
    );
    let fresh = bundle_certs(&config["webhooks"][0]["clientConfig"]["caBundle"]);
    assert_eq!(fresh.len(), 1);
    assert!(!accepted(&fresh, &old.record.cert_pem));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rendered_manifest_passes_a_server_side_dry_run_of_the_real_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = first_render(dir.path());
    let cluster = testbed::controlplane::ControlPlane::start();
    let kubeconfig = cluster.kubeconfig();
    // What later documents need to exist: the CRDs (their kinds are then served) and the
    // namespaces, made for real; everything is then dry-run on the server, which runs its
    // validation, defaulting and admission on each object without storing it.
    let crds = out.join("00-crds.yaml");
    let made = testbed::run::kubectl(&kubeconfig, &["apply", "-f", crds.to_str().unwrap()]);
    testbed::run::assert_exit(&made, 0);
    let waited = testbed::run::kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ],
    );
    testbed::run::assert_exit(&waited, 0);
    for doc in all_docs(&out).iter().filter(|d| d["kind"] == "Namespace") {
        let name = doc["metadata"]["name"].as_str().unwrap();
        let created = testbed::run::kubectl(&kubeconfig, &["create", "namespace", name]);
        testbed::run::assert_exit(&created, 0);
    }
    let files = rendered_files(&out);
    assert!(files.len() >= 8, "{files:?}");
    for file in &files {
        let dry = testbed::run::kubectl(
            &kubeconfig,
            &[
                "apply",
                "--dry-run=server",
                "--server-side",
                "--field-manager=eks-deploy",
                "-f",
                file.to_str().unwrap(),
            ],
        );
        assert_eq!(
            dry.code,
            0,
            "{}: {}{}",
            file.display(),
            dry.stdout,
            dry.stderr
        );
        assert!(
            dry.stdout.contains("(server dry run)"),
            "{}: {}",
            file.display(),
            dry.stdout
        );
    }
}

#[test]
fn the_alb_goes_in_the_clusters_public_subnets() {
    let dir = tempfile::tempdir().unwrap();
    let mut with_subnets = state();
    with_subnets["cluster"]["publicSubnetIds"] = json!(["subnet-0aaa", "subnet-0bbb"]);
    let run = run_in(dir.path(), &["--out", "out"], &with_subnets.to_string());
    assert_exit(&run, 0);
    assert_eq!(
        run.json()["patch"]["albSubnetIds"],
        json!(["subnet-0aaa", "subnet-0bbb"])
    );
    let ingress = find(
        &all_docs(&dir.path().join("out")),
        "Ingress",
        "2048-ingress",
    )
    .clone();
    assert_eq!(
        ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/subnets"],
        "subnet-0aaa,subnet-0bbb",
        "{ingress}"
    );

    // A VPC given on the command line that is not the cluster's: its subnets are not known,
    // and the controller discovers them (with a warning).
    let other = tempfile::tempdir().unwrap();
    let run = run_in(
        other.path(),
        &["--out", "out", "--vpc-id", "vpc-0fedcba9876543210"],
        &with_subnets.to_string(),
    );
    assert_exit(&run, 0);
    assert!(run.json()["patch"].get("albSubnetIds").is_none());
    assert!(
        run.stderr.contains("kubernetes.io/role/elb"),
        "{}",
        run.stderr
    );
    let ingress = find(
        &all_docs(&other.path().join("out")),
        "Ingress",
        "2048-ingress",
    )
    .clone();
    assert!(
        ingress["metadata"]["annotations"]
            .get("alb.ingress.kubernetes.io/subnets")
            .is_none(),
        "{ingress}"
    );
}
