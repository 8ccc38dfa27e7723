//! The resource types the stand-in serves: a built-in table and the ones CustomResourceDefinitions
//! add, with the discovery documents made from them.

use serde_json::{Value, json};

/// One served resource type (in one or more versions of its group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<String>,
    /// Plural name, as in the URL.
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    /// Has a `/status` subresource.
    pub status: bool,
    pub short_names: Vec<String>,
    /// Name of the CustomResourceDefinition that registered it, if any.
    pub crd: Option<String>,
}

impl ResourceType {
    /// `apiVersion` for `version`: `v1` in the core group, else `group/version`.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// `deployments.apps`, `pods`: the name used in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The APIResource entries (the resource and its status subresource) for discovery.
    pub fn discovery_entries(&self) -> Vec<Value> {
        let mut entry = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        });
        if !self.short_names.is_empty() {
            entry["shortNames"] = json!(self.short_names);
        }
        let mut entries = vec![entry];
        if self.status {
            entries.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        entries
    }
}

/// (group, version, plural, kind, namespaced, status subresource, short names)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    &'static [&'static str],
);

const BUILT_IN: &[Row] = &[
    ("", "v1", "namespaces", "Namespace", false, true, &["ns"]),
    ("", "v1", "nodes", "Node", false, true, &["no"]),
    (
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        false,
        &["sa"],
    ),
    ("", "v1", "services", "Service", true, true, &["svc"]),
    ("", "v1", "secrets", "Secret", true, false, &[]),
    ("", "v1", "configmaps", "ConfigMap", true, false, &["cm"]),
    ("", "v1", "pods", "Pod", true, true, &["po"]),
    ("", "v1", "endpoints", "Endpoints", true, false, &["ep"]),
    ("", "v1", "events", "Event", true, false, &["ev"]),
    (
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        true,
        &["pvc"],
    ),
    (
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        true,
        &["deploy"],
    ),
    (
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        true,
        &["rs"],
    ),
    ("apps", "v1", "daemonsets", "DaemonSet", true, true, &["ds"]),
    (
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        true,
        &["sts"],
    ),
    ("batch", "v1", "jobs", "Job", true, true, &[]),
    (
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        true,
        &["ing"],
    ),
    (
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        false,
        false,
        &[],
    ),
    (
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        false,
        &["netpol"],
    ),
    (
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        true,
        &["pdb"],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        false,
        &[],
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        true,
        &["crd", "crds"],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        false,
        &[],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        false,
        &[],
    ),
    (
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        false,
        &[],
    ),
    (
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        false,
        &[],
    ),
];

/// The built-in resource types.
pub(crate) fn built_in() -> Vec<ResourceType> {
    BUILT_IN
        .iter()
        .map(
            |(group, version, plural, kind, namespaced, status, short)| ResourceType {
                group: (*group).to_owned(),
                versions: vec![(*version).to_owned()],
                plural: (*plural).to_owned(),
                singular: kind.to_lowercase(),
                kind: (*kind).to_owned(),
                namespaced: *namespaced,
                status: *status,
                short_names: short.iter().map(|s| (*s).to_owned()).collect(),
                crd: None,
            },
        )
        .collect()
}

/// The resource type a CustomResourceDefinition object declares, or why it cannot be served.
pub(crate) fn from_crd(crd: &Value) -> Result<ResourceType, String> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text = |pointer: &str| {
        crd.pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("CustomResourceDefinition {name:?}: {pointer} is required"))
    };
    let group = text("/spec/group")?;
    let plural = text("/spec/names/plural")?;
    let kind = text("/spec/names/kind")?;
    let singular = text("/spec/names/singular").unwrap_or_else(|_| kind.to_lowercase());
    let expected = format!("{plural}.{group}");
    if name != expected {
        return Err(format!(
            "CustomResourceDefinition {name:?} is invalid: metadata.name: must be spec.names.plural+\".\"+spec.group ({expected:?})"
        ));
    }
    let namespaced = match crd.pointer("/spec/scope").and_then(Value::as_str) {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => {
            return Err(format!(
                "CustomResourceDefinition {name:?} is invalid: spec.scope must be Namespaced or Cluster, not {other:?}"
            ));
        }
    };
    let listed = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let served: Vec<&Value> = listed
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .collect();
    let mut versions: Vec<String> = served
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    if versions.is_empty() {
        return Err(format!(
            "CustomResourceDefinition {name:?} is invalid: spec.versions must have a served version"
        ));
    }
    // The storage version first: it is the one discovery prefers here.
    if let Some(storage) = listed
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
        && let Some(at) = versions.iter().position(|v| v == storage)
    {
        let storage = versions.remove(at);
        versions.insert(0, storage);
    }
    let status = served
        .iter()
        .any(|v| v.pointer("/subresources/status").is_some())
        || crd.pointer("/spec/subresources/status").is_some();
    let short_names = crd
        .pointer("/spec/names/shortNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(ResourceType {
        group,
        versions,
        plural,
        singular,
        kind,
        namespaced,
        status,
        short_names,
        crd: Some(name.to_owned()),
    })
}

/// `/api`: the core group's versions.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// The groups (other than core) with their versions, in first-seen order.
fn groups(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        let at = match groups.iter().position(|(g, _)| *g == t.group) {
            Some(at) => at,
            None => {
                groups.push((t.group.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        for v in &t.versions {
            if !groups[at].1.contains(v) {
                groups[at].1.push(v.clone());
            }
        }
    }
    groups
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let listed: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": listed,
        "preferredVersion": listed.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`: the APIGroupList.
pub(crate) fn group_list(types: &[ResourceType]) -> Value {
    let groups: Vec<Value> = groups(types)
        .iter()
        .map(|(name, versions)| group_json(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Adds to an APIGroupList (`/apis`) the groups of `group_versions` (`group/version`) it does not
/// list yet, as the API server lists registered aggregated APIs whether they are available or
/// not.
pub(crate) fn add_group_versions(list: &mut Value, group_versions: &[String]) {
    let Some(groups) = list["groups"].as_array_mut() else {
        return;
    };
    for (group, version) in group_versions.iter().filter_map(|gv| gv.split_once('/')) {
        let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
        match groups.iter_mut().find(|g| g["name"] == group) {
            Some(listed) => {
                if let Some(versions) = listed["versions"].as_array_mut()
                    && !versions.contains(&gv)
                {
                    versions.push(gv);
                }
            }
            None => groups.push(json!({
                "name": group,
                "versions": [gv.clone()],
                "preferredVersion": gv,
            })),
        }
    }
}

/// `/apis/{group}`: one APIGroup, if served.
pub(crate) fn group(types: &[ResourceType], name: &str) -> Option<Value> {
    groups(types)
        .into_iter()
        .find(|(g, _)| g == name)
        .map(|(g, versions)| {
            let mut doc = group_json(&g, &versions);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        })
}

/// `/api/v1` or `/apis/{group}/{version}`: the APIResourceList, if that version is served.
pub(crate) fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
        .collect();
    if served.is_empty() {
        return None;
    }
    let resources: Vec<Value> = served.iter().flat_map(|t| t.discovery_entries()).collect();
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_what_the_steps_use() {
        let types = built_in();
        let find = |g: &str, p: &str| types.iter().find(|t| t.group == g && t.plural == p);
        let deploy = find("apps", "deployments").unwrap();
        assert_eq!(
            (deploy.kind.as_str(), deploy.namespaced, deploy.status),
            ("Deployment", true, true)
        );
        assert_eq!(deploy.singular, "deployment");
        assert!(!find("", "namespaces").unwrap().namespaced);
        assert!(find("networking.k8s.io", "ingresses").unwrap().status);
        assert!(find("coordination.k8s.io", "leases").is_some());
        let list = resource_list(&types, "apps", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments/status"));
        assert!(resource_list(&types, "apps", "v2").is_none());
        let groups = group_list(&types);
        assert!(
            groups["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "rbac.authorization.k8s.io"
                    && g["preferredVersion"]["groupVersion"] == "rbac.authorization.k8s.io/v1")
        );
    }

    #[test]
    fn a_crd_declares_a_type() {
        let crd = json!({
            "metadata": {"name": "targetgroupbindings.elbv2.k8s.aws"},
            "spec": {
                "group": "elbv2.k8s.aws",
                "scope": "Namespaced",
                "names": {"plural": "targetgroupbindings", "singular": "targetgroupbinding", "kind": "TargetGroupBinding", "shortNames": ["tgb"]},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false},
                    {"name": "v1beta1", "served": true, "storage": true, "subresources": {"status": {}}},
                    {"name": "v0", "served": false, "storage": false}
                ]
            }
        });
        let t = from_crd(&crd).unwrap();
        assert_eq!(t.versions, vec!["v1beta1", "v1alpha1"]);
        assert!(t.status && t.namespaced);
        assert_eq!(t.short_names, vec!["tgb"]);
        let mut wrong = crd.clone();
        wrong["metadata"]["name"] = json!("other.elbv2.k8s.aws");
        assert!(
            from_crd(&wrong)
                .unwrap_err()
                .contains("must be spec.names.plural")
        );
        let mut no_scope = crd.clone();
        no_scope["spec"]["scope"] = json!("Galaxy");
        assert!(from_crd(&no_scope).is_err());
    }
}
