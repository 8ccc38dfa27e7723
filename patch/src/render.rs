//! Rendering: the manifests parsed into values, the cluster's facts and the webhook TLS set on
//! the fields that carry them, then serialized again. User files given on the command line get
//! the seed's placeholder words replaced in their text instead, as `patch.sh` did.

use base64::Engine;
use serde_json::{Map, Value};

/// The manifests built into the binary, in apply order (`manifests/` of the repository).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("00-crds.yaml", include_str!("../../manifests/00-crds.yaml")),
    (
        "01-controller-rbac.yaml",
        include_str!("../../manifests/01-controller-rbac.yaml"),
    ),
    (
        "02-webhook.yaml",
        include_str!("../../manifests/02-webhook.yaml"),
    ),
    (
        "03-webhook-secret.yaml",
        include_str!("../../manifests/03-webhook-secret.yaml"),
    ),
    (
        "04-controller.yaml",
        include_str!("../../manifests/04-controller.yaml"),
    ),
    (
        "05-ingressclass.yaml",
        include_str!("../../manifests/05-ingressclass.yaml"),
    ),
    (
        "06-app-2048.yaml",
        include_str!("../../manifests/06-app-2048.yaml"),
    ),
    (
        "07-ingress-2048.yaml",
        include_str!("../../manifests/07-ingress-2048.yaml"),
    ),
];

/// `manifests/VERSION` as built in: the AWS Load Balancer Controller release the manifests are for.
pub const EMBEDDED_VERSION: &str = include_str!("../../manifests/VERSION");

/// The controller's image repository; the tag is the controller version.
pub const CONTROLLER_IMAGE: &str = "public.ecr.aws/eks/aws-load-balancer-controller";
/// The controller's namespace, service account, Deployment, webhook Service and TLS Secret.
pub const NAMESPACE: &str = "kube-system";
pub const SERVICE_ACCOUNT: &str = "aws-load-balancer-controller";
pub const DEPLOYMENT: &str = "aws-load-balancer-controller";
pub const WEBHOOK_SERVICE: &str = "aws-load-balancer-webhook-service";
pub const TLS_SECRET: &str = "aws-load-balancer-tls";
/// The annotation `irsa` puts on the service account.
pub const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The Ingress annotation naming the ALB's security groups.
pub const SG_ANNOTATION: &str = "alb.ingress.kubernetes.io/security-groups";
/// The Ingress annotation naming the ALB's subnets (else the controller discovers them by tags).
pub const SUBNETS_ANNOTATION: &str = "alb.ingress.kubernetes.io/subnets";

/// The seed's placeholder words (plus ROLE_ARN).
pub const PLACEHOLDERS: &[&str] = &["CLUSTER_NAME", "REGION", "VPC_ID", "SG_ID", "ROLE_ARN"];

/// What the manifests are rendered with.
#[derive(Debug, Clone)]
pub struct Facts {
    pub cluster: String,
    pub region: String,
    pub vpc_id: String,
    pub security_group_id: String,
    pub role_arn: Option<String>,
    /// The cluster's public subnets, the ALB's (empty: the controller discovers them).
    pub alb_subnets: Vec<String>,
    pub version: String,
}

/// The webhook TLS material, PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca_pem: String,
    /// What every webhook's `caBundle` carries: the CA, and during a rotation the one before.
    pub ca_bundle_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Why a manifest could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file} is not valid YAML: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: document {index} is not a Kubernetes object (no apiVersion/kind)")]
    NotAnObject { file: String, index: usize },
    #[error("{file}: cannot write YAML: {message}")]
    Serialize { file: String, message: String },
}

/// What the structural pass set, so that a manifest set lacking an expected object is noticed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    pub controller: bool,
    pub service_account: bool,
    pub secret: bool,
    pub webhooks: usize,
    pub ingresses: usize,
}

impl Seen {
    fn add(&mut self, other: Seen) {
        self.controller |= other.controller;
        self.service_account |= other.service_account;
        self.secret |= other.secret;
        self.webhooks += other.webhooks;
        self.ingresses += other.ingresses;
    }
}

/// Renders one manifest file: every document parsed, the facts set, serialized again.
pub fn render_file(
    file: &str,
    text: &str,
    facts: &Facts,
    tls: &TlsFiles,
    seen: &mut Seen,
) -> Result<String, RenderError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(text, parse_options())
        .map_err(|e| RenderError::Parse {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
    let mut out = Vec::new();
    for (index, mut doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        if kind(&doc).is_none() {
            return Err(RenderError::NotAnObject {
                file: file.to_owned(),
                index: index + 1,
            });
        }
        seen.add(set_facts(&mut doc, facts, tls));
        replace_in_strings(&mut doc, facts);
        out.push(doc);
    }
    let mut text = format!(
        "# Rendered by eks-patch from {file} for cluster {} in {}; edit the source and render again.\n",
        facts.cluster, facts.region
    );
    for doc in &out {
        let body = serde_saphyr::to_string(doc).map_err(|e| RenderError::Serialize {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        text.push_str("---\n");
        text.push_str(&body);
        if !body.ends_with('\n') {
            text.push('\n');
        }
    }
    Ok(text)
}

/// YAML as Kubernetes reads it: `0644` is octal (YAML 1.1), as kubectl takes a file mode.
fn parse_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    options
}

fn kind(doc: &Value) -> Option<&str> {
    doc.get("apiVersion")?.as_str()?;
    doc.get("kind")?.as_str()
}

fn name_of(doc: &Value) -> (&str, &str) {
    let meta = doc.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    (name, namespace)
}

/// Sets the facts on the fields that carry them; returns what it found.
fn set_facts(doc: &mut Value, facts: &Facts, tls: &TlsFiles) -> Seen {
    let mut seen = Seen::default();
    let kind = kind(doc).unwrap_or_default().to_owned();
    let (name, namespace) = name_of(doc);
    let (name, namespace) = (name.to_owned(), namespace.to_owned());
    match kind.as_str() {
        "Deployment" if name == DEPLOYMENT && namespace == NAMESPACE => {
            set_controller(doc, facts);
            seen.controller = true;
        }
        "ServiceAccount" if name == SERVICE_ACCOUNT && namespace == NAMESPACE => {
            let annotations = object_at(doc, &["metadata", "annotations"]);
            match &facts.role_arn {
                Some(arn) => {
                    annotations.insert(ROLE_ANNOTATION.into(), Value::from(arn.as_str()));
                }
                None => {
                    if annotations.get(ROLE_ANNOTATION).and_then(Value::as_str) == Some("ROLE_ARN")
                    {
                        annotations.shift_remove(ROLE_ANNOTATION);
                    }
                }
            }
            if annotations.is_empty()
                && let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.shift_remove("annotations");
            }
            seen.service_account = true;
        }
        "Secret" if name == TLS_SECRET && namespace == NAMESPACE => {
            let b64 = |s: &str| Value::from(base64::engine::general_purpose::STANDARD.encode(s));
            let data = object_at(doc, &["data"]);
            data.insert("ca.crt".into(), b64(&tls.ca_pem));
            data.insert("tls.crt".into(), b64(&tls.cert_pem));
            data.insert("tls.key".into(), b64(&tls.key_pem));
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("type".into(), Value::from("kubernetes.io/tls"));
            }
            seen.secret = true;
        }
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
            let ca = base64::engine::general_purpose::STANDARD.encode(&tls.ca_bundle_pem);
            if let Some(hooks) = doc.get_mut("webhooks").and_then(Value::as_array_mut) {
                for hook in hooks {
                    let ours = hook
                        .pointer("/clientConfig/service/name")
                        .and_then(Value::as_str)
                        == Some(WEBHOOK_SERVICE);
                    if ours
                        && let Some(config) =
                            hook.get_mut("clientConfig").and_then(Value::as_object_mut)
                    {
                        config.insert("caBundle".into(), Value::from(ca.as_str()));
                        seen.webhooks += 1;
                    }
                }
            }
        }
        "Ingress" => {
            let class = doc
                .pointer("/spec/ingressClassName")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let annotated = doc
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(SG_ANNOTATION))
                .is_some();
            if class.as_deref() == Some("alb") || annotated {
                let annotations = object_at(doc, &["metadata", "annotations"]);
                annotations.insert(
                    SG_ANNOTATION.into(),
                    Value::from(facts.security_group_id.as_str()),
                );
                if !facts.alb_subnets.is_empty() {
                    annotations.insert(
                        SUBNETS_ANNOTATION.into(),
                        Value::from(facts.alb_subnets.join(",")),
                    );
                }
                seen.ingresses += 1;
            }
        }
        _ => {}
    }
    seen
}

/// The controller's flags, and its image tag when the manifest leaves it to `manifests/VERSION`.
fn set_controller(doc: &mut Value, facts: &Facts) {
    let Some(containers) = doc
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for container in containers {
        let image = container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !image.contains("aws-load-balancer-controller") {
            continue;
        }
        if let Some(repo) = image.strip_suffix(":VERSION") {
            container["image"] = Value::from(format!("{repo}:{}", facts.version));
        }
        let Some(obj) = container.as_object_mut() else {
            continue;
        };
        let args = obj
            .entry("args")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !args.is_array() {
            *args = Value::Array(Vec::new());
        }
        let args = args.as_array_mut().expect("made an array above");
        for (flag, value) in [
            ("--cluster-name", facts.cluster.as_str()),
            ("--ingress-class", "alb"),
            ("--aws-region", facts.region.as_str()),
            ("--aws-vpc-id", facts.vpc_id.as_str()),
        ] {
            set_flag(args, flag, value, flag == "--ingress-class");
        }
    }
}

/// `flag=value` in `args`, replacing an earlier value; `keep` leaves a user's value alone.
fn set_flag(args: &mut Vec<Value>, flag: &str, value: &str, keep: bool) {
    let prefix = format!("{flag}=");
    let wanted = Value::from(format!("{flag}={value}"));
    match args.iter().position(|a| {
        a.as_str()
            .is_some_and(|s| s.starts_with(&prefix) || s == flag)
    }) {
        Some(_) if keep => {}
        Some(i) => args[i] = wanted,
        None => args.push(wanted),
    }
}

fn object_at<'a>(doc: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut here = doc;
    for key in path {
        if !here.is_object() {
            *here = Value::Object(Map::new());
        }
        here = here
            .as_object_mut()
            .expect("made an object above")
            .entry(*key)
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !here.is_object() {
        *here = Value::Object(Map::new());
    }
    here.as_object_mut().expect("made an object above")
}

/// Placeholder words left in string values (an edited copy with them elsewhere) are replaced
/// value by value.
fn replace_in_strings(value: &mut Value, facts: &Facts) {
    match value {
        Value::String(s) => {
            let replaced = replace_placeholders(s, facts);
            if replaced != *s {
                *s = replaced;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_in_strings(v, facts)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_in_strings(v, facts)),
        _ => {}
    }
}

/// The seed's placeholder words replaced where they stand as words (`AWS_REGION` stays).
pub fn replace_placeholders(text: &str, facts: &Facts) -> String {
    let mut out = text.to_owned();
    for word in PLACEHOLDERS {
        let value = match *word {
            "CLUSTER_NAME" => Some(facts.cluster.as_str()),
            "REGION" => Some(facts.region.as_str()),
            "VPC_ID" => Some(facts.vpc_id.as_str()),
            "SG_ID" => Some(facts.security_group_id.as_str()),
            _ => facts.role_arn.as_deref(),
        };
        if let Some(value) = value {
            out = replace_word(&out, word, value);
        }
    }
    out
}

fn replace_word(text: &str, word: &str, value: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + word.len()..].chars().next();
        let prev_ok = match before {
            Some(c) => !is_word(c),
            None => out.chars().next_back().is_none_or(|c| !is_word(c)),
        };
        out.push_str(&rest[..at]);
        if prev_ok && !after.is_some_and(is_word) {
            out.push_str(value);
        } else {
            out.push_str(word);
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            cluster: "demo".into(),
            region: "us-east-2".into(),
            vpc_id: "vpc-0123".into(),
            security_group_id: "sg-0abc".into(),
            role_arn: Some("arn:aws:iam::123456789012:role/r".into()),
            alb_subnets: vec!["subnet-a".into(), "subnet-b".into()],
            version: "v9.9.9".into(),
        }
    }

    fn tls() -> TlsFiles {
        TlsFiles {
            ca_pem: "CA".into(),
            ca_bundle_pem: "CA\nOLD CA\n".into(),
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
        }
    }

    #[test]
    fn words_are_replaced_only_as_words() {
        let f = facts();
        assert_eq!(
            replace_placeholders("--aws-region=REGION AWS_REGION REGIONS sg: SG_ID", &f),
            "--aws-region=us-east-2 AWS_REGION REGIONS sg: sg-0abc"
        );
        assert_eq!(
            replace_placeholders("CLUSTER_NAME/VPC_ID", &f),
            "demo/vpc-0123"
        );
    }

    #[test]
    fn every_embedded_manifest_renders_and_sets_the_facts() {
        let mut seen = Seen::default();
        let mut all = String::new();
        for (file, text) in EMBEDDED {
            all.push_str(&render_file(file, text, &facts(), &tls(), &mut seen).unwrap());
        }
        assert!(seen.controller && seen.service_account && seen.secret);
        assert_eq!(seen.webhooks, 6);
        assert_eq!(seen.ingresses, 1);
        for word in PLACEHOLDERS {
            assert!(!all.contains(word), "{word} left in the rendered set");
        }
        assert!(all.contains("--aws-vpc-id=vpc-0123"));
        assert!(all.contains("aws-load-balancer-controller:v9.9.9"));
        assert!(
            all.contains(&format!("{SUBNETS_ANNOTATION}: subnet-a,subnet-b")),
            "the ALB goes in the cluster's public subnets"
        );
        // Every caBundle carries the bundle (both CAs during a rotation); the Secret the CA.
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(all.matches(&b64("CA\nOLD CA\n")).count(), 6);
        assert!(all.contains(&format!("ca.crt: {}", b64("CA"))));
    }

    #[test]
    fn no_public_subnets_leaves_discovery_to_the_controller() {
        let facts = Facts {
            alb_subnets: Vec::new(),
            ..facts()
        };
        let (file, text) = EMBEDDED[7];
        let out = render_file(file, text, &facts, &tls(), &mut Seen::default()).unwrap();
        assert!(out.contains(SG_ANNOTATION), "{out}");
        assert!(!out.contains(SUBNETS_ANNOTATION), "{out}");
    }

    #[test]
    fn flags_are_replaced_not_repeated() {
        let mut args = vec![
            Value::from("--cluster-name=old"),
            Value::from("--ingress-class=custom"),
        ];
        set_flag(&mut args, "--cluster-name", "new", false);
        set_flag(&mut args, "--ingress-class", "alb", true);
        set_flag(&mut args, "--aws-region", "r", false);
        assert_eq!(
            args,
            [
                Value::from("--cluster-name=new"),
                Value::from("--ingress-class=custom"),
                Value::from("--aws-region=r")
            ]
        );
    }

    #[test]
    fn no_role_drops_the_placeholder_annotation() {
        let mut f = facts();
        f.role_arn = None;
        let text = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: aws-load-balancer-controller\n  namespace: kube-system\n  annotations:\n    eks.amazonaws.com/role-arn: ROLE_ARN\n";
        let out = render_file("sa.yaml", text, &f, &tls(), &mut Seen::default()).unwrap();
        assert!(!out.contains("role-arn"), "{out}");
    }

    #[test]
    fn numbers_stay_numbers_and_file_modes_are_octal() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  a: 0644\n  b: 420\n  c: \"0644\"\n  d: 1.5\n";
        let out = render_file("p.yaml", text, &facts(), &tls(), &mut Seen::default()).unwrap();
        let doc: Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(doc["spec"]["a"], Value::from(420));
        assert_eq!(doc["spec"]["b"], Value::from(420));
        assert_eq!(doc["spec"]["c"], Value::from("0644"));
        assert_eq!(doc["spec"]["d"], Value::from(1.5));
        // Strings a YAML 1.1 reader (kubectl) would take for booleans or numbers stay quoted.
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: \"on\"\n  b: \"yes\"\n  c: \"n\"\n  d: \"0x1F\"\n  e: \"1e3\"\n  f: \"~\"\n";
        let out = render_file("c.yaml", text, &facts(), &tls(), &mut Seen::default()).unwrap();
        for line in [
            "a: \"on\"",
            "b: \"yes\"",
            "c: \"n\"",
            "d: \"0x1F\"",
            "e: \"1e3\"",
            "f: \"~\"",
        ] {
            let bare = line.replace('"', "");
            assert!(
                out.contains(line) || out.contains(&line.replace('"', "'")),
                "{bare} quoted in {out}"
            );
        }
    }

    #[test]
    fn garbage_is_refused() {
        let err = render_file("x.yaml", "a: [", &facts(), &tls(), &mut Seen::default());
        assert!(matches!(err, Err(RenderError::Parse { .. })));
        let err = render_file(
            "x.yaml",
            "just: a map\n",
            &facts(),
            &tls(),
            &mut Seen::default(),
        );
        assert!(matches!(err, Err(RenderError::NotAnObject { .. })));
    }
}
