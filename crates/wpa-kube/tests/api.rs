#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The adapter against the in-process API double, through the real kube
//! client: scale subresource, conflicts, API errors, status, events.

use std::time::{Duration, SystemTime};

use axum::http::Method;
use futures::StreamExt;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use wpa_core::{MaxDisruption, QueueMetrics, QueueSnapshot, ScaleOperation, ScaleTarget};
use wpa_kube::{
    Error, KubeScaleTarget, RetryPolicy, TargetKind, WorkerPodAutoScaler, WpaEvents,
    invalid_spec_event, scale_event, write_status,
};
use wpa_kube_testing::{ApiServer, Fault};

fn deployment(name: &str, replicas: i32, available: i32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "jobs"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "w", "image": "w"}]}}
        },
        "status": {"replicas": replicas, "availableReplicas": available}
    })
}

fn wpa(name: &str, target: &str) -> Value {
    json!({
        "apiVersion": "k8s.practo.dev/v1",
        "kind": "WorkerPodAutoScaler",
        "metadata": {"name": name, "namespace": "jobs"},
        "spec": {
            "minReplicas": 0,
            "maxReplicas": 10,
            "deploymentName": target,
            "queueURI": "beanstalk://localhost:11300/jobs",
            "targetMessagesPerWorker": 2
        }
    })
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

async fn setup() -> (ApiServer, kube::Client) {
    let server = ApiServer::start().await.unwrap();
    let client = server.client().unwrap();
    (server, client)
}

fn replicas_of(server: &ApiServer, resource: &str, name: &str) -> i64 {
    server
        .get("apps/v1", resource, "jobs", name)
        .unwrap()
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap()
}

struct FixedQueue(QueueSnapshot);

impl QueueMetrics for FixedQueue {
    type Error = std::convert::Infallible;
    async fn snapshot(&mut self) -> Result<QueueSnapshot, Self::Error> {
        Ok(self.0)
    }
}

#[tokio::test]
async fn reads_replicas_and_scales_up_through_the_scale_subresource() {
    let (server, client) = setup().await;
    server.insert(deployment("worker", 1, 1)).unwrap();
    let mut target = KubeScaleTarget::new(client, TargetKind::Deployment, "jobs", "worker");

    let replicas = target.replicas().await.unwrap();
    assert_eq!((replicas.current, replicas.available), (1, 1));
    target.apply(8).await.unwrap();
    assert_eq!(replicas_of(&server, "deployments", "worker"), 8);

    let writes: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method != Method::GET)
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, Method::PUT);
    assert_eq!(
        writes[0].path,
        "/apis/apps/v1/namespaces/jobs/deployments/worker/scale"
    );
    assert_eq!(writes[0].body["kind"], "Scale");
    assert_eq!(writes[0].body["spec"]["replicas"], 8);
    assert!(
        writes[0].body["metadata"]["resourceVersion"].is_string(),
        "optimistic concurrency"
    );

    // Applying the count it already has writes nothing.
    server.clear_requests();
    assert_eq!(target.scale(8).await.unwrap(), 0);
    assert!(server.requests().iter().all(|r| r.method == Method::GET));
}

#[tokio::test]
async fn scales_replica_sets_too() {
    let (server, client) = setup().await;
    server
        .insert(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rs", "namespace": "jobs"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"a": "b"}}},
            "status": {"replicas": 4, "availableReplicas": 3}
        }))
        .unwrap();
    let mut target = KubeScaleTarget::new(client, TargetKind::ReplicaSet, "jobs", "rs");
    let replicas = target.replicas().await.unwrap();
    assert_eq!((replicas.current, replicas.available), (4, 3));
    target.apply(0).await.unwrap();
    assert_eq!(replicas_of(&server, "replicasets", "rs"), 0);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.method == Method::PUT && r.path.ends_with("/replicasets/rs/scale"))
    );
}

#[tokio::test]
async fn a_conflict_is_re_read_and_retried() {
    let (server, client) = setup().await;
    server.insert(deployment("worker", 1, 1)).unwrap();
    // Another writer changes the Deployment between our read and our write,
    // twice: the stale resourceVersion answers 409 both times.
    server.inject(Fault::concurrent_write(
        Method::PUT,
        "/deployments/worker/scale",
        2,
    ));
    let target = KubeScaleTarget::new(client, TargetKind::Deployment, "jobs", "worker")
        .with_retry(fast_retry());

    let attempts = target.scale(5).await.unwrap();
    assert_eq!(attempts, 3);
    assert_eq!(replicas_of(&server, "deployments", "worker"), 5);
    let puts: Vec<u16> = server
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT)
        .map(|r| r.status)
        .collect();
    assert_eq!(puts, [409, 409, 200]);
    let scale_reads = server
        .requests()
        .iter()
        .filter(|r| r.method == Method::GET && r.path.ends_with("/scale"))
        .count();
    assert_eq!(scale_reads, 3, "each retry re-reads the scale");
}

#[tokio::test]
async fn conflicts_give_up_after_the_retry_budget() {
    let (server, client) = setup().await;
    server.insert(deployment("worker", 1, 1)).unwrap();
    server.inject(Fault::concurrent_write(
        Method::PUT,
        "/deployments/worker/scale",
        100,
    ));
    let target = KubeScaleTarget::new(client, TargetKind::Deployment, "jobs", "worker").with_retry(
        RetryPolicy {
            attempts: 3,
            ..fast_retry()
        },
    );
    let error = target.scale(5).await.unwrap_err();
    assert!(
        matches!(error, Error::Conflict { attempts: 3, .. }),
        "{error}"
    );
    assert!(error.is_transient());
    assert_eq!(replicas_of(&server, "deployments", "worker"), 1);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let policy = RetryPolicy {
        attempts: 10,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(300),
    };
    let waits: Vec<u128> = (1..=6).map(|a| policy.backoff(a).as_millis()).collect();
    assert_eq!(waits, [50, 100, 200, 300, 300, 300]);
    assert_eq!(policy.backoff(100), Duration::from_millis(300));
}

#[tokio::test]
async fn a_transient_503_is_retried_by_the_client() {
    let (server, client) = setup().await;
    server.insert(deployment("worker", 2, 2)).unwrap();
    let mut target = KubeScaleTarget::new(client, TargetKind::Deployment, "jobs", "worker");
    server.inject(Fault::respond(
        Method::PUT,
        "/deployments/worker/scale",
        503,
        2,
    ));
    target.apply(6).await.unwrap();
    assert_eq!(replicas_of(&server, "deployments", "worker"), 6);
    let puts: Vec<u16> = server
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT)
        .map(|r| r.status)
        .collect();
    assert_eq!(puts, [503, 503, 200]);
}

#[tokio::test]
async fn server_errors_are_typed_and_survived() {
    let (server, _) = setup().await;
    let client = server.client_without_retry().unwrap();
    server.insert(deployment("worker", 2, 2)).unwrap();
    let mut target = KubeScaleTarget::new(client, TargetKind::Deployment, "jobs", "worker");

    server.inject(Fault::respond(
        Method::PUT,
        "/deployments/worker/scale",
        500,
        1,
    ));
    let error = target.apply(6).await.unwrap_err();
    assert!(matches!(error, Error::Server { code: 500, .. }), "{error}");
    assert!(error.is_transient());
    assert!(error.to_string().contains("jobs/worker"), "{error}");
    assert_eq!(replicas_of(&server, "deployments", "worker"), 2);

    server.inject(Fault::respond(Method::GET, "/deployments/worker", 503, 1));
    assert!(matches!(
        target.replicas().await,
        Err(Error::Server { code: 503, .. })
    ));

    server.inject(Fault::respond(
        Method::GET,
        "/deployments/worker/scale",
        429,
        1,
    ));
    let error = target.apply(6).await.unwrap_err();
    assert!(matches!(error, Error::TooManyRequests { .. }), "{error}");

    server.inject(Fault::respond(
        Method::PUT,
        "/deployments/worker/scale",
        403,
        1,
    ));
    let error = target.apply(6).await.unwrap_err();
    assert!(
        matches!(error, Error::Forbidden { verb: "update", .. }),
        "{error}"
    );
    assert!(!error.is_transient());
    assert!(error.to_string().contains("RBAC"));

    // The next attempt, fault gone, works.
    target.apply(6).await.unwrap();
    assert_eq!(replicas_of(&server, "deployments", "worker"), 6);
}

#[tokio::test]
async fn a_missing_deployment_is_a_typed_error() {
    let (_server, client) = setup().await;
    let mut target = KubeScaleTarget::new(client, TargetKind::Deployment, "jobs", "ghost");
    let error = target.replicas().await.unwrap_err();
    assert!(
        matches!(&error, Error::NotFound { kind, name, .. } if kind == "Deployment" && name == "ghost"),
        "{error}"
    );
    assert!(error.to_string().contains("not found"));
    let error = target.apply(3).await.unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error}");
}

#[tokio::test]
async fn an_unreachable_api_server_is_a_transport_error() {
    let (server, client) = setup().await;
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut target = KubeScaleTarget::new(client, TargetKind::Deployment, "jobs", "worker");
    let error = target.replicas().await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error}");
    assert!(error.is_transient());
}

#[tokio::test]
async fn reconcile_scales_up_writes_status_once_and_records_an_event() {
    let (server, client) = setup().await;
    server.insert(deployment("worker", 1, 1)).unwrap();
    server.insert(wpa("w", "worker")).unwrap();
    let api: Api<WorkerPodAutoScaler> = Api::namespaced(client.clone(), "jobs");
    let object = api.get("w").await.unwrap();
    let valid = object.spec.validate(MaxDisruption::DEFAULT).unwrap();
    let mut target = KubeScaleTarget::new(
        client.clone(),
        valid.target.kind,
        "jobs",
        &valid.target.name,
    );
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);

    let plan = wpa_core::reconcile(
        &mut FixedQueue(QueueSnapshot::new(15)),
        &mut target,
        &valid.spec,
        Duration::from_secs(600),
        None,
        now,
    )
    .await
    .unwrap();
    assert_eq!(plan.operation, ScaleOperation::ScaleUp);
    assert_eq!(replicas_of(&server, "deployments", "worker"), 8);

    let status = object
        .status
        .clone()
        .unwrap_or_default()
        .with_core(&plan.status);
    assert!(write_status(&client, &object, &status).await.unwrap());
    let stored = server
        .get("k8s.practo.dev/v1", "workerpodautoscalers", "jobs", "w")
        .unwrap();
    assert_eq!(
        stored["status"],
        json!({
            "CurrentMessages": 15, "CurrentReplicas": 1, "AvailableReplicas": 1,
            "DesiredReplicas": 8, "LastScaleTime": "2027-01-15T08:00:00Z"
        })
    );
    assert_eq!(
        stored["spec"]["minReplicas"], 0,
        "a status write leaves the spec alone"
    );
    let patch = server
        .requests()
        .into_iter()
        .find(|r| r.method == Method::PATCH)
        .unwrap();
    assert_eq!(
        patch.path,
        "/apis/k8s.practo.dev/v1/namespaces/jobs/workerpodautoscalers/w/status"
    );
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );

    // Next step, nothing changed: no status write at all.
    server.clear_requests();
    let object = api.get("w").await.unwrap();
    assert_eq!(
        object.status.as_ref().and_then(|s| s.last_scale_time()),
        Some(now)
    );
    let same = object
        .status
        .clone()
        .unwrap_or_default()
        .with_core(&plan.status);
    assert!(!write_status(&client, &object, &same).await.unwrap());
    assert!(server.requests().iter().all(|r| r.method == Method::GET));

    // The scale up gets an Event carrying the core's reason.
    let events = WpaEvents::new(client.clone(), "workerpodautoscaler", Some("pod-1".into()));
    events
        .publish(&object, &scale_event(&plan).unwrap())
        .await
        .unwrap();
    let stored = server.list("events.k8s.io/v1", "events", Some("jobs"));
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["reason"], "ScaledUp");
    assert_eq!(stored[0]["type"], "Normal");
    assert_eq!(stored[0]["regarding"]["name"], "w");
    assert_eq!(stored[0]["regarding"]["kind"], "WorkerPodAutoScaler");
    let note = stored[0]["note"].as_str().unwrap();
    assert!(note.starts_with("1 -> 8 replicas: "), "{note}");
    assert!(note.contains(&plan.decision.to_string()), "{note}");
}

#[tokio::test]
async fn an_invalid_spec_gets_a_warning_event() {
    let (server, client) = setup().await;
    let mut object = wpa("bad", "worker");
    object["spec"]["replicaSetName"] = json!("rs");
    server.insert(object).unwrap();
    let api: Api<WorkerPodAutoScaler> = Api::namespaced(client.clone(), "jobs");
    let object = api.get("bad").await.unwrap();
    let error = object.spec.validate(MaxDisruption::DEFAULT).unwrap_err();
    let events = WpaEvents::new(client.clone(), "workerpodautoscaler", None);
    events
        .publish(&object, &invalid_spec_event(&error))
        .await
        .unwrap();
    let stored = server.list("events.k8s.io/v1", "events", Some("jobs"));
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["type"], "Warning");
    assert_eq!(stored[0]["reason"], "InvalidSpec");
    assert!(
        stored[0]["note"]
            .as_str()
            .unwrap()
            .contains("set exactly one")
    );

    // With a condition on the status saying what to fix.
    let status = object.status.clone().unwrap_or_default().with_condition(
        "Valid",
        false,
        "InvalidSpec",
        &error.to_string(),
        SystemTime::now(),
    );
    assert!(write_status(&client, &object, &status).await.unwrap());
    let stored = server
        .get("k8s.practo.dev/v1", "workerpodautoscalers", "jobs", "bad")
        .unwrap();
    assert_eq!(stored["status"]["Conditions"][0]["type"], "Valid");
    assert_eq!(stored["status"]["Conditions"][0]["status"], "False");
}

#[tokio::test]
async fn a_watcher_sees_workerpodautoscalers_come_change_and_go() {
    let (server, client) = setup().await;
    server.insert(wpa("a", "worker")).unwrap();
    let api: Api<WorkerPodAutoScaler> = Api::all(client);
    let mut stream = watcher(api, watcher::Config::default()).boxed();

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut changed = false;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, stream.next()).await {
        match event.unwrap() {
            watcher::Event::InitDone => {
                server.insert(wpa("b", "worker")).unwrap();
                server.modify(
                    "k8s.practo.dev/v1",
                    "workerpodautoscalers",
                    "jobs",
                    "a",
                    |o| {
                        o["spec"]["maxReplicas"] = json!(3);
                    },
                );
                server.delete("k8s.practo.dev/v1", "workerpodautoscalers", "jobs", "b");
                changed = true;
            }
            watcher::Event::InitApply(o) => seen.push(format!("init {}", o.name_any())),
            watcher::Event::Apply(o) => {
                seen.push(format!(
                    "apply {} max {:?}",
                    o.name_any(),
                    o.spec.max_replicas
                ));
            }
            watcher::Event::Delete(o) => {
                seen.push(format!("delete {}", o.name_any()));
                if changed {
                    break;
                }
            }
            watcher::Event::Init => {}
        }
    }
    assert_eq!(
        seen,
        [
            "init a",
            "apply b max Some(10)",
            "apply a max Some(3)",
            "delete b"
        ]
    );
}
