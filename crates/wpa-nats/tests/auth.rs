//! Authentication and TLS against real `nats-server`s.
//!
//! - TLS required, the certificate signed by a throwaway CA (rcgen):
//!   trusted through `ClientConfig::tls_root_certificates`, refused by the
//!   system's store, a `nats://` URI upgraded because the server asks for
//!   TLS, and roots that are not PEM a typed error before any connection.
//! - NKey users (the server's `authorization` lists a public key): the seed
//!   file in `ClientConfig::nkey_seed_file` is accepted, no seed or another
//!   user's is refused by the server, and a file that holds no user seed is
//!   `Error::CredentialsFile` before any connection, never showing the seed.
//! - Operator mode (JWTs made here with `nkeys`, trusted through the
//!   server's `operator` and memory resolver): the `.creds` file in
//!   `ClientConfig::credentials_file` is accepted; none, a JWT another
//!   account signed, or a JWT with another user's seed are refused by the
//!   server; a file that is not a `.creds` file is `Error::CredentialsFile`.
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

fn creds(file: Option<PathBuf>) -> ClientConfig {
    ClientConfig {
        credentials_file: file,
        ..ClientConfig::default()
    }
}

/// A NATS JWT (nats-io/jwt v2): `claims` for `subject`, issued and signed
/// by `issuer` (ed25519 over `header.claims`, base64url without padding).
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::Engine as _;
    let encode = |value: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let header = encode(serde_json::json!({ "typ": "JWT", "alg": "ed25519-nkey" }));
    let claims = encode(serde_json::json!({
        "jti": format!("{name}-{subject}"),
        "iat": 1_700_000_000,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    }));
    let signed = format!("{header}.{claims}");
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!(
        "{signed}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
    )
}

/// An account JWT without limits, with JetStream (unlimited) or without
/// (the system account may not have it).
fn account_jwt(operator: &KeyPair, account: &KeyPair, jetstream: bool) -> String {
    let mut unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
    });
    if jetstream {
        for limit in ["mem_storage", "disk_storage", "streams", "consumer"] {
            unlimited[limit] = serde_json::json!(-1);
        }
    }
    let nats = serde_json::json!({ "limits": unlimited, "type": "account", "version": 2 });
    jwt(operator, &account.public_key(), "jobs", nats)
}

/// A `.creds` file's text, as `nsc generate creds` writes it.
fn creds_text(account: &KeyPair, user: &KeyPair) -> String {
    let nats = serde_json::json!({
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2,
    });
    let token = jwt(account, &user.public_key(), "worker", nats);
    let seed = user.seed().unwrap();
    format!(
        "-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// `config`'s credentials file is `Error::CredentialsFile`: it names `file`
/// and `reason`, never `secret`.
async fn refused_before_connecting(
    uri: &str,
    config: ClientConfig,
    file: &Path,
    reason: &str,
    secret: &str,
) {
    let error = queue(uri, config).poll(POLL).await.unwrap_err();
    assert!(matches!(error, Error::CredentialsFile { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(reason), "{message}");
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(!message.contains(secret), "{message}");
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
        let uri = format!("nats://127.0.0.1:{port}/JOBS/work");
        let config = nkey(Some(file.clone()));
        refused_before_connecting(&uri, config, &file, reason, &account_seed).await;
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_creds_file_authenticates_in_operator_mode_and_a_bad_one_is_named() {
    let dir = std::env::temp_dir().join(format!("wpa-nats-creds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let operator = KeyPair::new_operator();
    let account = KeyPair::new_account();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "test-operator",
        serde_json::json!({ "type": "operator", "version": 2 }),
    );
    // JetStream needs a system account, as `nsc init` makes one.
    let system = KeyPair::new_account();
    let server = NatsServer::start_with_config(&format!(
        "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
         resolver_preload: {{\n  {sys}: {}\n  {}: {}\n}}\n",
        account_jwt(&operator, &system, false),
        account.public_key(),
        account_jwt(&operator, &account, true),
        sys = system.public_key(),
    ))
    .expect("nats-server must be installed (Debian: apt-get install -y nats-server)");
    let user = KeyPair::new_user();
    let text = creds_text(&account, &user);

    let producer = async_nats::ConnectOptions::new()
        .credentials(&creds_text(&account, &KeyPair::new_user()))
        .unwrap();
    jobs_with_messages(producer, &server.url(), 4).await;
    let uri = server.uri("JOBS", "work");

    let file = write(&dir, "worker.creds", &text);
    let snapshot = queue(&uri, creds(Some(file))).poll(POLL).await.unwrap();
    assert_eq!((snapshot.messages(), snapshot.in_flight()), (4, Some(0)));
    // The credentials file is used instead of a seed file, when both are set.
    let both = ClientConfig {
        nkey_seed_file: Some(dir.join("missing.nk")),
        ..creds(Some(write(&dir, "both.creds", &text)))
    };
    assert!(queue(&uri, both).poll(POLL).await.is_ok());

    // No credentials; a user of an account the operator never signed; a
    // JWT presented with another user's seed: the server refuses each.
    let stranger = creds_text(&KeyPair::new_account(), &user);
    let own_jwt = text.split("-----BEGIN USER NKEY SEED-----").next().unwrap();
    let other_seed = KeyPair::new_user().seed().unwrap();
    let mismatched = format!(
        "{own_jwt}-----BEGIN USER NKEY SEED-----\n{other_seed}\n------END USER NKEY SEED------\n"
    );
    for file in [
        None,
        Some(write(&dir, "stranger.creds", &stranger)),
        Some(write(&dir, "mismatched.creds", &mismatched)),
    ] {
        let error = queue(&uri, creds(file.clone()))
            .poll(POLL)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::Connect { .. }),
            "{file:?}: {error:?}"
        );
        assert!(
            error.to_string().to_lowercase().contains("authorization"),
            "{file:?}: {error}"
        );
    }

    // Files that are no .creds file: named before any connection, the seed
    // never shown.
    let seed = user.seed().unwrap();
    let jwt_only = text.split("************").next().unwrap();
    for (file, reason) in [
        (
            write(&dir, "seed-only.creds", &seed),
            "not a NATS .creds file",
        ),
        (
            write(&dir, "jwt-only.creds", jwt_only),
            "not a NATS .creds file",
        ),
        (write(&dir, "empty.creds", ""), "not a NATS .creds file"),
        (dir.join("missing.creds"), "No such file"),
    ] {
        refused_before_connecting(&uri, creds(Some(file.clone())), &file, reason, &seed).await;
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
