//! The queue adapter: a RabbitMQ queue as a [`QueueSource`] and a
//! [`QueueMetrics`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use wpa_core::{QueueMetrics, QueueSnapshot};
use wpa_poller::{PollRequest, QueueSource};

use crate::amqp::{AmqpClient, AmqpConfig, Counters};
use crate::answer::{self, ArrivalRate, DeclareOk};
use crate::http::{HttpConfig, ManagementClient};
use crate::management::QueueStats;
use crate::{Error, RabbitUri};

/// Default window of the arrival rate: 60 s.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// Settings of a [`RabbitQueue`].
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Longest wait for the AMQP connection (TCP, TLS and handshake) or a
    /// management TCP connection. Default 5 s (RabbitMQ takes 3 s to drop
    /// a connection whose login it refused).
    pub connect_timeout: Duration,
    /// Longest wait for one passive declare or one management request.
    /// Default 5 s.
    pub call_timeout: Duration,
    /// Attempts per call once the AMQP connection is lost, or per
    /// management request whose connection fails. Default 3.
    pub reconnect_attempts: u32,
    /// Backoff before the second attempt; doubles up to
    /// `reconnect_max_backoff`, each delay jittered down by up to half.
    /// Default 100 ms.
    pub reconnect_initial_backoff: Duration,
    /// Backoff cap. Default 2 s.
    pub reconnect_max_backoff: Duration,
    /// AMQP heartbeat asked of the server, in seconds. Default 30.
    pub heartbeat: u16,
    /// Time between two passive declares of a wake-up poll: the longest the
    /// first message waits before it is seen, less a round trip. Default
    /// 200 ms (300 declares per idle minute at zero replicas).
    pub wake_up_interval: Duration,
    /// Window of the arrival rate ([`ArrivalRate`]). Default 60 s.
    pub rate_window: Duration,
    /// Whether to report idle consumers ([`answer::idle_consumers`]).
    /// Default true; false leaves idleness unknown.
    pub idle_from_consumers: bool,
    /// The TLS client configuration of `amqps://` and `https://`
    /// management URLs. Default `None`: rustls with the ring provider,
    /// trusting the system's certificate store (`SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` honoured).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(5),
            reconnect_attempts: 3,
            reconnect_initial_backoff: Duration::from_millis(100),
            reconnect_max_backoff: Duration::from_secs(2),
            heartbeat: 30,
            wake_up_interval: Duration::from_millis(200),
            rate_window: DEFAULT_RATE_WINDOW,
            idle_from_consumers: true,
            tls: None,
        }
    }
}

/// Server calls a [`RabbitQueue`] made so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Calls {
    /// AMQP connections opened (1 plus reconnects).
    pub connections: u64,
    /// AMQP channels opened (1 per connection, plus one after each channel
    /// the server closed: a missing queue).
    pub channels: u64,
    /// Passive `queue.declare` calls.
    pub declares: u64,
    /// Management `GET /api/queues/{vhost}/{queue}` requests.
    pub management_gets: u64,
}

/// A RabbitMQ queue, polled for the autoscaler.
///
/// - Short poll: one passive `queue.declare` and one management
///   `GET /api/queues/{vhost}/{queue}?columns=...`, made concurrently; the
///   snapshot is [`answer::snapshot`]'s.
/// - Wake-up ([`PollRequest::wake_up`]): a passive declare every
///   [`QueueConfig::wake_up_interval`] until one reports a ready message
///   (the poll returns at once, with [`answer::woken`]) or the long poll
///   ends (then a short poll). Consumers on the queue end it after the
///   short-poll interval instead, since their messages may never be
///   ready.
/// - A queue that does not exist is an empty queue
///   ([`answer::missing_queue`]), logged at `warn` when it goes missing.
#[derive(Debug)]
pub struct RabbitQueue {
    uri: RabbitUri,
    amqp: AmqpClient,
    management: ManagementClient,
    counters: Arc<Counters>,
    rate: ArrivalRate,
    wake_up_interval: Duration,
    idle_from_consumers: bool,
    /// Whether the last poll found the queue missing (logged on change).
    missing: Option<bool>,
    /// The rate's time origin: tokio's clock, so paused tests control it.
    epoch: Instant,
}

impl RabbitQueue {
    /// An adapter with default settings; nothing is connected yet.
    #[must_use]
    pub fn new(uri: RabbitUri) -> Self {
        Self::with_config(uri, QueueConfig::default())
    }

    /// An adapter with the given settings; nothing is connected yet.
    #[must_use]
    pub fn with_config(uri: RabbitUri, config: QueueConfig) -> Self {
        let counters = Arc::new(Counters::default());
        let amqp = AmqpClient::new(
            uri.clone(),
            AmqpConfig {
                connect_timeout: config.connect_timeout,
                call_timeout: config.call_timeout,
                reconnect_attempts: config.reconnect_attempts,
                reconnect_initial_backoff: config.reconnect_initial_backoff,
                reconnect_max_backoff: config.reconnect_max_backoff,
                heartbeat: config.heartbeat,
                tls: config.tls.clone(),
            },
            Arc::clone(&counters),
        );
        let management = ManagementClient::new(
            &uri,
            HttpConfig {
                connect_timeout: config.connect_timeout,
                call_timeout: config.call_timeout,
                attempts: config.reconnect_attempts,
                initial_backoff: config.reconnect_initial_backoff,
                max_backoff: config.reconnect_max_backoff,
                tls: config.tls,
            },
            Arc::clone(&counters),
        );
        RabbitQueue {
            uri,
            amqp,
            management,
            counters,
            rate: ArrivalRate::new(config.rate_window),
            wake_up_interval: config.wake_up_interval.max(Duration::from_millis(1)),
            idle_from_consumers: config.idle_from_consumers,
            missing: None,
            epoch: Instant::now(),
        }
    }

    /// The queue's URI.
    #[must_use]
    pub fn uri(&self) -> &RabbitUri {
        &self.uri
    }

    /// The server calls made so far.
    #[must_use]
    pub fn calls(&self) -> Calls {
        Calls {
            connections: self.counters.connections.load(Ordering::Relaxed),
            channels: self.counters.channels.load(Ordering::Relaxed),
            declares: self.counters.declares.load(Ordering::Relaxed),
            management_gets: self.counters.management_gets.load(Ordering::Relaxed),
        }
    }

    /// Drops the AMQP connection; the next call opens a new one.
    pub fn disconnect(&mut self) {
        self.amqp.disconnect();
    }

    /// One passive `queue.declare`: the ready messages and consumers, exact
    /// now; `None` when the queue does not exist.
    pub async fn declare(&mut self) -> Result<Option<DeclareOk>, Error> {
        self.amqp.declare().await
    }

    /// One management `GET /api/queues/{vhost}/{queue}`; `None` when the
    /// queue or the vhost does not exist.
    pub async fn management_stats(&mut self) -> Result<Option<QueueStats>, Error> {
        self.management.queue_stats().await
    }

    /// One short poll: a passive declare and a management GET, made
    /// concurrently. `oldest_age`: report the head message's age (from its
    /// `timestamp` property, when set).
    pub async fn short_poll(&mut self, oldest_age: bool) -> Result<QueueSnapshot, Error> {
        let (declared, stats) = tokio::join!(self.amqp.declare(), self.management.queue_stats());
        // Both failed: the management API's 401 says more than an AMQP
        // connection dropped during its login.
        if let (Err(amqp), Err(Error::ManagementUnauthorized { .. })) = (&declared, &stats)
            && !matches!(amqp, Error::AccessRefused { .. })
        {
            tracing::debug!(uri = %self.uri, error = %amqp, "AMQP failed too");
            return stats.map(|_| answer::missing_queue());
        }
        let Some(declare) = declared? else {
            // The declare is the authority on existence; the management
            // answer may be from a moment before.
            self.note_missing(true);
            self.rate.reset();
            return Ok(answer::missing_queue());
        };
        self.note_missing(false);
        let stats = stats?.unwrap_or_default();
        if let Some(published) = stats.published {
            self.rate.record(self.epoch.elapsed(), published);
        }
        let age = match (oldest_age, stats.head_message_timestamp) {
            (true, Some(timestamp)) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Some(answer::oldest_age(timestamp, now))
            }
            _ => None,
        };
        answer::snapshot(
            declare,
            &stats,
            self.rate.per_minute(),
            age,
            self.idle_from_consumers,
        )
    }

    /// One wake-up poll: passive declares every `wake_up_interval` until a
    /// message is ready (returns at once) or `long_poll` has passed (then a
    /// short poll). Consumers on the queue cut the wait to `short_poll`.
    pub async fn wake_up(
        &mut self,
        long_poll: Duration,
        short_poll: Duration,
    ) -> Result<QueueSnapshot, Error> {
        let started = Instant::now();
        let mut deadline = started + long_poll;
        loop {
            match self.amqp.declare().await? {
                Some(declare) if declare.ready > 0 => {
                    self.note_missing(false);
                    return Ok(answer::woken(declare, self.rate.per_minute()));
                }
                Some(declare) => {
                    self.note_missing(false);
                    if declare.consumers > 0 {
                        deadline = deadline.min(started + short_poll);
                    }
                }
                None => self.note_missing(true),
            }
            let next = Instant::now() + self.wake_up_interval;
            if next >= deadline {
                tokio::time::sleep_until(deadline).await;
                break;
            }
            tokio::time::sleep_until(next).await;
        }
        self.short_poll(false).await
    }

    fn note_missing(&mut self, missing: bool) {
        if self.missing == Some(missing) {
            return;
        }
        if missing {
            tracing::warn!(uri = %self.uri, "queue does not exist: reporting it empty");
        } else if self.missing.is_some() {
            tracing::info!(uri = %self.uri, "queue exists again");
        }
        self.missing = Some(missing);
    }

    async fn poll_once(&mut self, request: PollRequest) -> Result<QueueSnapshot, Error> {
        if request.wake_up {
            self.wake_up(request.long_poll, request.short_poll).await
        } else {
            self.short_poll(request.oldest_age).await
        }
    }
}

impl QueueSource for RabbitQueue {
    type Error = Error;

    fn poll(
        &mut self,
        request: PollRequest,
    ) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        self.poll_once(request)
    }
}

/// A direct short poll per call (no wake-up, no schedule): for a program
/// that runs its own loop. The autoscaler itself goes through the poller.
impl QueueMetrics for RabbitQueue {
    type Error = Error;

    fn snapshot(&mut self) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        self.short_poll(false)
    }
}
