//! The Kubernetes fault proxy in front of the stand-in: 429/503 as an overloaded API server
//! answers them, watch streams cut short, everything else passed through.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use testbed::kubeapi::KubeApi;
use testbed::kubefaults::{KubeFaultPlan, KubeFaultProxy};

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
    let api = KubeApi::start();
    let proxy = KubeFaultProxy::start(&api.url, KubeFaultPlan::new(0.0, 1));
    let maps: Api<ConfigMap> = Api::namespaced(client(&proxy.kubeconfig()).await, "default");
    maps.create(&PostParams::default(), &config_map("one"))
        .await
        .expect("through the proxy");
    assert!(maps.get_opt("one").await.unwrap().is_some());
    assert_eq!(proxy.stats().total(), 0);

    let loud = KubeFaultProxy::start(&api.url, KubeFaultPlan::new(1.0, 1));
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
    let api = KubeApi::start();
    let mut plan = KubeFaultPlan::new(0.3, 5);
    plan.watch_cut_rate = 0.0;
    let proxy = KubeFaultProxy::start(&api.url, plan);
    let maps: Api<ConfigMap> = Api::namespaced(client(&proxy.kubeconfig()).await, "default");
    for i in 0..10 {
        maps.create(&PostParams::default(), &config_map(&format!("m{i}")))
            .await
            .expect("retried through 429/503");
    }
    assert_eq!(
        maps.list(&Default::default()).await.unwrap().items.len(),
        10
    );
    assert!(proxy.stats().total() > 0, "{:?}", proxy.stats());
}

#[tokio::test]
async fn cut_watches_end_early_and_whole_ones_stream() {
    let api = KubeApi::start();
    let mut plan = KubeFaultPlan::new(0.0, 3);
    plan.watch_cut_rate = 1.0;
    plan.watch_cut_after = Duration::from_millis(400);
    let proxy = KubeFaultProxy::start(&api.url, plan);
    let maps: Api<ConfigMap> = Api::namespaced(client(&proxy.kubeconfig()).await, "default");
    let direct: Api<ConfigMap> = Api::namespaced(api.client().await, "default");

    let started = Instant::now();
    let mut stream = maps
        .watch(&WatchParams::default().timeout(30), "0")
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
