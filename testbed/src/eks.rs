//! A simulated EKS cluster: the real control plane ([`crate::controlplane`]) and, beside it, what
//! EKS and the AWS Load Balancer Controller's pods do that no Kubernetes binary here does: the
//! Fargate scheduler and kubelet ([`crate::sim::FargateSim`]) and the controller's webhook
//! server ([`crate::webhooksim::WebhookSim`], reached through the API server's egress proxy).
//! The load balancer side (Ingress status, TargetGroupBindings, the HTTP answer) is
//! [`crate::albsim`], started by the beds that need it.

use std::time::Duration;

use crate::awsproxy::AwsProxy;
use crate::controlplane::{ControlPlane, Settings};
use crate::fargate::Profiles;
use crate::sim::FargateSim;
use crate::webhooksim::WebhookSim;

/// The control plane and its simulators; everything stops on drop.
#[derive(Debug)]
pub struct EksCluster {
    pub fargate: FargateSim,
    pub webhooks: WebhookSim,
    /// Last, so the simulators stop before the API server does.
    pub kube: ControlPlane,
}

impl EksCluster {
    /// A cluster whose pods run on Fargate by `profiles`, placed after the default delay.
    pub async fn start(profiles: Profiles) -> EksCluster {
        EksCluster::start_with(Settings::default(), FargateSim::DEFAULT_DELAY, profiles).await
    }

    /// A cluster started with `settings`, pods placed `delay` after they are made.
    pub async fn start_with(settings: Settings, delay: Duration, profiles: Profiles) -> EksCluster {
        let kube = ControlPlane::start_with(settings);
        let client = kube.simulator_client().await;
        let routes = kube
            .egress()
            .expect("the control plane's egress proxy (Settings::egress)")
            .routes();
        EksCluster {
            fargate: FargateSim::start_with(client.clone(), delay, profiles).await,
            webhooks: WebhookSim::start(client, routes),
            kube,
        }
    }
}

/// Makes `kube` the API server of every EKS cluster behind `proxy`: `DescribeCluster` reports its
/// endpoint and CA (`certificateAuthority.data`), as EKS reports a cluster's own; moto's are
/// neither reachable nor PEM. The binaries then reach the cluster as on EKS, through its
/// endpoint with an EKS token (no `--kubeconfig`), and the control plane's authenticator decides
/// who gets in ([`Settings::access_entries`]).
pub fn serve_as_eks(proxy: &AwsProxy, kube: &ControlPlane) {
    let (url, ca) = (kube.url.clone(), kube.ca_data());
    proxy.rewrite(move |request, reply| {
        let describe = request.service == "eks"
            && request.method == "GET"
            && request.action.is_empty()
            && request.path.starts_with("/clusters/")
            && request.path.trim_matches('/').split('/').count() == 2;
        if !describe || reply.status != 200 {
            return;
        }
        let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&reply.body) else {
            return;
        };
        if body["cluster"].is_object() {
            body["cluster"]["endpoint"] = serde_json::json!(url);
            body["cluster"]["certificateAuthority"] = serde_json::json!({"data": ca});
            reply.body = body.to_string().into_bytes();
        }
    });
}
