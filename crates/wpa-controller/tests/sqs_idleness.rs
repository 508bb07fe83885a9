#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The controller on a real SQS-protocol server (moto) with CloudWatch
//! answered by `aws-smithy-mocks` (moto does not serve the Rust SDK's RPC v2
//! CBOR): "empty queue and every worker idle" reaches each WPA's decision
//! as data, resolved against its own target's replicas.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::Client as CloudWatch;
use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDataResult;
use axum::http::Method;
use serde_json::{Value, json};
use tokio::sync::watch;
use wpa_controller::{ControllerConfig, Health, Metrics, SourceFactory};
use wpa_kube_testing::ApiServer;
use wpa_poller::{PollerConfig, Registry, Subscription};
use wpa_sqs::testing::{MotoServer, test_clients};
use wpa_sqs::{QueueUrl, SqsClients, SqsOptions, SqsQueue};

const REGION: &str = "us-east-1";

/// SQS queues on moto; CloudWatch says nothing was received lately.
struct MotoQueues {
    clients: SqsClients,
    cloudwatch: CloudWatch,
}

impl SourceFactory for MotoQueues {
    fn subscribe(&self, registry: &Registry, uri: &str) -> Result<Subscription, String> {
        let mut config = PollerConfig::new(Duration::from_millis(200), Duration::from_millis(200));
        config.min_poll_gap = Duration::from_millis(10);
        registry
            .subscribe(uri, config, None, || {
                let url = QueueUrl::parse(uri, true)?;
                Ok::<_, wpa_sqs::Error>(SqsQueue::from_parts(
                    url,
                    REGION.to_owned(),
                    self.clients.sqs_client(REGION),
                    self.cloudwatch.clone(),
                    self.clients.options(),
                ))
            })
            .map_err(|e| e.to_string())
    }
}

/// CloudWatch answering every GetMetricData with one datapoint of 0.
fn quiet_cloudwatch() -> (CloudWatch, aws_smithy_mocks::Rule) {
    let rule = aws_smithy_mocks::mock!(CloudWatch::get_metric_data).then_output(|| {
        GetMetricDataOutput::builder()
            .metric_data_results(MetricDataResult::builder().id("m1").values(0.0).build())
            .build()
    });
    let client = aws_smithy_mocks::mock_client!(
        aws_sdk_cloudwatch,
        aws_smithy_mocks::RuleMode::MatchAny,
        [&rule]
    );
    (client, rule)
}

fn deployment(name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "jobs"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": {}},
    })
}

/// A WPA that scaled just now: its scale down waits the delay, so the
/// test can read the decisions made on 10 and 4 replicas before it lands.
fn wpa(name: &str, target: &str, queue: &str) -> Value {
    json!({
        "apiVersion": "k8s.practo.dev/v1", "kind": "WorkerPodAutoScaler",
        "metadata": {"name": name, "namespace": "jobs"},
        "spec": {
            "minReplicas": 0, "maxReplicas": 20, "deploymentName": target,
            "queueURI": queue, "targetMessagesPerWorker": 2, "maxDisruption": "10%"
        },
        "status": {"LastScaleTime": jiff::Timestamp::now().to_string()}
    })
}

fn replicas(server: &ApiServer, name: &str) -> Option<i64> {
    server
        .get("apps/v1", "deployments", "jobs", name)?
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
}

/// The replica counts written through `/scale` to `name`, in order.
fn scale_writes(server: &ApiServer, name: &str) -> Vec<i64> {
    let suffix = format!("/deployments/{name}/scale");
    server
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT && r.path.ends_with(&suffix) && r.status == 200)
        .filter_map(|r| r.body.pointer("/spec/replicas").and_then(Value::as_i64))
        .collect()
}

fn gauge(metrics: &Metrics, name: &str, wpa: &str) -> Option<f64> {
    let needle = format!("workerpodautoscaler=\"{wpa}\"");
    metrics
        .render()
        .lines()
        .find(|line| line.starts_with(&format!("{name}{{")) && line.contains(&needle))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_idle_scales_each_target_to_its_floor_in_one_step() {
    let moto = MotoServer::start();
    let clients = test_clients(SqsOptions {
        endpoint: Some(moto.endpoint()),
        regions: vec![REGION.into()],
        max_attempts: 1,
        request_timeout: Duration::from_secs(5),
        ..SqsOptions::default()
    })
    .await;
    let url = clients
        .sqs_client(REGION)
        .create_queue()
        .queue_name("idle-jobs")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let (cloudwatch, rule) = quiet_cloudwatch();
    let factory = Arc::new(MotoQueues {
        clients,
        cloudwatch,
    });

    let server = ApiServer::start().await.unwrap();
    server.set_auto_ready(true);
    // Two WPAs on one queue, scaling Deployments of different sizes.
    server.insert(deployment("big", 10)).unwrap();
    server.insert(deployment("small", 4)).unwrap();
    server.insert(wpa("big", "big", &url)).unwrap();
    server.insert(wpa("small", "small", &url)).unwrap();

    let metrics = Arc::new(Metrics::default());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(wpa_controller::run(
        server.client().unwrap(),
        ControllerConfig {
            resync_period: Duration::from_millis(300),
            scale_down_delay: Duration::from_secs(3),
            api_qps: 0.0,
            ..ControllerConfig::default()
        },
        factory as Arc<dyn SourceFactory>,
        Arc::clone(&metrics),
        Arc::new(Health::default()),
        None,
        shutdown,
    ));

    // While the scale down waits the delay: each WPA decided 0 on its
    // own replicas, with every one of them counted idle.
    eventually("decisions on 10 and 4 idle workers", || {
        gauge(&metrics, "wpa_worker_idle", "big") == Some(10.0)
            && gauge(&metrics, "wpa_worker_idle", "small") == Some(4.0)
    })
    .await;
    assert_eq!(gauge(&metrics, "wpa_worker_desired", "big"), Some(0.0));
    assert_eq!(gauge(&metrics, "wpa_worker_desired", "small"), Some(0.0));
    assert_eq!(replicas(&server, "big"), Some(10), "held by the delay");
    assert!(rule.num_calls() >= 1, "CloudWatch was asked about idleness");

    eventually("both targets at 0", || {
        replicas(&server, "big") == Some(0) && replicas(&server, "small") == Some(0)
    })
    .await;
    // One step each, straight to minReplicas: maxDisruption "10%" would
    // have allowed one pod per scale down (10 -> 9 -> 8 ...).
    assert_eq!(scale_writes(&server, "big"), [0]);
    assert_eq!(scale_writes(&server, "small"), [0]);

    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("stops on shutdown")
        .unwrap()
        .unwrap();
}
