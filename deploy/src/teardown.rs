//! `eks-deploy delete`: the Ingresses first, waiting until the controller has deleted their ALBs
//! and released them (finalizer `ingress.k8s.aws/resources`); then the webhook configurations,
//! before the controller's Deployment (while they exist and the controller does not run, their
//! fail-closed webhooks refuse every write they cover); then everything else in reverse order.
//!
//! With `--force`, an Ingress the controller does not release is let go: the webhook
//! configurations are deleted first (the API server would refuse the finalizer patch through
//! the controller's own webhooks while it is down), then the finalizers of the Ingress and of
//! its TargetGroupBindings (`elbv2.k8s.aws/resources`) are removed, and the load balancers and
//! target groups that may remain are named.

use std::time::{Duration, Instant};

use common::cluster::kube_not_found;
use common::wait::{Poll, wait_for_kube};
use common::{Context, State};
use kube::Api;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde_json::json;

use crate::kubeops::{self, Resolver};
use crate::manifests::{self, Doc};
use crate::ownership::{self, Foreign, NotProvenOurs};
use crate::{
    Applied, AppliedDoc, Deadline, DeleteArgs, Error, SECTION, Section, Usage, albs, pick_cluster,
};

/// The finalizer the controller puts on its TargetGroupBindings.
pub const BINDING_FINALIZER: &str = "elbv2.k8s.aws/resources";

fn is_webhook_configuration(doc: &Doc) -> bool {
    doc.api_version.starts_with("admissionregistration.k8s.io/")
        && doc.kind.ends_with("WebhookConfiguration")
}

/// The objects in the order `delete` takes them (after the Ingresses): webhook configurations
/// first, then the rest in reverse apply order.
pub fn teardown_order(reversed: &[Doc]) -> Vec<&Doc> {
    let rest = reversed.iter().filter(|d| d.kind != "Ingress");
    let (hooks, others): (Vec<&Doc>, Vec<&Doc>) = rest.partition(|d| is_webhook_configuration(d));
    hooks.into_iter().chain(others).collect()
}

/// Deletes `objects` and waits until they are gone.
async fn delete_and_wait(
    objects: &[&(&Doc, Api<DynamicObject>)],
    what: &str,
    timeout: Duration,
) -> Result<(), Error> {
    for (doc, api) in objects {
        if kubeops::delete(api, doc).await? {
            tracing::info!("deleted {}", doc.label());
        }
    }
    wait_for_kube(what, timeout, || async {
        let mut left = Vec::new();
        for (doc, api) in objects {
            if !kubeops::is_gone(api, doc).await? {
                left.push(doc.label());
            }
        }
        Ok::<_, Error>(if left.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("{} left: {}", left.len(), left.join(", ")))
        })
    })
    .await
}

/// The controller's TargetGroupBindings (`elbv2.k8s.aws/v1beta1`) of a namespace.
fn binding_api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("elbv2.k8s.aws", "v1beta1", "TargetGroupBinding");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "targetgroupbindings");
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// The TargetGroupBindings the controller made for the Ingress `namespace/name` (labelled with
/// its stack, an implicit IngressGroup); none when the kind is not served.
async fn bindings_of(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<DynamicObject>, Error> {
    let selector =
        format!("ingress.k8s.aws/stack-namespace={namespace},ingress.k8s.aws/stack-name={name}");
    match binding_api(client, namespace)
        .list(&ListParams::default().labels(&selector))
        .await
    {
        Ok(list) => Ok(list.items),
        Err(e) if kube_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(Error::Kube {
            action: "list",
            target: format!("the TargetGroupBindings of Ingress {namespace}/{name}"),
            source: Box::new(e),
        }),
    }
}

/// Removes every finalizer of the TargetGroupBindings of an Ingress and deletes them; returns
/// the target group ARNs they named.
async fn let_bindings_go(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<String>, Error> {
    let api = binding_api(client, namespace);
    let mut arns = Vec::new();
    for binding in bindings_of(client, namespace, name).await? {
        let binding_name = binding.metadata.name.clone().unwrap_or_default();
        let label = format!("TargetGroupBinding {namespace}/{binding_name}");
        if let Some(arn) = binding.data["spec"]["targetGroupARN"].as_str() {
            arns.push(arn.to_owned());
        }
        let kube_error = |action: &'static str| {
            let target = label.clone();
            move |source: kube::Error| Error::Kube {
                action,
                target,
                source: Box::new(source),
            }
        };
        match api
            .patch(
                &binding_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
        {
            Ok(_) => tracing::warn!("removed the finalizers of {label}"),
            Err(e) if kube_not_found(&e) => continue,
            Err(e) => return Err(kube_error("remove the finalizers of")(e)),
        }
        match api.delete(&binding_name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!("deleted {label}"),
            Err(e) if kube_not_found(&e) => {}
            Err(e) => return Err(kube_error("delete")(e)),
        }
    }
    Ok(arns)
}

/// Says which load balancers and target groups of a force-deleted Ingress remain, found by
/// their tags (and, for target groups, named by its TargetGroupBindings).
async fn report_remaining(ctx: &Context, cluster: &str, stack: &str, binding_arns: &[String]) {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&ctx.aws);
    let tags = format!(
        "{}={cluster} and {}={stack}",
        albs::CLUSTER_TAG,
        albs::STACK_TAG
    );
    match albs::tagged(&elb, cluster, stack).await {
        Ok(found) if found.is_empty() => {
            tracing::info!("no load balancer tagged {tags} remains")
        }
        Ok(found) => {
            for lb in found {
                tracing::warn!(
                    "its ALB may remain: {} ({}, {}); delete it (and then its target groups) when you are sure: aws elbv2 delete-load-balancer --load-balancer-arn {}",
                    lb.name,
                    lb.dns_name,
                    lb.arn,
                    lb.arn
                );
            }
        }
        Err(e) => tracing::warn!(
            "its ALB may remain, and the load balancers could not be listed ({e}): look for one tagged {tags}"
        ),
    }
    let mut groups: Vec<(String, String)> = match albs::tagged_target_groups(&elb, cluster, stack)
        .await
    {
        Ok(found) => found.into_iter().map(|tg| (tg.arn, tg.name)).collect(),
        Err(e) => {
            tracing::warn!(
                "its target groups may remain, and they could not be listed ({e}): look for those tagged {tags}"
            );
            Vec::new()
        }
    };
    for arn in binding_arns {
        if !groups.iter().any(|(known, _)| known == arn) {
            let name = arn.rsplit('/').nth(1).unwrap_or_default().to_owned();
            groups.push((arn.clone(), name));
        }
    }
    if groups.is_empty() {
        tracing::info!("no target group tagged {tags} remains");
    }
    for (arn, name) in groups {
        tracing::warn!(
            "its target group may remain: {name} ({arn}); delete it after its load balancer: aws elbv2 delete-target-group --target-group-arn {arn}"
        );
    }
}

/// Splits the objects to delete into ours and the adopted ones, which stay. An object the state
/// records is ours unless it records it as adopted; one it does not record (`--manifests DIR`)
/// is kept when it carries [`ownership::ADOPTED_ANNOTATION`], else ours when its managedFields
/// prove it ([`ownership::made_by_us`]) or when it is gone already. One it records as `pending`
/// (recorded before its apply, no answer seen) is judged as one it does not record, except
/// that not proven ours it is left with a warning: our apply never made it. Every object is checked before any is deleted: one not proven ours refuses the
/// whole delete (exit 2).
async fn ours<'a>(
    recorded: Option<&Section>,
    resolved: Vec<(&'a Doc, Api<DynamicObject>)>,
) -> Result<(Vec<(&'a Doc, Api<DynamicObject>)>, Vec<&'a Doc>), Error> {
    let mut targets = Vec::new();
    let mut kept = Vec::new();
    let mut unproven = Vec::new();
    for (doc, api) in resolved {
        let record = recorded.and_then(|s| s.applied_objects.iter().find(|a| a.is(doc)));
        let pending = record.is_some_and(|a| a.pending);
        match record {
            Some(applied) if applied.adopted => kept.push(doc),
            Some(applied) if !applied.pending => targets.push((doc, api)),
            // Not recorded, or recorded before an apply whose answer never came: ours when
            // its managedFields show our apply; absent, it is gone (or was never made).
            _ => {
                let live =
                    kubeops::get_live(&api, &doc.name)
                        .await
                        .map_err(|source| Error::Kube {
                            action: "read",
                            target: doc.label(),
                            source: Box::new(source),
                        })?;
                if live.as_ref().is_some_and(ownership::is_marked_adopted) {
                    kept.push(doc);
                    continue;
                }
                let entries = live
                    .map(|o| o.metadata.managed_fields.unwrap_or_default())
                    .map(|entries| (ownership::made_by_us(&entries), entries));
                match entries {
                    None | Some((true, _)) => targets.push((doc, api)),
                    Some((false, entries)) if pending => tracing::warn!(
                        "left {}: recorded before an apply whose answer never came, and the object shows no apply of ours ({}): not made by eks-deploy",
                        doc.label(),
                        ownership::managers(&entries)
                    ),
                    Some((false, entries)) => unproven.push(Foreign {
                        object: doc.label(),
                        why: ownership::managers(&entries),
                    }),
                }
            }
        }
    }
    if unproven.is_empty() {
        Ok((targets, kept))
    } else {
        Err(Usage::from(NotProvenOurs(unproven)).into())
    }
}

/// The Ingresses the AWS Load Balancer Controller serves that are not among `targets`, in the
/// namespaces of the objects to delete: those in a namespace this delete removes (they go
/// first, with ours), and the labels of those in namespaces that stay (left, with a warning).
async fn other_alb_ingresses(
    client: &kube::Client,
    objects: &[Doc],
    targets: &[(&Doc, Api<DynamicObject>)],
) -> Result<(Vec<Doc>, Vec<String>), Error> {
    let doomed: Vec<&str> = targets
        .iter()
        .filter(|(d, _)| d.kind == "Namespace" && d.api_version == "v1")
        .map(|(d, _)| d.name.as_str())
        .collect();
    let mut namespaces: Vec<&str> = objects
        .iter()
        .filter_map(|d| d.namespace.as_deref())
        .chain(doomed.iter().copied())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    if namespaces.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let classes = kubeops::alb_classes(client).await?;
    let (mut going, mut staying) = (Vec::new(), Vec::new());
    for namespace in namespaces {
        for name in kubeops::alb_ingresses(client, namespace, &classes).await? {
            let ours = targets.iter().any(|(d, _)| {
                d.kind == "Ingress" && d.namespace.as_deref() == Some(namespace) && d.name == name
            });
            if ours {
                continue;
            }
            let doc = Doc {
                file: String::new(),
                api_version: "networking.k8s.io/v1".into(),
                kind: "Ingress".into(),
                name,
                namespace: Some(namespace.to_owned()),
                value: serde_json::Value::Null,
            };
            if doomed.contains(&namespace) {
                going.push(doc);
            } else {
                staying.push(doc.label());
            }
        }
    }
    Ok((going, staying))
}

/// `eks-deploy delete`.
pub async fn delete(state: &mut State, ctx: &Context, args: &DeleteArgs) -> Result<(), Error> {
    let started = Instant::now();
    let deadline = Deadline(started + args.target.timeout);
    let cluster = pick_cluster(args.target.cluster.as_deref(), state)?;
    let recorded: Option<Section> = state.section(SECTION)?;
    let objects: Vec<Doc> = match (&recorded, &args.target.manifests) {
        (Some(section), None) => section
            .applied_objects
            .iter()
            .map(Applied::as_doc)
            .collect(),
        (None, None) => {
            tracing::info!(
                "the state records nothing deployed; nothing to delete (pass --manifests DIR to delete what those files describe)"
            );
            return Ok(());
        }
        _ => {
            let (dir, files) = manifests::source(args.target.manifests.as_deref(), state)?;
            manifests::load(&dir, &files)?
        }
    };
    // The EKS token needs usable AWS credentials: without them, exit 2 before any call.
    if args.target.kubeconfig.is_none() {
        ctx.check_credentials().await?;
    }
    let client = common::cluster::kube_client(
        args.target.kubeconfig.as_deref(),
        args.target.context.as_deref(),
        state,
        &ctx.aws,
        &cluster,
    )
    .await?;
    let mut resolver = Resolver::new(client.clone()).await?;
    let mut seen = Vec::new();
    let mut reversed: Vec<Doc> = Vec::new();
    for doc in objects.into_iter().rev() {
        let key = (doc.kind.clone(), doc.namespace.clone(), doc.name.clone());
        if !seen.contains(&key) {
            seen.push(key);
            reversed.push(doc);
        }
    }
    let ingresses: Vec<&Doc> = reversed.iter().filter(|d| d.kind == "Ingress").collect();
    let order: Vec<&Doc> = ingresses
        .iter()
        .copied()
        .chain(teardown_order(&reversed))
        .collect();
    // Each object's API, found once; a kind no longer served (its CRD went) has nothing left.
    let mut resolved: Vec<(&Doc, Api<DynamicObject>)> = Vec::new();
    for doc in order {
        match resolver.api(doc).await {
            Ok(api) => resolved.push((doc, api)),
            Err(Error::UnknownKind { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let (targets, kept) = ours(recorded.as_ref(), resolved).await?;
    let (going, staying) = other_alb_ingresses(&client, &reversed, &targets).await?;
    let mut going_apis = Vec::new();
    for doc in &going {
        going_apis.push((doc, resolver.api(doc).await?));
    }
    if ctx.dry_run {
        for doc in &kept {
            tracing::info!("dry run: would keep {} (adopted)", doc.label());
        }
        for (doc, _) in &targets {
            tracing::info!("dry run: would delete {}", doc.label());
        }
        for doc in &going {
            tracing::info!(
                "dry run: would delete {} first (not made by eks-deploy; its namespace goes)",
                doc.label()
            );
        }
        return Ok(());
    }
    for doc in &kept {
        tracing::info!(
            "kept {}: adopted (eks-deploy apply --adopt took it over), not made by eks-deploy",
            doc.label()
        );
    }
    for label in &staying {
        tracing::warn!(
            "{label} is served by the AWS Load Balancer Controller and not ours: it stays. Once this delete has removed the controller, nothing deletes its ALB or releases it; delete it first if it should go"
        );
    }
    let hooks: Vec<&(&Doc, Api<DynamicObject>)> = targets
        .iter()
        .filter(|(d, _)| is_webhook_configuration(d))
        .collect();
    let rest: Vec<&(&Doc, Api<DynamicObject>)> = targets
        .iter()
        .filter(|(d, _)| d.kind != "Ingress" && !is_webhook_configuration(d))
        .collect();

    // The Ingresses first: ours, and every other one the controller serves in a namespace this
    // delete removes (the namespace would take it anyway, but only after the controller is
    // gone, leaving its ALB). The controller must still run to delete their ALBs. With --force
    // the wait takes at most half of --timeout, so the rest has time to go.
    let ingress_wait = if args.force {
        args.target.timeout / 2
    } else {
        args.target.timeout
    };
    let ingresses: Vec<(&Doc, &Api<DynamicObject>)> = targets
        .iter()
        .filter(|(d, _)| d.kind == "Ingress")
        .map(|(d, api)| (*d, api))
        .chain(going_apis.iter().map(|(d, api)| (*d, api)))
        .collect();
    let mut deleting = Vec::new();
    for (ingress, api) in ingresses {
        if !kubeops::delete(api, ingress).await? {
            continue;
        }
        if going.iter().any(|d| std::ptr::eq(d, ingress)) {
            tracing::info!(
                "deleting {} (not made by eks-deploy; its namespace goes with this delete); the controller deletes its ALB first",
                ingress.label()
            );
        } else {
            tracing::info!(
                "deleting {}; the controller deletes its ALB first",
                ingress.label()
            );
        }
        deleting.push((ingress, api));
    }
    let mut stuck = Vec::new();
    for (ingress, api) in deleting {
        let waited = wait_for_kube(
            &format!("{} to be finalized (its ALB deleted)", ingress.label()),
            deadline.left().min(ingress_wait),
            || async {
                Ok::<_, Error>(if kubeops::is_gone(api, ingress).await? {
                    Poll::Ready(())
                } else {
                    Poll::Pending("held by ingress.k8s.aws/resources".into())
                })
            },
        )
        .await;
        match waited {
            Ok(()) => {}
            Err(Error::Timeout(_)) => {
                let finalizers = kubeops::finalizers(api, ingress).await?;
                let stack = format!(
                    "{}/{}",
                    ingress.namespace.clone().unwrap_or_default(),
                    ingress.name
                );
                if !args.force {
                    return Err(Error::IngressStuck {
                        ingress: stack,
                        finalizers: finalizers.join(", "),
                        cluster,
                    });
                }
                stuck.push((ingress, api, stack));
            }
            Err(e) => return Err(e),
        }
    }

    // The webhook configurations before the controller: once it stops, its fail-closed
    // webhooks would refuse the writes they cover (the finalizer patches of --force included).
    if !stuck.is_empty() {
        tracing::warn!(
            "the controller did not release {} Ingress(es): deleting its webhook configurations, then removing the finalizers",
            stuck.len()
        );
    }
    delete_and_wait(
        &hooks,
        "the webhook configurations to be gone",
        deadline.left(),
    )
    .await?;
    for (ingress, api, stack) in &stuck {
        kubeops::drop_finalizers(api, ingress).await?;
        tracing::warn!("removed the finalizers of Ingress {stack}");
        let namespace = ingress
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let arns = let_bindings_go(&client, &namespace, &ingress.name).await?;
        report_remaining(ctx, &cluster, stack, &arns).await;
    }
    delete_and_wait(&rest, "the deleted objects to be gone", deadline.left()).await?;
    state.clear_section(SECTION);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc(api_version: &str, kind: &str, name: &str) -> Doc {
        Doc {
            file: "f".into(),
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            namespace: None,
            value: Value::Null,
        }
    }

    #[test]
    fn webhook_configurations_go_before_the_controller() {
        // Reverse apply order, as delete sees it.
        let reversed = vec![
            doc("networking.k8s.io/v1", "Ingress", "app"),
            doc("apps/v1", "Deployment", "aws-load-balancer-controller"),
            doc(
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
                "w",
            ),
            doc(
                "admissionregistration.k8s.io/v1",
                "MutatingWebhookConfiguration",
                "w",
            ),
            doc("v1", "Service", "aws-load-balancer-webhook-service"),
            doc("example.com/v1", "FooWebhookConfiguration", "not-admission"),
        ];
        let order: Vec<String> = teardown_order(&reversed)
            .iter()
            .map(|d| d.kind.clone())
            .collect();
        assert_eq!(
            order,
            [
                "ValidatingWebhookConfiguration",
                "MutatingWebhookConfiguration",
                "Deployment",
                "Service",
                "FooWebhookConfiguration"
            ]
        );
    }
}
