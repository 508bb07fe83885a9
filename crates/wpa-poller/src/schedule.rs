//! When to poll one queue: the whole schedule as a pure state machine,
//! passed the time (as governor's GCRA is passed its clock).
//!
//! The tokio driver ([`crate::Registry`]) and the simulator (`wpa-sim`)
//! step the same [`Schedule`], so `simulate` predicts the polls `run` and
//! `watch` make. Time is a [`Time`]: the distance from an epoch the caller
//! picks (the driver: the poller's start; the simulator: t = 0).
//!
//! The rules, top to bottom:
//! - one short poll every `short_poll`;
//! - while every subscriber runs 0 replicas and the last good snapshot
//!   showed an empty queue, wake-up polls back to back (the source blocks
//!   up to `long_poll` and returns on the first message), and a short
//!   poll right after one that saw a message, to count the whole backlog
//!   (an SQS probe receives only the first); a subscriber
//!   running replicas again cancels one in progress, and the last
//!   subscriber dropping to 0 brings the next poll forward to now;
//! - the arrival rate is asked for while a subscriber decides on it, and
//!   the first subscriber to need it brings the next poll forward;
//! - a failed poll is retried after a capped exponential backoff with
//!   jitter, and the poll after a failure is never a wake-up poll;
//! - the last good snapshot is stale once older than `stale_after`; a
//!   failing poller polls again in time to mark it stale on schedule;
//! - two polls never start less than `min_poll_gap` apart.

use std::time::Duration;

use wpa_core::QueueSnapshot;

use crate::backoff::exponential_delay;
use crate::{PollRequest, PollerConfig};

/// A point in time: the distance from the caller's epoch.
pub type Time = Duration;

/// What the subscribers of a queue want from its poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Demand {
    /// Every subscriber reports 0 replicas (none unknown).
    pub all_at_zero: bool,
    /// Some subscriber decides on the arrival rate.
    pub arrival_rate: bool,
    /// Some subscriber decides on the oldest message's age.
    pub oldest_age: bool,
}

/// The schedule of one poller: what the next poll asks, when it is due,
/// and what the subscribers are handed meanwhile.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    config: PollerConfig,
    /// The last good snapshot and when its poll ended.
    last_good: Option<(QueueSnapshot, Time)>,
    /// Failures since the last good poll (0: the last poll succeeded).
    failures: u32,
    /// When the poll in progress, or the last one, started.
    last_start: Option<Time>,
    /// Whether that poll asked for the arrival rate.
    last_asked_rate: bool,
    /// Whether that poll was a wake-up poll.
    last_woke: bool,
    /// When the next poll is due.
    next: Time,
}

impl Schedule {
    /// A schedule whose first poll is due at once (time 0).
    #[must_use]
    pub fn new(config: PollerConfig) -> Self {
        Schedule {
            config,
            last_good: None,
            failures: 0,
            last_start: None,
            last_asked_rate: false,
            last_woke: false,
            next: Duration::ZERO,
        }
    }

    /// The config it follows.
    #[must_use]
    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    /// When the next poll is due.
    #[must_use]
    pub fn next_poll(&self) -> Time {
        self.next
    }

    /// The request a poll starting now would make for `demand`.
    #[must_use]
    pub fn request(&self, demand: Demand) -> PollRequest {
        PollRequest {
            wake_up: self.wakes_up(demand),
            long_poll: self.config.long_poll,
            short_poll: self.config.short_poll,
            arrival_rate: demand.arrival_rate,
            oldest_age: demand.oldest_age,
        }
    }

    /// Records that a poll starts at `now`, and returns what it asks.
    pub fn start(&mut self, now: Time, demand: Demand) -> PollRequest {
        let request = self.request(demand);
        self.last_start = Some(now);
        self.last_asked_rate = request.arrival_rate;
        self.last_woke = request.wake_up;
        request
    }

    /// Whether a wake-up poll in progress must be given up for `demand`
    /// (a subscriber runs replicas again: short polls resume at once).
    #[must_use]
    pub fn cancels_wake_up(&self, demand: Demand) -> bool {
        !demand.all_at_zero
    }

    /// A wake-up poll was given up at `now`: the next poll is due at once.
    pub fn cancelled(&mut self, now: Time) {
        self.next = now;
    }

    /// The poll started last ended at `now` with `snapshot`.
    pub fn succeeded(&mut self, now: Time, snapshot: QueueSnapshot, demand: Demand) {
        self.failures = 0;
        self.last_good = Some((snapshot, now));
        let delay = if demand.all_at_zero && snapshot.messages() == 0 {
            // Still nothing to do at zero: wake up again at once.
            Duration::ZERO
        } else if self.last_woke && snapshot.messages() > 0 {
            // A wake-up poll may see only the first message (an SQS probe
            // receives one): count the whole backlog at once, not a short
            // poll later, so the scale up is sized for all of it.
            Duration::ZERO
        } else {
            self.config.short_poll
        };
        self.next = self.not_before(now.saturating_add(delay));
    }

    /// The poll started last failed at `now`; `jitter` is a uniform draw
    /// in [0, 1] that spreads the retry over [d/2, d].
    pub fn failed(&mut self, now: Time, jitter: f64) {
        let mut delay = exponential_delay(
            self.config.error_backoff_initial,
            self.config.error_backoff_max,
            self.failures,
            jitter,
        );
        self.failures = self.failures.saturating_add(1);
        if let Some(age) = self.age(now)
            && age < self.config.stale_after
        {
            // Poll again in time to mark the snapshot stale on schedule.
            delay = delay.min(self.config.stale_after - age);
        }
        self.next = self.not_before(now.saturating_add(delay));
    }

    /// The subscribers' demand changed at `now`, between polls: brings the
    /// next poll forward when the change calls for a look now (all dropped
    /// to zero, or the arrival rate is needed and the last poll skipped
    /// it). After a failure the backoff stands.
    pub fn demand_changed(&mut self, now: Time, demand: Demand) {
        if self.failures > 0 {
            return;
        }
        if demand.all_at_zero || (demand.arrival_rate && !self.last_asked_rate) {
            self.next = self.next.min(self.not_before(now));
        }
    }

    /// The last good snapshot, marked stale when it is older than
    /// `stale_after` at `now`; `None` before the first good poll.
    #[must_use]
    pub fn snapshot(&self, now: Time) -> Option<QueueSnapshot> {
        let (snapshot, _) = self.last_good?;
        Some(if self.is_stale(now) {
            snapshot.marked_stale()
        } else {
            snapshot
        })
    }

    /// Whether the last good snapshot is older than `stale_after` at `now`.
    #[must_use]
    pub fn is_stale(&self, now: Time) -> bool {
        self.age(now)
            .is_some_and(|age| age >= self.config.stale_after)
    }

    /// The last good snapshot as polled, and when, if any.
    #[must_use]
    pub fn last_good(&self) -> Option<(QueueSnapshot, Time)> {
        self.last_good
    }

    /// Whether the latest poll failed.
    #[must_use]
    pub fn is_failing(&self) -> bool {
        self.failures > 0
    }

    fn wakes_up(&self, demand: Demand) -> bool {
        self.failures == 0
            && demand.all_at_zero
            && self
                .last_good
                .is_some_and(|(snapshot, _)| snapshot.messages() == 0)
    }

    fn age(&self, now: Time) -> Option<Duration> {
        self.last_good.map(|(_, at)| now.saturating_sub(at))
    }

    /// `at`, or later if the last poll started less than `min_poll_gap`
    /// before it.
    fn not_before(&self, at: Time) -> Time {
        match self.last_start {
            Some(start) => at.max(start.saturating_add(self.config.min_poll_gap)),
            None => at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(1);

    fn config() -> PollerConfig {
        PollerConfig::new(20 * S, 20 * S)
    }

    const BUSY: Demand = Demand {
        all_at_zero: false,
        arrival_rate: false,
        oldest_age: false,
    };
    const AT_ZERO: Demand = Demand {
        all_at_zero: true,
        arrival_rate: false,
        oldest_age: false,
    };

    #[test]
    fn short_polls_every_interval() {
        let mut schedule = Schedule::new(config());
        assert_eq!(schedule.next_poll(), Duration::ZERO);
        let request = schedule.start(Duration::ZERO, BUSY);
        assert!(!request.wake_up);
        schedule.succeeded(S / 10, QueueSnapshot::new(4), BUSY);
        assert_eq!(schedule.next_poll(), S / 10 + 20 * S);
    }

    #[test]
    fn wake_up_polls_back_to_back_at_zero_on_an_empty_queue() {
        let mut schedule = Schedule::new(config());
        // The first poll is never a wake-up: nothing is known yet.
        assert!(!schedule.start(Duration::ZERO, AT_ZERO).wake_up);
        schedule.succeeded(S / 100, QueueSnapshot::new(0), AT_ZERO);
        // Not before the gap since the last start.
        assert_eq!(schedule.next_poll(), config().min_poll_gap);
        assert!(schedule.start(schedule.next_poll(), AT_ZERO).wake_up);
        // A wake-up that saw a message: a short poll at once counts the
        // whole backlog, then short polls every interval.
        schedule.succeeded(5 * S, QueueSnapshot::new(1), AT_ZERO);
        assert_eq!(schedule.next_poll(), 5 * S);
        let request = schedule.start(5 * S, AT_ZERO);
        assert!(!request.wake_up);
        schedule.succeeded(5 * S, QueueSnapshot::new(40), AT_ZERO);
        assert_eq!(schedule.next_poll(), 25 * S);
        assert!(schedule.cancels_wake_up(BUSY));
        assert!(!schedule.cancels_wake_up(AT_ZERO));
    }

    #[test]
    fn dropping_to_zero_and_needing_the_rate_bring_the_poll_forward() {
        let mut schedule = Schedule::new(config());
        schedule.start(Duration::ZERO, BUSY);
        schedule.succeeded(S, QueueSnapshot::new(0), BUSY);
        assert_eq!(schedule.next_poll(), 21 * S);
        schedule.demand_changed(3 * S, BUSY);
        assert_eq!(schedule.next_poll(), 21 * S, "nothing new");
        schedule.demand_changed(
            3 * S,
            Demand {
                arrival_rate: true,
                oldest_age: false,
                ..BUSY
            },
        );
        assert_eq!(
            schedule.next_poll(),
            3 * S,
            "the rate the last poll skipped"
        );
        let mut schedule = Schedule::new(config());
        schedule.start(Duration::ZERO, BUSY);
        schedule.succeeded(S, QueueSnapshot::new(0), BUSY);
        schedule.demand_changed(4 * S, AT_ZERO);
        assert_eq!(schedule.next_poll(), 4 * S);
        assert!(schedule.start(4 * S, AT_ZERO).wake_up);
    }

    #[test]
    fn failures_back_off_and_the_snapshot_goes_stale_on_time() {
        let mut schedule = Schedule::new(config());
        schedule.start(Duration::ZERO, AT_ZERO);
        schedule.succeeded(Duration::ZERO, QueueSnapshot::new(0), AT_ZERO);
        schedule.start(S, AT_ZERO);
        schedule.failed(S, 1.0);
        assert_eq!(schedule.next_poll(), S + config().error_backoff_initial);
        assert!(
            !schedule.request(AT_ZERO).wake_up,
            "no wake-up after a failure"
        );
        // While failing, dropping to zero does not cut the backoff short.
        let due = schedule.next_poll();
        schedule.demand_changed(S, AT_ZERO);
        assert_eq!(schedule.next_poll(), due);
        // Fail until stale: the retry lands on the stale bound.
        let mut now = S;
        for _ in 0..10 {
            now = schedule.next_poll();
            schedule.start(now, AT_ZERO);
            schedule.failed(now, 1.0);
        }
        assert!(schedule.is_stale(now), "{now:?}");
        assert!(schedule.snapshot(now).is_some_and(|s| s.is_stale()));
        assert!(schedule.snapshot(59 * S).is_some_and(|s| !s.is_stale()));
        assert!(schedule.snapshot(60 * S).is_some_and(|s| s.is_stale()));
    }

    proptest! {
        /// Whatever happens, two polls never start less than the gap
        /// apart, and the next poll is never later than a short poll (or
        /// the backoff cap) after the last event.
        #[test]
        fn polls_keep_the_gap_and_never_wait_longer_than_their_bound(
            events in prop::collection::vec((0..3u8, 0..50_000u64, 0..5u32, any::<bool>(), 0.0..=1.0f64), 1..60),
        ) {
            let config = PollerConfig::new(S * 2, S * 3);
            let mut schedule = Schedule::new(config);
            let mut now = Duration::ZERO;
            let mut last_start: Option<Duration> = None;
            for (kind, millis, messages, zero, jitter) in events {
                let demand = Demand { all_at_zero: zero, arrival_rate: false, oldest_age: false };
                now = now.max(schedule.next_poll());
                if let Some(last) = last_start {
                    prop_assert!(now >= last + config.min_poll_gap);
                }
                schedule.start(now, demand);
                last_start = Some(now);
                now += Duration::from_millis(millis % 4_000);
                match kind {
                    0 => schedule.failed(now, jitter),
                    _ => schedule.succeeded(now, QueueSnapshot::new(messages), demand),
                }
                let bound = config.short_poll.max(config.error_backoff_max) + config.min_poll_gap;
                prop_assert!(schedule.next_poll() <= now + bound);
            }
        }
    }
}
