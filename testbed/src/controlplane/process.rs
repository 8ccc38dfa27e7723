//! The control plane's programs: where they are (built once per machine by `k8s/build.sh`),
//! how they are started so they never outlive the test process, and the etcd member that every
//! control plane of one test process shares.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The folder holding `kube-apiserver`, `kube-controller-manager` and `etcd`, built (or found
/// in the cache) by `testbed/k8s/build.sh` once per process. Panics with the way forward when
/// Go is missing or the build fails.
pub fn binaries() -> &'static Path {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let script = crate::repo_root().join("testbed/k8s/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}): the test bed's Kubernetes control plane needs Go >= 1.26 and the Go \
             module proxy (see README, Prerequisites)",
            script.display(),
            out.status
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

type Spawned = std::io::Result<Child>;
/// A command to start and where to send the child.
type SpawnRequest = (Command, mpsc::Sender<Spawned>);

/// Starts `command` so that it gets SIGTERM when this process ends, however it ends (a test
/// binary killed by a timeout included): through `setpriv --pdeathsig`, from one long-lived
/// thread (the parent-death signal follows the thread that forked, so a test's own thread would
/// take its children with it when the test ends).
pub fn spawn(program: &Path, args: &[String], log: &Path) -> Spawned {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("controlplane-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("a thread to start the control plane from");
        Mutex::new(tx)
    });
    let file = std::fs::File::create(log)?;
    let mut command = Command::new("setpriv");
    command
        .args(["--pdeathsig", "TERM", "--"])
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, reply))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// For a panic message: a log's error lines (klog's `E`/`F` and Go's `log.Fatal`), then its
/// last `lines` lines.
pub fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let errors: Vec<&str> = all
        .iter()
        .copied()
        .filter(|l| l.starts_with('E') || l.starts_with('F') || l.contains("error:"))
        .take(20)
        .collect();
    format!(
        "errors:\n{}\nlast lines:\n{}",
        errors.join("\n"),
        all[all.len().saturating_sub(lines)..].join("\n")
    )
}

/// Waits until `ready` says yes, `child` exits (a panic with its log) or `limit` passes.
pub fn wait_until(
    what: &str,
    child: &mut Child,
    log: &Path,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) {
    let start = Instant::now();
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}):\n{}", tail(log, 10));
        }
        assert!(
            start.elapsed() < limit,
            "{what} not ready after {limit:?}:\n{}",
            tail(log, 10)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The etcd member of this process: started at the first call, shared by every control plane
/// the process starts (each under an `--etcd-prefix` of its own), stopped with the process (its
/// data folder goes with it). Returns its client URL.
pub fn etcd() -> &'static str {
    static ETCD: OnceLock<String> = OnceLock::new();
    ETCD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("eks-fa-etcd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a folder for etcd");
        let client = format!("http://127.0.0.1:{}", crate::free_port());
        let peer = format!("http://127.0.0.1:{}", crate::free_port());
        let log = dir.join("etcd.log");
        let args = [
            "--data-dir".to_owned(),
            dir.display().to_string(),
            "--listen-client-url".to_owned(),
            client.clone(),
            "--listen-peer-url".to_owned(),
            peer,
            "--remove-data-dir".to_owned(),
        ];
        let mut child = spawn(&binaries().join("etcd"), &args, &log)
            .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
        let health = format!("{client}/health");
        wait_until("etcd", &mut child, &log, Duration::from_secs(30), || {
            ureq::get(&health)
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .is_some_and(|body| body.contains("true"))
        });
        // The child is never waited for: it ends with this process (SIGTERM from setpriv).
        std::mem::forget(child);
        client
    })
}
