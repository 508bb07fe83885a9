//! The JetStream API over one core NATS connection (async-nats): every
//! call under a timeout, the connection re-established with capped
//! exponential backoff and jitter, permission violations reported by
//! subject.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::{ConnectOptions, Event, ServerError, Subscriber};
use tokio::sync::watch;
use tokio::time::Instant;
use wpa_poller::{Backoff, Jitter, exponential_delay};

use crate::api::{self, ConsumerInfo, StoredMessage, StreamInfo};
use crate::{Credentials, Error, NatsUri};

/// Timeouts and reconnect policy of a [`JetStreamClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Longest wait for the connection (TCP, TLS, the NATS handshake).
    /// Default 2 s.
    pub connect_timeout: Duration,
    /// Longest wait for the answer to one request (or flush). Default 5 s.
    pub call_timeout: Duration,
    /// Attempts of the first connection within one call. Default 3.
    pub connect_attempts: u32,
    /// Backoff before the second attempt (and before the second reconnect
    /// attempt after a lost connection: the first is immediate); doubles up
    /// to `reconnect_max_backoff`, each delay jittered down by up to half.
    /// Default 100 ms.
    pub reconnect_initial_backoff: Duration,
    /// Backoff cap. Default 2 s.
    pub reconnect_max_backoff: Duration,
    /// The connection name the server shows (`connz`). Default
    /// `workerpodautoscaler`.
    pub name: String,
    /// PEM certificates trusted for TLS (`tls://`, or a `nats://` server
    /// that asks for TLS) instead of the system's store. Default `None`:
    /// the system's store, where `SSL_CERT_FILE` and `SSL_CERT_DIR` name a
    /// private CA.
    pub tls_root_certificates: Option<Vec<u8>>,
    /// A file holding a user NKey seed (`SU...`, as `nsc` or `nk -gen user`
    /// writes it): the connection signs the server's nonce with it, for a
    /// server whose `authorization` lists the user's public key. Read each
    /// time the adapter connects (async-nats' own reconnects keep it), so
    /// a rotated Kubernetes Secret is picked up by the next connection. Used
    /// only for a URI without user info (user info wins). Default `None`.
    pub nkey_seed_file: Option<PathBuf>,
    /// A NATS `.creds` file (a user JWT and its NKey seed, as `nsc`
    /// writes it), for a server in operator mode: the connection presents
    /// the JWT and signs the server's nonce with the seed. Read like
    /// `nkey_seed_file`, used only for a URI without user info, and used
    /// instead of `nkey_seed_file` when both are set. Default `None`.
    pub credentials_file: Option<PathBuf>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(5),
            connect_attempts: 3,
            reconnect_initial_backoff: Duration::from_millis(100),
            reconnect_max_backoff: Duration::from_secs(2),
            name: "workerpodautoscaler".to_owned(),
            tls_root_certificates: None,
            nkey_seed_file: None,
            credentials_file: None,
        }
    }
}

/// The text of a credentials file (a few hundred bytes, read at connect).
async fn read_credentials(path: &Path) -> Result<String, Error> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|e| Error::CredentialsFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// The user NKey seed in the file at `path`, checked: async-nats itself
/// would only log a bad seed and connect without it.
async fn read_nkey_seed(path: &Path) -> Result<String, Error> {
    let refused = |reason: String| Error::CredentialsFile {
        path: path.to_owned(),
        reason,
    };
    let text = read_credentials(path).await?;
    let seed = text.trim();
    let pair = nkeys::KeyPair::from_seed(seed)
        .map_err(|_| refused("not an NKey seed (SU... for a user)".to_owned()))?;
    if pair.key_pair_type() != nkeys::KeyPairType::User {
        return Err(refused(format!(
            "a {:?} seed, not a user's (SU...)",
            pair.key_pair_type()
        )));
    }
    Ok(seed.to_owned())
}

/// The TLS client configuration that trusts exactly the certificates in
/// `pem`: rustls with ring, named here so that no process-wide default
/// provider is needed.
fn tls_config(pem: &[u8]) -> Result<async_nats::rustls::ClientConfig, Error> {
    use async_nats::rustls::pki_types::CertificateDer;
    use async_nats::rustls::pki_types::pem::PemObject as _;
    use async_nats::rustls::{ClientConfig as TlsConfig, RootCertStore, crypto};

    let refused = |reason: String| Error::TlsRoots { reason };
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem) {
        let certificate = certificate.map_err(|e| refused(format!("not PEM: {e}")))?;
        roots
            .add(certificate)
            .map_err(|e| refused(format!("a certificate rustls cannot read: {e}")))?;
    }
    if roots.is_empty() {
        return Err(refused("no CERTIFICATE block in the PEM".to_owned()));
    }
    let provider = Arc::new(crypto::ring::default_provider());
    Ok(TlsConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refused(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Counts the JetStream API requests a client sent (a clone shares the
/// count): what the tests and the bench measure the adapter's cost with.
#[derive(Debug, Clone, Default)]
pub struct ApiCounter(Arc<AtomicU64>);

impl ApiCounter {
    /// Requests sent so far.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// How long a permission violation reported by the server is kept to
/// explain a request that got no answer.
const VIOLATION_MEMORY: Duration = Duration::from_secs(60);
const VIOLATIONS_KEPT: usize = 16;

/// What the connection's event callback saw.
#[derive(Debug)]
struct Events {
    /// Connections established (1, then one per reconnect).
    connects: watch::Sender<u64>,
    /// Recent `Permissions Violation for ...` errors, newest last.
    violations: Mutex<VecDeque<(Instant, String)>>,
}

impl Events {
    fn on_event(&self, address: &str, event: Event) {
        match event {
            Event::Connected => {
                self.connects.send_modify(|n| *n += 1);
                if *self.connects.borrow() > 1 {
                    tracing::info!(address, "reconnected to NATS");
                }
            }
            Event::Disconnected => tracing::warn!(address, "NATS connection lost; reconnecting"),
            Event::ServerError(ServerError::Other(message))
                if message.contains("Permissions Violation") =>
            {
                tracing::warn!(address, %message, "NATS permissions violation");
                let mut violations = self
                    .violations
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if violations.len() == VIOLATIONS_KEPT {
                    violations.pop_front();
                }
                violations.push_back((Instant::now(), message));
            }
            other => tracing::debug!(address, event = %other, "NATS connection event"),
        }
    }

    /// Whether the server refused `operation` (`Publish` or
    /// `Subscription`) on a subject starting with `subject` lately.
    fn refused(&self, operation: &str, subject: &str) -> bool {
        let needle = format!("Permissions Violation for {operation} to \"{subject}");
        let violations = self
            .violations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        violations
            .iter()
            .any(|(at, message)| at.elapsed() < VIOLATION_MEMORY && message.contains(&needle))
    }
}

/// A core NATS connection speaking the JetStream JSON API: the requests
/// this adapter makes, decoded by [`crate::api`].
///
/// Connecting is lazy: the first call connects, trying up to
/// [`ClientConfig::connect_attempts`] times with capped exponential backoff
/// and jitter. Once connected, a lost connection is re-established in the
/// background by async-nats, with delays from the same backoff
/// ([`wpa_poller::exponential_delay`], jittered), forever; calls made
/// meanwhile fail with [`Error::Timeout`] after the call timeout, and
/// subscriptions are restored on reconnect. Cancel-safe: a call's future
/// may be dropped at any point.
#[derive(Debug)]
pub struct JetStreamClient {
    uri: NatsUri,
    config: ClientConfig,
    client: Option<async_nats::Client>,
    events: Arc<Events>,
    calls: ApiCounter,
}

impl JetStreamClient {
    /// A client for the server of `uri`; nothing is connected yet.
    #[must_use]
    pub fn new(uri: NatsUri, config: ClientConfig) -> Self {
        JetStreamClient {
            uri,
            config,
            client: None,
            events: Arc::new(Events {
                connects: watch::Sender::new(0),
                violations: Mutex::new(VecDeque::new()),
            }),
            calls: ApiCounter::default(),
        }
    }

    /// The URI.
    #[must_use]
    pub fn uri(&self) -> &NatsUri {
        &self.uri
    }

    /// The JetStream API requests sent so far.
    #[must_use]
    pub fn api_calls(&self) -> ApiCounter {
        self.calls.clone()
    }

    /// Connections established so far (1 plus reconnects), and changes of
    /// it.
    #[must_use]
    pub fn connects(&self) -> watch::Receiver<u64> {
        self.events.connects.subscribe()
    }

    /// Whether the server lately refused this connection a subscription to
    /// `subject`.
    #[must_use]
    pub fn subscription_refused(&self, subject: &str) -> bool {
        self.events.refused("Subscription", subject)
    }

    async fn options(&self) -> Result<ConnectOptions, Error> {
        let events = Arc::clone(&self.events);
        let address = self.uri.address();
        let initial = self.config.reconnect_initial_backoff;
        let max = self.config.reconnect_max_backoff;
        let jitter = Mutex::new(Jitter::new());
        let mut options = ConnectOptions::new()
            .name(&self.config.name)
            .connection_timeout(self.config.connect_timeout)
            .request_timeout(Some(self.config.call_timeout))
            .require_tls(self.uri.scheme() == crate::Scheme::Tls)
            // Only the URI's server: the autoscaler talks to what it is
            // told, not to cluster members the server advertises.
            .ignore_discovered_servers()
            .reconnect_delay_callback(move |attempts| {
                if attempts <= 1 {
                    return Duration::ZERO;
                }
                let unit = jitter
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .next_unit();
                let attempt = u32::try_from(attempts - 2).unwrap_or(u32::MAX);
                exponential_delay(initial, max, attempt, unit)
            })
            .event_callback(move |event| {
                let events = Arc::clone(&events);
                let address = address.clone();
                async move { events.on_event(&address, event) }
            });
        options = match self.uri.credentials() {
            Some(Credentials::UserPassword { user, password }) => {
                options.user_and_password(user.clone(), password.clone())
            }
            Some(Credentials::Token(token)) => options.token(token.clone()),
            None => self.with_credential_files(options).await?,
        };
        if let Some(pem) = &self.config.tls_root_certificates {
            options = options.tls_client_config(tls_config(pem)?);
        }
        Ok(options)
    }

    /// `options` with the `.creds` file or else the NKey seed file, if set.
    async fn with_credential_files(
        &self,
        options: ConnectOptions,
    ) -> Result<ConnectOptions, Error> {
        if let Some(path) = &self.config.credentials_file {
            let text = read_credentials(path).await?;
            return options
                .credentials(&text)
                .map_err(|e| Error::CredentialsFile {
                    path: path.clone(),
                    reason: format!("not a NATS .creds file (user JWT and NKey seed): {e}"),
                });
        }
        match &self.config.nkey_seed_file {
            Some(path) => Ok(options.nkey(read_nkey_seed(path).await?)),
            None => Ok(options),
        }
    }

    /// The connection, connecting first if there is none.
    async fn connection(&mut self) -> Result<async_nats::Client, Error> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let attempts = self.config.connect_attempts.max(1);
        let mut backoff = Backoff::new(
            self.config.reconnect_initial_backoff,
            self.config.reconnect_max_backoff,
        );
        let mut last: Option<crate::BoxError> = None;
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff.next_delay()).await;
            }
            // The handshake's own timeout covers TCP; this one bounds
            // TLS and authentication too.
            let limit = self.config.connect_timeout.saturating_mul(2);
            // A configuration error is not retried: no attempt can fix it.
            let options = self.options().await?;
            let connected =
                tokio::time::timeout(limit, options.connect(self.uri.server_url())).await;
            match connected {
                Ok(Ok(client)) => {
                    self.client = Some(client.clone());
                    return Ok(client);
                }
                Ok(Err(error)) => {
                    tracing::debug!(address = %self.uri.address(), attempt, %error, "NATS connect failed");
                    last = Some(Box::new(error));
                }
                Err(_) => {
                    last = Some(format!("no connection within {limit:?}").into());
                }
            }
        }
        Err(Error::Connect {
            address: self.uri.address(),
            attempts,
            source: last.unwrap_or_else(|| "no attempt made".into()),
        })
    }

    /// One request on `subject`, its reply's payload; counted in
    /// [`JetStreamClient::api_calls`].
    pub async fn request(&mut self, subject: String, body: Vec<u8>) -> Result<Vec<u8>, Error> {
        let client = self.connection().await?;
        self.calls.add();
        let timeout = self.config.call_timeout;
        let answered =
            tokio::time::timeout(timeout, client.request(subject.clone(), body.into())).await;
        use async_nats::RequestErrorKind as Kind;
        match answered {
            Ok(Ok(message)) => Ok(message.payload.to_vec()),
            Ok(Err(error)) if error.kind() == Kind::NoResponders => {
                Err(Error::JetStreamUnavailable {
                    address: self.uri.address(),
                    subject,
                })
            }
            Ok(Err(error)) if error.kind() != Kind::TimedOut => Err(Error::Request {
                address: self.uri.address(),
                subject,
                source: Box::new(error),
            }),
            Ok(Err(_)) | Err(_) => Err(self.no_answer(subject, timeout)),
        }
    }

    /// Why `subject` got no answer: a permission the server refused, else
    /// a timeout.
    fn no_answer(&self, subject: String, timeout: Duration) -> Error {
        let address = self.uri.address();
        if self.events.refused("Publish", &subject) {
            return Error::PermissionDenied {
                address,
                operation: "publish to",
                subject,
            };
        }
        if self.events.refused("Subscription", "_INBOX.") {
            return Error::PermissionDenied {
                address,
                operation: "subscribe to",
                subject: "_INBOX.>".to_owned(),
            };
        }
        Error::Timeout {
            address,
            subject,
            timeout,
        }
    }

    /// `$JS.API.CONSUMER.INFO.<stream>.<consumer>` for the URI's consumer.
    pub async fn consumer_info(&mut self) -> Result<ConsumerInfo, Error> {
        let (stream, consumer) = (self.uri.stream().clone(), self.uri.consumer().clone());
        let reply = self
            .request(api::consumer_info_subject(&stream, &consumer), Vec::new())
            .await?;
        api::parse_consumer_info(&reply, &stream, &consumer)
    }

    /// `$JS.API.STREAM.INFO.<stream>` for the URI's stream.
    pub async fn stream_info(&mut self) -> Result<StreamInfo, Error> {
        let stream = self.uri.stream().clone();
        let reply = self
            .request(api::stream_info_subject(&stream), Vec::new())
            .await?;
        api::parse_stream_info(&reply, &stream)
    }

    /// `$JS.API.STREAM.MSG.GET.<stream>`: the first message at or after
    /// `seq` on `subject` (`>` for any); `None` if there is none.
    pub async fn next_message(
        &mut self,
        seq: u64,
        subject: &str,
    ) -> Result<Option<StoredMessage>, Error> {
        let stream = self.uri.stream().clone();
        let reply = self
            .request(
                api::msg_get_subject(&stream),
                api::next_message_request(seq, subject),
            )
            .await?;
        api::parse_stored_message(&reply, &stream)
    }

    /// A core NATS subscription to `subject` (restored after reconnects).
    pub async fn subscribe(&mut self, subject: &str) -> Result<Subscriber, Error> {
        let client = self.connection().await?;
        let subscribed = tokio::time::timeout(
            self.config.call_timeout,
            client.subscribe(subject.to_owned()),
        )
        .await;
        match subscribed {
            Ok(Ok(subscriber)) => Ok(subscriber),
            Ok(Err(error)) => Err(Error::Request {
                address: self.uri.address(),
                subject: subject.to_owned(),
                source: Box::new(error),
            }),
            Err(_) => Err(Error::Timeout {
                address: self.uri.address(),
                subject: subject.to_owned(),
                timeout: self.config.call_timeout,
            }),
        }
    }

    /// A round trip to the server: everything sent before (a subscription)
    /// has been processed when it returns.
    pub async fn flush(&mut self) -> Result<(), Error> {
        let client = self.connection().await?;
        match tokio::time::timeout(self.config.call_timeout, client.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Error::Request {
                address: self.uri.address(),
                subject: "flush".to_owned(),
                source: Box::new(error),
            }),
            Err(_) => Err(Error::Timeout {
                address: self.uri.address(),
                subject: "flush".to_owned(),
                timeout: self.config.call_timeout,
            }),
        }
    }
}
