//! The Makefile and the CI pipelines run the steps in the order of the step registry
//! (`common::steps::STEPS`): install in its order, teardown in the reverse, each install target
//! or job running its own binary with its install command. Each check is also run on a doctored
//! copy of the file, which it must refuse, so the checks can fail.

use common::steps::{STEPS, Step, install_order, teardown_order};
use testbed::repo_root;

fn read(path: &str) -> String {
    let path = repo_root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The recipe of make target `target` (the lines after `target:` that start with a tab).
fn recipe<'a>(makefile: &'a str, target: &str) -> Result<Vec<&'a str>, String> {
    let head = format!("\n{target}:");
    let at = makefile
        .find(&head)
        .ok_or_else(|| format!("the Makefile has no target {target}"))?;
    Ok(makefile[at + head.len()..]
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with('\t'))
        .collect())
}

/// The step targets a recipe hands to `$(MAKE)`, in the order it lists them.
fn make_list(makefile: &str, target: &str, known: &[&str]) -> Result<Vec<String>, String> {
    let lines = recipe(makefile, target)?;
    let call = lines
        .iter()
        .find(|l| l.contains("$(MAKE)"))
        .ok_or_else(|| format!("make {target} runs no $(MAKE)"))?;
    Ok(call
        .split_whitespace()
        .filter(|word| known.contains(word))
        .map(str::to_owned)
        .collect())
}

fn check_makefile(makefile: &str) -> Result<(), String> {
    let installs: Vec<&str> = install_order().map(|s| s.make_install).collect();
    let teardowns: Vec<&str> = teardown_order().filter_map(|s| s.make_teardown).collect();
    let all: Vec<&str> = installs.iter().chain(&teardowns).copied().collect();
    let listed = make_list(makefile, "install", &all)?;
    if listed != installs {
        return Err(format!(
            "make install runs {listed:?}, the registry says {installs:?}"
        ));
    }
    let listed = make_list(makefile, "clean", &all)?;
    if listed != teardowns {
        return Err(format!(
            "make clean runs {listed:?}, the registry says {teardowns:?}"
        ));
    }
    for step in &STEPS {
        let mut targets = vec![(step.make_install, step.install)];
        targets.extend(step.make_teardown.map(|t| (t, step.teardown)));
        for (target, command) in targets {
            let text = recipe(makefile, target)?.join("\n");
            let runs = format!("$(BIN)/{} ", step.binary);
            if !text.contains(&runs) {
                return Err(format!("make {target} does not run {}", step.binary));
            }
            if let Some(command) = command
                && !text.contains(&format!(" {command} "))
            {
                return Err(format!(
                    "make {target} does not run {} {command}",
                    step.binary
                ));
            }
        }
    }
    Ok(())
}

/// Where job `job` starts in a CI file: a line `<indent>job:` with the given indent.
fn job_at(text: &str, indent: &str, job: &str) -> Option<usize> {
    let head = format!("\n{indent}{job}:\n");
    text.find(&head).map(|at| at + 1)
}

/// The text of job `job` (up to the next job at the same indent).
fn job_text<'a>(text: &'a str, indent: &str, job: &str) -> Option<&'a str> {
    let start = job_at(text, indent, job)?;
    let rest = &text[start..];
    let body_start = rest.find('\n')? + 1;
    let end = rest[body_start..]
        .lines()
        .scan(body_start, |pos, line| {
            let here = *pos;
            *pos += line.len() + 1;
            Some((here, line))
        })
        .find(|(_, line)| {
            line.starts_with(indent)
                && line[indent.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        })
        .map_or(rest.len(), |(at, _)| at);
    Some(&rest[..end])
}

/// One CI file: the install jobs in registry order, each running its binary's install command,
/// and the teardown job running the teardowns in reverse order.
fn check_ci(text: &str, indent: &str) -> Result<(), String> {
    let mut last = 0;
    for step in install_order() {
        let at = job_at(text, indent, step.ci_job)
            .ok_or_else(|| format!("no job {} (for {})", step.ci_job, step.binary))?;
        if at < last {
            return Err(format!(
                "job {} comes before the job of the step before it",
                step.ci_job
            ));
        }
        last = at;
        let job = job_text(text, indent, step.ci_job).unwrap_or_default();
        let runs = format!("bin/{} ", step.binary);
        if !job.contains(&runs) {
            return Err(format!("job {} does not run {}", step.ci_job, step.binary));
        }
        if let Some(command) = step.install
            && !job.contains(&format!(" {command} "))
        {
            return Err(format!(
                "job {} does not run {} {command}",
                step.ci_job, step.binary
            ));
        }
        let others: Vec<&Step> = STEPS.iter().filter(|s| s.binary != step.binary).collect();
        if let Some(other) = others
            .iter()
            .find(|s| job.contains(&format!("bin/{} ", s.binary)))
        {
            return Err(format!("job {} also runs {}", step.ci_job, other.binary));
        }
    }
    let teardown = job_text(text, indent, "teardown").ok_or("no teardown job")?;
    let mut last = 0;
    for step in teardown_order() {
        let command = step.teardown.unwrap_or_default();
        let runs = format!("bin/{} ", step.binary);
        let at = teardown
            .match_indices(&runs)
            .map(|(at, _)| at)
            .find(|&at| {
                // The command line runs up to the next binary (a folded line spans several).
                let rest = &teardown[at + runs.len()..];
                let line = rest.find("bin/").map_or(rest, |end| &rest[..end]);
                line.split_whitespace().any(|word| word == command)
            })
            .ok_or_else(|| format!("the teardown job does not run {} {command}", step.binary))?;
        if at < last {
            return Err(format!("the teardown job runs {} too early", step.binary));
        }
        last = at;
    }
    Ok(())
}

#[test]
fn the_makefile_runs_the_steps_in_registry_order() {
    let makefile = read("Makefile");
    check_makefile(&makefile).unwrap();

    let swapped = makefile.replacen("oidc-create irsa-create", "irsa-create oidc-create", 1);
    assert_ne!(swapped, makefile, "the doctored copy differs");
    assert!(check_makefile(&swapped).is_err());
    let swapped = makefile.replacen("sg-delete irsa-delete", "irsa-delete sg-delete", 1);
    assert_ne!(swapped, makefile);
    assert!(check_makefile(&swapped).is_err());
}

#[test]
fn the_github_workflow_runs_the_steps_in_registry_order() {
    let text = read("ci/github-actions.yml");
    check_ci(&text, "  ").unwrap();

    let oidc = job_text(&text, "  ", "oidc").unwrap().to_owned();
    let moved =
        text.replacen(&oidc, "", 1)
            .replacen("\n  teardown:", &format!("\n{oidc}  teardown:"), 1);
    assert!(
        check_ci(&moved, "  ").is_err(),
        "a job moved out of order is refused"
    );
    let swapped = text.replacen(
        "bin/eks-oidc --state state.json --region ${{ env.AWS_REGION }} --resume delete",
        "bin/eks-oidc --state x delete-later",
        1,
    );
    assert!(
        check_ci(&swapped, "  ").is_err(),
        "a teardown without a step is refused"
    );
}

#[test]
fn the_gitlab_pipeline_runs_the_steps_in_registry_order() {
    let text = read("ci/gitlab-ci.yml");
    check_ci(&text, "").unwrap();
    let jobs: Vec<&str> = install_order().map(|s| s.ci_job).collect();
    let stages = format!("stages: [build, {}, teardown]", jobs.join(", "));
    assert!(
        text.contains(&stages),
        "gitlab-ci.yml should say `{stages}`"
    );

    let teardown = job_text(&text, "", "teardown").unwrap();
    let deploy_line = teardown
        .lines()
        .find(|l| l.contains("bin/eks-deploy "))
        .unwrap();
    let cluster_line = teardown
        .lines()
        .find(|l| l.contains("bin/eks-cluster "))
        .unwrap();
    let swapped = text
        .replacen(deploy_line, "@@", 1)
        .replacen(cluster_line, deploy_line, 1)
        .replacen("@@", cluster_line, 1);
    assert!(
        check_ci(&swapped, "").is_err(),
        "a teardown out of order is refused"
    );
}

/// The end-to-end tests' install and teardown pipes (`e2e/src/lib.rs`) follow the registry too.
#[test]
fn the_test_pipes_run_the_steps_in_registry_order() {
    let install: Vec<&str> = install_order().skip(1).map(|s| s.binary).collect();
    let (order, missing) = common::steps::order_in(eks_fa_e2e::INSTALL, install.iter().copied());
    assert!(missing.is_empty(), "INSTALL lacks {missing:?}");
    assert_eq!(order, install);
    let teardown: Vec<&str> = teardown_order().map(|s| s.binary).collect();
    let (order, missing) = common::steps::order_in(eks_fa_e2e::TEARDOWN, teardown.iter().copied());
    assert!(missing.is_empty(), "TEARDOWN lacks {missing:?}");
    assert_eq!(order, teardown);
}
