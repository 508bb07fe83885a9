//! The client against fake servers that misbehave: typed errors, no hang.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wpa_beanstalkd::{BeanstalkQueue, Client, ClientConfig, Error, QueueConfig};
use wpa_core::QueueMetrics;

/// Serves every connection: reads one command, writes `reply`, then either
/// closes or stays silent.
async fn fake(reply: Vec<u8>, close: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = [0_u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(&reply).await;
                if close {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    address
}

fn config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_millis(300),
        call_timeout: Duration::from_millis(300),
        reconnect_attempts: 1,
        reconnect_initial_backoff: Duration::from_millis(10),
        reconnect_max_backoff: Duration::from_millis(10),
    }
}

async fn snapshot_from(reply: &[u8], close: bool) -> Error {
    let address = fake(reply.to_vec(), close).await;
    let uri = format!("beanstalk://{address}/tube").parse().unwrap();
    let mut queue = BeanstalkQueue::with_config(
        uri,
        QueueConfig {
            client: config(),
            ..QueueConfig::default()
        },
    );
    let started = Instant::now();
    let error = queue.snapshot().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "hung: {error}");
    error
}

#[tokio::test]
async fn garbage_is_a_malformed_reply() {
    let error = snapshot_from(b"HTTP/1.1 400 Bad Request\r\n\r\n", false).await;
    assert!(matches!(error, Error::MalformedReply { .. }), "{error:?}");
    let error = snapshot_from(b"\x00\x01\x02garbage", false).await;
    assert!(matches!(error, Error::MalformedReply { .. }), "{error:?}");
}

#[tokio::test]
async fn closing_mid_reply_is_closed() {
    let error = snapshot_from(b"OK 100\r\ncurrent-jobs-ready: 1\n", true).await;
    assert!(
        matches!(error, Error::Closed { pending, .. } if pending > 0),
        "{error:?}"
    );
    let error = snapshot_from(b"", true).await;
    assert!(
        matches!(error, Error::Closed { pending: 0, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn silence_is_a_timeout() {
    let error = snapshot_from(b"", false).await;
    assert!(
        matches!(
            error,
            Error::Timeout {
                command: "stats-tube",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn server_errors_are_typed() {
    for (reply, keyword) in [
        (&b"OUT_OF_MEMORY\r\n"[..], "OUT_OF_MEMORY"),
        (b"INTERNAL_ERROR\r\n", "INTERNAL_ERROR"),
        (b"BAD_FORMAT\r\n", "BAD_FORMAT"),
        (b"UNKNOWN_COMMAND\r\n", "UNKNOWN_COMMAND"),
    ] {
        let error = snapshot_from(reply, false).await;
        assert!(
            matches!(error, Error::Server { reply, .. } if reply == keyword),
            "{error:?}"
        );
    }
    let error = snapshot_from(b"RELEASED\r\n", false).await;
    assert!(matches!(error, Error::UnexpectedReply { .. }), "{error:?}");
}

#[tokio::test]
async fn stats_that_do_not_fit_are_typed() {
    let stats = |ready: &str| {
        let body = format!(
            "---\ncurrent-jobs-ready: {ready}\ncurrent-jobs-reserved: 0\ncurrent-jobs-delayed: 0\ncurrent-jobs-buried: 0\ncurrent-waiting: 0\ncurrent-watching: 0\ntotal-jobs: 1\n"
        );
        format!("OK {}\r\n{body}\r\n", body.len()).into_bytes()
    };
    let error = snapshot_from(&stats("99999999999999999999999"), false).await;
    assert!(
        matches!(
            error,
            Error::InvalidStat {
                field: "current-jobs-ready",
                ..
            }
        ),
        "{error:?}"
    );
    let error = snapshot_from(&stats("4294967296"), false).await;
    assert!(matches!(error, Error::InvalidStat { .. }), "{error:?}");
    let error = snapshot_from(&stats("-1"), false).await;
    assert!(matches!(error, Error::InvalidStat { .. }), "{error:?}");

    let missing = b"---\ncurrent-jobs-ready: 1\n";
    let mut reply = format!("OK {}\r\n", missing.len()).into_bytes();
    reply.extend_from_slice(missing);
    reply.extend_from_slice(b"\r\n");
    let error = snapshot_from(&reply, false).await;
    assert!(matches!(error, Error::MissingStat { .. }), "{error:?}");
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut client = Client::new(format!("127.0.0.1:{port}"), config());
    let error = client.stats().await.unwrap_err();
    assert!(
        matches!(error, Error::Connect { attempts: 1, .. }),
        "{error:?}"
    );
}
