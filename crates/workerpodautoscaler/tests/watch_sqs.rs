//! `workerpodautoscaler watch`, the built binary, against a real
//! SQS-protocol server (`moto_server`, started here on a free loopback
//! port), with messages put by the official SDK.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BIN, Watch};
use wpa_sqs::testing::{MotoServer, test_clients};

const REGION: &str = "us-east-1";
const PROXY_VARIABLES: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The producer: the SDK's SQS client on the emulator (with the adapter's
/// HTTP client and test credentials).
async fn producer(moto: &MotoServer) -> aws_sdk_sqs::Client {
    let clients = test_clients(wpa_sqs::SqsOptions {
        endpoint: Some(moto.endpoint()),
        regions: vec![REGION.to_owned()],
        ..wpa_sqs::SqsOptions::default()
    })
    .await;
    clients.sqs_client(REGION)
}

/// `watch` on an SQS queue of `moto`, with test credentials, 1 s short
/// polls and `proxy` as its only proxy setting (none by default, whatever
/// the environment of the tests).
fn start_watch(moto: &MotoServer, queue_url: &str, proxy: Option<&str>) -> Watch {
    let endpoint = moto.endpoint();
    let extra = [
        "--sqs-endpoint",
        &endpoint,
        "--aws-regions",
        REGION,
        "--sqs-short-poll-interval",
        "1",
        "--sqs-long-poll-interval",
        "5",
    ];
    Watch::start(queue_url, &extra, |command| {
        for name in PROXY_VARIABLES {
            command.env_remove(name);
        }
        if let Some(proxy) = proxy {
            command.env("HTTP_PROXY", proxy);
        }
        command
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE");
    })
}

#[test]
fn scales_up_from_zero_on_sqs_and_leaves_the_messages_for_workers() {
    let moto = MotoServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sqs = runtime.block_on(producer(&moto));
    let queue_url = runtime.block_on(async {
        sqs.create_queue()
            .queue_name("jobs")
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned()
    });

    let watch = start_watch(&moto, &queue_url, None);
    let empty = watch.until(Duration::from_secs(30), |_| true);
    assert_eq!(empty["queueMessages"], 0);
    assert_eq!(empty["desiredReplicas"], 0);

    let sent_at = Instant::now();
    runtime.block_on(async {
        for body in ["a", "b", "c", "d", "e"] {
            sqs.send_message()
                .queue_url(&queue_url)
                .message_body(body)
                .send()
                .await
                .unwrap();
        }
    });
    let up = watch.until(Duration::from_secs(30), |line| {
        line["scaleOperation"] == "scale-up"
    });
    // The wake-up probe sees the first message at once; a short poll the rest.
    assert!(sent_at.elapsed() < Duration::from_secs(10), "slow wake-up");
    assert!(up["desiredReplicas"].as_u64().unwrap() >= 1);
    assert_eq!(up["currentReplicas"], 0);
    let sized = watch.until(Duration::from_secs(30), |line| line["queueMessages"] == 5);
    assert_eq!(sized["desiredReplicas"], 3, "ceil(5 / 2)");

    // Every message is still there for real workers: none received or hidden.
    let visible = runtime.block_on(async {
        sqs.get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap()
            .attributes()
            .and_then(|attributes| {
                attributes
                    .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                    .cloned()
            })
    });
    assert_eq!(visible.as_deref(), Some("5"));
}

#[test]
fn a_queue_that_does_not_exist_is_reported_not_fatal() {
    let moto = MotoServer::start();
    let url = format!("{}/123456789012/missing", moto.endpoint());
    let mut watch = start_watch(&moto, &url, None);
    // No decision can be taken, but the process stays up and keeps retrying.
    assert!(
        watch.lines.recv_timeout(Duration::from_secs(4)).is_err(),
        "no decision without a snapshot"
    );
    assert!(watch.child.try_wait().unwrap().is_none(), "watch exited");
}

#[test]
fn a_malformed_sqs_url_is_a_one_line_error_and_status_2() {
    let output = Command::new(BIN)
        .args([
            "watch",
            "--queue-uri",
            "https://sqs.ap-south-1.amazonaws.com/",
        ])
        .args(["--min-replicas", "0", "--max-replicas", "1"])
        .args(["--target-messages-per-worker", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A plain HTTP forward proxy on 127.0.0.1 that records each request line
/// (`POST http://127.0.0.1:<moto>/ HTTP/1.1`) and relays it, one request
/// per connection (`Connection: close` upstream).
fn forward_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let _ = relay(client, &log);
            });
        }
    });
    (url, seen)
}

fn relay(mut client: TcpStream, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    log.lock().unwrap().push(request_line.trim_end().to_owned());
    let bad = || std::io::Error::other(format!("not a proxy request: {request_line:?}"));
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (authority, path) = target
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(bad)?;
    let mut upstream = TcpStream::connect(authority)?;
    write!(upstream, "{method} /{path} {version}\r\n")?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        let name = header.to_ascii_lowercase();
        if !name.starts_with("connection:") && !name.starts_with("proxy-connection:") {
            upstream.write_all(header.as_bytes())?;
        }
    }
    upstream.write_all(b"Connection: close\r\n\r\n")?;
    let mut to_upstream = upstream.try_clone()?;
    std::thread::spawn(move || std::io::copy(&mut reader, &mut to_upstream));
    std::io::copy(&mut upstream, &mut client)?;
    client.shutdown(Shutdown::Both)
}

#[test]
fn sqs_calls_go_through_the_proxy_of_the_environment() {
    let moto = MotoServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sqs = runtime.block_on(producer(&moto));
    let queue_url = runtime.block_on(async {
        let url = sqs
            .create_queue()
            .queue_name("behind-a-proxy")
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        sqs.send_message()
            .queue_url(&url)
            .message_body("x")
            .send()
            .await
            .unwrap();
        url
    });
    let (proxy, seen) = forward_proxy();
    let watch = start_watch(&moto, &queue_url, Some(&proxy));
    let decided = watch.until(Duration::from_secs(30), |_| true);
    assert_eq!(decided["queueMessages"], 1);
    let expected = format!("POST {}/ HTTP/1.1", moto.endpoint());
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(|line| *line == expected),
        "every SQS call through the proxy, as {expected:?}: {seen:?}"
    );
}
