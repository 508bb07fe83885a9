//! The wait-target policy: bounds, monotony, idle-only scale downs, its
//! reasons, and the reference's decisions untouched without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use wpa_core::{
    BacklogGrowth, Decision, History, Idleness, Limit, MaxDisruption, Observation, QueueSnapshot,
    RawWpaSpec, Rule, ScaleOperation, TargetReplicas, WpaSpec, desired_replicas, plan,
    plan_with_history,
};

/// A decision with no history (no backlog growth known).
fn decide(spec: &WpaSpec, queue: &QueueSnapshot, replicas: TargetReplicas) -> Decision {
    wpa_core::decide(spec, queue, replicas, None)
}

fn spec(min: u32, max: u32, seconds_per_job: f64, target_wait: f64, startup: f64) -> WpaSpec {
    WpaSpec::new(min, max, 10, seconds_per_job, MaxDisruption::DEFAULT)
        .and_then(|spec| spec.with_wait_target(target_wait, startup))
        .unwrap()
}

fn replicas(current: u32) -> TargetReplicas {
    TargetReplicas::new(current, current)
}

fn queue(messages: u32, in_flight: u32, per_minute: f64) -> QueueSnapshot {
    QueueSnapshot::new(messages)
        .with_in_flight(in_flight)
        .with_arrival_rate(per_minute)
        .unwrap()
}

#[test]
fn sizes_for_the_arrivals_with_erlang_c() {
    // 600 msg/min of 1 s jobs counted over a day: 10 busy on average (9.97
    // net of three sigma of 864,000 counted); a 20 s target needs 11.
    let a_day = Duration::from_secs(86_400);
    let decision = decide(
        &spec(0, 100, 1.0, 20.0, 30.0),
        &queue(0, 0, 600.0).with_arrival_rate_window(a_day),
        replicas(4),
    );
    assert_eq!(decision.rule, Rule::WaitTargetUp);
    assert_eq!(decision.desired_replicas, 11);
    let wait = decision.inputs.wait.unwrap();
    assert_eq!((wait.for_arrivals, wait.for_backlog), (11, 0));
    assert_eq!(
        decision.to_string(),
        "99% of waits under 20 s need 11 workers: 10.0 busy on average need 11; 4 run: scale up"
    );
    // A tighter target relative to the job time needs more: 1 s target, 1 s jobs.
    let tight = decide(
        &spec(0, 100, 1.0, 1.0, 30.0),
        &queue(0, 0, 600.0).with_arrival_rate_window(a_day),
        replicas(4),
    );
    assert_eq!(tight.desired_replicas, 14);
    // Counted over the default 30 s, 300 messages: for jobs within the
    // grace period one sigma (17) of them may be noise, so a scale up
    // sizes for 9.4 busy (if the rate is real, the backlog it builds adds
    // the rest), while a pool of 10 is kept: the band is the rate plus its
    // noise.
    let noisy = decide(
        &spec(0, 100, 1.0, 20.0, 30.0),
        &queue(0, 0, 600.0),
        replicas(4),
    );
    assert_eq!(noisy.desired_replicas, 10);
    assert_eq!(
        noisy.to_string(),
        "99% of waits under 20 s need 10 workers: 10.0 busy on average \
         (at least 9.4 net of the rate's noise) need 10; 4 run: scale up"
    );
    // Jobs that outlast the grace period take three sigma as noise: the
    // same 10 busy (600 msg/min of 60 s jobs is 600), 300 counted, less 52.
    let long = decide(
        &spec(0, 1_000, 60.0, 20.0, 30.0),
        &queue(0, 0, 600.0),
        replicas(4),
    );
    let wait = long.inputs.wait.unwrap();
    assert!((wait.load_up - (300.0 - 3.0 * 300f64.sqrt()) / 30.0 * 60.0).abs() < 1e-9);
    let kept = decide(
        &spec(0, 100, 1.0, 20.0, 30.0),
        &queue(0, 0, 600.0),
        replicas(10),
    );
    assert_eq!(
        (kept.rule, kept.desired_replicas),
        (Rule::WaitTargetHold, 10)
    );
}

#[test]
fn a_backlog_is_sized_for_the_start_up_delay() {
    // 10 ready and busy, 400 waiting, no arrivals; 1 s jobs, 20 s target,
    // 30 s start-up: horizon max(20, 30 + 10) = 40 s. Ready workers pick
    // up 0 + 10 * 40 = 400 within it: no new pod is needed.
    let s = spec(0, 500, 1.0, 20.0, 30.0);
    let enough = decide(&s, &queue(410, 10, 0.0), replicas(10));
    assert_eq!(enough.rule, Rule::WaitTargetHold);
    assert_eq!(enough.desired_replicas, 10);
    // 1,000 waiting: 600 more; a new pod picks 1 + 10 = 11 by then: 55 more.
    let more = decide(&s, &queue(1_010, 10, 0.0), replicas(10));
    assert_eq!(more.rule, Rule::WaitTargetUp);
    assert_eq!(more.desired_replicas, 10 + 55);
    assert!(
        more.to_string()
            .contains("1000 waiting messages need 65 to be picked up within 40 s"),
        "{more}"
    );
    // Pods still starting count only from when they are ready.
    let starting = decide(&s, &queue(1_010, 10, 0.0), TargetReplicas::new(30, 10));
    assert_eq!(starting.desired_replicas, 65);
}

/// A fixed instant for decisions with a history.
fn an_instant() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
}

/// No scale yet; the last poll, 20 s before `now`, counted `messages`.
fn counted_20_s_ago(messages: u32, now: SystemTime) -> History {
    History {
        last_scale_time: None,
        last_observation: Some(Observation {
            messages,
            at: now - Duration::from_secs(20),
        }),
    }
}

/// A backlog that grew by `per_second` over `over_seconds`.
fn grown(per_second: f64, over_seconds: f64) -> BacklogGrowth {
    BacklogGrowth {
        per_second,
        over_seconds,
    }
}

/// 20 s jobs: 63 of 66 workers busy at 3.3 msg/s, 22 messages waiting,
/// which the pool absorbs in 7 s. A growth within its noise (the count's
/// change over 15 s swings by 0.66 msg/s, 13 workers' worth of 20 s jobs)
/// is M/M/c's own swing, not a pool behind: no pod is added for it. One
/// beyond twice that noise is, and the arrivals it shows are sized for.
#[test]
fn a_backlog_growing_within_its_noise_is_not_a_pool_behind() {
    let s = spec(0, 500, 20.0, 20.0, 30.0);
    let q = queue(85, 63, 198.0);
    let at = |growth| wpa_core::decide(&s, &q, replicas(66), growth);
    let swing = at(Some(grown(0.53, 15.0)));
    assert_eq!(
        (swing.rule, swing.desired_replicas),
        (Rule::WaitTargetHold, 66),
        "{swing}"
    );
    assert_eq!(swing.inputs.wait.unwrap().arriving_per_second, 3.3);
    let burst = at(Some(grown(2.0, 15.0)));
    assert_eq!(burst.rule, Rule::WaitTargetUp, "{burst}");
    let wait = burst.inputs.wait.unwrap();
    assert!((wait.arriving_per_second - (2.0 + 63.0 / 20.0)).abs() < 1e-9);
    assert!(burst.desired_replicas >= 103, "{burst}");
    // Over a minute the change is half as noisy: 0.8 msg/s is beyond it.
    let steady_rise = at(Some(grown(0.8, 60.0)));
    assert_eq!(steady_rise.rule, Rule::WaitTargetUp, "{steady_rise}");
    // 1 s jobs: the growth's noise is within the in-flight count's, so it
    // is taken as it is (the backlog the README's burst example builds).
    let short = spec(0, 1_000, 1.0, 20.0, 30.0);
    let small = wpa_core::decide(
        &short,
        &queue(2_024, 24, 1_200.0),
        replicas(24),
        Some(grown(0.5, 20.0)),
    );
    assert_eq!(small.inputs.wait.unwrap().arriving_per_second, 24.5);
}

/// A lagging rate (CloudWatch's) cannot hide a burst: while messages wait,
/// the backlog's growth since the last step counts as arrivals.
#[test]
fn the_backlog_growth_raises_a_lagging_rate() {
    // 20 msg/min measured, but 2,000 more messages than 20 s ago.
    let s = spec(0, 1_000, 1.0, 20.0, 30.0);
    let now = an_instant();
    let q = queue(2_024, 24, 1_200.0);
    let history = counted_20_s_ago(24, now);
    let lagging = plan(&s, q, replicas(24), Duration::ZERO, None, now);
    let growing = plan_with_history(&s, q, replicas(24), Duration::ZERO, history, now);
    let arriving = |plan: &wpa_core::Plan| plan.decision.inputs.wait.unwrap().arriving_per_second;
    assert_eq!(arriving(&lagging), 20.0);
    // 100 msg/s of growth plus 24 taken per second.
    assert_eq!(arriving(&growing), 124.0);
    assert!(
        growing.decision.desired_replicas > lagging.decision.desired_replicas + 50,
        "{} / {}",
        growing.decision,
        lagging.decision
    );
    // With nothing waiting, growth is noise: the rate stands.
    let calm = plan_with_history(
        &s,
        queue(24, 24, 1_200.0),
        replicas(24),
        Duration::ZERO,
        history,
        now,
    );
    assert_eq!(arriving(&calm), 20.0);
    // History::after keeps what the next step needs.
    let next = History::after(&growing, now);
    assert_eq!(
        next.last_observation,
        Some(Observation {
            messages: 2_024,
            at: now
        })
    );
    assert_eq!(
        next.backlog_growth(2_034, now + Duration::from_secs(10)),
        Some(grown(1.0, 10.0))
    );
    assert_eq!(next.backlog_growth(2_034, now), None);
}

/// Near full load an M/M/c queue swings by hundreds of messages, a few
/// seconds' wait: not a burst. The arrivals of the horizon's last half
/// target may be picked up after it, and while behind the pool needs the
/// workers the arrivals keep busy, not enough to empty the queue at once.
#[test]
fn a_swing_near_full_load_adds_a_few_pods_not_dozens() {
    // 39 ready and busy, 229 waiting (6 s of work for them), 38.1 msg/s
    // counted over CloudWatch's 300 s; 1 s jobs, 20 s target, 30 s
    // start-up: horizon 40 s. 229 + 38.1 * 30 = 1372 pick-ups needed,
    // 39 * 40 = 1560 come from the ready workers.
    let s = spec(0, 300, 1.0, 20.0, 30.0);
    let cloudwatch = Duration::from_secs(300);
    let q = queue(268, 39, 2_286.0).with_arrival_rate_window(cloudwatch);
    let swing = decide(&s, &q, replicas(39));
    // Behind (229 waiting take the 39 more than a quarter of the target),
    // the backlog asks for the workers the arrivals keep busy: 39.
    let wait = swing.inputs.wait.unwrap();
    assert_eq!(wait.for_backlog, 39, "{swing}");
    assert_eq!(
        (swing.rule, swing.desired_replicas),
        (Rule::WaitTargetHold, 39),
        "{swing}"
    );
    // 60 more messages than 20 s ago: 3 msg/s beyond what the workers
    // take, 42 arriving. The horizon still needs no new pod, but short of
    // 42 workers the pool falls further behind.
    let now = an_instant();
    let history = counted_20_s_ago(208, now);
    let growing = plan_with_history(&s, q, replicas(39), Duration::ZERO, history, now);
    let wait = growing.decision.inputs.wait.unwrap();
    assert_eq!(wait.arriving_per_second, 42.0);
    assert_eq!(wait.for_backlog, 42, "{}", growing.decision);
    assert_eq!(growing.decision.desired_replicas, 42);
    // Jobs longer than the horizon: one worker per arrival within it
    // (the rate, 38.1 msg/s, above 3 + 39 / 240: 1524 in 40 s), not per
    // arrival of a whole job time (9144 in 240 s).
    let long = spec(0, 20_000, 240.0, 20.0, 30.0);
    let long_plan = plan_with_history(&long, q, replicas(39), Duration::ZERO, history, now);
    let long_wait = long_plan.decision.inputs.wait.unwrap();
    assert_eq!(long_wait.for_backlog, 1_524, "{}", long_plan.decision);
}

#[test]
fn the_oldest_age_shortens_the_horizon() {
    let s = spec(0, 500, 1.0, 120.0, 10.0);
    let young = decide(&s, &queue(2_010, 10, 0.0), replicas(10));
    let old = decide(
        &s,
        &queue(2_010, 10, 0.0).with_oldest_age(Duration::from_secs(60)),
        replicas(10),
    );
    assert!(
        old.desired_replicas > young.desired_replicas,
        "{old} / {young}"
    );
}

#[test]
fn scales_down_past_the_band_to_what_headroom_needs() {
    // 60 msg/min of 1 s jobs: 1 busy on average. 40 workers is far too many.
    let s = spec(0, 100, 1.0, 20.0, 30.0);
    let decision = decide(&s, &queue(1, 1, 60.0), replicas(40));
    assert_eq!(decision.rule, Rule::WaitTargetDown);
    let wait = decision.inputs.wait.unwrap();
    assert_eq!(decision.desired_replicas, wait.keep);
    assert!(wait.keep >= wait.need && wait.keep < 40, "{wait:?}");
    // Just above what is needed: kept (the band).
    let hold = decide(&s, &queue(1, 1, 60.0), replicas(wait.keep));
    assert_eq!(hold.rule, Rule::WaitTargetHold);
    assert_eq!(hold.desired_replicas, wait.keep);
    // Nothing at all: down to minReplicas at once.
    let idle = decide(&s, &queue(0, 0, 0.0), replicas(40));
    assert_eq!(idle.desired_replicas, 0);
}

/// 0.1 msg/s of 4 min jobs counted over CloudWatch's 5 minutes, 24 in
/// flight, 30 s start-up, 20 s target.
fn long_jobs(messages: u32, in_flight: u32) -> (WpaSpec, QueueSnapshot) {
    let queue = queue(messages, in_flight, 6.0).with_arrival_rate_window(Duration::from_secs(300));
    (spec(0, 400, 240.0, 20.0, 30.0), queue)
}

#[test]
fn idle_first_long_jobs_track_the_in_flight_count() {
    // 24 in flight, 0.1 msg/s: of them 24 * exp(-30/240) still run when a
    // pod started now is ready, and 2.8 arrivals: 24.0 jobs, sd 2.70
    // (2.49 survivors, 2.82 arrivals, 2.0 completions within 20 s). With
    // 1/12 of a job finished per worker within the target, less the 0.9
    // the target's arrivals take (0.045 msg/s net of the rate's noise),
    // 28 workers cover two standard deviations up:
    // (24 + 0.9 + 2 * 2.70) / (1 + 1/12) = 27.98.
    let (s, q) = long_jobs(24, 24);
    let tracked = decide(&s, &q, replicas(20).with_idle_pods(0));
    let wait = tracked.inputs.wait.unwrap();
    let demand = wait.tracked.unwrap();
    assert!((demand.mean - 24.0).abs() < 1e-9, "{demand:?}");
    assert!((demand.sd - 7.3088f64.sqrt()).abs() < 1e-3, "{demand:?}");
    assert_eq!((wait.for_arrivals, tracked.desired_replicas), (28, 28));
    // Erlang C on the load (the rate less its noise, at least the 24 in
    // flight less one sigma: 19.1) asks 30: a static pool must cover every
    // swing of the Poisson load.
    assert_eq!(wait.for_load, 30, "{tracked}");
    assert_eq!(
        tracked.to_string(),
        "99% of waits under 20 s need 28 workers: 24.0 busy on average (at least 19.1 net of the \
         rate's noise) need 30, but of the 24 in flight and the arrivals 24.0 will run when a pod \
         started now is ready, which 28 hold (tracked: idle pods can go); 20 run: scale up"
    );
    // Without a busy signal nothing is tracked: Erlang C decides.
    let static_pool = decide(&s, &q, replicas(20));
    let static_wait = static_pool.inputs.wait.unwrap();
    assert_eq!(static_wait.tracked, None);
    assert_eq!(static_pool.desired_replicas, wait.for_load);
    // Nor without an in-flight count (a plain Redis list): the busy count
    // would be a guess from the backlog.
    let uncounted = QueueSnapshot::new(24)
        .with_in_flight_uncounted()
        .with_arrival_rate(6.0)
        .unwrap();
    let guessed = decide(&s, &uncounted, replicas(20).with_idle_pods(0));
    assert_eq!(guessed.inputs.wait.unwrap().tracked, None);
    // Jobs no longer than the start-up are not tracked either.
    let short = spec(0, 400, 30.0, 20.0, 30.0);
    let short_wait = decide(&short, &q, replicas(20).with_idle_pods(0))
        .inputs
        .wait
        .unwrap();
    assert_eq!(short_wait.tracked, None);
}

#[test]
fn a_tracked_pool_shrinks_in_steps_past_its_band() {
    // Keep: 2.5 sigma, (24.90 + 6.76) / (13/12) = 29.23; shrink only
    // above 4.5 sigma, (24.90 + 12.17) / (13/12) = 34.22.
    let (s, q) = long_jobs(24, 24);
    let at = |current: u32| decide(&s, &q, replicas(current).with_idle_pods(current - 24));
    let wait = at(30).inputs.wait.unwrap();
    assert_eq!((wait.need, wait.keep, wait.shrink_above), (28, 30, 35));
    for current in 28..=35 {
        let hold = at(current);
        assert_eq!(
            (hold.rule, hold.desired_replicas),
            (Rule::WaitTargetHold, current),
            "{hold}"
        );
    }
    let down = at(36);
    assert_eq!(
        (down.rule, down.desired_replicas),
        (Rule::WaitTargetDown, 30)
    );
    assert_eq!(
        down.to_string().rsplit("; ").next(),
        Some("36 run, more than the 35 that the load plus its noise would need: down to 30"),
        "{down}"
    );
    // Never below the jobs in flight, whatever the pods say.
    let (s, q) = long_jobs(40, 40);
    let busy = decide(&s, &q, replicas(60).with_idle_pods(20));
    assert!(busy.desired_replicas >= 40, "{busy}");
    // Only pods known idle go: 3 of 13 idle, 3 removed.
    let few = decide(&s, &long_jobs(24, 24).1, replicas(37).with_idle_pods(3));
    assert_eq!(
        (few.desired_replicas, few.limit),
        (34, Limit::IdleWorkers),
        "{few}"
    );
}

#[test]
fn a_rising_in_flight_count_is_tracked_before_the_rate_shows_it() {
    // A burst: the messages grew by 1 a second while CloudWatch still says
    // 0.1 msg/s. The arrivals are at least what the workers take plus the
    // growth: 1 + 60/240, so 32 more jobs run a start-up from now.
    let (s, q) = long_jobs(60, 60);
    let lagging = decide(&s, &q, replicas(70).with_idle_pods(10));
    let rising = wpa_core::decide(
        &s,
        &q,
        replicas(70).with_idle_pods(10),
        Some(grown(1.0, 20.0)),
    );
    let (lagging, rising) = (lagging.inputs.wait.unwrap(), rising.inputs.wait.unwrap());
    let more = rising.tracked.unwrap().mean - lagging.tracked.unwrap().mean;
    let expected = (1.25 - 0.1) * 240.0 * (1.0 - (-30.0f64 / 240.0).exp());
    assert!((more - expected).abs() < 1e-9, "{more} vs {expected}");
    assert!(rising.need > lagging.need, "{rising:?}");
    // Growth within the in-flight count's noise is not a rise.
    let noise = wpa_core::decide(
        &s,
        &q,
        replicas(70).with_idle_pods(10),
        Some(grown(0.2, 20.0)),
    );
    assert_eq!(noise.inputs.wait.unwrap().tracked, lagging.tracked);
}

#[test]
fn never_removes_a_pod_that_may_hold_a_message() {
    let s = spec(0, 100, 10.0, 30.0, 30.0);
    // 30 run, 12 hold a message, the rate says 1 busy: at most 18 go.
    let decision = decide(&s, &queue(12, 12, 6.0), replicas(30));
    assert!(decision.desired_replicas >= 12, "{decision}");
    // Jobs longer than the default grace period and over half the pods
    // busy: no scale down (a Deployment picks victims at random, so it
    // would likely kill a job).
    let long = spec(0, 100, 60.0, 30.0, 30.0);
    let busy = decide(&long, &queue(20, 20, 6.0), replicas(30));
    assert_eq!(busy.rule, Rule::WaitTargetHold, "{busy}");
    // Jobs that end within it drain: down, but not below the busy pods.
    let short = decide(&s, &queue(20, 20, 6.0), replicas(60));
    assert_eq!(short.rule, Rule::WaitTargetDown, "{short}");
    assert!(short.desired_replicas >= 20, "{short}");
    // Without an in-flight count, every message may be held.
    let unknown = decide(
        &s,
        &QueueSnapshot::new(10).with_arrival_rate(6.0).unwrap(),
        replicas(30),
    );
    assert!(unknown.desired_replicas >= 10, "{unknown}");
    assert_eq!(unknown.rule, Rule::WaitTargetDown, "{unknown}");
    // That is a guess: even an empty count does not vouch for every pod,
    // so maxDisruption bounds each step.
    let tenth = WpaSpec::new(0, 100, 10, 10.0, MaxDisruption::Percent(10))
        .and_then(|spec| spec.with_wait_target(30.0, 30.0))
        .unwrap();
    let guessed = decide(
        &tenth,
        &QueueSnapshot::new(0).with_arrival_rate(6.0).unwrap(),
        replicas(30),
    );
    assert_eq!(guessed.desired_replicas, 27, "{guessed}");
    assert_eq!(guessed.limit, Limit::DisruptionBudget, "{guessed}");
    // A count of none in flight does: no budget.
    let vouched = decide(&tenth, &queue(0, 0, 6.0), replicas(30));
    assert!(vouched.desired_replicas < 27, "{vouched}");
    // A queue that drops what it hands out (a plain Redis list) vouches
    // for no pod, empty or not, and says so.
    for waiting in [0, 3] {
        let plain = decide(
            &s,
            &QueueSnapshot::new(waiting).with_in_flight_uncounted(),
            replicas(30),
        );
        assert_eq!(
            (plain.rule, plain.desired_replicas),
            (Rule::WaitTargetHold, 30),
            "{plain}"
        );
        assert!(
            plain.to_string().ends_with(
                "keep 30: the queue does not count what its workers hold, so no pod is known \
                 idle (a busyProbe tells)"
            ),
            "{plain}"
        );
    }
    // There the waiting messages are besides what the ready workers hold:
    // 5 waiting on 10 ready means 10 busy.
    let behind = decide(
        &s,
        &QueueSnapshot::new(5).with_in_flight_uncounted(),
        replicas(10),
    );
    let wait = behind.inputs.wait.unwrap();
    assert_eq!(wait.waiting, 5, "{behind}");
    assert!(wait.load >= 10.0 - 10f64.sqrt() - 1e-9, "{behind}");
    // beanstalkd's idle count is used when it allows more.
    let counted = decide(
        &s,
        &queue(0, 0, 6.0).with_idleness(Idleness::Idle(30)),
        replicas(30),
    );
    assert!(counted.desired_replicas < 30);
}

#[test]
fn limits_read_in_words() {
    let s = spec(0, 20, 1.0, 20.0, 30.0);
    let capped = decide(&s, &queue(0, 0, 6_000.0), replicas(4));
    assert_eq!(
        (capped.desired_replicas, capped.limit),
        (20, Limit::MaxReplicas)
    );
    assert!(
        capped.to_string().ends_with("; capped at maxReplicas 20"),
        "{capped}"
    );
    let floor = decide(
        &spec(5, 20, 1.0, 20.0, 30.0),
        &queue(0, 0, 0.0),
        replicas(10),
    );
    assert_eq!((floor.desired_replicas, floor.limit), (5, Limit::Floor));
    let s = WpaSpec::new(0, 100, 10, 1.0, "2".parse().unwrap())
        .and_then(|spec| spec.with_wait_target(20.0, 30.0))
        .unwrap();
    // Some pods may hold a message: maxDisruption applies.
    let budget = decide(&s, &queue(3, 3, 60.0), replicas(40));
    assert_eq!(
        (budget.desired_replicas, budget.limit),
        (38, Limit::DisruptionBudget)
    );
    // None does: it does not.
    let free = decide(&s, &queue(0, 0, 0.0), replicas(40));
    assert_eq!(free.desired_replicas, 0);
}

#[test]
fn the_hold_is_the_start_up_time_not_the_controller_delay() {
    let s = spec(0, 100, 1.0, 20.0, 45.0);
    let now = an_instant();
    let delay = Duration::from_secs(600);
    let step = |ago: u64| {
        plan(
            &s,
            queue(0, 0, 0.0),
            replicas(10),
            delay,
            Some(now - Duration::from_secs(ago)),
            now,
        )
        .operation
    };
    assert!(matches!(step(30), ScaleOperation::ScaleDownHeld(_)));
    assert_eq!(step(46), ScaleOperation::ScaleDown);
}

#[test]
fn validation_names_the_fields() {
    let raw = |wait: Option<f64>, startup: Option<f64>, seconds: Option<f64>| RawWpaSpec {
        min_replicas: Some(0),
        max_replicas: Some(10),
        target_messages_per_worker: Some(1),
        seconds_to_process_one_job: seconds,
        target_wait_seconds: wait,
        worker_startup_seconds: startup,
        ..RawWpaSpec::default()
    };
    let error = |raw: RawWpaSpec| {
        raw.validate(MaxDisruption::DEFAULT)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error(raw(Some(20.0), None, None)),
        "targetWaitSeconds needs secondsToProcessOneJob (> 0): the wait-target policy sizes the pool from how long a job takes"
    );
    assert_eq!(
        error(raw(Some(0.0), None, Some(1.0))),
        "targetWaitSeconds must be > 0 and <= 86400 seconds, got 0"
    );
    assert_eq!(
        error(raw(Some(20.0), Some(-1.0), Some(1.0))),
        "workerStartupSeconds must be >= 0 and <= 86400 seconds, got -1"
    );
    assert!(
        raw(Some(f64::NAN), None, Some(1.0))
            .validate(MaxDisruption::DEFAULT)
            .is_err()
    );
    let spec = raw(Some(20.0), None, Some(1.0))
        .validate(MaxDisruption::DEFAULT)
        .unwrap();
    assert_eq!(
        spec.wait_target().map(|t| t.worker_startup_seconds()),
        Some(30.0)
    );
    // The raw form round-trips.
    assert_eq!(spec.to_raw().validate(MaxDisruption::DEFAULT), Ok(spec));
}

fn arb_queue() -> impl Strategy<Value = (u32, Option<u32>, Option<f64>, Idleness)> {
    (
        0..5_000u32,
        prop::option::of(0..5_000u32),
        prop::option::of(0.0..60_000.0f64),
        prop_oneof![
            Just(Idleness::Unknown),
            Just(Idleness::AllIdle),
            (0..500u32).prop_map(Idleness::Idle)
        ],
    )
}

fn snapshot(
    (messages, in_flight, rate, idleness): (u32, Option<u32>, Option<f64>, Idleness),
) -> QueueSnapshot {
    let mut snapshot = QueueSnapshot::new(messages).with_idleness(idleness);
    if let Some(in_flight) = in_flight {
        snapshot = snapshot.with_in_flight(in_flight);
    }
    if let Some(rate) = rate {
        snapshot = snapshot.with_arrival_rate(rate).unwrap();
    }
    snapshot
}

fn arb_spec() -> impl Strategy<Value = WpaSpec> {
    (
        0..50u32,
        0..600u32,
        prop_oneof![0.01..5.0f64, 5.0..600.0f64],
        0.5..600.0f64,
        0.0..300.0f64,
    )
        .prop_map(|(min, max, seconds, wait, startup)| spec(min, max, seconds, wait, startup))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn within_bounds(spec in arb_spec(), q in arb_queue(), current in 0..700u32, ready in 0..700u32) {
        let decision = decide(&spec, &snapshot(q), TargetReplicas::new(current, ready));
        let desired = decision.desired_replicas;
        prop_assert!(desired <= spec.max_replicas(), "{decision}");
        if spec.min_replicas() < spec.max_replicas() {
            prop_assert!(desired >= spec.min_replicas(), "{decision}");
        }
        prop_assert!(!decision.to_string().is_empty());
    }

    /// More waiting never means fewer workers.
    #[test]
    fn monotone_in_the_backlog(
        spec in arb_spec(),
        q in arb_queue(),
        more in 0..5_000u32,
        current in 0..700u32,
    ) {
        let (messages, in_flight, rate, idleness) = q;
        let fewer = decide(&spec, &snapshot(q), replicas(current));
        let larger = decide(&spec, &snapshot((messages + more, in_flight, rate, idleness)), replicas(current));
        prop_assert!(larger.desired_replicas >= fewer.desired_replicas, "{fewer} / {larger}");
    }

    /// A scale down removes no pod that may hold a message: at most the
    /// queue's idle count or the pods beyond the in-flight count (beyond
    /// maxReplicas, the bound wins).
    #[test]
    fn never_more_removed_than_idle(spec in arb_spec(), q in arb_queue(), current in 0..700u32) {
        let snapshot = snapshot(q);
        let decision = decide(&spec, &snapshot, replicas(current));
        let removed = current.saturating_sub(decision.desired_replicas);
        let holding = snapshot.in_flight().unwrap_or(snapshot.messages()).min(current);
        let idle = snapshot.idle_workers(current).unwrap_or(0).min(current);
        let free = idle.max(current - holding);
        prop_assert!(
            removed <= free || decision.desired_replicas == spec.max_replicas(),
            "{decision}: removed {removed}, free {free}"
        );
    }

    /// Where the queue does not count what its workers hold, only its idle
    /// count vouches for a pod.
    #[test]
    fn uncounted_in_flight_removes_only_the_idle(
        spec in arb_spec(),
        q in arb_queue(),
        current in 0..700u32,
    ) {
        let (messages, _, rate, idleness) = q;
        let snapshot = snapshot((messages, None, rate, idleness)).with_in_flight_uncounted();
        let decision = decide(&spec, &snapshot, replicas(current));
        let removed = current.saturating_sub(decision.desired_replicas);
        let idle = snapshot.idle_workers(current).unwrap_or(0).min(current);
        prop_assert!(
            removed <= idle || decision.desired_replicas == spec.max_replicas(),
            "{decision}: removed {removed}, idle {idle}"
        );
    }

    /// Tracked (idle-first), more waiting still never means fewer workers,
    /// and a scale down never goes below what the pool needs nor removes a
    /// pod not known idle.
    #[test]
    fn a_tracked_pool_is_monotone_and_removes_only_the_idle(
        spec in arb_spec(),
        q in arb_queue(),
        more in 0..5_000u32,
        current in 0..700u32,
        idle in 0..700u32,
    ) {
        let (messages, in_flight, rate, idleness) = q;
        let pods = replicas(current).with_idle_pods(idle.min(current));
        let fewer = decide(&spec, &snapshot(q), pods);
        let larger = decide(&spec, &snapshot((messages + more, in_flight, rate, idleness)), pods);
        prop_assert!(larger.desired_replicas >= fewer.desired_replicas, "{fewer} / {larger}");
        let removed = current.saturating_sub(fewer.desired_replicas);
        prop_assert!(
            removed <= idle.min(current) || fewer.desired_replicas == spec.max_replicas(),
            "{fewer}: removed {removed} of {idle} idle"
        );
        let wait = fewer.inputs.wait.unwrap();
        prop_assert!(wait.need <= wait.keep && wait.keep <= wait.shrink_above, "{wait:?}");
        if fewer.rule == Rule::WaitTargetDown {
            prop_assert!(current > wait.shrink_above, "{fewer}");
            prop_assert!(fewer.desired_replicas >= wait.keep.min(spec.max_replicas()), "{fewer}");
        }
    }

    /// Without a wait target, `decide` is the reference's decision.
    #[test]
    fn the_reference_without_a_wait_target(
        spec in arb_spec(),
        q in arb_queue(),
        current in 0..700u32,
    ) {
        let reference = spec.without_wait_target();
        let snapshot = snapshot(q);
        prop_assert_eq!(
            wpa_core::decide(&reference, &snapshot, replicas(current), Some(grown(123.0, 20.0))),
            desired_replicas(&reference, &snapshot, current)
        );
    }
}

/// After a burst of 2 s jobs: nothing waits, nothing is in flight, but
/// CloudWatch's window [now-10, now-5 min] still counts 50 msg/s.
fn after_the_burst() -> (WpaSpec, QueueSnapshot) {
    let queue = queue(0, 0, 3_000.0).with_arrival_rate_window(Duration::from_secs(300));
    (spec(0, 200, 2.0, 20.0, 30.0), queue)
}

#[test]
fn a_rate_of_work_that_has_ended_keeps_no_pool_once_the_pods_confirm_it() {
    let (s, q) = after_the_burst();
    // The pods say all 100 are idle: 0 in service make a load above 7.5
    // implausible, so the pool goes down to what 7.5 needs, not 100's.
    let idle = decide(&s, &q, replicas(100).with_idle_pods(100));
    let wait = idle.inputs.wait.unwrap();
    assert_eq!((wait.measured_load, wait.load), (100.0, 7.5), "{idle}");
    assert_eq!(idle.rule, Rule::WaitTargetDown, "{idle}");
    assert!(idle.desired_replicas <= 12, "{idle}");
    assert!(
        idle.to_string().contains(
            "7.5 busy on average (the rate says 100.0, more than the jobs in service make \
             plausible: it counted work that has ended; at least 7.3 net of the rate's noise) \
             need 8"
        ),
        "{idle}"
    );
    // A queue's own idle count does not confirm it (RabbitMQ's derives
    // from the same sampled count): the rate stands.
    let counted = q.with_idleness(Idleness::Idle(100));
    assert_eq!(
        decide(&s, &counted, replicas(100))
            .inputs
            .wait
            .unwrap()
            .load,
        100.0
    );
    // Busy pods with nothing in flight: the consumers delete a message when
    // they start its job (Celery's early ack), so the count says nothing of
    // them, and the rate stands.
    let early_ack = decide(&s, &q, replicas(100).with_idle_pods(0));
    assert_eq!(early_ack.inputs.wait.unwrap().load, 100.0, "{early_ack}");
    assert_eq!(early_ack.desired_replicas, 100, "{early_ack}");
    // Nothing confirms the count (SQS without a busyProbe): the rate stands.
    let unconfirmed = decide(&s, &q, replicas(100));
    assert_eq!(
        unconfirmed.inputs.wait.unwrap().load,
        100.0,
        "{unconfirmed}"
    );
    // Messages waiting: the pool is behind, and the busy count is capped
    // by its size, not by the load.
    let behind = queue(500, 0, 3_000.0).with_arrival_rate_window(Duration::from_secs(300));
    let behind = decide(&s, &behind, replicas(10).with_idle_pods(10));
    assert_eq!(behind.inputs.wait.unwrap().load, 100.0, "{behind}");
    assert_eq!(behind.rule, Rule::WaitTargetUp, "{behind}");
}

proptest! {
    #[test]
    fn the_rate_is_capped_only_below_what_it_says(
        per_minute in 0.0..100_000.0f64,
        in_flight in 0u32..2_000,
        idle in 0u32..2_000,
        seconds_per_job in 0.01..600.0f64,
    ) {
        let s = spec(0, 5_000, seconds_per_job, 20.0, 30.0);
        let q = queue(in_flight, in_flight, per_minute);
        let current = in_flight.max(1) + idle;
        let decision = decide(&s, &q, replicas(current).with_idle_pods(idle));
        let wait = decision.inputs.wait.unwrap();
        let busy = f64::from(in_flight);
        prop_assert!(wait.load <= wait.measured_load.max(busy) + 1e-9);
        prop_assert!(wait.load >= busy - busy.sqrt() - 1e-9);
        // The cap binds only past the plausible load of what is in service.
        let plausible = wpa_core::wait_target::plausible_load(f64::from(current - idle));
        prop_assert!(wait.load >= wait.measured_load.min(plausible) - 1e-6);
    }
}
