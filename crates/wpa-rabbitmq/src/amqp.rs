//! The AMQP side: one connection, one channel, passive `queue.declare`.
//!
//! amqprs is driven so that nothing the poller does can leave it out of
//! step: each declare (and the channel open before it, when needed) runs in
//! a task of its own, one at a time per connection, so a wake-up poll the
//! poller cancels mid-call still reads its reply. A timeout or a failure
//! of the connection drops the connection; the next call opens a new one,
//! trying up to `reconnect_attempts` times with capped exponential backoff
//! and jitter. A channel the server closes (404 for a missing queue) is
//! replaced by a new one on the same connection; since amqprs does not
//! give back the id of a channel the server closed, the connection is
//! replaced once half of its channel ids were used that way.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use amqprs::callbacks::ChannelCallback;
use amqprs::channel::{Channel, QueueDeclareArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::tls::TlsAdaptor;
use amqprs::{Ack, BasicProperties, Cancel, CloseChannel, Nack, Return};
use wpa_poller::Backoff;

use crate::answer::DeclareOk;
use crate::{Error, RabbitUri};

/// AMQP reply codes this module tells apart.
const NOT_FOUND: u16 = 404;
const ACCESS_REFUSED: u16 = 403;

/// Calls made, for tests, benches and logs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) channels: AtomicU64,
    pub(crate) declares: AtomicU64,
    pub(crate) management_gets: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Timeouts and reconnects of the AMQP connection.
#[derive(Debug, Clone)]
pub(crate) struct AmqpConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) call_timeout: Duration,
    pub(crate) reconnect_attempts: u32,
    pub(crate) reconnect_initial_backoff: Duration,
    pub(crate) reconnect_max_backoff: Duration,
    pub(crate) heartbeat: u16,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

type CloseSlot = Arc<Mutex<Option<(u16, String)>>>;

/// Records why the server closed a channel, before amqprs fails the call
/// waiting on it.
struct CloseRecorder(CloseSlot);

#[async_trait::async_trait]
impl ChannelCallback for CloseRecorder {
    async fn close(
        &mut self,
        _channel: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((close.reply_code(), close.reply_text().clone()));
        Ok(())
    }

    async fn cancel(
        &mut self,
        _channel: &Channel,
        _cancel: Cancel,
    ) -> Result<(), amqprs::error::Error> {
        Ok(())
    }

    async fn flow(
        &mut self,
        _channel: &Channel,
        active: bool,
    ) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }

    async fn publish_ack(&mut self, _channel: &Channel, _ack: Ack) {}

    async fn publish_nack(&mut self, _channel: &Channel, _nack: Nack) {}

    async fn publish_return(
        &mut self,
        _channel: &Channel,
        _ret: Return,
        _basic_properties: BasicProperties,
        _content: Vec<u8>,
    ) {
    }
}

struct Chan {
    channel: Channel,
    closed: CloseSlot,
}

impl Chan {
    fn usable(&self) -> bool {
        self.channel.is_open()
            && self
                .closed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none()
    }
}

/// One open connection and its channel (opened on first use, replaced
/// when the server closes it). The channel mutex is held for a whole call,
/// by the call's task: calls on one connection never overlap.
struct Live {
    connection: Connection,
    channel: Arc<tokio::sync::Mutex<Option<Chan>>>,
    /// Channels the server closed on this connection (their ids are lost).
    lost_channels: Arc<AtomicU32>,
    lost_channel_limit: u32,
}

/// What one declare found.
enum Declared {
    Found(DeclareOk),
    Missing,
}

/// How a declare task failed.
enum Failure {
    /// The connection is unusable.
    Connection(String),
    /// The server closed the channel with this code (not 404).
    Channel { code: u16, text: String },
}

/// The AMQP client of one queue.
pub(crate) struct AmqpClient {
    uri: RabbitUri,
    address: String,
    config: AmqpConfig,
    counters: Arc<Counters>,
    live: Option<Live>,
    /// A connection being opened, by a task of its own: a call cancelled
    /// while it waits leaves it running, and the next call waits for it.
    connecting: Option<tokio::task::JoinHandle<Result<Live, Error>>>,
}

impl std::fmt::Debug for AmqpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpClient")
            .field("address", &self.address)
            .field("connected", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

impl AmqpClient {
    pub(crate) fn new(uri: RabbitUri, config: AmqpConfig, counters: Arc<Counters>) -> Self {
        AmqpClient {
            address: uri.address(),
            uri,
            config,
            counters,
            live: None,
            connecting: None,
        }
    }

    /// Drops the connection; the next call opens a new one.
    pub(crate) fn disconnect(&mut self) {
        self.live = None;
    }

    /// Opens the connection unless it is open (see `connecting`).
    async fn ensure_connected(&mut self) -> Result<(), Error> {
        if self.live.is_some() {
            return Ok(());
        }
        let connecting = match &mut self.connecting {
            Some(connecting) => connecting,
            None => self.connecting.insert(tokio::spawn(connect(
                self.arguments()?,
                self.address.clone(),
                self.config.clone(),
                Arc::clone(&self.counters),
            ))),
        };
        let result = connecting.await;
        self.connecting = None;
        match result {
            Ok(Ok(live)) => {
                self.live = Some(live);
                Ok(())
            }
            Ok(Err(error)) => Err(error),
            Err(join_error) => Err(self.amqp_error(
                "connection.open",
                format!("the connect task failed: {join_error}"),
            )),
        }
    }

    /// A passive `queue.declare`: `None` when the queue does not exist.
    pub(crate) async fn declare(&mut self) -> Result<Option<DeclareOk>, Error> {
        const OPERATION: &str = "queue.declare";
        if let Some(live) = &self.live
            && (!live.connection.is_open()
                || live.lost_channels.load(Ordering::Relaxed) >= live.lost_channel_limit)
        {
            self.live = None;
        }
        self.ensure_connected().await?;
        let Some(live) = &self.live else {
            return Err(self.amqp_error(OPERATION, "not connected".to_owned()));
        };
        let task = tokio::spawn(declare_task(
            live.connection.clone(),
            Arc::clone(&live.channel),
            Arc::clone(&live.lost_channels),
            self.uri.queue().to_owned(),
            Arc::clone(&self.counters),
        ));
        let abort = task.abort_handle();
        let result = match tokio::time::timeout(self.config.call_timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => Err(Failure::Connection(format!(
                "the call task failed: {join_error}"
            ))),
            Err(_) => {
                abort.abort();
                self.live = None;
                return Err(Error::Timeout {
                    address: self.address.clone(),
                    operation: OPERATION,
                    timeout: self.config.call_timeout,
                });
            }
        };
        match result {
            Ok(Declared::Found(counts)) => Ok(Some(counts)),
            Ok(Declared::Missing) => Ok(None),
            Err(Failure::Channel { code, text }) if code == ACCESS_REFUSED => {
                Err(Error::AccessRefused {
                    address: self.address.clone(),
                    operation: OPERATION,
                    reason: text,
                })
            }
            Err(Failure::Channel { code, text }) => Err(Error::ChannelClosed {
                address: self.address.clone(),
                operation: OPERATION,
                code,
                text,
            }),
            Err(Failure::Connection(reason)) => {
                self.live = None;
                Err(self.amqp_error(OPERATION, reason))
            }
        }
    }

    fn amqp_error(&self, operation: &'static str, reason: String) -> Error {
        Error::Amqp {
            address: self.address.clone(),
            operation,
            reason,
        }
    }

    fn arguments(&self) -> Result<OpenConnectionArguments, Error> {
        let credentials = self.uri.credentials();
        let mut arguments = OpenConnectionArguments::new(
            &socket_host(self.uri.host()),
            self.uri.port(),
            credentials.user(),
            credentials.password(),
        );
        arguments
            .virtual_host(self.uri.vhost())
            .connection_name("workerpodautoscaler")
            .heartbeat(self.config.heartbeat);
        if self.uri.is_tls() {
            let tls = match &self.config.tls {
                Some(tls) => Arc::clone(tls),
                None => crate::tls::system()?,
            };
            arguments.tls_adaptor(TlsAdaptor::new(
                tokio_rustls::TlsConnector::from(tls),
                self.uri.host().to_owned(),
            ));
        }
        Ok(arguments)
    }
}

/// Opens a connection, up to `reconnect_attempts` times with backoff.
/// Refused credentials or vhost are not retried.
async fn connect(
    arguments: OpenConnectionArguments,
    address: String,
    config: AmqpConfig,
    counters: Arc<Counters>,
) -> Result<Live, Error> {
    let attempts = config.reconnect_attempts.max(1);
    let mut backoff = Backoff::new(
        config.reconnect_initial_backoff,
        config.reconnect_max_backoff,
    );
    let mut reason = String::new();
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(backoff.next_delay()).await;
        }
        match tokio::time::timeout(config.connect_timeout, Connection::open(&arguments)).await {
            Ok(Ok(connection)) => {
                Counters::bump(&counters.connections);
                if counters.connections.load(Ordering::Relaxed) > 1 {
                    tracing::info!(%address, "connected to RabbitMQ again");
                }
                let channel_max = match connection.channel_max() {
                    0 => u32::from(u16::MAX),
                    max => u32::from(max),
                };
                return Ok(Live {
                    connection,
                    channel: Arc::new(tokio::sync::Mutex::new(None)),
                    lost_channels: Arc::new(AtomicU32::new(0)),
                    lost_channel_limit: (channel_max / 2).max(1),
                });
            }
            Ok(Err(error)) => {
                let text = error.to_string();
                if let Some(refused) = refusal(&text) {
                    return Err(Error::AccessRefused {
                        address,
                        operation: "connection.open",
                        reason: refused,
                    });
                }
                reason = format!("{text}{}", handshake_hint(&text));
            }
            Err(_) => {
                reason = format!("no connection within {:?}", config.connect_timeout);
            }
        }
        tracing::debug!(%address, attempt, %reason, "RabbitMQ connect failed");
    }
    Err(Error::Connect {
        address,
        attempts,
        reason,
    })
}

/// The host as amqprs joins it with the port (`host:port`): an IPv6
/// address in brackets. (The TLS server name is the bare host.)
fn socket_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The server's reason when an amqprs connection error says it refused
/// the credentials (403 `ACCESS_REFUSED`) or the vhost (530 `NOT_ALLOWED`).
fn refusal(error: &str) -> Option<String> {
    ["ACCESS_REFUSED", "NOT_ALLOWED"].iter().find_map(|code| {
        let at = error.find(code)?;
        let reason = &error[at..];
        Some(reason[..reason.find('"').unwrap_or(reason.len())].to_owned())
    })
}

/// A hint for a connection the server dropped during the handshake: that
/// is how RabbitMQ refuses a login (about 3 s later) to a client that does
/// not announce `authentication_failure_close`, as amqprs does not.
fn handshake_hint(reason: &str) -> &'static str {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("reset by peer")
        || lower.contains("unexpected eof")
        || lower.contains("closed")
    {
        " (RabbitMQ drops the connection this way when it refuses the user name or password)"
    } else {
        ""
    }
}

/// One declare, in a task of its own (see the module docs).
async fn declare_task(
    connection: Connection,
    slot: Arc<tokio::sync::Mutex<Option<Chan>>>,
    lost_channels: Arc<AtomicU32>,
    queue: String,
    counters: Arc<Counters>,
) -> Result<Declared, Failure> {
    let mut slot = slot.lock_owned().await;
    if slot.as_ref().is_some_and(|chan| !chan.usable()) {
        *slot = None;
    }
    let chan = match slot.take() {
        Some(chan) => chan,
        None => {
            Counters::bump(&counters.channels);
            let channel = connection
                .open_channel(None)
                .await
                .map_err(|error| Failure::Connection(error.to_string()))?;
            let closed = CloseSlot::default();
            channel
                .register_callback(CloseRecorder(Arc::clone(&closed)))
                .await
                .map_err(|error| Failure::Connection(error.to_string()))?;
            Chan { channel, closed }
        }
    };
    Counters::bump(&counters.declares);
    let arguments = QueueDeclareArguments::new(&queue).passive(true).finish();
    match chan.channel.queue_declare(arguments).await {
        Ok(Some((_, ready, consumers))) => {
            *slot = Some(chan);
            Ok(Declared::Found(DeclareOk { ready, consumers }))
        }
        Ok(None) => Err(Failure::Connection("no queue.declare-ok".to_owned())),
        Err(error) => {
            // The close callback runs before amqprs fails the call.
            let closed = chan
                .closed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            match closed {
                Some((code, text)) => {
                    lost_channels.fetch_add(1, Ordering::Relaxed);
                    if code == NOT_FOUND {
                        Ok(Declared::Missing)
                    } else {
                        Err(Failure::Channel { code, text })
                    }
                }
                None => Err(Failure::Connection(error.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_are_bracketed_for_the_socket() {
        assert_eq!(socket_host("::1"), "[::1]");
        assert_eq!(socket_host("rabbit"), "rabbit");
        let address = format!("{}:{}", socket_host("::1"), 5672);
        assert!(address.parse::<std::net::SocketAddr>().is_ok(), "{address}");
    }

    #[test]
    fn refusals_and_hints() {
        let text = r#"AMQP connection open error: failed to open connection, reason: Close(Close { reply_code: 530, reply_text: "NOT_ALLOWED - vhost prod not found"), class_id: 10 })"#;
        assert_eq!(
            refusal(text).as_deref(),
            Some("NOT_ALLOWED - vhost prod not found")
        );
        assert_eq!(refusal("network io error: Connection refused"), None);
        assert!(
            handshake_hint("network io error: Connection reset by peer (os error 104)")
                .contains("password")
        );
        assert_eq!(handshake_hint("Connection refused"), "");
    }
}
