//! Running a binary under test and reading what it did.

use std::path::Path;

use serde_json::Value;

/// What a run of a binary gave.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// From a finished process (killed by a signal: code -1).
    pub fn from_output(output: std::process::Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// stdout as the one JSON document it must be.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `command` with `stdin`.
pub fn run(command: &mut assert_cmd::Command, stdin: &str) -> Run {
    Run::from_output(
        command
            .write_stdin(stdin)
            .output()
            .expect("the binary runs"),
    )
}

/// Fails the test, showing both streams, unless the run ended with `code`.
pub fn assert_exit(run: &Run, code: i32) {
    assert_eq!(
        run.code, code,
        "exit code\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
}

/// The step contract: `main.rs` (under `manifest_dir`) opens with a `//!` block holding a
/// `stdin/stdout:` and an `Exit codes:` paragraph and the block `cargo xtask gen` fills with the
/// IAM permissions (from `eks_preflight::actions`; the xtask test `generated_files_are_current`
/// fails while it is stale); and `--help` of `bin` lists every flag of [`common::CommonArgs`]
/// (the step flattens them into its command line).
pub fn check_contract(manifest_dir: &str, bin: &str) {
    let text =
        std::fs::read_to_string(Path::new(manifest_dir).join("src/main.rs")).expect("src/main.rs");
    assert!(text.starts_with("//!"), "main.rs opens with a //! block");
    let doc: Vec<&str> = text.lines().take_while(|l| l.starts_with("//!")).collect();
    for head in ["//! stdin/stdout:", "//! Exit codes:"] {
        assert!(
            doc.iter().any(|l| l.starts_with(head)),
            "main.rs's //! block has no paragraph starting `{head}`"
        );
    }
    for marker in ["//! <!-- generated:iam -->", "//! <!-- /generated:iam -->"] {
        assert!(
            doc.contains(&marker),
            "main.rs's //! block lacks `{marker}` (run `cargo xtask gen` once it has both lines)"
        );
    }
    let help = assert_cmd::Command::new(bin)
        .arg("--help")
        .output()
        .expect("--help runs");
    let help = String::from_utf8_lossy(&help.stdout);
    let shared = shared_flags();
    assert!(shared.len() >= 8, "the shared flags: {shared:?}");
    for flag in shared {
        assert!(help.contains(&flag), "--help lacks {flag}: {help}");
    }
}

/// The long flags of [`common::CommonArgs`], as clap defines them.
pub fn shared_flags() -> Vec<String> {
    use clap::Args;
    common::CommonArgs::augment_args(clap::Command::new("shared"))
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(|long| format!("--{long}"))
        .collect()
}

/// Runs the real kubectl (`tools/kubectl/kubectl`, `make kubectl`) with `--kubeconfig
/// kubeconfig` and `args`; panics with the way to get it when it is missing.
pub fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> Run {
    let path = crate::repo_root().join("tools/kubectl/kubectl");
    assert!(
        path.is_file(),
        "{} is missing: run `make kubectl` (make test does)",
        path.display()
    );
    let mut command = assert_cmd::Command::new(path);
    command.arg("--kubeconfig").arg(kubeconfig).args(args);
    run(&mut command, "")
}
