//! The queue adapter: a durable JetStream consumer as a [`QueueSource`]
//! and a [`QueueMetrics`].

use std::future::Future;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::stream::SelectAll;
use tokio::sync::watch;
use tokio::time::Instant;
use wpa_core::{QueueMetrics, QueueSnapshot};
use wpa_poller::{PollRequest, QueueSource};

use crate::answer::{self, ArrivalCounter, ArrivalRate, IdleWorkers};
use crate::api::{ConsumerInfo, StreamInfo};
use crate::client::{ApiCounter, ClientConfig, JetStreamClient};
use crate::{Error, NatsUri};

/// Default window of the arrival rate: 60 s.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// A second look this long after subscribing, for a message routed before
/// the subscription took effect or stored after the first look.
const SETTLE: Duration = Duration::from_millis(100);

/// After a publish is seen, the looks at the consumer until it shows the
/// message: the stream stores a message slightly after the subscription
/// sees it (375 ms in all). A publish the stream refused (a duplicate
/// `Nats-Msg-Id`, a full stream with `discard: new`) never shows.
const TRIGGER_RETRIES: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
];

/// How a wake-up poll learns of the first message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WakeUp {
    /// A core NATS subscription to the consumer's filter subjects (or the
    /// stream's subjects): no API call until a publish is seen, then one
    /// `CONSUMER.INFO`. Needs the subscribe permission on those subjects,
    /// and receives the payloads published while the target is at zero
    /// (until the first stored one). Streams fed by a mirror or sources,
    /// and subscriptions the server refuses, fall back to [`WakeUp::Poll`].
    #[default]
    Subscribe,
    /// A `CONSUMER.INFO` every [`QueueConfig::wake_up_poll_interval`]:
    /// no subscribe permission, no payloads, more API calls.
    Poll,
}

/// Settings of a [`NatsQueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Timeouts and reconnects.
    pub client: ClientConfig,
    /// Window of the arrival rate ([`ArrivalRate`]). Default 60 s.
    pub rate_window: Duration,
    /// When `num_waiting` counts as idle workers. Default
    /// [`IdleWorkers::WhenNothingHeld`].
    pub idle_workers: IdleWorkers,
    /// How a wake-up poll sees the first message. Default
    /// [`WakeUp::Subscribe`].
    pub wake_up: WakeUp,
    /// The interval of `CONSUMER.INFO` during a wake-up poll that cannot
    /// subscribe. Default 250 ms.
    pub wake_up_poll_interval: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            client: ClientConfig::default(),
            rate_window: DEFAULT_RATE_WINDOW,
            idle_workers: IdleWorkers::default(),
            wake_up: WakeUp::default(),
            wake_up_poll_interval: Duration::from_millis(250),
        }
    }
}

/// The state of a wake-up in progress, kept between consecutive wake-up
/// polls so that the subscription sees every publish in between.
#[derive(Debug)]
struct Armed {
    /// `None`: polling (no subscription possible or wanted).
    subscription: Option<SelectAll<async_nats::Subscriber>>,
    /// What the subscription listens to.
    subjects: Vec<String>,
    /// The consumer's filters when armed: a change re-arms.
    filters: Vec<String>,
    /// The connection count, to look again after a reconnect.
    connects: watch::Receiver<u64>,
    /// Whether `connects` can still change.
    watch_connects: bool,
    /// When the second look after subscribing is due.
    settle_at: Option<Instant>,
}

/// What woke a wake-up poll's wait.
enum Woken {
    Publish,
    SubscriptionEnded,
    Reconnected,
    Timer,
}

/// A durable JetStream consumer, polled for the autoscaler.
///
/// - Snapshot (one `CONSUMER.INFO`): messages = `num_pending` +
///   `num_ack_pending`, in flight = `num_ack_pending`, idle workers =
///   `num_waiting` under [`QueueConfig::idle_workers`] (pull consumers
///   only). A missing stream or consumer is an error
///   ([`Error::StreamNotFound`], [`Error::ConsumerNotFound`]): a stream
///   without the consumer may well hold messages.
/// - Arrival rate ([`ArrivalRate`] over [`answer::arrival_counter`]): for a
///   filtered consumer from the same reply; for an unfiltered one from the
///   stream's `last_seq`, one `STREAM.INFO` more, only in polls that ask
///   for the rate.
/// - Oldest age, when asked and messages are pending: one
///   `STREAM.MSG.GET` of the first message not delivered yet.
/// - Wake-up: see the crate docs ([`WakeUp`]).
#[derive(Debug)]
pub struct NatsQueue {
    uri: NatsUri,
    config: QueueConfig,
    client: JetStreamClient,
    rate: ArrivalRate,
    rate_counter: Option<ArrivalCounter>,
    /// The consumer's filters from the last `CONSUMER.INFO`.
    filters: Option<Vec<String>>,
    armed: Option<Armed>,
    /// The rate's time origin: tokio's clock, so paused tests control it.
    epoch: Instant,
}

impl NatsQueue {
    /// An adapter with default settings; nothing is connected yet.
    #[must_use]
    pub fn new(uri: NatsUri) -> Self {
        Self::with_config(uri, QueueConfig::default())
    }

    /// An adapter with the given settings; nothing is connected yet.
    #[must_use]
    pub fn with_config(uri: NatsUri, config: QueueConfig) -> Self {
        NatsQueue {
            client: JetStreamClient::new(uri.clone(), config.client.clone()),
            rate: ArrivalRate::new(config.rate_window),
            rate_counter: None,
            filters: None,
            armed: None,
            epoch: Instant::now(),
            uri,
            config,
        }
    }

    /// The consumer's URI.
    #[must_use]
    pub fn uri(&self) -> &NatsUri {
        &self.uri
    }

    /// The JetStream API requests this adapter sent so far.
    #[must_use]
    pub fn api_calls(&self) -> ApiCounter {
        self.client.api_calls()
    }

    /// The raw `CONSUMER.INFO` (one call; `num_redelivered` and the
    /// sequences are there too).
    pub async fn consumer_info(&mut self) -> Result<ConsumerInfo, Error> {
        let info = self.client.consumer_info().await?;
        self.filters = Some(info.config.filters());
        Ok(info)
    }

    /// One short poll: `CONSUMER.INFO`, plus `STREAM.INFO` if
    /// `arrival_rate` and the consumer is unfiltered, plus
    /// `STREAM.MSG.GET` if `oldest_age` and messages are pending.
    pub async fn short_poll(
        &mut self,
        arrival_rate: bool,
        oldest_age: bool,
    ) -> Result<QueueSnapshot, Error> {
        self.armed = None;
        let info = self.consumer_info().await?;
        let counter = answer::arrival_counter(&info);
        let stream = if arrival_rate && counter == ArrivalCounter::StreamLastSeq {
            Some(self.client.stream_info().await?)
        } else {
            None
        };
        let rate = self.observe_rate(&info, stream.as_ref(), arrival_rate);
        let age = if oldest_age && info.num_pending > 0 {
            self.oldest_age(&info).await?
        } else {
            None
        };
        answer::snapshot(&info, self.config.idle_workers, rate, age)
    }

    /// Records the arrival counter, if this reply has it, and returns the
    /// rate to report.
    fn observe_rate(
        &mut self,
        info: &ConsumerInfo,
        stream: Option<&StreamInfo>,
        asked: bool,
    ) -> Option<f64> {
        let counter = answer::arrival_counter(info);
        if self.rate_counter != Some(counter) {
            self.rate.reset();
            self.rate_counter = Some(counter);
        }
        if let Some(reading) = answer::arrival_reading(counter, info, stream) {
            self.rate.record(self.epoch.elapsed(), reading);
        }
        // The stream's counter is only read when asked; without fresh
        // readings its rate is not reported.
        match counter {
            ArrivalCounter::ConsumerOffered => self.rate.per_minute(),
            ArrivalCounter::StreamLastSeq if asked => self.rate.per_minute(),
            ArrivalCounter::StreamLastSeq => None,
        }
    }

    /// The age of the first message not delivered yet (`STREAM.MSG.GET`
    /// after `delivered.stream_seq` on the consumer's filter). `None` with
    /// several filters, or if it went in between.
    async fn oldest_age(&mut self, info: &ConsumerInfo) -> Result<Option<Duration>, Error> {
        let filters = info.config.filters();
        let subject = match filters.as_slice() {
            [] => ">",
            [one] => one.as_str(),
            _ => return Ok(None),
        };
        let seq = info.delivered.stream_seq.saturating_add(1);
        let message = self.client.next_message(seq, subject).await?;
        Ok(message.map(|m| answer::message_age(m.time, SystemTime::now())))
    }

    /// One wake-up poll: blocks up to `long_poll` for the consumer to show
    /// a message, consuming nothing, and returns within a few milliseconds
    /// of a publish (see the crate docs). `short_poll` is the safety net's
    /// interval.
    pub async fn wake_up(
        &mut self,
        long_poll: Duration,
        short_poll: Duration,
        arrival_rate: bool,
    ) -> Result<QueueSnapshot, Error> {
        let deadline = Instant::now() + long_poll;
        let result = self
            .wait_for_message(deadline, short_poll, arrival_rate)
            .await;
        if result.is_err() {
            self.armed = None;
        }
        result
    }

    async fn wait_for_message(
        &mut self,
        deadline: Instant,
        short_poll: Duration,
        arrival_rate: bool,
    ) -> Result<QueueSnapshot, Error> {
        'arm: loop {
            if self.armed.is_none()
                && let Some(found) = self.arm(arrival_rate).await?
            {
                return Ok(found);
            }
            let poll_interval = self
                .config
                .wake_up_poll_interval
                .max(Duration::from_millis(10));
            let mut next_look = Instant::now()
                + if self
                    .armed
                    .as_ref()
                    .is_some_and(|a| a.subscription.is_some())
                {
                    short_poll.max(Duration::from_secs(1))
                } else {
                    poll_interval
                };
            loop {
                let Some(armed) = self.armed.as_mut() else {
                    continue 'arm;
                };
                if armed.subscription.is_some()
                    && armed
                        .subjects
                        .iter()
                        .any(|s| self.client.subscription_refused(s))
                {
                    tracing::warn!(uri = %self.uri, subjects = ?armed.subjects, "the server refused the wake-up subscription; polling CONSUMER.INFO instead");
                    armed.subscription = None;
                    next_look = Instant::now().min(next_look);
                }
                let wake_at = armed
                    .settle_at
                    .map_or(next_look, |s| s.min(next_look))
                    .min(deadline);
                let woken = tokio::select! {
                    published = next_publish(&mut armed.subscription) => match published {
                        Some(()) => Woken::Publish,
                        None => Woken::SubscriptionEnded,
                    },
                    changed = armed.connects.changed(), if armed.watch_connects => match changed {
                        Ok(()) => Woken::Reconnected,
                        Err(_) => {
                            // The client is gone (cannot happen while this
                            // adapter holds it): stop watching.
                            armed.watch_connects = false;
                            Woken::Timer
                        }
                    },
                    () = tokio::time::sleep_until(wake_at) => Woken::Timer,
                };
                let now = Instant::now();
                let looks: &[Duration] = match woken {
                    Woken::Publish => {
                        drain(&mut armed.subscription);
                        &TRIGGER_RETRIES
                    }
                    Woken::SubscriptionEnded => {
                        tracing::warn!(uri = %self.uri, "the wake-up subscription ended; polling CONSUMER.INFO instead");
                        armed.subscription = None;
                        next_look = now;
                        continue;
                    }
                    Woken::Reconnected => &TRIGGER_RETRIES[..1],
                    Woken::Timer => {
                        if armed.settle_at.is_some_and(|s| s <= now) {
                            armed.settle_at = None;
                        }
                        if next_look <= now {
                            next_look = now
                                + if armed.subscription.is_some() {
                                    short_poll.max(Duration::from_secs(1))
                                } else {
                                    poll_interval
                                };
                        }
                        &TRIGGER_RETRIES[..1]
                    }
                };
                for &delay in looks {
                    if !delay.is_zero() {
                        if Instant::now() + delay >= deadline {
                            break;
                        }
                        tokio::time::sleep(delay).await;
                    }
                    let info = self.consumer_info().await?;
                    let filters = info.config.filters();
                    let snapshot = self.wake_snapshot(&info, arrival_rate)?;
                    if snapshot.messages() > 0 {
                        self.armed = None;
                        return Ok(snapshot);
                    }
                    if self.armed.as_ref().is_some_and(|a| a.filters != filters) {
                        tracing::info!(uri = %self.uri, ?filters, "the consumer's filter changed; subscribing again");
                        self.armed = None;
                        continue 'arm;
                    }
                    if Instant::now() >= deadline {
                        return Ok(snapshot);
                    }
                }
                if Instant::now() >= deadline {
                    // The last look was before the deadline: one more.
                    let info = self.consumer_info().await?;
                    let snapshot = self.wake_snapshot(&info, arrival_rate)?;
                    if snapshot.messages() > 0 {
                        self.armed = None;
                    }
                    return Ok(snapshot);
                }
            }
        }
    }

    fn wake_snapshot(
        &mut self,
        info: &ConsumerInfo,
        arrival_rate: bool,
    ) -> Result<QueueSnapshot, Error> {
        let rate = self.observe_rate(info, None, arrival_rate);
        answer::snapshot(info, self.config.idle_workers, rate, None)
    }

    /// Subscribes (or decides to poll) and looks at the consumer once;
    /// `Some` if it already shows a message.
    async fn arm(&mut self, arrival_rate: bool) -> Result<Option<QueueSnapshot>, Error> {
        let mut filters = self.filters.clone();
        loop {
            let wanted = match filters {
                Some(filters) => filters,
                None => {
                    let info = self.consumer_info().await?;
                    let snapshot = self.wake_snapshot(&info, arrival_rate)?;
                    if snapshot.messages() > 0 {
                        return Ok(Some(snapshot));
                    }
                    info.config.filters()
                }
            };
            self.subscribe_for(&wanted).await?;
            let info = self.consumer_info().await?;
            let snapshot = self.wake_snapshot(&info, arrival_rate)?;
            if snapshot.messages() > 0 {
                self.armed = None;
                return Ok(Some(snapshot));
            }
            let now = info.config.filters();
            if now == wanted {
                return Ok(None);
            }
            // Subscribed to the wrong subjects: again, with these.
            self.armed = None;
            filters = Some(now);
        }
    }

    /// Arms the wake-up for a consumer with these filters: a subscription
    /// to them (or to the stream's subjects), flushed, or polling.
    async fn subscribe_for(&mut self, filters: &[String]) -> Result<(), Error> {
        let connects = self.client.connects();
        let (subscription, subjects) = match self.config.wake_up {
            WakeUp::Poll => (None, Vec::new()),
            WakeUp::Subscribe => {
                let stream = self.client.stream_info().await?;
                let subjects = if filters.is_empty() {
                    stream.config.subjects.clone()
                } else {
                    filters.to_vec()
                };
                if stream.config.takes_other_streams() || subjects.is_empty() {
                    tracing::info!(uri = %self.uri, "the stream takes messages from other streams; the wake-up polls CONSUMER.INFO");
                    (None, Vec::new())
                } else {
                    let mut all = SelectAll::new();
                    for subject in &subjects {
                        all.push(self.client.subscribe(subject).await?);
                    }
                    self.client.flush().await?;
                    (Some(all), subjects)
                }
            }
        };
        self.armed = Some(Armed {
            subscription,
            subjects,
            filters: filters.to_vec(),
            connects,
            watch_connects: true,
            settle_at: Some(Instant::now() + SETTLE),
        });
        Ok(())
    }

    async fn poll_once(&mut self, request: PollRequest) -> Result<QueueSnapshot, Error> {
        if request.wake_up {
            return self
                .wake_up(request.long_poll, request.short_poll, request.arrival_rate)
                .await;
        }
        self.short_poll(request.arrival_rate, request.oldest_age)
            .await
    }
}

/// The next publish seen by the subscription (`None`: it ended); never
/// returns without one.
async fn next_publish(subscription: &mut Option<SelectAll<async_nats::Subscriber>>) -> Option<()> {
    match subscription {
        Some(all) => all.next().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// Takes every publish already buffered: one look covers them all.
fn drain(subscription: &mut Option<SelectAll<async_nats::Subscriber>>) {
    if let Some(all) = subscription {
        while let Some(Some(_)) = futures::FutureExt::now_or_never(all.next()) {}
    }
}

impl QueueSource for NatsQueue {
    type Error = Error;

    fn poll(
        &mut self,
        request: PollRequest,
    ) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        self.poll_once(request)
    }
}

/// A direct short poll per call (one `CONSUMER.INFO`; no wake-up, no
/// schedule): for a program that runs its own loop. The autoscaler itself
/// goes through the poller.
impl QueueMetrics for NatsQueue {
    type Error = Error;

    fn snapshot(&mut self) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        self.short_poll(false, false)
    }
}
