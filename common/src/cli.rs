//! Command-line flags every step shares, flattened into each binary's clap parser.

use std::path::PathBuf;
use std::time::Duration;

/// Flags common to every step. Flatten into the binary's top-level parser.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Read the state document from FILE and rewrite it atomically (mode 0600) instead of using
    /// stdin/stdout. A missing FILE is a new document.
    #[arg(long, value_name = "FILE", global = true)]
    pub state: Option<PathBuf>,

    /// AWS region. Precedence: this flag, then the state document, then AWS_REGION /
    /// AWS_DEFAULT_REGION / the profile's region.
    #[arg(long, value_name = "REGION", global = true)]
    pub region: Option<String>,

    /// AWS profile from the shared config files (else AWS_PROFILE, else `default`).
    #[arg(long, value_name = "NAME", global = true)]
    pub profile: Option<String>,

    /// Say what would be created or changed, and change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// Take a state carrying an `error` record from an earlier failed run: log the error, clear
    /// it and go on (without this the step passes such a state through and exits 1).
    #[arg(long, global = true)]
    pub resume: bool,

    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// With --state: how long to wait for another run that holds the state file's lock
    /// (FILE.lock) before giving up with nothing done (e.g. 90s, 30m; 0 gives up at once).
    #[arg(long, value_name = "DURATION", global = true, default_value = "30m", value_parser = parse_duration)]
    pub lock_wait: Duration,
}

/// Where the steps that reach Kubernetes (`eks-cluster create`, `irsa ensure`/`delete`,
/// `eks-deploy apply`/`delete`) reach it: flatten into the binary's top-level parser, so the
/// flags are taken before or after the subcommand; the binary's `cli` module then hands them to
/// the subcommand that uses them ([`KubeArgs::checked`]) and refuses them elsewhere
/// ([`KubeArgs::unused`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeArgs {
    /// Reach Kubernetes through this kubeconfig instead of the cluster's endpoint and an EKS
    /// token.
    #[arg(long, value_name = "PATH", global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// Context of --kubeconfig (default: its current-context).
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,
}

impl KubeArgs {
    /// The flags for a command that reaches Kubernetes, once the kubeconfig was read and the
    /// context (`--context`, else its current-context) found in it; else a usage error (exit
    /// 2, before any state is read or any call made) rendered by `command`.
    ///
    /// `--context` without `--kubeconfig` is refused: without it the cluster is reached through
    /// its endpoint and an EKS token, and no kubeconfig (not `KUBECONFIG`'s either) is read.
    /// (clap's `requires` cannot say it: it looks on one side of the subcommand only.)
    pub fn checked(&self, command: impl FnOnce() -> clap::Command) -> Result<Self, clap::Error> {
        match (&self.kubeconfig, &self.context) {
            (Some(path), context) => {
                crate::kube::kubeconfig_context(path, context.as_deref()).map_err(|e| {
                    command().error(clap::error::ErrorKind::ValueValidation, e.to_string())
                })?;
            }
            (None, Some(context)) => {
                return Err(command().error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    format!(
                        "--context {context} names a context of --kubeconfig, which is not \
                         given; pass --kubeconfig PATH too (without it the cluster is reached \
                         through its endpoint and an EKS token, and no kubeconfig is read)"
                    ),
                ));
            }
            (None, None) => {}
        }
        Ok(self.clone())
    }

    /// Refuses the flags for `subcommand`, which does not reach Kubernetes (`used_by`: the
    /// subcommands that do), as clap refuses a flag a subcommand does not have.
    pub fn unused(
        &self,
        subcommand: &str,
        used_by: &str,
        command: impl FnOnce() -> clap::Command,
    ) -> Result<(), clap::Error> {
        let given = match (&self.kubeconfig, &self.context) {
            (Some(_), _) => "--kubeconfig",
            (None, Some(_)) => "--context",
            (None, None) => return Ok(()),
        };
        let mut command = command();
        let message = format!(
            "{given} is not used by `{} {subcommand}`: it reaches no Kubernetes cluster \
             ({given} is for {used_by})",
            command.get_name()
        );
        Err(command.error(clap::error::ErrorKind::ArgumentConflict, message))
    }
}

/// `<binary> completions SHELL`: the shell completion script of the binary on stdout.
#[derive(Debug, Clone, clap::Args)]
pub struct Completions {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

impl Completions {
    /// Prints the completion script of `command` (the binary's clap command, named as the
    /// binary) for the shell; reads no state, makes no call. Exit 0, or 1 when stdout cannot
    /// be written.
    pub fn print(&self, mut command: clap::Command) -> std::process::ExitCode {
        use std::io::Write;
        let name = command.get_name().to_owned();
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut command, name, &mut script);
        let mut out = std::io::stdout().lock();
        match out.write_all(&script).and_then(|()| out.flush()) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cannot write to stdout: {e}");
                std::process::ExitCode::from(crate::step::EXIT_FAILED)
            }
        }
    }
}

/// Parses a duration (clap value parser): whole seconds (`90`), or `humantime`'s form, a
/// number with a unit, several summed (`90s`, `15m`, `1h30m`, `1h 30m`, `2min`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let hint = "use seconds or a number with a unit: 90, 90s, 15m, 1h30m";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration; {hint}"));
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration ({e}); {hint}"))
}

/// Formats a duration the way the seed's `time.sh` did: `0h:2m:5s`.
pub fn format_elapsed(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    format!("{}h:{}m:{}s", secs / 3600, (secs % 3600) / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        for bad in ["", "m", "10x", "1h30", "-5", "s10"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn elapsed_like_the_seed() {
        assert_eq!(format_elapsed(Duration::from_secs(3725)), "1h:2m:5s");
        assert_eq!(format_elapsed(Duration::from_millis(999)), "0h:0m:0s");
    }
}
