//! Kill sweeps of `eks-deploy`, whose work is in Kubernetes (no AWS call marks its phases): its
//! `apply` and its `delete`, with `--state FILE`, are SIGKILLed at moments chosen by what the
//! run did, not by the clock: right after the API server's audit log shows the run's k-th
//! write (k spread over the writes of an uninterrupted run, the last one during the waits that
//! follow it), so every kill lands inside the step however slow the machine; each is checked
//! to have landed (the process was still running and died of the signal). After each kill the
//! state file is the old document or a complete new one; the re-run exits 0 and ends with the
//! same objects as an uninterrupted run; `eks-deploy delete` then leaves none of them.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eks_fa_e2e::Bed;
use testbed::REGION;
use testbed::controlplane::TESTBED_USER;

/// Kill points per command (see [`spread`]).
const KILLS: usize = 5;

/// What the binaries made and left in the cluster (by the audit log: what the simulators and
/// controllers make for them, pods, events, endpoints, bindings, is not theirs), by kind,
/// namespace and name.
async fn objects(bed: &Bed) -> BTreeSet<String> {
    bed.eks
        .kube
        .left_by_testbed()
        .await
        .iter()
        .map(|o| {
            format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["namespace"].as_str().unwrap_or("-"),
                o["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn deploy(bed: &Bed, state: &std::path::Path, args: &[&str]) -> Command {
    let mut command = bed.shell();
    let kube = bed.kubeconfig().display().to_string();
    let alb = format!("::{}", bed.alb_address());
    let mut all = vec![
        "--state",
        state.to_str().unwrap(),
        "--region",
        REGION,
        "--resume",
    ];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--kubeconfig", &kube]);
    if args.first() == Some(&"apply") {
        all.extend_from_slice(&["--timeout", "60s", "--connect-to", &alb]);
    }
    command.arg("-c").arg("exec \"$0\" \"$@\"");
    command.arg(bed.bin.join("eks-deploy")).args(all);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Follows the API server's audit log from the moment it is made: the requests of the
/// binaries' user that changed something (or tried to), as `verb resource`, reading only what
/// was added since the last look.
struct Writes {
    path: PathBuf,
    offset: u64,
    partial: String,
    seen: Vec<String>,
}

impl Writes {
    fn from_now(bed: &Bed) -> Writes {
        let path = bed.eks.kube.dir().join("audit.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // From the end of the last whole line (an event being written is read next time).
        let offset = text.rfind('\n').map_or(0, |i| i + 1) as u64;
        Writes {
            path,
            offset,
            partial: String::new(),
            seen: Vec::new(),
        }
    }

    /// The writes so far.
    fn now(&mut self) -> &[String] {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return &self.seen;
        };
        let mut added = String::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err()
            || file.read_to_string(&mut added).is_err()
        {
            return &self.seen;
        }
        self.offset += added.len() as u64;
        self.partial.push_str(&added);
        let Some(last) = self.partial.rfind('\n') else {
            return &self.seen;
        };
        let whole: String = self.partial.drain(..=last).collect();
        self.seen.extend(
            whole
                .lines()
                .filter(|line| line.contains("ResponseComplete"))
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .filter(|event| {
                    event["stage"] == "ResponseComplete"
                        && event["user"]["username"] == TESTBED_USER
                })
                .filter_map(|event| {
                    let verb = event["verb"].as_str()?;
                    (!matches!(verb, "get" | "list" | "watch")).then(|| {
                        format!(
                            "{verb} {}",
                            event["objectRef"]["resource"].as_str().unwrap_or_default()
                        )
                    })
                }),
        );
        &self.seen
    }
}

/// Runs the command to its end; panics unless it exits 0. Its duration and its writes.
fn run_ok(bed: &Bed, mut command: Command, what: &str) -> (Duration, usize) {
    let mut writes = Writes::from_now(bed);
    let started = Instant::now();
    let output = command.output().expect("eks-deploy runs");
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (started.elapsed(), writes.now().len())
}

/// A kill point: a moment in a run, told by its writes so far.
#[derive(Debug, Clone, Copy)]
enum Point {
    /// Right after its k-th write.
    Write(usize),
    /// Right after it wrote the resource (`ingresses`): for `apply`, its last object, so the
    /// kill lands in the waits for the ALB and for HTTP 200.
    Wrote(&'static str),
}

impl Point {
    fn reached(self, writes: &[String]) -> bool {
        match self {
            Point::Write(k) => writes.len() >= k,
            Point::Wrote(resource) => writes.iter().any(|w| w.ends_with(&format!(" {resource}"))),
        }
    }
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Point::Write(k) => write!(f, "write {k}"),
            Point::Wrote(resource) => write!(f, "its write of {resource}"),
        }
    }
}

/// Where a kill landed.
#[derive(Debug)]
struct Kill {
    /// The process was still running when killed, and died of the signal.
    landed: bool,
    /// Its writes the audit log shows once it is dead.
    writes: usize,
    /// Time from its start to the kill.
    at: Duration,
}

/// Runs the command and SIGKILLs it as soon as the audit log shows it reached `point`.
fn kill_at(bed: &Bed, mut command: Command, point: Point) -> Kill {
    let mut writes = Writes::from_now(bed);
    let mut child = command.spawn().expect("eks-deploy starts");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let output = child.wait_with_output().expect("output");
            panic!(
                "eks-deploy ended ({status}) before {point}; its writes: {:?}; {}",
                writes.now(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if point.reached(writes.now()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not at {point} within 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let at = started.elapsed();
    let running = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let status = child.wait().expect("wait");
    Kill {
        landed: running && status.signal() == Some(9),
        writes: writes.now().len(),
        at,
    }
}

/// KILLS points over the first n-2 of a run's n writes (a run may send a write or two fewer
/// than another: an object already as wanted), ceil(i*(n-2)/KILLS), i = 1..=KILLS.
fn spread(n: usize) -> Vec<Point> {
    let span = n.saturating_sub(2).max(1);
    let mut points: Vec<usize> = (1..=KILLS).map(|i| (i * span).div_ceil(KILLS)).collect();
    points.dedup();
    points.into_iter().map(Point::Write).collect()
}

fn check_file(path: &Path, old: &str, when: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if let Err(why) = testbed::statecheck::after_kill(&text, old, &["deploy"]) {
        panic!(
            "after a kill {when} the state file is neither the old document nor a complete \
             one: {why}: {text:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_deploy_apply_and_delete_killed_anywhere_converge() {
    let bed = Bed::new().await;
    let cluster = bed.create_cluster().await;
    let before = bed.pipe(
        "{bin}/eks-oidc ensure \
         | {bin}/irsa ensure --sa-name aws-load-balancer-controller --policy-document {policy} --kubeconfig {kube} \
         | {bin}/eks-sg-stack create \
         | {bin}/eks-patch --out {work}/patched",
        &cluster.to_string(),
    );
    testbed::run::assert_exit(&before, 0);
    let state = bed.work.path().join("state.json");
    let before_apply = objects(&bed).await;

    // Uninterrupted: what apply makes, how long each takes and how many writes each sends.
    std::fs::write(&state, &before.stdout).unwrap();
    let (apply_time, apply_writes) = run_ok(&bed, deploy(&bed, &state, &["apply"]), "apply");
    let applied = objects(&bed).await;
    let applied_state = std::fs::read_to_string(&state).unwrap();
    assert!(applied.len() > before_apply.len(), "apply made objects");
    assert!(applied_state.contains("\"deploy\""));
    let (delete_time, delete_writes) = run_ok(&bed, deploy(&bed, &state, &["delete"]), "delete");
    // What an uninterrupted delete leaves (it removes the controller's ServiceAccount too, which
    // its manifests declare).
    let base = objects(&bed).await;
    assert!(
        base.is_subset(&before_apply),
        "delete leaves nothing apply made: {base:?}"
    );
    assert!(
        apply_writes >= KILLS + 2 && delete_writes >= KILLS + 2,
        "apply sent {apply_writes} writes, delete {delete_writes}: too few to spread {KILLS} kills"
    );

    // Every kill is counted as landed or not; each re-run is counted apart, as converged only
    // when it ends with the objects of an uninterrupted run.
    let mut kills: Vec<String> = Vec::new();
    let mut missed: Vec<String> = Vec::new();
    let mut diverged: Vec<String> = Vec::new();
    let mut with_work_left = [0, 0];
    let (mut landed, mut converged) = (0, 0);
    // apply: spread over its writes but the last, then in its final waits.
    let mut apply_points = spread(apply_writes);
    apply_points.pop();
    apply_points.push(Point::Wrote("ingresses"));
    let delete_points = spread(delete_writes);
    for (i, &point) in apply_points.iter().enumerate() {
        // apply, killed at the point, then run again.
        std::fs::write(&state, &before.stdout).unwrap();
        let kill = kill_at(&bed, deploy(&bed, &state, &["apply"]), point);
        let when = format!(
            "of apply after {point} (of {apply_writes}; {} seen, {:?} in)",
            kill.writes, kill.at
        );
        kills.push(when.clone());
        if !kill.landed {
            missed.push(when.clone());
        } else {
            landed += 1;
            with_work_left[0] += usize::from(kill.writes < apply_writes);
        }
        check_file(&state, &before.stdout, &when);
        run_ok(&bed, deploy(&bed, &state, &["apply"]), "apply after a kill");
        let now = objects(&bed).await;
        if now == applied {
            converged += 1;
        } else {
            diverged.push(format!("{when} then run again: {now:?}"));
        }
        run_ok(&bed, deploy(&bed, &state, &["delete"]), "delete");
        assert_eq!(objects(&bed).await, base);

        // delete, killed at the point, then run again.
        let Some(&point) = delete_points.get(i) else {
            continue;
        };
        std::fs::write(&state, &before.stdout).unwrap();
        run_ok(&bed, deploy(&bed, &state, &["apply"]), "apply");
        let old = std::fs::read_to_string(&state).unwrap();
        let kill = kill_at(&bed, deploy(&bed, &state, &["delete"]), point);
        let when = format!(
            "of delete after {point} (of {delete_writes}; {} seen, {:?} in)",
            kill.writes, kill.at
        );
        kills.push(when.clone());
        if !kill.landed {
            missed.push(when.clone());
        } else {
            landed += 1;
            with_work_left[1] += usize::from(kill.writes < delete_writes);
        }
        check_file(&state, &old, &when);
        run_ok(
            &bed,
            deploy(&bed, &state, &["delete"]),
            "delete after a kill",
        );
        let now = objects(&bed).await;
        if now == base {
            converged += 1;
        } else {
            diverged.push(format!("{when} then run again: {now:?}"));
        }
        assert_eq!(now, base);
    }
    eprintln!(
        "eks-deploy kill sweep: apply took {apply_time:?} ({apply_writes} writes), delete \
         {delete_time:?} ({delete_writes} writes); {landed} of {} kills landed, {converged} \
         converged; kills: {kills:#?}",
        kills.len()
    );
    assert!(
        missed.is_empty(),
        "kills that did not land mid-step: {missed:#?}"
    );
    assert!(
        diverged.is_empty(),
        "re-runs after a kill that did not converge: {diverged:#?}"
    );
    // The kill points lie inside the work, not all after it: most kills of each command came
    // before the run's last write.
    assert!(
        with_work_left[0] * 2 >= apply_points.len() && with_work_left[1] * 2 >= delete_points.len(),
        "kills before the last write (apply, delete): {with_work_left:?} of {} and {}",
        apply_points.len(),
        delete_points.len()
    );
}
