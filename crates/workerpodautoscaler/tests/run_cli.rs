#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `workerpodautoscaler run` as a process, against the in-process API
//! double: kubeconfig, flags, the metrics port, a bad object reported (not
//! fatal), clean exit on SIGTERM.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Logged, write_kubeconfig};
use serde_json::{Value, json};
use wpa_kube_testing::ApiServer;

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_bad_objects_serves_metrics_and_stops_on_sigterm() {
    let server = ApiServer::start().await.unwrap();
    server
        .insert(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "worker", "namespace": "jobs"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}, "template": {}}
        }))
        .unwrap();
    for (name, disruption, uri) in [
        ("bad", "abc", "beanstalk://127.0.0.1:1/jobs"),
        ("nowhere", "100%", "ftp://example/queue"),
    ] {
        server
            .insert(json!({
                "apiVersion": "k8s.practo.dev/v1", "kind": "WorkerPodAutoScaler",
                "metadata": {"name": name, "namespace": "jobs"},
                "spec": {"minReplicas": 0, "maxReplicas": 10, "deploymentName": "worker",
                         "queueURI": uri, "targetMessagesPerWorker": 2, "maxDisruption": disruption}
            }))
            .unwrap();
    }
    let kubeconfig = write_kubeconfig(&server.url(), "objects");
    let mut child = Logged::spawn(
        Command::new(BIN)
            .args([
                "run",
                "--leader-elect=false",
                "--queue-services=beanstalkd",
                "--resync-period=1",
                "--metrics-port=127.0.0.1:0",
            ])
            .env("WORKERPODAUTOSCALER_KUBE_CONFIG", &kubeconfig)
            .env_remove("RUST_LOG"),
    );
    let port = child.metrics_port(Duration::from_secs(20));

    let condition = |name: &str| -> Value {
        server
            .get("k8s.practo.dev/v1", "workerpodautoscalers", "jobs", name)
            .and_then(|o| o.pointer("/status/Conditions/0").cloned())
            .unwrap_or(Value::Null)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while condition("bad")["status"] != "False" || condition("nowhere")["status"] != "False" {
        assert!(Instant::now() < deadline, "no conditions written");
        assert!(
            child.child.try_wait().unwrap().is_none(),
            "run exited early"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        condition("bad")["message"]
            .as_str()
            .unwrap()
            .contains("maxDisruption \"abc\"")
    );
    assert_eq!(condition("nowhere")["reason"], "UnsupportedQueueURI");

    let status = http_get(port, "/status").unwrap();
    assert!(
        status.starts_with("HTTP/1.0 200") || status.starts_with("HTTP/1.1 200"),
        "{status}"
    );
    assert!(status.ends_with("OK"), "{status}");
    assert!(http_get(port, "/healthz").unwrap().contains(" 200 "));
    assert!(http_get(port, "/readyz").unwrap().contains(" 200 "));
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("wpa_log_messages_total{severity=\"warning\"}"),
        "{metrics}"
    );
    assert_eq!(
        server
            .get("apps/v1", "deployments", "jobs", "worker")
            .unwrap()["spec"]["replicas"],
        1
    );

    let pid = child.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let code = child.exit_code(Duration::from_secs(15));
    let stderr = child.seen.join("\n");
    let _ = std::fs::remove_file(&kubeconfig);
    assert_eq!(code, 0, "{stderr}");
}

/// Puts `count` jobs into `tube` with a plain TCP client.
fn put_jobs(address: &str, tube: &str, count: usize) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    write!(stream, "use {tube}\r\n").unwrap();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert!(line.starts_with("USING"), "{line}");
    for _ in 0..count {
        write!(stream, "put 0 0 60 3\r\njob\r\n").unwrap();
        line.clear();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert!(line.starts_with("INSERTED"), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_scales_a_deployment_from_zero_on_a_real_beanstalkd() {
    let beanstalkd = wpa_beanstalkd::testing::BeanstalkdServer::start().unwrap();
    let server = ApiServer::start().await.unwrap();
    server.set_auto_ready(true);
    server
        .insert(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "worker", "namespace": "jobs"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}}, "template": {}}
        }))
        .unwrap();
    server
        .insert(json!({
            "apiVersion": "k8s.practo.dev/v1", "kind": "WorkerPodAutoScaler",
            "metadata": {"name": "w", "namespace": "jobs"},
            "spec": {"minReplicas": 0, "maxReplicas": 10, "deploymentName": "worker",
                     "queueURI": beanstalkd.uri("emails"), "targetMessagesPerWorker": 2}
        }))
        .unwrap();
    let kubeconfig = write_kubeconfig(&server.url(), "beanstalkd");
    let mut child = Logged::spawn(
        Command::new(BIN)
            .args(["run", "--leader-elect=false", "--queue-services=beanstalkd"])
            .args([
                "--beanstalk-short-poll-interval=1",
                "--beanstalk-long-poll-interval=1",
                "--metrics-port=127.0.0.1:0",
            ])
            .arg(format!("--kube-config={}", kubeconfig.display()))
            .env_remove("RUST_LOG"),
    );
    let port = child.metrics_port(Duration::from_secs(20));
    let replicas = || {
        server
            .get("apps/v1", "deployments", "jobs", "worker")
            .unwrap()["spec"]["replicas"]
            .as_i64()
            .unwrap()
    };
    // Nothing queued: stays at zero, status written.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .get("k8s.practo.dev/v1", "workerpodautoscalers", "jobs", "w")
        .unwrap()
        .pointer("/status/DesiredReplicas")
        .is_none()
    {
        assert!(Instant::now() < deadline, "no status written");
        assert!(
            child.child.try_wait().unwrap().is_none(),
            "run exited early"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(replicas(), 0);

    // Five jobs at two per worker: three workers.
    put_jobs(&beanstalkd.address(), "emails", 5);
    let deadline = Instant::now() + Duration::from_secs(20);
    while replicas() != 3 {
        assert!(Instant::now() < deadline, "not scaled to 3: {}", replicas());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The reconcile updates the metrics after the scale, its Event and
    // the status: wait for them too.
    let expected =
        "wpa_queue_messages{namespace=\"jobs\",workerpodautoscaler=\"w\",queueName=\"emails\"} 5";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http_get(port, "/metrics").unwrap();
        if metrics.contains(expected) {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pid = child.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let code = child.exit_code(Duration::from_secs(15));
    let _ = std::fs::remove_file(&kubeconfig);
    assert_eq!(code, 0, "{}", child.seen.join("\n"));
}

/// `run --sqs-endpoint`, as `watch` takes it: a queue URL on an emulator
/// (not an AWS host) is polled through the endpoint and its Deployment
/// scaled; without the flag the same URL is refused on that WPA alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_polls_sqs_through_the_sqs_endpoint() {
    const REGION: &str = "us-east-1";
    let moto = wpa_sqs::testing::MotoServer::start();
    let sqs = wpa_sqs::testing::test_clients(wpa_sqs::SqsOptions {
        endpoint: Some(moto.endpoint()),
        regions: vec![REGION.to_owned()],
        ..wpa_sqs::SqsOptions::default()
    })
    .await
    .sqs_client(REGION);
    let queue_url = sqs
        .create_queue()
        .queue_name("emails")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    assert!(queue_url.starts_with("http://127.0.0.1:"), "{queue_url}");
    for body in ["a", "b", "c", "d", "e"] {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let server = ApiServer::start().await.unwrap();
    server.set_auto_ready(true);
    server
        .insert(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "worker", "namespace": "jobs"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}}, "template": {}}
        }))
        .unwrap();
    server
        .insert(json!({
            "apiVersion": "k8s.practo.dev/v1", "kind": "WorkerPodAutoScaler",
            "metadata": {"name": "w", "namespace": "jobs"},
            "spec": {"minReplicas": 0, "maxReplicas": 10, "deploymentName": "worker",
                     "queueURI": queue_url, "targetMessagesPerWorker": 2}
        }))
        .unwrap();
    let kubeconfig = write_kubeconfig(&server.url(), "sqs");
    let start = |endpoint: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_workerpodautoscaler"));
        command
            .args(["run", "--leader-elect=false", "--queue-services=sqs"])
            .args(["--aws-regions", REGION, "--resync-period=1"])
            .args(["--sqs-short-poll-interval=1", "--sqs-long-poll-interval=1"])
            .arg("--metrics-port=127.0.0.1:0")
            .arg(format!("--kube-config={}", kubeconfig.display()))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_SQS")
            .env_remove("WORKERPODAUTOSCALER_SQS_ENDPOINT")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for name in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            command.env_remove(name);
        }
        if let Some(endpoint) = endpoint {
            command.args(["--sqs-endpoint", endpoint]);
        }
        command.spawn().unwrap()
    };
    let condition = || -> Value {
        server
            .get("k8s.practo.dev/v1", "workerpodautoscalers", "jobs", "w")
            .and_then(|o| o.pointer("/status/Conditions/0").cloned())
            .unwrap_or(Value::Null)
    };
    let replicas = || {
        server
            .get("apps/v1", "deployments", "jobs", "worker")
            .unwrap()["spec"]["replicas"]
            .as_i64()
            .unwrap()
    };

    // Without --sqs-endpoint: not an AWS queue URL, refused on the WPA.
    let mut child = start(None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while condition()["status"] != "False" {
        assert!(Instant::now() < deadline, "no condition: {}", condition());
        assert!(child.try_wait().unwrap().is_none(), "run exited early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        condition()["reason"],
        "UnsupportedQueueURI",
        "{}",
        condition()
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(replicas(), 0);

    // With it: five messages at two per worker, three workers.
    let mut child = start(Some(&moto.endpoint()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while replicas() != 3 {
        assert!(Instant::now() < deadline, "not scaled to 3: {}", replicas());
        assert!(child.try_wait().unwrap().is_none(), "run exited early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&kubeconfig);
}
