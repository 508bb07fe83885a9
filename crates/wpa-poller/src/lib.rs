//! Polling driver shared by the queue adapters (beanstalkd, SQS).
//!
//! An adapter implements [`QueueSource`]: one poll of one queue. When to
//! poll is [`Schedule`]'s: a pure state machine passed the time, which the
//! tokio driver here and the simulator (`wpa-sim`) both step.
//!
//! A [`Registry`] runs one poller task per distinct queue URI, however many
//! autoscalers ([`Subscription`]s) watch that queue. Each poll result is
//! published on a [`tokio::sync::watch`] channel; a subscriber's
//! [`Subscription::changed`] returns as soon as the snapshot differs from
//! the previous one, so a reconcile runs right away instead of at the next
//! resync. See [`PollerConfig`] for the schedule.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use wpa_core::{QueueMetrics, QueueSnapshot};

mod authority;
mod backoff;
mod clock;
mod rate;
mod redact;
mod schedule;
pub mod testing;

pub use authority::{HostPort, parse_port, split_host_port};
pub use backoff::{Backoff, Jitter, exponential_delay};
pub use clock::Clock;
pub use rate::ArrivalRate;
pub use redact::{REDACTED, redact_queue_uri, redact_uri};
pub use schedule::{Demand, Schedule, Time};

/// How the driver wants the next poll done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollRequest {
    /// The target runs 0 replicas and the last snapshot showed an empty
    /// queue: the source may block for up to `long_poll` waiting for the
    /// first message, and must return as soon as it sees one.
    pub wake_up: bool,
    /// The longest a wake-up poll may block (the `*-long-poll-interval`).
    pub long_poll: Duration,
    /// The short-poll interval (the `*-short-poll-interval`): a source
    /// that cannot block on the queue during a wake-up (SQS on a queue
    /// whose redrive policy forbids a probe) waits at most this long
    /// before it looks, so the first message is seen within one short
    /// poll.
    pub short_poll: Duration,
    /// A subscriber decides on the arrival rate (its spec sets
    /// `secondsToProcessOneJob`; see [`Subscription::set_needs_arrival_rate`]).
    /// A source that pays for measuring the rate (SQS: a CloudWatch call)
    /// measures it only then, as the reference does; one that measures it
    /// for free (beanstalkd) may ignore this.
    pub arrival_rate: bool,
    /// A subscriber decides on the oldest waiting message's age (the
    /// wait-target policy; see [`Subscription::set_needs_oldest_age`]). A
    /// source that can tell it cheaply (beanstalkd: `peek-ready` and
    /// `stats-job`, while jobs are ready) does so only then.
    pub oldest_age: bool,
}

/// One queue, polled by the driver.
pub trait QueueSource: Send + 'static {
    /// Why a poll failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Polls the queue once.
    fn poll(
        &mut self,
        request: PollRequest,
    ) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send;
}

/// The timing of one poller; the rules that use it are [`Schedule`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollerConfig {
    /// Interval of short polls. Default 20 s (the reference's).
    pub short_poll: Duration,
    /// Longest wait of a wake-up poll. Default 20 s (the reference's).
    pub long_poll: Duration,
    /// Age after which the last good snapshot is stale. Default 3 × short poll.
    pub stale_after: Duration,
    /// First retry delay after an error. Default 500 ms.
    pub error_backoff_initial: Duration,
    /// Largest retry delay. Default the short poll interval.
    pub error_backoff_max: Duration,
    /// Least time between the starts of two polls. Default 100 ms.
    pub min_poll_gap: Duration,
}

impl PollerConfig {
    /// The defaults for these poll intervals.
    #[must_use]
    pub fn new(short_poll: Duration, long_poll: Duration) -> Self {
        PollerConfig {
            short_poll,
            long_poll,
            stale_after: short_poll.saturating_mul(3),
            error_backoff_initial: Duration::from_millis(500)
                .min(short_poll.max(Duration::from_millis(1))),
            error_backoff_max: short_poll.max(Duration::from_millis(1)),
            min_poll_gap: Duration::from_millis(100),
        }
    }
}

impl Default for PollerConfig {
    fn default() -> Self {
        PollerConfig::new(Duration::from_secs(20), Duration::from_secs(20))
    }
}

/// What a poller last published.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// The last good snapshot, as polled (never marked stale here).
    pub snapshot: Option<QueueSnapshot>,
    /// When it was taken.
    pub polled_at: Option<Instant>,
    /// Whether it was already older than `stale_after` at the last poll.
    pub stale: bool,
    /// The error of the latest poll, if it failed.
    pub last_error: Option<Arc<str>>,
    /// Polls done so far.
    pub polls: u64,
}

impl Observation {
    /// The last good snapshot, marked stale when it is older than
    /// `stale_after` at `now` (or was at the last poll).
    #[must_use]
    pub fn current(&self, stale_after: Duration, now: Instant) -> Option<QueueSnapshot> {
        let snapshot = self.snapshot?;
        let old = self
            .polled_at
            .is_some_and(|at| now.saturating_duration_since(at) >= stale_after);
        Some(if self.stale || old {
            snapshot.marked_stale()
        } else {
            snapshot
        })
    }
}

/// Why a subscription has no snapshot to give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PollerError {
    /// No poll of the queue has succeeded yet.
    #[error("queue {uri} not polled successfully yet{}", last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotPolledYet {
        /// The queue (any password hidden).
        uri: String,
        /// Why the last poll failed, if one did.
        last_error: Option<Arc<str>>,
    },
    /// The poller task ended (its runtime is shutting down).
    #[error("the poller of queue {uri} stopped")]
    Stopped {
        /// The queue (any password hidden).
        uri: String,
    },
}

#[derive(Debug, Default)]
struct Subscribers {
    next_id: u64,
    /// Replicas per subscriber; `None` until told (counts as running).
    replicas: HashMap<u64, Option<u32>>,
    /// Subscribers that decide on the arrival rate.
    arrival_rate: HashSet<u64>,
    /// Subscribers that decide on the oldest message's age.
    oldest_age: HashSet<u64>,
    closed: bool,
}

impl Subscribers {
    fn all_at_zero(&self) -> bool {
        !self.replicas.is_empty() && self.replicas.values().all(|r| *r == Some(0))
    }
}

#[derive(Debug)]
struct Shared {
    uri: String,
    /// `uri` with any password hidden ([`redact_queue_uri`]): what logs and
    /// errors show.
    shown: String,
    config: PollerConfig,
    subscribers: Mutex<Subscribers>,
    nudge: Notify,
    tx: watch::Sender<Observation>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn closed(&self) -> bool {
        self.lock().closed
    }

    fn demand(&self) -> Demand {
        let subscribers = self.lock();
        Demand {
            all_at_zero: subscribers.all_at_zero(),
            arrival_rate: !subscribers.arrival_rate.is_empty(),
            oldest_age: !subscribers.oldest_age.is_empty(),
        }
    }
}

/// One poller per distinct queue URI, shared by its subscribers.
///
/// Cloning a registry shares it. A poller stops when its last subscription
/// is dropped; a later subscription to the same URI starts a new one.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pollers: Arc<Mutex<HashMap<String, Weak<Shared>>>>,
}

impl Registry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Registry::default()
    }

    /// Subscribes to `uri`, starting its poller (with `config` and the
    /// source from `make_source`) unless one already runs, in which case
    /// `make_source` is not called and the running poller's config stays.
    ///
    /// `replicas`: the subscriber's current replica count, if known (see
    /// [`Subscription::set_replicas`]).
    ///
    /// Must be called inside a tokio runtime: the poller is a spawned task.
    pub fn subscribe<S, E>(
        &self,
        uri: &str,
        config: PollerConfig,
        replicas: Option<u32>,
        make_source: impl FnOnce() -> Result<S, E>,
    ) -> Result<Subscription, E>
    where
        S: QueueSource,
    {
        let mut pollers = self.pollers.lock().unwrap_or_else(PoisonError::into_inner);
        pollers.retain(|_, poller| poller.strong_count() > 0);
        if let Some(shared) = pollers.get(uri).and_then(Weak::upgrade) {
            let mut subscribers = shared.lock();
            if !subscribers.closed {
                let id = subscribers.next_id;
                subscribers.next_id += 1;
                subscribers.replicas.insert(id, replicas);
                drop(subscribers);
                shared.nudge.notify_one();
                let rx = shared.tx.subscribe();
                return Ok(Subscription { shared, id, rx });
            }
        }
        let source = make_source()?;
        let (tx, rx) = watch::channel(Observation::default());
        let mut subscribers = Subscribers {
            next_id: 1,
            ..Subscribers::default()
        };
        subscribers.replicas.insert(0, replicas);
        let shared = Arc::new(Shared {
            uri: uri.to_owned(),
            shown: redact_queue_uri(uri).into_owned(),
            config,
            subscribers: Mutex::new(subscribers),
            nudge: Notify::new(),
            tx,
        });
        pollers.insert(uri.to_owned(), Arc::downgrade(&shared));
        tokio::spawn(run_poller(Arc::clone(&shared), source));
        Ok(Subscription { shared, id: 0, rx })
    }

    /// Pollers running now.
    #[must_use]
    pub fn pollers(&self) -> usize {
        let pollers = self.pollers.lock().unwrap_or_else(PoisonError::into_inner);
        pollers.values().filter(|p| p.strong_count() > 0).count()
    }
}

/// One autoscaler's view of a polled queue.
///
/// Dropping it unsubscribes; the poller stops with its last subscription.
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Shared>,
    id: u64,
    rx: watch::Receiver<Observation>,
}

impl Subscription {
    /// The queue URI as subscribed, password included: show
    /// [`redact_uri`] of it, never it.
    #[must_use]
    pub fn uri(&self) -> &str {
        &self.shared.uri
    }

    /// The poller's config.
    #[must_use]
    pub fn config(&self) -> PollerConfig {
        self.shared.config
    }

    /// Tells the poller how many replicas this subscriber's target runs:
    /// wake-up polls happen only while every subscriber runs 0.
    pub fn set_replicas(&self, replicas: u32) {
        let mut subscribers = self.shared.lock();
        let previous = subscribers.replicas.insert(self.id, Some(replicas));
        drop(subscribers);
        if previous != Some(Some(replicas)) {
            self.shared.nudge.notify_one();
        }
    }

    /// Tells the poller whether this subscriber decides on the arrival
    /// rate: polls ask for it ([`PollRequest::arrival_rate`]) while any
    /// subscriber does. The first subscriber to need it triggers a poll at
    /// once (after `min_poll_gap`), so the rate does not wait for the next
    /// short poll.
    pub fn set_needs_arrival_rate(&self, needed: bool) {
        let mut subscribers = self.shared.lock();
        let before = !subscribers.arrival_rate.is_empty();
        if needed {
            subscribers.arrival_rate.insert(self.id);
        } else {
            subscribers.arrival_rate.remove(&self.id);
        }
        let now_needed = !subscribers.arrival_rate.is_empty();
        drop(subscribers);
        if now_needed && !before {
            self.shared.nudge.notify_one();
        }
    }

    /// Tells the poller whether this subscriber decides on the oldest
    /// waiting message's age: polls ask for it ([`PollRequest::oldest_age`])
    /// while any subscriber does, from the next poll on.
    pub fn set_needs_oldest_age(&self, needed: bool) {
        let mut subscribers = self.shared.lock();
        if needed {
            subscribers.oldest_age.insert(self.id);
        } else {
            subscribers.oldest_age.remove(&self.id);
        }
    }

    /// The latest snapshot, marked stale when older than the bound; `None`
    /// before the first successful poll.
    #[must_use]
    pub fn latest(&self) -> Option<QueueSnapshot> {
        self.rx
            .borrow()
            .current(self.shared.config.stale_after, Instant::now())
    }

    /// When the latest good snapshot was polled, on the wall clock that
    /// reads `now` at this instant (`None` before the first good poll).
    /// The backlog's growth is measured between polls, not decisions
    /// ([`wpa_core::History::after`]).
    #[must_use]
    pub fn polled_at(&self, now: SystemTime) -> Option<SystemTime> {
        let polled = self.rx.borrow().polled_at?;
        let age = Instant::now().saturating_duration_since(polled);
        Some(now.checked_sub(age).unwrap_or(now))
    }

    /// Everything the poller last published.
    #[must_use]
    pub fn observation(&self) -> Observation {
        self.rx.borrow().clone()
    }

    /// Waits until the published snapshot changes (value or staleness).
    /// A change published before this call, and not yet seen through
    /// `changed`, returns at once.
    pub async fn changed(&mut self) -> Result<(), PollerError> {
        self.rx.changed().await.map_err(|_| PollerError::Stopped {
            uri: self.shared.shown.clone(),
        })?;
        self.rx.borrow_and_update();
        Ok(())
    }

    /// A handle that waits for the same changes as [`Subscription::changed`]
    /// without borrowing the subscription: for a task that only wakes a
    /// reconcile (the controller's `reconcile_on` stream), while the
    /// reconcile itself reads the subscription.
    #[must_use]
    pub fn changes(&self) -> Changes {
        let mut rx = self.rx.clone();
        rx.borrow_and_update();
        Changes {
            rx,
            uri: self.shared.shown.clone(),
        }
    }

    fn snapshot_now(&self) -> Result<QueueSnapshot, PollerError> {
        let observation = self.rx.borrow();
        observation
            .current(self.shared.config.stale_after, Instant::now())
            .ok_or_else(|| PollerError::NotPolledYet {
                uri: self.shared.shown.clone(),
                last_error: observation.last_error.clone(),
            })
    }
}

/// Waits for a poller's published snapshot to change: see
/// [`Subscription::changes`]. It does not keep the poller alive.
#[derive(Debug)]
pub struct Changes {
    rx: watch::Receiver<Observation>,
    uri: String,
}

impl Changes {
    /// Waits until the published snapshot changes (value or staleness);
    /// an error once the poller stopped.
    pub async fn changed(&mut self) -> Result<(), PollerError> {
        self.rx.changed().await.map_err(|_| PollerError::Stopped {
            uri: self.uri.clone(),
        })?;
        self.rx.borrow_and_update();
        Ok(())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subscribers = self.shared.lock();
        subscribers.replicas.remove(&self.id);
        subscribers.arrival_rate.remove(&self.id);
        subscribers.oldest_age.remove(&self.id);
        if subscribers.replicas.is_empty() {
            subscribers.closed = true;
        }
        drop(subscribers);
        self.shared.nudge.notify_one();
    }
}

/// The latest published snapshot (no I/O): what a reconcile step reads.
impl QueueMetrics for Subscription {
    type Error = PollerError;

    fn snapshot(&mut self) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        std::future::ready(self.snapshot_now())
    }
}

/// The tokio side of a [`Schedule`]: sleeps until the next poll is due,
/// polls, and publishes. Every decision about timing is the schedule's.
async fn run_poller<S: QueueSource>(shared: Arc<Shared>, mut source: S) {
    let epoch = Instant::now();
    let now = || Instant::now().saturating_duration_since(epoch);
    let mut schedule = Schedule::new(shared.config);
    let mut jitter = Jitter::new();
    tracing::debug!(uri = %shared.shown, "poller started");
    loop {
        if shared.closed() {
            break;
        }
        let request = schedule.start(now(), shared.demand());
        let result = if request.wake_up {
            let poll = source.poll(request);
            tokio::pin!(poll);
            loop {
                tokio::select! {
                    result = &mut poll => break Some(result),
                    () = shared.nudge.notified() => {
                        if shared.closed() || schedule.cancels_wake_up(shared.demand()) {
                            break None;
                        }
                    }
                }
            }
        } else {
            Some(source.poll(request).await)
        };
        let Some(result) = result else {
            tracing::debug!(uri = %shared.shown, "wake-up poll cancelled: replicas running");
            schedule.cancelled(now());
            continue;
        };
        match result {
            Ok(snapshot) => schedule.succeeded(now(), snapshot, shared.demand()),
            Err(error) => {
                schedule.failed(now(), jitter.next_unit());
                let stale = schedule.is_stale(now());
                let error = redact_uri(&error.to_string()).into_owned();
                tracing::warn!(uri = %shared.shown, %error, stale, "queue poll failed");
                publish(&shared, &schedule, epoch, stale, Some(error.into()));
            }
        }
        if !schedule.is_failing() {
            publish(&shared, &schedule, epoch, false, None);
        }
        loop {
            let due = epoch + schedule.next_poll();
            tokio::select! {
                () = tokio::time::sleep_until(due) => break,
                () = shared.nudge.notified() => {
                    if shared.closed() {
                        tracing::debug!(uri = %shared.shown, "poller stopped: no subscribers");
                        return;
                    }
                    schedule.demand_changed(now(), shared.demand());
                }
            }
        }
    }
    tracing::debug!(uri = %shared.shown, "poller stopped: no subscribers");
}

fn publish(
    shared: &Shared,
    schedule: &Schedule,
    epoch: Instant,
    stale: bool,
    error: Option<Arc<str>>,
) {
    let last_good = schedule.last_good();
    shared.tx.send_if_modified(|observation| {
        let snapshot = last_good.map(|(snapshot, _)| snapshot);
        let changed = observation.snapshot != snapshot || observation.stale != stale;
        observation.snapshot = snapshot;
        observation.polled_at = last_good.map(|(_, at)| epoch + at);
        observation.stale = stale;
        observation.last_error = error;
        observation.polls += 1;
        changed
    });
}
