//! One Redis connection that re-establishes itself: every call bounded by
//! a timeout, reconnecting with capped exponential backoff and jitter.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    Value,
};
use wpa_poller::Backoff;

use crate::{Error, RedisUri};

/// Timeouts and reconnect policy of a [`Connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Longest wait for a connection, handshake (`AUTH`, `SELECT`)
    /// included. Default 2 s.
    pub connect_timeout: Duration,
    /// Longest wait for a reply, beyond the server-side wait of a blocking
    /// command. Default 5 s.
    pub call_timeout: Duration,
    /// Connection attempts per call once the connection is lost. Default 3.
    pub reconnect_attempts: u32,
    /// Backoff before the second attempt; doubles up to
    /// `reconnect_max_backoff`, each delay jittered down by up to half.
    /// Default 100 ms.
    pub reconnect_initial_backoff: Duration,
    /// Backoff cap. Default 2 s.
    pub reconnect_max_backoff: Duration,
    /// `rediss://` only: the CA certificates (PEM) to trust instead of the
    /// system's store, for a server whose certificate a private CA signed.
    /// Default `None`: the system's store, which `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` can point elsewhere (what the controller uses).
    pub tls_root_certificates: Option<Vec<u8>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(5),
            reconnect_attempts: 3,
            reconnect_initial_backoff: Duration::from_millis(100),
            reconnect_max_backoff: Duration::from_secs(2),
            tls_root_certificates: None,
        }
    }
}

/// A Redis connection (redis-rs' multiplexed connection) that
/// re-establishes itself.
///
/// Connecting is lazy: the first call connects. A call that fails on the
/// wire (timeout, reset, closed connection) drops the connection; the next
/// call reconnects, trying up to [`ClientConfig::reconnect_attempts`] times
/// with capped exponential backoff and jitter. Wrong credentials and other
/// refusals of the handshake are not retried.
///
/// Cancel-safe: a call whose future is dropped midway (a wake-up cancelled
/// while it blocks on the server) leaves the connection marked, and the
/// next call replaces it, so a blocked command never delays the next one.
#[derive(Debug)]
pub(crate) struct Connection {
    address: String,
    info: Result<ConnectionInfo, String>,
    config: ClientConfig,
    conn: Option<MultiplexedConnection>,
    in_call: bool,
    connects: u64,
}

fn connection_info(uri: &RedisUri) -> Result<ConnectionInfo, String> {
    let addr = if uri.tls() {
        if cfg!(feature = "tls") {
            ConnectionAddr::TcpTls {
                host: uri.host().to_owned(),
                port: uri.port(),
                insecure: false,
                tls_params: None,
            }
        } else {
            return Err(uri.to_string());
        }
    } else {
        ConnectionAddr::Tcp(uri.host().to_owned(), uri.port())
    };
    let mut redis = RedisConnectionInfo::default()
        .set_db(i64::from(uri.db()))
        .set_skip_set_lib_name();
    if let Some(user) = uri.username() {
        redis = redis.set_username(user);
    }
    if let Some(password) = uri.password() {
        redis = redis.set_password(password);
    }
    addr.into_connection_info()
        .map(|info| info.set_redis_settings(redis))
        .map_err(|_| uri.to_string())
}

impl Connection {
    /// A connection to the server of `uri` (its database and credentials);
    /// nothing is connected yet.
    #[must_use]
    pub(crate) fn new(uri: &RedisUri, config: ClientConfig) -> Self {
        Connection {
            address: uri.address(),
            info: connection_info(uri),
            config,
            conn: None,
            in_call: false,
            connects: 0,
        }
    }

    /// `host:port`.
    #[must_use]
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// How many connections were established so far (1 plus reconnects).
    #[must_use]
    pub(crate) fn connects(&self) -> u64 {
        self.connects
    }

    /// The redis-rs client of `info`: with the configured CA for TLS.
    fn client(&self, info: ConnectionInfo) -> redis::RedisResult<redis::Client> {
        #[cfg(feature = "tls")]
        if let (ConnectionAddr::TcpTls { .. }, Some(roots)) =
            (info.addr(), &self.config.tls_root_certificates)
        {
            return redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(roots.clone()),
                },
            );
        }
        redis::Client::open(info)
    }

    /// Sends `pipe` (which must be built with `ignore_errors()`, so that an
    /// error reply stays in its slot) and returns one value per command,
    /// within the call timeout plus `server_wait` (the longest a blocking
    /// command in it waits on the server). `command` names the pipeline in
    /// errors (its first command).
    pub(crate) async fn query(
        &mut self,
        pipe: &redis::Pipeline,
        command: &'static str,
        server_wait: Duration,
    ) -> Result<Vec<Value>, Error> {
        self.ensure_connected().await?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.lost(command));
        };
        let timeout = self.config.call_timeout.saturating_add(server_wait);
        self.in_call = true;
        let result = tokio::time::timeout(timeout, pipe.query_async::<Value>(conn)).await;
        self.in_call = false;
        match result {
            Err(_) => {
                self.conn = None;
                Err(Error::Timeout {
                    address: self.address.clone(),
                    command,
                    timeout,
                })
            }
            Ok(Err(source)) => {
                if source.is_unrecoverable_error()
                    || source.is_io_error()
                    || source.is_connection_dropped()
                {
                    self.conn = None;
                }
                Err(Error::Connection {
                    address: self.address.clone(),
                    command,
                    source,
                })
            }
            Ok(Ok(Value::Array(values))) if values.len() == pipe.len() => Ok(values),
            Ok(Ok(other)) => {
                self.conn = None;
                Err(Error::unexpected(
                    command,
                    "not one reply per command",
                    &other,
                ))
            }
        }
    }

    fn lost(&self, command: &'static str) -> Error {
        Error::Connection {
            address: self.address.clone(),
            command,
            source: redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::NotConnected)),
        }
    }

    async fn ensure_connected(&mut self) -> Result<(), Error> {
        if self.in_call {
            // A call was cancelled midway: its reply (or its server-side
            // wait) is still pending on this connection.
            self.conn = None;
            self.in_call = false;
        }
        if self.conn.is_some() {
            return Ok(());
        }
        let info = match &self.info {
            Ok(info) => info.clone(),
            Err(uri) => return Err(Error::TlsUnavailable { uri: uri.clone() }),
        };
        let client = self.client(info).map_err(|source| Error::Connect {
            address: self.address.clone(),
            attempts: 0,
            source,
        })?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(None);
        let attempts = self.config.reconnect_attempts.max(1);
        let mut backoff = Backoff::new(
            self.config.reconnect_initial_backoff,
            self.config.reconnect_max_backoff,
        );
        let mut last = None;
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff.next_delay()).await;
            }
            let connected = tokio::time::timeout(
                self.config
                    .connect_timeout
                    .saturating_add(self.config.call_timeout),
                client.get_multiplexed_async_connection_with_config(&config),
            )
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", self.config.connect_timeout),
                )))
            });
            match connected {
                Ok(conn) => {
                    self.conn = Some(conn);
                    self.connects += 1;
                    if self.connects > 1 {
                        tracing::info!(address = %self.address, "reconnected to Redis");
                    }
                    return Ok(());
                }
                Err(source) if source.kind() == redis::ErrorKind::AuthenticationFailed => {
                    return Err(Error::Auth {
                        address: self.address.clone(),
                        source,
                    });
                }
                Err(source) => {
                    let retry = source.is_io_error()
                        || source.is_timeout()
                        || source.is_connection_refusal()
                        || source.is_connection_dropped();
                    tracing::debug!(address = %self.address, attempt, %source, "Redis connect failed");
                    let error = Error::Connect {
                        address: self.address.clone(),
                        attempts: attempt,
                        source,
                    };
                    if !retry {
                        return Err(error);
                    }
                    last = Some(error);
                }
            }
        }
        Err(last.unwrap_or_else(|| self.lost("connect")))
    }
}
