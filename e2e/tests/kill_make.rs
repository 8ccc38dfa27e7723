//! `make install` and `make clean` as wholes, SIGKILLed (make and every step it runs: the
//! process group) at moments spread over an uninterrupted run, then run again: the state file
//! is the old document or a complete new one, the re-run installs exactly what an
//! uninterrupted install makes (nothing twice) and answers HTTP 200, and `make clean` leaves
//! nothing but the brought network.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eks_fa_e2e::{Bed, CLUSTER};
use testbed::REGION;
use testbed::killsweep::Inventory;

/// Kill moments per target: fractions i/(KILLS+1) of the uninterrupted run's duration.
const KILLS: u32 = 3;

struct Make<'a> {
    bed: &'a Bed,
    vars: Vec<String>,
    state: std::path::PathBuf,
}

impl Make<'_> {
    fn command(&self, target: &str) -> Command {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut command = self.bed.shell();
        command
            .arg("-c")
            .arg(format!(
                "exec make --no-print-directory -C '{}' {target} \"$@\"",
                repo.display()
            ))
            .arg("make")
            .args(&self.vars)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a kill reaches make and the step it runs.
            .process_group(0);
        command
    }

    fn run_ok(&self, target: &str) -> Duration {
        let started = Instant::now();
        let output = self.command(target).output().expect("make runs");
        assert!(
            output.status.success(),
            "make {target} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        started.elapsed()
    }

    /// Runs `make target` and SIGKILLs its process group after `after`; true when killed.
    fn kill_after(&self, target: &str, after: Duration) -> bool {
        let mut child = self.command(target).spawn().expect("make starts");
        let started = Instant::now();
        while started.elapsed() < after {
            if child.try_wait().expect("wait").is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let killed = child.try_wait().expect("wait").is_none();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.wait();
        // Let the group's last processes go before the next run takes the state file.
        std::thread::sleep(Duration::from_millis(200));
        killed
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.state).unwrap_or_default()
    }

    /// The state file is the old document or a complete one that a step of the target wrote
    /// (any step's section: make runs them all).
    fn check_file(&self, old: &str, when: &str) {
        let text = self.text();
        let sections: Vec<&str> = common::steps::STEPS.iter().map(|s| s.section).collect();
        if let Err(why) = testbed::statecheck::after_kill(&text, old, &sections) {
            panic!(
                "after a kill {when} the state file is neither the old document nor a complete \
                 one: {why}: {text:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_install_and_clean_killed_anywhere_converge() {
    let bed = Bed::new().await;
    let config = bed.moto.sdk_config(REGION).await;
    let network = testbed::seed::network(&config, CLUSTER).await;
    let state = bed.work.path().join("state.json");
    let make = Make {
        bed: &bed,
        vars: vec![
            "BUILD=".to_owned(),
            format!("BIN={}", bed.bin.display()),
            format!("STATE={}", state.display()),
            format!("CLUSTER={CLUSTER}"),
            format!("REGION={REGION}"),
            format!("KUBECONFIG_FILE={}", bed.kubeconfig().display()),
            format!("OUT={}", bed.work.path().join("patched").display()),
            format!("CONNECT_TO=::{}", bed.alb_address()),
            format!("VPC_ID={}", network.vpc_id),
            format!("PRIVATE_SUBNETS={}", network.private_subnet_ids.join(",")),
            format!("PUBLIC_SUBNETS={}", network.public_subnet_ids.join(",")),
        ],
        state: state.clone(),
    };
    let base = Inventory::read(&config).await;

    // Uninterrupted: what install makes and how long each target takes.
    let install_time = make.run_ok("install");
    let installed = Inventory::read(&config).await;
    assert_ne!(installed, base);
    let clean_time = make.run_ok("clean");
    assert_eq!(Inventory::read(&config).await, base);
    bed.assert_nothing_left().await;

    // Each kill that landed (make was still running) is counted; its re-run is counted apart,
    // as converged only when it ended where an uninterrupted run ends.
    let (mut kills, mut converged, mut diverged) = (0, 0, Vec::new());
    for i in 1..=KILLS {
        let _ = std::fs::remove_file(&state);
        let at = install_time * i / (KILLS + 1);
        if make.kill_after("install", at) {
            kills += 1;
            make.check_file("", &format!("of make install at {at:?}"));
            make.run_ok("install");
            let now = Inventory::read(&config).await;
            let doc: serde_json::Value = serde_json::from_str(&make.text()).unwrap();
            if now == installed && doc["deploy"]["url"].is_string() {
                converged += 1;
            } else {
                diverged.push(format!(
                    "make install killed at {at:?} then run again: {now:?} (state {doc})"
                ));
            }
        }
        if !diverged.is_empty() {
            break;
        }
        make.run_ok("clean");
        bed.assert_nothing_left().await;

        let _ = std::fs::remove_file(&state);
        make.run_ok("install");
        let old = make.text();
        let at = clean_time * i / (KILLS + 1);
        if make.kill_after("clean", at) {
            kills += 1;
            make.check_file(&old, &format!("of make clean at {at:?}"));
            make.run_ok("clean");
            let now = Inventory::read(&config).await;
            if now == base {
                converged += 1;
            } else {
                diverged.push(format!(
                    "make clean killed at {at:?} then run again left {now:?}"
                ));
            }
        }
        if !diverged.is_empty() {
            break;
        }
        assert_eq!(Inventory::read(&config).await, base);
        bed.assert_nothing_left().await;
    }
    eprintln!(
        "make kill sweep: install took {install_time:?}, clean {clean_time:?}; {kills} kills, \
         {converged} converged"
    );
    assert!(
        diverged.is_empty(),
        "re-runs that did not converge: {diverged:#?}"
    );
    assert!(
        kills >= KILLS,
        "at least {KILLS} of {} moments fell inside a run: {kills}",
        2 * KILLS
    );
}
