//! What RabbitMQ's answers mean to the autoscaler, as pure functions of the
//! answers and the time: the adapter ([`crate::RabbitQueue`]) and the
//! simulator both call them.
//!
//! Two sources, each with its strength:
//! - a passive `queue.declare` ([`DeclareOk`]) is exact at the moment it is
//!   answered, but gives only the ready messages and the consumer count;
//! - the management API ([`QueueStats`]) gives the unacknowledged messages,
//!   each consumer's acknowledgement mode and prefetch, the publish counter
//!   and the head message's timestamp, but as sampled by the server every
//!   `collect_statistics_interval` (5 s by default): a few seconds old.

use std::time::Duration;

use wpa_core::QueueSnapshot;

use crate::Error;
use crate::management::QueueStats;

/// What a passive `queue.declare` answered (`queue.declare-ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DeclareOk {
    /// `message-count`: messages ready for delivery (not the
    /// unacknowledged ones).
    pub ready: u32,
    /// `consumer-count`: consumers on the queue.
    pub consumers: u32,
}

/// The snapshot of one short poll: a passive declare and a management
/// queue object taken together.
///
/// - waiting = the larger of `messages_ready` (sampled) and the declare's
///   ready count (exact now): a message published since the sample is
///   counted, and one delivered since the sample is not lost before its
///   delivery shows as unacknowledged;
/// - in flight = `messages_unacknowledged`;
/// - messages = waiting + in flight. Without management counts (a queue
///   too new to have been sampled), messages = the declare's ready count
///   and in flight is unknown;
/// - idle workers: [`idle_consumers`] when `report_idle`, else unknown;
/// - the arrival rate and the oldest message's age as given (the age only
///   while messages wait).
pub fn snapshot(
    declare: DeclareOk,
    stats: &QueueStats,
    rate: Option<f64>,
    oldest_age: Option<Duration>,
    report_idle: bool,
) -> Result<QueueSnapshot, Error> {
    let waiting = stats.ready.unwrap_or(0).max(u64::from(declare.ready));
    let in_flight = match (stats.ready, stats.unacknowledged) {
        (Some(_), Some(unacknowledged)) => Some(unacknowledged),
        _ => None,
    };
    let messages = waiting.saturating_add(in_flight.unwrap_or(0));
    let messages = u32::try_from(messages).map_err(|_| Error::InvalidStat {
        field: "messages_ready + messages_unacknowledged",
        value: messages,
        max: u64::from(u32::MAX),
    })?;
    let mut snapshot = QueueSnapshot::new(messages);
    if let Some(in_flight) = in_flight {
        // At most `messages`, which fits.
        snapshot = snapshot.with_in_flight(u32::try_from(in_flight).unwrap_or(u32::MAX));
    } else {
        // queue.declare counts ready messages only.
        snapshot = snapshot.with_in_flight_uncounted();
    }
    let idle = if report_idle {
        idle_consumers(declare, stats)
    } else {
        None
    };
    snapshot = snapshot.with_idle_workers(idle);
    if let Some(age) = oldest_age
        && waiting > 0
    {
        snapshot = snapshot.with_oldest_age(age);
    }
    Ok(with_rate(snapshot, rate))
}

/// Consumers known to be waiting for a message, or `None` when that cannot
/// be told.
///
/// A consumer is idle when it holds no unacknowledged message while none is
/// ready. So a count is given only when
/// - no message is ready (per the sample and per the declare), and
/// - the management API lists exactly the consumers the declare counts,
///   every one acknowledging manually (one with automatic acknowledgement
///   may be busy with a message that already left the queue), and
/// - either no message is unacknowledged (all N consumers are idle), or
///   every consumer has a prefetch of 1, so that each unacknowledged
///   message is held by a different consumer: N - unacknowledged are idle.
///
/// With a larger prefetch and messages unacknowledged, one consumer may hold
/// several, and the count is unknown. It counts consumers: one per worker
/// pod is what makes it a count of idle workers. The unacknowledged count
/// is sampled, so a consumer that received a message within the last
/// statistics interval can still read as idle.
#[must_use]
pub fn idle_consumers(declare: DeclareOk, stats: &QueueStats) -> Option<u32> {
    if declare.ready > 0 || stats.ready != Some(0) {
        return None;
    }
    let unacknowledged = stats.unacknowledged?;
    let details = stats.consumer_details.as_ref()?;
    if details.len() != usize::try_from(declare.consumers).ok()? {
        return None;
    }
    if !details.iter().all(|c| c.ack_required == Some(true)) {
        return None;
    }
    if unacknowledged == 0 {
        return Some(declare.consumers);
    }
    if details.iter().all(|c| c.prefetch_count == Some(1)) {
        let held = u32::try_from(unacknowledged).unwrap_or(u32::MAX);
        return Some(declare.consumers.saturating_sub(held));
    }
    None
}

/// The snapshot of a queue that does not exist: empty, nothing in flight,
/// nobody consuming (as a beanstalkd tube that does not exist).
#[must_use]
pub fn missing_queue() -> QueueSnapshot {
    QueueSnapshot::new(0)
        .with_in_flight(0)
        .with_idle_workers(Some(0))
}

/// The snapshot of a wake-up poll that saw `declare.ready` messages ready:
/// at least one message, idleness and in flight unknown (the short poll
/// that follows counts the rest), the last rate known.
#[must_use]
pub fn woken(declare: DeclareOk, rate: Option<f64>) -> QueueSnapshot {
    with_rate(QueueSnapshot::new(declare.ready.max(1)), rate)
}

/// The age of the head message from its `timestamp` property (seconds since
/// the Unix epoch) and the time now (since the same epoch), in whole
/// seconds; 0 for a timestamp in the future (clocks disagree).
#[must_use]
pub fn oldest_age(head_timestamp: u64, now_since_epoch: Duration) -> Duration {
    Duration::from_secs(now_since_epoch.as_secs().saturating_sub(head_timestamp))
}

fn with_rate(snapshot: QueueSnapshot, rate: Option<f64>) -> QueueSnapshot {
    match rate {
        // The meter only yields finite, non-negative rates.
        Some(rate) => snapshot.with_arrival_rate(rate).unwrap_or(snapshot),
        None => snapshot,
    }
}

/// The arrival-rate meter, shared by every adapter and the simulator.
pub use wpa_poller::ArrivalRate;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::management::ConsumerDetails;
    use wpa_core::Idleness;

    const S: Duration = Duration::from_secs(1);

    fn consumer(prefetch: u64) -> ConsumerDetails {
        ConsumerDetails {
            ack_required: Some(true),
            prefetch_count: Some(prefetch),
            active: Some(true),
        }
    }

    fn stats(ready: u64, unacked: u64, consumers: Vec<ConsumerDetails>) -> QueueStats {
        QueueStats {
            ready: Some(ready),
            unacknowledged: Some(unacked),
            consumers: Some(consumers.len() as u64),
            consumer_details: Some(consumers),
            ..QueueStats::default()
        }
    }

    #[test]
    fn messages_are_waiting_plus_unacknowledged() {
        let declare = DeclareOk {
            ready: 3,
            consumers: 1,
        };
        let s = snapshot(declare, &stats(3, 2, vec![consumer(5)]), None, None, true).unwrap();
        assert_eq!((s.messages(), s.in_flight()), (5, Some(2)));
        assert_eq!(s.idleness(), Idleness::Unknown, "messages ready");
        // A message published since the sample counts.
        let fresh = DeclareOk {
            ready: 4,
            consumers: 1,
        };
        let s = snapshot(fresh, &stats(3, 2, vec![consumer(5)]), None, None, true).unwrap();
        assert_eq!((s.messages(), s.in_flight()), (6, Some(2)));
        assert!(!s.in_flight_uncounted());
        // One delivered since the sample is not lost.
        let taken = DeclareOk {
            ready: 2,
            consumers: 1,
        };
        let s = snapshot(taken, &stats(3, 2, vec![consumer(5)]), None, None, true).unwrap();
        assert_eq!(s.messages(), 5);
        // No sample yet: the declare alone.
        let s = snapshot(fresh, &QueueStats::default(), Some(6.0), None, true).unwrap();
        assert_eq!((s.messages(), s.in_flight()), (4, None));
        assert!(
            s.in_flight_uncounted(),
            "the declare counts ready messages only"
        );
        assert_eq!(s.idleness(), Idleness::Unknown);
        assert_eq!(s.messages_sent_per_minute(), Some(6.0));
        let huge = QueueStats {
            ready: Some(u64::from(u32::MAX)),
            unacknowledged: Some(1),
            ..QueueStats::default()
        };
        assert!(snapshot(declare, &huge, None, None, true).is_err());
    }

    #[test]
    fn idle_consumers_only_when_it_is_certain() {
        let three = |prefetch| vec![consumer(prefetch); 3];
        let declare = DeclareOk {
            ready: 0,
            consumers: 3,
        };
        assert_eq!(idle_consumers(declare, &stats(0, 0, three(10))), Some(3));
        assert_eq!(idle_consumers(declare, &stats(0, 1, three(1))), Some(2));
        assert_eq!(idle_consumers(declare, &stats(0, 5, three(1))), Some(0));
        assert_eq!(idle_consumers(declare, &stats(0, 1, three(2))), None);
        assert_eq!(idle_consumers(declare, &stats(1, 0, three(1))), None);
        let ready_now = DeclareOk {
            ready: 1,
            consumers: 3,
        };
        assert_eq!(idle_consumers(ready_now, &stats(0, 0, three(1))), None);
        let four = DeclareOk {
            ready: 0,
            consumers: 4,
        };
        assert_eq!(idle_consumers(four, &stats(0, 0, three(1))), None);
        let mut auto = three(1);
        auto[1].ack_required = Some(false);
        assert_eq!(idle_consumers(declare, &stats(0, 0, auto)), None);
        let none = DeclareOk::default();
        assert_eq!(idle_consumers(none, &stats(0, 0, Vec::new())), Some(0));
        let s = snapshot(declare, &stats(0, 0, three(1)), None, None, false).unwrap();
        assert_eq!(s.idleness(), Idleness::Unknown, "turned off");
    }

    #[test]
    fn wake_up_and_missing_queue() {
        let s = woken(DeclareOk::default(), Some(2.0));
        assert_eq!((s.messages(), s.idleness()), (1, Idleness::Unknown));
        assert_eq!(s.messages_sent_per_minute(), Some(2.0));
        assert_eq!(
            woken(
                DeclareOk {
                    ready: 7,
                    consumers: 0
                },
                None
            )
            .messages(),
            7
        );
        let s = missing_queue();
        assert_eq!(
            (s.messages(), s.in_flight(), s.idleness()),
            (0, Some(0), Idleness::Idle(0))
        );
    }

    #[test]
    fn the_oldest_age_only_while_messages_wait() {
        assert_eq!(oldest_age(100, 130 * S), 30 * S);
        assert_eq!(oldest_age(200, 130 * S), Duration::ZERO);
        let waiting = DeclareOk {
            ready: 1,
            consumers: 0,
        };
        let s = snapshot(waiting, &stats(1, 0, vec![]), None, Some(30 * S), true).unwrap();
        assert_eq!(s.oldest_age(), Some(30 * S));
        let s = snapshot(
            DeclareOk::default(),
            &stats(0, 1, vec![]),
            None,
            Some(30 * S),
            true,
        )
        .unwrap();
        assert_eq!(s.oldest_age(), None);
    }

    #[test]
    fn the_rate_is_per_minute_over_the_window() {
        let mut rate = ArrivalRate::new(60 * S);
        rate.record(Duration::ZERO, 100);
        assert_eq!(rate.per_minute(), None, "one sample");
        rate.record(S, 103);
        assert_eq!(rate.per_minute(), Some(3.0), "no extrapolation");
        rate.record(20 * S, 110);
        rate.record(40 * S, 120);
        rate.record(60 * S, 130);
        assert_eq!(rate.per_minute(), Some(30.0));
        rate.record(80 * S, 150);
        assert_eq!(rate.per_minute(), Some(40.0), "window [20, 80]");
        rate.record(100 * S, 5);
        assert_eq!(rate.per_minute(), None, "counter restarted");
        rate.record(120 * S, 10);
        rate.reset();
        assert_eq!(rate.per_minute(), None);
    }
}
