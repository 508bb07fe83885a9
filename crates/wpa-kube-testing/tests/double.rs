#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The double behaves like the API server where the autoscaler relies on
//! it, seen through the real kube client.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use wpa_kube_testing::{ApiServer, Fault};

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"a": name}}, "template": {}}
    }))
    .unwrap()
}

#[tokio::test]
async fn create_get_replace_with_optimistic_concurrency() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(server.client().unwrap(), "ns");
    let created = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    assert_eq!(created.spec.replicas, Some(1), "replicas default to 1");
    assert!(created.uid().is_some());
    let rv = created.resource_version().unwrap();

    let mut update = created.clone();
    update.spec.replicas = Some(3);
    let updated = api
        .replace("web", &PostParams::default(), &update)
        .await
        .unwrap();
    assert_ne!(updated.resource_version().unwrap(), rv);
    assert_eq!(updated.metadata.generation, Some(2));

    // The same stale object again: 409.
    let error = api
        .replace("web", &PostParams::default(), &update)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = error else {
        panic!("{error}")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));

    // Creating it twice: 409 too; a missing one: 404.
    let error = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap_err();
    assert!(matches!(error, kube::Error::Api(s) if s.code == 409));
    let error = api.get("nope").await.unwrap_err();
    assert!(matches!(error, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"));

    // Status survives a write to the main resource; a status write leaves
    // the spec alone.
    server.modify("apps/v1", "deployments", "ns", "web", |o| {
        o["status"] = json!({"availableReplicas": 3});
    });
    let mut current = api.get("web").await.unwrap();
    current.spec.replicas = Some(4);
    current.status = None;
    let after = api
        .replace("web", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(after.status.unwrap().available_replicas, Some(3));
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"availableReplicas": 4}})),
    )
    .await
    .unwrap();
    let after = api.get("web").await.unwrap();
    assert_eq!(after.spec.replicas, Some(4));
    assert_eq!(after.status.unwrap().available_replicas, Some(4));
}

#[tokio::test]
async fn list_and_watch_from_a_resource_version() {
    let server = ApiServer::start().await.unwrap();
    let client = server.client().unwrap();
    let in_a: Api<Deployment> = Api::namespaced(client.clone(), "a");
    let in_b: Api<Deployment> = Api::namespaced(client.clone(), "b");
    in_a.create(&PostParams::default(), &deployment("one"))
        .await
        .unwrap();
    in_b.create(&PostParams::default(), &deployment("two"))
        .await
        .unwrap();

    let all: Api<Deployment> = Api::all(client);
    let list = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 2);
    assert_eq!(
        in_a.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let rv = list.metadata.resource_version.unwrap();

    let stream = in_a
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap();
    let mut stream = stream.boxed();
    in_b.create(&PostParams::default(), &deployment("other-namespace"))
        .await
        .unwrap();
    in_a.create(&PostParams::default(), &deployment("three"))
        .await
        .unwrap();
    in_a.delete("one", &Default::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(d)))) => seen.push(format!("added {}", d.name_any())),
            Ok(Ok(Some(WatchEvent::Deleted(d)))) => seen.push(format!("deleted {}", d.name_any())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["added three", "deleted one"]);
}

#[tokio::test]
async fn list_in_pages() {
    let server = ApiServer::start().await.unwrap();
    let client = server.client().unwrap();
    for (namespace, name) in [("a", "x.1"), ("a", "y"), ("b", "x"), ("b", "z"), ("c", "w")] {
        let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        api.create(&PostParams::default(), &deployment(name))
            .await
            .unwrap();
    }
    let all: Api<Deployment> = Api::all(client);
    let rv = server.resource_version().to_string();
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(2);
        if let Some(token) = token.take() {
            params = params.continue_token(&token);
        }
        let page = all.list(&params).await.unwrap();
        // Every page carries the first page's resourceVersion.
        assert_eq!(page.metadata.resource_version.as_deref(), Some(rv.as_str()));
        pages.push(
            page.items
                .iter()
                .map(|d| format!("{}/{}", d.namespace().unwrap(), d.name_any()))
                .collect::<Vec<_>>(),
        );
        match page.metadata.continue_ {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
        assert!(pages.len() < 10, "the continue token does not advance");
    }
    assert_eq!(
        pages,
        [vec!["a/x.1", "a/y"], vec!["b/x", "b/z"], vec!["c/w"]]
    );
    // Without a limit: everything at once; a forged token: 400.
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        5
    );
    let error = all
        .list(&ListParams::default().limit(2).continue_token("nonsense"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, kube::Error::Api(ref s) if s.code == 400),
        "{error}"
    );
}

#[tokio::test]
async fn scale_subresource_and_injected_faults() {
    let server = ApiServer::start().await.unwrap();
    let client = server.client_without_retry().unwrap();
    let api: Api<Deployment> = Api::namespaced(client, "ns");
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 7}})),
    )
    .await
    .unwrap();
    assert_eq!(api.get("web").await.unwrap().spec.replicas, Some(7));

    server.inject(Fault::respond(
        axum::http::Method::GET,
        "/deployments/web",
        429,
        1,
    ));
    let error = api.get("web").await.unwrap_err();
    assert!(matches!(error, kube::Error::Api(s) if s.code == 429));
    assert!(
        api.get("web").await.is_ok(),
        "a fault applies only as often as asked"
    );
    assert!(api.get_scale("ghost").await.is_err());
}

#[tokio::test]
async fn leases_with_server_side_apply_conflicts() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Lease> = Api::namespaced(server.client().unwrap(), "ns");
    let apply = |holder: &str| {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}
        })
    };
    let first = PatchParams::apply("manager-a");
    api.patch("lock", &first, &Patch::Apply(apply("a")))
        .await
        .unwrap();
    assert_eq!(
        api.get("lock")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("a")
    );

    // Another manager taking the held field: conflict, unless forced.
    let second = PatchParams::apply("manager-b");
    let error = api
        .patch("lock", &second, &Patch::Apply(apply("b")))
        .await
        .unwrap_err();
    assert!(matches!(error, kube::Error::Api(s) if s.code == 409));
    // The same value is no conflict (shared ownership).
    api.patch("lock", &second, &Patch::Apply(apply("a")))
        .await
        .unwrap();
    api.patch("lock", &second.clone().force(), &Patch::Apply(apply("b")))
        .await
        .unwrap();
    assert_eq!(
        api.get("lock")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("b")
    );

    // Released through a merge patch: anyone may apply again.
    api.patch(
        "lock",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"holderIdentity": null}})),
    )
    .await
    .unwrap();
    api.patch("lock", &first, &Patch::Apply(apply("a")))
        .await
        .unwrap();
}
