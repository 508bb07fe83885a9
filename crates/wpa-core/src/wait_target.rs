//! The wait-target policy: as few workers as keep 99% of messages waiting
//! less than `targetWaitSeconds`, top to bottom.
//!
//! Opt-in per WPA (`targetWaitSeconds` set); without it the reference's
//! rules in `decision.rs` decide, bit for bit. The model, in four steps:
//!
//! 1. **Load.** Workers busy on average: `a = max(rate * secondsToProcessOneJob,
//!    in-flight - sqrt(in-flight))`. The rate is what the adapter
//!    measured; the in-flight count is real time (less one standard
//!    deviation of its noise), so a rate that lags (CloudWatch) or is
//!    unknown cannot hide work being done now. Nor can a lagging rate keep
//!    a pool for work that has ended: while nothing waits, it is taken for
//!    at most what the jobs in service make plausible ([`plausible_load`]),
//!    where the pods (`busyProbe`) confirm that the in-flight count counts
//!    them.
//! 2. **Arrivals.** The fewest workers `c` for which an M/M/c queue with
//!    load `a'` keeps `P(wait > target) <= 1%` (Erlang C:
//!    `C(c, a') * exp(-(c - a') * target / secondsToProcessOneJob)`), where
//!    `a'` is `a` with the rate less three standard deviations of its
//!    Poisson count ([`scale_up_rate`]): a rate counted on few messages
//!    swings up as often as down, and a real rise shows at once in the
//!    in-flight count and the backlog.
//!    **Tracking** (idle-first, jobs longer than the start-up, in-flight
//!    count known): the pool need only hold what will run when a pod
//!    started now is ready. Each job in flight still runs then with
//!    probability `s = exp(-startup / job)`, and the start-up's arrivals
//!    add `λ·job·(1 - s)` (`λ` the rate, or, while the messages grow by
//!    more over a start-up than the in-flight count's noise, what the
//!    workers take plus that growth: the rate lags a rise). A message that
//!    finds every worker busy waits for the first to finish: within the
//!    target `c·target/job` of them do, less those the target's own
//!    arrivals take (`λ'·target`, `λ'` the rate less its noise, as above).
//!    So `c·(1 + target/job)` must cover that demand two standard
//!    deviations up ([`TRACKED_DEMAND_SIGMAS`]) plus those arrivals (normal approximation,
//!    [`TrackedDemand`]); where this asks fewer workers than Erlang C, it
//!    decides: the in-flight count says which of the Poisson load's swings
//!    is happening now.
//! 3. **Backlog.** Messages already waiting must be picked up within the
//!    horizon `T = max(target - oldest age, startup + target / 2)`. A ready
//!    worker picks one up at once if idle, then one per job time; a new
//!    pod (or one still starting) one when it is ready after
//!    `workerStartupSeconds`, then one per job time. The backlog needs the
//!    ready workers plus enough new ones for the waiting messages and the
//!    arrivals of `T - target / 2` (later ones may be picked up after `T`,
//!    within the target): the measured rate, or, while the pool is behind,
//!    what the workers take plus the backlog's growth since the last poll
//!    (not behind while that growth is within its Poisson noise,
//!    [`growth_beyond_noise`]); while behind, also at least the workers
//!    those arrivals keep busy (`rate·job`, at most one per arrival within
//!    `T`).
//! 4. **Hysteresis.** Up at once to `need = max(arrivals, backlog)`. Down
//!    only when nothing waits, the pool exceeds what the load plus two
//!    standard deviations of its measurement noise (a Poisson count of the
//!    rate's window, at least 2%; at least half a standard deviation of the in-flight
//!    count, up to two workers) would need (`keep`: the
//!    band), the rate is known (or nothing is queued), and, for jobs longer
//!    than the default 30 s grace period, at most half the pods hold a
//!    message; then to `keep`, so that a noisy
//!    rate does not flap the pool; never removing more pods than are known
//!    not to hold a message (the queue's idle count, or the pods beyond the
//!    in-flight count; without a count, the pods beyond the message count,
//!    a guess; none where the queue drops what it hands out,
//!    [`QueueSnapshot::in_flight_uncounted`]), and within `maxDisruption`
//!    unless none holds one.
//!    With an idle-first target (a per-pod busy signal,
//!    `crate::idle_first`) the pods known idle replace all three: no
//!    half-busy gate, no budget, at most those pods removed. A tracked
//!    pool keeps [`TRACKING_KEEP_SIGMAS`] more of its demand's standard
//!    deviations than it needs, and shrinks (to that) only once it runs
//!    [`TRACKING_SHRINK_SIGMAS`] more: removals come in steps, not one pod
//!    at each completion. For that band `λ` is at least what the workers
//!    complete now (`in-flight / job`): a rate reading lower is noise.
//!
//! From the past it needs `LastScaleTime` (a scale down waits
//! [`WaitTarget::scale_down_hold`], the start-up time, after the last
//! scale, so that pods just added show their effect first) and the last
//! step's message count ([`crate::History`]), both passed in.

use std::time::Duration;

use crate::decision::{Bounds, clamp_to_u32};
use crate::{
    BacklogGrowth, Decision, DecisionInputs, Limit, QueueSnapshot, Rule, TargetReplicas, WpaSpec,
};

/// `P(wait > target)` the policy aims below: the target is a p99.
pub const WAIT_TARGET_QUANTILE_MISS: f64 = 0.01;

/// The least extra load the pool must be oversized for before it shrinks:
/// a rate counted on many messages still drifts over its window (a trend,
/// not Poisson noise). 5% held the diurnal day's pool 2 to 5 workers above
/// its load on the way down (in `simulate`, 52 worker-hours over 4 seeds).
pub const MIN_SCALE_DOWN_HEADROOM: f64 = 0.02;

/// The cap of [`min_band_workers`], in workers.
pub const MAX_MIN_BAND_WORKERS: f64 = 2.0;

/// The least extra load, in workers, the pool must be oversized for before
/// it shrinks: half a standard deviation of a Poisson in-flight count of
/// `load`, at most [`MAX_MIN_BAND_WORKERS`]. The in-flight floor
/// of step 1 swings by that much between polls however well the rate is
/// counted, and a count rounds up by one.
#[must_use]
pub fn min_band_workers(load: f64) -> f64 {
    if load > 0.0 {
        (0.5 * load.sqrt()).min(MAX_MIN_BAND_WORKERS)
    } else {
        0.0
    }
}

/// Seconds of arrivals a rate is taken to count when its adapter does not
/// say ([`QueueSnapshot::arrival_rate_window`]): its noise sets the band.
/// Half beanstalkd's one-minute meter, which samples `total-jobs` at poll
/// edges and so is noisier than a Poisson count of its window; 30 s keeps
/// it steady in `simulate` (`wpa-sim`'s `steady_on_a_constant_poisson_rate`).
pub const RATE_SAMPLE_S: f64 = 30.0;

/// Standard deviations of a rate's Poisson count that a scale up takes as
/// noise where jobs outlast Kubernetes' default grace period: it sizes for
/// the rate less this many ([`scale_up_rate`]).
pub const RATE_NOISE_SIGMAS: f64 = 3.0;

/// Standard deviations a scale up takes as noise where jobs end within the
/// default grace period. Such a pool, grown on an upswing, shrinks back at
/// the next step past the band (no half-busy gate; a removed pod finishes
/// its job), while three sigma sized it below its load at every rise: 3σ
/// of 20 msg/s counted over a minute is 8.7%, and on a slow morning rise
/// the queue built until step 3 saw it, waits of 5 to 8 s for hours (a
/// day of 2 to 38 msg/s, 1 s jobs, `decide` driven over 3 seeds: p99 4.8 s
/// for 516.6 worker-hours, the WPA 3.0 s for 522.4; with one sigma 2.8 s
/// for 520.2; `simulate --backend beanstalkd` diurnal 6.1 s to 5.8 s,
/// 1251.6 to 1248.6 worker-hours).
pub const SHORT_JOB_RATE_NOISE_SIGMAS: f64 = 1.0;

/// The standard deviations of its rate a scale up takes as noise, for
/// jobs of `seconds_per_job`: [`SHORT_JOB_RATE_NOISE_SIGMAS`] within the
/// default grace period, else [`RATE_NOISE_SIGMAS`].
#[must_use]
pub fn rate_noise_sigmas(seconds_per_job: f64) -> f64 {
    if seconds_per_job <= DEFAULT_GRACE_PERIOD_S {
        SHORT_JOB_RATE_NOISE_SIGMAS
    } else {
        RATE_NOISE_SIGMAS
    }
}

/// Standard deviations of a rate's Poisson count the scale-down band
/// adds. A scale up sizes for the rate less [`RATE_NOISE_SIGMAS`] (one for
/// short jobs), so undoing a scale down takes the rate up by both, 5 of
/// one count's (3.5 of the difference of two counts; 3 and 2.1 for short
/// jobs): rare. With 3 here the diurnal day on
/// beanstalkd (30 s of arrivals counted) ran 1% above the WPA's
/// worker-hours (`simulate --backend beanstalkd`, 4 seeds: 5053 against
/// 5012; 5001 with 2), as few scale reversals either way.
pub const BAND_NOISE_SIGMAS: f64 = 2.0;

/// Extra load the pool must be oversized for before it shrinks, as a
/// fraction: [`BAND_NOISE_SIGMAS`] standard deviations of a Poisson count of
/// `window_s` seconds of arrivals at `per_second`, at least 2%. Rates
/// counted on few messages are noisy; the band keeps that noise from
/// flapping the pool.
#[must_use]
pub fn scale_down_headroom(per_second: f64, window_s: f64) -> f64 {
    let counted = per_second * window_s;
    if counted > 0.0 {
        (BAND_NOISE_SIGMAS / counted.sqrt()).max(MIN_SCALE_DOWN_HEADROOM)
    } else {
        MIN_SCALE_DOWN_HEADROOM
    }
}

/// The arrival rate a scale up sizes for, messages per second: the
/// measured `per_second` less `sigmas` standard deviations of its Poisson
/// count of `window_s` seconds ([`rate_noise_sigmas`]), at least 0. A rate
/// counted on
/// few messages (0.1 msg/s in CloudWatch's 5 minutes is 30) swings up as
/// often as down; a pool that grows on each upswing, for work that neither
/// the in-flight count nor the backlog shows, idles, and with long jobs
/// cannot shrink back (the half-busy gate). A real rise shows at once in
/// the in-flight count (step 1) and the backlog (step 3).
#[must_use]
pub fn scale_up_rate(per_second: f64, window_s: f64, sigmas: f64) -> f64 {
    let counted = per_second * window_s;
    if counted > 0.0 && window_s > 0.0 {
        (counted - sigmas * counted.sqrt()).max(0.0) / window_s
    } else {
        0.0
    }
}

/// Standard deviations above its mean of the tracked demand
/// ([`TrackedDemand`]) a pool covers: its 97.7th percentile, not the 99th
/// (2.326). The quantile is of one decision's demand, and a demand above
/// the pool delays only the messages beyond it, so fewer messages than
/// decisions miss the target: on steady loads of 4 min jobs at 0.1 to 1
/// msg/s (`simulate --scenario poisson`) p99 stays 11 to 14 s for a 20 s
/// target (1.645 let it reach 23 s), and the built-in long jobs over
/// seeds 1 to 4 take 1033 worker-hours against 1055 with 2.326 (the HPA's
/// 1067), p99 32 to 37 s either way.
pub const TRACKED_DEMAND_SIGMAS: f64 = 2.0;

/// Standard deviations of a tracked demand ([`TrackedDemand`]) a tracked
/// pool keeps beyond its need, so that the next swing up is absorbed.
pub const TRACKING_KEEP_SIGMAS: f64 = 0.5;

/// Standard deviations beyond its keep a tracked pool must run before it
/// shrinks back to it. Without them every completion would remove a pod
/// and the next arrival start one (in `simulate`, on the built-in long
/// jobs over 4 seeds: 2975 scale operations for 990 worker-hours with
/// none kept beyond the need, 923 for 1033 with these, 650 for 1062 with
/// one more kept).
pub const TRACKING_SHRINK_SIGMAS: f64 = 2.0;

/// The jobs a pool must hold one start-up from now, when jobs outlast the
/// start-up: what the policy tracks with idle-first (step 2 of the
/// module's model). Pure arithmetic on its inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackedDemand {
    /// Jobs expected to run then: the ones in flight now that still run,
    /// plus the arrivals meanwhile that still run.
    pub mean: f64,
    /// Its standard deviation (binomial survivors, Poisson arrivals, and
    /// the Poisson completions within the target).
    pub sd: f64,
    /// Jobs arriving within the target, which take their share of the
    /// completions meanwhile.
    pub arriving_within_target: f64,
    /// Jobs one worker finishes within the target: `target / job`.
    pub finished_within_target: f64,
}

impl TrackedDemand {
    /// The demand a start-up of `startup_s` from now, with `in_flight`
    /// jobs running and `per_second` arriving (`per_second_within_target`
    /// after it: the rate less its noise, as Erlang C sizes for), each
    /// taking `seconds_per_job` on average (exponential: a job in flight
    /// still runs after `t` with probability `exp(-t / job)`). `None`
    /// unless jobs outlast the start-up: shorter ones are all replaced by
    /// then, so the in-flight count says nothing Erlang C does not.
    #[must_use]
    pub fn new(
        in_flight: f64,
        per_second: f64,
        per_second_within_target: f64,
        seconds_per_job: f64,
        startup_s: f64,
        target_wait_s: f64,
    ) -> Option<Self> {
        let valid = |x: f64| x.is_finite() && x >= 0.0;
        let inputs = [
            in_flight,
            per_second,
            per_second_within_target,
            startup_s,
            target_wait_s,
        ];
        // A finite job time that outlasts the start-up, and counts of at least 0.
        if !(inputs.into_iter().all(valid) && seconds_per_job.is_finite())
            || seconds_per_job <= startup_s
        {
            return None;
        }
        let survive = (-startup_s / seconds_per_job).exp();
        let arriving = per_second * seconds_per_job * (1.0 - survive);
        let mean = in_flight * survive + arriving;
        let finished_within_target = target_wait_s / seconds_per_job;
        let variance =
            in_flight * survive * (1.0 - survive) + arriving + mean * finished_within_target;
        Some(TrackedDemand {
            mean,
            sd: variance.sqrt(),
            arriving_within_target: per_second_within_target * target_wait_s,
            finished_within_target,
        })
    }

    /// The fewest workers `c` for which `c·(1 + target/job)`, the jobs
    /// they hold plus those they finish within the target, covers the
    /// demand's mean plus `sigmas` standard deviations and the arrivals
    /// within the target. Without those arrivals a pool below its load
    /// would count completions the arrivals need as free.
    #[must_use]
    pub fn workers(&self, sigmas: f64) -> u32 {
        let covered = self.mean + self.arriving_within_target + sigmas * self.sd;
        clamp_count(covered / (1.0 + self.finished_within_target))
    }
}

/// Kubernetes' default `terminationGracePeriodSeconds`: jobs this short
/// finish when their pod is removed.
pub const DEFAULT_GRACE_PERIOD_S: f64 = 30.0;

/// Default `workerStartupSeconds`: a pod scheduled, pulled and started.
pub const DEFAULT_WORKER_STARTUP: Duration = Duration::from_secs(30);

/// Above this load Erlang C is replaced by square-root staffing (the
/// recursion is O(load); this keeps a decision under a millisecond).
const EXACT_LOAD_LIMIT: f64 = 100_000.0;

/// The wait-target policy's settings (`targetWaitSeconds`,
/// `workerStartupSeconds`), checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitTarget {
    pub(crate) target_wait_s: f64,
    pub(crate) worker_startup_s: f64,
}

impl WaitTarget {
    /// The wait 99% of messages should stay under, seconds (> 0).
    #[must_use]
    pub fn target_wait_seconds(&self) -> f64 {
        self.target_wait_s
    }

    /// Seconds from a scale up until the new pod takes jobs (>= 0).
    #[must_use]
    pub fn worker_startup_seconds(&self) -> f64 {
        self.worker_startup_s
    }

    /// How long after the last scale a scale down waits: the start-up
    /// time, so that pods just added have shown their effect.
    #[must_use]
    pub fn scale_down_hold(&self) -> Duration {
        Duration::from_secs_f64(self.worker_startup_s)
    }
}

/// The sizing behind a wait-target decision, kept for its explanation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitSizing {
    /// Workers busy on average (the load `a`).
    pub load: f64,
    /// What the measured rate alone would keep busy (`rate·job`): above
    /// `load` where it counted work that has ended ([`plausible_load`]).
    pub measured_load: f64,
    /// The load a scale up sizes for: the rate less its noise
    /// ([`scale_up_rate`]), at least the in-flight floor.
    pub load_up: f64,
    /// Messages waiting for a worker (not in flight).
    pub waiting: u32,
    /// Workers the arrivals need to meet the target: `for_load`, or
    /// fewer where the tracked demand says so.
    pub for_arrivals: u32,
    /// What Erlang C asks for the load net of the rate's noise.
    pub for_load: u32,
    /// Workers the waiting messages need to be picked up in time.
    pub for_backlog: u32,
    /// Seconds within which the waiting messages are to be picked up.
    pub horizon_s: f64,
    /// Arrivals assumed over that horizon, messages per second: the
    /// measured rate, or what the workers take plus the backlog's growth
    /// while the pool is behind.
    pub arriving_per_second: f64,
    /// `max(for_arrivals, for_backlog)`: what meets the target now.
    pub need: u32,
    /// What the load plus its measurement noise would need: a scale down
    /// goes to it.
    pub keep: u32,
    /// The pool shrinks only when it runs more than this: `keep`, or for a
    /// tracked pool [`TRACKING_SHRINK_SIGMAS`] more.
    pub shrink_above: u32,
    /// The demand a tracked pool follows (idle-first, jobs longer than the
    /// start-up), else `None`.
    pub tracked: Option<TrackedDemand>,
    /// Pods known not to hold a message: the most a scale down removes.
    pub removable: u32,
}

/// Decides with the wait-target policy. `spec` must carry `target`
/// (see [`crate::decide`], which picks the policy).
#[must_use]
pub fn desired_replicas(
    spec: &WpaSpec,
    target: &WaitTarget,
    queue: &QueueSnapshot,
    replicas: TargetReplicas,
    backlog_growth: Option<BacklogGrowth>,
) -> Decision {
    let current = replicas.current;
    let messages = queue.messages();
    let mut sizing = size(spec, target, queue, replicas, backlog_growth);

    // 4. Up at once, down past the band, never more than the idle pods.
    // Without an in-flight count, the message count is taken to include
    // what the workers hold (as step 1 does): at most that many pods hold
    // one, a guess, so `maxDisruption` bounds each step. Where the queue
    // drops what it hands out (a plain Redis list), any pod may hold one.
    let counted_holding = queue.in_flight();
    let holding = match counted_holding {
        Some(held) => held.min(current),
        None if queue.in_flight_uncounted() => current,
        None => messages.min(current),
    };
    // A job that ends within Kubernetes' default grace period survives its
    // pod's removal; a longer one may not, so while over half the pods hold
    // one, a Deployment picking victims at random would likely kill one.
    let short_jobs = spec.seconds_to_process_one_job() <= DEFAULT_GRACE_PERIOD_S;
    // Before the first rate (beanstalkd's meter needs two polls), the
    // in-flight count alone does not say the pool is too large.
    let rate_known = queue.messages_sent_per_minute().is_some();
    let (removable, gate_open, max_disruption) = match replicas.idle_pods {
        // Idle-first: the pods say which are idle, so neither the half-busy
        // gate nor a budget is needed (`crate::idle_first`).
        Some(idle_pods) => (
            crate::idle_first::removable(queue, current, idle_pods),
            true,
            None,
        ),
        None => {
            let idle = queue.idle_workers(current).unwrap_or(0).min(current);
            let removable = idle.max(current - holding);
            // A budget matters only while some removed pod may hold a job.
            let guessed = counted_holding.is_none() && idle < current;
            let budget = (removable < current || guessed).then_some(spec.max_disruption());
            (removable, short_jobs || holding <= current / 2, budget)
        }
    };
    sizing.removable = removable;
    let bounds = Bounds {
        current: i64::from(current),
        floor: i64::from(spec.min_replicas()),
        max: i64::from(spec.max_replicas()),
        max_disruption,
    };
    let (rule, (desired, mut limit)) = if sizing.need > current {
        (Rule::WaitTargetUp, bounds.clamp(i64::from(sizing.need)))
    } else if sizing.shrink_above < current
        && removable > 0
        && sizing.waiting == 0
        && gate_open
        && (rate_known || messages == 0)
    {
        let lowest = i64::from(current - removable);
        let (desired, limit) = bounds.clamp(i64::from(sizing.keep).max(lowest));
        (Rule::WaitTargetDown, (desired, limit))
    } else {
        (Rule::WaitTargetHold, bounds.clamp(i64::from(current)))
    };
    if rule == Rule::WaitTargetDown
        && limit == Limit::None
        && i64::from(sizing.keep) < i64::from(current - removable)
    {
        limit = Limit::IdleWorkers;
    }

    Decision {
        desired_replicas: clamp_to_u32(desired),
        rule,
        limit,
        inputs: DecisionInputs {
            spec: *spec,
            snapshot: *queue,
            current_replicas: current,
            floor: spec.min_replicas(),
            floor_from_arrival_rate: false,
            wait: Some(sizing),
            idle_pods: replicas.idle_pods,
        },
    }
}

/// Steps 1 to 3: the load, the workers the arrivals and the backlog need,
/// and the band (`removable` is left for step 4).
fn size(
    spec: &WpaSpec,
    target: &WaitTarget,
    queue: &QueueSnapshot,
    replicas: TargetReplicas,
    backlog_growth: Option<BacklogGrowth>,
) -> WaitSizing {
    let ready = replicas.available.min(replicas.current);
    let seconds_per_job = spec.seconds_to_process_one_job();
    let per_second = queue.messages_sent_per_minute().unwrap_or(0.0) / 60.0;
    let messages = queue.messages();

    // 1. The load. Without an in-flight count, assume every ready worker
    //    holds a message while there are messages: one of them, or, where
    //    the count is of waiting messages only, besides them.
    let (in_flight, waiting) = match queue.in_flight() {
        Some(held) => (held.min(messages), messages - held.min(messages)),
        None if queue.in_flight_uncounted() => (if messages > 0 { ready } else { 0 }, messages),
        None => (messages.min(ready), messages - messages.min(ready)),
    };
    let busy = f64::from(in_flight);
    let busy_floor = busy - busy.sqrt();
    // A rate counted minutes ago (CloudWatch's [now-10, now-5 min]) cannot
    // keep a pool for work that has ended: while nothing waits, every job
    // is in service, and more than the busy count makes plausible is past.
    let measured_load = per_second * seconds_per_job;
    let per_second = match confirmed_busy(queue, replicas, in_flight) {
        Some(busy_now) if waiting == 0 => {
            per_second.min(plausible_load(busy_now) / seconds_per_job)
        }
        _ => per_second,
    };
    let load = (per_second * seconds_per_job).max(busy_floor);
    let window_s = queue
        .arrival_rate_window()
        .map_or(RATE_SAMPLE_S, |window| window.as_secs_f64());
    let sigmas = rate_noise_sigmas(seconds_per_job);
    let load_up = (scale_up_rate(per_second, window_s, sigmas) * seconds_per_job).max(busy_floor);

    // 2. Arrivals, net of the rate's noise; tracked where pods known idle
    //    can go, jobs outlast a start-up and the queue counts what its
    //    workers hold.
    let wait_in_jobs = target.target_wait_s / seconds_per_job;
    let cap = spec.max_replicas();
    let startup = target.worker_startup_s;
    let for_load = servers_for_wait(load_up, wait_in_jobs, cap);
    let counted_busy = queue.in_flight().map(|_| busy);
    let arrivals = (per_second, window_s);
    let tracked = tracked_demands(
        target,
        replicas,
        counted_busy,
        arrivals,
        seconds_per_job,
        backlog_growth,
    );
    let for_arrivals = match tracked {
        Some(Tracked { scale_up, .. }) => {
            for_load.min(scale_up.workers(TRACKED_DEMAND_SIGMAS).max(in_flight))
        }
        None => for_load,
    };

    // 3. Backlog: pick-ups needed within the horizon are the waiting
    //    messages and the arrivals but those of its last half target (they
    //    may be picked up after it, within the target: counting them too
    //    sized the pool for a queue emptied at once, and M/M/c's own swings
    //    of a few seconds' wait near full load added dozens of pods for a
    //    minute). Ready workers give one per idle worker
    //    now and one per job time each; a new pod (or one still starting)
    //    one when it is ready, then one per job time.
    let age = queue.oldest_age().map_or(0.0, |age| age.as_secs_f64());
    let horizon_s = (target.target_wait_s - age).max(startup + target.target_wait_s / 2.0);
    // While the waiting messages would take the ready workers more than a
    // quarter of the target to start, the arrivals are at least what the
    // workers take plus what the backlog grew by: a measured rate that lags
    // cannot hide a burst that has begun (and a short queue that the pool
    // absorbs at once, or one within the count's own noise, is not one).
    // Nor is a backlog M/M/c's own swings explain: one whose growth is
    // within its noise ([`growth_beyond_noise`]).
    let behind = f64::from(waiting) * seconds_per_job
        > f64::from(ready.max(1)) * target.target_wait_s / 4.0
        && f64::from(waiting) > 2.0 * f64::from(messages).sqrt()
        && backlog_growth
            .is_none_or(|growth| growth_beyond_noise(growth, per_second, busy, seconds_per_job));
    let arriving = match backlog_growth {
        Some(growth) if behind => per_second.max(growth.per_second + busy / seconds_per_job),
        _ => per_second,
    };
    let needed = f64::from(waiting) + arriving * (horizon_s - target.target_wait_s / 2.0);
    let idle_now = f64::from(ready.saturating_sub(in_flight));
    let from_ready = idle_now + f64::from(ready) * horizon_s / seconds_per_job;
    let per_new_pod = 1.0 + (horizon_s - startup) / seconds_per_job;
    let for_horizon = if waiting == 0 || needed <= from_ready {
        0
    } else {
        ready.saturating_add(clamp_count((needed - from_ready) / per_new_pod))
    };
    // While behind, at least the workers that take the arrivals (for jobs
    // longer than the horizon, one per arrival within it): short of them
    // the pool falls further behind, however little the horizon asks now.
    let for_backlog = if behind {
        for_horizon.max(clamp_count(arriving * seconds_per_job.min(horizon_s)))
    } else {
        for_horizon
    };

    let need = for_arrivals.max(for_backlog);
    let headroom = scale_down_headroom(per_second, window_s);
    let banded = (load * (1.0 + headroom)).max(load + min_band_workers(load));
    let keep_for_load = servers_for_wait(banded, wait_in_jobs, cap);
    let (keep, shrink_above) = match tracked {
        Some(Tracked { band: demand, .. }) => {
            let keep_sigmas = TRACKED_DEMAND_SIGMAS + TRACKING_KEEP_SIGMAS;
            let tracking = |sigmas| demand.workers(sigmas).max(in_flight);
            (
                keep_for_load.min(tracking(keep_sigmas)),
                keep_for_load.min(tracking(keep_sigmas + TRACKING_SHRINK_SIGMAS)),
            )
        }
        None => (keep_for_load, keep_for_load),
    };
    WaitSizing {
        load,
        measured_load,
        load_up,
        waiting,
        for_arrivals,
        for_load,
        for_backlog,
        horizon_s,
        arriving_per_second: arriving,
        need,
        keep: keep.max(need),
        shrink_above: shrink_above.max(need),
        tracked: tracked.map(|tracked| tracked.scale_up),
        removable: 0,
    }
}

/// Standard deviations of its own noise by which the backlog's growth must
/// exceed 0 before step 3 takes the pool as behind.
pub const GROWTH_NOISE_SIGMAS: f64 = 2.0;

/// Whether `growth` says the backlog grows, beyond its noise: over
/// `over_seconds` the count changes by Poisson arrivals (`per_second`) and
/// completions (`busy / seconds_per_job`), a standard deviation of
/// `sqrt((per_second + busy / job) / over)` per second. A growth whose
/// noise, in workers (times the job time), is within the in-flight count's
/// own (`sqrt(busy)`) passes as it is: it moves the pool by no more than
/// that noise does. Longer jobs need [`GROWTH_NOISE_SIGMAS`]: 20 s jobs at
/// 2.7 msg/s, counted 15 s apart, swing by 12 workers' worth, and a queue
/// of 22 that 66 workers absorb in 7 s asked for 8 more pods, removed a
/// minute later (a day of 0.3 to 2.7 msg/s driven through `decide`, 2
/// seeds: 880.5 worker-hours and 115 jobs interrupted by Kubernetes'
/// choice of victims; 869.8 and 64 with the test, the WPA's rules 870.9
/// and 84).
#[must_use]
pub fn growth_beyond_noise(
    growth: BacklogGrowth,
    per_second: f64,
    busy: f64,
    seconds_per_job: f64,
) -> bool {
    let sd = ((per_second.max(0.0) + busy.max(0.0) / seconds_per_job) / growth.over_seconds).sqrt();
    sd * seconds_per_job <= busy.max(0.0).sqrt() || growth.per_second > GROWTH_NOISE_SIGMAS * sd
}

/// Standard deviations of a Poisson count that [`plausible_load`] allows
/// above it.
pub const STALE_RATE_SIGMAS: f64 = 3.0;

/// The largest load a count of `busy` jobs in service makes plausible: the
/// upper end of a Poisson mean's three-sigma range,
/// `busy + 3·sqrt(busy + 1) + 4.5`. The `4.5`, half the square of the
/// sigmas, keeps a count of 0 or 1 from ruling out a small load; the exact
/// bound needs a chi-square quantile, and this one is above it (tested).
#[must_use]
pub fn plausible_load(busy: f64) -> f64 {
    let busy = busy.max(0.0);
    busy + STALE_RATE_SIGMAS * (busy + 1.0).sqrt() + STALE_RATE_SIGMAS * STALE_RATE_SIGMAS / 2.0
}

/// The jobs in service now, where the pods confirm that the in-flight
/// count counts them (`busyProbe`: the pods not idle are busy). A consumer
/// that deletes a message when it starts its job (Celery's default early
/// ack) holds none in flight while busy, so an unconfirmed count could
/// empty a busy pool. The queues' own idle counts do not confirm it:
/// RabbitMQ's is derived from the same sampled unacknowledged count, and a
/// low sample of it (95 pods busy, 44 counted) took a diurnal pool from
/// 95 to 72 and, 40 s later, to 135.
fn confirmed_busy(queue: &QueueSnapshot, replicas: TargetReplicas, in_flight: u32) -> Option<f64> {
    queue.in_flight()?;
    let idle = replicas.idle_pods?;
    Some(f64::from(
        in_flight.max(replicas.current.saturating_sub(idle)),
    ))
}

/// Step 2's tracked demands (see [`TrackedDemand`]).
#[derive(Debug, Clone, Copy)]
struct Tracked {
    /// What a scale up sizes for.
    scale_up: TrackedDemand,
    /// What the band sizes for: the arrivals taken for no fewer than the
    /// workers now complete, as a rate below that is its noise
    /// (beanstalkd's one-minute meter reads 1 to 13 msg/min at 6), where a
    /// real drop shows as the in-flight count falls.
    band: TrackedDemand,
}

/// The demands a tracked pool follows, or `None` where it is not tracked:
/// without a per-pod busy signal (idle pods could not be told apart),
/// without an in-flight count (`counted_busy`: on a plain Redis list the
/// busy count is a guess from the backlog, which would empty the pool each
/// time the queue does), or for jobs no longer than the start-up.
/// `(per_second, window_s)`: the measured rate and the seconds it counts.
fn tracked_demands(
    target: &WaitTarget,
    replicas: TargetReplicas,
    counted_busy: Option<f64>,
    (per_second, window_s): (f64, f64),
    seconds_per_job: f64,
    backlog_growth: Option<BacklogGrowth>,
) -> Option<Tracked> {
    replicas.idle_pods?;
    let busy = counted_busy?;
    let startup = target.worker_startup_s;
    // While the messages grow by more over a start-up than the in-flight
    // count's own noise, the arrivals are at least what the workers take
    // plus that growth (the measured rate lags a rise).
    let rising = backlog_growth
        .map(|growth| growth.per_second)
        .filter(|growth| growth * startup > (busy + 1.0).sqrt());
    let with_growth =
        |rate: f64| rising.map_or(rate, |growth| rate.max(growth + busy / seconds_per_job));
    let sigmas = rate_noise_sigmas(seconds_per_job);
    let within_target = with_growth(scale_up_rate(per_second, window_s, sigmas));
    let demand = |rate: f64| {
        TrackedDemand::new(
            busy,
            with_growth(rate),
            within_target,
            seconds_per_job,
            startup,
            target.target_wait_s,
        )
    };
    Some(Tracked {
        scale_up: demand(per_second)?,
        band: demand(per_second.max(busy / seconds_per_job))?,
    })
}

/// The reason of a wait-target decision, in words (its limit is added by
/// the caller, [`Decision`]'s `Display`).
pub(crate) fn explain(
    f: &mut std::fmt::Formatter<'_>,
    rule: Rule,
    inputs: &DecisionInputs,
) -> std::fmt::Result {
    let Some(wait) = inputs.wait else {
        return Ok(());
    };
    let current = inputs.current_replicas;
    let target = inputs.spec.wait_target().map_or(0.0, |t| t.target_wait_s);
    let max = inputs.spec.max_replicas();
    let count = |n: u32| {
        if n > max {
            format!("more than {max}")
        } else {
            n.to_string()
        }
    };
    write!(
        f,
        "99% of waits under {target} s need {} workers: {:.1} busy on average",
        count(wait.need),
        wait.load,
    )?;
    let mut notes = Vec::new();
    if wait.measured_load - wait.load >= 0.05 {
        notes.push(format!(
            "the rate says {:.1}, more than the jobs in service make plausible: it counted work \
             that has ended",
            wait.measured_load
        ));
    }
    if wait.load - wait.load_up >= 0.05 {
        notes.push(format!(
            "at least {:.1} net of the rate's noise",
            wait.load_up
        ));
    }
    if !notes.is_empty() {
        write!(f, " ({})", notes.join("; "))?;
    }
    write!(f, " need {}", count(wait.for_load))?;
    if let Some(demand) = wait.tracked
        && wait.for_arrivals < wait.for_load
    {
        write!(
            f,
            ", but of the {} in flight and the arrivals {:.1} will run when a pod started now is \
             ready, which {} hold (tracked: idle pods can go)",
            inputs.snapshot.in_flight().unwrap_or(0),
            demand.mean,
            count(wait.for_arrivals)
        )?;
    }
    if wait.waiting > 0 {
        write!(
            f,
            ", {} waiting messages need {} to be picked up within {:.0} s",
            wait.waiting,
            count(wait.for_backlog),
            wait.horizon_s
        )?;
    }
    match rule {
        Rule::WaitTargetUp => write!(f, "; {current} run: scale up"),
        Rule::WaitTargetDown => write!(
            f,
            "; {current} run, more than the {} that the load plus its noise would need: down to {}",
            wait.shrink_above, wait.keep
        ),
        _ if wait.shrink_above < current
            && wait.removable == 0
            && inputs.idle_pods.is_none()
            && inputs.snapshot.in_flight_uncounted() =>
        {
            write!(
                f,
                "; keep {current}: the queue does not count what its workers hold, so no pod is \
                 known idle (a busyProbe tells)"
            )
        }
        _ if wait.shrink_above < current && wait.removable == 0 => write!(
            f,
            "; keep {current}, more than the {} that the load plus its noise would need: \
             no pod is known not to hold a message",
            wait.shrink_above
        ),
        _ => write!(
            f,
            "; keep {current} (down only past the {} that the load plus its noise would need)",
            wait.shrink_above
        ),
    }
}

/// The fewest servers for which an M/M/c queue with offered load `load`
/// (in servers) keeps `P(wait > wait_in_jobs service times)` at or below
/// [`WAIT_TARGET_QUANTILE_MISS`]; `cap + 1` when more than `cap` would be
/// needed (the search stops there). No load needs no server.
#[must_use]
pub fn servers_for_wait(load: f64, wait_in_jobs: f64, cap: u32) -> u32 {
    // NaN or no load: no server.
    if load.is_nan() || load <= 0.0 {
        return 0;
    }
    let beyond = cap.saturating_add(1);
    if load >= f64::from(cap) {
        return beyond;
    }
    if load > EXACT_LOAD_LIMIT {
        // Square-root staffing with a safety factor that covers a target
        // of zero (Halfin-Whitt: beta = 2.4 gives C below 1%).
        return clamp_count(load + 2.4 * load.sqrt()).min(beyond);
    }
    // Erlang B by its stable recursion, then Erlang C from it.
    let mut erlang_b = 1.0;
    let mut servers: u32 = 0;
    while servers < cap {
        servers += 1;
        let c = f64::from(servers);
        erlang_b = load * erlang_b / (c + load * erlang_b);
        if c <= load {
            continue;
        }
        let erlang_c = c * erlang_b / (c - load * (1.0 - erlang_b));
        if erlang_c * (-(c - load) * wait_in_jobs).exp() <= WAIT_TARGET_QUANTILE_MISS {
            return servers;
        }
    }
    beyond
}

/// `ceil(x)` as a replica count: at least 0, saturating at `u32::MAX`.
fn clamp_count(x: f64) -> u32 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        x.ceil() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn erlang_c_matches_known_staffing() {
        // a = 10 erlangs: at most 1% of waits above 0 needs 19 servers
        // (C(19, 10) = 0.79%); above one service time, 14 (13: C = 0.3037,
        // times exp(-3), is 1.5%; 14: 0.1741 * exp(-4) = 0.32%).
        assert_eq!(servers_for_wait(10.0, 0.0, 1_000), 19);
        assert_eq!(servers_for_wait(10.0, 1.0, 1_000), 14);
        assert_eq!(servers_for_wait(0.0, 1.0, 1_000), 0);
        assert_eq!(servers_for_wait(0.2, 100.0, 1_000), 1);
        assert_eq!(servers_for_wait(50.0, 1.0, 20), 21);
        assert_eq!(servers_for_wait(19.5, 0.0, 20), 21);
    }

    #[test]
    fn a_scale_up_discounts_three_sigma_of_the_rate_for_long_jobs() {
        let long = rate_noise_sigmas(240.0);
        assert_eq!(long, RATE_NOISE_SIGMAS);
        // 30 messages counted in 300 s: 30 - 3 * sqrt(30) = 13.57 of them.
        let expected = (30.0 - 3.0 * 30f64.sqrt()) / 300.0;
        assert!((scale_up_rate(0.1, 300.0, long) - expected).abs() < 1e-12);
        // 3 in the default 30 s are within their own noise: no rate.
        assert_eq!(scale_up_rate(0.1, RATE_SAMPLE_S, long), 0.0);
        assert_eq!(scale_up_rate(0.0, 300.0, long), 0.0);
        assert_eq!(scale_up_rate(5.0, 0.0, long), 0.0);
        // 100 msg/s over 300 s: 30,000 counted, 1.7% off.
        assert!((scale_up_rate(100.0, 300.0, long) - 98.268).abs() < 1e-3);
    }

    #[test]
    fn a_scale_up_discounts_one_sigma_for_jobs_within_the_grace_period() {
        assert_eq!(rate_noise_sigmas(1.0), SHORT_JOB_RATE_NOISE_SIGMAS);
        assert_eq!(rate_noise_sigmas(DEFAULT_GRACE_PERIOD_S), 1.0);
        assert_eq!(rate_noise_sigmas(DEFAULT_GRACE_PERIOD_S + 0.5), 3.0);
        // 20 msg/s over a minute: 1,200 counted, 34.6 of them one sigma:
        // 2.9% off, where three took 8.7% and sized a 20-worker load at 18.3.
        let short = scale_up_rate(20.0, 60.0, rate_noise_sigmas(1.0));
        assert!((short - (1_200.0 - 1_200f64.sqrt()) / 60.0).abs() < 1e-12);
        assert!((scale_up_rate(20.0, 60.0, 3.0) * 1.0 - 18.268).abs() < 1e-3);
    }

    /// `P(X <= count)` for a Poisson `X` of mean `mean`, summed in log space.
    fn poisson_cdf(count: u32, mean: f64) -> f64 {
        let mut log_pmf = -mean;
        let mut total = log_pmf.exp();
        for k in 1..=count {
            log_pmf += mean.ln() - f64::from(k).ln();
            total += log_pmf.exp();
        }
        total
    }

    #[test]
    fn a_plausible_load_is_one_a_count_does_not_rule_out() {
        assert_eq!(plausible_load(0.0), 7.5);
        assert_eq!(plausible_load(-1.0), 7.5);
        assert!((plausible_load(24.0) - (24.0 + 15.0 + 4.5)).abs() < 1e-12);
        // Against the exact tail: a load above the bound leaves its count
        // that low (or lower) with less than the three-sigma 0.135%.
        for count in [0, 1, 2, 5, 10, 24, 100, 240, 1_000] {
            let above = plausible_load(f64::from(count)) + 1e-9;
            let tail = poisson_cdf(count, above);
            assert!(tail < 0.00135, "{count}: P = {tail}");
        }
        // Nor loose: 134.7 for 100 in service, 1,099.4 for 1,000.
        assert!(plausible_load(100.0) < 135.0);
        assert!(plausible_load(1_000.0) < 1_100.0);
    }

    #[test]
    fn the_least_band_follows_the_in_flight_noise() {
        assert_eq!(min_band_workers(0.0), 0.0);
        assert_eq!(min_band_workers(4.0), 1.0);
        assert_eq!(min_band_workers(16.0), MAX_MIN_BAND_WORKERS);
        assert_eq!(min_band_workers(1e6), MAX_MIN_BAND_WORKERS);
    }

    #[test]
    fn the_band_is_two_sigma_of_the_rate_window() {
        // 0.1 msg/s: 3 messages in the default 30 s (115%), 30 in
        // CloudWatch's 300 s (37%); 2% at least.
        assert!((scale_down_headroom(0.1, RATE_SAMPLE_S) - 2.0 / 3f64.sqrt()).abs() < 1e-12);
        assert!((scale_down_headroom(0.1, 300.0) - 2.0 / 30f64.sqrt()).abs() < 1e-12);
        assert_eq!(scale_down_headroom(1_000.0, 300.0), MIN_SCALE_DOWN_HEADROOM);
        assert_eq!(scale_down_headroom(0.0, 300.0), MIN_SCALE_DOWN_HEADROOM);
    }

    #[test]
    fn the_tracked_demand_of_a_steady_long_job_pool() {
        // In balance (24 in flight = 0.1 msg/s * 240 s) the mean stays 24;
        // within the target 0.045 msg/s (CloudWatch's 30 messages less
        // three sigma) take 0.9 of the completions.
        let up = scale_up_rate(0.1, 300.0, rate_noise_sigmas(240.0));
        let demand = TrackedDemand::new(24.0, 0.1, up, 240.0, 30.0, 20.0).unwrap();
        let survive = (-30.0f64 / 240.0).exp();
        assert!((demand.mean - 24.0).abs() < 1e-9);
        let variance = 24.0 * survive * (1.0 - survive) + 24.0 * (1.0 - survive) + 2.0;
        assert!((demand.sd - variance.sqrt()).abs() < 1e-12);
        assert!((demand.finished_within_target - 1.0 / 12.0).abs() < 1e-12);
        assert!((demand.arriving_within_target - up * 20.0).abs() < 1e-12);
        assert_eq!(demand.workers(0.0), 23); // 24.90 / (13/12) = 22.99
        assert_eq!(demand.workers(TRACKED_DEMAND_SIGMAS), 28); // 27.98
        // With the full rate arriving within the target, the mean alone
        // asks exactly the load (26 / (13/12) = 24): the completions within
        // the target all go to its arrivals, none to a queue; the sigmas
        // are the margin a stable pool needs.
        let at_load = TrackedDemand::new(24.0, 0.1, 0.1, 240.0, 30.0, 20.0).unwrap();
        assert_eq!(at_load.workers(0.0), 24);
        assert!(at_load.workers(TRACKED_DEMAND_SIGMAS) > 24);
        // An empty pool with nothing arriving needs nothing.
        assert_eq!(
            TrackedDemand::new(0.0, 0.0, 0.0, 240.0, 30.0, 20.0)
                .unwrap()
                .workers(3.0),
            0
        );
        // No start-up: what runs now is what runs then.
        let instant = TrackedDemand::new(10.0, 1.0, 1.0, 240.0, 0.0, 0.0).unwrap();
        assert_eq!((instant.mean, instant.sd), (10.0, 0.0));
    }

    #[test]
    fn jobs_no_longer_than_the_start_up_are_not_tracked() {
        let at = |in_flight, per_second, up, job| {
            TrackedDemand::new(in_flight, per_second, up, job, 30.0, 20.0)
        };
        assert_eq!(at(24.0, 0.1, 0.1, 30.0), None);
        assert_eq!(at(24.0, 0.1, 0.1, 1.0), None);
        assert_eq!(at(f64::NAN, 0.1, 0.1, 240.0), None);
        assert_eq!(at(24.0, -1.0, 0.1, 240.0), None);
        assert_eq!(at(24.0, 0.1, -0.1, 240.0), None);
        assert_eq!(at(24.0, 0.1, 0.1, f64::INFINITY), None);
    }

    proptest! {
        #[test]
        fn the_tracked_pool_grows_with_its_demand(
            in_flight in 0.0..10_000.0f64,
            per_second in 0.0..100.0f64,
            seconds_per_job in 1.0..3_600.0f64,
            startup_part in 0.0..1.0f64,
            target in 0.0..600.0f64,
            more in 0.0..100.0f64,
            sigmas in 0.0..6.0f64,
        ) {
            let startup = startup_part * seconds_per_job * 0.999;
            let at = |in_flight: f64, per_second: f64, up: f64| {
                TrackedDemand::new(in_flight, per_second, up, seconds_per_job, startup, target)
                    .unwrap()
            };
            let up = per_second / 2.0;
            let base = at(in_flight, per_second, up);
            let workers = base.workers(sigmas);
            prop_assert!(at(in_flight + more, per_second, up).workers(sigmas) >= workers);
            prop_assert!(at(in_flight, per_second + more, up).workers(sigmas) >= workers);
            prop_assert!(at(in_flight, per_second, up + more).workers(sigmas) >= workers);
            prop_assert!(base.workers(sigmas + 1.0) >= workers);
            // The mean is at most what runs now plus what arrives meanwhile.
            prop_assert!(base.mean <= in_flight + per_second * startup + 1e-6);
            prop_assert!(base.mean >= 0.0 && base.sd >= 0.0);
        }

        #[test]
        fn a_growth_beyond_its_noise_stays_beyond_it_when_larger_or_longer(
            per_second in 0.0..1_000.0f64,
            growth in -100.0..100.0f64,
            more in 0.0..100.0f64,
            over in 1.0..600.0f64,
            longer in 0.0..600.0f64,
            busy in 0.0..1_000.0f64,
            seconds_per_job in 0.01..3_600.0f64,
        ) {
            let at = |growth, over_seconds| {
                let growth = BacklogGrowth { per_second: growth, over_seconds };
                growth_beyond_noise(growth, per_second, busy, seconds_per_job)
            };
            if at(growth, over) {
                prop_assert!(at(growth + more, over));
                prop_assert!(at(growth, over + longer));
            }
            // Beyond twice its noise is always beyond it.
            let sd = ((per_second + busy / seconds_per_job) / over).sqrt();
            prop_assert!(at(GROWTH_NOISE_SIGMAS * sd + 1e-9 + more, over));
        }

        #[test]
        fn a_longer_window_never_widens_the_band(
            per_second in 0.0..1_000.0f64,
            window in 1.0..3_600.0f64,
            longer in 0.0..3_600.0f64,
        ) {
            let band = scale_down_headroom(per_second, window);
            prop_assert!(scale_down_headroom(per_second, window + longer) <= band);
            prop_assert!(band >= MIN_SCALE_DOWN_HEADROOM);
        }

        #[test]
        fn the_scale_up_rate_is_below_the_rate_and_grows_with_it(
            per_second in 0.0..1_000.0f64,
            more in 0.0..100.0f64,
            window in 1.0..3_600.0f64,
            longer in 0.0..3_600.0f64,
        ) {
            for sigmas in [SHORT_JOB_RATE_NOISE_SIGMAS, RATE_NOISE_SIGMAS] {
                let up = scale_up_rate(per_second, window, sigmas);
                prop_assert!((0.0..=per_second).contains(&up));
                prop_assert!(scale_up_rate(per_second + more, window, sigmas) >= up);
                // A longer window counts more, so less of it is noise.
                prop_assert!(scale_up_rate(per_second, window + longer, sigmas) >= up - 1e-9);
                // More sigmas taken as noise, less rate.
                prop_assert!(scale_up_rate(per_second, window, sigmas + 1.0) <= up);
            }
        }

        #[test]
        fn servers_grow_with_load_and_shrink_with_the_target(
            load in 0.0..5_000.0f64,
            more in 0.0..100.0f64,
            wait in 0.0..50.0f64,
            longer in 0.0..50.0f64,
        ) {
            let cap = u32::MAX - 1;
            let base = servers_for_wait(load, wait, cap);
            prop_assert!(servers_for_wait(load + more, wait, cap) >= base);
            prop_assert!(servers_for_wait(load, wait + longer, cap) <= base);
            // Stable (more servers than load), and never absurd.
            prop_assert!(load == 0.0 || f64::from(base) > load);
            prop_assert!(f64::from(base) <= load + 2.4 * load.sqrt() + 2.0);
        }
    }
}
