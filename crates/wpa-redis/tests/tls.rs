//! `rediss://` against a real `redis-server` that speaks only TLS, its
//! certificate signed by a throwaway CA (rcgen): trusted through
//! `ClientConfig::tls_root_certificates`, refused without it, and a plain
//! `redis://` to the TLS port fails with a typed error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use wpa_core::QueueMetrics;
use wpa_poller::testing::TestCertificates;
use wpa_redis::testing::{RedisServer, TlsFiles};
use wpa_redis::{ClientConfig, QueueConfig, RedisQueue, RedisUri};

fn queue(uri: &str, roots: Option<Vec<u8>>) -> RedisQueue {
    let uri: RedisUri = uri.parse().unwrap();
    RedisQueue::with_config(
        uri,
        QueueConfig {
            client: ClientConfig {
                connect_timeout: Duration::from_secs(2),
                reconnect_attempts: 1,
                tls_root_certificates: roots,
                ..ClientConfig::default()
            },
            ..QueueConfig::default()
        },
    )
}

#[tokio::test]
async fn rediss_with_the_servers_ca_and_not_without() {
    let dir = std::env::temp_dir().join(format!("wpa-redis-tls-{}", std::process::id()));
    let made = TestCertificates::write(&dir, "wpa-redis").unwrap();
    let ca = made.ca_pem.clone();
    let files = TlsFiles {
        certificate: made.certificate,
        key: made.key,
        ca: made.ca,
    };
    let server = RedisServer::start_tls(files).expect(
        "redis-server (built with TLS, as Debian's is) must be installed for this test (Debian: apt-get install -y redis-server)",
    );
    let uri = server.uri("list/jobs");
    assert!(uri.starts_with("rediss://127.0.0.1:"), "{uri}");

    // A producer over TLS, trusting the same CA.
    let producer = redis::Client::build_with_tls(
        server.url(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca.clone()),
        },
    )
    .unwrap();
    let mut conn = producer.get_multiplexed_async_connection().await.unwrap();
    let pushed: i64 = redis::cmd("RPUSH")
        .arg("jobs")
        .arg("a")
        .arg("b")
        .arg("c")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pushed, 3);

    let snapshot = queue(&uri, Some(ca)).snapshot().await.unwrap();
    assert_eq!(snapshot.messages(), 3);

    // The system's store does not know the throwaway CA.
    let error = queue(&uri, None).snapshot().await.unwrap_err().to_string();
    assert!(
        error.to_lowercase().contains("certificate"),
        "an untrusted certificate is refused, and says so: {error}"
    );

    // Plain text to a TLS-only port is not mistaken for an empty queue.
    let plain = uri.replacen("rediss://", "redis://", 1);
    let error = queue(&plain, None).snapshot().await;
    assert!(error.is_err(), "{error:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
