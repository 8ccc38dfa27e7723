//! The pipeline definitions in `ci/`, checked with real third-party validators and for what the
//! design asks beyond the schema (OIDC credentials and no keys, pinned actions, every GitLab
//! stage has a job and every `needs` exists). Their jobs, one per step in registry order with the
//! state passed on and the teardown reversed, are generated from the step registry by `cargo
//! xtask gen` (xtask's `generated_files_are_current` fails when a file is stale).
//!
//! - GitHub workflows (`ci/*.yml` except `gitlab*`): `action-validator` (npm
//!   `@action-validator/cli`, installed into `tools/node/` by `tools/setup-node.sh`), which
//!   checks them against the workflow schema; plus a workflow it must reject, so the check can fail.
//! - GitLab (`ci/gitlab*.yml`): `check-jsonschema` (PyPI, in the venv) with its vendored GitLab CI
//!   schema, a bad file it must reject, and a YAML walk: every stage has a job, every `needs`
//!   exists.
//!
//! A missing validator fails the test with the way to install it; nothing is skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use testbed::repo_root;

fn ci_files() -> Vec<PathBuf> {
    let dir = repo_root().join("ci");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a ci/ entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
        .collect();
    files.sort();
    files
}

fn is_gitlab(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("gitlab"))
}

fn github_workflows() -> Vec<PathBuf> {
    let files: Vec<PathBuf> = ci_files().into_iter().filter(|p| !is_gitlab(p)).collect();
    assert!(!files.is_empty(), "no GitHub workflow in ci/");
    files
}

fn gitlab_files() -> Vec<PathBuf> {
    ci_files().into_iter().filter(|p| is_gitlab(p)).collect()
}

/// `action-validator` from `tools/node/` (or `EKS_FA_NODE_DIR`); panics with the way to install it.
fn action_validator() -> PathBuf {
    let dir = std::env::var_os("EKS_FA_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tools/node"));
    let path = dir.join("node_modules/.bin/action-validator");
    assert!(
        path.is_file(),
        "{} is missing: `make test` installs it (tools/setup-node.sh, which needs npm and node)",
        path.display()
    );
    path
}

fn run(program: &Path, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
}

fn validate_workflow(path: &Path) -> Output {
    run(&action_validator(), &[path.as_os_str()])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn yaml(path: &Path) -> Value {
    let source =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&source)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

#[test]
fn github_workflows_pass_action_validator() {
    for path in github_workflows() {
        let out = validate_workflow(&path);
        assert!(
            out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
            "action-validator rejects {} ({}):\n{}{}",
            path.display(),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// The same validator rejects a broken workflow, with the errors as JSON: the check can fail.
#[test]
fn action_validator_rejects_a_broken_workflow() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cases = [
        (
            "unknown top-level key",
            "name: x\non: push\nstagez: [a]\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n",
            "stagez",
        ),
        (
            "job without runs-on",
            "name: x\non: push\njobs:\n  a:\n    steps:\n      - run: echo hi\n",
            "/jobs/a/runs-on",
        ),
    ];
    for (what, workflow, named) in cases {
        let path = dir.path().join("broken.yml");
        std::fs::write(&path, workflow).expect("write the workflow");
        let out = validate_workflow(&path);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: accepted ({})",
            out.status
        );
        let report: Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|e| panic!("{what}: no JSON report ({e}):\n{}", text(&out.stderr)));
        assert!(
            report["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{what}: no errors in {report}"
        );
        assert!(
            report.to_string().contains(named),
            "{what}: the report does not name {named}: {report}"
        );
    }
}

/// What the schema cannot see: OIDC credentials and no keys, every action pinned, the teardown
/// only when asked for. (Which job takes the role follows from the registry: xtask's template.)
#[test]
fn github_workflow_uses_oidc_and_pinned_actions() {
    let path = repo_root().join("ci/github-actions.yml");
    let source = std::fs::read_to_string(&path).expect("ci/github-actions.yml");
    let doc = yaml(&path);
    assert!(doc["env"]["CLUSTER"].is_string() && doc["env"]["AWS_REGION"].is_string());
    assert_eq!(doc["permissions"]["id-token"], "write");
    assert_eq!(doc["permissions"]["contents"], "read");
    for key in [
        "aws-access-key-id",
        "aws-secret-access-key",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(
            !source.contains(key),
            "{key}: credentials come from the OIDC role"
        );
    }
    let jobs = &doc["jobs"];

    // Every action is pinned to a version, never a moving branch.
    let all_uses: BTreeSet<&str> = jobs
        .as_object()
        .expect("jobs")
        .values()
        .flat_map(|j| j["steps"].as_array().into_iter().flatten())
        .filter_map(|s| s["uses"].as_str())
        .collect();
    for action in &all_uses {
        let (_, version) = action
            .split_once('@')
            .unwrap_or_else(|| panic!("{action} is not pinned"));
        assert!(
            version.starts_with('v') || version == "stable",
            "{action} is not pinned to a version"
        );
    }
    assert_eq!(jobs["teardown"]["if"], "inputs.action == 'teardown'");
}

fn check_jsonschema(path: &Path) -> Output {
    let tool = testbed::venv_tool("check-jsonschema");
    run(
        &tool,
        &[
            "--builtin-schema".as_ref(),
            "vendor.gitlab-ci".as_ref(),
            path.as_os_str(),
        ],
    )
}

#[test]
fn gitlab_files_pass_check_jsonschema() {
    for path in gitlab_files() {
        let out = check_jsonschema(&path);
        assert!(
            out.status.success(),
            "check-jsonschema rejects {} ({}):\n{}{}",
            path.display(),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn check_jsonschema_rejects_a_broken_gitlab_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join(".gitlab-ci.yml");
    std::fs::write(
        &path,
        "stages: [a]\njob:\n  stage: a\n  scripts: [echo hi]\n",
    )
    .expect("write");
    let out = check_jsonschema(&path);
    assert_eq!(out.status.code(), Some(1), "accepted ({})", out.status);
    assert!(
        text(&out.stdout).contains("scripts"),
        "{}",
        text(&out.stdout)
    );
}

/// Keywords of a GitLab CI file that are not jobs.
const GITLAB_KEYWORDS: [&str; 9] = [
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
];

#[test]
fn gitlab_stages_have_jobs_and_needs_exist() {
    for path in gitlab_files() {
        let doc = yaml(&path);
        let top = doc.as_object().expect("a mapping");
        let stages: Vec<&str> = doc["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .map(|s| s.as_str().expect("a stage name"))
            .collect();
        let jobs: Vec<(&String, &Value)> = top
            .iter()
            .filter(|(k, _)| !k.starts_with('.') && !GITLAB_KEYWORDS.contains(&k.as_str()))
            .collect();
        for stage in &stages {
            assert!(
                jobs.iter().any(|(_, j)| j["stage"] == *stage),
                "{}: stage {stage} has no job",
                path.display()
            );
        }
        let names: BTreeSet<&str> = jobs.iter().map(|(k, _)| k.as_str()).collect();
        for (name, job) in &jobs {
            let stage = job["stage"].as_str().unwrap_or("test");
            assert!(stages.contains(&stage), "job {name}: unknown stage {stage}");
            for need in job["needs"].as_array().into_iter().flatten() {
                let needed = need
                    .as_str()
                    .or_else(|| need["job"].as_str())
                    .expect("a job");
                assert!(
                    names.contains(needed),
                    "job {name} needs unknown job {needed}"
                );
            }
        }
        let source = std::fs::read_to_string(&path).expect("read");
        assert!(source.contains("id_tokens:") && source.contains("AWS_WEB_IDENTITY_TOKEN_FILE"));
        assert!(!source.contains("AWS_SECRET_ACCESS_KEY") && !source.contains("aws sts"));
    }
}
