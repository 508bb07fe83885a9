//! What a `stats-tube` answer means to the autoscaler, as pure functions
//! of the answer and the time: the adapter ([`crate::BeanstalkQueue`]) and
//! the simulator (`wpa-sim`) both call them, so `simulate` models the
//! adapter that ships.

use wpa_core::QueueSnapshot;

use crate::Error;
use crate::stats::TubeStats;

/// The snapshot of one `stats-tube` answer (`woke`: a wake-up poll just
/// reserved and released a job, so at least one message is there).
///
/// - messages = `current-jobs-ready` + `current-jobs-reserved` (at least
///   1 after a wake-up);
/// - idle workers = `current-waiting` when nothing is ready or reserved
///   (workers blocked in `reserve` are idle), unknown otherwise;
/// - the arrival rate as measured by [`ArrivalRate`], if known.
pub fn snapshot(stats: &TubeStats, woke: bool, rate: Option<f64>) -> Result<QueueSnapshot, Error> {
    let messages = stats.ready.saturating_add(stats.reserved);
    let messages = u32::try_from(messages).map_err(|_| Error::InvalidStat {
        field: "current-jobs-ready + current-jobs-reserved",
        value: messages.to_string(),
        max: u64::from(u32::MAX),
    })?;
    let idle = if stats.ready == 0 && stats.reserved == 0 && !woke {
        Some(
            u32::try_from(stats.waiting).map_err(|_| Error::InvalidStat {
                field: "current-waiting",
                value: stats.waiting.to_string(),
                max: u64::from(u32::MAX),
            })?,
        )
    } else {
        None
    };
    let snapshot =
        QueueSnapshot::new(if woke { messages.max(1) } else { messages }).with_idle_workers(idle);
    // Reserved jobs are held by workers (what the wait-target policy sizes
    // on); after a wake-up the count is not a fresh read.
    let snapshot = match u32::try_from(stats.reserved) {
        Ok(reserved) if !woke => snapshot.with_in_flight(reserved),
        _ => snapshot,
    };
    Ok(match rate {
        // The meter only yields finite, non-negative rates.
        Some(rate) => snapshot.with_arrival_rate(rate).unwrap_or(snapshot),
        None => snapshot,
    })
}

/// The arrival-rate meter, shared by every adapter and the simulator.
pub use wpa_poller::ArrivalRate;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wpa_core::Idleness;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn counts_ready_and_reserved_and_idle_only_when_empty() {
        let busy = TubeStats {
            ready: 3,
            reserved: 2,
            waiting: 4,
            ..TubeStats::default()
        };
        let s = snapshot(&busy, false, None).unwrap();
        assert_eq!((s.messages(), s.idleness()), (5, Idleness::Unknown));
        let empty = TubeStats {
            waiting: 4,
            ..TubeStats::default()
        };
        let s = snapshot(&empty, false, Some(6.0)).unwrap();
        assert_eq!((s.messages(), s.idleness()), (0, Idleness::Idle(4)));
        assert_eq!(s.messages_sent_per_minute(), Some(6.0));
        // After a wake-up the job is there even if stats lag behind.
        let s = snapshot(&empty, true, None).unwrap();
        assert_eq!((s.messages(), s.idleness()), (1, Idleness::Unknown));
        let huge = TubeStats {
            ready: u64::MAX,
            ..TubeStats::default()
        };
        assert!(snapshot(&huge, false, None).is_err());
    }

    #[test]
    fn the_rate_is_per_minute_over_the_window() {
        let mut rate = ArrivalRate::new(60 * S);
        rate.record(Duration::ZERO, 100);
        assert_eq!(rate.per_minute(), None, "one sample");
        // 3 jobs in 1 s reads as 3 per minute: no extrapolation.
        rate.record(S, 103);
        assert_eq!(rate.per_minute(), Some(3.0));
        rate.record(20 * S, 110);
        rate.record(40 * S, 120);
        rate.record(60 * S, 130);
        assert_eq!(rate.per_minute(), Some(30.0));
        rate.record(80 * S, 150);
        // Window [20, 80]: 40 jobs in 60 s.
        assert_eq!(rate.per_minute(), Some(40.0));
        // A counter that went down restarts the window.
        rate.record(100 * S, 5);
        assert_eq!(rate.per_minute(), None);
    }
}
