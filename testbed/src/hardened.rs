//! moto made as hard as AWS in one place, for the end-to-end tests and `make demo`: an
//! [`AwsProxy`] in front of moto with every rule the test bed knows of the real services
//! ([`crate::awsrules`]: Fargate profiles that take time and one change at a time, deleting a
//! profile evicts its pods, zones without EKS capacity, the cluster settings EKS reports and
//! its endpoint updates, routes to gone targets as blackholes, EKS access entries and the
//! creator's; [`crate::enis`]: an ALB's network
//! interfaces outlive it and hold its security group and subnets), and the simulator of those
//! interfaces. Point the binaries at [`HardAws::endpoint`].

use std::time::Duration;

use crate::Moto;
use crate::awsproxy::AwsProxy;
use crate::awsrules::{
    AccessEntries, AccountZones, ClusterConfig, FargateProfiles, blackhole_routes, zone_capacity,
};
use crate::enis::{DependencyRules, ElbInterfaceSim};

/// Zone ids that have no EKS control plane capacity (the real list is longer and changes).
pub const ZONES_WITHOUT_EKS: [&str; 3] = ["use1-az3", "usw1-az2", "cac1-az3"];

/// How long a simulated ALB's network interfaces stay after the ALB is gone.
pub const INTERFACES_LINGER: Duration = Duration::from_secs(2);

/// The proxy with the rules, and the network interface simulator.
#[derive(Debug)]
pub struct HardAws {
    /// The proxy; binaries get [`AwsProxy::env`] / [`AwsProxy::command`].
    pub proxy: AwsProxy,
    /// The Fargate profile rules (their events say what was created, deleted, evicted).
    pub profiles: FargateProfiles,
    /// The dependency rules (how many stack deletes failed).
    pub dependencies: DependencyRules,
    /// The cluster settings EKS keeps (what `CreateCluster` and endpoint updates asked for).
    pub clusters: ClusterConfig,
    /// The access entries of every cluster (moto has none).
    pub access: AccessEntries,
    _interfaces: ElbInterfaceSim,
}

impl HardAws {
    /// Starts the proxy in front of `moto` with every rule installed; `kube` is the cluster
    /// whose pods a deleted profile evicts and whose Ingresses get ALB network
    /// interfaces. Call inside a tokio runtime.
    pub fn start(moto: &Moto, kube: kube::Client, region: &str) -> HardAws {
        HardAws::start_with_access(moto, kube, region, AccessEntries::new(&moto.endpoint))
    }

    /// [`HardAws::start`] with `access` as the access-entry model: made beforehand, so that a
    /// control plane started with [`crate::controlplane::Settings::access_entries`] consults
    /// the entries the binaries make here.
    pub fn start_with_access(
        moto: &Moto,
        kube: kube::Client,
        region: &str,
        access: AccessEntries,
    ) -> HardAws {
        let proxy = AwsProxy::in_front_of(moto);
        let profiles = FargateProfiles::new(2, 2).evicting_pods(kube.clone());
        profiles.install(&proxy);
        zone_capacity(
            &proxy,
            &moto.endpoint,
            AccountZones::moto(),
            &ZONES_WITHOUT_EKS,
        );
        let dependencies = DependencyRules::new(&moto.endpoint);
        dependencies.install(&proxy);
        let clusters = ClusterConfig::new(2);
        clusters.install(&proxy, &moto.endpoint);
        access.install(&proxy);
        blackhole_routes(&proxy, &moto.endpoint);
        let interfaces = ElbInterfaceSim::start(kube, &moto.endpoint, region, INTERFACES_LINGER);
        HardAws {
            proxy,
            profiles,
            dependencies,
            clusters,
            access,
            _interfaces: interfaces,
        }
    }

    /// `http://127.0.0.1:<port>` of the proxy.
    pub fn endpoint(&self) -> &str {
        &self.proxy.endpoint
    }
}
