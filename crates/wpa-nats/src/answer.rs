//! What a consumer's numbers mean to the autoscaler, as pure functions of
//! the API replies and the time: the adapter ([`crate::NatsQueue`]) and
//! the simulator both call them.
//!
//! | snapshot | from `CONSUMER.INFO` |
//! | --- | --- |
//! | messages | `num_pending` (not delivered yet) + `num_ack_pending` (delivered, not acknowledged) |
//! | in flight | `num_ack_pending` |
//! | idle workers | `num_waiting` (pull requests waiting), under [`IdleWorkers`]' rule; unknown for a push consumer |
//! | arrival rate | [`ArrivalRate`] over [`arrival_counter`] |
//! | oldest age | [`message_age`] of the first message not delivered yet (`STREAM.MSG.GET`) |

use std::time::{Duration, SystemTime};

use wpa_core::{Idleness, QueueSnapshot};

use crate::Error;
use crate::api::{ConsumerInfo, StreamInfo};

/// A time on the adapter's monotonic clock (the same type as
/// `wpa_poller::Time`: a [`Duration`] since an epoch of the caller's).
pub type Time = Duration;

/// When `num_waiting`, the pull requests waiting at the server, is taken
/// as the count of idle workers.
///
/// A pull worker that waits for work has a pull request open at the server
/// (`fetch`, `next`); a worker busy with a message holds it unacknowledged
/// (`num_ack_pending`). The count is exact when each worker has at most one
/// request open and opens it only once it holds nothing: a batch of 1,
/// fetched after the previous message was acknowledged. With larger
/// batches a request stays open until it is filled or expires, so a worker
/// busy with the first messages of a batch still has its request waiting;
/// and clients that pre-fetch (async-nats' `messages()` stream, nats.go's
/// `Consume`) keep one or two requests open per worker at all times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdleWorkers {
    /// `num_waiting` counts only while nothing is pending or in flight: no
    /// worker holds a message then, so every open request is an idle
    /// worker, whatever the batch size (one request per worker assumed).
    /// Otherwise unknown. What the reference's "all idle" rule needs, which
    /// only applies to an empty queue.
    #[default]
    WhenNothingHeld,
    /// Workers fetch one message at a time and ask for the next only after
    /// acknowledging: `num_waiting` is the exact count of idle workers at
    /// any time, also while others are busy.
    OneMessagePerFetch,
    /// Never report idleness (workers that keep several requests open).
    Never,
}

/// The idleness a consumer's reply shows, under `rule`. A push consumer's
/// `num_waiting` means nothing: unknown.
#[must_use]
pub fn idleness(info: &ConsumerInfo, rule: IdleWorkers) -> Idleness {
    if !info.config.is_pull() {
        return Idleness::Unknown;
    }
    let nothing_held = info.num_pending == 0 && info.num_ack_pending == 0;
    let counts = match rule {
        IdleWorkers::WhenNothingHeld => nothing_held,
        IdleWorkers::OneMessagePerFetch => true,
        IdleWorkers::Never => false,
    };
    match u32::try_from(info.num_waiting) {
        Ok(waiting) if counts => Idleness::Idle(waiting),
        _ => Idleness::Unknown,
    }
}

fn count(field: &'static str, value: u64) -> Result<u32, Error> {
    u32::try_from(value).map_err(|_| Error::TooLarge {
        field,
        value,
        max: u64::from(u32::MAX),
    })
}

/// The snapshot of one `CONSUMER.INFO` reply.
///
/// - messages = `num_pending` + `num_ack_pending` (an error past `u32::MAX`);
/// - in flight = `num_ack_pending`;
/// - idleness from [`idleness`];
/// - the arrival rate and the oldest message's age, if measured.
pub fn snapshot(
    info: &ConsumerInfo,
    rule: IdleWorkers,
    rate: Option<f64>,
    oldest_age: Option<Duration>,
) -> Result<QueueSnapshot, Error> {
    let messages = count(
        "num_pending + num_ack_pending",
        info.num_pending.saturating_add(info.num_ack_pending),
    )?;
    let in_flight = count("num_ack_pending", info.num_ack_pending)?;
    let snapshot = QueueSnapshot::new(messages)
        .with_in_flight(in_flight)
        .with_idleness(idleness(info, rule));
    let snapshot = match oldest_age {
        Some(age) => snapshot.with_oldest_age(age),
        None => snapshot,
    };
    Ok(match rate {
        // The meter only yields finite, non-negative rates.
        Some(rate) => snapshot.with_arrival_rate(rate).unwrap_or(snapshot),
        None => snapshot,
    })
}

/// Which monotonic counter measures arrivals for a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArrivalCounter {
    /// The consumer sees the whole stream (no subject filter): the stream's
    /// `state.last_seq` (one `STREAM.INFO`), which rises by one per message
    /// stored and never goes down, purges included.
    StreamLastSeq,
    /// The consumer filters subjects: the stream's counter would count the
    /// other subjects too, so `num_pending + delivered.consumer_seq`, free
    /// in every `CONSUMER.INFO`. A new matching message adds one to
    /// `num_pending`; a first delivery moves one from `num_pending` to
    /// `consumer_seq`. It also counts redeliveries (work to do again), and
    /// misses matching messages removed before their first delivery (age
    /// or size limits, purges), which lower it.
    ConsumerOffered,
}

/// The counter that measures this consumer's arrivals.
#[must_use]
pub fn arrival_counter(info: &ConsumerInfo) -> ArrivalCounter {
    if info.config.filters().is_empty() {
        ArrivalCounter::StreamLastSeq
    } else {
        ArrivalCounter::ConsumerOffered
    }
}

/// `num_pending + delivered.consumer_seq`: see
/// [`ArrivalCounter::ConsumerOffered`].
#[must_use]
pub fn consumer_offered(info: &ConsumerInfo) -> u64 {
    info.num_pending.saturating_add(info.delivered.consumer_seq)
}

/// The reading of `counter` from the replies at hand (`None` when the
/// stream's counter is needed and no `STREAM.INFO` was read).
#[must_use]
pub fn arrival_reading(
    counter: ArrivalCounter,
    consumer: &ConsumerInfo,
    stream: Option<&StreamInfo>,
) -> Option<u64> {
    match counter {
        ArrivalCounter::StreamLastSeq => stream.map(|s| s.state.last_seq),
        ArrivalCounter::ConsumerOffered => Some(consumer_offered(consumer)),
    }
}

/// How long ago the server stored a message (`stored`, the server's
/// clock) at `now` (this machine's clock): zero if the clocks disagree the
/// other way.
#[must_use]
pub fn message_age(stored: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(stored).unwrap_or_default()
}

/// The arrival-rate meter, shared by every adapter and the simulator.
pub use wpa_poller::ArrivalRate;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::{ConsumerConfig, SequencePair};

    const S: Duration = Duration::from_secs(1);

    fn info(pending: u64, ack_pending: u64, waiting: u64) -> ConsumerInfo {
        ConsumerInfo {
            stream_name: "S".into(),
            name: "C".into(),
            config: ConsumerConfig::default(),
            delivered: SequencePair::default(),
            ack_floor: SequencePair::default(),
            num_ack_pending: ack_pending,
            num_redelivered: 0,
            num_waiting: waiting,
            num_pending: pending,
            push_bound: false,
        }
    }

    #[test]
    fn messages_are_pending_plus_in_flight() {
        let s = snapshot(&info(3, 2, 0), IdleWorkers::default(), None, None).unwrap();
        assert_eq!((s.messages(), s.in_flight()), (5, Some(2)));
        assert_eq!(s.idleness(), Idleness::Unknown);
        let s = snapshot(&info(0, 0, 4), IdleWorkers::default(), Some(6.0), None).unwrap();
        assert_eq!((s.messages(), s.idleness()), (0, Idleness::Idle(4)));
        assert_eq!(s.messages_sent_per_minute(), Some(6.0));
        assert!(
            snapshot(
                &info(u64::from(u32::MAX), 1, 0),
                IdleWorkers::default(),
                None,
                None
            )
            .is_err()
        );
        assert!(
            snapshot(
                &info(u64::MAX, u64::MAX, 0),
                IdleWorkers::default(),
                None,
                None
            )
            .is_err()
        );
    }

    #[test]
    fn idleness_follows_the_rule_and_the_consumer_kind() {
        let busy = info(0, 2, 3);
        assert_eq!(
            idleness(&busy, IdleWorkers::WhenNothingHeld),
            Idleness::Unknown
        );
        assert_eq!(
            idleness(&busy, IdleWorkers::OneMessagePerFetch),
            Idleness::Idle(3)
        );
        assert_eq!(
            idleness(&info(0, 0, 3), IdleWorkers::Never),
            Idleness::Unknown
        );
        let mut push = info(0, 0, 0);
        push.config.deliver_subject = Some("deliver.here".into());
        assert_eq!(
            idleness(&push, IdleWorkers::WhenNothingHeld),
            Idleness::Unknown
        );
        push.config.deliver_subject = Some(String::new());
        assert_eq!(
            idleness(&push, IdleWorkers::WhenNothingHeld),
            Idleness::Idle(0)
        );
    }

    #[test]
    fn the_counter_depends_on_the_filter() {
        let mut consumer = info(4, 0, 0);
        consumer.delivered.consumer_seq = 10;
        assert_eq!(arrival_counter(&consumer), ArrivalCounter::StreamLastSeq);
        assert_eq!(
            arrival_reading(ArrivalCounter::StreamLastSeq, &consumer, None),
            None
        );
        consumer.config.filter_subject = Some("orders.new".into());
        assert_eq!(arrival_counter(&consumer), ArrivalCounter::ConsumerOffered);
        assert_eq!(
            arrival_reading(ArrivalCounter::ConsumerOffered, &consumer, None),
            Some(14)
        );
    }

    #[test]
    fn ages_never_go_negative() {
        let t = SystemTime::UNIX_EPOCH + 100 * S;
        assert_eq!(message_age(t, t + 3 * S), 3 * S);
        assert_eq!(message_age(t + 3 * S, t), Duration::ZERO);
    }

    #[test]
    fn the_rate_is_per_minute_over_the_window() {
        let mut rate = ArrivalRate::new(60 * S);
        rate.record(Duration::ZERO, 100);
        assert_eq!(rate.per_minute(), None, "one sample");
        rate.record(S, 103);
        assert_eq!(rate.per_minute(), Some(3.0));
        rate.record(20 * S, 110);
        rate.record(40 * S, 120);
        rate.record(60 * S, 130);
        assert_eq!(rate.per_minute(), Some(30.0));
        rate.record(80 * S, 150);
        assert_eq!(rate.per_minute(), Some(40.0));
        rate.record(100 * S, 5);
        assert_eq!(rate.per_minute(), None, "a counter that went down restarts");
        rate.record(110 * S, 6);
        rate.reset();
        assert_eq!(rate.per_minute(), None);
    }
}
