//! The arrival rate of a queue from successive readings of a monotonic
//! counter of messages added, as a pure meter passed the time: beanstalkd's
//! `total-jobs`, a Redis stream's `entries-added`, RabbitMQ's `publish`,
//! JetStream's `last_seq`. The adapters and the simulator share it.

use std::collections::VecDeque;
use std::time::Duration;

use crate::Time;

/// Arrival rate from successive readings of a counter.
///
/// Every poll records `(when, counter)`. Samples are dropped from the
/// front as long as the next one is itself at least `window` old, so the
/// oldest sample kept is the newest one taken at least `window` ago (60 s
/// by default: 3 polls at the default 20 s interval). The rate is the
/// counter's rise from the oldest to the newest sample, per minute of
/// `max(span, window)`: over a full window it is the true average; before
/// that much history exists it counts nothing for the time not yet
/// observed, so that a burst seen over a few seconds is not extrapolated to
/// a whole minute (3 jobs in 1 s reads as 3 per minute, not 180). No rate
/// is reported before two samples. A counter that goes down (a tube, key or
/// queue dropped and created again) restarts the window.
#[derive(Debug, Clone)]
pub struct ArrivalRate {
    window: Duration,
    samples: VecDeque<(Time, u64)>,
}

impl ArrivalRate {
    /// An empty window.
    #[must_use]
    pub fn new(window: Duration) -> Self {
        ArrivalRate {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records a counter reading taken at `at` (any epoch, the same for
    /// every reading).
    pub fn record(&mut self, at: Time, counter: u64) {
        if let Some(&(last_at, last)) = self.samples.back()
            && (counter < last || at < last_at)
        {
            self.samples.clear();
        }
        self.samples.push_back((at, counter));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|&(second, _)| at.saturating_sub(second) >= self.window)
        {
            self.samples.pop_front();
        }
    }

    /// Forgets every sample (the counter went away).
    pub fn reset(&mut self) {
        self.samples.clear();
    }

    /// Messages per minute over the window, if known yet.
    #[must_use]
    pub fn per_minute(&self) -> Option<f64> {
        let (&(first_at, first), &(last_at, last)) = (self.samples.front()?, self.samples.back()?);
        if self.samples.len() < 2 {
            return None;
        }
        let span = last_at.saturating_sub(first_at).max(self.window);
        if span.is_zero() {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let risen = last.saturating_sub(first) as f64;
        Some(risen * 60.0 / span.as_secs_f64())
    }
}
