//! The time-stepped simulation: a queue, a Deployment of workers, the
//! adapters' view of the queue, and one autoscaling policy.
//!
//! Nothing is simulated per message. Messages are FIFO buckets of
//! `(arrival tick, count)`, busy workers a calendar of counts keyed by the
//! tick their job ends, waits a histogram; a tick costs O(1) amortised
//! whatever the message rate (see the README for the approximations).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use wpa_core::{Idleness, QueueMetrics, QueueSnapshot, Rule, ScaleTarget, TargetReplicas, WpaSpec};

use crate::error::{SimError, invalid};
use crate::histogram::WaitHistogram;
use crate::policy::{HpaModel, HpaSettings, KedaModel, KedaSettings};
use crate::service::ServiceSampler;
use crate::workload::{ArrivalGenerator, Workload};

/// Which queue the workers read, and so what the WPA's adapter can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Amazon SQS: counts by short poll, arrival rate and idleness from
    /// CloudWatch windows in the past.
    Sqs,
    /// beanstalkd: real-time counts from `stats-tube`, idle workers from
    /// `current-waiting`, no arrival rate.
    Beanstalkd,
}

/// The WPA controller's and adapters' timing (the reference's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdapterTiming {
    /// `--resync-period`: how often the controller decides (20 s).
    pub resync_s: f64,
    /// When in each resync period the controller runs, after the poller
    /// (10 s: the two loops are independent; half a period on average).
    pub resync_offset_s: f64,
    /// `--sqs-short-poll-interval` / `--beanstalk-short-poll-interval` (20 s).
    pub short_poll_s: f64,
    /// `--sqs-long-poll-interval` / `--beanstalk-long-poll-interval` (20 s).
    pub long_poll_s: f64,
    /// How long a CloudWatch answer is cached (60 s).
    pub cloudwatch_cache_s: f64,
}

impl Default for AdapterTiming {
    fn default() -> Self {
        AdapterTiming {
            resync_s: 20.0,
            resync_offset_s: 10.0,
            short_poll_s: 20.0,
            long_poll_s: 20.0,
            cloudwatch_cache_s: 60.0,
        }
    }
}

/// Everything about a run except the policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimConfig {
    /// Arrivals and service times.
    pub workload: Workload,
    /// Simulated seconds.
    pub horizon_s: f64,
    /// Seed of every random draw: same seed, same result.
    pub seed: u64,
    /// The queue service.
    pub backend: Backend,
    /// Seconds from a scale up until a new pod takes jobs (30 s).
    pub startup_delay_s: f64,
    /// `terminationGracePeriodSeconds` (30 s): a removed busy worker
    /// finishes its job if it can within this, else the job is interrupted.
    pub grace_period_s: f64,
    /// SQS visibility timeout (30 s): an interrupted job's message becomes
    /// visible again this long after the kill. On beanstalkd the closed
    /// connection releases the job at once, whatever this says.
    pub visibility_timeout_s: f64,
    /// Ready workers at the start; `None`: enough for the rate at time 0
    /// (`ceil(rate * mean service time)`), within the policy's bounds.
    pub initial_replicas: Option<u32>,
    /// WPA controller and adapter timing.
    pub adapter: AdapterTiming,
    /// Points of the time series kept for plots (0: none).
    pub series_points: usize,
}

impl SimConfig {
    /// A configuration with the defaults above.
    #[must_use]
    pub fn new(workload: Workload, horizon_s: f64, seed: u64) -> Self {
        SimConfig {
            workload,
            horizon_s,
            seed,
            backend: Backend::Sqs,
            startup_delay_s: 30.0,
            grace_period_s: 30.0,
            visibility_timeout_s: 30.0,
            initial_replicas: None,
            adapter: AdapterTiming::default(),
            series_points: 0,
        }
    }

    /// Checks the workload and every time.
    pub fn validate(&self) -> Result<(), SimError> {
        self.workload.validate()?;
        if !(self.horizon_s.is_finite()
            && self.horizon_s >= 1.0
            && self.horizon_s <= 366.0 * 86_400.0)
        {
            return Err(invalid(
                "horizon",
                format!("must be between 1 s and 366 days, got {} s", self.horizon_s),
            ));
        }
        let times = [
            ("startup delay", self.startup_delay_s),
            ("grace period", self.grace_period_s),
            ("visibility timeout", self.visibility_timeout_s),
            ("resync offset", self.adapter.resync_offset_s),
            ("CloudWatch cache", self.adapter.cloudwatch_cache_s),
        ];
        for (what, value) in times {
            if !(value.is_finite() && (0.0..=86_400.0).contains(&value)) {
                return Err(invalid(
                    what,
                    format!("must be between 0 and 86400 s, got {value}"),
                ));
            }
        }
        let periods = [
            ("resync period", self.adapter.resync_s),
            ("short poll interval", self.adapter.short_poll_s),
            ("long poll interval", self.adapter.long_poll_s),
        ];
        for (what, value) in periods {
            if !(value.is_finite() && (0.001..=86_400.0).contains(&value)) {
                return Err(invalid(
                    what,
                    format!("must be between 0.001 and 86400 s, got {value}"),
                ));
            }
        }
        Ok(())
    }
}

/// An autoscaling policy to simulate.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// The WPA: the core's `reconcile` with this spec and
    /// `--scale-down-delay-after-last-scale-activity`.
    Wpa {
        /// The WorkerPodAutoScaler spec.
        spec: WpaSpec,
        /// Scale-down delay after the last scale activity (600 s).
        scale_down_delay: Duration,
    },
    /// An HPA on the queue length as an external AverageValue metric.
    Hpa(HpaSettings),
    /// KEDA's queue scaler with its HPA.
    Keda(KedaSettings),
}

impl Policy {
    /// A short name for tables: `WPA`, `HPA` or `KEDA`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Wpa { .. } => "WPA",
            Policy::Hpa(_) => "HPA",
            Policy::Keda(_) => "KEDA",
        }
    }

    /// The WPA with `spec` and the reference's default delay, then the HPA-
    /// and KEDA-style baselines a user would configure for the same workers.
    #[must_use]
    pub fn comparison(spec: &WpaSpec) -> [Policy; 3] {
        [
            Policy::Wpa {
                spec: *spec,
                scale_down_delay: wpa_core::DEFAULT_SCALE_DOWN_DELAY,
            },
            Policy::Hpa(HpaSettings::like_wpa(spec)),
            Policy::Keda(KedaSettings::like_wpa(spec)),
        ]
    }

    fn bounds(&self) -> (u32, u32) {
        match self {
            Policy::Wpa { spec, .. } => (spec.min_replicas(), spec.max_replicas()),
            Policy::Hpa(hpa) => (hpa.min_replicas, hpa.max_replicas),
            Policy::Keda(keda) => (keda.min_replica_count, keda.hpa.max_replicas),
        }
    }
}

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

/// Runs the future of an always-ready simulated adapter: one poll with a
/// no-op waker, no runtime.
fn run_ready<F: Future>(future: F) -> Result<F::Output, SimError> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err(SimError::NotReady),
    }
}

/// A calendar of counts per future tick: index 0 is the next tick.
#[derive(Debug, Default)]
struct Calendar {
    slots: VecDeque<u64>,
    total: u64,
}

impl Calendar {
    /// Adds `count` at `offset` ticks from now (>= 1).
    #[inline]
    fn add(&mut self, offset: u32, count: u64) {
        let index = offset.max(1) as usize - 1;
        if self.slots.len() <= index {
            self.slots.resize(index + 1, 0);
        }
        self.slots[index] += count;
        self.total += count;
    }

    /// Takes what is due this tick.
    #[inline]
    fn pop_due(&mut self) -> u64 {
        let due = self.slots.pop_front().unwrap_or(0);
        self.total -= due;
        due
    }
}

/// The queue and the Deployment's pods.
struct World {
    tick: u64,
    ticks_per_second: u64,
    // Queue.
    fresh: VecDeque<(u64, u64)>,
    fresh_total: u64,
    redelivered: VecDeque<(u64, u64)>,
    redelivered_total: u64,
    invisible: VecDeque<(u64, u64, u64)>,
    invisible_total: u64,
    // Pods.
    starting: VecDeque<(u64, u64)>,
    starting_total: u64,
    idle: u64,
    busy: Calendar,
    draining: Calendar,
    doomed: VecDeque<(u64, u64)>,
    doomed_total: u64,
    // Settings in ticks.
    startup_ticks: u64,
    grace_ticks: u64,
    redelivery_ticks: u64,
    sampler: ServiceSampler,
    service_rng: StdRng,
    removal_rng: StdRng,
    // Counters.
    arrived: u64,
    processed: u64,
    interrupted: u64,
    redelivery_wait_ticks: u64,
    redelivered_taken: u64,
    sent_per_minute: Vec<u64>,
    received_per_minute: Vec<u64>,
    waits: WaitHistogram,
    window_wait_max: u64,
}

impl World {
    fn replicas(&self) -> u32 {
        u32::try_from(self.starting_total + self.idle + self.busy.total).unwrap_or(u32::MAX)
    }

    fn ready(&self) -> u64 {
        self.idle + self.busy.total
    }

    fn visible(&self) -> u64 {
        self.fresh_total + self.redelivered_total
    }

    /// Jobs held by a worker, or (SQS) interrupted and still invisible.
    fn not_visible(&self) -> u64 {
        self.busy.total + self.draining.total + self.doomed_total + self.invisible_total
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
    fn advance(&mut self, arrivals: u64) {
        let tick = self.tick;
        if arrivals > 0 {
            self.fresh.push_back((tick, arrivals));
            self.fresh_total += arrivals;
            self.arrived += arrivals;
            let minute = self.minute();
            Self::count_minute(&mut self.sent_per_minute, minute, arrivals);
        }
        while let Some(&(ready_tick, count)) = self.starting.front() {
            if ready_tick > tick {
                break;
            }
            self.starting.pop_front();
            self.starting_total -= count;
            self.idle += count;
        }
        let finished = self.busy.pop_due();
        self.idle += finished;
        self.processed += finished + self.draining.pop_due();
        while let Some(&(kill_tick, count)) = self.doomed.front() {
            if kill_tick > tick {
                break;
            }
            self.doomed.pop_front();
            self.doomed_total -= count;
            self.interrupted += count;
            if self.redelivery_ticks == 0 {
                self.redelivered.push_back((tick, count));
                self.redelivered_total += count;
            } else {
                self.invisible
                    .push_back((tick + self.redelivery_ticks, tick, count));
                self.invisible_total += count;
            }
        }
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

    /// Idle workers take messages: redelivered ones first, then FIFO.
    #[inline]
    fn dispatch(&mut self) {
        let mut free = self.idle;
        if free == 0 || self.visible() == 0 {
            return;
        }
        let tick = self.tick;
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
        self.idle -= taken;
        let minute = self.minute();
        Self::count_minute(&mut self.received_per_minute, minute, taken);
        let busy = &mut self.busy;
        self.sampler
            .schedule(taken, &mut self.service_rng, |offset, n| {
                busy.add(offset, n)
            });
    }

    /// Sets the requested replicas as a Deployment would: new pods start
    /// (ready after the start-up delay); removed pods are the not-yet-ready
    /// newest first, then ready ones picked without regard to whether they
    /// are busy (the ReplicaSet controller cannot know).
    fn scale_to(&mut self, replicas: u32) {
        let current = self.replicas();
        let replicas = u64::from(replicas);
        let current64 = u64::from(current);
        if replicas > current64 {
            let added = replicas - current64;
            self.starting
                .push_back((self.tick + self.startup_ticks.max(1), added));
            self.starting_total += added;
            return;
        }
        let mut to_remove = current64 - replicas;
        while to_remove > 0 {
            let Some(newest) = self.starting.back_mut() else {
                break;
            };
            let n = newest.1.min(to_remove);
            newest.1 -= n;
            if newest.1 == 0 {
                self.starting.pop_back();
            }
            self.starting_total -= n;
            to_remove -= n;
        }
        if to_remove == 0 {
            return;
        }
        // Selection sampling (Knuth's algorithm S) over the ready pods,
        // busy ones (by job end) then idle ones: each is equally likely to go.
        let mut population = self.ready();
        let grace = self.grace_ticks;
        let kill_tick = self.tick + grace;
        for index in 0..self.busy.slots.len() {
            if to_remove == 0 {
                break;
            }
            let in_slot = self.busy.slots[index];
            let chosen = choose(
                &mut self.removal_rng,
                in_slot,
                &mut population,
                &mut to_remove,
            );
            if chosen == 0 {
                continue;
            }
            self.busy.slots[index] -= chosen;
            self.busy.total -= chosen;
            let ticks_left = index as u64 + 1;
            if ticks_left <= grace {
                // Finishes its job within the grace period, then exits.
                self.draining.add(ticks_left as u32, chosen);
            } else {
                self.doomed.push_back((kill_tick, chosen));
                self.doomed_total += chosen;
            }
        }
        let idle_removed = to_remove.min(self.idle);
        self.idle -= idle_removed;
    }

    fn pod_count(&self) -> u64 {
        self.starting_total + self.idle + self.busy.total + self.draining.total + self.doomed_total
    }
}

/// How many of the next `in_slot` items selection sampling picks when
/// `needed` of `population` remain to be picked.
fn choose(rng: &mut StdRng, in_slot: u64, population: &mut u64, needed: &mut u64) -> u64 {
    let mut chosen = 0;
    for _ in 0..in_slot {
        if *needed == 0 {
            break;
        }
        if *needed >= *population || rng.random_range(0..*population) < *needed {
            chosen += 1;
            *needed -= 1;
        }
        *population -= 1;
    }
    chosen
}

/// What the WPA's queue adapter last reported, served to `reconcile`.
struct CachedSnapshot(QueueSnapshot);

impl QueueMetrics for CachedSnapshot {
    type Error = std::convert::Infallible;

    fn snapshot(&mut self) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        std::future::ready(Ok(self.0))
    }
}

/// The simulated Deployment as the WPA's scale target.
struct SimulatedDeployment<'a>(&'a mut World);

impl ScaleTarget for SimulatedDeployment<'_> {
    type Error = std::convert::Infallible;

    fn replicas(&mut self) -> impl Future<Output = Result<TargetReplicas, Self::Error>> + Send {
        let available = u32::try_from(self.0.ready()).unwrap_or(u32::MAX);
        std::future::ready(Ok(TargetReplicas {
            current: self.0.replicas(),
            available,
        }))
    }

    fn apply(&mut self, replicas: u32) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.0.scale_to(replicas);
        std::future::ready(Ok(()))
    }
}

/// The WPA's queue poller, modelled on the reference's adapters.
struct Poller {
    backend: Backend,
    measures_rate: bool,
    ticks_per_second: u64,
    short_ticks: u64,
    long_ticks: u64,
    cache_ticks: u64,
    next_poll: u64,
    long_poll_until: Option<u64>,
    last: Option<QueueSnapshot>,
    rate: Option<(u64, f64)>,
    received: Option<(u64, u64)>,
    /// Messages per minute assumed before the start (a warm queue).
    history_per_minute: u64,
}

impl Poller {
    /// Runs the poller's work due this tick (after dispatch: what a poll
    /// sees is what no worker could take).
    fn step(&mut self, world: &World) {
        let tick = world.tick;
        if let Some(until) = self.long_poll_until {
            // A long poll returns as soon as a message is visible; the
            // poller then short-polls at once.
            if world.visible() > 0 {
                self.long_poll_until = None;
                self.short_poll(world);
            } else if tick >= until {
                self.long_poll_until = None;
                let previous = self.last.unwrap_or(QueueSnapshot::new(0));
                self.last = Some(
                    QueueSnapshot::new(0)
                        .with_arrival_rate(previous.messages_sent_per_minute().unwrap_or(0.0))
                        .unwrap_or(QueueSnapshot::new(0)),
                );
                self.next_poll = tick;
            }
            return;
        }
        if tick < self.next_poll {
            return;
        }
        let messages = self.last.map(|s| s.messages());
        let rate = self.last.and_then(|s| s.messages_sent_per_minute());
        let at_zero = world.replicas() == 0 && messages == Some(0);
        let long_poll = match self.backend {
            // The reference's rate stays -1 without secondsToProcessOneJob,
            // so this path needs the rate measured and zero.
            Backend::Sqs => at_zero && rate == Some(0.0),
            Backend::Beanstalkd => at_zero,
        };
        if long_poll {
            self.long_poll_until = Some(tick + self.long_ticks);
            if world.visible() > 0 {
                self.long_poll_until = None;
                self.short_poll(world);
            }
        } else {
            self.short_poll(world);
        }
    }

    fn short_poll(&mut self, world: &World) {
        let tick = world.tick;
        self.next_poll = tick + self.short_ticks;
        let visible = world.visible();
        let snapshot = match self.backend {
            Backend::Sqs => {
                let not_visible = world.not_visible();
                let messages = clamp_u32(visible + not_visible);
                let mut snapshot = QueueSnapshot::new(messages);
                if self.measures_rate {
                    let rate = self.arrival_rate(world);
                    snapshot = snapshot.with_arrival_rate(rate).unwrap_or(snapshot);
                }
                // As the SQS adapter reports it: "every worker idle" is
                // data, resolved by the decision against its replicas.
                let idle = if visible > 0 || not_visible > 0 {
                    Idleness::Unknown
                } else if self.received_long_ago(world) == 0 {
                    Idleness::AllIdle
                } else {
                    Idleness::Idle(0)
                };
                snapshot.with_idleness(idle)
            }
            Backend::Beanstalkd => {
                let reserved = world.not_visible();
                let idle = if visible > 0 || reserved > 0 {
                    None
                } else {
                    Some(clamp_u32(world.idle))
                };
                QueueSnapshot::new(clamp_u32(visible + reserved)).with_idle_workers(idle)
            }
        };
        self.last = Some(snapshot);
    }

    /// CloudWatch `NumberOfMessagesSent`, Sum per 60 s, averaged over the
    /// datapoints of [now - 10 min, now - 5 min]; cached.
    fn arrival_rate(&mut self, world: &World) -> f64 {
        let tick = world.tick;
        if let Some((fetched, rate)) = self.rate
            && tick < fetched + self.cache_ticks
        {
            return rate;
        }
        let (sum, datapoints) = self.window(&world.sent_per_minute, tick, 600, 300);
        let rate = if datapoints == 0 {
            0.0
        } else {
            sum as f64 / datapoints as f64
        };
        self.rate = Some((tick, rate));
        rate
    }

    /// CloudWatch `NumberOfMessagesReceived` summed over
    /// [now - 20 min, now - 10 min]; cached.
    fn received_long_ago(&mut self, world: &World) -> u64 {
        let tick = world.tick;
        if let Some((fetched, sum)) = self.received
            && tick < fetched + self.cache_ticks
        {
            return sum;
        }
        let (sum, _) = self.window(&world.received_per_minute, tick, 1200, 600);
        self.received = Some((tick, sum));
        sum
    }

    /// Sum and count of the one-minute datapoints starting in
    /// [now - from_s, now - to_s) (start rounded down to the minute, as
    /// CloudWatch does). Minutes before the start carry the warm history.
    fn window(&self, per_minute: &[u64], tick: u64, from_s: i64, to_s: i64) -> (u64, u64) {
        let now_s = (tick / self.ticks_per_second) as i64;
        let first = (now_s - from_s).div_euclid(60);
        let end_s = now_s - to_s;
        let (mut sum, mut count) = (0, 0);
        let mut minute = first;
        while minute * 60 < end_s {
            sum += if minute < 0 {
                self.history_per_minute
            } else {
                per_minute.get(minute as usize).copied().unwrap_or(0)
            };
            count += 1;
            minute += 1;
        }
        (sum, count)
    }
}

fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The policy being run, with its state.
enum Controller {
    Wpa {
        spec: WpaSpec,
        delay: Duration,
        last_scale_time: Option<SystemTime>,
        poller: Box<Poller>,
        resync_ticks: u64,
        resync_offset: u64,
    },
    Hpa {
        model: HpaModel,
        sync_ticks: u64,
    },
    Keda {
        model: KedaModel,
        poll_ticks: u64,
        sync_ticks: u64,
    },
}

fn ticks(seconds: f64, ticks_per_second: u64) -> u64 {
    (seconds * ticks_per_second as f64).round().max(0.0) as u64
}

/// The simulated wall clock: a fixed epoch plus simulated time.
fn clock(tick: u64, ticks_per_second: u64) -> SystemTime {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    base + Duration::from_secs(tick / ticks_per_second)
        + Duration::from_nanos((tick % ticks_per_second) * 1_000_000_000 / ticks_per_second)
}

/// Runs `policy` on `config`. `progress`, if given, is called with the
/// fraction done (0 to 1) about every 5% of the run.
pub fn simulate(
    config: &SimConfig,
    policy: &Policy,
    mut progress: Option<&mut dyn FnMut(f64)>,
) -> Result<Outcome, SimError> {
    config.validate()?;
    let workload = &config.workload;
    let tps = workload.service.ticks_per_second();
    let seconds_per_tick = 1.0 / tps as f64;
    let horizon_ticks = ticks(config.horizon_s, tps).max(1);
    let seed = config.seed;

    let (low, high) = policy.bounds();
    let initial = config.initial_replicas.unwrap_or_else(|| {
        let needed = (workload.base_rate_at(0.0) * workload.service.mean()).ceil();
        needed.min(f64::from(u32::MAX)) as u32
    });
    let initial = if low >= high {
        high
    } else {
        initial.clamp(low, high)
    };
    let initial = match policy {
        Policy::Hpa(_) => initial.max(1),
        _ => initial,
    };
    let redelivery_ticks = match config.backend {
        Backend::Sqs => ticks(config.visibility_timeout_s, tps),
        Backend::Beanstalkd => 0,
    };
    let mut world = World {
        tick: 0,
        ticks_per_second: tps,
        fresh: VecDeque::new(),
        fresh_total: 0,
        redelivered: VecDeque::new(),
        redelivered_total: 0,
        invisible: VecDeque::new(),
        invisible_total: 0,
        starting: VecDeque::new(),
        starting_total: 0,
        idle: u64::from(initial),
        busy: Calendar::default(),
        draining: Calendar::default(),
        doomed: VecDeque::new(),
        doomed_total: 0,
        startup_ticks: ticks(config.startup_delay_s, tps),
        grace_ticks: ticks(config.grace_period_s, tps),
        redelivery_ticks,
        sampler: ServiceSampler::new(&workload.service, tps),
        service_rng: StdRng::seed_from_u64(seed ^ 0x0053_4552_5649_4345),
        removal_rng: StdRng::seed_from_u64(seed ^ 0x5245_4d4f_5645),
        arrived: 0,
        processed: 0,
        interrupted: 0,
        redelivery_wait_ticks: 0,
        redelivered_taken: 0,
        sent_per_minute: Vec::new(),
        received_per_minute: Vec::new(),
        waits: WaitHistogram::default(),
        window_wait_max: 0,
    };
    let mut arrivals = ArrivalGenerator::new(workload, seed, tps, config.horizon_s);

    let timing = config.adapter;
    let mut controller = match policy {
        Policy::Wpa {
            spec,
            scale_down_delay,
        } => Controller::Wpa {
            spec: *spec,
            delay: *scale_down_delay,
            last_scale_time: None,
            poller: Box::new(Poller {
                backend: config.backend,
                measures_rate: spec.seconds_to_process_one_job() != 0.0,
                ticks_per_second: tps,
                short_ticks: ticks(timing.short_poll_s, tps).max(1),
                long_ticks: ticks(timing.long_poll_s, tps).max(1),
                cache_ticks: ticks(timing.cloudwatch_cache_s, tps),
                next_poll: 0,
                long_poll_until: None,
                last: None,
                rate: None,
                received: None,
                history_per_minute: (workload.base_rate_at(0.0) * 60.0).round() as u64,
            }),
            resync_ticks: ticks(timing.resync_s, tps).max(1),
            resync_offset: ticks(timing.resync_offset_s, tps),
        },
        // The baselines start as if they had run at the initial count for
        // a while (a stabilization window that remembers it), like the WPA
        // starts with a warm CloudWatch history.
        Policy::Hpa(settings) => Controller::Hpa {
            model: HpaModel::new(*settings).with_history(0.0, initial),
            sync_ticks: ticks(settings.sync_s, tps).max(1),
        },
        Policy::Keda(settings) => Controller::Keda {
            model: KedaModel::new(*settings, 0.0, initial),
            poll_ticks: ticks(settings.polling_s, tps).max(1),
            sync_ticks: ticks(settings.hpa.sync_s, tps).max(1),
        },
    };

    // The first burst, for the drain measure.
    let burst = workload
        .bursts(seed, config.horizon_s)
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
    let mut pre_burst_backlog = 0;
    let mut drain_ticks: Option<u64> = None;
    let mut burst_backlog_rose = false;

    let sample_every = if config.series_points == 0 {
        u64::MAX
    } else {
        (horizon_ticks / config.series_points as u64).max(1)
    };
    let progress_every = (horizon_ticks / 20).max(1);

    let mut events = Vec::new();
    let mut series = Vec::new();
    let mut pod_ticks: u64 = 0;
    let mut peak_backlog = 0;
    let mut peak_replicas = world.replicas();

    for tick in 0..horizon_ticks {
        world.tick = tick;
        let arrived = arrivals.arrivals(tick);
        world.advance(arrived);
        world.dispatch();

        let from = world.replicas();
        let now_s = tick as f64 * seconds_per_tick;
        let mut decided: Option<(u32, Option<Rule>, Option<QueueSnapshot>)> = None;
        match &mut controller {
            Controller::Wpa {
                spec,
                delay,
                last_scale_time,
                poller,
                resync_ticks,
                resync_offset,
            } => {
                poller.step(&world);
                if tick % *resync_ticks == *resync_offset % *resync_ticks
                    && let Some(snapshot) = poller.last
                {
                    let step = run_ready(wpa_core::reconcile(
                        &mut CachedSnapshot(snapshot),
                        &mut SimulatedDeployment(&mut world),
                        spec,
                        *delay,
                        *last_scale_time,
                        clock(tick, tps),
                    ))?
                    .map_err(|error| SimError::Reconcile(error.to_string()))?;
                    *last_scale_time = step.status.last_scale_time;
                    if step.operation.changes_replicas() {
                        decided = Some((
                            step.decision.desired_replicas,
                            Some(step.decision.rule),
                            Some(snapshot),
                        ));
                    }
                }
            }
            Controller::Hpa { model, sync_ticks } => {
                if tick % *sync_ticks == 0 {
                    let metric = world.visible() + world.not_visible();
                    let to = model.sync(now_s, from, metric);
                    if to != from {
                        world.scale_to(to);
                        decided = Some((to, None, None));
                    }
                }
            }
            Controller::Keda {
                model,
                poll_ticks,
                sync_ticks,
            } => {
                let metric = world.visible() + world.not_visible();
                let mut current = from;
                if tick % *poll_ticks == 0 {
                    let to = model.poll(now_s, current, metric);
                    if to != current {
                        world.scale_to(to);
                        current = to;
                    }
                }
                if tick % *sync_ticks == 0 {
                    let to = model.hpa_sync(now_s, current, metric);
                    if to != current {
                        world.scale_to(to);
                        current = to;
                    }
                }
                if current != from {
                    decided = Some((current, None, None));
                }
            }
        }
        if let Some((to, rule, snapshot)) = decided {
            events.push(ScaleEvent {
                time_s: now_s,
                from,
                to,
                rule,
                snapshot,
            });
            peak_replicas = peak_replicas.max(to);
        }

        // Accounting.
        pod_ticks = pod_ticks.saturating_add(world.pod_count());
        let backlog = world.visible();
        peak_backlog = peak_backlog.max(backlog);
        if let Some((start, end, base_rate)) = burst {
            let threshold = pre_burst_backlog + base_rate.ceil() as u64;
            if tick < start {
                pre_burst_backlog = backlog;
            } else if drain_ticks.is_none() {
                if backlog > threshold {
                    burst_backlog_rose = true;
                } else if burst_backlog_rose {
                    drain_ticks = Some(tick - start);
                } else if tick >= end {
                    drain_ticks = Some(0);
                }
            }
        }
        if tick % sample_every == 0 {
            series.push(Sample {
                time_s: now_s,
                backlog,
                replicas: world.replicas(),
                ready: world.ready(),
                wait_max_s: world.window_wait_max as f64 * seconds_per_tick,
            });
            world.window_wait_max = 0;
        }
        if let Some(report) = progress.as_mut()
            && tick % progress_every == 0
        {
            report(tick as f64 / horizon_ticks as f64);
        }
    }
    if let Some(report) = progress.as_mut() {
        report(1.0);
    }

    // Messages still waiting count with the wait they have had so far, so
    // a policy that never serves them cannot look fast.
    let end_tick = horizon_ticks;
    for &(arrival, count) in &world.fresh {
        world.waits.record(end_tick - arrival, count);
    }

    let waits = &world.waits;
    let scale_ups = events.iter().filter(|e| e.to > e.from).count() as u32;
    let scale_downs = events.len() as u32 - scale_ups;
    Ok(Outcome {
        policy: policy.name().to_owned(),
        seconds_per_tick,
        messages_arrived: world.arrived,
        messages_processed: world.processed,
        messages_waiting_at_end: world.visible(),
        messages_in_flight_at_end: world.not_visible(),
        wait_p50_s: waits.quantile(0.50) * seconds_per_tick,
        wait_p95_s: waits.quantile(0.95) * seconds_per_tick,
        wait_p99_s: waits.quantile(0.99) * seconds_per_tick,
        wait_max_s: waits.max() as f64 * seconds_per_tick,
        peak_backlog,
        worker_seconds: pod_ticks as f64 * seconds_per_tick,
        scale_ups,
        scale_downs,
        drain_after_burst_s: drain_ticks.map(|t| t as f64 * seconds_per_tick),
        interrupted_jobs: world.interrupted,
        redelivery_wait_mean_s: (world.redelivered_taken > 0).then(|| {
            world.redelivery_wait_ticks as f64 / world.redelivered_taken as f64 * seconds_per_tick
        }),
        peak_replicas,
        events,
        series,
    })
}
