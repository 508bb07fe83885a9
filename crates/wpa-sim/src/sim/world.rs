//! The simulated world: the clock, the queue's message store, and the
//! Deployment's pods ([`super::pods`]), advanced one tick at a time.
//!
//! Nothing here is per message: messages are FIFO buckets of
//! `(arrival tick, count)`, so a tick costs O(1) amortised whatever the rate.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::histogram::WaitHistogram;

use super::config::{Backend, SimConfig};
use super::pods::Pods;

/// `seconds` as a whole number of ticks (rounded, never negative).
pub(super) fn ticks(seconds: f64, ticks_per_second: u64) -> u64 {
    (seconds * ticks_per_second as f64).round().max(0.0) as u64
}

/// The simulated wall clock at `tick`: a fixed epoch plus simulated time.
pub(super) fn clock(tick: u64, ticks_per_second: u64) -> SystemTime {
    wall_clock(
        Duration::from_secs(tick / ticks_per_second)
            + Duration::from_nanos((tick % ticks_per_second) * 1_000_000_000 / ticks_per_second),
    )
}

/// The simulated wall clock `since_start` into the run.
pub(super) fn wall_clock(since_start: Duration) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + since_start
}

/// The queue and the Deployment's pods.
pub(super) struct World {
    /// The current tick.
    pub(super) tick: u64,
    pub(super) ticks_per_second: u64,
    pub(super) messages: MessageStore,
    pub(super) pods: Pods,
    /// Messages that arrived.
    pub(super) arrived: u64,
    /// CloudWatch's `NumberOfMessagesSent`, per minute of simulated time.
    pub(super) sent_per_minute: Vec<u64>,
    /// CloudWatch's `NumberOfMessagesReceived`, per minute.
    pub(super) received_per_minute: Vec<u64>,
}

impl World {
    /// An empty queue and `initial` ready, idle pods.
    pub(super) fn new(config: &SimConfig, ticks_per_second: u64, initial: u32) -> Self {
        // beanstalkd and RabbitMQ give a dead worker's job back when its
        // connection closes; JetStream after its AckWait (30 s by default).
        // (A plain Redis list loses it: modelled as given back, so that every
        // scenario keeps its messages.)
        let redelivery_ticks = match config.backend {
            Backend::Sqs => ticks(config.visibility_timeout_s, ticks_per_second),
            Backend::Nats => ticks(30.0, ticks_per_second),
            Backend::Beanstalkd | Backend::RedisList | Backend::Rabbitmq => 0,
        };
        World {
            tick: 0,
            ticks_per_second,
            messages: MessageStore::new(redelivery_ticks),
            pods: Pods::new(config, ticks_per_second, initial),
            arrived: 0,
            sent_per_minute: Vec::new(),
            received_per_minute: Vec::new(),
        }
    }

    /// Requested replicas: starting, idle and busy pods.
    pub(super) fn replicas(&self) -> u32 {
        self.pods.replicas()
    }

    /// Workers ready to take jobs (idle or busy).
    pub(super) fn ready(&self) -> u64 {
        self.pods.ready()
    }

    /// Messages a receive could get now.
    pub(super) fn visible(&self) -> u64 {
        self.messages.visible()
    }

    /// Jobs held by a worker, or (SQS) interrupted and still invisible.
    pub(super) fn not_visible(&self) -> u64 {
        self.pods.holding_jobs() + self.messages.invisible()
    }

    fn minute(&self) -> usize {
        (self.tick / self.ticks_per_second / 60) as usize
    }

    fn count_minute(per_minute: &mut Vec<u64>, minute: usize, count: u64) {
        if per_minute.len() <= minute {
            per_minute.resize(minute + 1, 0);
        }
        per_minute[minute] += count;
    }

    /// Arrivals, pods becoming ready, jobs ending, kills, redeliveries.
    #[inline]
    pub(super) fn advance(&mut self, arrivals: u64) {
        let tick = self.tick;
        if arrivals > 0 {
            self.messages.arrive(tick, arrivals);
            self.arrived += arrivals;
            let minute = self.minute();
            Self::count_minute(&mut self.sent_per_minute, minute, arrivals);
        }
        let messages = &mut self.messages;
        self.pods
            .advance(tick, |killed| messages.requeue_interrupted(tick, killed));
        self.messages.release_due(tick);
    }

    /// Idle workers take messages: redelivered ones first, then FIFO.
    #[inline]
    pub(super) fn dispatch(&mut self) {
        let free = self.pods.idle;
        if free == 0 || self.visible() == 0 {
            return;
        }
        let taken = self.messages.take(self.tick, free);
        let minute = self.minute();
        Self::count_minute(&mut self.received_per_minute, minute, taken);
        self.pods.start_jobs(taken);
    }

    /// Sets the requested replicas as a Deployment would ([`Pods::scale_to`]),
    /// idle pods first when `idle_first`.
    pub(super) fn scale_to(&mut self, replicas: u32, idle_first: bool) {
        self.pods.scale_to(self.tick, replicas, idle_first);
    }

    /// Requested pods without a job: starting or idle.
    pub(super) fn pods_without_a_job(&self) -> u64 {
        self.pods.without_a_job()
    }
}

/// The queue's messages, visible or not, and the waits of those taken.
pub(super) struct MessageStore {
    /// Never taken yet: `(arrival tick, count)`, oldest first.
    fresh: VecDeque<(u64, u64)>,
    fresh_total: u64,
    /// An interrupted job's message, visible again: `(kill tick, count)`.
    redelivered: VecDeque<(u64, u64)>,
    redelivered_total: u64,
    /// (SQS) An interrupted job's message until its visibility timeout
    /// ends: `(visible tick, kill tick, count)`.
    invisible: VecDeque<(u64, u64, u64)>,
    invisible_total: u64,
    /// Ticks from a kill until the message is visible again (0: at once).
    redelivery_ticks: u64,
    /// Wait of each fresh message from arrival to first pick-up.
    pub(super) waits: WaitHistogram,
    /// Longest such wait since the last time-series point.
    window_wait_max: u64,
    /// Extra wait of redelivered messages, from the kill to the new pick-up.
    redelivery_wait_ticks: u64,
    redelivered_taken: u64,
}

impl MessageStore {
    fn new(redelivery_ticks: u64) -> Self {
        MessageStore {
            fresh: VecDeque::new(),
            fresh_total: 0,
            redelivered: VecDeque::new(),
            redelivered_total: 0,
            invisible: VecDeque::new(),
            invisible_total: 0,
            redelivery_ticks,
            waits: WaitHistogram::default(),
            window_wait_max: 0,
            redelivery_wait_ticks: 0,
            redelivered_taken: 0,
        }
    }

    pub(super) fn visible(&self) -> u64 {
        self.fresh_total + self.redelivered_total
    }

    /// The tick the oldest visible message arrived (a redelivered one: was
    /// released), if any.
    pub(super) fn oldest_tick(&self) -> Option<u64> {
        let fresh = self.fresh.front().map(|&(tick, _)| tick);
        let redelivered = self.redelivered.front().map(|&(tick, _)| tick);
        match (fresh, redelivered) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Interrupted jobs' messages not visible yet.
    pub(super) fn invisible(&self) -> u64 {
        self.invisible_total
    }

    #[inline]
    fn arrive(&mut self, tick: u64, count: u64) {
        self.fresh.push_back((tick, count));
        self.fresh_total += count;
    }

    /// The messages of `count` jobs killed at `tick`.
    #[inline]
    fn requeue_interrupted(&mut self, tick: u64, count: u64) {
        if self.redelivery_ticks == 0 {
            self.redelivered.push_back((tick, count));
            self.redelivered_total += count;
        } else {
            self.invisible
                .push_back((tick + self.redelivery_ticks, tick, count));
            self.invisible_total += count;
        }
    }

    /// Makes visible the messages whose visibility timeout has ended.
    #[inline]
    fn release_due(&mut self, tick: u64) {
        while let Some(&(visible_tick, killed_tick, count)) = self.invisible.front() {
            if visible_tick > tick {
                break;
            }
            self.invisible.pop_front();
            self.invisible_total -= count;
            self.redelivered.push_back((killed_tick, count));
            self.redelivered_total += count;
        }
    }

    /// Up to `free` workers take a message each, redelivered ones first,
    /// then fresh ones oldest first; returns how many were taken.
    #[inline]
    fn take(&mut self, tick: u64, mut free: u64) -> u64 {
        let mut taken = 0;
        while free > 0 {
            let Some(front) = self.redelivered.front_mut() else {
                break;
            };
            let n = front.1.min(free);
            self.redelivery_wait_ticks += (tick - front.0) * n;
            self.redelivered_taken += n;
            front.1 -= n;
            if front.1 == 0 {
                self.redelivered.pop_front();
            }
            self.redelivered_total -= n;
            free -= n;
            taken += n;
        }
        while free > 0 {
            let Some(front) = self.fresh.front_mut() else {
                break;
            };
            let n = front.1.min(free);
            let wait = tick - front.0;
            self.waits.record(wait, n);
            self.window_wait_max = self.window_wait_max.max(wait);
            front.1 -= n;
            if front.1 == 0 {
                self.fresh.pop_front();
            }
            self.fresh_total -= n;
            free -= n;
            taken += n;
        }
        taken
    }

    /// The longest wait since the previous call, in ticks.
    pub(super) fn take_window_wait_max(&mut self) -> u64 {
        std::mem::take(&mut self.window_wait_max)
    }

    /// Records the messages never taken with the wait they have had by
    /// `end_tick`, so a policy that never serves them cannot look fast.
    pub(super) fn record_still_waiting(&mut self, end_tick: u64) {
        for &(arrival, count) in &self.fresh {
            self.waits.record(end_tick - arrival, count);
        }
    }

    /// Mean extra wait of a redelivered message, in ticks (`None`: none).
    pub(super) fn redelivery_wait_mean_ticks(&self) -> Option<f64> {
        (self.redelivered_taken > 0)
            .then(|| self.redelivery_wait_ticks as f64 / self.redelivered_taken as f64)
    }
}
