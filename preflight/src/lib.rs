//! `eks-preflight`: read-only checks that the pipeline can run here, before it makes anything.
//! See `main.rs` for what is checked and the exit codes.

use std::path::Path;

use serde_json::json;

pub mod actions;
pub mod checks;
pub mod cli;
pub mod leftovers;
pub mod principal;
pub mod report;

pub use cli::{Args, Cli, Command};
pub use report::{Check, Report, Status};

/// The step binaries the pipeline runs, expected in the folder of `eks-preflight`: those of the
/// step registry ([`common::steps::STEPS`]), in install order.
pub const STEP_BINARIES: [&str; common::steps::STEPS.len()] = {
    let mut names = [""; common::steps::STEPS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = common::steps::STEPS[i].binary;
        i += 1;
    }
    names
};

/// The cluster name the pipeline uses unless told otherwise (the Makefile's `CLUSTER`).
pub const DEFAULT_CLUSTER: &str = "eks-fargate";

/// `eks-preflight leftovers`: the region and credentials checked (bad input: exit 2, with the
/// reason on stderr), then every listing of [`leftovers::find`]; what to print on stdout and
/// the exit code.
pub async fn run_leftovers(args: &Args) -> (String, u8) {
    if let Err(why) = common::names::check_cluster_name(&args.cluster) {
        tracing::error!(
            "`{}` is not an EKS cluster name: {why}; pass --cluster with a valid name",
            args.cluster
        );
        return (String::new(), 2);
    }
    let environment = common::aws::environment_region(args.profile.as_deref()).await;
    let region =
        match common::aws::pick_region(args.region.as_deref(), None, environment.as_deref()) {
            Ok((region, _)) => region,
            Err(e) => {
                tracing::error!("{e}");
                return (String::new(), 2);
            }
        };
    let sdk = common::aws::load_config(&region, args.profile.as_deref()).await;
    let context = common::Context::new(&region, sdk, false);
    if let Err(e) = context.check_credentials().await {
        tracing::error!("{e}");
        return (String::new(), 2);
    }
    let found = leftovers::find(&context.aws, &args.cluster, &region).await;
    for left in &found.leftovers {
        tracing::debug!("{} {} is left: {}", left.kind, left.id, left.why);
    }
    let text = if args.json {
        found.to_json()
    } else {
        found.to_text()
    };
    (text, found.exit_code())
}

/// Runs every check and returns the report (it never fails: a failure is a check's result).
pub async fn run(args: &Args) -> Report {
    let mut report = Report::new(&args.cluster);
    report.push(binaries_check(&own_folder()));

    if let Err(why) = common::names::check_cluster_name(&args.cluster) {
        report.push(
            Check::fail(
                "cluster",
                format!("`{}` is not an EKS cluster name: {why}", args.cluster),
            )
            .fix("pass --cluster with a valid name"),
        );
        report.usage_error = true;
        return report;
    }

    let environment = common::aws::environment_region(args.profile.as_deref()).await;
    let (region, check) = region_check(args.region.as_deref(), environment.as_deref());
    report.push(check);
    let Some(region) = region else {
        report.usage_error = true;
        return report;
    };
    report.region = Some(region.clone());

    checks::aws_checks(&mut report, &region, args.profile.as_deref(), &args.cluster).await;
    report
}

/// The folder of the running binary (where the step binaries are built next to it).
fn own_folder() -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| ".".into())
}

/// The step binaries in `dir`: present and executable.
pub fn binaries_check(dir: &Path) -> Check {
    let mut missing = Vec::new();
    let mut not_executable = Vec::new();
    for name in STEP_BINARIES {
        let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {
                if !is_executable(&meta) {
                    not_executable.push(name);
                }
            }
            _ => missing.push(name),
        }
    }
    let data = json!({
        "folder": dir.display().to_string(),
        "missing": missing,
        "notExecutable": not_executable,
    });
    if missing.is_empty() && not_executable.is_empty() {
        return Check::ok(
            "binaries",
            format!("{} in {}", STEP_BINARIES.join(", "), dir.display()),
        )
        .data(data);
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing {}", missing.join(", ")));
    }
    if !not_executable.is_empty() {
        problems.push(format!("not executable {}", not_executable.join(", ")));
    }
    Check::fail(
        "binaries",
        format!("{} in {}", problems.join("; "), dir.display()),
    )
    .fix("build them next to eks-preflight: `make build` (or `cargo build --bins`)")
    .data(data)
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    true
}

/// The region by precedence (flag, then environment/profile) with a valid name and its check;
/// no region (and a failed check) is a usage error.
pub fn region_check(flag: Option<&str>, environment: Option<&str>) -> (Option<String>, Check) {
    match common::aws::pick_region(flag, None, environment) {
        Ok((region, source)) => {
            let from = match source {
                common::aws::RegionSource::Flag => "--region",
                _ => "AWS_REGION / the profile",
            };
            let partition = common::aws::partition(&region);
            let check = Check::ok("region", format!("{region} (from {from})"))
                .data(json!({"region": region, "source": from, "partition": partition}));
            (Some(region), check)
        }
        Err(err) => (
            None,
            Check::fail("region", err.to_string())
                .fix("pass --region (the Makefile passes REGION=us-east-2 by default)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_found_missing_or_not_executable() {
        assert!(STEP_BINARIES.iter().copied().eq(common::steps::binaries()));
        let dir = tempfile::tempdir().unwrap();
        let none = binaries_check(dir.path());
        assert_eq!(none.status, Status::Fail);
        assert!(
            none.message
                .starts_with("missing eks-cluster, eks-oidc, irsa")
        );
        assert!(none.fix.unwrap().contains("make build"));

        for name in STEP_BINARIES {
            std::fs::write(dir.path().join(name), "#!/bin/sh\n").unwrap();
        }
        #[cfg(unix)]
        {
            let not_exec = binaries_check(dir.path());
            assert_eq!(not_exec.status, Status::Fail);
            assert!(
                not_exec.message.starts_with("not executable eks-cluster"),
                "{}",
                not_exec.message
            );
            use std::os::unix::fs::PermissionsExt;
            for name in STEP_BINARIES {
                let path = dir.path().join(name);
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        let all = binaries_check(dir.path());
        assert_eq!(all.status, Status::Ok, "{}", all.message);
        std::fs::remove_file(dir.path().join("eks-deploy")).unwrap();
        let one = binaries_check(dir.path());
        assert!(
            one.message.starts_with("missing eks-deploy in "),
            "{}",
            one.message
        );
    }

    #[test]
    fn regions_resolve_or_are_usage_errors() {
        let (region, check) = region_check(Some("eu-west-1"), Some("us-east-2"));
        assert_eq!(region.as_deref(), Some("eu-west-1"));
        assert_eq!(check.message, "eu-west-1 (from --region)");
        let (region, check) = region_check(None, Some("us-east-2"));
        assert_eq!(region.as_deref(), Some("us-east-2"));
        assert!(check.message.contains("AWS_REGION"));
        let (region, missing) = region_check(None, None);
        assert_eq!(region, None);
        assert_eq!(missing.status, Status::Fail);
        assert!(
            missing.message.contains("no AWS region"),
            "{}",
            missing.message
        );
        let (region, bad) = region_check(Some("useast2"), None);
        assert_eq!(region, None);
        assert!(bad.message.contains("useast2"), "{}", bad.message);
    }
}
