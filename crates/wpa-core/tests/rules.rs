//! One test per rule of `docs/reference-semantics.md`, and one per reference defect
//! that this crate refuses to copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use wpa_core::{
    Error, HoldReason, Idleness, Limit, MaxDisruption, QueueSnapshot, RawWpaSpec, Rule,
    ScaleOperation, TargetReplicas, WpaSpec, desired_replicas, plan, scale_operation,
};

fn spec(min: u32, max: u32, target: u32, seconds: f64, disruption: &str) -> WpaSpec {
    WpaSpec::new(min, max, target, seconds, disruption.parse().unwrap()).unwrap()
}

fn decide(
    spec: &WpaSpec,
    messages: u32,
    rate: f64,
    idle: Option<u32>,
    current: u32,
) -> (u32, Rule, Limit) {
    let snapshot = QueueSnapshot::new(messages)
        .with_arrival_rate(rate)
        .unwrap()
        .with_idle_workers(idle);
    let decision = desired_replicas(spec, &snapshot, current);
    (decision.desired_replicas, decision.rule, decision.limit)
}

// Rule 1: the arrival-rate floor.
#[test]
fn rate_floor_is_off_without_seconds_to_process_one_job() {
    let spec = spec(1, 10, 10, 0.0, "100%");
    // 6000 msg/min would need 100 workers at 1 s each, but s == 0 disables it.
    assert_eq!(
        decide(&spec, 0, 6000.0, None, 5),
        (1, Rule::NoBacklog, Limit::None)
    );
}

#[test]
fn rate_floor_raises_min_replicas() {
    // ceil(0.5 * 600 / 60) = 5 workers for the arrival rate.
    let spec = spec(1, 10, 10, 0.5, "100%");
    let (desired, rule, _) = decide(&spec, 0, 600.0, None, 8);
    assert_eq!((desired, rule), (5, Rule::ArrivalRate));
}

#[test]
fn rate_floor_rounds_up_exactly_at_integer_boundaries() {
    // (0.07 * 6000) / 60 is 7.000000000000001 in binary floating point: the
    // reference rounds it up to 8, so must we.
    let seven = spec(0, 100, 1000, 0.07, "100%");
    assert_eq!(decide(&seven, 0, 6000.0, None, 20).0, 8);
    // (0.29 * 6000) / 60 is 28.999999999999996: 29.
    let twenty_nine = spec(0, 100, 1000, 0.29, "100%");
    assert_eq!(decide(&twenty_nine, 0, 6000.0, None, 40).0, 29);
    // An exact 2.0 stays 2.
    let exact = spec_with_seconds(1.0);
    assert_eq!(decide(&exact, 0, 120.0, None, 4).0, 2);
}

fn spec_with_seconds(seconds: f64) -> WpaSpec {
    spec(0, 10, 10, seconds, "100%")
}

#[test]
fn rate_floor_beyond_int32_falls_back_to_min_replicas_like_the_reference() {
    // Go's int32(float) on amd64 turns an out-of-range value into MinInt32,
    // so max(MinInt32, min) = min.
    let spec = spec(2, 10, 10, 1e6, "100%");
    let (desired, rule, limit) = decide(&spec, 0, 1e12, None, 4);
    assert_eq!((desired, rule, limit), (2, Rule::ArrivalRate, Limit::None));
}

// Rule 2: the disruption budget.
#[test]
fn percent_budget_rounds_up_on_current() {
    assert_eq!(MaxDisruption::Percent(10).budget(11), 2);
    assert_eq!(MaxDisruption::Percent(50).budget(3), 2);
    assert_eq!(MaxDisruption::Percent(0).budget(7), 0);
    assert_eq!(MaxDisruption::Percent(100).budget(0), 0);
    assert_eq!(MaxDisruption::Absolute(3).budget(100), 3);
}

#[test]
fn max_disruption_parses_like_kubernetes_int_or_string() {
    let parse = |text: &str| text.parse::<MaxDisruption>();
    assert_eq!(parse("2").unwrap(), MaxDisruption::Absolute(2));
    assert_eq!(parse("+2").unwrap(), MaxDisruption::Absolute(2));
    assert_eq!(parse("007").unwrap(), MaxDisruption::Absolute(7));
    assert_eq!(parse("25%").unwrap(), MaxDisruption::Percent(25));
    // Every '%' is removed, wherever it is.
    assert_eq!(parse("%25").unwrap(), MaxDisruption::Percent(25));
    assert_eq!(parse("2%5%").unwrap(), MaxDisruption::Percent(25));
    assert_eq!(parse("-0").unwrap(), MaxDisruption::Absolute(0));
}

// Rule 3 and 4: from zero, straight to the backlog's need.
#[test]
fn scale_from_zero_sizes_for_the_backlog() {
    let spec = spec(0, 10, 2, 0.0, "100%");
    assert_eq!(
        decide(&spec, 15, 0.0, None, 0),
        (8, Rule::ScaleFromZero, Limit::None)
    );
    assert_eq!(
        decide(&spec, 1, 0.0, None, 0),
        (1, Rule::ScaleFromZero, Limit::None)
    );
    assert_eq!(
        decide(&spec, 0, 0.0, None, 0),
        (0, Rule::ScaleFromZero, Limit::None)
    );
    assert_eq!(
        decide(&spec, 100, 0.0, None, 0),
        (10, Rule::ScaleFromZero, Limit::MaxReplicas)
    );
}

// Rule 5: a backlog, with 10% tolerance.
#[test]
fn backlog_within_tolerance_keeps_current() {
    let spec = spec(0, 100, 1, 0.0, "100%");
    // 21 needed, 20 running: |21 - 20| / 20 = 0.05 <= 0.1.
    assert_eq!(
        decide(&spec, 21, 0.0, None, 20),
        (20, Rule::WithinTolerance, Limit::None)
    );
    // 22 needed: exactly 0.1, still within.
    assert_eq!(
        decide(&spec, 22, 0.0, None, 20),
        (20, Rule::WithinTolerance, Limit::None)
    );
    // 23 needed: 0.15, resize.
    assert_eq!(
        decide(&spec, 23, 0.0, None, 20),
        (23, Rule::Backlog, Limit::None)
    );
}

#[test]
fn backlog_below_current_scales_down_within_budget() {
    let spec = spec(0, 100, 1, 0.0, "10%");
    // Need 5 of 50 running; 10% of 50 = 5 may go per step.
    assert_eq!(
        decide(&spec, 5, 0.0, None, 50),
        (45, Rule::Backlog, Limit::DisruptionBudget)
    );
}

// Rule 6: no backlog, messages arriving.
#[test]
fn empty_queue_with_arrivals_holds_the_rate_floor() {
    let spec = spec(1, 20, 5, 2.0, "100%");
    // ceil(2 * 300 / 60) = 10.
    assert_eq!(
        decide(&spec, 0, 300.0, Some(10), 10),
        (10, Rule::ArrivalRate, Limit::None)
    );
}

// Rule 7: all idle, the budget is lifted.
#[test]
fn all_idle_scales_to_the_floor_at_once() {
    let spec = spec(0, 20, 5, 0.0, "1");
    assert_eq!(
        decide(&spec, 0, 0.0, Some(12), 12),
        (0, Rule::AllIdle, Limit::None)
    );
    let spec = spec_min(3);
    assert_eq!(
        decide(&spec, 0, 0.0, Some(12), 12),
        (3, Rule::AllIdle, Limit::Floor)
    );
}

// Rule 7 when the queue can only say "every worker idle" (SQS with
// CloudWatch): resolved against the replicas the decision is given, so the
// budget is lifted whatever the count, and two targets on one queue each
// get their own.
#[test]
fn every_worker_idle_resolves_against_the_current_replicas() {
    let spec = spec(0, 20, 5, 0.0, "10%");
    let all_idle = QueueSnapshot::new(0).with_idleness(Idleness::AllIdle);
    for current in [1, 3, 10, 20] {
        let decision = desired_replicas(&spec, &all_idle, current);
        assert_eq!(
            (decision.desired_replicas, decision.rule),
            (0, Rule::AllIdle),
            "{current}"
        );
        let counted = desired_replicas(
            &spec,
            &QueueSnapshot::new(0).with_idle_workers(Some(current)),
            current,
        );
        assert_eq!(
            (decision.desired_replicas, decision.rule, decision.limit),
            (counted.desired_replicas, counted.rule, counted.limit),
            "same as a count of {current}"
        );
    }
    // With messages queued, idleness does not matter.
    let backlog = QueueSnapshot::new(12).with_idleness(Idleness::AllIdle);
    assert_eq!(desired_replicas(&spec, &backlog, 10).rule, Rule::Backlog);
    // From zero it is the from-zero rule.
    assert_eq!(
        desired_replicas(&spec, &all_idle, 0).rule,
        Rule::ScaleFromZero
    );
}

#[test]
fn reasons_state_the_idleness_used() {
    let spec = spec(0, 20, 5, 0.0, "10%");
    let reason = |idleness, current| {
        desired_replicas(
            &spec,
            &QueueSnapshot::new(0).with_idleness(idleness),
            current,
        )
        .to_string()
    };
    assert_eq!(
        reason(Idleness::Unknown, 10),
        "queue empty, idleness of the 10 workers not known: down to the floor of 0 within maxDisruption; maxDisruption lets one scale down remove at most 1 of 10"
    );
    assert_eq!(
        reason(Idleness::Idle(0), 10),
        "queue empty, 0 of the 10 workers idle: down to the floor of 0 within maxDisruption; maxDisruption lets one scale down remove at most 1 of 10"
    );
    assert_eq!(
        reason(Idleness::Idle(4), 10),
        "queue empty, 4 of the 10 workers idle: down to the floor of 0 within maxDisruption; maxDisruption lets one scale down remove at most 1 of 10"
    );
    assert_eq!(
        reason(Idleness::AllIdle, 10),
        "queue empty and all 10 workers idle (the queue reports every worker idle): scale down to the floor at once (maxDisruption does not apply)"
    );
    assert_eq!(
        reason(Idleness::Idle(10), 10),
        "queue empty and all 10 workers idle (the queue counts them idle): scale down to the floor at once (maxDisruption does not apply)"
    );
}

fn spec_bounds(min: u32, max: u32) -> WpaSpec {
    spec(min, max, 1, 0.0, "100%")
}

fn spec_min(min: u32) -> WpaSpec {
    spec(min, 20, 5, 0.0, "1")
}

// Rule 8: no backlog, idleness unknown: down within the budget.
#[test]
fn unknown_idleness_scales_down_within_the_budget() {
    let spec = spec(0, 20, 5, 0.0, "1");
    assert_eq!(
        decide(&spec, 0, 0.0, None, 12),
        (11, Rule::NoBacklog, Limit::DisruptionBudget)
    );
    // Some idle is not all idle.
    assert_eq!(
        decide(&spec, 0, 0.0, Some(11), 12),
        (11, Rule::NoBacklog, Limit::DisruptionBudget)
    );
}

// clamp: the upper bound wins when the floor reaches it.
#[test]
fn floor_at_or_above_max_returns_max() {
    let spec = spec(5, 5, 1, 0.0, "100%");
    assert_eq!(
        decide(&spec, 100, 0.0, None, 2),
        (5, Rule::Backlog, Limit::FloorReachesMax)
    );
    let inverted = spec_bounds(7, 3);
    assert_eq!(
        decide(&inverted, 0, 0.0, Some(9), 9),
        (3, Rule::AllIdle, Limit::FloorReachesMax)
    );
    // The rate floor too: ceil(60 * 60 / 60) = 60 >= 10.
    let by_rate = spec_with_seconds(60.0);
    assert_eq!(
        decide(&by_rate, 0, 60.0, None, 2),
        (10, Rule::ArrivalRate, Limit::FloorReachesMax)
    );
}

#[test]
fn scale_up_is_never_capped_by_the_budget() {
    let spec = spec(0, 1000, 1, 0.0, "0");
    assert_eq!(
        decide(&spec, 500, 0.0, None, 10),
        (500, Rule::Backlog, Limit::None)
    );
}

// Scale operation.
#[test]
fn scale_down_waits_for_the_delay_strictly() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let delay = Duration::from_secs(600);
    let at = |ago: u64| Some(now - Duration::from_secs(ago));
    assert_eq!(
        scale_operation(2, 5, None, delay, now),
        ScaleOperation::ScaleDown
    );
    assert_eq!(
        scale_operation(2, 5, at(600), delay, now),
        ScaleOperation::ScaleDownHeld(HoldReason::ScaleDownDelay {
            remaining: Duration::ZERO
        })
    );
    assert_eq!(
        scale_operation(2, 5, at(601), delay, now),
        ScaleOperation::ScaleDown
    );
    assert_eq!(
        scale_operation(2, 5, at(100), delay, now),
        ScaleOperation::ScaleDownHeld(HoldReason::ScaleDownDelay {
            remaining: Duration::from_secs(500)
        })
    );
    // Up ignores the delay; equal is nothing.
    assert_eq!(
        scale_operation(9, 5, at(0), delay, now),
        ScaleOperation::ScaleUp
    );
    assert_eq!(
        scale_operation(5, 5, None, delay, now),
        ScaleOperation::None
    );
}

#[test]
fn plan_advances_last_scale_time_only_when_scaling() {
    let spec = spec(0, 10, 1, 0.0, "100%");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(50_000);
    let before = Some(now - Duration::from_secs(30));
    let replicas = TargetReplicas::new(3, 2);
    let step = plan(
        &spec,
        QueueSnapshot::new(3),
        replicas,
        Duration::from_secs(600),
        before,
        now,
    );
    assert_eq!(step.operation, ScaleOperation::None);
    assert_eq!(step.status.last_scale_time, before);
    assert_eq!(step.status.available_replicas, 2);

    let step = plan(
        &spec,
        QueueSnapshot::new(9),
        replicas,
        Duration::from_secs(600),
        before,
        now,
    );
    assert_eq!(step.operation, ScaleOperation::ScaleUp);
    assert_eq!(step.status.last_scale_time, Some(now));
    assert_eq!(step.status.desired_replicas, 9);
    assert_eq!(step.status.current_messages, 9);
}

#[test]
fn a_held_scale_down_still_reports_the_desired_count() {
    let spec = spec(0, 10, 1, 0.0, "100%");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(50_000);
    let replicas = TargetReplicas::new(6, 6);
    let snapshot = QueueSnapshot::new(0).with_idle_workers(Some(6));
    let step = plan(
        &spec,
        snapshot,
        replicas,
        Duration::from_secs(600),
        Some(now),
        now,
    );
    assert!(matches!(step.operation, ScaleOperation::ScaleDownHeld(_)));
    assert_eq!(step.status.desired_replicas, 0);
}

#[test]
fn a_stale_snapshot_never_scales_down() {
    let spec = spec(0, 10, 1, 0.0, "100%");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(50_000);
    let replicas = TargetReplicas::new(6, 6);
    let stale = QueueSnapshot::new(0)
        .with_idle_workers(Some(6))
        .marked_stale();
    let step = plan(&spec, stale, replicas, Duration::from_secs(600), None, now);
    assert_eq!(
        step.operation,
        ScaleOperation::ScaleDownHeld(HoldReason::StaleQueueMetrics)
    );
    // ...but may still scale up.
    let stale = QueueSnapshot::new(60).marked_stale();
    let step = plan(&spec, stale, replicas, Duration::from_secs(600), None, now);
    assert_eq!(step.operation, ScaleOperation::ScaleUp);
}

// Defects of the reference, refused with a typed error naming the field.
#[test]
fn unparsable_max_disruption_is_an_error_not_an_exit() {
    for text in ["abc", "", "3.5", "10.5%", " 10", "%", "1_0", "0x10"] {
        let error = text.parse::<MaxDisruption>().unwrap_err();
        assert_eq!(
            error,
            Error::UnparsableMaxDisruption {
                value: text.to_owned()
            }
        );
        assert!(error.to_string().contains("maxDisruption"));
    }
}

#[test]
fn negative_max_disruption_is_an_error_not_a_scale_up() {
    for text in ["-1", "-10%", "-%5"] {
        assert_eq!(
            text.parse::<MaxDisruption>().unwrap_err(),
            Error::NegativeMaxDisruption {
                value: text.to_owned()
            }
        );
    }
}

#[test]
fn oversized_max_disruption_is_an_error_not_a_wraparound() {
    for text in [
        "2147483648",
        "4294967297",
        "99999999999999999999",
        "3000000000%",
    ] {
        assert_eq!(
            text.parse::<MaxDisruption>().unwrap_err(),
            Error::MaxDisruptionTooLarge {
                value: text.to_owned()
            }
        );
    }
}

fn raw(min: i64, max: i64, target: i64) -> RawWpaSpec {
    RawWpaSpec {
        min_replicas: Some(min),
        max_replicas: Some(max),
        target_messages_per_worker: Some(target),
        ..RawWpaSpec::default()
    }
}

#[test]
fn target_messages_per_worker_zero_is_an_error_not_a_division_by_zero() {
    assert_eq!(
        raw(0, 10, 0).validate(MaxDisruption::DEFAULT).unwrap_err(),
        Error::TargetMessagesPerWorkerTooSmall { value: 0 }
    );
}

#[test]
fn negative_replica_bounds_are_errors() {
    // maxReplicas: -1 crashes the reference via the API server.
    assert_eq!(
        raw(0, -1, 1).validate(MaxDisruption::DEFAULT).unwrap_err(),
        Error::Negative {
            field: "maxReplicas",
            value: -1
        }
    );
    assert_eq!(
        raw(-3, 1, 1).validate(MaxDisruption::DEFAULT).unwrap_err(),
        Error::Negative {
            field: "minReplicas",
            value: -3
        }
    );
    assert_eq!(
        raw(0, 1 << 31, 1)
            .validate(MaxDisruption::DEFAULT)
            .unwrap_err(),
        Error::TooLarge {
            field: "maxReplicas",
            value: 1 << 31,
            max: i64::from(i32::MAX)
        }
    );
}

#[test]
fn missing_required_fields_are_named() {
    let error = RawWpaSpec::default()
        .validate(MaxDisruption::DEFAULT)
        .unwrap_err();
    assert_eq!(
        error,
        Error::Missing {
            field: "minReplicas"
        }
    );
}

#[test]
fn non_finite_or_negative_floats_are_errors() {
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5] {
        let mut spec = raw(0, 1, 1);
        spec.seconds_to_process_one_job = Some(value);
        assert!(matches!(
            spec.validate(MaxDisruption::DEFAULT).unwrap_err(),
            Error::InvalidNumber {
                field: "secondsToProcessOneJob",
                ..
            }
        ));
        assert!(matches!(
            QueueSnapshot::new(0).with_arrival_rate(value).unwrap_err(),
            Error::InvalidNumber {
                field: "messagesSentPerMinute",
                ..
            }
        ));
    }
    // Negative zero is zero.
    let mut spec = raw(0, 1, 1);
    spec.seconds_to_process_one_job = Some(-0.0);
    assert!(spec.validate(MaxDisruption::DEFAULT).is_ok());
}

#[test]
fn signed_snapshot_encoding() {
    assert_eq!(
        QueueSnapshot::from_signed(-1, None, None).unwrap_err(),
        Error::QueueNotSynced
    );
    assert_eq!(
        QueueSnapshot::from_signed(-2, None, None).unwrap_err(),
        Error::Negative {
            field: "queueMessages",
            value: -2
        }
    );
    assert_eq!(
        QueueSnapshot::from_signed(3, None, Some(-1))
            .unwrap()
            .idleness(),
        Idleness::Unknown
    );
    assert_eq!(
        QueueSnapshot::from_signed(3, None, Some(-7)).unwrap_err(),
        Error::Negative {
            field: "idleWorkers",
            value: -7
        }
    );
}

#[test]
fn absent_max_disruption_takes_the_controller_default() {
    let spec = raw(0, 10, 1).validate(MaxDisruption::Absolute(2)).unwrap();
    assert_eq!(spec.max_disruption(), MaxDisruption::Absolute(2));
}

#[test]
fn reasons_read_as_sentences() {
    let spec = spec(0, 5, 2, 0.0, "100%");
    let decision = desired_replicas(&spec, &QueueSnapshot::new(15), 1);
    assert_eq!(
        decision.to_string(),
        "15 messages at 2 per worker need 8 workers; capped at maxReplicas 5"
    );
}
