//! Properties of the decision that hold for every valid input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use approx::assert_relative_eq;
use proptest::prelude::*;
use wpa_core::{
    Idleness, MaxDisruption, QueueSnapshot, RawWpaSpec, Rule, ScaleOperation, WpaSpec,
    desired_replicas, scale_operation,
};

fn max_disruption() -> impl Strategy<Value = MaxDisruption> {
    prop_oneof![
        (0..=300u32).prop_map(MaxDisruption::Percent),
        (0..=100u32).prop_map(MaxDisruption::Absolute),
    ]
}

prop_compose! {
    fn spec()(
        min in 0..=50u32,
        max in 0..=500u32,
        target in 1..=100u32,
        seconds in prop_oneof![Just(0.0), 0.0..120.0f64],
        max_disruption in max_disruption(),
    ) -> WpaSpec {
        WpaSpec::new(min, max, target, seconds, max_disruption).unwrap()
    }
}

prop_compose! {
    fn snapshot()(
        messages in prop_oneof![Just(0u32), 0..=100_000u32],
        rate in prop_oneof![Just(None), (0.0..10_000.0f64).prop_map(Some)],
        idle in prop_oneof![
            Just(Idleness::Unknown),
            Just(Idleness::AllIdle),
            (0..=600u32).prop_map(Idleness::Idle),
        ],
    ) -> QueueSnapshot {
        let snapshot = QueueSnapshot::new(messages).with_idleness(idle);
        match rate {
            Some(rate) => snapshot.with_arrival_rate(rate).unwrap(),
            None => snapshot,
        }
    }
}

/// The floor the decision respects: minReplicas or the arrival-rate floor.
fn floor(spec: &WpaSpec, snapshot: &QueueSnapshot) -> u32 {
    desired_replicas(spec, snapshot, 0).inputs.floor
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn result_is_within_bounds(spec in spec(), snapshot in snapshot(), current in 0..=600u32) {
        let desired = desired_replicas(&spec, &snapshot, current).desired_replicas;
        let lower = floor(&spec, &snapshot);
        if lower >= spec.max_replicas() {
            prop_assert_eq!(desired, spec.max_replicas());
        } else {
            prop_assert!(desired >= lower && desired <= spec.max_replicas());
        }
    }

    /// Only two things remove more pods than `maxDisruption` allows: every
    /// worker being idle, and the maxReplicas bound (a current count above
    /// maxReplicas is cut to it at once, as in the reference).
    #[test]
    fn scale_down_respects_the_budget(spec in spec(), snapshot in snapshot(), current in 0..=600u32) {
        let decision = desired_replicas(&spec, &snapshot, current);
        let budget = spec.max_disruption().budget(current);
        let removed = u64::from(current.saturating_sub(decision.desired_replicas));
        if removed > budget {
            prop_assert!(
                decision.rule == Rule::AllIdle || decision.desired_replicas == spec.max_replicas(),
                "{decision:?}"
            );
        }
    }

    #[test]
    fn scale_up_is_never_capped_by_the_budget(
        spec in spec(), snapshot in snapshot(), current in 0..=600u32, budget in max_disruption(),
    ) {
        let limited = WpaSpec::new(
            spec.min_replicas(), spec.max_replicas(), spec.target_messages_per_worker(),
            spec.seconds_to_process_one_job(), budget,
        ).unwrap();
        let unlimited = WpaSpec::new(
            spec.min_replicas(), spec.max_replicas(), spec.target_messages_per_worker(),
            spec.seconds_to_process_one_job(), MaxDisruption::Percent(100),
        ).unwrap();
        let with_budget = desired_replicas(&limited, &snapshot, current).desired_replicas;
        if with_budget > current {
            prop_assert_eq!(with_budget, desired_replicas(&unlimited, &snapshot, current).desired_replicas);
        }
    }

    /// "Every worker idle" decides as the count of the replicas given would:
    /// the snapshot carries what the queue said, the decision resolves it.
    #[test]
    fn every_worker_idle_is_the_count_of_current(spec in spec(), snapshot in snapshot(), current in 0..=600u32) {
        let all_idle = snapshot.with_idleness(Idleness::AllIdle);
        let counted = snapshot.with_idleness(Idleness::Idle(current));
        let a = desired_replicas(&spec, &all_idle, current);
        let b = desired_replicas(&spec, &counted, current);
        prop_assert_eq!((a.desired_replicas, a.rule, a.limit), (b.desired_replicas, b.rule, b.limit));
    }

    #[test]
    fn same_input_same_output(spec in spec(), snapshot in snapshot(), current in 0..=600u32) {
        let first = desired_replicas(&spec, &snapshot, current);
        let second = desired_replicas(&spec, &snapshot, current);
        prop_assert_eq!(first, second);
        prop_assert_eq!(first.to_string(), second.to_string());
    }

    #[test]
    fn percent_budget_matches_real_arithmetic(percent in 0..=1000u32, current in 0..=100_000u32) {
        let budget = MaxDisruption::Percent(percent).budget(current) as f64;
        let exact = f64::from(percent) * f64::from(current) / 100.0;
        prop_assert!(budget >= exact && budget < exact + 1.0);
        assert_relative_eq!(budget, exact.ceil());
    }

    #[test]
    fn scale_down_is_held_exactly_until_the_delay_passed(
        ago in 0..=2_000u64, delay in 0..=1_200u64, desired in 0..=10u32, current in 0..=10u32,
    ) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 32);
        let last = Some(now - Duration::from_secs(ago));
        let operation = scale_operation(desired, current, last, Duration::from_secs(delay), now);
        let expected = if desired > current {
            ScaleOperation::ScaleUp
        } else if desired == current {
            ScaleOperation::None
        } else if ago > delay {
            ScaleOperation::ScaleDown
        } else {
            operation // held; its remaining time is checked below
        };
        prop_assert_eq!(operation, expected);
        if let ScaleOperation::ScaleDownHeld(wpa_core::HoldReason::ScaleDownDelay { remaining }) = operation {
            prop_assert_eq!(remaining, Duration::from_secs(delay - ago));
        }
    }

    /// Validation takes anything and answers with a value or an error.
    #[test]
    fn validation_never_panics(
        min in any::<Option<i64>>(),
        max in any::<Option<i64>>(),
        target in any::<Option<i64>>(),
        seconds in any::<Option<f64>>(),
        max_disruption in proptest::option::of(".{0,12}"),
        messages in any::<i64>(),
        rate in any::<Option<f64>>(),
        idle in any::<Option<i64>>(),
    ) {
        let spec = RawWpaSpec {
            min_replicas: min,
            max_replicas: max,
            target_messages_per_worker: target,
            seconds_to_process_one_job: seconds,
            max_disruption,
            ..RawWpaSpec::default()
        }
        .validate(MaxDisruption::DEFAULT);
        let snapshot = QueueSnapshot::from_signed(messages, rate, idle);
        if let (Ok(spec), Ok(snapshot)) = (spec, snapshot) {
            let _ = desired_replicas(&spec, &snapshot, 3).to_string();
        }
    }

    #[test]
    fn max_disruption_parsing_never_panics(text in "\\PC{0,24}") {
        let _ = text.parse::<MaxDisruption>();
    }
}
