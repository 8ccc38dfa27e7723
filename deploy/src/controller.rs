//! What the AWS Load Balancer Controller says about an Ingress while `apply` waits for its ALB.
//!
//! The controller records why it cannot make the ALB as `Warning` events on the Ingress
//! (`FailedBuildModel`: the model could not be built, as when no subnets are found;
//! `FailedDeployModel`: an AWS call failed), and `Normal` `SuccessfullyReconciled` once it has
//! done its work. It records them as core/v1 Events (client-go's recorder, component `ingress`):
//! a repeat of the same event raises the `count` of the first one.
//!
//! **When a failure persists** ([`Watch`]): the latest of the controller's events about the
//! Ingress (by `lastTimestamp`, then by write order) is such a Warning, the controller was seen
//! failing again during this wait (a failure event's `count` or `lastTimestamp` moved, or a new
//! one came), no `SuccessfullyReconciled` came since, and that has held for
//! [`FAILURE_PERSISTS`]. Then `apply` stops with the event's reason and message instead of
//! waiting out `--timeout`. A failure that is not seen again (an old event, from before a fix)
//! is only shown: the controller retries with a backoff that grows to 1000 s, and its next try
//! may succeed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::Error;

/// How long a failure must stay the controller's latest word, seen repeated, before `apply`
/// gives up on it. The controller retries a failed Ingress at once, then after 5 ms doubling
/// (controller-runtime's default), so within 30 s it has tried a dozen times, the last about
/// 20 s in: a cause that passes (a throttled call, a role that just became usable) has had its
/// chance to turn into `SuccessfullyReconciled`.
pub const FAILURE_PERSISTS: Duration = Duration::from_secs(30);
/// The reasons of the controller's events that say it could not make the ALB.
pub const FAILURE_REASONS: [&str; 2] = ["FailedBuildModel", "FailedDeployModel"];
/// The reason of the controller's event that says it made (or updated) the ALB.
pub const SUCCESS_REASON: &str = "SuccessfullyReconciled";

/// One of the controller's events about the Ingress, as far as the wait needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// The Event's name (a repeat keeps it).
    pub name: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    /// `lastTimestamp` (else `eventTime`, else `firstTimestamp`).
    pub last: Timestamp,
    /// The Event's resourceVersion, for the order of writes within one second.
    pub version: u64,
}

impl Said {
    fn is_failure(&self) -> bool {
        FAILURE_REASONS.contains(&self.reason.as_str())
    }

    fn of(event: &Event) -> Option<Said> {
        let reason = event.reason.clone()?;
        if !FAILURE_REASONS.contains(&reason.as_str()) && reason != SUCCESS_REASON {
            return None;
        }
        let stamp = event
            .last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| event.event_time.as_ref().map(|t| t.0))
            .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        Some(Said {
            name: event.metadata.name.clone().unwrap_or_default(),
            reason,
            message: event.message.clone().unwrap_or_default(),
            count: event.count.unwrap_or(1),
            last: stamp,
            version: event
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        })
    }
}

/// What the wait makes of the controller's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing said, or its latest word is a success.
    Quiet,
    /// Its latest word is a failure (shown while waiting).
    Failing(Said),
    /// A failure that persists: give up.
    Persists { said: Said, for_: Duration },
}

/// The controller's events seen so far in one wait.
#[derive(Debug, Default)]
pub struct Watch {
    /// (count, last) of each failure event seen, by name.
    seen: HashMap<String, (i32, Timestamp)>,
    polls: u32,
    /// Since when the latest word has been a failure (reset by a success).
    failing_since: Option<Instant>,
    /// Whether a failure was seen again since then.
    repeated: bool,
    /// The failures already logged (reason, message).
    logged: Vec<(String, String)>,
}

impl Watch {
    /// Takes in one poll's events (the controller's, about this Ingress) at `now`.
    pub fn observe(&mut self, said: &[Said], now: Instant) -> Verdict {
        let first_poll = self.polls == 0;
        self.polls += 1;
        for failure in said.iter().filter(|s| s.is_failure()) {
            let now_seen = (failure.count, failure.last);
            match self.seen.insert(failure.name.clone(), now_seen) {
                Some(before) if before != now_seen => self.repeated = true,
                None if !first_poll => self.repeated = true,
                _ => {}
            }
        }
        let latest = said
            .iter()
            .max_by(|a, b| a.last.cmp(&b.last).then(a.version.cmp(&b.version)));
        let Some(latest) = latest.filter(|s| s.is_failure()) else {
            self.failing_since = None;
            self.repeated = false;
            return Verdict::Quiet;
        };
        let since = *self.failing_since.get_or_insert(now);
        let key = (latest.reason.clone(), latest.message.clone());
        if !self.logged.contains(&key) {
            tracing::warn!(
                "the AWS Load Balancer Controller reports {}: {}",
                latest.reason,
                latest.message
            );
            self.logged.push(key);
        }
        let for_ = now.saturating_duration_since(since);
        if self.repeated && for_ >= FAILURE_PERSISTS {
            Verdict::Persists {
                said: latest.clone(),
                for_,
            }
        } else {
            Verdict::Failing(latest.clone())
        }
    }
}

/// The controller's events about the Ingress `namespace/name` of uid `uid` (events of an earlier
/// Ingress of that name are not about this one).
pub async fn said(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<Vec<Said>, Error> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let fields =
        format!("involvedObject.kind=Ingress,involvedObject.name={name},involvedObject.uid={uid}");
    let list = api
        .list(&ListParams::default().fields(&fields))
        .await
        .map_err(|source| Error::Kube {
            action: "list",
            target: format!("the events of Ingress {namespace}/{name}"),
            source: Box::new(source),
        })?;
    Ok(list.items.iter().filter_map(Said::of).collect())
}

/// The advice that goes with a persisting failure.
pub fn advice(said: &Said) -> &'static str {
    if said.message.contains("subnet") {
        "The ALB needs subnets in two zones at least: tag the public subnets kubernetes.io/role/elb=1 (and not for another cluster; 8 free addresses each), or name them in the Ingress annotation alb.ingress.kubernetes.io/subnets."
    } else {
        "Fix what the message names."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(name: &str, reason: &str, count: i32, last: &str, version: u64) -> Said {
        Said {
            name: name.into(),
            reason: reason.into(),
            message: format!("{reason} message"),
            count,
            last: last.parse().unwrap(),
            version,
        }
    }

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:00:01Z";
    const T2: &str = "2026-01-01T00:00:02Z";

    #[test]
    fn a_failure_seen_again_for_the_whole_window_persists() {
        let start = Instant::now();
        let mut watch = Watch::default();
        assert_eq!(watch.observe(&[], start), Verdict::Quiet);
        let failed = said("i.1", "FailedBuildModel", 1, T0, 10);
        assert_eq!(
            watch.observe(std::slice::from_ref(&failed), start),
            Verdict::Failing(failed.clone()),
            "a new failure after the first poll counts as seen again"
        );
        let again = said("i.1", "FailedBuildModel", 2, T1, 11);
        let half = start + FAILURE_PERSISTS / 2;
        assert_eq!(
            watch.observe(std::slice::from_ref(&again), half),
            Verdict::Failing(again.clone())
        );
        let end = start + FAILURE_PERSISTS;
        assert_eq!(
            watch.observe(std::slice::from_ref(&again), end),
            Verdict::Persists {
                said: again,
                for_: FAILURE_PERSISTS
            }
        );
    }

    #[test]
    fn an_old_failure_never_seen_again_is_only_shown() {
        let start = Instant::now();
        let mut watch = Watch::default();
        let old = said("i.1", "FailedDeployModel", 7, T0, 10);
        for n in 0..5 {
            assert_eq!(
                watch.observe(std::slice::from_ref(&old), start + FAILURE_PERSISTS * n),
                Verdict::Failing(old.clone())
            );
        }
    }

    #[test]
    fn a_later_success_clears_the_failure() {
        let start = Instant::now();
        let mut watch = Watch::default();
        let failed = said("i.1", "FailedBuildModel", 3, T0, 10);
        watch.observe(std::slice::from_ref(&failed), start);
        let again = said("i.1", "FailedBuildModel", 4, T1, 12);
        // Same second, written later: the success is the latest.
        let ok = said("i.2", SUCCESS_REASON, 1, T1, 13);
        assert_eq!(
            watch.observe(&[again.clone(), ok.clone()], start + FAILURE_PERSISTS),
            Verdict::Quiet
        );
        // A failure after that starts its own window.
        let later = said("i.1", "FailedBuildModel", 5, T2, 14);
        let at = start + FAILURE_PERSISTS * 2;
        assert_eq!(
            watch.observe(&[later.clone(), ok], at),
            Verdict::Failing(later)
        );
    }
}
