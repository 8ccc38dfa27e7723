//! The life of one step run: read the state, stop on an earlier failure, resolve the region,
//! build the AWS configuration, run the step, record its timing or its error, write the state,
//! and end with the exit code of the contract (0 done, 1 failed, 2 bad input with nothing changed).

use std::ffi::OsString;
use std::future::Future;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use aws_config::SdkConfig;
use clap::Parser;

use crate::aws::{environment_region, load_config, pick_region};
use crate::cli::CommonArgs;
use crate::error::Usage;
use crate::state::{ErrorRecord, State};

/// Exit code: done.
pub const EXIT_OK: u8 = 0;
/// Exit code: failed (the state says what was made).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad input or usage; nothing was changed anywhere.
pub const EXIT_USAGE: u8 = 2;

/// How a step's error maps to the exit code. A step's error enum keeps its bad input in one
/// `Usage(..)` variant and answers `is_usage` by matching it, so exit 2 follows from the type.
pub trait StepFailure: std::error::Error {
    /// True for bad input found before any change: `matches!(self, Error::Usage(_))`.
    fn is_usage(&self) -> bool;

    /// [`EXIT_USAGE`] for bad input found before any change, else [`EXIT_FAILED`]. Follows
    /// from [`StepFailure::is_usage`]; not meant to be overridden.
    fn exit_code(&self) -> u8 {
        if self.is_usage() {
            EXIT_USAGE
        } else {
            EXIT_FAILED
        }
    }
}

impl StepFailure for crate::error::Usage {
    fn is_usage(&self) -> bool {
        true
    }
}

/// Which step is running.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo {
    /// Its section in the state document (`sgStack`).
    pub section: &'static str,
    /// Its crate name, for the log filter (`env!("CARGO_CRATE_NAME")`).
    pub crate_name: &'static str,
}

/// What a step gets besides the state.
#[derive(Debug, Clone)]
pub struct Context {
    /// The resolved region.
    pub region: String,
    /// The AWS configuration, built once; make every client from it.
    pub aws: SdkConfig,
    /// `--dry-run`.
    pub dry_run: bool,
    /// Who the credentials are, asked at most once a run ([`Context::caller`]).
    pub(crate) caller: tokio::sync::OnceCell<crate::iam::Caller>,
}

impl Context {
    /// A context for a command driven outside [`drive`], [`query`] and [`stateless`] (the
    /// preflight's `leftovers`): the region, and the AWS configuration built for it.
    pub fn new(region: &str, aws: SdkConfig, dry_run: bool) -> Context {
        Context {
            region: region.to_owned(),
            aws,
            dry_run,
            caller: tokio::sync::OnceCell::new(),
        }
    }
}

/// Where the state comes from and goes to.
#[derive(Debug, Clone)]
enum Channel {
    Pipe,
    File(PathBuf),
    /// Run by hand with no state: stdin is a terminal, no `--state`; a summary goes to stdout.
    Terminal(fn(&State) -> String),
}

impl Channel {
    fn of(common: &CommonArgs, summary: Option<fn(&State) -> String>) -> Self {
        match (&common.state, summary) {
            (Some(path), _) => Channel::File(path.clone()),
            (None, Some(summary)) if std::io::stdin().is_terminal() => Channel::Terminal(summary),
            (None, _) => Channel::Pipe,
        }
    }

    /// The input text; a terminal on stdin or a missing file is an empty (new) document.
    fn read(&self) -> Result<String, Usage> {
        match self {
            Channel::Terminal(_) => Ok(String::new()),
            Channel::Pipe => {
                let mut stdin = std::io::stdin();
                if stdin.is_terminal() {
                    return Ok(String::new());
                }
                let mut text = String::new();
                stdin
                    .read_to_string(&mut text)
                    .map_err(|source| Usage::ReadState {
                        from: "from stdin".into(),
                        source,
                    })?;
                Ok(text)
            }
            Channel::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Ok(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
                Err(source) => Err(Usage::ReadState {
                    from: format!("file {}", path.display()),
                    source,
                }),
            },
        }
    }

    fn write(&self, state: &State) -> Result<(), String> {
        let text = state.to_json();
        match self {
            Channel::Pipe => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("cannot write the state to stdout: {e}"))
            }
            Channel::File(path) => write_atomically(path, &text, PRIVATE)
                .map_err(|e| format!("cannot write the state file {}: {e}", path.display())),
            Channel::Terminal(summary) => {
                let mut out = std::io::stdout().lock();
                out.write_all(summary(state).as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("cannot write to stdout: {e}"))
            }
        }
    }

    /// After bad input: a pipe still gets a document carrying the error, so the next step in
    /// it stops; a state file is left exactly as it was.
    fn report_usage(&self, input: Option<State>, record: &ErrorRecord) {
        if let Channel::Pipe = self {
            let mut state = input.unwrap_or_default();
            state.set_error(record);
            if let Err(e) = self.write(&state) {
                tracing::error!("{e}");
            }
        }
    }
}

/// The mode of a file only its owner reads: the state, a kubeconfig, keys.
pub const PRIVATE: u32 = 0o600;

/// Writes `text` to `path` through a temporary file in the same folder (`.NAME.*.tmp`), synced,
/// then renamed over `path`, so a reader sees the old file or the new one, never a part. The file
/// gets `mode` (before any byte is written), whatever the old one had.
pub fn write_atomically(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// An error and all its causes on one line, without repeating a cause already in the text.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn record(info: &StepInfo, command: &str, message: String, exit_code: u8) -> ErrorRecord {
    ErrorRecord {
        step: info.section.to_owned(),
        command: command.to_owned(),
        message,
        exit_code,
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// Parses the command line; on a usage error prints clap's message and, when the state travels
/// through a pipe, passes the incoming state on with an error record so the pipe stops there.
pub fn parse_args<T: Parser>(section: &'static str) -> T {
    parse_args_from(section, std::env::args_os(), Ok)
}

/// [`parse_args`], then `settle`: the checks clap cannot make alone (a flag's value against a
/// file, a shared flag a subcommand does not use), whose error is a usage error like clap's.
pub fn parse_args_with<T: Parser>(
    section: &'static str,
    settle: impl FnOnce(T) -> Result<T, clap::Error>,
) -> T {
    parse_args_from(section, std::env::args_os(), settle)
}

fn parse_args_from<T: Parser>(
    section: &'static str,
    args: impl IntoIterator<Item = OsString>,
    settle: impl FnOnce(T) -> Result<T, clap::Error>,
) -> T {
    let args: Vec<OsString> = args.into_iter().collect();
    match T::try_parse_from(&args).and_then(settle) {
        Ok(parsed) => parsed,
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            let _ = err.print();
            let uses_file = args.iter().any(|a| {
                let a = a.to_string_lossy();
                a == "--state" || a.starts_with("--state=")
            });
            if !uses_file {
                let channel = Channel::Pipe;
                let input = channel.read().ok().and_then(|t| State::parse(&t).ok());
                let info = StepInfo {
                    section,
                    crate_name: "",
                };
                let message = err
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                channel.report_usage(input, &record(&info, "usage", message, EXIT_USAGE));
            }
            std::process::exit(EXIT_USAGE.into());
        }
    }
}

/// Runs one step command under the state contract. `body` gets the state to update (its own
/// section only) and the context; it must find bad input before it makes any AWS call.
pub async fn drive<E, F>(info: StepInfo, command: &str, common: &CommonArgs, body: F) -> ExitCode
where
    E: StepFailure,
    F: AsyncFnOnce(&mut State, &Context) -> Result<(), E>,
{
    drive_with_summary(info, command, common, None, body).await
}

/// [`drive`], and when run by hand (stdin a terminal, no `--state`) printing `summary` of the
/// resulting state on stdout instead of the document.
pub async fn drive_with_summary<E, F>(
    info: StepInfo,
    command: &str,
    common: &CommonArgs,
    summary: Option<fn(&State) -> String>,
    body: F,
) -> ExitCode
where
    E: StepFailure,
    F: AsyncFnOnce(&mut State, &Context) -> Result<(), E>,
{
    crate::logging::init(info.crate_name, common.verbose, common.quiet);
    let channel = Channel::of(common, summary);
    // Held until the state is written; dropped (released) when this function returns.
    let _lock = match &channel {
        Channel::File(path) => {
            let what = format!("{} {command}", info.section);
            match crate::lock::StateLock::acquire(path, common.lock_wait, &what, |line| {
                tracing::warn!("{line}")
            }) {
                Ok(lock) => Some(lock),
                Err(e) => {
                    // Another run owns the file: leave it to that run, write nothing.
                    tracing::error!("{}", error_chain(&e));
                    return ExitCode::from(EXIT_FAILED);
                }
            }
        }
        _ => None,
    };
    let usage = |input: Option<State>, err: &dyn std::error::Error| {
        let message = error_chain(err);
        tracing::error!("{message}");
        channel.report_usage(input, &record(&info, command, message, EXIT_USAGE));
        ExitCode::from(EXIT_USAGE)
    };

    let mut state = match read_state(&channel) {
        Ok(state) => state,
        Err(e) => return usage(None, &e),
    };

    if let Some(earlier) = state.error() {
        if common.resume {
            tracing::warn!(
                "resuming after the earlier failure of {} {}: {}",
                earlier.step,
                earlier.command,
                earlier.message
            );
            state.take_error();
        } else {
            tracing::error!(
                "an earlier step failed ({} {}: {}); passing its state on unchanged. \
                 Fix the cause and re-run with --resume",
                earlier.step,
                earlier.command,
                earlier.message
            );
            if let Channel::Pipe = channel
                && let Err(e) = channel.write(&state)
            {
                tracing::error!("{e}");
            }
            return ExitCode::from(EXIT_FAILED);
        }
    }

    let context = match context_for(&info, common, &state).await {
        Ok(context) => context,
        Err(e) => return usage(Some(state), &e),
    };
    let original = state.clone();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let clock = Instant::now();
    // SIGINT/SIGTERM stop the step where it is (its waits and calls are dropped); what it made
    // so far is in `state`, which is written below with an error record.
    let outcome = {
        let mut stop = Interrupt::install();
        tokio::select! {
            outcome = body(&mut state, &context) => outcome.map_err(Stopped::Failed),
            signal = stop.recv() => Err(Stopped::Interrupted(signal)),
        }
    };
    let seconds = clock.elapsed().as_secs_f64();

    let code = match outcome {
        Ok(()) if context.dry_run => {
            state = original;
            EXIT_OK
        }
        Ok(()) => {
            state.record_timing(info.section, command, &started_at, seconds);
            tracing::info!(
                "{} {command} done in {}",
                info.section,
                crate::cli::format_elapsed(std::time::Duration::from_secs_f64(seconds))
            );
            EXIT_OK
        }
        Err(Stopped::Failed(e)) if e.exit_code() == EXIT_USAGE => {
            return usage(Some(original), &e);
        }
        Err(Stopped::Failed(e)) => {
            let message = error_chain(&e);
            tracing::error!("{message}");
            state.record_timing(info.section, command, &started_at, seconds);
            state.set_error(&record(&info, command, message, e.exit_code()));
            e.exit_code()
        }
        Err(Stopped::Interrupted(signal)) => {
            let message = format!(
                "interrupted by {signal} after {}; the state has what was made so far. \
                 Run the same command again with --resume to go on, or the teardown to remove it",
                crate::cli::format_elapsed(std::time::Duration::from_secs_f64(seconds))
            );
            tracing::error!("{message}");
            if context.dry_run {
                state = original;
            } else {
                state.record_timing(info.section, command, &started_at, seconds);
            }
            state.set_error(&record(&info, command, message, EXIT_FAILED));
            EXIT_FAILED
        }
    };
    if let Err(e) = channel.write(&state) {
        tracing::error!("{e}");
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::from(code)
}

/// Runs a read-only command (a listing): the state, if any, is only read (from `--state`, or
/// stdin when it is not a terminal) for facts; `body` returns what to print on stdout.
pub async fn query<E, F>(info: StepInfo, common: &CommonArgs, body: F) -> ExitCode
where
    E: StepFailure + 'static,
    F: AsyncFnOnce(&State, &Context) -> Result<String, E>,
{
    crate::logging::init(info.crate_name, common.verbose, common.quiet);
    let channel = Channel::of(common, None);
    let state = match read_state(&channel) {
        Ok(state) => state,
        Err(e) => return finish(Err((&e, EXIT_USAGE))),
    };
    let context = match context_for(&info, common, &state).await {
        Ok(context) => context,
        Err(e) => return finish(Err((&e, EXIT_USAGE))),
    };
    match body(&state, &context).await {
        Ok(text) => finish(Ok(text)),
        Err(e) => finish(Err((&e, read_only_exit_code(&e)))),
    }
}

/// The exit code of a command that changes nothing (`query`, `stateless`): its own, or 2 when it
/// failed for want of usable AWS credentials ([`crate::aws::CredentialsError`]), as a step's
/// first AWS call would.
fn read_only_exit_code<E: StepFailure + 'static>(err: &E) -> u8 {
    if crate::aws::CredentialsError::found_in(err).is_some() {
        EXIT_USAGE
    } else {
        err.exit_code()
    }
}

/// Runs a command that reads and writes no state but needs AWS (`eks-cluster token`): the region
/// comes from `--region`, else the environment or the profile; `body` returns what to print on
/// stdout. Exit 0, 1, or 2 for bad input (a missing region included).
pub async fn stateless<E, F>(info: StepInfo, common: &CommonArgs, body: F) -> ExitCode
where
    E: StepFailure + 'static,
    F: AsyncFnOnce(&Context) -> Result<String, E>,
{
    crate::logging::init(info.crate_name, common.verbose, common.quiet);
    let context = match context_for(&info, common, &State::new()).await {
        Ok(context) => context,
        Err(e) => return finish(Err((&e, EXIT_USAGE))),
    };
    match body(&context).await {
        Ok(text) => finish(Ok(text)),
        Err(e) => finish(Err((&e, read_only_exit_code(&e)))),
    }
}

/// Runs a command that needs neither state nor AWS (`template`): `body` returns what to print on
/// stdout. Exit 0, 1, or 2 for bad input.
pub fn offline<E, F>(info: StepInfo, common: &CommonArgs, body: F) -> ExitCode
where
    E: StepFailure,
    F: FnOnce() -> Result<String, E>,
{
    crate::logging::init(info.crate_name, common.verbose, common.quiet);
    match body() {
        Ok(text) => finish(Ok(text)),
        Err(e) => finish(Err((&e, e.exit_code()))),
    }
}

/// Prints the output of a command that writes no state, or logs its error; the exit code.
fn finish(outcome: Result<String, (&dyn std::error::Error, u8)>) -> ExitCode {
    match outcome {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                tracing::error!("cannot write to stdout: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
            ExitCode::from(EXIT_OK)
        }
        Err((err, code)) => {
            tracing::error!("{}", error_chain(err));
            ExitCode::from(code)
        }
    }
}

/// How a step's body ended when it did not succeed.
enum Stopped<E> {
    Failed(E),
    /// A signal stopped it (its name).
    Interrupted(&'static str),
}

/// SIGINT and SIGTERM, caught for the time a step's body runs (instead of killing the process),
/// so the state it made so far is written. Exit code 1 for both: the contract's "failed, the
/// state says what was made" (see DESIGN-NOTES.md).
struct Interrupt {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Interrupt {
    fn install() -> Interrupt {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt())
            .map_err(|e| tracing::warn!("cannot catch SIGINT: {e}"))
            .ok();
        let term = signal(SignalKind::terminate())
            .map_err(|e| tracing::warn!("cannot catch SIGTERM: {e}"))
            .ok();
        Interrupt { int, term }
    }

    async fn recv(&mut self) -> &'static str {
        async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = next(&mut self.int) => "SIGINT",
            () = next(&mut self.term) => "SIGTERM",
        }
    }
}

fn read_state(channel: &Channel) -> Result<State, Usage> {
    let text = channel.read()?;
    Ok(State::parse(&text)?)
}

/// Region (flag, then the state's `cluster.region` or the step's own `region`, then the
/// environment) and the AWS configuration built from it.
async fn context_for(
    info: &StepInfo,
    common: &CommonArgs,
    state: &State,
) -> Result<Context, Usage> {
    let from_state = crate::facts::ClusterFacts::region_in(state)
        .or_else(|| state.str_at(info.section, "region"))
        .map(str::to_owned);
    let from_env = if common.region.is_none() && from_state.is_none() {
        environment_region(common.profile.as_deref()).await
    } else {
        None
    };
    let (region, _) = pick_region(
        common.region.as_deref(),
        from_state.as_deref(),
        from_env.as_deref(),
    )?;
    Ok(Context {
        aws: load_config(&region, common.profile.as_deref()).await,
        region,
        dry_run: common.dry_run,
        caller: tokio::sync::OnceCell::new(),
    })
}

/// Runs `future` on a new multi-threaded runtime (for `main`).
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
        .block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner detail")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: inner detail")]
    struct Repeats(#[source] Inner);

    #[test]
    fn chain_joins_causes_once() {
        assert_eq!(error_chain(&Outer(Inner)), "outer: inner detail");
        assert_eq!(error_chain(&Repeats(Inner)), "outer: inner detail");
    }

    #[test]
    fn atomic_write_is_private_and_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomically(&path, "new", PRIVATE).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn atomic_write_gives_the_mode_asked_and_makes_new_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.yaml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&path, "shared", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "shared");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "the mode asked, not the old file's");
        let new = dir.path().join("new.yaml");
        write_atomically(&new, "made", PRIVATE).unwrap();
        let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
