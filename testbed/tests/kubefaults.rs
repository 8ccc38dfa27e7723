//! The Kubernetes fault proxy in front of the real API server: 429/503 as an overloaded API server
//! answers them, connections closed without an answer (before or after forwarding) or reset,
//! watch streams cut short, everything else passed through.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use testbed::controlplane::ControlPlane;
use testbed::kubefaults::{KubeFaultPlan, KubeFaultProxy, RequestFault};

const REFUSALS: [RequestFault; 2] = [RequestFault::TooManyRequests, RequestFault::Unavailable];

async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    client_with(kubeconfig, true).await
}

/// A kube-rs client; `retry` is kube's default retry of 429/503/504 (what our steps use).
async fn client_with(kubeconfig: &std::path::Path, retry: bool) -> kube::Client {
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    config.default_retry = retry;
    kube::Client::try_from(config).unwrap()
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"a": "b"}}))
        .unwrap()
}

#[tokio::test]
async fn passes_through_when_quiet_and_refuses_when_told() {
    let api = ControlPlane::start();
    let proxy = KubeFaultProxy::start(&api, KubeFaultPlan::new(0.0, 1));
    let maps: Api<ConfigMap> = Api::namespaced(client(&proxy.kubeconfig()).await, "default");
    maps.create(&PostParams::default(), &config_map("one"))
        .await
        .expect("through the proxy");
    assert!(maps.get_opt("one").await.unwrap().is_some());
    assert_eq!(proxy.stats().total(), 0);

    let loud = KubeFaultProxy::start(&api, KubeFaultPlan::new(1.0, 1).only(&REFUSALS));
    let maps: Api<ConfigMap> =
        Api::namespaced(client_with(&loud.kubeconfig(), false).await, "default");
    let mut codes = Vec::new();
    for _ in 0..6 {
        match maps.get("one").await {
            Err(kube::Error::Api(status)) => codes.push(status.code),
            other => panic!("expected an API error, got {other:?}"),
        }
    }
    codes.sort();
    codes.dedup();
    assert_eq!(codes, [429, 503], "both kinds of refusal");
    let stats = loud.stats();
    assert_eq!(stats.requests, 6);
    assert_eq!(stats.too_many_requests + stats.unavailable, 6);

    loud.stop_faults();
    assert!(maps.get("one").await.is_ok(), "quiet again");
}

#[tokio::test]
async fn kube_s_default_retries_ride_out_a_third_of_requests_refused() {
    let api = ControlPlane::start();
    let mut plan = KubeFaultPlan::new(0.3, 5).only(&REFUSALS);
    plan.watch_cut_rate = 0.0;
    let proxy = KubeFaultProxy::start(&api, plan);
    let maps: Api<ConfigMap> = Api::namespaced(client(&proxy.kubeconfig()).await, "default");
    for i in 0..10 {
        maps.create(&PostParams::default(), &config_map(&format!("m{i}")))
            .await
            .expect("retried through 429/503");
    }
    // `kube-root-ca.crt` is there too: the root CA publisher puts it in every namespace.
    let names: Vec<String> = maps
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .filter(|n| n.starts_with('m'))
        .collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(proxy.stats().total() > 0, "{:?}", proxy.stats());
}

#[tokio::test]
async fn cut_watches_end_early_and_whole_ones_stream() {
    let api = ControlPlane::start();
    let mut plan = KubeFaultPlan::new(0.0, 3);
    plan.watch_cut_rate = 1.0;
    plan.watch_cut_after = Duration::from_millis(400);
    let proxy = KubeFaultProxy::start(&api, plan);
    let maps: Api<ConfigMap> = Api::namespaced(client(&proxy.kubeconfig()).await, "default");
    let direct: Api<ConfigMap> = Api::namespaced(api.client().await, "default");

    let started = Instant::now();
    let mut stream = maps
        .watch(
            &WatchParams::default()
                .fields("metadata.name=seen")
                .timeout(30),
            "0",
        )
        .await
        .expect("the watch starts")
        .boxed();
    direct
        .create(&PostParams::default(), &config_map("seen"))
        .await
        .unwrap();
    let mut added = 0;
    while let Some(event) = stream.next().await {
        if let Ok(WatchEvent::Added(_)) = event {
            added += 1;
        }
    }
    assert_eq!(added, 1, "events before the cut come through");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the watch was cut, not timed out: {:?}",
        started.elapsed()
    );
    assert_eq!(proxy.stats().watches_cut, 1);
}

#[tokio::test]
async fn closed_and_reset_connections_get_no_answer() {
    let api = ControlPlane::start();
    let kinds = [
        (
            RequestFault::ClosedBeforeForwarding,
            false,
            "connection closed before message completed",
        ),
        (
            RequestFault::ClosedAfterForwarding,
            true,
            "connection closed before message completed",
        ),
        (RequestFault::Reset, false, "reset"),
    ];
    for (fault, forwarded, words) in kinds {
        let proxy = KubeFaultProxy::start(&api, KubeFaultPlan::new(1.0, 2).only(&[fault]));
        let maps: Api<ConfigMap> = Api::namespaced(client(&proxy.kubeconfig()).await, "default");
        let name = format!("{fault:?}").to_lowercase();
        let err = maps
            .create(&PostParams::default(), &config_map(&name))
            .await
            .expect_err("no answer");
        let text = common::step::error_chain(&err);
        assert!(text.to_lowercase().contains(words), "{fault:?}: {text}");
        assert!(
            common::kuberetry::is_transient(&err),
            "{fault:?} is transient: {text}"
        );
        proxy.stop_faults();
        assert_eq!(
            maps.get_opt(&name).await.unwrap().is_some(),
            forwarded,
            "{fault:?}: made only when forwarded"
        );
        let stats = proxy.stats();
        assert_eq!(stats.requests_faulted(), 1, "{stats:?}");
        assert_eq!(stats.total(), 1, "{stats:?}");
    }
}

#[tokio::test]
async fn the_steps_client_sends_idempotent_requests_again() {
    let api = ControlPlane::start();
    let direct: Api<ConfigMap> = Api::namespaced(api.client().await, "default");
    direct
        .create(&PostParams::default(), &config_map("there"))
        .await
        .unwrap();
    let plan = KubeFaultPlan::new(0.5, 9).only(&[
        RequestFault::ClosedBeforeForwarding,
        RequestFault::ClosedAfterForwarding,
        RequestFault::Reset,
    ]);
    let proxy = KubeFaultProxy::start(&api, plan);
    let client = common::kube::client_from_kubeconfig(&proxy.kubeconfig(), None)
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    for _ in 0..20 {
        assert!(maps.get("there").await.is_ok(), "{:?}", proxy.stats());
    }
    let stats = proxy.stats();
    assert!(
        stats.closed_before_forwarding > 0 && stats.closed_after_forwarding > 0 && stats.resets > 0,
        "{stats:?}"
    );
}
