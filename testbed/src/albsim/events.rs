//! The controller's events on an Ingress, written as client-go's `tools/record` writes them for
//! controller-runtime's `GetEventRecorderFor("ingress")` (what the AWS Load Balancer Controller's
//! Ingress reconciler uses): core/v1 Events named `<object>.<hex nanoseconds>` in the object's
//! namespace, `source.component` and `reportingComponent` `ingress`, no instance; the same event
//! again (same object, type, reason and message) is a patch of the first one (`count` + 1, a new
//! `lastTimestamp`); and a spam filter per object and type lets 25 through at once, then one per
//! five minutes. Not modelled: the aggregation of more than 10 similar events with different
//! messages into one `(combined from similar events)` event.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// The component the controller's Ingress events come from.
pub const COMPONENT: &str = "ingress";
/// The reasons of the controller's Ingress events.
pub const FAILED_BUILD_MODEL: &str = "FailedBuildModel";
pub const FAILED_DEPLOY_MODEL: &str = "FailedDeployModel";
pub const SUCCESSFULLY_RECONCILED: &str = "SuccessfullyReconciled";

const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL: Duration = Duration::from_secs(300);

struct Logged {
    name: String,
    count: i32,
    first: Time,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Records events about Ingresses.
pub struct Recorder {
    client: Client,
    logged: HashMap<String, Logged>,
    buckets: HashMap<String, Bucket>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("events", &self.logged.len())
            .finish()
    }
}

impl Recorder {
    pub fn new(client: Client) -> Recorder {
        Recorder {
            client,
            logged: HashMap::new(),
            buckets: HashMap::new(),
        }
    }

    /// Takes a token of the object's spam bucket; false when it is empty.
    fn allowed(&mut self, key: &str) -> bool {
        let now = Instant::now();
        let bucket = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: SPAM_BURST,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() / SPAM_REFILL.as_secs_f64();
        bucket.tokens = (bucket.tokens + refill).min(SPAM_BURST);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Records `type_` (`Normal`, `Warning`) `reason` `message` about `ingress` (best effort, as
    /// client-go: a failed write is dropped).
    pub async fn record(&mut self, ingress: &Ingress, type_: &str, reason: &str, message: &str) {
        let namespace = ingress.namespace().unwrap_or_else(|| "default".into());
        let name = ingress.name_any();
        let uid = ingress.uid().unwrap_or_default();
        let spam_key = format!("{COMPONENT}/Ingress/{namespace}/{name}/{uid}/{type_}");
        if !self.allowed(&spam_key) {
            return;
        }
        let key = format!("{spam_key}/{reason}/{message}");
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = Time(Timestamp::now());
        if let Some(logged) = self.logged.get_mut(&key) {
            logged.count += 1;
            let patch = json!({"count": logged.count, "lastTimestamp": now, "message": message});
            match api
                .patch(&logged.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => return,
                // Gone (its TTL passed): made again below, under the same name.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(_) => return,
            }
        }
        let (event_name, count, first) = match self.logged.get(&key) {
            Some(logged) => (logged.name.clone(), logged.count, logged.first.clone()),
            None => {
                let nanos = now.0.as_nanosecond();
                (format!("{name}.{nanos:x}"), 1, now.clone())
            }
        };
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": {
                "kind": "Ingress",
                "namespace": namespace,
                "name": name,
                "uid": uid,
                "apiVersion": "networking.k8s.io/v1",
                "resourceVersion": ingress.resource_version().unwrap_or_default(),
            },
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT},
            "firstTimestamp": first,
            "lastTimestamp": now,
            "count": count,
            "type": type_,
            "reportingComponent": COMPONENT,
            "reportingInstance": "",
        });
        let Ok(event) = serde_json::from_value::<Event>(event) else {
            return;
        };
        if api.create(&PostParams::default(), &event).await.is_ok() {
            self.logged.insert(
                key,
                Logged {
                    name: event_name,
                    count,
                    first,
                },
            );
        }
    }
}
