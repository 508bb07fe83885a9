//! What a queue adapter reports: one observation of a queue.

use std::fmt;
use std::time::Duration;

use crate::Error;
use crate::spec::non_negative_finite;

/// One observation of a queue, as every adapter (SQS, beanstalkd, a
/// simulator) reports it. It carries no time: the caller knows when it was
/// taken.
///
/// ```
/// use wpa_core::QueueSnapshot;
///
/// let snapshot = QueueSnapshot::new(15)
///     .with_arrival_rate(120.0)?
///     .with_idle_workers(Some(0));
/// assert_eq!(snapshot.messages(), 15);
/// # Ok::<(), wpa_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueSnapshot {
    messages: u32,
    messages_sent_per_minute: Option<f64>,
    rate_window: Option<Duration>,
    idleness: Idleness,
    in_flight: Option<u32>,
    in_flight_uncounted: bool,
    oldest_age: Option<Duration>,
    stale: bool,
}

/// What a queue says about its workers' idleness.
///
/// A queue that counts its waiting consumers (beanstalkd's
/// `current-waiting`) gives a count; one that can only tell that nobody
/// received anything lately (SQS with CloudWatch) says every worker is
/// idle, however many run. The snapshot keeps what the queue said, and the
/// decision resolves it against the replicas it is given
/// ([`Idleness::idle_workers`]), so two autoscalers on one queue, scaling
/// different targets, each see their own count.
///
/// ```
/// use wpa_core::Idleness;
///
/// assert_eq!(Idleness::AllIdle.idle_workers(10), Some(10));
/// assert_eq!(Idleness::Idle(3).idle_workers(10), Some(3));
/// assert_eq!(Idleness::Unknown.idle_workers(10), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Idleness {
    /// The queue cannot tell (the reference's -1).
    #[default]
    Unknown,
    /// This many workers wait for a message.
    Idle(u32),
    /// Every worker is idle, however many run.
    AllIdle,
    /// Not every worker is idle, and how many are is not known (SQS:
    /// CloudWatch counted receives in its window). The reference reads it
    /// as 0 idle ([`Idleness::idle_workers`]); it is not a count
    /// ([`Idleness::counted_idle`]).
    NotAllIdle,
}

impl Idleness {
    /// `Some(n)` is a count, `None` unknown.
    #[must_use]
    pub const fn from_count(idle_workers: Option<u32>) -> Self {
        match idle_workers {
            Some(count) => Idleness::Idle(count),
            None => Idleness::Unknown,
        }
    }

    /// The idle workers among `current_replicas` (`None`: unknown).
    /// "Every worker idle" is `current_replicas`; a count is taken as the
    /// queue gave it (the reference compares it, it does not cap it).
    #[must_use]
    #[inline]
    pub const fn idle_workers(self, current_replicas: u32) -> Option<u32> {
        match self {
            Idleness::Unknown => None,
            Idleness::Idle(count) => Some(count),
            Idleness::AllIdle => Some(current_replicas),
            Idleness::NotAllIdle => Some(0),
        }
    }

    /// The idle workers among `current_replicas` where the queue counts
    /// them itself (beanstalkd's workers in `reserve`, or every worker):
    /// [`Idleness::NotAllIdle`] is `None` here, where
    /// [`Idleness::idle_workers`] reads it as the reference does.
    #[must_use]
    #[inline]
    pub const fn counted_idle(self, current_replicas: u32) -> Option<u32> {
        match self {
            Idleness::Unknown | Idleness::NotAllIdle => None,
            Idleness::Idle(count) => Some(count),
            Idleness::AllIdle => Some(current_replicas),
        }
    }
}

impl fmt::Display for Idleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Idleness::Unknown => f.write_str("idleness unknown"),
            Idleness::Idle(count) => write!(f, "{count} idle"),
            Idleness::AllIdle => f.write_str("every worker idle"),
            Idleness::NotAllIdle => f.write_str("not every worker idle"),
        }
    }
}

impl QueueSnapshot {
    /// A snapshot of `messages` visible plus in-flight messages, with the
    /// arrival rate and idle workers unknown.
    #[must_use]
    pub const fn new(messages: u32) -> Self {
        QueueSnapshot {
            messages,
            messages_sent_per_minute: None,
            rate_window: None,
            idleness: Idleness::Unknown,
            in_flight: None,
            in_flight_uncounted: false,
            oldest_age: None,
            stale: false,
        }
    }

    /// Builds a snapshot from the reference's signed encoding, as found in
    /// logs, tests and the `decide` command: `messages` -1 means "not polled
    /// yet" ([`Error::QueueNotSynced`]), `idle_workers` -1 or `None` means
    /// unknown, an absent rate is unknown. Anything else negative, NaN or
    /// infinite is an error naming the field.
    pub fn from_signed(
        messages: i64,
        messages_sent_per_minute: Option<f64>,
        idle_workers: Option<i64>,
    ) -> Result<Self, Error> {
        let messages = match messages {
            -1 => return Err(Error::QueueNotSynced),
            value => count("queueMessages", value)?,
        };
        let idle_workers = match idle_workers {
            None | Some(-1) => None,
            Some(value) => Some(count("idleWorkers", value)?),
        };
        let mut snapshot = QueueSnapshot::new(messages).with_idle_workers(idle_workers);
        if let Some(rate) = messages_sent_per_minute {
            snapshot = snapshot.with_arrival_rate(rate)?;
        }
        Ok(snapshot)
    }

    /// Sets the arrival rate in messages per minute; NaN, infinite or
    /// negative rates are refused.
    pub fn with_arrival_rate(mut self, messages_sent_per_minute: f64) -> Result<Self, Error> {
        self.messages_sent_per_minute = Some(non_negative_finite(
            "messagesSentPerMinute",
            Some(messages_sent_per_minute),
        )?);
        Ok(self)
    }

    /// Sets how many seconds of arrivals the rate counts (SQS: CloudWatch's
    /// five one-minute datapoints). Its Poisson noise sets the wait-target
    /// policy's scale-down band; without it the band assumes
    /// [`crate::wait_target::RATE_SAMPLE_S`]. A zero window is unknown.
    #[must_use]
    pub const fn with_arrival_rate_window(mut self, window: Duration) -> Self {
        self.rate_window = if window.is_zero() { None } else { Some(window) };
        self
    }

    /// Sets the number of workers known to be idle (`None`: unknown).
    #[must_use]
    pub const fn with_idle_workers(mut self, idle_workers: Option<u32>) -> Self {
        self.idleness = Idleness::from_count(idle_workers);
        self
    }

    /// Sets what the queue says about idleness.
    #[must_use]
    pub const fn with_idleness(mut self, idleness: Idleness) -> Self {
        self.idleness = idleness;
        self
    }

    /// Sets how many of the messages are in flight (received by a worker,
    /// not yet deleted): SQS's not-visible count, beanstalkd's reserved
    /// jobs. Capped at the message count.
    #[must_use]
    pub const fn with_in_flight(mut self, in_flight: u32) -> Self {
        self.in_flight = Some(if in_flight < self.messages {
            in_flight
        } else {
            self.messages
        });
        self
    }

    /// Says that the messages workers hold are neither in the count nor
    /// counted apart: a plain Redis list, whose `BRPOP` removes the message
    /// it hands out, or a RabbitMQ queue read without the management API.
    /// The count is then of waiting messages only, and the wait-target
    /// policy knows of no pod that it may remove without a `busyProbe`.
    /// An in-flight count, if set, wins.
    #[must_use]
    pub const fn with_in_flight_uncounted(mut self) -> Self {
        self.in_flight_uncounted = true;
        self
    }

    /// Whether the messages workers hold are outside the count and
    /// uncounted ([`QueueSnapshot::with_in_flight_uncounted`]); false when
    /// an in-flight count is known.
    #[must_use]
    pub const fn in_flight_uncounted(&self) -> bool {
        self.in_flight_uncounted && self.in_flight.is_none()
    }

    /// Sets the age of the oldest message waiting for a worker.
    #[must_use]
    pub const fn with_oldest_age(mut self, age: Duration) -> Self {
        self.oldest_age = Some(age);
        self
    }

    /// Messages in flight, if the adapter reports them apart.
    #[must_use]
    pub const fn in_flight(&self) -> Option<u32> {
        self.in_flight
    }

    /// Age of the oldest waiting message, if the queue tells it.
    #[must_use]
    pub const fn oldest_age(&self) -> Option<Duration> {
        self.oldest_age
    }

    /// Marks the snapshot as stale: the adapter could not refresh it within
    /// its bound. A stale snapshot never causes a scale down.
    #[must_use]
    pub const fn marked_stale(mut self) -> Self {
        self.stale = true;
        self
    }

    /// Visible plus in-flight messages.
    #[must_use]
    pub const fn messages(&self) -> u32 {
        self.messages
    }

    /// Arrival rate in messages per minute, if the adapter measures it.
    #[must_use]
    pub const fn messages_sent_per_minute(&self) -> Option<f64> {
        self.messages_sent_per_minute
    }

    /// Seconds of arrivals the rate counts, if the adapter says
    /// ([`QueueSnapshot::with_arrival_rate_window`]).
    #[must_use]
    pub const fn arrival_rate_window(&self) -> Option<Duration> {
        self.rate_window
    }

    /// What the queue says about its workers' idleness.
    #[must_use]
    pub const fn idleness(&self) -> Idleness {
        self.idleness
    }

    /// Idle workers among `current_replicas`, if the queue can tell
    /// ([`Idleness::idle_workers`]).
    #[must_use]
    pub const fn idle_workers(&self, current_replicas: u32) -> Option<u32> {
        self.idleness.idle_workers(current_replicas)
    }

    /// Whether the adapter marked this snapshot as stale.
    #[must_use]
    pub const fn is_stale(&self) -> bool {
        self.stale
    }
}

fn count(field: &'static str, value: i64) -> Result<u32, Error> {
    if value < 0 {
        return Err(Error::Negative { field, value });
    }
    u32::try_from(value).map_err(|_| Error::TooLarge {
        field,
        value,
        max: i64::from(u32::MAX),
    })
}
