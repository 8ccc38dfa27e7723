//! Logging to stderr in the seed's format, `[YYYY-MM-DD HH:MM:SS UTC] message`.
//!
//! Our crates log at info, everything else (the AWS SDKs, hyper, kube) at warn; `-v` and `-vv`
//! raise ours to debug and trace (and the others to info and debug), `-q` lowers ours to warn, and
//! `RUST_LOG` replaces the whole filter.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The filter for a binary whose crate is `crate_name`.
pub fn filter_directives(crate_name: &str, verbose: u8, quiet: bool) -> String {
    let (ours, others) = match (quiet, verbose) {
        (true, _) => ("warn", "warn"),
        (false, 0) => ("info", "warn"),
        (false, 1) => ("debug", "info"),
        (false, _) => ("trace", "debug"),
    };
    format!("{others},common={ours},{crate_name}={ours}")
}

/// Installs the stderr logger. Safe to call once per process; later calls do nothing.
pub fn init(crate_name: &str, verbose: u8, quiet: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(filter_directives(crate_name, verbose, quiet)));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(SeedFormat)
        .try_init();
}

/// Current time as the seed printed it.
pub fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// `[time] message`, with the level for anything but info and the target for debug and trace.
#[derive(Debug, Clone, Copy)]
struct SeedFormat;

impl<S, N> FormatEvent<S, N> for SeedFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(writer, "[{}] ", timestamp())?;
        let level = *meta.level();
        if level != Level::INFO {
            write!(writer, "{level} ")?;
        }
        if level > Level::INFO {
            write!(writer, "{}: ", meta.target())?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_levels() {
        assert_eq!(
            filter_directives("eks_sg_stack", 0, false),
            "warn,common=info,eks_sg_stack=info"
        );
        assert_eq!(
            filter_directives("eks_sg_stack", 2, false),
            "debug,common=trace,eks_sg_stack=trace"
        );
        assert_eq!(
            filter_directives("irsa", 0, true),
            "warn,common=warn,irsa=warn"
        );
    }

    #[test]
    fn timestamp_shape() {
        let ts = timestamp();
        assert_eq!(ts.len(), "2026-11-25 21:02:23 UTC".len(), "{ts}");
        assert!(ts.ends_with(" UTC"));
    }
}
