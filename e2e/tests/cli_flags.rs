//! The command-line pieces every binary shares, on the real binaries: `completions SHELL`
//! (every step binary and `eks-preflight`), and the shared `--kubeconfig`/`--context` of the
//! binaries that reach Kubernetes, taken before or after the subcommand and checked before
//! anything else. No AWS is needed: every run points AWS at a closed port, so any AWS call would
//! show in the error.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use eks_fa_e2e::bin_dir;

/// The binaries that reach Kubernetes, one subcommand that does (with what it needs besides),
/// and one that does not.
const KUBE_BINARIES: [(&str, &[&str], &str); 3] = [
    ("eks-cluster", &["create", "--cluster", "demo"], "delete"),
    (
        "irsa",
        &["ensure", "--cluster", "demo", "--sa-name", "app"],
        "list",
    ),
    ("eks-deploy", &["apply", "--cluster", "demo"], ""),
];

/// A state the runs must leave as it is.
const STATE: &str =
    "{\"schemaVersion\":1,\"cluster\":{\"name\":\"demo\",\"region\":\"us-east-2\"}}\n";

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(bin: &str, args: &[&str]) -> Out {
    let out = Command::new(bin_dir().join(bin))
        .args(args)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-2")
        .env_remove("AWS_PROFILE")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A kubeconfig with contexts `one` (current) and `two`, on a server nobody serves.
fn kubeconfig(dir: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:1\"}\n\
         users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: one\n  context: {cluster: c, user: u}\n\
         - name: two\n  context: {cluster: c, user: u}\ncurrent-context: one\n",
    )
    .unwrap();
    path
}

/// The subcommands of `bin`, from its `--help` (clap's `Commands:` list, without `help`).
fn subcommands(bin: &str) -> Vec<String> {
    let help = run(bin, &["--help"]).stdout;
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_binary_prints_completions_for_each_shell_reading_no_state() {
    let dir = tempfile::tempdir().unwrap();
    // Not a state document: a binary that read it would fail.
    let state = dir.path().join("state.json");
    std::fs::write(&state, "not json").unwrap();
    let binaries: Vec<&str> = common::steps::binaries().chain(["eks-preflight"]).collect();
    assert_eq!(binaries.len(), 7, "{binaries:?}");
    for bin in binaries {
        let commands = subcommands(bin);
        assert!(
            commands.iter().any(|c| c == "completions"),
            "{bin}: {commands:?}"
        );
        for shell in ["bash", "zsh", "fish"] {
            let mut args = vec!["completions", shell];
            if bin != "eks-preflight" {
                args = vec!["--state", state.to_str().unwrap(), "completions", shell];
            }
            let out = run(bin, &args);
            assert_eq!(out.code, Some(0), "{bin} {shell}: {}", out.stderr);
            assert_eq!(out.stderr, "", "{bin} {shell}: nothing on stderr");
            assert!(out.stdout.contains(bin), "{bin} {shell}: {}", out.stdout);
            for command in &commands {
                assert!(
                    out.stdout.contains(command.as_str()),
                    "{bin} {shell}: the script lacks `{command}`"
                );
            }
        }
        assert_eq!(std::fs::read_to_string(&state).unwrap(), "not json");
    }
    // eks-patch has no other subcommand: its options are completed.
    let patch = run("eks-patch", &["completions", "bash"]);
    for flag in ["--out", "--manifests", "--state"] {
        assert!(patch.stdout.contains(flag), "eks-patch lacks {flag}");
    }
    let unknown = run("eks-cluster", &["completions", "tcsh"]);
    assert_eq!(unknown.code, Some(2), "{}", unknown.stderr);
    assert!(unknown.stderr.contains("tcsh"), "{}", unknown.stderr);
}

/// Runs `bin` with the kube flags `flags` placed before the subcommand, after it, and split
/// around it; all three must end the same way. Returns that one outcome.
fn same_either_side(bin: &str, command: &[&str], state: &Path, flags: &[&str]) -> Out {
    let state = state.to_str().unwrap();
    let (subcommand, rest) = command.split_first().unwrap();
    let before: Vec<&str> = ["--state", state]
        .iter()
        .chain(flags)
        .chain([subcommand])
        .chain(rest)
        .copied()
        .collect();
    let after: Vec<&str> = ["--state", state, subcommand]
        .iter()
        .chain(rest)
        .chain(flags)
        .copied()
        .collect();
    let split: Vec<&str> = ["--state", state]
        .iter()
        .chain(&flags[flags.len() - 2..])
        .chain([subcommand])
        .chain(rest)
        .chain(&flags[..flags.len() - 2])
        .copied()
        .collect();
    let outs: Vec<Out> = [&before, &after, &split]
        .iter()
        .map(|args| run(bin, args))
        .collect();
    let first_line = |o: &Out| o.stderr.lines().next().unwrap_or_default().to_owned();
    for (out, args) in outs.iter().zip([&before, &after, &split]) {
        assert_eq!(out.code, outs[0].code, "{bin} {args:?}: {}", out.stderr);
        assert_eq!(
            first_line(out),
            first_line(&outs[0]),
            "{bin} {args:?}: the same error wherever the flags are"
        );
    }
    outs.into_iter().next().unwrap()
}

#[test]
fn kube_flags_go_before_or_after_the_subcommand_and_a_bad_context_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path());
    let kubeconfig = kubeconfig.to_str().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, STATE).unwrap();
    for (bin, command, unused) in KUBE_BINARIES {
        // A context the kubeconfig does not have: exit 2 naming it and the ones it has,
        // before any AWS call (AWS is a closed port: a call would be an STS error).
        let out = same_either_side(
            bin,
            command,
            &state,
            &["--kubeconfig", kubeconfig, "--context", "nope"],
        );
        assert_eq!(out.code, Some(2), "{bin}: {}", out.stderr);
        for needle in ["--context nope", "its contexts: one, two"] {
            assert!(out.stderr.contains(needle), "{bin}: {}", out.stderr);
        }
        assert!(!out.stderr.contains("STS"), "{bin}: {}", out.stderr);
        assert_eq!(std::fs::read_to_string(&state).unwrap(), STATE, "{bin}");

        // A kubeconfig that is not there: the same error wherever the flag is.
        let missing = dir.path().join("missing");
        let out = same_either_side(
            bin,
            command,
            &state,
            &[
                "--kubeconfig",
                missing.to_str().unwrap(),
                "--context",
                "one",
            ],
        );
        assert_eq!(out.code, Some(2), "{bin}: {}", out.stderr);
        assert!(
            out.stderr.contains("cannot read it"),
            "{bin}: {}",
            out.stderr
        );
        assert_eq!(std::fs::read_to_string(&state).unwrap(), STATE, "{bin}");

        // --context alone: no kubeconfig is read without --kubeconfig, so it is refused.
        let flags = ["--region", "us-east-2", "--context", "one"];
        let out = same_either_side(bin, command, &state, &flags);
        assert_eq!(out.code, Some(2), "{bin}: {}", out.stderr);
        assert!(
            out.stderr.contains("pass --kubeconfig PATH too"),
            "{bin}: {}",
            out.stderr
        );

        // A subcommand that reaches no cluster refuses the flags, as before they were shared.
        if !unused.is_empty() {
            let out = run(
                bin,
                &["--kubeconfig", kubeconfig, unused, "--cluster", "demo"],
            );
            assert_eq!(out.code, Some(2), "{bin} {unused}: {}", out.stderr);
            assert!(
                out.stderr
                    .contains(&format!("--kubeconfig is not used by `{bin} {unused}`")),
                "{bin}: {}",
                out.stderr
            );
        }
        assert_eq!(std::fs::read_to_string(&state).unwrap(), STATE, "{bin}");
    }
}
