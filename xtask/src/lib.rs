//! The generator behind `cargo xtask gen` and `cargo xtask check`: what lists the steps, their
//! commands, their IAM actions or their flags is written from the one place that says it.
//!
//! - `make/steps.mk` (included by the Makefile): every step's make targets, what `make install`
//!   and `make clean` run, their `make help` lines; from the step registry
//!   (`common::steps::STEPS`), and `FARGATE_NAMESPACES` from eks-cluster's default.
//! - `ci/github-actions.yml`, `ci/gitlab-ci.yml`: a job per step with the commands of the make
//!   targets (the templates are in [`ci`]).
//! - Marker blocks, in the Markdown files at the top, in `ci/` and `docs/`, and in the `//!`
//!   block of each binary's `main.rs` (see [`markers`] for the names): the binaries' usage from
//!   their clap commands (`<crate>::cli::command()`), the IAM actions each binary needs (from
//!   `eks_preflight::actions::ACTIONS`), the CI job chain.
//!
//! [`outputs`] renders all of it in memory; `gen` writes what differs, `check` (and the test
//! `generated_files_are_current`) names what is stale.

pub mod ci;
pub mod iam;
pub mod make;
pub mod markers;
pub mod usage;

use std::path::{Path, PathBuf};

/// The command that rewrites the generated files.
pub const GEN: &str = "cargo xtask gen";

/// One generated file: its path under the repository root and what it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub path: PathBuf,
    pub text: String,
}

/// The repository root (the workspace of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits in the workspace")
        .to_path_buf()
}

/// The namespaces of eks-cluster's default Fargate profile (the Makefile's `FARGATE_NAMESPACES`,
/// the CI's `--namespace` flags).
pub fn fargate_namespaces() -> &'static [&'static str] {
    &eks_cluster::inputs::DEFAULT_NAMESPACES
}

/// Every generated file, rendered in memory from the registry, the IAM list and the clap
/// commands, with the marker blocks of the files under `root` filled.
pub fn outputs(root: &Path) -> Result<Vec<Output>, String> {
    let mut out = vec![
        Output {
            path: "make/steps.mk".into(),
            text: make::steps_mk(fargate_namespaces()),
        },
        Output {
            path: "ci/github-actions.yml".into(),
            text: ci::github(fargate_namespaces()),
        },
        Output {
            path: "ci/gitlab-ci.yml".into(),
            text: ci::gitlab(fargate_namespaces()),
        },
    ];
    for (path, binary) in marked_files(root)? {
        let text = std::fs::read_to_string(root.join(&path))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let filled = markers::fill(&text, |name, width| render_block(name, binary, width))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(binary) = binary
            && !markers::names(&text).iter().any(|n| n == "iam")
        {
            return Err(format!(
                "{}: the `//!` block of {binary} lacks its IAM permissions: add the lines \
                 `//! <!-- generated:iam -->` and `//! <!-- /generated:iam -->` and run `{GEN}`",
                path.display()
            ));
        }
        out.push(Output { path, text: filled });
    }
    Ok(out)
}

/// The generated files whose content on disk differs from [`outputs`] (or that are missing).
pub fn stale(root: &Path) -> Result<Vec<PathBuf>, String> {
    Ok(outputs(root)?
        .into_iter()
        .filter(|o| std::fs::read_to_string(root.join(&o.path)).ok().as_deref() != Some(&o.text))
        .map(|o| o.path)
        .collect())
}

/// Writes the outputs that differ from the files on disk (of those in `only`, when it names
/// any: paths under `root`); returns their paths.
pub fn generate(root: &Path, only: &[&str]) -> Result<Vec<PathBuf>, String> {
    let all = outputs(root)?;
    if let Some(unknown) = only
        .iter()
        .find(|p| !all.iter().any(|o| o.path == Path::new(p)))
    {
        return Err(format!("{unknown} is not a generated file"));
    }
    let mut written = Vec::new();
    for output in all {
        if !only.is_empty() && !only.iter().any(|p| output.path == Path::new(p)) {
            continue;
        }
        let path = root.join(&output.path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(&output.text) {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, &output.text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(output.path);
    }
    Ok(written)
}

/// The files that may hold marker blocks: the Markdown files at the top and in `ci/` and
/// `docs/` (binary `None`), and the `main.rs` of every step and of `eks-preflight`, whose `iam`
/// block is that binary's.
fn marked_files(root: &Path) -> Result<Vec<(PathBuf, Option<&'static str>)>, String> {
    let mut files = Vec::new();
    for dir in ["", "ci", "docs"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| Path::new(dir).join(e.file_name()))
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        found.sort();
        files.extend(found.into_iter().map(|p| (p, None)));
    }
    let binaries = common::steps::STEPS
        .iter()
        .map(|s| (s.folder, s.binary))
        .chain([("preflight", "eks-preflight")]);
    for (folder, binary) in binaries {
        files.push((Path::new(folder).join("src/main.rs"), Some(binary)));
    }
    Ok(files)
}

/// The names [`render_block`] knows, for the message about an unknown one.
pub fn known_names() -> Vec<String> {
    let mut names = vec![
        "iam (in a binary's main.rs)".to_string(),
        "synopsis".to_string(),
        "ci-jobs".to_string(),
    ];
    for binary in usage::binaries() {
        names.push(format!("usage:{binary}"));
        names.push(format!("iam:{binary}"));
    }
    names
}

/// The text of block `name` in a file of `binary` (its `main.rs`) or of none, to fit `width`
/// columns; `None` for a name it does not know.
pub fn render_block(name: &str, binary: Option<&str>, width: usize) -> Option<String> {
    if name == "iam" {
        return binary.map(|b| iam::paragraph(b, width));
    }
    if name == "synopsis" {
        return Some(fenced(&usage::synopsis(width)));
    }
    if name == "ci-jobs" {
        return Some(ci::jobs_diagram());
    }
    if let Some(binary) = name.strip_prefix("iam:") {
        return usage::binaries()
            .contains(&binary)
            .then(|| iam::paragraph(binary, width));
    }
    if let Some(binary) = name.strip_prefix("usage:") {
        return usage::help(binary).map(|text| fenced(&text));
    }
    None
}

/// `text` in a ```text fence.
fn fenced(text: &str) -> String {
    format!("```text\n{}\n```\n", text.trim_end())
}

/// `words` in lines of at most `width` columns (a word longer than that gets its own line).
pub fn wrap<'a>(words: impl IntoIterator<Item = &'a str>, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in words {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every generated file matches what the registry, the IAM list and the clap commands say.
    /// This is the one test of the copies: a step added to the registry, a flag added to a
    /// binary, an IAM action added to the list makes it fail until `cargo xtask gen` is run.
    #[test]
    fn generated_files_are_current() {
        let stale = stale(&repo_root()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            stale.is_empty(),
            "stale generated files (run `{GEN}`):\n{}",
            stale
                .iter()
                .map(|p| format!("  {}", p.display()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    #[test]
    fn wrap_keeps_words_whole() {
        assert_eq!(wrap("a bb ccc dd".split(' '), 6), ["a bb", "ccc dd"]);
        assert_eq!(wrap("abcdefgh i".split(' '), 4), ["abcdefgh", "i"]);
    }
}

#[cfg(test)]
mod stale_tests {
    use super::*;

    /// A copy of every file [`outputs`] reads or writes, in a fresh directory.
    fn copy_of_the_tree() -> PathBuf {
        let root = repo_root();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let copy = std::env::temp_dir().join(format!("xtask-{}-{nanos}", std::process::id()));
        for output in outputs(&root).unwrap() {
            let to = copy.join(&output.path);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            if let Ok(text) = std::fs::read_to_string(root.join(&output.path)) {
                std::fs::write(to, text).unwrap();
            }
        }
        copy
    }

    fn edit(root: &Path, path: &str, from: &str, to: &str) {
        let file = root.join(path);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(from), "{path} has {from:?}");
        std::fs::write(file, text.replacen(from, to, 1)).unwrap();
    }

    /// The check can fail: a hand edit of each kind of generated text is named stale, and a
    /// binary's `main.rs` without its IAM block is refused.
    #[test]
    fn hand_edits_are_named_stale() {
        let root = copy_of_the_tree();
        let before = stale(&root).unwrap();
        edit(
            &root,
            "make/steps.mk",
            "oidc-create irsa-create",
            "irsa-create oidc-create",
        );
        edit(
            &root,
            "ci/gitlab-ci.yml",
            "needs: [build, cluster]",
            "needs: [build]",
        );
        edit(
            &root,
            "oidc/src/main.rs",
            "`iam:CreateOpenIDConnectProvider`, ",
            "",
        );
        edit(
            &root,
            "ci/README.md",
            "build -> cluster",
            "build -> oidc -> cluster",
        );
        let after = stale(&root).unwrap();
        for path in [
            "make/steps.mk",
            "ci/gitlab-ci.yml",
            "oidc/src/main.rs",
            "ci/README.md",
        ] {
            assert!(
                after.iter().any(|p| p == Path::new(path))
                    && !before.iter().any(|p| p == Path::new(path)),
                "{path}: {after:?}"
            );
        }
        generate(&root, &[]).unwrap();
        assert!(
            stale(&root).unwrap().is_empty(),
            "gen makes every file current"
        );

        edit(
            &root,
            "irsa/src/main.rs",
            "//! <!-- generated:iam -->\n",
            "",
        );
        let refused = outputs(&root).unwrap_err();
        assert!(refused.contains("irsa/src/main.rs"), "{refused}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
