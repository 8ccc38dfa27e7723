//! Faults on the way to moto, as a flaky AWS gives them: throttling, HTTP 500 and 503, dropped
//! connections and slow answers, on a share of the calls chosen by a seeded generator (the same
//! seed faults the same positions in the sequence of calls); and lost answers on a share of the
//! mutating calls (moto makes the change, the answer never arrives, the SDK sends the call again). Installed as a rule of an
//! [`AwsProxy`]; [`Faults::stats`] says what was injected.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::awsproxy::{AwsProxy, AwsReply, AwsRequest, Verdict};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The service's throttling error (`Throttling`, `RequestLimitExceeded`,
    /// `TooManyRequestsException`).
    Throttle,
    /// HTTP 500 `InternalError` / `InternalFailure`.
    ServerError,
    /// HTTP 503 `ServiceUnavailable`.
    Unavailable,
    /// The connection closed with no answer (moto never sees the call).
    Drop,
    /// The answer comes late (then normally).
    Slow,
    /// moto carries the call out, then the connection closes without its answer: the change
    /// is made and the caller does not know it. Only on mutating calls, with its own rate.
    LostAnswer,
}

impl Fault {
    /// The kinds picked at the plan's `rate`, in a fixed order ([`Fault::LostAnswer`] has a rate
    /// of its own).
    pub const ALL: [Fault; 5] = [
        Fault::Throttle,
        Fault::ServerError,
        Fault::Unavailable,
        Fault::Drop,
        Fault::Slow,
    ];
}

/// What to inject.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Share of calls faulted, 0.0 to 1.0.
    pub rate: f64,
    /// Seed of the generator.
    pub seed: u64,
    /// Kinds to pick from, evenly.
    pub kinds: Vec<Fault>,
    /// How late a [`Fault::Slow`] answer is.
    pub slow_by: Duration,
    /// Share of mutating calls whose answer is lost ([`Fault::LostAnswer`]), rolled before the
    /// other kinds.
    pub lost_answer_rate: f64,
}

impl FaultPlan {
    /// Every kind of fault on `rate` of the calls.
    pub fn new(rate: f64, seed: u64) -> FaultPlan {
        FaultPlan {
            rate,
            seed,
            kinds: Fault::ALL.to_vec(),
            slow_by: Duration::from_secs(2),
            lost_answer_rate: rate,
        }
    }
}

/// What was injected so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Calls seen.
    pub calls: u64,
    /// Faults injected, by kind.
    pub injected: std::collections::BTreeMap<String, u64>,
    /// The calls whose answer was lost, in order (`service Action`).
    pub lost: Vec<String>,
}

impl FaultStats {
    /// All faults injected.
    pub fn total(&self) -> u64 {
        self.injected.values().sum()
    }
}

/// SplitMix64: small, fast, and the same sequence for the same seed (the fault proxies' dice).
#[derive(Debug)]
pub(crate) struct Generator(u64);

impl Generator {
    /// The generator of `seed`.
    pub(crate) fn new(seed: u64) -> Generator {
        Generator(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug)]
struct Inner {
    plan: FaultPlan,
    generator: Generator,
    stats: FaultStats,
    enabled: bool,
}

/// Loses the answer to the first call of each of `actions` (`CreateRole`, ...): moto carries it
/// out, the connection closes without the answer, and the caller's SDK sends it again. Returns
/// the calls whose answer was lost so far.
pub fn lose_first_answers(proxy: &AwsProxy, actions: &[&str]) -> Arc<Mutex<Vec<String>>> {
    let pending: Mutex<Vec<String>> = Mutex::new(actions.iter().map(|a| (*a).to_owned()).collect());
    let lost = Arc::new(Mutex::new(Vec::new()));
    let seen = lost.clone();
    proxy.rule(move |request| {
        let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.iter().position(|a| *a == request.action) {
            Some(i) => {
                pending.remove(i);
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(request.name());
                Verdict::ForwardThenDrop
            }
            None => Verdict::Pass,
        }
    });
    lost
}

/// Faults installed on a proxy; switch them off with [`Faults::stop`].
#[derive(Debug, Clone)]
pub struct Faults {
    inner: Arc<Mutex<Inner>>,
}

impl Faults {
    /// Installs `plan` as a rule of `proxy` (after the rules already there).
    pub fn install(proxy: &AwsProxy, plan: FaultPlan) -> Faults {
        let faults = Faults {
            inner: Arc::new(Mutex::new(Inner {
                generator: Generator(plan.seed),
                plan,
                stats: FaultStats::default(),
                enabled: true,
            })),
        };
        let rule = faults.clone();
        proxy.rule(move |request| rule.decide(request));
        faults
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The verdict for one call.
    pub fn decide(&self, request: &AwsRequest) -> Verdict {
        let mut inner = self.lock();
        if !inner.enabled {
            return Verdict::Pass;
        }
        inner.stats.calls += 1;
        if request.is_mutating() {
            let lose = inner.generator.unit() < inner.plan.lost_answer_rate;
            if lose {
                *inner
                    .stats
                    .injected
                    .entry(format!("{:?}", Fault::LostAnswer))
                    .or_default() += 1;
                inner.stats.lost.push(request.name());
                return Verdict::ForwardThenDrop;
            }
        }
        let roll = inner.generator.unit();
        if roll >= inner.plan.rate || inner.plan.kinds.is_empty() {
            return Verdict::Pass;
        }
        let pick = (inner.generator.next() % inner.plan.kinds.len() as u64) as usize;
        let fault = inner.plan.kinds[pick];
        *inner
            .stats
            .injected
            .entry(format!("{fault:?}"))
            .or_default() += 1;
        let slow_by = inner.plan.slow_by;
        drop(inner);
        verdict(fault, request, slow_by)
    }

    /// Stops injecting (calls pass through from now on).
    pub fn stop(&self) {
        self.lock().enabled = false;
    }

    /// What was injected so far.
    pub fn stats(&self) -> FaultStats {
        self.lock().stats.clone()
    }
}

fn verdict(fault: Fault, request: &AwsRequest, slow_by: Duration) -> Verdict {
    match fault {
        Fault::Throttle => Verdict::Reply(AwsReply::throttled(request)),
        Fault::ServerError => {
            let code = if request.service == "eks" {
                "ServerException"
            } else {
                "InternalError"
            };
            Verdict::Reply(AwsReply::error(
                request,
                500,
                code,
                "We encountered an internal error. Please try again.",
            ))
        }
        Fault::Unavailable => Verdict::Reply(AwsReply::error(
            request,
            503,
            "ServiceUnavailable",
            "Service is unavailable. Please try again.",
        )),
        Fault::Drop => Verdict::Drop,
        Fault::Slow => Verdict::Delay(slow_by),
        Fault::LostAnswer => Verdict::ForwardThenDrop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AwsRequest {
        AwsRequest::for_tests("iam", "ListRoles")
    }

    #[test]
    fn same_seed_same_faults_and_the_rate_holds() {
        let run = |seed| {
            let faults = Faults {
                inner: Arc::new(Mutex::new(Inner {
                    plan: FaultPlan::new(0.3, seed),
                    generator: Generator(seed),
                    stats: FaultStats::default(),
                    enabled: true,
                })),
            };
            let verdicts: Vec<String> = (0..2000)
                .map(|_| format!("{:?}", faults.decide(&request())))
                .map(|v| v.split('(').next().unwrap_or_default().to_owned())
                .collect();
            (verdicts, faults.stats())
        };
        let (a, stats) = run(7);
        let (b, _) = run(7);
        let (c, _) = run(8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(stats.calls, 2000);
        let share = stats.total() as f64 / 2000.0;
        assert!((0.25..0.35).contains(&share), "{share}");
        assert_eq!(stats.injected.len(), Fault::ALL.len(), "{stats:?}");
    }

    #[test]
    fn every_kind_answers_as_the_service_would() {
        let r = request();
        match verdict(Fault::Throttle, &r, Duration::ZERO) {
            Verdict::Reply(reply) => assert!(reply.text().contains("<Code>Throttling</Code>")),
            other => panic!("{other:?}"),
        }
        match verdict(Fault::Unavailable, &r, Duration::ZERO) {
            Verdict::Reply(reply) => assert_eq!(reply.status, 503),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            verdict(Fault::Drop, &r, Duration::ZERO),
            Verdict::Drop
        ));
        assert!(matches!(
            verdict(Fault::Slow, &r, Duration::from_secs(1)),
            Verdict::Delay(d) if d == Duration::from_secs(1)
        ));
    }

    #[test]
    fn stopped_faults_pass_everything() {
        let faults = Faults {
            inner: Arc::new(Mutex::new(Inner {
                plan: FaultPlan::new(1.0, 1),
                generator: Generator(1),
                stats: FaultStats::default(),
                enabled: true,
            })),
        };
        assert!(!matches!(faults.decide(&request()), Verdict::Pass));
        faults.stop();
        assert!(matches!(faults.decide(&request()), Verdict::Pass));
    }
}
