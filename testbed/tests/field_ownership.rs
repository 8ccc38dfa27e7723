//! Field ownership in the Kubernetes stand-in (`metadata.managedFields`), as a real API server
//! keeps it: updates own what they set, server-side apply conflicts on another manager's field
//! unless forced, the same value is shared, `dryRun=All` changes nothing, and the status
//! subresource is owned apart. Driven by a kube-rs 5 client, as our binaries drive it.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use testbed::kubeapi::KubeApi;

const US: &str = "eks-fargate-alb";

fn deployment(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ctl", "namespace": "default", "labels": {"app": "ctl"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "ctl"}},
            "template": {
                "metadata": {"labels": {"app": "ctl"}},
                "spec": {"containers": [{"name": "c", "image": "example/ctl:1"}]}
            }
        }
    })
}

/// The stand-in and a Deployment `default/ctl` that `helm` made (an update, replicas 2).
async fn helm_made() -> (KubeApi, Client, Api<Deployment>) {
    let api = KubeApi::start();
    let client = api.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let params = PostParams {
        field_manager: Some("helm".into()),
        ..Default::default()
    };
    deployments
        .create(&params, &serde_json::from_value(deployment(2)).unwrap())
        .await
        .unwrap();
    (api, client, deployments)
}

/// The fields (`FieldsV1`) of `manager`'s entry with `operation`, if it has one.
fn fields_of(object: &Deployment, manager: &str, operation: &str) -> Option<Value> {
    object
        .managed_fields()
        .iter()
        .find(|e| {
            e.manager.as_deref() == Some(manager)
                && e.operation.as_deref() == Some(operation)
                && e.subresource.is_none()
        })
        .map(|e| e.fields_v1.as_ref().unwrap().0.clone())
}

fn owns_replicas(fields: &Option<Value>) -> bool {
    fields
        .as_ref()
        .and_then(|f| f.pointer("/f:spec/f:replicas"))
        .is_some()
}

async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("the test body ends within 30 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_owns_every_field_it_made() {
    bounded(async {
        let (_api, _client, deployments) = helm_made().await;
        let made = deployments.get("ctl").await.unwrap();
        let entries = made.managed_fields();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let entry = &entries[0];
        assert_eq!(entry.manager.as_deref(), Some("helm"));
        assert_eq!(entry.operation.as_deref(), Some("Update"));
        assert_eq!(entry.api_version.as_deref(), Some("apps/v1"));
        assert_eq!(entry.fields_type.as_deref(), Some("FieldsV1"));
        assert!(entry.time.is_some());
        let fields = &entry.fields_v1.as_ref().unwrap().0;
        assert_eq!(fields["f:metadata"], json!({"f:labels": {"f:app": {}}}));
        assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
        assert_eq!(
            fields["f:spec"]["f:template"]["f:spec"]["f:containers"],
            json!({})
        );
        assert!(fields["f:metadata"].get("f:name").is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_conflicts_with_another_managers_field_and_changes_nothing() {
    bounded(async {
        let (api, _client, deployments) = helm_made().await;
        let version = api.resource_version();
        let refused = deployments
            .patch("ctl", &PatchParams::apply(US), &Patch::Apply(deployment(3)))
            .await
            .unwrap_err();
        let kube::Error::Api(status) = refused else {
            panic!("an API error: {refused:?}")
        };
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            status.message,
            r#"Apply failed with 1 conflict: conflict with "helm" using apps/v1: .spec.replicas"#
        );
        let causes = &status.details.as_ref().unwrap().causes;
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].reason, "FieldManagerConflict");
        assert_eq!(causes[0].message, r#"conflict with "helm" using apps/v1"#);
        assert_eq!(causes[0].field, ".spec.replicas");
        assert_eq!(api.resource_version(), version, "nothing was written");

        // Two fields of two managers: the server's multi-conflict wording, managers sorted.
        deployments
            .patch(
                "ctl",
                &PatchParams::apply("kubectl"),
                &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "ctl", "annotations": {"a": "1"}}})),
            )
            .await
            .unwrap();
        let mut both = deployment(3);
        both["metadata"]["annotations"] = json!({"a": "2"});
        let refused = deployments
            .patch("ctl", &PatchParams::apply(US), &Patch::Apply(&both))
            .await
            .unwrap_err();
        let kube::Error::Api(status) = refused else {
            panic!("an API error: {refused:?}")
        };
        assert_eq!(
            status.message,
            "Apply failed with 2 conflicts: conflicts with \"helm\" using apps/v1:\n- .spec.replicas\nconflicts with \"kubectl\":\n- .metadata.annotations.a"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_value_is_shared_and_no_conflict() {
    bounded(async {
        let (_api, _client, deployments) = helm_made().await;
        let mut same = deployment(2);
        same["metadata"]["labels"]["ours"] = json!("yes");
        let applied = deployments
            .patch("ctl", &PatchParams::apply(US), &Patch::Apply(&same))
            .await
            .unwrap();
        assert_eq!(
            applied.labels().get("ours").map(String::as_str),
            Some("yes")
        );
        let helm = fields_of(&applied, "helm", "Update");
        let ours = fields_of(&applied, US, "Apply");
        assert!(
            owns_replicas(&helm) && owns_replicas(&ours),
            "both own it: {helm:?} {ours:?}"
        );
        assert!(
            ours.unwrap()
                .pointer("/f:metadata/f:labels/f:ours")
                .is_some()
        );
        // An apply that changes nothing writes nothing.
        let again = deployments
            .patch("ctl", &PatchParams::apply(US), &Patch::Apply(&same))
            .await
            .unwrap();
        assert_eq!(again.resource_version(), applied.resource_version());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_answers_as_if_and_force_takes_the_field_over() {
    bounded(async {
        let (api, _client, deployments) = helm_made().await;
        let version = api.resource_version();
        // A dry run without force finds the conflict; with force it answers the result.
        let dry = PatchParams::apply(US).dry_run();
        let refused = deployments
            .patch("ctl", &dry, &Patch::Apply(deployment(3)))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, kube::Error::Api(s) if s.code == 409),
            "{refused:?}"
        );
        let answered = deployments
            .patch("ctl", &dry.clone().force(), &Patch::Apply(deployment(3)))
            .await
            .unwrap();
        assert_eq!(answered.spec.as_ref().unwrap().replicas, Some(3));
        assert!(owns_replicas(&fields_of(&answered, US, "Apply")));
        assert_eq!(api.resource_version(), version, "a dry run stores nothing");
        let stored = deployments.get("ctl").await.unwrap();
        assert_eq!(stored.spec.as_ref().unwrap().replicas, Some(2));
        assert!(fields_of(&stored, US, "Apply").is_none());

        // Forced: the field moves to us; helm keeps the rest.
        let forced = deployments
            .patch(
                "ctl",
                &PatchParams::apply(US).force(),
                &Patch::Apply(deployment(3)),
            )
            .await
            .unwrap();
        assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(3));
        let helm = fields_of(&forced, "helm", "Update");
        assert!(!owns_replicas(&helm), "{helm:?}");
        assert!(helm.is_some(), "helm keeps the fields it shares");
        assert!(owns_replicas(&fields_of(&forced, US, "Apply")));

        // An update always wins: helm sets it back and owns it again, without a conflict.
        let edited = deployments
            .patch(
                "ctl",
                &PatchParams {
                    field_manager: Some("helm".into()),
                    ..Default::default()
                },
                &Patch::Merge(json!({"spec": {"replicas": 5}})),
            )
            .await
            .unwrap();
        assert!(owns_replicas(&fields_of(&edited, "helm", "Update")));
        assert!(!owns_replicas(&fields_of(&edited, US, "Apply")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_owned_apart_from_the_spec() {
    bounded(async {
        let api = KubeApi::start();
        let client = api.client().await;
        let deployments: Api<Deployment> = Api::namespaced(client, "default");
        deployments
            .patch("ctl", &PatchParams::apply(US), &Patch::Apply(deployment(2)))
            .await
            .unwrap();
        let status = deployments
            .patch_status(
                "ctl",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"replicas": 2, "observedGeneration": 1}})),
            )
            .await
            .unwrap();
        let entry = status
            .managed_fields()
            .iter()
            .find(|e| e.subresource.as_deref() == Some("status"))
            .cloned()
            .expect("a status entry");
        // kube-rs sends no user agent and no fieldManager here.
        assert_eq!(entry.manager.as_deref(), Some("unknown"));
        let fields = entry.fields_v1.unwrap().0;
        assert!(fields.get("f:spec").is_none(), "{fields}");
        assert_eq!(fields["f:status"]["f:replicas"], json!({}));
        // Our apply of the spec again is no conflict; status fields are not in our entry.
        let again = deployments
            .patch("ctl", &PatchParams::apply(US), &Patch::Apply(deployment(4)))
            .await
            .unwrap();
        assert_eq!(again.spec.unwrap().replicas, Some(4));
        let ours = fields_of(&status, US, "Apply").unwrap();
        assert!(ours.get("f:status").is_none(), "{ours}");
    })
    .await;
}
