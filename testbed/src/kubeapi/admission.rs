//! Admission webhooks, enforced as the API server enforces them when the webhook cannot be
//! reached: for every `MutatingWebhookConfiguration` and `ValidatingWebhookConfiguration` whose
//! webhook rules (`apiGroups`, `apiVersions`, `operations`, `resources`, `scope`, with
//! `matchPolicy`), `namespaceSelector` and `objectSelector` match a write, the webhook's Service
//! must have a ready endpoint (an EndpointSlice labelled `kubernetes.io/service-name` with an
//! endpoint whose `conditions.ready` is not false). If it has none and the webhook's
//! `failurePolicy` is `Fail` (the default), the write is refused with the API server's answer:
//! HTTP 500, reason `InternalError`, `Internal error occurred: failed calling webhook "<name>":
//! failed to call webhook: Post "https://<svc>.<ns>.svc:443/<path>?timeout=10s": no endpoints
//! available for service "<svc>"`. `failurePolicy: Ignore` lets it through. A reachable webhook
//! is taken to allow the request unchanged (the stand-in runs no webhook server).
//!
//! As in Kubernetes, writes to the webhook configurations themselves are never sent to
//! webhooks, and a write is checked after the request was applied to the stored object (so
//! `objectSelector` sees the new labels as well as the old ones) but before it is stored.
//! Webhooks given by `clientConfig.url` cannot be reached from here and are taken as allowing.

use serde_json::Value;

use super::selector::{FieldSelector, LabelSelector, Requirement};
use super::store::{ApiError, PatchKind, Store, Target};

/// The admission operation of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

const CONFIG_KINDS: [&str; 2] = [
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
];

/// POST, admitted.
pub(crate) fn create(
    store: &mut Store,
    target: &Target,
    body: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let new = store.create(target, body.clone(), true)?;
    admit(store, target, Operation::Create, None, Some(&new))?;
    store.create(target, body, dry_run)
}

/// PUT, admitted.
pub(crate) fn replace(
    store: &mut Store,
    target: &Target,
    name: &str,
    body: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let old = store.get(target, name).ok();
    let new = store.replace(target, name, body.clone(), true)?;
    admit(store, target, Operation::Update, old.as_ref(), Some(&new))?;
    store.replace(target, name, body, dry_run)
}

/// PATCH (server-side apply to a missing object is a CREATE), admitted.
pub(crate) fn patch(
    store: &mut Store,
    target: &Target,
    name: &str,
    kind: PatchKind,
    body: Value,
    dry_run: bool,
) -> Result<(u16, Value), ApiError> {
    let old = store.get(target, name).ok();
    let (_, new) = store.patch(target, name, kind, body.clone(), true)?;
    let operation = if old.is_some() {
        Operation::Update
    } else {
        Operation::Create
    };
    admit(store, target, operation, old.as_ref(), Some(&new))?;
    store.patch(target, name, kind, body, dry_run)
}

/// DELETE of one object, admitted.
pub(crate) fn delete(
    store: &mut Store,
    target: &Target,
    name: &str,
    options: &Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    if let Ok(old) = store.get(target, name) {
        admit(store, target, Operation::Delete, Some(&old), None)?;
    }
    store.delete(target, name, options, dry_run)
}

/// DELETE of a collection: every selected object is admitted before any goes.
pub(crate) fn delete_collection(
    store: &mut Store,
    target: &Target,
    labels: &LabelSelector,
    fields: &FieldSelector,
    options: &Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    for old in store.select(target, labels, fields) {
        admit(store, target, Operation::Delete, Some(&old), None)?;
    }
    store.delete_collection(target, labels, fields, options, dry_run)
}

/// Refuses the write when a matching fail-closed webhook cannot be reached.
pub(crate) fn admit(
    store: &Store,
    target: &Target,
    operation: Operation,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<(), ApiError> {
    let rt = &target.rt;
    if rt.group == "admissionregistration.k8s.io" && CONFIG_KINDS.contains(&rt.plural.as_str()) {
        return Ok(());
    }
    // Mutating webhooks run before validating ones.
    for plural in CONFIG_KINDS {
        for config in objects(store, "admissionregistration.k8s.io", plural, None) {
            for hook in config
                .get("webhooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !matches(store, hook, target, operation, old, new) {
                    continue;
                }
                if let Err(why) = reachable(store, hook)
                    && hook.get("failurePolicy").and_then(Value::as_str) != Some("Ignore")
                {
                    let name = hook.get("name").and_then(Value::as_str).unwrap_or_default();
                    return Err(refusal(name, &why));
                }
            }
        }
    }
    Ok(())
}

/// The API server's answer when a webhook could not be called.
fn refusal(webhook: &str, why: &str) -> ApiError {
    let cause = format!("failed calling webhook \"{webhook}\": {why}");
    let mut error = ApiError::new(
        500,
        "InternalError",
        format!("Internal error occurred: {cause}"),
    );
    error.details = Some(serde_json::json!({"causes": [{"message": cause}]}));
    error
}

/// Every stored object of a type (in one namespace, or all), as the preferred version shows it.
fn objects(store: &Store, group: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
    let Some(rt) = store
        .types()
        .iter()
        .find(|t| t.group == group && t.plural == plural)
    else {
        return Vec::new();
    };
    let target = Target {
        version: rt.versions[0].clone(),
        rt: rt.clone(),
        namespace: namespace.map(str::to_owned),
        status: false,
        writer: Default::default(),
    };
    store.select(
        &target,
        &LabelSelector::default(),
        &FieldSelector::default(),
    )
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// True when `hook` is called for this write.
fn matches(
    store: &Store,
    hook: &Value,
    target: &Target,
    operation: Operation,
    old: Option<&Value>,
    new: Option<&Value>,
) -> bool {
    let rt = &target.rt;
    let resource = if target.status {
        format!("{}/status", rt.plural)
    } else {
        rt.plural.clone()
    };
    let exact = hook.get("matchPolicy").and_then(Value::as_str) == Some("Exact");
    let ruled = hook
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|rule| {
            let any_or = |list: Vec<&str>, want: &str| list.iter().any(|v| *v == "*" || *v == want);
            let versions = strings(rule.get("apiVersions"));
            // With matchPolicy Equivalent (the default) a request through another served
            // version of the same resource is sent too.
            let version_ok = if exact {
                any_or(versions, &target.version)
            } else {
                rt.versions.iter().any(|v| any_or(versions.clone(), v))
            };
            let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
                "Cluster" => !rt.namespaced,
                "Namespaced" => rt.namespaced,
                _ => true,
            };
            any_or(strings(rule.get("apiGroups")), &rt.group)
                && version_ok
                && any_or(strings(rule.get("operations")), operation.name())
                && resource_matches(&strings(rule.get("resources")), &resource)
                && scope_ok
        });
    if !ruled {
        return false;
    }
    let object_ok = match hook.get("objectSelector") {
        None | Some(Value::Null) => true,
        Some(selector) => {
            let selector = from_json(selector);
            [old, new]
                .into_iter()
                .flatten()
                .any(|o| selector.matches(o))
        }
    };
    if !object_ok {
        return false;
    }
    match hook.get("namespaceSelector") {
        None | Some(Value::Null) => true,
        Some(selector) => {
            let selector = from_json(selector);
            let object = new.or(old);
            if rt.group.is_empty() && rt.plural == "namespaces" {
                object.is_some_and(|o| selector.matches(o))
            } else if !rt.namespaced {
                true
            } else {
                let ns = target
                    .namespace
                    .clone()
                    .or_else(|| {
                        object
                            .and_then(|o| o.pointer("/metadata/namespace"))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                objects(store, "", "namespaces", None)
                    .iter()
                    .find(|n| n.pointer("/metadata/name").and_then(Value::as_str) == Some(&ns))
                    .is_some_and(|n| selector.matches(n))
            }
        }
    }
}

/// `pods`, `pods/status`, `*`, `*/status`, `pods/*`, `*/*`.
fn resource_matches(rules: &[&str], resource: &str) -> bool {
    let (main, sub) = match resource.split_once('/') {
        Some((m, s)) => (m, Some(s)),
        None => (resource, None),
    };
    rules.iter().any(|rule| {
        let (rule_main, rule_sub) = match rule.split_once('/') {
            Some((m, s)) => (m, Some(s)),
            None => (*rule, None),
        };
        let main_ok = rule_main == "*" || rule_main == main;
        let sub_ok = match (rule_sub, sub) {
            (None, None) => true,
            (Some("*"), _) => true,
            (Some(r), Some(s)) => r == s,
            _ => false,
        };
        main_ok && sub_ok
    })
}

/// A `metav1.LabelSelector` (`matchLabels`, `matchExpressions`); `{}` matches everything.
pub(crate) fn from_json(selector: &Value) -> LabelSelector {
    let mut requirements = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            requirements.push(Requirement::Equals(
                k.clone(),
                v.as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let values: Vec<String> = strings(expression.get("values"))
            .into_iter()
            .map(str::to_owned)
            .collect();
        requirements.push(match expression.get("operator").and_then(Value::as_str) {
            Some("In") => Requirement::In(key, values),
            Some("NotIn") => Requirement::NotIn(key, values),
            Some("Exists") => Requirement::Exists(key),
            // DoesNotExist, and anything unknown (the API server refuses those on create).
            _ => Requirement::DoesNotExist(key),
        });
    }
    LabelSelector(requirements)
}

/// `Ok` when the webhook's Service has a ready endpoint; else the API server's reason.
fn reachable(store: &Store, hook: &Value) -> Result<(), String> {
    let Some(service) = hook.pointer("/clientConfig/service") else {
        return Ok(());
    };
    let text = |key: &str| service.get(key).and_then(Value::as_str).unwrap_or_default();
    let (ns, name, path) = (text("namespace"), text("name"), text("path"));
    let port = service.get("port").and_then(Value::as_i64).unwrap_or(443);
    let timeout = hook
        .get("timeoutSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(10);
    let url = format!("https://{name}.{ns}.svc:{port}{path}?timeout={timeout}s");
    let exists = objects(store, "", "services", Some(ns))
        .iter()
        .any(|s| s.pointer("/metadata/name").and_then(Value::as_str) == Some(name));
    if !exists {
        return Err(format!(
            "failed to call webhook: Post \"{url}\": service \"{name}\" not found"
        ));
    }
    let ready = objects(store, "discovery.k8s.io", "endpointslices", Some(ns))
        .iter()
        .filter(|slice| {
            slice
                .pointer("/metadata/labels/kubernetes.io~1service-name")
                .and_then(Value::as_str)
                == Some(name)
        })
        .flat_map(|slice| {
            slice
                .get("endpoints")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .any(|endpoint| {
            let addressed = endpoint
                .get("addresses")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            // A missing `ready` means unknown, which consumers take as ready.
            let ready = endpoint
                .pointer("/conditions/ready")
                .and_then(Value::as_bool)
                != Some(false);
            addressed && ready
        });
    if ready {
        Ok(())
    } else {
        Err(format!(
            "failed to call webhook: Post \"{url}\": no endpoints available for service \"{name}\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_and_subresources() {
        assert!(resource_matches(&["ingresses"], "ingresses"));
        assert!(!resource_matches(&["ingresses"], "ingresses/status"));
        assert!(resource_matches(&["ingresses/status"], "ingresses/status"));
        assert!(resource_matches(&["*"], "pods"));
        assert!(!resource_matches(&["*"], "pods/status"));
        assert!(resource_matches(&["*/*"], "pods/status"));
        assert!(resource_matches(&["pods/*"], "pods/status"));
        assert!(!resource_matches(&["services"], "pods"));
    }

    #[test]
    fn label_selectors_from_json() {
        let object =
            json!({"metadata": {"labels": {"app.kubernetes.io/name": "x", "tier": "web"}}});
        let selector = |s: Value| from_json(&s).matches(&object);
        assert!(selector(json!({})));
        assert!(selector(json!({"matchLabels": {"tier": "web"}})));
        assert!(!selector(json!({"matchLabels": {"tier": "db"}})));
        assert!(!selector(json!({"matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["x"]}]})));
        assert!(selector(json!({"matchExpressions": [
            {"key": "elbv2.k8s.aws/pod-readiness-gate-inject", "operator": "DoesNotExist"},
            {"key": "tier", "operator": "In", "values": ["web", "api"]},
            {"key": "tier", "operator": "Exists"}]})));
    }

    #[test]
    fn the_refusal_is_the_api_servers() {
        let error = refusal(
            "vingress.elbv2.k8s.aws",
            "failed to call webhook: Post \"u\": no endpoints available for service \"s\"",
        );
        assert_eq!((error.code, error.reason), (500, "InternalError"));
        assert_eq!(
            error.message,
            "Internal error occurred: failed calling webhook \"vingress.elbv2.k8s.aws\": failed to call webhook: Post \"u\": no endpoints available for service \"s\""
        );
        assert_eq!(
            error.status()["details"]["causes"][0]["message"]
                .as_str()
                .unwrap()
                .len(),
            error.message.len() - "Internal error occurred: ".len()
        );
    }
}
