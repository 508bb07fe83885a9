//! `amqps://` and an `https://` management URL against a real node with
//! TLS listeners (a throwaway CA made with rcgen: `TestCertificates`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use wpa_core::QueueMetrics;
use wpa_poller::testing::TestCertificates;
use wpa_rabbitmq::testing::{RabbitMqServer, ServerOptions, TlsFiles};
use wpa_rabbitmq::{Error, QueueConfig, RabbitQueue, RabbitUri};

fn trusting(ca: &std::path::Path) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn config(tls: Option<Arc<rustls::ClientConfig>>) -> QueueConfig {
    QueueConfig {
        reconnect_attempts: 1,
        call_timeout: Duration::from_secs(3),
        tls,
        ..QueueConfig::default()
    }
}

#[tokio::test]
async fn amqps_and_https_with_a_trusted_ca_and_not_without() {
    let dir = std::env::temp_dir().join(format!("wpa-rabbitmq-tls-{}", std::process::id()));
    let made = TestCertificates::write(&dir, "wpa-rabbitmq").unwrap();
    let server = RabbitMqServer::start_with(ServerOptions {
        tls: Some(TlsFiles {
            certificate: made.certificate.clone(),
            key: made.key.clone(),
            ca: made.ca.clone(),
        }),
        ..ServerOptions::default()
    })
    .expect("rabbitmq-server must be installed (Debian: apt-get install -y rabbitmq-server)");
    server
        .admin("PUT", "/api/queues/%2F/secure", Some(r#"{"durable":true}"#))
        .unwrap();
    server
        .admin(
            "POST",
            "/api/exchanges/%2F/amq.default/publish",
            Some(r#"{"properties":{},"routing_key":"secure","payload":"x","payload_encoding":"string"}"#),
        )
        .unwrap();
    let uri: RabbitUri = server.tls_uri("/", "secure").unwrap().parse().unwrap();
    assert!(uri.is_tls() && uri.management().is_tls());
    let ca = server.ca_certificate().unwrap();
    let mut queue = RabbitQueue::with_config(uri.clone(), config(Some(trusting(&ca))));
    assert_eq!(queue.declare().await.unwrap().unwrap().ready, 1);
    let stats = queue.management_stats().await.unwrap().unwrap();
    assert!(stats.consumer_details.is_some(), "{stats:?}");
    assert_eq!(queue.snapshot().await.unwrap().messages(), 1);

    // The system store does not know the throwaway CA: both doors refuse.
    let mut untrusted = RabbitQueue::with_config(uri, config(None));
    let error = untrusted.declare().await.unwrap_err();
    assert!(matches!(&error, Error::Connect { .. }), "{error:?}");
    assert!(error.to_string().contains("certificate"), "{error}");
    let error = untrusted.management_stats().await.unwrap_err();
    assert!(
        matches!(&error, Error::ManagementRequest { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("certificate"), "{error}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
