//! The whole pipeline on a flaky AWS and a flaky API server: a seeded share of AWS calls gets
//! throttled, HTTP 500/503, a dropped connection or a slow answer, and a share of mutating calls
//! loses its answer after moto made the change (through the hardened proxy in front of moto); a
//! share of Kubernetes requests gets 429/503, a connection closed before or after the request
//! went through, or a reset, and a share of watches is cut. Install, a re-run of it and the
//! teardown each end in one run.
//! Every step retries within its bounds: install answers 200, teardown leaves nothing, nothing
//! is made twice. When the faults never stop, the step fails clearly within its timeout and
//! the teardown still removes what was made. Each run prints the faults injected.

use eks_fa_e2e::{Bed, FaultSetting, INSTALL, TEARDOWN};
use testbed::faults::FaultPlan;
use testbed::kubefaults::KubeFaultPlan;
use testbed::run::assert_exit;

async fn whole_pipeline_with(rate: f64, seed: u64) {
    let bed = Bed::with_faults(FaultSetting {
        aws: Some(FaultPlan::new(rate, seed)),
        kube: Some(KubeFaultPlan::new(rate, seed)),
    })
    .await;
    let cluster = bed.create_cluster().await;
    let installed = bed.pipe(INSTALL, &cluster.to_string());
    assert_exit(&installed, 0);
    let state = installed.json();
    assert!(state.get("error").is_none(), "{state}");
    assert!(
        state["deploy"]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(".elb.amazonaws.com/")),
        "{state}"
    );
    // Nothing made twice.
    let sdk = bed.sdk().await;
    let roles = sdk.iam.list_roles().send().await.unwrap();
    let names: Vec<&str> = roles.roles().iter().map(|r| r.role_name()).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(names.len(), unique.len(), "{names:?}");
    assert_eq!(
        sdk.iam
            .list_open_id_connect_providers()
            .send()
            .await
            .unwrap()
            .open_id_connect_provider_list()
            .len(),
        1
    );
    let stacks = sdk.cfn.describe_stacks().send().await.unwrap();
    assert_eq!(
        stacks.stacks().len(),
        2,
        "the network and the ALB group stacks"
    );
    assert_eq!(
        sdk.eks
            .list_clusters()
            .send()
            .await
            .unwrap()
            .clusters()
            .len(),
        1
    );

    // A re-run of the whole install through the same faults changes nothing and ends in one go.
    let again = bed.pipe(INSTALL, &installed.stdout);
    assert_exit(&again, 0);
    assert!(again.json().get("error").is_none());

    let teardown = bed.pipe(TEARDOWN, &again.stdout);
    bed.finish_cluster_delete(&teardown);
    bed.assert_nothing_left().await;

    let aws = bed.aws_faults.as_ref().unwrap().stats();
    let kube = bed.kube_faults.as_ref().unwrap().stats();
    eprintln!(
        "faults at {:.0}% (seed {seed}): AWS {} of {} calls {:?}; Kubernetes {} of {} requests \
         (429: {}, 503: {}, closed before forwarding: {}, answer lost: {}, reset: {}), \
         {} of {} watches cut",
        rate * 100.0,
        aws.total(),
        aws.calls,
        aws.injected,
        kube.requests_faulted(),
        kube.requests,
        kube.too_many_requests,
        kube.unavailable,
        kube.closed_before_forwarding,
        kube.closed_after_forwarding,
        kube.resets,
        kube.watches_cut,
        kube.watches
    );
    assert!(aws.total() > 0 && kube.total() > 0, "faults were injected");
    eprintln!("answers lost (moto made the change): {:?}", aws.lost);
    assert!(
        !aws.lost.is_empty(),
        "answers to mutating AWS calls were lost"
    );
    assert!(
        kube.closed_before_forwarding + kube.closed_after_forwarding + kube.resets > 0,
        "Kubernetes connections were dropped"
    );
}

/// The seeds to run: `EKS_FA_FAULT_SEEDS` (comma separated; `make soak` sets several), else
/// `default` alone.
fn seeds(default: u64) -> Vec<u64> {
    match std::env::var("EKS_FA_FAULT_SEEDS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("EKS_FA_FAULT_SEEDS: `{s}` is not a number"))
            })
            .collect(),
        _ => vec![default],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_pipeline_rides_out_ten_percent_faults() {
    for seed in seeds(10) {
        whole_pipeline_with(0.10, seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_pipeline_rides_out_thirty_percent_faults() {
    for seed in seeds(30) {
        whole_pipeline_with(0.30, seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_that_never_stop_fail_clearly_and_the_teardown_still_cleans_up() {
    let bed = Bed::new().await;
    let cluster = bed.create_cluster().await;
    // From now on every AWS call is throttled.
    let mut plan = FaultPlan::new(1.0, 1);
    plan.kinds = vec![testbed::faults::Fault::Throttle];
    plan.lost_answer_rate = 0.0;
    let faults = testbed::faults::Faults::install(&bed.aws.proxy, plan);
    let started = std::time::Instant::now();
    let oidc = bed.pipe("{bin}/eks-oidc ensure", &cluster.to_string());
    assert_exit(&oidc, 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(240),
        "gave up within its retry bounds: {:?}",
        started.elapsed()
    );
    let state = oidc.json();
    let message = state["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Throttling") || message.contains("Rate exceeded"),
        "the error names the cause: {message}"
    );
    assert!(
        state["cluster"]["name"].is_string(),
        "the cluster section is kept"
    );
    eprintln!(
        "never-ending throttling: {} calls refused, gave up after {:?}",
        faults.stats().total(),
        started.elapsed()
    );
    // AWS comes back: the teardown removes everything that was made.
    faults.stop();
    let teardown = bed.pipe(TEARDOWN, &oidc.stdout);
    bed.finish_cluster_delete(&teardown);
    bed.assert_nothing_left().await;
}
