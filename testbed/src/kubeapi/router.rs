//! From a request to an answer: discovery documents, the CRUD verbs on the store, and watches.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Shared;
use super::admission;
use super::http::{Reply, Request};
use super::resources;
use super::selector::{FieldSelector, LabelSelector, decode_segment, parse_query};
use super::store::{ApiError, EventType, PatchKind, Store, Target, Writer};

fn error(e: &ApiError) -> Reply {
    Reply::json(e.code, &e.status())
}

fn answer(result: Result<(u16, Value), ApiError>) -> Reply {
    match result {
        Ok((code, value)) => Reply::json(code, &value),
        Err(e) => error(&e),
    }
}

/// The query parameters a request carries.
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v == "true" || v == "1" || v.is_empty())
    }
}

/// The deprecation warning the API server (1.33 and later) sends with a request, if any.
pub(crate) fn warning(target: &str) -> Option<&'static str> {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let endpoints = matches!(
        parts.as_slice(),
        ["api", "v1", "endpoints", ..] | ["api", "v1", "namespaces", _, "endpoints", ..]
    );
    endpoints
        .then_some("v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice")
}

/// Handles one request.
pub(crate) async fn handle(shared: &Arc<Shared>, request: Request) -> Reply {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let query = Query(parse_query(query));
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let read_only = request.method == "GET";
    let discovery = |doc: Option<Value>| -> Reply {
        if !read_only {
            return error(&ApiError::method_not_allowed(&request.method));
        }
        match doc {
            Some(doc) => Reply::json(200, &doc),
            None => error(&ApiError::not_found_path()),
        }
    };
    match parts.as_slice() {
        [] => discovery(Some(
            json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]}),
        )),
        ["version"] => discovery(Some(json!({
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.0-testbed",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24",
            "compiler": "gc",
            "platform": "linux/amd64",
        }))),
        ["healthz" | "livez" | "readyz", ..] => Reply::Full {
            code: 200,
            content_type: "text/plain; charset=utf-8",
            body: b"ok".to_vec(),
        },
        ["api"] => discovery(Some(resources::core_versions(&shared.address))),
        ["apis"] => {
            let store = shared.lock();
            let mut list = resources::group_list(store.types());
            resources::add_group_versions(&mut list, &shared.settings.unavailable_group_versions);
            discovery(Some(list))
        }
        ["apis", group, version, ..]
            if shared
                .settings
                .unavailable_group_versions
                .iter()
                .any(|gv| *gv == format!("{group}/{version}")) =>
        {
            error(&ApiError::new(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ))
        }
        ["api", version] => {
            let store = shared.lock();
            discovery(resources::resource_list(store.types(), "", version))
        }
        ["apis", group] => {
            let store = shared.lock();
            discovery(resources::group(store.types(), group))
        }
        ["apis", group, version] => {
            let store = shared.lock();
            discovery(resources::resource_list(store.types(), group, version))
        }
        ["api", version, rest @ ..] => resource(shared, &request, &query, "", version, rest),
        ["apis", group, version, rest @ ..] => {
            resource(shared, &request, &query, group, version, rest)
        }
        _ => error(&ApiError::not_found_path()),
    }
}

/// Where a resource path points.
#[derive(Debug, PartialEq, Eq)]
struct Route<'a> {
    plural: &'a str,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    status: bool,
}

/// Splits the part of a resource path after `/api/v1` or `/apis/{g}/{v}`.
fn route<'a>(rest: &[&'a str]) -> Option<Route<'a>> {
    let namespaced = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (namespace, tail) = if namespaced {
        (Some(rest[1]), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, status) = match tail {
        [plural] => (*plural, None, false),
        [plural, name] => (*plural, Some(*name), false),
        [plural, name, "status"] => (*plural, Some(*name), true),
        _ => return None,
    };
    Some(Route {
        plural,
        namespace,
        name,
        status,
    })
}

fn resource(
    shared: &Arc<Shared>,
    request: &Request,
    query: &Query,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Reply {
    let Some(route) = route(rest) else {
        return error(&ApiError::not_found_path());
    };
    let Some(rt) = shared.lock().find_type(group, version, route.plural) else {
        return error(&ApiError::not_found_path());
    };
    // A namespace path for a cluster-scoped type, or a single object of a namespaced type
    // without its namespace, does not exist.
    if (route.namespace.is_some() && !rt.namespaced)
        || (rt.namespaced && route.namespace.is_none() && route.name.is_some())
        || (route.status && !rt.status)
    {
        return error(&ApiError::not_found_path());
    }
    let target = Target {
        rt,
        version: version.to_owned(),
        namespace: route.namespace.map(str::to_owned),
        status: route.status,
        writer: Writer::of_request(
            query.get("fieldManager"),
            request.header("user-agent"),
            query.flag("force"),
        ),
    };
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    let selectors = || -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    };
    let method = request.method.as_str();
    match (method, route.name) {
        ("GET", _) if query.flag("watch") => {
            let (labels, mut fields) = match selectors() {
                Ok(s) => s,
                Err(e) => return error(&e),
            };
            if let Some(name) = route.name {
                fields = fields.and(FieldSelector::name(name));
            }
            start_watch(shared, target, labels, fields, query)
        }
        ("GET", Some(name)) => answer(shared.lock().get(&target, name).map(|o| (200, o))),
        ("GET", None) => match selectors() {
            Ok((labels, fields)) => {
                Reply::json(200, &shared.lock().list(&target, &labels, &fields))
            }
            Err(e) => error(&e),
        },
        ("POST", None) if target.rt.namespaced && target.namespace.is_none() => {
            error(&ApiError::method_not_allowed(method))
        }
        ("POST", None) => match body_json(request, false) {
            Ok(body) => answer(
                shared
                    .write(|s| admission::create(s, &target, body, dry_run))
                    .map(|o| (201, o)),
            ),
            Err(e) => error(&e),
        },
        ("PUT", Some(name)) => match body_json(request, false) {
            Ok(body) => answer(
                shared
                    .write(|s| admission::replace(s, &target, name, body, dry_run))
                    .map(|o| (200, o)),
            ),
            Err(e) => error(&e),
        },
        ("PATCH", Some(name)) => {
            let content_type = request
                .header("content-type")
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let kind = match content_type.as_str() {
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    PatchKind::Merge
                }
                "application/json-patch+json" => PatchKind::Json,
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
                other => {
                    return error(&ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!(
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                        ),
                    ));
                }
            };
            if kind == PatchKind::Apply && query.get("fieldManager").is_none_or(str::is_empty) {
                return error(&ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            match body_json(request, kind == PatchKind::Apply) {
                Ok(patch) => answer(
                    shared.write(|s| admission::patch(s, &target, name, kind, patch, dry_run)),
                ),
                Err(e) => error(&e),
            }
        }
        ("DELETE", name) => {
            let options = if request.body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                match body_json(request, false) {
                    Ok(options) => options,
                    Err(e) => return error(&e),
                }
            };
            match name {
                Some(name) => answer(
                    shared
                        .write(|s| admission::delete(s, &target, name, &options, dry_run))
                        .map(|o| (200, o)),
                ),
                None => match selectors() {
                    Ok((labels, fields)) => answer(
                        shared
                            .write(|s| {
                                admission::delete_collection(
                                    s, &target, &labels, &fields, &options, dry_run,
                                )
                            })
                            .map(|o| (200, o)),
                    ),
                    Err(e) => error(&e),
                },
            }
        }
        _ => error(&ApiError::method_not_allowed(method)),
    }
}

/// The body as JSON (as YAML too when `yaml_too`, for apply).
fn body_json(request: &Request, yaml_too: bool) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(value) => Ok(value),
        Err(json_error) => {
            if yaml_too
                && let Ok(text) = std::str::from_utf8(&request.body)
                && let Ok(value) = serde_saphyr::from_str::<Value>(text)
            {
                return Ok(value);
            }
            Err(ApiError::bad_request(format!(
                "the request body is not valid JSON: {json_error}"
            )))
        }
    }
}

/// What one watch asked for.
#[derive(Debug)]
struct WatchSpec {
    target: Target,
    labels: LabelSelector,
    fields: FieldSelector,
    /// Send events newer than this; `None`: first ADDED for every current object.
    since: Option<u64>,
    bookmarks: bool,
    initial_end_bookmark: bool,
    timeout: Duration,
}

fn start_watch(
    shared: &Arc<Shared>,
    target: Target,
    labels: LabelSelector,
    fields: FieldSelector,
    query: &Query,
) -> Reply {
    let send_initial = query.flag("sendInitialEvents");
    let since = match query
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
    {
        _ if send_initial => None,
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(rv) => Some(rv),
            Err(_) => {
                return error(&ApiError::bad_request(format!(
                    "invalid resource version: {text:?}"
                )));
            }
        },
    };
    let requested = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(shared.settings.max_watch);
    let bookmarks = query.flag("allowWatchBookmarks");
    let spec = WatchSpec {
        target,
        labels,
        fields,
        since,
        bookmarks,
        initial_end_bookmark: send_initial && bookmarks,
        timeout: requested.min(shared.settings.max_watch),
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(run_watch(shared.clone(), spec, tx));
    Reply::Stream(rx)
}

fn line(kind: &str, object: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&json!({"type": kind, "object": object})).expect("JSON");
    bytes.push(b'\n');
    bytes
}

fn bookmark(spec: &WatchSpec, rv: u64, initial_end: bool) -> Vec<u8> {
    let mut object = json!({
        "kind": spec.target.rt.kind,
        "apiVersion": spec.target.rt.api_version(&spec.target.version),
        "metadata": {"resourceVersion": rv.to_string()},
    });
    if initial_end {
        object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line("BOOKMARK", &object)
}

/// What the watcher sees of an event: the event type to send, if any, given the namespace and
/// selectors (an object that stops matching is DELETED for it, one that starts is ADDED).
fn project(
    spec: &WatchSpec,
    kind: EventType,
    object: &Value,
    previous: Option<&Value>,
) -> Option<(&'static str, Value)> {
    let view = |o: &Value| Store::view(&spec.target.rt, &spec.target.version, o);
    let in_scope = |o: &Value| {
        let ns_ok = spec.target.namespace.as_ref().is_none_or(|want| {
            o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(want.as_str())
        });
        ns_ok && spec.labels.matches(o) && spec.fields.matches(o)
    };
    let now = in_scope(object);
    let before = previous.is_some_and(in_scope);
    let sent = match kind {
        EventType::Added if now => "ADDED",
        EventType::Modified if now && before => "MODIFIED",
        EventType::Modified if now => "ADDED",
        EventType::Modified if before => "DELETED",
        EventType::Deleted if now || before => "DELETED",
        _ => return None,
    };
    Some((sent, view(object)))
}

enum Step {
    Go(Vec<Vec<u8>>),
    End(Vec<Vec<u8>>),
}

async fn run_watch(shared: Arc<Shared>, spec: WatchSpec, tx: mpsc::Sender<Vec<u8>>) {
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let mut changed = shared.changed.subscribe();
    changed.borrow_and_update();
    let mut last = match spec.since {
        Some(rv) => rv,
        None => {
            let (lines, rv) = {
                let store = shared.lock();
                let mut lines: Vec<Vec<u8>> = store
                    .select(&spec.target, &spec.labels, &spec.fields)
                    .iter()
                    .map(|o| line("ADDED", o))
                    .collect();
                let rv = store.resource_version();
                if spec.initial_end_bookmark {
                    lines.push(bookmark(&spec, rv, true));
                }
                (lines, rv)
            };
            for l in lines {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            rv
        }
    };
    loop {
        changed.borrow_and_update();
        let step = {
            let store = shared.lock();
            let rt = &spec.target.rt;
            if !store.has_type(&rt.group, &rt.plural) {
                Step::End(Vec::new())
            } else {
                match store.events_after(last, &rt.group, &rt.plural) {
                    Err(floor) => {
                        let gone = ApiError::new(
                            410,
                            "Expired",
                            format!("too old resource version: {last} ({floor})"),
                        );
                        Step::End(vec![line("ERROR", &gone.status())])
                    }
                    Ok(events) => {
                        last = last.max(store.resource_version());
                        Step::Go(
                            events
                                .iter()
                                .filter_map(|e| {
                                    project(&spec, e.kind, &e.object, e.previous.as_ref())
                                })
                                .map(|(kind, object)| line(kind, &object))
                                .collect(),
                        )
                    }
                }
            }
        };
        let (lines, end) = match step {
            Step::Go(lines) => (lines, false),
            Step::End(lines) => (lines, true),
        };
        for l in lines {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        if end {
            return;
        }
        tokio::select! {
            more = changed.changed() => if more.is_err() { return },
            () = tokio::time::sleep_until(deadline) => {
                if spec.bookmarks {
                    let _ = tx.send(bookmark(&spec, last, false)).await;
                }
                return;
            }
            () = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route() {
        fn r(p: &str) -> Option<Route<'_>> {
            let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
            route(&parts)
        }
        assert_eq!(
            r("namespaces/ns/deployments/web/status"),
            Some(Route {
                plural: "deployments",
                namespace: Some("ns"),
                name: Some("web"),
                status: true
            })
        );
        assert_eq!(
            r("namespaces/ns/pods"),
            Some(Route {
                plural: "pods",
                namespace: Some("ns"),
                name: None,
                status: false
            })
        );
        assert_eq!(
            r("namespaces/ns"),
            Some(Route {
                plural: "namespaces",
                namespace: None,
                name: Some("ns"),
                status: false
            })
        );
        assert_eq!(
            r("namespaces/ns/status"),
            Some(Route {
                plural: "namespaces",
                namespace: None,
                name: Some("ns"),
                status: true
            })
        );
        assert_eq!(
            r("clusterroles/admin"),
            Some(Route {
                plural: "clusterroles",
                namespace: None,
                name: Some("admin"),
                status: false
            })
        );
        assert_eq!(r("deployments/web/scale"), None);
        assert_eq!(r("namespaces/ns/deployments/web/scale"), None);
        assert_eq!(r("a/b/c/d/e/f"), None);
    }
}
