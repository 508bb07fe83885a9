#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `workerpodautoscaler run` as a process, against the in-process API
//! double: kubeconfig, flags, the metrics port, a bad object reported (not
//! fatal), clean exit on SIGTERM.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    let kubeconfig = write_kubeconfig(&server, "objects");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_workerpodautoscaler"))
        .args([
            "run",
            "--leader-elect=false",
            "--queue-services=beanstalkd",
            "--resync-period=1",
        ])
        .arg(format!("--metrics-port=127.0.0.1:{port}"))
        .env("WORKERPODAUTOSCALER_KUBE_CONFIG", &kubeconfig)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let condition = |name: &str| -> Value {
        server
            .get("k8s.practo.dev/v1", "workerpodautoscalers", "jobs", name)
            .and_then(|o| o.pointer("/status/Conditions/0").cloned())
            .unwrap_or(Value::Null)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while condition("bad")["status"] != "False" || condition("nowhere")["status"] != "False" {
        assert!(Instant::now() < deadline, "no conditions written");
        assert!(child.try_wait().unwrap().is_none(), "run exited early");
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

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "run did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = std::fs::remove_file(&kubeconfig);
    assert!(exit.success(), "{exit:?}\n{stderr}");
}

fn write_kubeconfig(server: &ApiServer, tag: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("wpa-run-cli-{tag}-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {}\n\
             users:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: double\n    user: u\n\
             current-context: c\n",
            server.url()
        ),
    )
    .unwrap();
    path
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
    let kubeconfig = write_kubeconfig(&server, "beanstalkd");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_workerpodautoscaler"))
        .args(["run", "--leader-elect=false", "--queue-services=beanstalkd"])
        .args([
            "--beanstalk-short-poll-interval=1",
            "--beanstalk-long-poll-interval=1",
        ])
        .arg(format!("--metrics-port=127.0.0.1:{port}"))
        .arg(format!("--kube-config={}", kubeconfig.display()))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
        assert!(child.try_wait().unwrap().is_none(), "run exited early");
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
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("wpa_queue_messages{namespace=\"jobs\",workerpodautoscaler=\"w\",queueName=\"emails\"} 5"),
        "{metrics}"
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "run did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = std::fs::remove_file(&kubeconfig);
    assert!(exit.success(), "{exit:?}");
}
