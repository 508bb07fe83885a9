//! What the numbers Redis gives mean to the autoscaler, as pure functions
//! of those numbers and the time: the adapter ([`crate::RedisQueue`]) and
//! the simulator both call them.
//!
//! Each layout turns its replies into a [`Reading`] (waiting, in flight,
//! idleness, an arrivals counter, the oldest message's age);
//! [`snapshot`] turns a reading into a [`QueueSnapshot`]; [`ArrivalRate`]
//! turns successive counters into messages per minute.

use std::time::Duration;

use wpa_core::{Idleness, QueueSnapshot};

use crate::Error;
use crate::reply::{ConsumerInfo, GroupInfo, SidekiqProcess, StreamInfo};

/// A Sidekiq process whose last heartbeat is older than this is not
/// counted as an idle worker (Sidekiq beats every 10 s; its hash expires
/// after 60 s).
pub const SIDEKIQ_BEAT_STALE: Duration = Duration::from_secs(30);

/// What one poll read, in the autoscaler's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    /// Messages waiting for a worker.
    pub waiting: u64,
    /// Messages a worker holds and has not finished; `None` when the
    /// layout cannot see them (a plain list: `BRPOP` removes the message).
    pub in_flight: Option<u64>,
    /// What the queue says of its workers' idleness.
    pub idleness: Idleness,
    /// A counter of messages ever added, if the layout keeps one.
    pub added_total: Option<u64>,
    /// Age of the message a worker would get next, when asked and cheap.
    pub oldest_age: Option<Duration>,
}

/// The snapshot of one reading (`woke`: a wake-up poll just saw a message
/// arrive, so at least one is there even if the counts already moved on).
///
/// - messages = waiting + in flight (at least 1 after a wake-up);
/// - in flight as read;
/// - idleness as read (unknown after a wake-up);
/// - the arrival rate from [`ArrivalRate`], if known; the oldest age, if read.
pub fn snapshot(reading: &Reading, woke: bool, rate: Option<f64>) -> Result<QueueSnapshot, Error> {
    let in_flight = reading.in_flight.unwrap_or(0);
    let total = reading.waiting.saturating_add(in_flight);
    let messages = fit("waiting + in-flight messages", total)?;
    let mut snapshot = QueueSnapshot::new(if woke { messages.max(1) } else { messages })
        .with_idleness(if woke {
            Idleness::Unknown
        } else {
            reading.idleness
        });
    if reading.in_flight.is_some() {
        snapshot = snapshot.with_in_flight(fit("in-flight messages", in_flight)?);
    } else {
        // A plain list: what a worker took left the list.
        snapshot = snapshot.with_in_flight_uncounted();
    }
    if let Some(age) = reading.oldest_age {
        snapshot = snapshot.with_oldest_age(age);
    }
    Ok(match rate {
        // The meter only yields finite, non-negative rates.
        Some(rate) => snapshot.with_arrival_rate(rate).unwrap_or(snapshot),
        None => snapshot,
    })
}

fn fit(field: &'static str, value: u64) -> Result<u32, Error> {
    u32::try_from(value).map_err(|_| Error::TooLarge {
        field,
        value,
        max: u64::from(u32::MAX),
    })
}

fn count_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// A list (`LLEN`), with the `LLEN` of its processing lists if the URI
/// names any.
///
/// Without processing lists a worker's `BRPOP` removes the message: what
/// it holds is invisible, so in flight and idleness are unknown. With
/// them, in flight is their total, and an empty list with empty
/// processing lists means no worker holds anything: every worker is idle.
#[must_use]
pub fn list(waiting: u64, processing: Option<u64>) -> Reading {
    let idleness = match processing {
        Some(0) if waiting == 0 => Idleness::AllIdle,
        _ => Idleness::Unknown,
    };
    Reading {
        waiting,
        in_flight: processing,
        idleness,
        ..Reading::default()
    }
}

/// What was read of a stream and its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamState<'a> {
    /// `XINFO STREAM`; `None`: the stream does not exist.
    pub stream: Option<&'a StreamInfo>,
    /// The group from `XINFO GROUPS`; `None`: no such group.
    pub group: Option<&'a GroupInfo>,
    /// `XINFO CONSUMERS` of the group.
    pub consumers: &'a [ConsumerInfo],
    /// Entries after the group's last-delivered ID, counted with `XRANGE`
    /// (up to the URI's `lag-scan`) when Redis reports no lag.
    pub scanned: Option<u64>,
    /// The URI's `consumer-idle`: a consumer whose last read attempt is
    /// older is gone (Redis 7.2+ only).
    pub consumer_idle: Duration,
    /// Age of the first undelivered entry, if read.
    pub oldest_age: Option<Duration>,
}

/// A stream read by a consumer group.
///
/// - waiting: the group's `lag` (entries not delivered yet); when Redis
///   reports none, the entries counted after its last-delivered ID; with no
///   such group, every entry of the stream (as if the first worker created
///   it at `0`); a stream that does not exist is an empty queue;
/// - in flight: the group's `pending` (delivered, not acknowledged);
/// - idleness: with nothing waiting and nothing pending no consumer holds
///   work, so every worker is idle; otherwise, on Redis 7.2 and later
///   (consumers report `inactive`), the consumers holding nothing whose
///   last read attempt is within `consumer_idle`; on 7.0 unknown (its
///   `idle` field counts from the last *successful* read, so a live
///   consumer waiting for entries cannot be told from a dead one);
/// - arrivals: `entries-added` of `XINFO STREAM` (0 while the stream does
///   not exist).
#[must_use]
pub fn stream(state: &StreamState<'_>) -> Reading {
    let Some(stream) = state.stream else {
        // Nothing was ever added to a stream that does not exist.
        return Reading {
            idleness: Idleness::Idle(0),
            in_flight: Some(0),
            added_total: Some(0),
            ..Reading::default()
        };
    };
    let Some(group) = state.group else {
        return Reading {
            waiting: stream.length,
            in_flight: Some(0),
            idleness: Idleness::Unknown,
            added_total: stream.entries_added,
            oldest_age: state.oldest_age,
        };
    };
    let waiting = group.lag.or(state.scanned).unwrap_or(0);
    let idleness = if waiting == 0 && group.pending == 0 {
        Idleness::AllIdle
    } else if !state.consumers.is_empty() && state.consumers.iter().all(|c| c.inactive_ms.is_some())
    {
        let idle_ms = u64::try_from(state.consumer_idle.as_millis()).unwrap_or(u64::MAX);
        Idleness::Idle(count_u32(
            state
                .consumers
                .iter()
                .filter(|c| c.pending == 0 && c.idle_ms <= idle_ms)
                .count(),
        ))
    } else {
        Idleness::Unknown
    };
    Reading {
        waiting,
        in_flight: Some(group.pending),
        idleness,
        added_total: stream.entries_added,
        oldest_age: if waiting > 0 { state.oldest_age } else { None },
    }
}

/// Celery on kombu's Redis transport: waiting = the `LLEN` of the queue's
/// priority lists, in flight = `HLEN unacked` when counted (messages a
/// worker reserved, prefetched or, with `acks_late`, running; the hash is
/// shared by every queue of the database). Idleness unknown: a task that
/// runs without `acks_late` was acknowledged when it started.
#[must_use]
pub fn celery(waiting: u64, unacked: Option<u64>) -> Reading {
    Reading {
        waiting,
        in_flight: unacked,
        ..Reading::default()
    }
}

/// One Sidekiq process as read: its heartbeat hash (`None`: gone) and the
/// queue of each job it runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SidekiqWorker {
    /// `HMGET <identity> info busy beat`.
    pub process: Option<SidekiqProcess>,
    /// The `queue` of each value of `HVALS <identity>:work`.
    pub work_queues: Vec<String>,
}

/// Sidekiq: waiting = `LLEN queue:<name>`; in flight = the jobs of this
/// queue in the `<identity>:work` hashes of the processes still beating
/// (refreshed by each heartbeat, every 10 s); idle workers = the processes
/// that fetch from this queue, beat within [`SIDEKIQ_BEAT_STALE`] of
/// `now_unix_ms`, and run nothing (`busy` 0).
#[must_use]
pub fn sidekiq(waiting: u64, queue: &str, workers: &[SidekiqWorker], now_unix_ms: u64) -> Reading {
    let stale_ms = u64::try_from(SIDEKIQ_BEAT_STALE.as_millis()).unwrap_or(u64::MAX);
    let mut in_flight = 0_u64;
    let mut idle = 0_usize;
    for worker in workers {
        let Some(process) = &worker.process else {
            continue;
        };
        let in_queue = worker.work_queues.iter().filter(|q| *q == queue).count();
        in_flight = in_flight.saturating_add(u64::try_from(in_queue).unwrap_or(u64::MAX));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let beat_ms = (process.beat.max(0.0) * 1000.0) as u64;
        let fresh = now_unix_ms.saturating_sub(beat_ms) <= stale_ms;
        if fresh && process.busy == 0 && process.queues.iter().any(|q| q == queue) {
            idle += 1;
        }
    }
    Reading {
        waiting,
        in_flight: Some(in_flight),
        idleness: Idleness::Idle(count_u32(idle)),
        ..Reading::default()
    }
}

/// RQ: waiting = `LLEN rq:queue:<name>`; in flight = the jobs a worker
/// moved to `rq:queue:<name>:intermediate` and has not registered yet, plus
/// the unexpired entries of the started registry `rq:wip:<name>`; idle
/// workers = the workers registered for the queue (`rq:workers:<name>`)
/// whose hash says `state` `idle` (or `suspended`: holding nothing).
/// `worker_states`: each registered worker's `state` (`None`: its hash
/// expired).
#[must_use]
pub fn rq(
    waiting: u64,
    intermediate: u64,
    started: u64,
    worker_states: &[Option<String>],
) -> Reading {
    let idle = worker_states
        .iter()
        .filter(|state| matches!(state.as_deref(), Some("idle" | "suspended")))
        .count();
    Reading {
        waiting,
        in_flight: Some(intermediate.saturating_add(started)),
        idleness: Idleness::Idle(count_u32(idle)),
        ..Reading::default()
    }
}

/// The BullMQ counts read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BullmqCounts {
    /// `LLEN <prefix>:<queue>:wait`.
    pub wait: u64,
    /// `LLEN <prefix>:<queue>:paused` (older BullMQ keeps a paused
    /// queue's jobs there).
    pub paused: u64,
    /// `ZCARD <prefix>:<queue>:prioritized`.
    pub prioritized: u64,
    /// `LLEN <prefix>:<queue>:active`.
    pub active: u64,
    /// `GET <prefix>:<queue>:id`: BullMQ increments it for every job added.
    pub id: Option<u64>,
}

/// BullMQ: waiting = wait + paused + prioritized (delayed jobs are not
/// ready and do not count; a paused queue's jobs do, as in BullMQ's own
/// waiting count); in flight = active; every worker idle when all four are
/// empty (a job being processed is in `active`), unknown otherwise;
/// arrivals = the `id` counter (0 while it does not exist).
#[must_use]
pub fn bullmq(counts: &BullmqCounts) -> Reading {
    let waiting = counts
        .wait
        .saturating_add(counts.paused)
        .saturating_add(counts.prioritized);
    Reading {
        waiting,
        in_flight: Some(counts.active),
        idleness: if waiting == 0 && counts.active == 0 {
            Idleness::AllIdle
        } else {
            Idleness::Unknown
        },
        added_total: Some(counts.id.unwrap_or(0)),
        oldest_age: None,
    }
}

/// The age of a message stamped `stamp_unix_ms`, at `now_unix_ms` (zero
/// for a stamp in the future: clocks differ).
#[must_use]
pub fn age(now_unix_ms: u64, stamp_unix_ms: u64) -> Duration {
    Duration::from_millis(now_unix_ms.saturating_sub(stamp_unix_ms))
}

/// The arrival-rate meter, shared by every adapter and the simulator.
pub use wpa_poller::ArrivalRate;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::StreamId;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn lists_with_and_without_processing() {
        let plain = snapshot(&list(3, None), false, None).unwrap();
        assert_eq!(
            (plain.messages(), plain.in_flight(), plain.idleness()),
            (3, None, Idleness::Unknown)
        );
        assert!(
            plain.in_flight_uncounted(),
            "BRPOP took them out of the list"
        );
        let reliable = snapshot(&list(3, Some(2)), false, None).unwrap();
        assert_eq!((reliable.messages(), reliable.in_flight()), (5, Some(2)));
        assert!(!reliable.in_flight_uncounted());
        let empty = snapshot(&list(0, Some(0)), false, None).unwrap();
        assert_eq!(empty.idleness(), Idleness::AllIdle);
        let woke = snapshot(&list(0, Some(0)), true, None).unwrap();
        assert_eq!((woke.messages(), woke.idleness()), (1, Idleness::Unknown));
        assert!(snapshot(&list(u64::from(u32::MAX), Some(1)), false, None).is_err());
    }

    fn group(lag: Option<u64>, pending: u64) -> GroupInfo {
        GroupInfo {
            name: "g".into(),
            consumers: 2,
            pending,
            last_delivered_id: StreamId { ms: 1, seq: 0 },
            entries_read: Some(1),
            lag,
        }
    }

    fn consumer(pending: u64, idle_ms: u64, inactive_ms: Option<i64>) -> ConsumerInfo {
        ConsumerInfo {
            name: "c".into(),
            pending,
            idle_ms,
            inactive_ms,
        }
    }

    #[test]
    fn streams() {
        let info = StreamInfo {
            length: 10,
            entries_added: Some(42),
            ..StreamInfo::default()
        };
        let state = |group: Option<&GroupInfo>, consumers: &[ConsumerInfo]| {
            let state = StreamState {
                stream: Some(&info),
                group,
                consumers,
                scanned: Some(7),
                consumer_idle: 60 * S,
                oldest_age: Some(3 * S),
            };
            stream(&state)
        };
        let r = state(
            Some(&group(Some(4), 2)),
            &[consumer(2, 5, None), consumer(0, 5, None)],
        );
        assert_eq!(
            (r.waiting, r.in_flight, r.idleness),
            (4, Some(2), Idleness::Unknown),
            "7.0: unknown"
        );
        assert_eq!((r.added_total, r.oldest_age), (Some(42), Some(3 * S)));
        let r = state(
            Some(&group(Some(4), 2)),
            &[
                consumer(2, 5, Some(5)),
                consumer(0, 5, Some(-1)),
                consumer(0, 61_000, Some(-1)),
            ],
        );
        assert_eq!(
            r.idleness,
            Idleness::Idle(1),
            "7.2: live consumers holding nothing"
        );
        let r = state(Some(&group(None, 0)), &[]);
        assert_eq!(r.waiting, 7, "nil lag: the scanned count");
        let r = state(Some(&group(Some(0), 0)), &[consumer(0, 1, None)]);
        assert_eq!(
            (r.waiting, r.idleness, r.oldest_age),
            (0, Idleness::AllIdle, None)
        );
        let r = state(None, &[]);
        assert_eq!(
            (r.waiting, r.in_flight),
            (10, Some(0)),
            "no group: every entry waits"
        );
        let missing = stream(&StreamState {
            stream: None,
            group: None,
            consumers: &[],
            scanned: None,
            consumer_idle: 60 * S,
            oldest_age: None,
        });
        assert_eq!(
            (missing.waiting, missing.idleness, missing.added_total),
            (0, Idleness::Idle(0), Some(0))
        );
    }

    #[test]
    fn sidekiq_counts_this_queues_work_and_fresh_idle_processes() {
        let process = |queues: &[&str], busy, beat| SidekiqProcess {
            queues: queues.iter().map(|q| (*q).to_owned()).collect(),
            busy,
            beat,
        };
        let workers = [
            SidekiqWorker {
                process: Some(process(&["default", "mail"], 2, 1000.0)),
                work_queues: vec!["default".into(), "mail".into()],
            },
            SidekiqWorker {
                process: Some(process(&["default"], 0, 995.0)),
                work_queues: vec![],
            },
            // Beat 40 s ago: not counted idle.
            SidekiqWorker {
                process: Some(process(&["default"], 0, 960.0)),
                work_queues: vec![],
            },
            // Another queue only.
            SidekiqWorker {
                process: Some(process(&["mail"], 0, 1000.0)),
                work_queues: vec![],
            },
            SidekiqWorker::default(),
        ];
        let r = sidekiq(5, "default", &workers, 1_000_000);
        assert_eq!(
            (r.waiting, r.in_flight, r.idleness),
            (5, Some(1), Idleness::Idle(1))
        );
    }

    #[test]
    fn rq_and_bullmq() {
        let r = rq(
            2,
            1,
            3,
            &[
                Some("idle".into()),
                Some("busy".into()),
                None,
                Some("suspended".into()),
            ],
        );
        assert_eq!(
            (r.waiting, r.in_flight, r.idleness),
            (2, Some(4), Idleness::Idle(2))
        );
        let counts = BullmqCounts {
            wait: 1,
            paused: 2,
            prioritized: 3,
            active: 4,
            id: Some(99),
        };
        let r = bullmq(&counts);
        assert_eq!(
            (r.waiting, r.in_flight, r.idleness, r.added_total),
            (6, Some(4), Idleness::Unknown, Some(99))
        );
        let r = bullmq(&BullmqCounts::default());
        assert_eq!(r.idleness, Idleness::AllIdle);
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
        assert_eq!(rate.per_minute(), None);
    }

    #[test]
    fn ages() {
        assert_eq!(age(5000, 2000), 3 * S);
        assert_eq!(age(1000, 2000), Duration::ZERO);
    }
}
