//! What a run measures: the scale events, the time series, and the
//! [`Outcome`] (wait percentiles, peak backlog, worker-seconds, drain time,
//! interrupted jobs), gathered tick by tick by a [`Recorder`].

use serde::Serialize;
use wpa_core::{QueueSnapshot, Rule};

use super::Applied;
use super::config::{Policy, SimConfig};
use super::world::{World, ticks};

/// One change of the Deployment's replicas by the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleEvent {
    /// Seconds from the start.
    pub time_s: f64,
    /// Replicas before.
    pub from: u32,
    /// Replicas after.
    pub to: u32,
    /// For the WPA: the rule of the core's decision.
    pub rule: Option<Rule>,
    /// For the WPA: the snapshot it decided on.
    pub snapshot: Option<QueueSnapshot>,
}

/// One point of the time series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds from the start.
    pub time_s: f64,
    /// Messages waiting (visible).
    pub backlog: u64,
    /// Requested replicas.
    pub replicas: u32,
    /// Workers ready to take jobs (idle or busy).
    pub ready: u64,
    /// Longest wait of a message taken since the previous point, seconds.
    pub wait_max_s: f64,
}

/// The measures of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The policy's name.
    pub policy: String,
    /// Simulated seconds per tick (waits are resolved to one tick).
    pub seconds_per_tick: f64,
    /// Messages that arrived.
    pub messages_arrived: u64,
    /// Jobs finished.
    pub messages_processed: u64,
    /// Messages waiting at the end (including redelivered ones).
    pub messages_waiting_at_end: u64,
    /// Jobs running, or interrupted and not yet visible again, at the end.
    pub messages_in_flight_at_end: u64,
    /// Median wait from arrival to first pick-up, seconds.
    pub wait_p50_s: f64,
    /// 95th percentile wait, seconds.
    pub wait_p95_s: f64,
    /// 99th percentile wait, seconds.
    pub wait_p99_s: f64,
    /// Longest wait, seconds.
    pub wait_max_s: f64,
    /// Most messages waiting at once.
    pub peak_backlog: u64,
    /// Pod-seconds paid for: starting, ready and terminating pods.
    pub worker_seconds: f64,
    /// Pod-seconds spent on jobs that finished: the work itself, the least
    /// any policy pays.
    pub busy_seconds: f64,
    /// Scale ups applied.
    pub scale_ups: u32,
    /// Scale downs applied.
    pub scale_downs: u32,
    /// Seconds from the start of the first burst until its backlog is
    /// drained: back to the pre-burst backlog plus one second of the base
    /// arrivals (0 if it never rose above that; `None`: no burst in the
    /// horizon, or not drained by its end).
    pub drain_after_burst_s: Option<f64>,
    /// Jobs killed by a scale down before they finished.
    pub interrupted_jobs: u64,
    /// Mean extra wait of an interrupted job's message, from the kill until
    /// a worker takes it again, seconds.
    pub redelivery_wait_mean_s: Option<f64>,
    /// Highest requested replica count.
    pub peak_replicas: u32,
    /// Replica changes, in order.
    #[serde(skip)]
    pub events: Vec<ScaleEvent>,
    /// The time series (empty unless `series_points` was set).
    #[serde(skip)]
    pub series: Vec<Sample>,
}

impl Outcome {
    /// Scale operations: ups plus downs.
    #[must_use]
    pub fn scale_operations(&self) -> u32 {
        self.scale_ups + self.scale_downs
    }
}

/// The measures taken during a run, turned into an [`Outcome`] at its end.
pub(super) struct Recorder {
    seconds_per_tick: f64,
    /// Ticks between time-series points (`u64::MAX`: no series).
    sample_every: u64,
    /// The first burst, `(start tick, end tick, base rate just before)`,
    /// whose drain time is measured.
    burst: Option<(u64, u64, f64)>,
    pre_burst_backlog: u64,
    burst_backlog_rose: bool,
    drain_ticks: Option<u64>,
    events: Vec<ScaleEvent>,
    series: Vec<Sample>,
    pod_ticks: u64,
    busy_ticks: u64,
    peak_backlog: u64,
    peak_replicas: u32,
}

impl Recorder {
    pub(super) fn new(
        config: &SimConfig,
        ticks_per_second: u64,
        horizon_ticks: u64,
        initial_replicas: u32,
    ) -> Self {
        let workload = &config.workload;
        let tps = ticks_per_second;
        let burst = workload
            .bursts(config.seed, config.horizon_s)
            .into_iter()
            .next()
            .filter(|&(start, _)| start < config.horizon_s)
            .map(|(start, end)| {
                (
                    ticks(start, tps),
                    ticks(end, tps),
                    workload.base_rate_at((start - 1.0).max(0.0)),
                )
            });
        let sample_every = if config.series_points == 0 {
            u64::MAX
        } else {
            (horizon_ticks / config.series_points as u64).max(1)
        };
        Recorder {
            seconds_per_tick: 1.0 / tps as f64,
            sample_every,
            burst,
            pre_burst_backlog: 0,
            burst_backlog_rose: false,
            drain_ticks: None,
            events: Vec::new(),
            series: Vec::new(),
            pod_ticks: 0,
            busy_ticks: 0,
            peak_backlog: 0,
            peak_replicas: initial_replicas,
        }
    }

    /// A replica change the policy applied at `time_s`.
    pub(super) fn scaled(&mut self, time_s: f64, from: u32, applied: Applied) {
        let Applied { to, rule, snapshot } = applied;
        self.events.push(ScaleEvent {
            time_s,
            from,
            to,
            rule,
            snapshot,
        });
        self.peak_replicas = self.peak_replicas.max(to);
    }

    /// The end of `tick`: worker-time, backlog, drain, time series.
    pub(super) fn tick(&mut self, tick: u64, now_s: f64, world: &mut World) {
        self.pod_ticks = self.pod_ticks.saturating_add(world.pods.count());
        self.busy_ticks = self.busy_ticks.saturating_add(world.pods.working());
        let backlog = world.visible();
        self.peak_backlog = self.peak_backlog.max(backlog);
        if let Some((start, end, base_rate)) = self.burst {
            // See `Outcome::drain_after_burst_s`.
            let threshold = self.pre_burst_backlog + base_rate.ceil() as u64;
            if tick < start {
                self.pre_burst_backlog = backlog;
            } else if self.drain_ticks.is_none() {
                if backlog > threshold {
                    self.burst_backlog_rose = true;
                } else if self.burst_backlog_rose {
                    self.drain_ticks = Some(tick - start);
                } else if tick >= end {
                    self.drain_ticks = Some(0);
                }
            }
        }
        if tick.is_multiple_of(self.sample_every) {
            self.series.push(Sample {
                time_s: now_s,
                backlog,
                replicas: world.replicas(),
                ready: world.ready(),
                wait_max_s: world.messages.take_window_wait_max() as f64 * self.seconds_per_tick,
            });
        }
    }

    /// The outcome of `policy` once `end_tick` ticks have run.
    pub(super) fn finish(self, policy: &Policy, world: &mut World, end_tick: u64) -> Outcome {
        world.messages.record_still_waiting(end_tick);
        let seconds_per_tick = self.seconds_per_tick;
        let waits = &world.messages.waits;
        let scale_ups = self.events.iter().filter(|e| e.to > e.from).count() as u32;
        let scale_downs = self.events.len() as u32 - scale_ups;
        Outcome {
            policy: policy.name().to_owned(),
            seconds_per_tick,
            messages_arrived: world.arrived,
            messages_processed: world.pods.processed,
            messages_waiting_at_end: world.visible(),
            messages_in_flight_at_end: world.not_visible(),
            wait_p50_s: waits.quantile(0.50) * seconds_per_tick,
            wait_p95_s: waits.quantile(0.95) * seconds_per_tick,
            wait_p99_s: waits.quantile(0.99) * seconds_per_tick,
            wait_max_s: waits.max() as f64 * seconds_per_tick,
            peak_backlog: self.peak_backlog,
            worker_seconds: self.pod_ticks as f64 * seconds_per_tick,
            busy_seconds: self.busy_ticks as f64 * seconds_per_tick,
            scale_ups,
            scale_downs,
            drain_after_burst_s: self.drain_ticks.map(|t| t as f64 * seconds_per_tick),
            interrupted_jobs: world.pods.interrupted,
            redelivery_wait_mean_s: world
                .messages
                .redelivery_wait_mean_ticks()
                .map(|mean| mean * seconds_per_tick),
            peak_replicas: self.peak_replicas,
            events: self.events,
            series: self.series,
        }
    }
}
