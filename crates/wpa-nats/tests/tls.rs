//! `tls://` against a real `nats-server` that requires TLS, its certificate
//! signed by a throwaway CA (rcgen): trusted through
//! `ClientConfig::tls_root_certificates`, refused by the system's store,
//! a `nats://` URI upgraded because the server asks for TLS, and roots
//! that are not PEM a typed error before any connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use wpa_nats::testing::NatsServer;
use wpa_nats::{ClientConfig, Error, NatsQueue, QueueConfig};
use wpa_poller::testing::TestCertificates;
use wpa_poller::{PollRequest, QueueSource};

const POLL: PollRequest = PollRequest {
    wake_up: false,
    long_poll: Duration::from_secs(1),
    short_poll: Duration::from_secs(1),
    arrival_rate: false,
    oldest_age: false,
};

fn queue(uri: &str, roots: Option<Vec<u8>>) -> NatsQueue {
    NatsQueue::with_config(
        uri.parse().unwrap(),
        QueueConfig {
            client: ClientConfig {
                connect_timeout: Duration::from_secs(2),
                connect_attempts: 1,
                tls_root_certificates: roots,
                ..ClientConfig::default()
            },
            ..QueueConfig::default()
        },
    )
}

#[tokio::test]
async fn tls_with_the_servers_ca_and_not_without() {
    let dir = std::env::temp_dir().join(format!("wpa-nats-tls-{}", std::process::id()));
    let made = TestCertificates::write(&dir, "wpa-nats").unwrap();
    let ca = made.ca_pem.clone();
    let server = NatsServer::start_tls(&made.certificate, &made.key)
        .expect("nats-server must be installed (Debian: apt-get install -y nats-server)");
    let port = server.port();

    // The independent side, over TLS with the same CA.
    let producer = async_nats::ConnectOptions::new()
        .add_root_certificates(made.ca.clone())
        .require_tls(true)
        .connect(format!("tls://127.0.0.1:{port}"))
        .await
        .unwrap();
    let js = jetstream::new(producer);
    let jobs = js
        .create_stream(stream::Config {
            name: "JOBS".to_owned(),
            subjects: vec!["jobs.>".to_owned()],
            ..stream::Config::default()
        })
        .await
        .unwrap();
    jobs.create_consumer(consumer::pull::Config {
        durable_name: Some("work".to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ..consumer::pull::Config::default()
    })
    .await
    .unwrap();
    for i in 0..3 {
        js.publish("jobs.new", format!("job {i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    // tls:// and nats:// (the server's INFO asks for TLS) both trust the CA.
    for scheme in ["tls", "nats"] {
        let uri = format!("{scheme}://127.0.0.1:{port}/JOBS/work");
        let mut trusted = queue(&uri, Some(ca.clone()));
        let snapshot = trusted.poll(POLL).await.unwrap();
        assert_eq!(
            (snapshot.messages(), snapshot.in_flight()),
            (3, Some(0)),
            "{uri}"
        );
    }

    // The system's store does not know the throwaway CA.
    let mut untrusted = queue(&format!("tls://127.0.0.1:{port}/JOBS/work"), None);
    let error = untrusted.poll(POLL).await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("invalid peer certificate"), "{message}");

    // Roots that hold no certificate: refused as such, not as a connection
    // failure.
    for (pem, reason) in [
        (b"not a certificate".to_vec(), "no CERTIFICATE block"),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
            "cannot read",
        ),
    ] {
        let mut bad = queue(&format!("tls://127.0.0.1:{port}/JOBS/work"), Some(pem));
        let error = bad.poll(POLL).await.unwrap_err();
        assert!(matches!(error, Error::TlsRoots { .. }), "{error:?}");
        assert!(error.to_string().contains(reason), "{error}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
