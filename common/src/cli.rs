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

/// Parses a duration such as `90`, `90s`, `15m`, `1h30m` (clap value parser).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let hint = "use seconds or a number with a unit: 90, 90s, 15m, 1h30m";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration; {hint}"));
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("`{text}` is not a duration; {hint}")),
        };
        let value: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration; {hint}"))?;
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{text}` is too long"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!("`{text}` has a number without a unit; {hint}"));
    }
    Ok(Duration::from_secs(total))
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
        for bad in ["", "m", "10x", "1h30", "-5", "1.5m"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn elapsed_like_the_seed() {
        assert_eq!(format_elapsed(Duration::from_secs(3725)), "1h:2m:5s");
        assert_eq!(format_elapsed(Duration::from_millis(999)), "0h:0m:0s");
    }
}
