//! Waiting for long operations: bounded by a timeout, polling with a backoff capped at 10 s so a
//! ready resource is noticed within 10 s, with progress and elapsed time on stderr (a spinner on
//! a terminal, timestamped log lines otherwise).

use std::future::Future;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::format_elapsed;

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll<T> {
    /// Done: the value to return.
    Ready(T),
    /// Not yet: the status to show.
    Pending(String),
}

/// A wait ran out of time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("timed out after {} waiting for {what} (last status: {last_status}); raise --timeout or look at it in the console", format_elapsed(*.after))]
pub struct TimedOut {
    /// What was waited for.
    pub what: String,
    /// How long it waited.
    pub after: Duration,
    /// The last status seen.
    pub last_status: String,
}

/// How a wait polls.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first pause between polls.
    pub initial: Duration,
    /// The longest pause between polls.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The pause after `attempt` polls (0-based), doubling from `initial` up to `max`.
    pub fn pause(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Polls until `poll` says ready, it fails, or `timeout` passes.
pub async fn wait_for<T, E, F, Fut>(what: &str, timeout: Duration, poll: F) -> Result<T, E>
where
    E: From<TimedOut>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, E>>,
{
    wait_with(what, timeout, Backoff::default(), poll).await
}

/// [`wait_for`] with a chosen backoff.
pub async fn wait_with<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    backoff: Backoff,
    poll: F,
) -> Result<T, E>
where
    E: From<TimedOut>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, E>>,
{
    waiting(what, timeout, backoff, |_: &E| None, poll).await
}

/// How many polls in a row may fail with a transient error before a Kubernetes wait
/// ([`wait_for_kube`]) gives up.
pub const FAILED_POLLS: u32 = 5;

/// [`wait_for`] for polls of the Kubernetes API: a poll that fails with an error that may pass
/// ([`crate::kuberetry::is_transient`]: no answer after the client's own retries, or 429, 500,
/// 502, 503, 504) is shown as the status and the wait goes on, until [`FAILED_POLLS`] polls in
/// a row failed; then the last error is returned (the log says how many failed). Any other error
/// ends the wait at once, as in [`wait_for`].
pub async fn wait_for_kube<T, E, F, Fut>(what: &str, timeout: Duration, poll: F) -> Result<T, E>
where
    E: From<TimedOut> + std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, E>>,
{
    wait_kube_with(what, timeout, Backoff::default(), poll).await
}

/// [`wait_for_kube`] with a chosen backoff.
pub async fn wait_kube_with<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    backoff: Backoff,
    poll: F,
) -> Result<T, E>
where
    E: From<TimedOut> + std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, E>>,
{
    let transient =
        |err: &E| crate::kuberetry::is_transient(err).then(|| crate::step::error_chain(err));
    waiting(what, timeout, backoff, transient, poll).await
}

/// The one wait loop: `tolerated` gives the words of a poll error that is shown and waited
/// through (up to [`FAILED_POLLS`] in a row), `None` for one that ends the wait.
async fn waiting<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    backoff: Backoff,
    tolerated: impl Fn(&E) -> Option<String>,
    mut poll: F,
) -> Result<T, E>
where
    E: From<TimedOut>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, E>>,
{
    let started = Instant::now();
    let progress = Progress::new(what);
    let mut attempt = 0;
    let mut failed = 0;
    loop {
        let status = match poll().await {
            Ok(Poll::Ready(value)) => {
                progress.finish(started.elapsed());
                return Ok(value);
            }
            Ok(Poll::Pending(status)) => {
                failed = 0;
                status
            }
            Err(err) => match tolerated(&err) {
                Some(text) if failed + 1 < FAILED_POLLS => {
                    failed += 1;
                    tracing::warn!(
                        "waiting for {what}: a poll failed ({failed} in a row; the wait gives up at {FAILED_POLLS}): {text}"
                    );
                    format!("the last poll failed: {text}")
                }
                Some(text) => {
                    progress.abandon();
                    tracing::warn!(
                        "waiting for {what}: {FAILED_POLLS} polls in a row failed; giving up on: {text}"
                    );
                    return Err(err);
                }
                None => {
                    progress.abandon();
                    return Err(err);
                }
            },
        };
        progress.update(&status, started.elapsed());
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            progress.abandon();
            return Err(TimedOut {
                what: what.to_owned(),
                after: elapsed,
                last_status: status,
            }
            .into());
        }
        tokio::time::sleep(backoff.pause(attempt).min(timeout - elapsed)).await;
        attempt += 1;
    }
}

/// Spinner on a terminal, log lines elsewhere.
struct Progress {
    what: String,
    spinner: Option<ProgressBar>,
    last_status: std::cell::RefCell<(String, Instant)>,
}

impl Progress {
    const LOG_EVERY: Duration = Duration::from_secs(30);

    fn new(what: &str) -> Self {
        let spinner = (std::io::stderr().is_terminal() && tracing::enabled!(tracing::Level::INFO))
            .then(|| {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                        .expect("static template"),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar.set_message(format!("waiting for {what}"));
                bar
            });
        Self {
            what: what.to_owned(),
            spinner,
            last_status: std::cell::RefCell::new((String::new(), Instant::now())),
        }
    }

    fn update(&self, status: &str, elapsed: Duration) {
        if let Some(bar) = &self.spinner {
            bar.set_message(format!("waiting for {}: {status}", self.what));
            return;
        }
        let mut last = self.last_status.borrow_mut();
        if last.0 != status || last.1.elapsed() >= Self::LOG_EVERY {
            tracing::info!(
                "waiting for {}: {status} ({} elapsed)",
                self.what,
                format_elapsed(elapsed)
            );
            *last = (status.to_owned(), Instant::now());
        }
    }

    fn finish(&self, elapsed: Duration) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
        tracing::info!(
            "done waiting for {} ({})",
            self.what,
            format_elapsed(elapsed)
        );
    }

    fn abandon(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Debug, PartialEq)]
    enum TestError {
        Timeout(String),
        Broke,
    }

    impl From<TimedOut> for TestError {
        fn from(t: TimedOut) -> Self {
            TestError::Timeout(t.last_status)
        }
    }

    const FAST: Backoff = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
    };

    #[test]
    fn backoff_is_capped_at_ten_seconds() {
        let backoff = Backoff::default();
        assert_eq!(backoff.pause(0), Duration::from_secs(1));
        assert_eq!(backoff.pause(2), Duration::from_secs(4));
        assert_eq!(backoff.pause(4), Duration::from_secs(10));
        assert_eq!(backoff.pause(100), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn returns_when_ready() {
        let polls = Cell::new(0);
        let got: Result<u32, TestError> =
            wait_with("thing", Duration::from_secs(5), FAST, || async {
                polls.set(polls.get() + 1);
                Ok(if polls.get() < 3 {
                    Poll::Pending(format!("poll {}", polls.get()))
                } else {
                    Poll::Ready(7)
                })
            })
            .await;
        assert_eq!(got, Ok(7));
        assert_eq!(polls.get(), 3);
    }

    #[tokio::test]
    async fn times_out_with_last_status() {
        let got: Result<(), TestError> =
            wait_with("thing", Duration::from_millis(30), FAST, || async {
                Ok(Poll::Pending("still busy".into()))
            })
            .await;
        assert_eq!(got, Err(TestError::Timeout("still busy".into())));
    }

    #[tokio::test]
    async fn stops_at_the_first_failure() {
        let got: Result<(), TestError> =
            wait_with("thing", Duration::from_secs(5), FAST, || async {
                Err(TestError::Broke)
            })
            .await;
        assert_eq!(got, Err(TestError::Broke));
    }

    #[derive(Debug, thiserror::Error)]
    enum KubeTestError {
        #[error("timed out: {0}")]
        Timeout(String),
        #[error("read the Deployment")]
        Read(#[source] std::io::Error),
    }

    impl From<TimedOut> for KubeTestError {
        fn from(t: TimedOut) -> Self {
            KubeTestError::Timeout(t.last_status)
        }
    }

    fn reset() -> KubeTestError {
        KubeTestError::Read(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        ))
    }

    /// Polls answering from `script`: `f` a transient failure, `F` another failure, `p`
    /// pending, `r` ready; returns the outcome and how many polls were made.
    async fn script(script: &str) -> (Result<u32, KubeTestError>, usize) {
        let polls = Cell::new(0);
        let steps: Vec<char> = script.chars().collect();
        let got = wait_kube_with("thing", Duration::from_secs(5), FAST, || async {
            let step = steps[polls.get().min(steps.len() - 1)];
            polls.set(polls.get() + 1);
            match step {
                'f' => Err(reset()),
                'F' => Err(KubeTestError::Read(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "forbidden",
                ))),
                'p' => Ok(Poll::Pending("busy".into())),
                _ => Ok(Poll::Ready(7)),
            }
        })
        .await;
        (got, polls.get())
    }

    #[tokio::test]
    async fn a_kube_wait_goes_on_through_transient_failures() {
        let (got, polls) = script("pffffr").await;
        assert_eq!(got.unwrap(), 7);
        assert_eq!(polls, 6);
        // A poll that answers starts the count again.
        let (got, polls) = script("ffffpffffr").await;
        assert_eq!(got.unwrap(), 7);
        assert_eq!(polls, 10);
    }

    #[tokio::test]
    async fn a_kube_wait_gives_up_after_five_failed_polls_in_a_row() {
        let (got, polls) = script("pfffff").await;
        let err = got.unwrap_err();
        assert_eq!(polls, 1 + FAILED_POLLS as usize);
        assert!(
            crate::step::error_chain(&err).contains("connection reset by peer"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_kube_wait_stops_at_an_error_that_does_not_pass() {
        let (got, polls) = script("pfF").await;
        assert!(
            matches!(got, Err(KubeTestError::Read(e)) if e.kind() == std::io::ErrorKind::PermissionDenied)
        );
        assert_eq!(polls, 3);
    }

    #[tokio::test]
    async fn a_kube_wait_still_times_out() {
        let got: Result<(), KubeTestError> =
            wait_kube_with("thing", Duration::from_millis(30), FAST, || async {
                Ok(Poll::Pending("still busy".into()))
            })
            .await;
        assert!(matches!(got, Err(KubeTestError::Timeout(s)) if s == "still busy"));
    }

    #[test]
    fn timeout_message_says_what_and_how_long() {
        let t = TimedOut {
            what: "stack s".into(),
            after: Duration::from_secs(65),
            last_status: "CREATE_IN_PROGRESS".into(),
        };
        let text = t.to_string();
        assert!(
            text.contains("0h:1m:5s")
                && text.contains("stack s")
                && text.contains("CREATE_IN_PROGRESS"),
            "{text}"
        );
    }
}
