//! What the WPA's queue adapter sees: the shipped code, stepped on
//! simulated time.
//!
//! - When to poll is the shipped poller's [`Schedule`] (short polls,
//!   wake-up polls at zero replicas on an empty queue, the arrival rate
//!   only while the spec uses it), passed the simulated time.
//! - What each answer means is the shipped adapters' pure functions:
//!   [`wpa_sqs::answer`] (visible + in flight; "every worker idle" from the
//!   CloudWatch received window; the sent-per-minute mean) and
//!   [`wpa_beanstalkd::answer`] (ready + reserved; `current-waiting`; the
//!   `total-jobs` rate meter).
//! - Modelled here: only the server side, i.e. the counts a server would
//!   answer with and CloudWatch's per-minute datapoints; a wake-up poll
//!   (SQS probe, beanstalkd `reserve-with-timeout`) returns at the first
//!   visible message or after the long poll. The simulated servers never
//!   fail, so the schedule's backoff and staleness do not come into play.

use std::time::{Duration, SystemTime};

use wpa_beanstalkd::{ArrivalRate, TubeStats};
use wpa_core::{QueueSnapshot, WpaSpec};
use wpa_poller::{Demand, PollRequest, PollerConfig, Schedule, Time};
use wpa_sqs::{Idleness, MetricWindow, QueueCounts, answer as sqs};

use super::config::{Backend, SimConfig};
use super::world::{World, ticks, wall_clock};

/// The WPA's queue poller: the shipped schedule, the adapter's caches.
pub(super) struct Poller {
    backend: Backend,
    /// Whether the spec sets `secondsToProcessOneJob`: only then does a
    /// subscriber ask for the rate (the controller's rule).
    measures_rate: bool,
    /// Whether the spec has a wait target: only then is the oldest
    /// message's age asked for (the controller's rule).
    measures_age: bool,
    ticks_per_second: u64,
    long_ticks: u64,
    cache_ticks: u64,
    schedule: Schedule,
    /// A wake-up poll in progress: the tick it gives up at.
    long_poll_until: Option<u64>,
    /// What the latest poll asked.
    request: Option<PollRequest>,
    /// Cached CloudWatch answers: `(tick fetched, value)`.
    rate: Option<(u64, f64)>,
    received: Option<(u64, f64)>,
    /// The last rate measured (SQS keeps it through wake-up polls).
    last_rate: Option<f64>,
    /// beanstalkd's `total-jobs` rate meter.
    meter: ArrivalRate,
    /// RabbitMQ's management sample: the one shown, and the next one with
    /// the tick it shows at.
    rabbit_shown: Option<RabbitSample>,
    rabbit_next: Option<(u64, RabbitSample)>,
    rabbit_meter: wpa_rabbitmq::ArrivalRate,
    /// JetStream's `last_seq` meter.
    nats_meter: wpa_nats::ArrivalRate,
    /// Messages per minute assumed before the start (a warm queue).
    history_per_minute: u64,
}

impl Poller {
    /// A poller that has not polled yet; its first poll is at tick 0.
    pub(super) fn new(config: &SimConfig, spec: &WpaSpec, ticks_per_second: u64) -> Self {
        let timing = config.adapter;
        let short = Duration::from_secs_f64(timing.short_poll_s.max(0.0));
        let long = Duration::from_secs_f64(timing.long_poll_s.max(0.0));
        Poller {
            backend: config.backend,
            measures_rate: spec.seconds_to_process_one_job() != 0.0,
            measures_age: spec.wait_target().is_some(),
            ticks_per_second,
            long_ticks: ticks(timing.long_poll_s, ticks_per_second).max(1),
            cache_ticks: ticks(timing.cloudwatch_cache_s, ticks_per_second),
            schedule: Schedule::new(PollerConfig::new(short, long)),
            long_poll_until: None,
            request: None,
            rate: None,
            received: None,
            last_rate: None,
            meter: ArrivalRate::new(wpa_beanstalkd::DEFAULT_RATE_WINDOW),
            rabbit_shown: None,
            rabbit_next: None,
            rabbit_meter: wpa_rabbitmq::ArrivalRate::new(Duration::from_secs(60)),
            nats_meter: wpa_nats::ArrivalRate::new(Duration::from_secs(60)),
            history_per_minute: (config.workload.base_rate_at(0.0) * 60.0).round() as u64,
        }
    }

    /// What the adapter last reported (`None` before its first answer).
    pub(super) fn last(&self) -> Option<QueueSnapshot> {
        self.schedule.last_good().map(|(snapshot, _)| snapshot)
    }

    /// When the poll behind [`Poller::last`] was taken, on the simulated
    /// wall clock.
    pub(super) fn last_polled_at(&self) -> Option<SystemTime> {
        self.schedule.last_good().map(|(_, at)| wall_clock(at))
    }

    fn time(&self, tick: u64) -> Time {
        let tps = self.ticks_per_second.max(1);
        Duration::from_secs(tick / tps) + Duration::from_nanos((tick % tps) * 1_000_000_000 / tps)
    }

    fn demand(&self, world: &World) -> Demand {
        Demand {
            all_at_zero: world.replicas() == 0,
            arrival_rate: self.measures_rate,
            oldest_age: self.measures_age,
        }
    }

    /// Runs the poller's work due this tick (after dispatch: what a poll
    /// sees is what no worker could take).
    pub(super) fn step(&mut self, world: &World) {
        if self.backend == Backend::Rabbitmq {
            self.sample_management(world);
        }
        let now = self.time(world.tick);
        let demand = self.demand(world);
        if let Some(until) = self.long_poll_until {
            if self.schedule.cancels_wake_up(demand) {
                // Replicas run again: the wake-up poll is given up.
                self.long_poll_until = None;
                self.schedule.cancelled(now);
            } else if world.visible() > 0 || world.tick >= until {
                self.long_poll_until = None;
                let snapshot = self.wake_up_answer(world);
                self.schedule.succeeded(now, snapshot, demand);
                return;
            } else {
                return;
            }
        }
        if now < self.schedule.next_poll() {
            return;
        }
        let request = self.schedule.start(now, demand);
        self.request = Some(request);
        if request.wake_up {
            if world.visible() > 0 {
                let snapshot = self.wake_up_answer(world);
                self.schedule.succeeded(now, snapshot, demand);
            } else {
                self.long_poll_until = Some(world.tick + self.long_ticks);
            }
        } else {
            let snapshot = self.short_answer(world, request);
            self.schedule.succeeded(now, snapshot, demand);
        }
    }

    /// What a wake-up poll returns: SQS, a probe that saw 0 or 1 message
    /// (idleness unknown, the last rate); beanstalkd, a `stats-tube` after
    /// the reserve.
    fn wake_up_answer(&mut self, world: &World) -> QueueSnapshot {
        let asked_rate = self.request.is_some_and(|r| r.arrival_rate);
        match self.backend {
            Backend::Sqs => sqs::snapshot(
                u32::from(world.visible() > 0),
                None,
                Idleness::Unknown,
                self.last_rate.filter(|_| asked_rate),
                MetricWindow::ARRIVAL_RATE.length(),
            ),
            Backend::Beanstalkd => self.beanstalk_answer(world, world.visible() > 0),
            // A list's BLMOVE wake-up, then its short poll.
            Backend::RedisList => self.redis_answer(world, world.visible() > 0),
            // A passive declare that saw a message ready; at the end of the
            // long poll with none, the adapter's short poll.
            Backend::Rabbitmq => match (self.declare(world), self.request) {
                (declare, _) if declare.ready > 0 => wpa_rabbitmq::answer::woken(
                    declare,
                    self.rabbit_meter.per_minute().filter(|_| asked_rate),
                ),
                (_, Some(request)) => self.rabbit_answer(world, request),
                (declare, None) => wpa_rabbitmq::answer::woken(declare, None),
            },
            // A publish seen on the subject, then one CONSUMER.INFO.
            Backend::Nats => self.nats_answer(world, asked_rate),
        }
    }

    /// A short poll: SQS `GetQueueAttributes` (+ CloudWatch when due);
    /// beanstalkd `stats-tube`.
    fn short_answer(&mut self, world: &World, request: PollRequest) -> QueueSnapshot {
        match self.backend {
            Backend::Sqs => {
                let counts = QueueCounts {
                    visible: clamp_u32(world.visible()),
                    not_visible: clamp_u32(world.not_visible()),
                    delayed: 0,
                };
                if request.arrival_rate {
                    self.last_rate = Some(self.arrival_rate(world));
                }
                let received = sqs::idleness_is_knowable(counts).then(|| self.received(world));
                sqs::snapshot(
                    sqs::backlog(counts, false),
                    Some(counts.not_visible),
                    sqs::idleness(counts, received),
                    self.last_rate.filter(|_| request.arrival_rate),
                    MetricWindow::ARRIVAL_RATE.length(),
                )
            }
            Backend::Beanstalkd => self.beanstalk_answer(world, false),
            Backend::RedisList => self.redis_answer(world, false),
            Backend::Rabbitmq => self.rabbit_answer(world, request),
            Backend::Nats => self.nats_answer(world, request.arrival_rate),
        }
    }

    /// `LLEN`: the waiting messages only (a `BRPOP` worker's job is not in
    /// the list), no rate.
    fn redis_answer(&self, world: &World, woke: bool) -> QueueSnapshot {
        let reading = wpa_redis::answer::list(world.visible(), None);
        wpa_redis::answer::snapshot(&reading, woke, None).unwrap_or(QueueSnapshot::new(u32::MAX))
    }

    /// The passive declare: real time, the ready count and the consumers
    /// (one per ready pod).
    fn declare(&self, world: &World) -> wpa_rabbitmq::DeclareOk {
        wpa_rabbitmq::DeclareOk {
            ready: clamp_u32(world.visible()),
            consumers: clamp_u32(world.ready()),
        }
    }

    /// The management API's statistics are sampled every 5 s and show up
    /// about 2.4 s later (RabbitMQ 3.10's defaults, as measured by the
    /// adapter's tests).
    fn sample_management(&mut self, world: &World) {
        let tps = self.ticks_per_second.max(1);
        if let Some((due, sample)) = self.rabbit_next
            && world.tick >= due
        {
            self.rabbit_shown = Some(sample);
            self.rabbit_next = None;
        }
        if world.tick.is_multiple_of(5 * tps) && self.rabbit_next.is_none() {
            let sample = RabbitSample {
                ready: world.visible(),
                unacknowledged: world.pods.busy(),
                consumers: world.ready(),
                published: world.arrived,
            };
            self.rabbit_next = Some((world.tick + (12 * tps).div_ceil(5), sample));
        }
    }

    /// A passive declare and a management GET, taken together.
    fn rabbit_answer(&mut self, world: &World, request: PollRequest) -> QueueSnapshot {
        let declare = self.declare(world);
        let sample = self.rabbit_shown.unwrap_or(RabbitSample {
            ready: world.visible(),
            unacknowledged: world.pods.busy(),
            consumers: world.ready(),
            published: world.arrived,
        });
        self.rabbit_meter
            .record(self.time(world.tick), sample.published);
        let consumers = usize::try_from(sample.consumers).unwrap_or(usize::MAX);
        let stats = wpa_rabbitmq::QueueStats {
            ready: Some(sample.ready),
            unacknowledged: Some(sample.unacknowledged),
            consumers: Some(sample.consumers),
            // Every pod one consumer, prefetch 1, manual acks.
            consumer_details: Some(vec![
                wpa_rabbitmq::ConsumerDetails {
                    ack_required: Some(true),
                    prefetch_count: Some(1),
                    active: Some(true),
                };
                consumers.min(100_000)
            ]),
            published: Some(sample.published),
            head_message_timestamp: None,
        };
        let rate = self
            .rabbit_meter
            .per_minute()
            .filter(|_| request.arrival_rate);
        wpa_rabbitmq::answer::snapshot(declare, &stats, rate, None, true)
            .unwrap_or(QueueSnapshot::new(u32::MAX))
    }

    /// One `CONSUMER.INFO` of a pull consumer (each idle pod has a pull
    /// request waiting), and the stream's `last_seq` when the rate is asked.
    fn nats_answer(&mut self, world: &World, asked_rate: bool) -> QueueSnapshot {
        let info = wpa_nats::ConsumerInfo {
            num_pending: world.visible(),
            num_ack_pending: world.not_visible(),
            num_waiting: world.pods.idle,
            ..wpa_nats::ConsumerInfo::default()
        };
        if asked_rate {
            self.nats_meter.record(self.time(world.tick), world.arrived);
        }
        let rate = self.nats_meter.per_minute().filter(|_| asked_rate);
        wpa_nats::answer::snapshot(&info, wpa_nats::IdleWorkers::WhenNothingHeld, rate, None)
            .unwrap_or(QueueSnapshot::new(u32::MAX))
    }

    fn beanstalk_answer(&mut self, world: &World, woke: bool) -> QueueSnapshot {
        let snapshot = self.beanstalk_stats(world, woke);
        // `peek-ready` + `stats-job` when asked and a job is ready: its age.
        let asked_age = self.request.is_some_and(|r| r.oldest_age);
        match world.messages.oldest_tick().filter(|_| asked_age && !woke) {
            Some(oldest) => {
                let ticks = world.tick.saturating_sub(oldest);
                snapshot.with_oldest_age(self.time(ticks))
            }
            None => snapshot,
        }
    }

    fn beanstalk_stats(&mut self, world: &World, woke: bool) -> QueueSnapshot {
        let stats = TubeStats {
            ready: world.visible(),
            reserved: world.not_visible(),
            waiting: world.pods.idle,
            total_jobs: world.arrived,
            ..TubeStats::default()
        };
        self.meter.record(self.time(world.tick), stats.total_jobs);
        // Counts of a simulated world fit in u32; past it, a full queue.
        wpa_beanstalkd::answer::snapshot(&stats, woke, self.meter.per_minute())
            .unwrap_or(QueueSnapshot::new(u32::MAX))
    }

    /// CloudWatch `NumberOfMessagesSent` over the adapter's arrival-rate
    /// window, as the adapter averages it; cached as the adapter caches.
    fn arrival_rate(&mut self, world: &World) -> f64 {
        let tick = world.tick;
        if let Some((fetched, rate)) = self.rate
            && tick < fetched + self.cache_ticks
        {
            return rate;
        }
        let sums = self.datapoints(&world.sent_per_minute, tick, MetricWindow::ARRIVAL_RATE);
        let rate = sqs::sent_per_minute(&sums, MetricWindow::ARRIVAL_RATE.period);
        self.rate = Some((tick, rate));
        rate
    }

    /// CloudWatch `NumberOfMessagesReceived` over the idleness window, as
    /// the adapter sums it; cached.
    fn received(&mut self, world: &World) -> f64 {
        let tick = world.tick;
        if let Some((fetched, sum)) = self.received
            && tick < fetched + self.cache_ticks
        {
            return sum;
        }
        let sums = self.datapoints(&world.received_per_minute, tick, MetricWindow::IDLE);
        let sum = sqs::received(&sums);
        self.received = Some((tick, sum));
        sum
    }

    /// CloudWatch's one-minute datapoints of `per_minute` in `window`
    /// before `tick`.
    fn datapoints(&self, per_minute: &[u64], tick: u64, window: MetricWindow) -> Vec<f64> {
        let from = i64::try_from(window.start_ago.as_secs()).unwrap_or(i64::MAX);
        let to = i64::try_from(window.end_ago.as_secs()).unwrap_or(i64::MAX);
        self.window(per_minute, tick, from, to)
    }

    /// The one-minute datapoints starting in [now - from_s, now - to_s)
    /// (start rounded down to the minute, as CloudWatch does). Minutes
    /// before the start carry the warm history.
    fn window(&self, per_minute: &[u64], tick: u64, from_s: i64, to_s: i64) -> Vec<f64> {
        let now_s = (tick / self.ticks_per_second) as i64;
        let first = (now_s - from_s).div_euclid(60);
        let end_s = now_s - to_s;
        let mut points = Vec::new();
        let mut minute = first;
        while minute * 60 < end_s {
            let value = if minute < 0 {
                self.history_per_minute
            } else {
                per_minute.get(minute as usize).copied().unwrap_or(0)
            };
            points.push(value as f64);
            minute += 1;
        }
        points
    }
}

/// What one management API sample of a RabbitMQ queue holds.
#[derive(Debug, Clone, Copy)]
struct RabbitSample {
    ready: u64,
    unacknowledged: u64,
    consumers: u64,
    published: u64,
}

/// A count as the adapters report it (they saturate at `u32::MAX`).
fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
