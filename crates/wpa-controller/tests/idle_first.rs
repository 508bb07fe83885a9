#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Idle-first scale down end to end: the controller against the API double
//! with its ReplicaSet controller on (victims in Kubernetes' order), and a
//! real HTTP worker per pod answering the busy probe. Real time: the
//! probes cross loopback sockets, which paused time cannot wait on.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use wpa_controller::{Clock, ControllerConfig};
use wpa_kube_testing::ApiServer;

use common::*;

/// One worker's busy endpoint on 127.0.0.1, answering `busy` or `idle`.
struct Worker {
    address: SocketAddr,
    busy: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    async fn start(busy: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let flag = Arc::new(AtomicBool::new(busy));
        let state = Arc::clone(&flag);
        let app = axum::Router::new().route(
            "/busy",
            axum::routing::get(move || {
                let busy = state.load(Ordering::SeqCst);
                async move { if busy { "busy" } else { "idle" } }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Worker {
            address,
            busy: flag,
            task,
        }
    }

    fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::SeqCst);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn worker_deployment(replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "worker", "namespace": "jobs"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "worker"}},
            "template": {
                "metadata": {"labels": {"app": "worker"}},
                "spec": {"containers": [{"name": "worker", "ports": [{"name": "busy", "containerPort": 1}]}]}
            }
        },
    })
}

fn pod_names(server: &ApiServer) -> BTreeSet<String> {
    server
        .list("v1", "pods", Some("jobs"))
        .iter()
        .filter_map(|pod| pod.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Points each pod's `busy` port at its worker, as a kubelet would run the
/// pod's container: pods are matched to workers in name order.
fn wire(server: &ApiServer, workers: &HashMap<String, u16>) {
    for (pod, port) in workers {
        server.modify("v1", "pods", "jobs", pod, |pod| {
            pod["spec"]["containers"][0]["ports"] =
                json!([{"name": "busy", "containerPort": port}]);
        });
    }
}

fn cost_writes(server: &ApiServer) -> Vec<(String, String)> {
    server
        .requests()
        .iter()
        .filter(|r| r.method == Method::PATCH && r.path.contains("/pods/"))
        .map(|r| {
            (
                r.path.rsplit('/').next().unwrap_or("").to_owned(),
                r.body
                    .pointer("/metadata/annotations/controller.kubernetes.io~1pod-deletion-cost")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

fn pod_lists(server: &ApiServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == Method::GET && r.path.ends_with("/pods"))
        .count()
}

#[tokio::test]
async fn no_busy_pod_is_removed_across_scale_downs() {
    let config = ControllerConfig {
        resync_period: Duration::from_millis(300),
        scale_down_delay: Duration::ZERO,
        api_qps: 0.0,
        clock: Clock::tokio(),
        ..ControllerConfig::default()
    };
    let run = start(config, |server, _| {
        server.set_replicaset_controller(true);
        server.insert(worker_deployment(6)).unwrap();
    })
    .await;
    let server = &run.server;

    // Six pods, each with its own worker: two busy, one that never answers
    // (its port is closed), three idle.
    let pods: Vec<String> = pod_names(server).into_iter().collect();
    assert_eq!(pods.len(), 6);
    let mut workers: HashMap<String, Worker> = HashMap::new();
    let mut ports: HashMap<String, u16> = HashMap::new();
    for (i, pod) in pods.iter().enumerate() {
        let worker = Worker::start(i < 2).await;
        ports.insert(pod.clone(), worker.address.port());
        workers.insert(pod.clone(), worker);
    }
    let silent = pods[2].clone();
    workers.remove(&silent);
    wire(server, &ports);
    let busy_at_start: BTreeSet<String> = pods[..3].iter().cloned().collect();

    let mut spec = wpa("jobs", "w", "worker", "fake://q");
    spec["spec"]["busyProbe"] = json!({"port": "busy", "timeoutSeconds": 0.5});
    server.clear_requests();
    server.insert(spec).unwrap();

    // Round 1: the queue is empty, the reference would go to 0 (maxDisruption
    // 100%); idle-first removes the three idle pods only.
    eventually("the idle pods removed", Duration::from_secs(10), || {
        replicas(server, "jobs", "worker") == Some(3)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(replicas(server, "jobs", "worker"), Some(3));
    assert_eq!(pod_names(server), busy_at_start);
    // Three victims among six pods of equal cost: three writes (lowering
    // them; raising the three others would be as many).
    let writes = cost_writes(server);
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert!(
        writes
            .iter()
            .all(|(pod, cost)| !busy_at_start.contains(pod) && cost == "-1")
    );

    // Round 2: one busy worker finishes; it alone goes, with one write.
    workers[&pods[0]].set_busy(false);
    eventually("the freed pod removed", Duration::from_secs(10), || {
        replicas(server, "jobs", "worker") == Some(2)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let left: BTreeSet<String> = pods[1..3].iter().cloned().collect();
    assert_eq!(pod_names(server), left);
    let writes = cost_writes(server);
    assert_eq!(writes.len(), 4, "{writes:?}");
    assert_eq!(writes[3], (pods[0].clone(), "-1".to_owned()));

    // Round 3: the silent worker comes up busy, then both finish: both go.
    // If a reconcile's probes fall between the two finishing, the first
    // one goes alone, with one write; otherwise the whole pool goes, which
    // takes none.
    let revived = Worker::start(true).await;
    ports.insert(silent.clone(), revived.address.port());
    wire(
        server,
        &HashMap::from([(silent.clone(), revived.address.port())]),
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(replicas(server, "jobs", "worker"), Some(2));
    workers[&pods[1]].set_busy(false);
    revived.set_busy(false);
    eventually("the pool gone", Duration::from_secs(10), || {
        replicas(server, "jobs", "worker") == Some(0)
    })
    .await;
    assert!(pod_names(server).is_empty());
    let writes = cost_writes(server).len();
    assert!(writes == 4 || writes == 5, "{writes} writes");

    // Nothing pending: no pod is listed or probed any more.
    let lists = pod_lists(server);
    assert!(lists >= 3, "one list per scale down at least: {lists}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(pod_lists(server), lists);
    assert_rbac_allows(&server.requests());
    let metrics = run.metrics.render();
    let expected = format!("wpa_pod_deletion_cost_writes_total {writes}");
    assert!(metrics.contains(&expected), "{metrics}");
    assert!(
        metrics.contains("wpa_busy_probe_answers_total{answer=\"unanswered\"}"),
        "{metrics}"
    );
    drop(revived);
    run.stop().await;
}

#[tokio::test]
async fn without_a_probe_no_pod_is_read() {
    let config = ControllerConfig {
        resync_period: Duration::from_millis(200),
        scale_down_delay: Duration::ZERO,
        api_qps: 0.0,
        clock: Clock::tokio(),
        ..ControllerConfig::default()
    };
    let run = start(config, |server, _| {
        server.set_replicaset_controller(true);
        server.insert(worker_deployment(4)).unwrap();
        server
            .insert(wpa("jobs", "w", "worker", "fake://q"))
            .unwrap();
    })
    .await;
    let server = &run.server;
    // The reference's scale down: all four at once, whatever they do.
    eventually("the scale down", Duration::from_secs(10), || {
        replicas(server, "jobs", "worker") == Some(0)
    })
    .await;
    assert_eq!(pod_lists(server), 0);
    assert!(cost_writes(server).is_empty());
    run.stop().await;
}

/// A guard against a worker that says idle but holds a job: the answer is
/// read right before each scale down, not remembered.
#[tokio::test]
async fn answers_are_read_at_each_scale_down() {
    let config = ControllerConfig {
        resync_period: Duration::from_millis(200),
        scale_down_delay: Duration::ZERO,
        api_qps: 0.0,
        clock: Clock::tokio(),
        ..ControllerConfig::default()
    };
    let run = start(config, |server, _| {
        server.set_replicaset_controller(true);
        server.insert(worker_deployment(2)).unwrap();
    })
    .await;
    let server = &run.server;
    let pods: Vec<String> = pod_names(server).into_iter().collect();
    let a = Worker::start(true).await;
    let b = Worker::start(true).await;
    wire(
        server,
        &HashMap::from([
            (pods[0].clone(), a.address.port()),
            (pods[1].clone(), b.address.port()),
        ]),
    );
    let mut spec = wpa("jobs", "w", "worker", "fake://q");
    spec["spec"]["busyProbe"] = json!({"port": "busy"});
    server.insert(spec).unwrap();
    // Both busy: probed at every resync, never removed.
    eventually("a few probes", Duration::from_secs(10), || {
        pod_lists(server) >= 3
    })
    .await;
    assert_eq!(replicas(server, "jobs", "worker"), Some(2));
    b.set_busy(false);
    eventually("the idle one removed", Duration::from_secs(10), || {
        replicas(server, "jobs", "worker") == Some(1)
    })
    .await;
    assert_eq!(pod_names(server), BTreeSet::from([pods[0].clone()]));
    run.stop().await;
}
