//! The Kubernetes side: the service account's `eks.amazonaws.com/role-arn` annotation, set by
//! server-side apply with our own field manager (so nothing else on the account is touched), and
//! the rollout of the Deployments whose pods use the account.

use common::cluster::kube_not_found;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::Error;

/// The annotation the EKS pod identity webhook reads.
pub const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// Our server-side apply field manager.
pub const FIELD_MANAGER: &str = "irsa";

fn kube_error(action: &'static str, target: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube {
        action,
        target,
        source: Box::new(source),
    }
}

/// The annotation now: `None` when the account does not exist, `Some(None)` when it has none.
pub async fn current(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Option<String>>, Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let found = api.get_opt(name).await.map_err(kube_error(
        "get service account",
        format!("{namespace}/{name}"),
    ))?;
    Ok(found.map(|sa| {
        sa.metadata
            .annotations
            .and_then(|a| a.get(ROLE_ANNOTATION).cloned())
    }))
}

/// Sets the annotation by server-side apply (creating the account when missing).
pub async fn annotate(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    role_arn: &str,
) -> Result<(), Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let applied = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": { ROLE_ANNOTATION: role_arn }
        }
    });
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(applied),
    )
    .await
    .map_err(|e| {
        if kube_not_found(&e) {
            Error::NoNamespace {
                namespace: namespace.to_owned(),
            }
        } else {
            kube_error("apply service account", format!("{namespace}/{name}"))(e)
        }
    })?;
    Ok(())
}

/// Removes the annotation; a missing account or namespace is fine.
pub async fn remove_annotation(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let patch = json!({ "metadata": { "annotations": { ROLE_ANNOTATION: null } } });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if kube_not_found(&e) => Ok(()),
        Err(e) => Err(kube_error(
            "remove annotation from",
            format!("{namespace}/{name}"),
        )(e)),
    }
}

/// Deletes the account (one this tool created); a missing one is fine.
pub async fn delete(client: &kube::Client, namespace: &str, name: &str) -> Result<(), Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if kube_not_found(&e) => Ok(()),
        Err(e) => Err(kube_error(
            "delete service account",
            format!("{namespace}/{name}"),
        )(e)),
    }
}

/// The Deployments in `namespace` whose pods run as `service_account`.
pub async fn users(
    client: &kube::Client,
    namespace: &str,
    service_account: &str,
) -> Result<Vec<String>, Error> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(kube_error("list deployments in", namespace.to_owned()))?;
    Ok(list
        .items
        .into_iter()
        .filter(|d| {
            let used = d
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|p| p.service_account_name.as_deref())
                .unwrap_or("default");
            used == service_account
        })
        .filter_map(|d| d.metadata.name)
        .collect())
}

/// Rolls those Deployments (a new pod template annotation, as `kubectl rollout restart`), so their
/// pods get the role's credentials. Returns their names.
pub async fn restart_users(
    client: &kube::Client,
    namespace: &str,
    service_account: &str,
) -> Result<Vec<String>, Error> {
    let names = users(client, namespace, service_account).await?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    for name in &names {
        common::workload::restart(&api, name, &[])
            .await
            .map_err(kube_error(
                "restart deployment",
                format!("{namespace}/{name}"),
            ))?;
    }
    Ok(names)
}

/// DNS-1123 label (namespaces): 1-63 lowercase letters, digits and `-`, alphanumeric at both ends.
pub fn check_label(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 63 {
        return Err(format!(
            "it has {} characters; 1 to 63 are allowed",
            value.len()
        ));
    }
    check_dns_chars(value, false)
}

/// DNS-1123 subdomain (service account names): up to 253 characters, labels joined by `.`.
pub fn check_subdomain(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 253 {
        return Err(format!(
            "it has {} characters; 1 to 253 are allowed",
            value.len()
        ));
    }
    check_dns_chars(value, true)
}

fn check_dns_chars(value: &str, dots: bool) -> Result<(), String> {
    if let Some(bad) = value.chars().find(|c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || (dots && *c == '.'))
    }) {
        return Err(format!(
            "`{bad}` is not allowed; use lowercase letters, digits and `-`{}",
            if dots { " and `.`" } else { "" }
        ));
    }
    let parts: Vec<&str> = if dots {
        value.split('.').collect()
    } else {
        vec![value]
    };
    for part in parts {
        if part.is_empty() || part.starts_with('-') || part.ends_with('-') {
            return Err(
                "it must start and end with a letter or a digit (each part between dots too)"
                    .into(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(check_label("kube-system").is_ok());
        assert!(check_label("Kube").is_err());
        assert!(check_label("-a").is_err());
        assert!(check_label("a.b").is_err());
        assert!(check_label(&"a".repeat(64)).is_err());
        assert!(check_subdomain("aws-load-balancer-controller").is_ok());
        assert!(check_subdomain("a.b-c").is_ok());
        assert!(check_subdomain("a..b").is_err());
        assert!(check_subdomain("a_b").unwrap_err().contains("`_`"));
        assert!(check_subdomain("").is_err());
    }
}
