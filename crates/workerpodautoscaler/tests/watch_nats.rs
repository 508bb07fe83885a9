//! `workerpodautoscaler watch`, the built binary, on a `tls://` JetStream
//! consumer whose server certificate a private CA signed: the CA is trusted
//! the way an operator trusts it, through `SSL_CERT_FILE` (the system
//! store), and a store without it is refused with the certificate named;
//! an NKey server admits `--nats-nkey-seed-file`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use wpa_nats::testing::NatsServer;
use wpa_poller::testing::TestCertificates;

mod common;

use common::{BIN, Logged, Watch};

/// Stream JOBS (subjects `jobs.>`) with the durable pull consumer `work`
/// and three messages, made through a connection with `options`.
async fn three_jobs(options: async_nats::ConnectOptions, url: &str) {
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
    for i in 0..3 {
        js.publish("jobs.new", format!("job {i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_trusts_a_private_ca_through_ssl_cert_file() {
    let dir = std::env::temp_dir().join(format!("wpa-watch-nats-{}", std::process::id()));
    let made = TestCertificates::write(&dir.join("server"), "watch-nats").unwrap();
    let other = TestCertificates::write(&dir.join("other"), "another").unwrap();
    let server = NatsServer::start_tls(&made.certificate, &made.key)
        .expect("nats-server must be installed (Debian: apt-get install -y nats-server)");
    let port = server.port();

    let producer = async_nats::ConnectOptions::new()
        .add_root_certificates(made.ca.clone())
        .require_tls(true);
    three_jobs(producer, &format!("tls://127.0.0.1:{port}")).await;
    let uri = format!("tls://127.0.0.1:{port}/JOBS/work");

    // The CA in SSL_CERT_FILE: three messages at two per worker, two.
    let watch = Watch::start(&uri, &[], |command| {
        command
            .env("SSL_CERT_FILE", &made.ca)
            .env_remove("SSL_CERT_DIR");
    });
    let first = watch.next(Duration::from_secs(10));
    assert_eq!(first["queueMessages"], 3, "{first}");
    assert_eq!(first["desiredReplicas"], 2, "{first}");
    assert_eq!(watch.terminate(), 0);

    // Another CA in SSL_CERT_FILE: the poll fails, saying why.
    let mut refused = Logged::spawn(
        Command::new(BIN)
            .args(["watch", "--queue-uri", &uri, "--min-replicas", "0"])
            .args(["--max-replicas", "10", "--target-messages-per-worker", "2"])
            .env("SSL_CERT_FILE", &other.ca)
            .env_remove("SSL_CERT_DIR")
            .env_remove("RUST_LOG"),
    );
    assert!(
        refused.until(Duration::from_secs(20), |line| {
            line.contains("invalid peer certificate") && line.contains(&format!("127.0.0.1:{port}"))
        }),
        "{:#?}",
        refused.seen
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_authenticates_with_the_nkey_seed_file_flag() {
    let dir = std::env::temp_dir().join(format!("wpa-watch-nkey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let seed_file = dir.join("user.nk");
    std::fs::write(&seed_file, format!("{seed}\n")).unwrap();
    let server = NatsServer::start_with_config(&format!(
        "authorization {{\n  users = [ {{ nkey: {} }} ]\n}}\n",
        user.public_key()
    ))
    .expect("nats-server must be installed (Debian: apt-get install -y nats-server)");
    three_jobs(async_nats::ConnectOptions::new().nkey(seed), &server.url()).await;

    let flag = format!("--nats-nkey-seed-file={}", seed_file.display());
    let watch = Watch::start(&server.uri("JOBS", "work"), &[&flag], |command| {
        command.env_remove("WORKERPODAUTOSCALER_NATS_NKEY_SEED_FILE");
    });
    let first = watch.next(Duration::from_secs(10));
    assert_eq!(first["queueMessages"], 3, "{first}");
    assert_eq!(watch.terminate(), 0);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
