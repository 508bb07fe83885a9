//! Authentication and TLS against real `nats-server`s.
//!
//! - TLS required, the certificate signed by a throwaway CA (rcgen):
//!   trusted through `ClientConfig::tls_root_certificates`, refused by the
//!   system's store, a `nats://` URI upgraded because the server asks for
//!   TLS, and roots that are not PEM a typed error before any connection.
//! - NKey users (the server's `authorization` lists a public key): the seed
//!   file in `ClientConfig::nkey_seed_file` is accepted, no seed or another
//!   user's is refused by the server, and a file that holds no user seed is
//!   `Error::NkeySeed` before any connection, never showing the seed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use nkeys::KeyPair;
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

/// The adapter with one connection attempt and `client`'s security fields.
fn queue(uri: &str, client: ClientConfig) -> NatsQueue {
    NatsQueue::with_config(
        uri.parse().unwrap(),
        QueueConfig {
            client: ClientConfig {
                connect_timeout: Duration::from_secs(2),
                connect_attempts: 1,
                ..client
            },
            ..QueueConfig::default()
        },
    )
}

fn tls(roots: Option<Vec<u8>>) -> ClientConfig {
    ClientConfig {
        tls_root_certificates: roots,
        ..ClientConfig::default()
    }
}

fn nkey(seed_file: Option<PathBuf>) -> ClientConfig {
    ClientConfig {
        nkey_seed_file: seed_file,
        ..ClientConfig::default()
    }
}

/// Stream JOBS (`jobs.>`), its durable pull consumer `work` and `count`
/// messages, made by the independent side: async-nats' JetStream API on a
/// connection with `options`.
async fn jobs_with_messages(options: async_nats::ConnectOptions, url: &str, count: usize) {
    let js = jetstream::new(options.connect(url).await.unwrap());
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
    for i in 0..count {
        js.publish("jobs.new", format!("job {i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
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
        .require_tls(true);
    jobs_with_messages(producer, &format!("tls://127.0.0.1:{port}"), 3).await;

    // tls:// and nats:// (the server's INFO asks for TLS) both trust the CA.
    for scheme in ["tls", "nats"] {
        let uri = format!("{scheme}://127.0.0.1:{port}/JOBS/work");
        let mut trusted = queue(&uri, tls(Some(ca.clone())));
        let snapshot = trusted.poll(POLL).await.unwrap();
        assert_eq!(
            (snapshot.messages(), snapshot.in_flight()),
            (3, Some(0)),
            "{uri}"
        );
    }

    // The system's store does not know the throwaway CA.
    let mut untrusted = queue(&format!("tls://127.0.0.1:{port}/JOBS/work"), tls(None));
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
        let mut bad = queue(&format!("tls://127.0.0.1:{port}/JOBS/work"), tls(Some(pem)));
        let error = bad.poll(POLL).await.unwrap_err();
        assert!(matches!(error, Error::TlsRoots { .. }), "{error:?}");
        assert!(error.to_string().contains(reason), "{error}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_user_nkey_seed_file_authenticates_and_a_bad_one_is_named() {
    let dir = std::env::temp_dir().join(format!("wpa-nats-nkey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let user = KeyPair::new_user();
    let server = NatsServer::start_with_config(&format!(
        "authorization {{\n  users = [ {{ nkey: {} }} ]\n}}\n",
        user.public_key()
    ))
    .expect("nats-server must be installed (Debian: apt-get install -y nats-server)");
    let port = server.port();
    let seed = user.seed().unwrap();

    let producer = async_nats::ConnectOptions::new().nkey(seed.clone());
    jobs_with_messages(producer, &server.url(), 2).await;
    let uri = server.uri("JOBS", "work");

    // The seed as a Secret mounts it: one line, a trailing newline.
    let seed_file = write(&dir, "user.nk", &format!("{seed}\n"));
    let snapshot = queue(&uri, nkey(Some(seed_file))).poll(POLL).await.unwrap();
    assert_eq!((snapshot.messages(), snapshot.in_flight()), (2, Some(0)));

    // No seed, or another user's: the server refuses the connection.
    let stranger = write(&dir, "stranger.nk", &KeyPair::new_user().seed().unwrap());
    for seed_file in [None, Some(stranger)] {
        let error = queue(&uri, nkey(seed_file.clone()))
            .poll(POLL)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Connect { .. }), "{error:?}");
        assert!(
            error.to_string().to_lowercase().contains("authorization"),
            "{seed_file:?}: {error}"
        );
    }

    // Files that hold no user seed: named, before any connection, the
    // seed never shown.
    let account_seed = KeyPair::new_account().seed().unwrap();
    for (file, reason) in [
        (write(&dir, "account.nk", &account_seed), "Account seed"),
        (
            write(&dir, "public.nk", &user.public_key()),
            "not an NKey seed",
        ),
        (write(&dir, "empty.nk", ""), "not an NKey seed"),
        (dir.join("missing.nk"), "No such file"),
    ] {
        let error = queue(
            &format!("nats://127.0.0.1:{port}/JOBS/work"),
            nkey(Some(file.clone())),
        )
        .poll(POLL)
        .await
        .unwrap_err();
        assert!(matches!(error, Error::NkeySeed { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(reason), "{message}");
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(!message.contains(&account_seed), "{message}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
