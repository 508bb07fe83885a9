#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The simulator against the reference's known behaviours, conservation
//! and determinism.

use std::time::Duration;

use wpa_core::{MaxDisruption, Rule, WpaSpec};
use wpa_sim::{
    ArrivalProcess, Backend, HpaSettings, KedaSettings, Outcome, Policy, RateShape, ServiceTime,
    SimConfig, Trace, Workload, builtin, simulate,
};

fn wpa(spec: WpaSpec) -> Policy {
    Policy::Wpa {
        spec,
        scale_down_delay: Duration::from_secs(600),
        idle_first: false,
    }
}

fn spec(min: u32, max: u32, target: u32, seconds: f64, disruption: &str) -> WpaSpec {
    WpaSpec::new(min, max, target, seconds, disruption.parse().unwrap()).unwrap()
}

fn load_then_stop(
    per_second: f64,
    minutes: f64,
    horizon_s: f64,
    service: ServiceTime,
) -> SimConfig {
    SimConfig::new(
        Workload {
            rate: RateShape::StepBurst {
                base: 0.0,
                burst: per_second,
                start_s: 0.0,
                duration_s: minutes * 60.0,
            },
            process: ArrivalProcess::Poisson,
            service,
        },
        horizon_s,
        7,
    )
}

fn assert_conserved(outcome: &Outcome) {
    assert_eq!(
        outcome.messages_arrived,
        outcome.messages_processed
            + outcome.messages_waiting_at_end
            + outcome.messages_in_flight_at_end,
        "{}: arrived {} processed {} waiting {} in flight {}",
        outcome.policy,
        outcome.messages_arrived,
        outcome.messages_processed,
        outcome.messages_waiting_at_end,
        outcome.messages_in_flight_at_end
    );
}

#[test]
fn every_message_is_processed_or_still_queued() {
    let mut checked = 0;
    for scenario in builtin(3).unwrap() {
        for (backend, _) in Backend::ALL {
            let mut config = scenario.config.clone();
            config.backend = backend;
            config.horizon_s = config.horizon_s.min(4.0 * 3_600.0);
            for policy in Policy::comparison(&scenario.spec) {
                let outcome = simulate(&config, &policy, None).unwrap();
                assert!(outcome.messages_arrived > 0, "{}", scenario.name);
                assert_conserved(&outcome);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 90);
}

#[test]
fn interrupted_jobs_come_back_and_are_conserved() {
    // Long jobs, then nothing: the WPA's 100% scale down kills busy workers
    // (idleness is unknown while jobs run) and their messages reappear.
    let mut config = load_then_stop(
        0.5,
        60.0,
        4.0 * 3_600.0,
        ServiceTime::LogNormal {
            mean: 300.0,
            sigma: 1.0,
        },
    );
    config.visibility_timeout_s = 45.0;
    let outcome = simulate(&config, &wpa(spec(0, 500, 1, 0.0, "100%")), None).unwrap();
    assert!(outcome.interrupted_jobs > 0, "expected interrupted jobs");
    assert!(outcome.redelivery_wait_mean_s.unwrap() >= 45.0);
    assert_conserved(&outcome);
    assert_eq!(
        outcome.messages_processed, outcome.messages_arrived,
        "all drained by the end"
    );
}

#[test]
fn same_seed_same_result_other_seed_other_arrivals() {
    let scenario = builtin(11)
        .unwrap()
        .into_iter()
        .find(|s| s.name == "burst")
        .unwrap();
    for policy in Policy::comparison(&scenario.spec) {
        let first = simulate(&scenario.config, &policy, None).unwrap();
        let second = simulate(&scenario.config, &policy, None).unwrap();
        assert_eq!(first, second);
        let mut other = scenario.config.clone();
        other.seed = 12;
        assert_ne!(
            simulate(&other, &policy, None).unwrap().messages_arrived,
            first.messages_arrived
        );
    }
    // Every policy of a comparison sees the very same arrivals.
    let arrived: Vec<u64> = Policy::comparison(&scenario.spec)
        .iter()
        .map(|p| {
            simulate(&scenario.config, p, None)
                .unwrap()
                .messages_arrived
        })
        .collect();
    assert!(arrived.windows(2).all(|w| w[0] == w[1]), "{arrived:?}");
}

/// One message at t = 3600 s on an idle queue with no workers.
fn single_message(backend: Backend) -> SimConfig {
    let trace = Trace::parse("0,0\n3600,1\n3601,0\n7200,0\n").unwrap();
    let mut config = SimConfig::new(
        Workload {
            rate: RateShape::Trace(trace),
            process: ArrivalProcess::Fluid,
            service: ServiceTime::Fixed { seconds: 1.0 },
        },
        7_200.0,
        1,
    );
    config.backend = backend;
    config.initial_replicas = Some(0);
    config
}

#[test]
fn scales_from_zero_on_the_first_message() {
    // (backend, secondsToProcessOneJob, latest scale-up after the message)
    let cases = [
        // Long poll sees the message at once, and the changed snapshot is
        // reconciled at once (the controller's reconcile_on).
        (Backend::Sqs, 1.0, 1.0),
        (Backend::Beanstalkd, 0.0, 1.0),
        // Without the rate the reference never long-polls: the 20 s short
        // poll, then the reconcile on its changed snapshot (<= 20 s).
        (Backend::Sqs, 0.0, 20.0),
    ];
    for (backend, seconds, bound) in cases {
        let outcome = simulate(
            &single_message(backend),
            &wpa(spec(0, 10, 1, seconds, "100%")),
            None,
        )
        .unwrap();
        let first = outcome.events.first().expect("a scale up");
        assert_eq!((first.from, first.to), (0, 1), "{backend:?} {seconds}");
        assert_eq!(first.rule, Some(Rule::ScaleFromZero));
        assert!(
            first.time_s >= 3_600.0 && first.time_s <= 3_600.0 + bound,
            "{backend:?} s={seconds}: scaled up at {}",
            first.time_s
        );
        assert_eq!(outcome.messages_processed, 1);
        // Waited for the scale up plus the 30 s start-up, no more.
        assert!(
            outcome.wait_max_s <= bound + 30.0 + 1.0,
            "{}",
            outcome.wait_max_s
        );
    }
}

#[test]
fn massive_scale_down_only_when_all_workers_are_idle() {
    // beanstalkd reports idle workers (current-waiting); maxDisruption 10%.
    let mut config = load_then_stop(
        50.0,
        30.0,
        3.0 * 3_600.0,
        ServiceTime::Exponential { mean: 1.0 },
    );
    config.backend = Backend::Beanstalkd;
    let outcome = simulate(&config, &wpa(spec(0, 100, 5, 0.0, "10%")), None).unwrap();
    let mut all_idle = 0;
    for event in outcome.events.iter().filter(|e| e.to < e.from) {
        let budget = MaxDisruption::Percent(10).budget(event.from);
        if u64::from(event.from - event.to) > budget {
            assert_eq!(event.rule, Some(Rule::AllIdle), "{event:?}");
            let idle = event.snapshot.and_then(|s| s.idle_workers(event.from));
            assert_eq!(idle, Some(event.from), "{event:?}");
            assert_eq!(event.snapshot.map(|s| s.messages()), Some(0));
            all_idle += 1;
        }
    }
    assert!(all_idle >= 1, "no massive scale down: {:?}", outcome.events);
    assert_eq!(
        outcome.interrupted_jobs, 0,
        "an all-idle scale down kills no job"
    );
}

#[test]
fn scale_down_waits_for_the_delay_after_any_scale_activity() {
    let scenario = builtin(5)
        .unwrap()
        .into_iter()
        .find(|s| s.name == "diurnal")
        .unwrap();
    let outcome = simulate(&scenario.config, &wpa(scenario.spec), None).unwrap();
    let mut downs = 0;
    for pair in outcome.events.windows(2) {
        if pair[1].to < pair[1].from {
            assert!(
                pair[1].time_s - pair[0].time_s > 600.0,
                "scale down at {} only {} s after {}",
                pair[1].time_s,
                pair[1].time_s - pair[0].time_s,
                pair[0].time_s
            );
            downs += 1;
        }
    }
    assert!(downs >= 5, "too few scale downs to check: {downs}");
    // With no delay the same day scales down sooner and more often.
    let eager = simulate(
        &scenario.config,
        &Policy::Wpa {
            spec: scenario.spec,
            scale_down_delay: Duration::ZERO,
            idle_first: false,
        },
        None,
    )
    .unwrap();
    assert!(eager.scale_downs > outcome.scale_downs);
}

#[test]
fn max_disruption_caps_each_step() {
    // SQS, no rate rule: after the load stops, workers that received
    // messages 10-20 min ago are not known idle, so each step is capped.
    let config = load_then_stop(
        50.0,
        30.0,
        3.0 * 3_600.0,
        ServiceTime::Fixed { seconds: 1.0 },
    );
    let outcome = simulate(&config, &wpa(spec(0, 100, 5, 0.0, "2")), None).unwrap();
    let capped: Vec<_> = outcome
        .events
        .iter()
        .filter(|e| e.to < e.from && e.rule != Some(Rule::AllIdle))
        .collect();
    assert!(!capped.is_empty(), "{:?}", outcome.events);
    for event in &capped {
        assert!(event.from - event.to <= 2, "{event:?}");
    }
    assert!(
        capped
            .iter()
            .any(|e| e.from - e.to == 2 && e.rule == Some(Rule::NoBacklog))
    );
}

#[test]
fn the_rate_floor_holds_the_reference_example_steady() {
    // 150 msg/s at 0.03 s per job: ceil(0.03 * 9000 / 60) = 5 workers.
    let scenario = builtin(2)
        .unwrap()
        .into_iter()
        .find(|s| s.name == "fast-jobs")
        .unwrap();
    let mut config = scenario.config.clone();
    config.workload.process = ArrivalProcess::Fluid;
    config.series_points = 100;
    let outcome = simulate(&config, &wpa(scenario.spec), None).unwrap();
    let late: Vec<u32> = outcome
        .series
        .iter()
        .filter(|s| s.time_s > 900.0)
        .map(|s| s.replicas)
        .collect();
    assert!(!late.is_empty());
    assert!(late.iter().all(|&r| r == 5), "{late:?}");
}

#[test]
fn hpa_in_the_simulation_follows_the_hand_computed_steps() {
    // A fluid 100 msg/s of 10 s jobs hits 1 idle worker; target 10 per pod.
    // Sync at 0 s: 100 arrived, 1 taken: 100 messages want 10 pods, the rate
    // limit allows max(2 * 1, 1 + 4) = 5. At 15 s: q = 1600, wants 160,
    // limit max(10, 9) = 10. At 30 s: limit 20. At 45 s: 40.
    let mut config = SimConfig::new(
        Workload {
            rate: RateShape::Constant { per_second: 100.0 },
            process: ArrivalProcess::Fluid,
            service: ServiceTime::Fixed { seconds: 10.0 },
        },
        60.0,
        1,
    );
    config.initial_replicas = Some(1);
    let spec = spec(1, 1_000, 10, 0.0, "100%");
    let outcome = simulate(&config, &Policy::Hpa(HpaSettings::like_wpa(&spec)), None).unwrap();
    let steps: Vec<(f64, u32, u32)> = outcome
        .events
        .iter()
        .map(|e| (e.time_s, e.from, e.to))
        .collect();
    assert_eq!(
        steps,
        vec![(0.0, 1, 5), (15.0, 5, 10), (30.0, 10, 20), (45.0, 20, 40)]
    );
}

#[test]
fn keda_activates_from_zero_and_cools_down_to_zero() {
    let config = single_message(Backend::Sqs);
    let spec = spec(0, 10, 1, 0.0, "100%");
    let keda = simulate(&config, &Policy::Keda(KedaSettings::like_wpa(&spec)), None).unwrap();
    let steps: Vec<(f64, u32, u32)> = keda
        .events
        .iter()
        .map(|e| (e.time_s, e.from, e.to))
        .collect();
    // The message arrives at 3600 s, a polling tick: active, 0 -> 1. The
    // job ends at 3631 s (30 s start-up, 1 s job); the last active poll is
    // at 3630 s; the first poll more than 300 s later is 3960 s: 1 -> 0.
    assert_eq!(steps, vec![(3_600.0, 0, 1), (3_960.0, 1, 0)]);
    // The HPA alone never goes below one replica.
    let hpa = simulate(&config, &Policy::Hpa(HpaSettings::like_wpa(&spec)), None).unwrap();
    assert!(hpa.events.iter().all(|e| e.to >= 1));
    assert!(hpa.worker_seconds >= 7_199.0);
}

/// Each backend's visibility, through its adapter's own answer: NATS sees
/// what beanstalkd sees (real-time counts, an exact idle count when
/// nothing is held, a one-minute meter); a plain Redis list does not see
/// what its workers hold, so the wait-target policy never removes a pod
/// the queue cannot vouch for (only the busy probe can).
#[test]
fn each_backend_reads_through_its_adapter() {
    let scenario = builtin(1)
        .unwrap()
        .into_iter()
        .find(|s| s.name == "long-jobs")
        .unwrap();
    let run = |backend: Backend, idle_first: bool| {
        let mut config = scenario.config.clone();
        config.backend = backend;
        let [_, _, _, _, wait, wait_idle_first, _] =
            Policy::comparison_with_wait_target(&scenario.spec, 20.0, 30.0).unwrap();
        let policy = if idle_first { wait_idle_first } else { wait };
        simulate(&config, &policy, None).unwrap()
    };
    let redis = run(Backend::RedisList, false);
    assert_eq!(redis.interrupted_jobs, 0);
    assert!(
        redis
            .events
            .iter()
            .all(|e| e.snapshot.is_none_or(|s| s.in_flight().is_none()))
    );
    let redis_probed = run(Backend::RedisList, true);
    assert_eq!(redis_probed.interrupted_jobs, 0);
    assert!(redis_probed.worker_seconds < redis.worker_seconds);
    let nats = run(Backend::Nats, false);
    assert!(nats.events.iter().any(|e| {
        e.snapshot
            .is_some_and(|s| matches!(s.idleness(), wpa_core::Idleness::Idle(_)))
    }));
    let rabbit = run(Backend::Rabbitmq, false);
    assert!(
        rabbit
            .events
            .iter()
            .any(|e| e.snapshot.is_some_and(|s| s.in_flight().is_some()))
    );
}

/// An idle queue stays at zero on every backend, whatever the policy: a
/// wake-up poll that times out with nothing ready reports an empty queue
/// (the simulator once reported RabbitMQ's as one message, which scaled
/// an idle queue up every minute).
#[test]
fn an_idle_queue_never_wakes_a_pod() {
    let wait = spec(0, 50, 10, 2.0, "100%")
        .with_wait_target(20.0, 30.0)
        .unwrap();
    for (backend, name) in Backend::ALL {
        let mut config = SimConfig::new(
            Workload {
                rate: RateShape::Constant { per_second: 0.0 },
                process: ArrivalProcess::Poisson,
                service: ServiceTime::Fixed { seconds: 2.0 },
            },
            3_600.0,
            1,
        );
        config.backend = backend;
        for policy in [wpa(spec(0, 50, 10, 2.0, "100%")), wpa(wait)] {
            let outcome = simulate(&config, &policy, None).unwrap();
            assert_eq!(
                (outcome.scale_operations(), outcome.worker_seconds),
                (0, 0.0),
                "{name} {}",
                outcome.policy
            );
        }
    }
}
