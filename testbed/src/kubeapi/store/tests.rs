use super::*;

fn target(store: &Store, group: &str, plural: &str, ns: Option<&str>) -> Target {
    let rt = store
        .types()
        .iter()
        .find(|t| t.group == group && t.plural == plural)
        .unwrap()
        .clone();
    Target {
        version: rt.versions[0].clone(),
        rt,
        namespace: ns.map(str::to_owned),
        status: false,
        writer: Writer::default(),
    }
}

#[test]
fn generation_follows_the_spec_only() {
    let mut store = Store::new(100);
    let t = target(&store, "", "configmaps", Some("default"));
    let made = store
        .create(
            &t,
            json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
            false,
        )
        .unwrap();
    assert_eq!(made["metadata"]["generation"], 1);
    assert_eq!(made["apiVersion"], "v1");
    let relabelled = store
        .patch(
            &t,
            "c",
            PatchKind::Merge,
            json!({"metadata": {"labels": {"x": "y"}}}),
            false,
        )
        .unwrap()
        .1;
    assert_eq!(relabelled["metadata"]["generation"], 1);
    let rv = relabelled["metadata"]["resourceVersion"].clone();
    let changed = store
        .patch(
            &t,
            "c",
            PatchKind::Merge,
            json!({"data": {"a": "2"}}),
            false,
        )
        .unwrap()
        .1;
    assert_eq!(changed["metadata"]["generation"], 2);
    let same = store
        .patch(
            &t,
            "c",
            PatchKind::Merge,
            json!({"data": {"a": "2"}}),
            false,
        )
        .unwrap()
        .1;
    assert_eq!(
        same["metadata"]["resourceVersion"],
        changed["metadata"]["resourceVersion"]
    );
    assert_ne!(rv, changed["metadata"]["resourceVersion"]);
}

#[test]
fn names_and_namespaces_are_checked() {
    let mut store = Store::new(100);
    let t = target(&store, "", "configmaps", Some("nowhere"));
    let err = store
        .create(&t, json!({"metadata": {"name": "c"}}), false)
        .unwrap_err();
    assert_eq!((err.code, err.reason), (404, "NotFound"));
    let t = target(&store, "", "configmaps", Some("default"));
    let err = store
        .create(&t, json!({"metadata": {"name": "Bad_Name"}}), false)
        .unwrap_err();
    assert_eq!((err.code, err.reason), (422, "Invalid"));
    let made = store
        .create(&t, json!({"metadata": {"generateName": "cm-"}}), false)
        .unwrap();
    assert!(
        made["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("cm-")
    );
    let roles = target(&store, "rbac.authorization.k8s.io", "clusterroles", None);
    store
        .create(&roles, json!({"metadata": {"name": "system:thing"}}), false)
        .unwrap();
}

#[test]
fn history_is_bounded() {
    let mut store = Store::new(3);
    let t = target(&store, "", "configmaps", Some("default"));
    for i in 0..5 {
        store
            .create(&t, json!({"metadata": {"name": format!("c{i}")}}), false)
            .unwrap();
    }
    let now = store.resource_version();
    assert_eq!(
        store.events_after(now - 3, "", "configmaps").unwrap().len(),
        3
    );
    assert!(store.events_after(now - 4, "", "configmaps").is_err());
    assert!(
        store
            .events_after(now, "", "configmaps")
            .unwrap()
            .is_empty()
    );
}
