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

/// The watcher against a Kubernetes client whose API server is a fake in this process
/// (`tower-test`): each poll's event list is what a controller repeating a failure would have
/// written by then, so what `said` reads off the wire (the field selector it asks with, each
/// event's reason, count and timestamps) decides when the wait stops.
#[cfg(test)]
mod fakes {
    use std::sync::{Arc, Mutex};

    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::json;
    use tower_test::mock;

    use super::*;

    const NS: &str = "game-2048";
    const NAME: &str = "2048-ingress";
    const UID: &str = "u-1";

    fn event(name: &str, reason: &str, count: i32, last: &str, version: u64) -> serde_json::Value {
        since(name, reason, count, "2026-01-01T00:00:00Z", last, version)
    }

    /// An event first written at `first`, last at `last`.
    fn since(
        name: &str,
        reason: &str,
        count: i32,
        first: &str,
        last: &str,
        version: u64,
    ) -> serde_json::Value {
        json!({
            "metadata": {"name": name, "namespace": NS, "resourceVersion": version.to_string()},
            "involvedObject": {"kind": "Ingress", "namespace": NS, "name": NAME, "uid": UID},
            "reason": reason,
            "message": format!("{reason}: couldn't auto-discover subnets"),
            "type": if reason == SUCCESS_REASON { "Normal" } else { "Warning" },
            "count": count,
            "firstTimestamp": first,
            "lastTimestamp": last,
            "source": {"component": "ingress"},
        })
    }

    /// Serves `lists(poll)` as the event list of each poll, after checking the request is the
    /// list of this Ingress's events (by uid); the queries seen are kept.
    fn fake_api(
        lists: impl Fn(usize) -> Vec<serde_json::Value> + Send + 'static,
    ) -> (Client, Arc<Mutex<Vec<String>>>) {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let seen = queries.clone();
        tokio::spawn(async move {
            let mut poll = 0;
            while let Some((request, reply)) = handle.next_request().await {
                assert_eq!(request.method(), http::Method::GET);
                assert_eq!(
                    request.uri().path(),
                    format!("/api/v1/namespaces/{NS}/events")
                );
                seen.lock()
                    .unwrap()
                    .push(request.uri().query().unwrap_or_default().to_owned());
                let body = json!({
                    "apiVersion": "v1",
                    "kind": "EventList",
                    "metadata": {"resourceVersion": "100"},
                    "items": lists(poll),
                });
                reply.send_response(
                    Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                );
                poll += 1;
            }
        });
        (Client::new(service, "default"), queries)
    }

    /// The verdicts of `polls` polls, one every 10 s.
    async fn verdicts(client: &Client, polls: u32) -> Vec<Verdict> {
        let start = Instant::now();
        let mut watch = Watch::default();
        let mut out = Vec::new();
        for n in 0..polls {
            let events = said(client, NS, NAME, UID).await.expect("the list answers");
            out.push(watch.observe(&events, start + Duration::from_secs(10) * n));
        }
        out
    }

    /// The controller fails again at every try (the event's count and lastTimestamp move): it
    /// failed before, succeeded once since (an older lastTimestamp, a later firstTimestamp than
    /// the failure's), and another component wrote a later event; the wait goes on while the
    /// failure is younger than FAILURE_PERSISTS and stops once it has held that long.
    #[tokio::test]
    async fn a_failure_the_controller_repeats_stops_the_wait_after_the_window() {
        let (client, queries) = fake_api(|poll| {
            let n = poll as i32;
            vec![
                since(
                    "i.ok",
                    SUCCESS_REASON,
                    1,
                    "2025-12-31T23:00:00Z",
                    "2025-12-31T23:00:00Z",
                    5,
                ),
                since(
                    "i.sched",
                    "Scheduled",
                    9,
                    "2026-01-01T01:00:00Z",
                    "2026-01-01T01:00:00Z",
                    1000 + poll as u64,
                ),
                since(
                    "i.fail",
                    "FailedBuildModel",
                    n + 1,
                    "2025-12-31T22:00:00Z",
                    &format!("2026-01-01T00:00:{:02}Z", 10 * n),
                    10 + poll as u64,
                ),
            ]
        });
        let seen = verdicts(&client, 5).await;
        let kinds: Vec<&str> = seen
            .iter()
            .map(|v| match v {
                Verdict::Quiet => "quiet",
                Verdict::Failing(_) => "failing",
                Verdict::Persists { .. } => "persists",
            })
            .collect();
        // 0 s, 10 s, 20 s: failing; 30 s: held for the whole window.
        assert_eq!(kinds[..4], ["failing", "failing", "failing", "persists"]);
        let Verdict::Persists { said, for_ } = &seen[3] else {
            unreachable!()
        };
        assert_eq!(said.reason, "FailedBuildModel");
        assert_eq!(said.count, 4);
        assert_eq!(*for_, FAILURE_PERSISTS);
        assert!(advice(said).contains("kubernetes.io/role/elb"));
        let query = queries.lock().unwrap()[0].clone();
        assert!(
            query.contains("involvedObject.uid%3Du-1")
                && query.contains("involvedObject.kind%3DIngress"),
            "the list asks for this Ingress's events by uid: {query}"
        );
    }

    /// A failure written before this wait and never repeated (count and time stay) is only
    /// shown; a success written after it (same second, later write) clears it.
    #[tokio::test]
    async fn a_stale_failure_or_a_later_success_never_stops_the_wait() {
        let (client, _) = fake_api(|_| {
            vec![event(
                "i.fail",
                "FailedDeployModel",
                7,
                "2026-01-01T00:00:00Z",
                10,
            )]
        });
        let seen = verdicts(&client, 6).await;
        assert!(
            seen.iter().all(|v| matches!(v, Verdict::Failing(_))),
            "{seen:?}"
        );

        let (client, _) = fake_api(|poll| {
            let n = poll as i32;
            let stamp = format!("2026-01-01T00:00:{:02}Z", 10 * n);
            vec![
                event(
                    "i.fail",
                    "FailedBuildModel",
                    n + 1,
                    &stamp,
                    10 + 2 * poll as u64,
                ),
                event("i.ok", SUCCESS_REASON, n + 1, &stamp, 11 + 2 * poll as u64),
            ]
        });
        let seen = verdicts(&client, 6).await;
        assert!(seen.iter().all(|v| *v == Verdict::Quiet), "{seen:?}");
    }
}
