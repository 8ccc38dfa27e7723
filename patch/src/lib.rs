//! `eks-patch`: renders the Kubernetes manifests of the AWS Load Balancer Controller and the
//! 2048 app with the cluster's facts (name, region, VPC, ALB security group, IAM role) and the
//! webhook's TLS, into a directory that `eks-deploy` applies in file-name order. Offline: it
//! makes no AWS call.

pub mod cli;
pub mod error;
pub mod render;
pub mod tls;

use std::path::{Path, PathBuf};

use common::step::Context;
use common::{ClusterFacts, State};
use serde_json::Map;
use sha2::Digest;

use crate::render::{Facts, Seen, TlsFiles};
use crate::tls::CaBundle;

pub use error::{Error, Usage};

/// This step's section of the state document.
pub const SECTION: &str = common::sections::patch::KEY;
/// The default output directory, as the seed named it.
pub const DEFAULT_OUT: &str = "patched";

/// Flags of `eks-patch`.
#[derive(Debug, Clone, clap::Args)]
pub struct PatchArgs {
    /// EKS cluster name (else the state's `cluster.name`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The cluster's VPC (else the state's `cluster.vpcId`, then `sgStack.vpcId`).
    #[arg(long, value_name = "VPC_ID")]
    pub vpc_id: Option<String>,
    /// The ALB security group (else the state's `sgStack.securityGroupId`).
    #[arg(long, value_name = "SG_ID")]
    pub security_group_id: Option<String>,
    /// The controller's IAM role (else the state's `irsa` entry for aws-load-balancer-controller).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Render the manifests of DIR (an edited copy of the repository's `manifests/`) instead of
    /// the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Where to write the rendered files.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// More manifests of your own: the seed's placeholders (CLUSTER_NAME, REGION, VPC_ID, SG_ID,
    /// ROLE_ARN) are replaced in their text; written after the set under their own names.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The `patch` section and its file records: their one model lives in
/// `common::sections::patch`.
pub use common::sections::patch::{FileRecord, Section};

/// A file to write: its name in the output directory, its text, and whether it is private.
#[derive(Debug, Clone)]
pub struct OutFile {
    pub name: String,
    pub text: String,
    pub private: bool,
}

/// The whole rendered set, in memory.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub files: Vec<OutFile>,
    /// Files an earlier render wrote into the same directory that this set no longer has.
    pub stale: Vec<String>,
    pub key_pem: String,
    pub section: Section,
}

/// Reads the facts, renders everything into memory, then writes it (unless `--dry-run`) and
/// records the `patch` section.
pub async fn run(state: &mut State, ctx: &Context, args: &PatchArgs) -> Result<(), Error> {
    let rendered = render_all(state, &ctx.region, args, chrono::Utc::now())?;
    if ctx.dry_run {
        for file in &rendered.files {
            tracing::info!(
                "would write {} ({} bytes, sha256 {}{})",
                args.out.join(&file.name).display(),
                file.text.len(),
                sha256(&file.text),
                if file.private { ", mode 0600" } else { "" }
            );
        }
        for name in &rendered.stale {
            tracing::info!("would remove {}", args.out.join(name).display());
        }
        tracing::info!(
            "would keep the webhook key in {} (mode 0600)",
            args.out.join(tls::KEY_DIR).join(tls::KEY_FILE).display()
        );
        return Ok(());
    }
    write_all(&args.out, &rendered)?;
    tracing::info!(
        "rendered {} files into {} for cluster {} (controller {})",
        rendered.files.len(),
        args.out.display(),
        rendered.section.cluster_name,
        rendered.section.controller_version
    );
    state.set_section(SECTION, &rendered.section);
    Ok(())
}

/// Everything `run` writes, made in memory from the state, the flags and the manifests.
pub fn render_all(
    state: &State,
    region: &str,
    args: &PatchArgs,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Rendered, Error> {
    let facts = facts(state, region, args)?;
    // The previous render, for the certificate to reuse; one this version cannot read is
    // replaced (with a new certificate), not refused.
    let previous: Option<Section> = state.section(SECTION).unwrap_or_else(|e| {
        tracing::warn!("ignoring the state's earlier `patch` section: {e}");
        None
    });

    let (sources, version) = match &args.manifests {
        Some(dir) => read_dir(dir)?,
        None => (
            render::EMBEDDED
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
            render::EMBEDDED_VERSION.trim().to_owned(),
        ),
    };
    let facts = Facts { version, ..facts };
    let mut users = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|source| Usage::Read {
            path: path.clone(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        users.push((name, text));
    }

    let key_path = args.out.join(tls::KEY_DIR).join(tls::KEY_FILE);
    let recorded = previous.as_ref().map(|p| &p.webhook_certificate);
    let pair = tls::reuse_or_make(recorded, &key_path, now)?;
    let tls_files = TlsFiles {
        ca_pem: pair.record.ca_pem.clone(),
        ca_bundle_pem: pair.record.ca_bundle(now),
        cert_pem: pair.record.cert_pem.clone(),
        key_pem: pair.key_pem.clone(),
    };

    let mut files: Vec<OutFile> = Vec::new();
    let mut seen = Seen::default();
    for (name, text) in &sources {
        let before = seen;
        let rendered = render::render_file(name, text, &facts, &tls_files, &mut seen)?;
        files.push(OutFile {
            name: name.clone(),
            text: rendered,
            private: seen.secret && !before.secret,
        });
    }
    for (ok, what) in [
        (
            seen.controller,
            "controller Deployment kube-system/aws-load-balancer-controller",
        ),
        (
            seen.secret,
            "webhook Secret kube-system/aws-load-balancer-tls",
        ),
        (
            seen.webhooks > 0,
            "webhook configuration using aws-load-balancer-webhook-service",
        ),
    ] {
        if !ok {
            return Err(Usage::Missing { what }.into());
        }
    }
    for (name, text) in users {
        let private = text.contains("kind: Secret");
        files.push(OutFile {
            name,
            text: render::replace_placeholders(&text, &facts),
            private,
        });
    }
    let mut names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Usage::Duplicate {
            name: w[0].to_owned(),
        }
        .into());
    }

    // Files of the previous render into the same directory that this set no longer has.
    let stale = previous
        .as_ref()
        .filter(|p| Path::new(&p.output_dir) == args.out)
        .map(|p| {
            p.files
                .iter()
                .map(|f| f.name.clone())
                .filter(|n| !n.contains('/') && !n.starts_with('.'))
                .filter(|n| !files.iter().any(|f| &f.name == n))
                .collect()
        })
        .unwrap_or_default();
    let extra = previous.map(|p| p.extra).unwrap_or_default();
    let section = Section {
        output_dir: args.out.display().to_string(),
        controller_version: facts.version.clone(),
        cluster_name: facts.cluster.clone(),
        region: facts.region.clone(),
        vpc_id: facts.vpc_id.clone(),
        security_group_id: facts.security_group_id.clone(),
        role_arn: facts.role_arn.clone(),
        alb_subnet_ids: facts.alb_subnets.clone(),
        files: files
            .iter()
            .map(|f| FileRecord {
                name: f.name.clone(),
                sha256: sha256(&f.text),
                extra: Map::new(),
            })
            .collect(),
        webhook_certificate: pair.record,
        extra,
    };
    Ok(Rendered {
        files,
        stale,
        key_pem: pair.key_pem,
        section,
    })
}

fn facts(state: &State, region: &str, args: &PatchArgs) -> Result<Facts, Error> {
    // The whole section, also one without a name (its vpcId counts, as it always did).
    let known = ClusterFacts::any(state)?;
    let sg_stack = common::sections::sg_stack::Facts::read(state)?.unwrap_or_default();
    // The sgStack section's cluster only stands in when neither the flag nor the state's
    // cluster names one; it is not held against --cluster.
    let also = match args.cluster {
        Some(_) => None,
        None => sg_stack.cluster_name.as_deref(),
    };
    let picked = match common::cluster::pick_in(args.cluster.as_deref(), state, also) {
        Err(mismatch @ common::cluster::PickError::Mismatch { .. }) => {
            return Err(Usage::from(mismatch).into());
        }
        other => other,
    };
    if !known.region.is_empty() && known.region != region {
        return Err(Usage::OtherRegion {
            region: region.to_owned(),
            known: known.region,
        }
        .into());
    }
    let cluster = picked.map_err(Usage::from)?;
    let vpc_id = args
        .vpc_id
        .clone()
        .or(known.vpc_id.clone())
        .or(sg_stack.vpc_id)
        .filter(|v| !v.is_empty())
        .ok_or(Usage::NoVpc)?;
    check_id("--vpc-id", &vpc_id, "vpc-", "a VPC id (vpc-…)")?;
    let security_group_id = args
        .security_group_id
        .clone()
        .or(sg_stack.security_group_id)
        .filter(|v| !v.is_empty())
        .ok_or(Usage::NoSecurityGroup)?;
    check_id(
        "--security-group-id",
        &security_group_id,
        "sg-",
        "a security group id (sg-…)",
    )?;
    let role_arn = match &args.role_arn {
        Some(arn) => Some(arn.clone()),
        None => irsa_role(state)?,
    };
    if let Some(arn) = &role_arn
        && !(arn.starts_with("arn:") && arn.contains(":role/"))
    {
        return Err(Usage::BadValue {
            flag: "--role-arn",
            value: arn.clone(),
            what: "an IAM role ARN (arn:aws:iam::…:role/…)",
        }
        .into());
    }
    if role_arn.is_none() {
        tracing::warn!(
            "no IAM role for the controller (no --role-arn, no irsa entry for aws-load-balancer-controller): \
             the service account is rendered without eks.amazonaws.com/role-arn; run `irsa ensure` for it"
        );
    }
    // The ALB's subnets are the cluster's public ones, when they are of this VPC: in a shared
    // VPC the controller's discovery by tags may find none, or another team's.
    let alb_subnets = if known.vpc_id.as_deref() == Some(vpc_id.as_str()) {
        known.public_subnet_ids.clone()
    } else {
        Vec::new()
    };
    if alb_subnets.is_empty() {
        tracing::warn!(
            "no public subnets of {vpc_id} in the state: the controller discovers the ALB's subnets \
             by their tags (kubernetes.io/role/elb); run eks-cluster create with --public-subnets"
        );
    }
    Ok(Facts {
        cluster,
        region: region.to_owned(),
        vpc_id,
        security_group_id,
        role_arn,
        alb_subnets,
        version: String::new(),
    })
}

fn irsa_role(state: &State) -> Result<Option<String>, Error> {
    Ok(common::sections::irsa::role_arn_for(
        state,
        render::NAMESPACE,
        render::SERVICE_ACCOUNT,
    )?)
}

fn check_id(
    flag: &'static str,
    value: &str,
    prefix: &str,
    what: &'static str,
) -> Result<(), Usage> {
    let ok = value
        .strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(Usage::BadValue {
            flag,
            value: value.to_owned(),
            what,
        })
    }
}

/// The `*.yaml`/`*.yml` files of `dir` in name order, and `dir/VERSION` (else the built-in one).
fn read_dir(dir: &Path) -> Result<(Vec<(String, String)>, String), Usage> {
    let read_err = |source| Usage::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if (name.ends_with(".yaml") || name.ends_with(".yml")) && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(Usage::NoManifests {
            dir: dir.to_path_buf(),
        });
    }
    let mut files = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let text = std::fs::read_to_string(&path).map_err(|source| Usage::Read { path, source })?;
        files.push((name, text));
    }
    let version = match std::fs::read_to_string(dir.join("VERSION")) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => render::EMBEDDED_VERSION.trim().to_owned(),
    };
    Ok((files, version))
}

/// Hex SHA-256 of a text.
pub fn sha256(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes every file through a temporary file and a rename, so each one is whole; the set is
/// complete in memory before the first is written.
fn write_all(out: &Path, rendered: &Rendered) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let key_dir = out.join(tls::KEY_DIR);
    for dir in [out, key_dir.as_path()] {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::set_permissions(&key_dir, std::fs::Permissions::from_mode(0o700)).map_err(
        |source| Error::Write {
            path: key_dir.clone(),
            source,
        },
    )?;
    write_one(&key_dir.join(tls::KEY_FILE), &rendered.key_pem, 0o600)?;
    for file in &rendered.files {
        let mode = if file.private { 0o600 } else { 0o644 };
        write_one(&out.join(&file.name), &file.text, mode)?;
    }
    for name in &rendered.stale {
        let path = out.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!("removed {}, which the set no longer has", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Write { path, source }),
        }
    }
    Ok(())
}

fn write_one(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    common::step::write_atomically(path, text, mode).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}
