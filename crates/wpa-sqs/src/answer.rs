//! What SQS and CloudWatch answers mean to the autoscaler, as pure
//! functions of the answers: the adapter ([`crate::SqsQueue`]) and the
//! simulator (`wpa-sim`) both call them, so `simulate` models the adapter
//! that ships. No SDK types here: this module builds without the `client`
//! feature.

use std::time::Duration;

use wpa_core::{Idleness, QueueSnapshot};

/// The three counts of one GetQueueAttributes call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QueueCounts {
    /// `ApproximateNumberOfMessages`: visible, waiting for a worker.
    pub visible: u32,
    /// `ApproximateNumberOfMessagesNotVisible`: in flight.
    pub not_visible: u32,
    /// `ApproximateNumberOfMessagesDelayed`: not yet deliverable.
    pub delayed: u32,
}

/// One attribute count as SQS writes it (decimal text); counts are int32
/// in SQS, anything larger is clamped. `None`: not a count.
#[must_use]
pub fn parse_count(text: &str) -> Option<u32> {
    text.trim()
        .parse::<u64>()
        .ok()
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// The backlog the decision uses: visible + in flight, plus delayed when
/// opted in.
#[must_use]
pub fn backlog(counts: QueueCounts, count_delayed: bool) -> u32 {
    let messages = counts.visible.saturating_add(counts.not_visible);
    if count_delayed {
        messages.saturating_add(counts.delayed)
    } else {
        messages
    }
}

/// Whether the queue is empty enough for idleness to mean something
/// (nothing visible, nothing in flight): only then is CloudWatch asked.
#[must_use]
pub fn idleness_is_knowable(counts: QueueCounts) -> bool {
    counts.visible == 0 && counts.not_visible == 0
}

/// Idleness as the reference reads it: with messages visible or in
/// flight, or no CloudWatch answer, unknown; otherwise every worker is
/// idle when nothing was received over the idleness window, and none is
/// when something was.
#[must_use]
pub fn idleness(counts: QueueCounts, received_in_window: Option<f64>) -> Idleness {
    match received_in_window {
        Some(_) if !idleness_is_knowable(counts) => Idleness::Unknown,
        Some(received) if received <= 0.0 => Idleness::AllIdle,
        // The reference's 0 idle: not a count (`Idleness::NotAllIdle`).
        Some(_) => Idleness::NotAllIdle,
        None => Idleness::Unknown,
    }
}

/// Messages per minute from CloudWatch's per-period sums of
/// `NumberOfMessagesSent`: their mean, scaled from `period` to a minute
/// (0 without data points). With the default 60 s period this is exactly
/// the reference's value.
#[must_use]
pub fn sent_per_minute(sums: &[f64], period: Duration) -> f64 {
    let mean = if sums.is_empty() {
        0.0
    } else {
        sums.iter().sum::<f64>() / sums.len() as f64
    };
    let period_secs = period.as_secs().max(1);
    let per_minute = if period_secs == 60 {
        mean
    } else {
        mean * 60.0 / period_secs as f64
    };
    if per_minute.is_finite() && per_minute >= 0.0 {
        per_minute
    } else {
        0.0
    }
}

/// Messages received over the idleness window: the sum of the sums.
#[must_use]
pub fn received(sums: &[f64]) -> f64 {
    sums.iter().sum()
}

/// The core's snapshot of a poll; `in_flight` is the not-visible count
/// when the poll read the counts (not for a probe); `rate_window` is how
/// long a window the rate counts ([`crate::MetricWindow::length`]).
#[must_use]
pub fn snapshot(
    messages: u32,
    in_flight: Option<u32>,
    idleness: Idleness,
    rate: Option<f64>,
    rate_window: Duration,
) -> QueueSnapshot {
    let snapshot = QueueSnapshot::new(messages).with_idleness(idleness);
    let snapshot = match in_flight {
        Some(in_flight) => snapshot.with_in_flight(in_flight),
        None => snapshot,
    };
    match rate {
        // Only finite, non-negative rates reach here.
        Some(rate) => snapshot
            .with_arrival_rate(rate)
            .unwrap_or(snapshot)
            .with_arrival_rate_window(rate_window),
        None => snapshot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_carries_the_window_it_counts() {
        let window = crate::MetricWindow::ARRIVAL_RATE.length();
        assert_eq!(window, Duration::from_secs(300));
        let rated = snapshot(4, Some(1), Idleness::Unknown, Some(6.0), window);
        assert_eq!(rated.arrival_rate_window(), Some(window));
        let unrated = snapshot(4, Some(1), Idleness::Unknown, None, window);
        assert_eq!(unrated.arrival_rate_window(), None);
    }

    const EMPTY: QueueCounts = QueueCounts {
        visible: 0,
        not_visible: 0,
        delayed: 3,
    };

    #[test]
    fn backlog_and_counts() {
        let counts = QueueCounts {
            visible: 2,
            not_visible: 5,
            delayed: 4,
        };
        assert_eq!(backlog(counts, false), 7);
        assert_eq!(backlog(counts, true), 11);
        assert_eq!(parse_count(" 12 "), Some(12));
        assert_eq!(parse_count("99999999999"), Some(u32::MAX));
        assert_eq!(parse_count("-1"), None);
        assert_eq!(parse_count("x"), None);
    }

    #[test]
    fn idleness_as_the_reference_reads_it() {
        assert_eq!(idleness(EMPTY, Some(0.0)), Idleness::AllIdle);
        assert_eq!(idleness(EMPTY, Some(2.0)), Idleness::NotAllIdle);
        assert_eq!(Idleness::NotAllIdle.idle_workers(5), Some(0));
        assert_eq!(idleness(EMPTY, None), Idleness::Unknown);
        let busy = QueueCounts {
            not_visible: 1,
            ..EMPTY
        };
        assert_eq!(idleness(busy, Some(0.0)), Idleness::Unknown);
    }

    #[test]
    fn rates_per_minute() {
        assert_eq!(
            sent_per_minute(&[3.0, 6.0, 0.0, 9.0, 12.0], Duration::from_secs(60)),
            6.0
        );
        assert_eq!(sent_per_minute(&[], Duration::from_secs(60)), 0.0);
        assert_eq!(
            sent_per_minute(&[10.0, 20.0], Duration::from_secs(300)),
            3.0
        );
        assert_eq!(received(&[0.0, 2.0, 5.0]), 7.0);
    }
}
