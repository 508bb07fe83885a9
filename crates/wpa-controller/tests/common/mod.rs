//! What the controller tests share: a fake queue whose length the test
//! sets, the API double with the controller running on it, and checks.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use wpa_controller::{Clock, ControllerConfig, Health, Metrics, SourceFactory};
use wpa_core::QueueSnapshot;
use wpa_kube_testing::ApiServer;
use wpa_poller::{PollRequest, PollerConfig, QueueSource, Registry, Subscription};

/// Queues named `fake://<name>`, whose length the test sets.
#[derive(Default)]
pub struct FakeQueues {
    pub lengths: Mutex<HashMap<String, Arc<AtomicU32>>>,
    /// Per queue: whether its latest poll asked for the arrival rate.
    pub asked_rate: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Per queue: what it reports beside its length (none by default).
    pub extras: Mutex<HashMap<String, Arc<Mutex<Extras>>>>,
}

/// What a fake queue reports beside its length.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extras {
    /// Messages in flight (SQS not visible, beanstalkd reserved).
    pub in_flight: Option<u32>,
    /// Messages sent per minute, reported only to a poll that asks for it
    /// (as the SQS adapter does, CloudWatch costing money).
    pub sent_per_minute: Option<f64>,
}

impl FakeQueues {
    pub fn length(&self, uri: &str) -> Arc<AtomicU32> {
        Arc::clone(
            self.lengths
                .lock()
                .unwrap()
                .entry(uri.to_owned())
                .or_default(),
        )
    }
    pub fn asked_rate(&self, uri: &str) -> Arc<AtomicBool> {
        Arc::clone(
            self.asked_rate
                .lock()
                .unwrap()
                .entry(uri.to_owned())
                .or_default(),
        )
    }
    pub fn extras(&self, uri: &str) -> Arc<Mutex<Extras>> {
        Arc::clone(
            self.extras
                .lock()
                .unwrap()
                .entry(uri.to_owned())
                .or_default(),
        )
    }
    pub fn set(&self, uri: &str, messages: u32) {
        self.length(uri).store(messages, Ordering::SeqCst);
    }
    /// Sets the length, the in-flight count and the arrival rate at once.
    pub fn set_load(&self, uri: &str, messages: u32, in_flight: u32, sent_per_minute: f64) {
        *self.extras(uri).lock().unwrap() = Extras {
            in_flight: Some(in_flight),
            sent_per_minute: Some(sent_per_minute),
        };
        self.set(uri, messages);
    }
}

/// How long the fake queue's rate counts: an hour, so that little of it
/// is noise to the wait-target policy (2% at 5 msg/s).
pub const FAKE_RATE_WINDOW: Duration = Duration::from_secs(3_600);

pub struct FakeSource(Arc<AtomicU32>, Arc<AtomicBool>, Arc<Mutex<Extras>>);

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

impl QueueSource for FakeSource {
    type Error = Never;
    async fn poll(&mut self, request: PollRequest) -> Result<QueueSnapshot, Never> {
        self.1.store(request.arrival_rate, Ordering::SeqCst);
        let messages = self.0.load(Ordering::SeqCst);
        if request.wake_up && messages == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let extras = *self.2.lock().unwrap();
        let mut snapshot = QueueSnapshot::new(self.0.load(Ordering::SeqCst));
        if let Some(in_flight) = extras.in_flight {
            snapshot = snapshot.with_in_flight(in_flight);
        }
        if let Some(rate) = extras.sent_per_minute
            && request.arrival_rate
        {
            snapshot = snapshot
                .with_arrival_rate(rate)
                .unwrap()
                .with_arrival_rate_window(FAKE_RATE_WINDOW);
        }
        Ok(snapshot)
    }
}

impl SourceFactory for FakeQueues {
    fn subscribe(&self, registry: &Registry, uri: &str) -> Result<Subscription, String> {
        if !uri.starts_with("fake://") {
            return Err("only fake:// queues in this test".to_owned());
        }
        let length = self.length(uri);
        let asked_rate = self.asked_rate(uri);
        let extras = self.extras(uri);
        let mut config = PollerConfig::new(Duration::from_millis(20), Duration::from_millis(20));
        config.min_poll_gap = Duration::from_millis(5);
        registry
            .subscribe(uri, config, None, || {
                Ok::<_, Never>(FakeSource(length, asked_rate, extras))
            })
            .map_err(|e| e.to_string())
    }
}

pub fn deployment(namespace: &str, name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": {}},
    })
}

pub fn wpa(namespace: &str, name: &str, target: &str, queue: &str) -> Value {
    json!({
        "apiVersion": "k8s.practo.dev/v1", "kind": "WorkerPodAutoScaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "minReplicas": 0, "maxReplicas": 10, "deploymentName": target,
            "queueURI": queue, "targetMessagesPerWorker": 2
        }
    })
}

pub struct Running {
    pub server: ApiServer,
    pub queues: Arc<FakeQueues>,
    pub metrics: Arc<Metrics>,
    pub stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<Result<(), wpa_controller::Error>>,
}

/// Every test but leader failover runs on paused tokio time with the
/// double's in-process client (no sockets): the controller's timers, its
/// pollers', its retries' and its clock (`Clock::tokio`) all follow tokio's
/// clock, so a 3 s delay or a 6 s backoff takes milliseconds and runs the
/// same on a loaded machine. (Over loopback sockets paused time is not
/// safe: tokio advances the clock whenever the runtime is idle, even while
/// a packet is still in the kernel.)
pub fn config() -> ControllerConfig {
    ControllerConfig {
        resync_period: Duration::from_secs(600),
        api_qps: 0.0,
        clock: Clock::tokio(),
        ..ControllerConfig::default()
    }
}

pub async fn start(
    config: ControllerConfig,
    setup: impl FnOnce(&ApiServer, &FakeQueues),
) -> Running {
    let server = ApiServer::start().await.unwrap();
    server.set_auto_ready(true);
    let queues = Arc::new(FakeQueues::default());
    setup(&server, &queues);
    let metrics = Arc::new(Metrics::default());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(wpa_controller::run(
        server.in_process_client(),
        config,
        Arc::clone(&queues) as Arc<dyn SourceFactory>,
        Arc::clone(&metrics),
        Arc::new(Health::default()),
        None,
        shutdown,
    ));
    Running {
        server,
        queues,
        metrics,
        stop,
        task,
    }
}

impl Running {
    pub async fn stop(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("stops on shutdown")
            .unwrap()
            .unwrap();
    }
}

pub fn replicas(server: &ApiServer, namespace: &str, name: &str) -> Option<i64> {
    server
        .get("apps/v1", "deployments", namespace, name)?
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
}

pub fn status(server: &ApiServer, namespace: &str, name: &str) -> Value {
    server
        .get("k8s.practo.dev/v1", "workerpodautoscalers", namespace, name)
        .map(|o| o["status"].clone())
        .unwrap_or(Value::Null)
}

pub async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn events(server: &ApiServer, namespace: &str) -> Vec<Value> {
    server.list("events.k8s.io/v1", "events", Some(namespace))
}

/// Every request the controller made is allowed by deploy/rbac.yaml.
pub fn assert_rbac_allows(requests: &[wpa_kube_testing::RecordedRequest]) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/rbac.yaml"
    ))
    .unwrap();
    let mut granted = std::collections::BTreeSet::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let doc = <Value as serde::Deserialize>::deserialize(doc).unwrap();
        if !matches!(doc["kind"].as_str(), Some("ClusterRole" | "Role")) {
            continue;
        }
        for rule in doc["rules"].as_array().unwrap() {
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    for verb in rule["verbs"].as_array().unwrap() {
                        granted.insert(format!(
                            "{} {} {}",
                            group.as_str().unwrap(),
                            resource.as_str().unwrap(),
                            verb.as_str().unwrap()
                        ));
                    }
                }
            }
        }
    }
    for request in requests {
        let parts: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let (group, rest) = match parts.as_slice() {
            ["api", _, rest @ ..] => ("", rest),
            ["apis", group, _, rest @ ..] => (*group, rest),
            _ => panic!("{request:?}"),
        };
        let (resource, name, sub) = match rest {
            ["namespaces", _, resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
            [resource] => (*resource, None, None),
            _ => panic!("{request:?}"),
        };
        let verb = match (request.method.as_str(), name) {
            ("GET", None) if request.is_watch() => "watch",
            ("GET", None) => "list",
            ("GET", Some(_)) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", _) => "delete",
            _ => panic!("{request:?}"),
        };
        let resource =
            sub.map_or_else(|| (*resource).to_owned(), |sub| format!("{resource}/{sub}"));
        let permission = format!("{group} {resource} {verb}");
        assert!(
            granted.contains(&permission),
            "deploy/rbac.yaml lacks {permission} ({request:?})"
        );
    }
}
