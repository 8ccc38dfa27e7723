//! An advisory lock on a `--state FILE`, held from before the state is read until after it is
//! written, so two runs on the same file never lose either's write: the second waits (with a
//! message) until the first is done, then reads what the first wrote.
//!
//! The lock is `flock` on a file beside the state, `FILE.lock` (the state file itself is
//! replaced by a rename on every write, so it cannot carry a lock). The lock file holds the pid
//! and command of its holder, for the waiting message, and is removed when the run ends; a run
//! killed with SIGKILL leaves it behind, and the kernel drops the lock, so the next run is not
//! held up by it. A waiter that wins the lock on a file already removed (or replaced) by the
//! previous holder opens it again, so two runs never both believe they hold it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a waiting run says it is still waiting.
const REMIND_EVERY: Duration = Duration::from_secs(30);

/// Why the lock could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the state file {state} is in use by another run ({holder}) and stayed so for {waited}; \
         nothing was done. Wait for that run to end (or raise --lock-wait), then run again"
    )]
    Busy {
        state: PathBuf,
        holder: String,
        waited: String,
    },
    #[error("cannot lock the state file {state} through {lock}: {source}")]
    Io {
        state: PathBuf,
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lock, released (and its file removed) on drop.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

/// The lock file of a state file: `FILE.lock` in the same folder.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    state.with_file_name(name)
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl StateLock {
    /// Takes the lock of `state`, waiting at most `wait` for another run to let it go;
    /// `waiting` is called with a line to log when the run has to wait, and again every 30 s.
    pub fn acquire(
        state: &Path,
        wait: Duration,
        command: &str,
        mut waiting: impl FnMut(&str),
    ) -> Result<StateLock, LockError> {
        let path = lock_path(state);
        let io = |source| LockError::Io {
            state: state.to_path_buf(),
            lock: path.clone(),
            source,
        };
        let started = Instant::now();
        let mut next_reminder = Duration::ZERO;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {
                    if !same_file(&file, &path) {
                        // The previous holder removed it between our open and our lock.
                        continue;
                    }
                    let mut lock = StateLock { file, path };
                    lock.describe_holder(command);
                    return Ok(lock);
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            let holder = std::fs::read_to_string(&path)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "a run that has not said who it is".to_owned());
            let waited = started.elapsed();
            if waited >= wait {
                return Err(LockError::Busy {
                    state: state.to_path_buf(),
                    holder,
                    waited: crate::cli::format_elapsed(waited),
                });
            }
            if waited >= next_reminder {
                waiting(&format!(
                    "the state file {} is in use by another run ({holder}); waiting for it \
                     (waited {}, at most {})",
                    state.display(),
                    crate::cli::format_elapsed(waited),
                    crate::cli::format_elapsed(wait)
                ));
                next_reminder = waited + REMIND_EVERY;
            }
            std::thread::sleep(Duration::from_millis(200).min(wait.saturating_sub(waited)));
        }
    }

    fn describe_holder(&mut self, command: &str) {
        let _ = self.file.set_len(0);
        let _ = writeln!(self.file, "pid {}: {command}", std::process::id());
        let _ = self.file.flush();
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock; a waiter that then gets the lock on the
        // removed file sees it is gone and opens a new one.
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn lock_file_sits_beside_the_state() {
        assert_eq!(
            lock_path(Path::new("/a/b/state.json")),
            Path::new("/a/b/state.json.lock")
        );
        assert_eq!(lock_path(Path::new("s")), Path::new("s.lock"));
    }

    #[test]
    fn a_second_holder_waits_then_gets_it_and_the_file_goes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let first = StateLock::acquire(&state, Duration::ZERO, "first", |_| {}).unwrap();
        let holder = std::fs::read_to_string(lock_path(&state)).unwrap();
        assert!(
            holder.contains("first") && holder.contains("pid"),
            "{holder}"
        );

        // Busy at once with no wait, naming the holder; nothing written to the state.
        let busy = StateLock::acquire(&state, Duration::ZERO, "second", |_| {}).unwrap_err();
        let text = busy.to_string();
        assert!(
            text.contains("in use by another run") && text.contains("first"),
            "{text}"
        );
        assert!(!state.exists());

        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let state2 = state.clone();
        let waiter = std::thread::spawn(move || {
            let _lock = StateLock::acquire(&state2, Duration::from_secs(20), "second", |l| {
                seen.lock().unwrap().push(l.to_owned())
            })
            .unwrap();
            std::fs::read_to_string(lock_path(&state2)).unwrap()
        });
        std::thread::sleep(Duration::from_millis(500));
        drop(first);
        let holder = waiter.join().unwrap();
        assert!(holder.contains("second"), "{holder}");
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("waiting"), "{lines:?}");
        assert!(!lock_path(&state).exists(), "removed by the last holder");
    }

    #[test]
    fn many_contenders_hold_it_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(dir.path().join("state.json"));
        let inside = Arc::new(Mutex::new(0u32));
        let most = Arc::new(Mutex::new(0u32));
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let (state, inside, most) = (state.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let _lock = StateLock::acquire(
                            &state,
                            Duration::from_secs(30),
                            &format!("t{i}"),
                            |_| {},
                        )
                        .unwrap();
                        let now = {
                            let mut n = inside.lock().unwrap();
                            *n += 1;
                            *n
                        };
                        let mut m = most.lock().unwrap();
                        *m = (*m).max(now);
                        drop(m);
                        std::thread::sleep(Duration::from_millis(5));
                        *inside.lock().unwrap() -= 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*most.lock().unwrap(), 1, "never two holders at once");
    }
}
