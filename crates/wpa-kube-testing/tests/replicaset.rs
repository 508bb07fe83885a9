#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The emulated ReplicaSet controller, seen through the real kube client:
//! a scale makes pods, and a scale down deletes the ones the controller
//! would pick, `pod-deletion-cost` first.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use wpa_kube_testing::ApiServer;
use wpa_kube_testing::replicaset::POD_DELETION_COST;

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}},
        }
    }))
    .unwrap()
}

async fn pod_names(pods: &Api<Pod>) -> Vec<String> {
    let mut names: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    names.sort();
    names
}

async fn scale(deployments: &Api<Deployment>, name: &str, replicas: i32) {
    deployments
        .patch_scale(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_scale_down_deletes_the_cheapest_pods_first() {
    let server = ApiServer::start().await.unwrap();
    server.set_replicaset_controller(true);
    let client = server.in_process_client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "ns");
    let pods: Api<Pod> = Api::namespaced(client, "ns");
    deployments
        .create(&PostParams::default(), &deployment("workers", 4))
        .await
        .unwrap();
    let all = pod_names(&pods).await;
    assert_eq!(all.len(), 4, "{all:?}");
    let ready = pods.get(&all[0]).await.unwrap();
    assert_eq!(ready.labels()["app"], "workers");
    assert_eq!(
        ready.owner_references()[0].name,
        "workers",
        "owned by its workload"
    );

    // The newest pods would go first; their costs say otherwise.
    for (name, cost) in all.iter().zip(["-10", "50", "-20", "100"]) {
        pods.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {POD_DELETION_COST: cost}}})),
        )
        .await
        .unwrap();
    }
    scale(&deployments, "workers", 2).await;
    assert_eq!(pod_names(&pods).await, [all[1].clone(), all[3].clone()]);

    // Without costs the newest go first; scaling up adds fresh pods.
    scale(&deployments, "workers", 3).await;
    let grown = pod_names(&pods).await;
    assert_eq!(grown.len(), 3);
    let added: Vec<&String> = grown.iter().filter(|n| !all.contains(n)).collect();
    assert_eq!(added.len(), 1);
    // The new pod has cost 0, below 50 and 100: it goes first.
    scale(&deployments, "workers", 2).await;
    assert_eq!(pod_names(&pods).await, [all[1].clone(), all[3].clone()]);
}

#[tokio::test]
async fn off_by_default_and_blind_to_other_pods() {
    let server = ApiServer::start().await.unwrap();
    let client = server.in_process_client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "ns");
    let pods: Api<Pod> = Api::namespaced(client, "ns");
    deployments
        .create(&PostParams::default(), &deployment("quiet", 3))
        .await
        .unwrap();
    assert!(
        pod_names(&pods).await.is_empty(),
        "no controller by default"
    );

    server.set_replicaset_controller(true);
    let stranger: Pod = serde_json::from_value(json!({
        "metadata": {"name": "stranger", "labels": {"app": "other"}},
        "spec": {"containers": []},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &stranger)
        .await
        .unwrap();
    scale(&deployments, "quiet", 1).await;
    scale(&deployments, "quiet", 0).await;
    assert_eq!(pod_names(&pods).await, ["stranger"]);
}
