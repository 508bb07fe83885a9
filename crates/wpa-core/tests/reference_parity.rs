//! Decisions identical to the Go reference, checked against a literal
//! transcription of its arithmetic (int32 wrap-around, Go's float-to-int
//! conversions on amd64, the old IntOrString parser) on random inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use wpa_core::{Idleness, MaxDisruption, QueueSnapshot, RawWpaSpec, desired_replicas};

/// The reference, transcribed as Go computes it. Kept deliberately naive:
/// it is the oracle, not an implementation to share code with.
mod go {
    /// `strconv.Atoi`.
    pub fn atoi(text: &str) -> Option<i64> {
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    }

    /// `int64(f)` on amd64 (CVTTSD2SQ): out of range or NaN is MinInt64.
    pub fn int64(f: f64) -> i64 {
        if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
            f as i64
        } else {
            i64::MIN
        }
    }

    /// `int32(f)` on amd64 (CVTTSD2SL): out of range or NaN is MinInt32.
    pub fn int32(f: f64) -> i32 {
        if f > -2_147_483_649.0 && f < 2_147_483_648.0 {
            f as i32
        } else {
            i32::MIN
        }
    }

    /// `getMaxDisruptableWorkers`: `None` where the reference exits.
    pub fn max_disruptable(max_disruption: &str, current: i32) -> Option<i32> {
        // intstr.Parse: an integer becomes FromInt(int32(i)), else a string.
        if let Some(integer) = atoi(max_disruption) {
            return Some(integer as i32);
        }
        // GetValueFromIntOrPercent: remove every '%', Atoi, percent.
        let stripped = max_disruption.replace('%', "");
        let percent = atoi(&stripped)?;
        let value = int64((percent as f64 * f64::from(current) / 100.0).ceil());
        Some(value as i32)
    }

    fn convert(current: i32, desired: i32, min: i32, max: i32, disruptable: i32) -> i32 {
        if min >= max {
            return max;
        }
        let mut desired = desired;
        if current.wrapping_sub(desired) > disruptable {
            desired = current.wrapping_sub(disruptable);
        }
        if desired > max {
            return max;
        }
        if desired < min {
            return min;
        }
        desired
    }

    #[allow(clippy::too_many_arguments)]
    pub fn get_desired_workers(
        queue_messages: i32,
        messages_sent_per_minute: f64,
        seconds_to_process_one_job: f64,
        target_messages_per_worker: i32,
        current: i32,
        idle: i32,
        min: i32,
        max: i32,
        max_disruption: &str,
    ) -> Option<i32> {
        let mut min_workers = min;
        if seconds_to_process_one_job != 0.0 {
            let by_rate =
                int32(((seconds_to_process_one_job * messages_sent_per_minute) / 60.0).ceil());
            if by_rate > min_workers {
                min_workers = by_rate;
            }
        }
        let disruptable = max_disruptable(max_disruption, current)?;
        let tolerance = 0.1;
        let desired =
            int32((f64::from(queue_messages) / f64::from(target_messages_per_worker)).ceil());
        if current == 0 {
            return Some(convert(current, desired, min_workers, max, disruptable));
        }
        if queue_messages > 0 {
            let too_small =
                (f64::from(desired.wrapping_sub(current))).abs() / f64::from(current) <= tolerance;
            if too_small {
                return Some(convert(current, current, min_workers, max, disruptable));
            }
            return Some(convert(current, desired, min_workers, max, disruptable));
        } else if messages_sent_per_minute > 0.0 && seconds_to_process_one_job > 0.0 {
            return Some(convert(current, min_workers, min_workers, max, disruptable));
        }
        if current == idle {
            return Some(convert(current, 0, min_workers, max, current));
        }
        Some(convert(current, min_workers, min_workers, max, disruptable))
    }
}

#[derive(Debug, Clone)]
struct Input {
    messages: i32,
    rate: f64,
    seconds: f64,
    target: i32,
    current: i32,
    idle: i32,
    /// The queue said "every worker idle" (SQS with CloudWatch) rather than
    /// a count: the reference, which is told the replicas, sees `current`.
    all_idle: bool,
    min: i32,
    max: i32,
    max_disruption: String,
}

fn small_count() -> impl Strategy<Value = i32> {
    prop_oneof![0..=3, 0..=30, 0..=1000, Just(i32::MAX), 0..=i32::MAX]
}

fn seconds_per_job() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(0.03),
        (1..=400u32).prop_map(|hundredths| f64::from(hundredths) / 100.0),
        0.0..600.0f64,
        Just(1e6),
    ]
}

fn max_disruption() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..=200u32).prop_map(|percent| format!("{percent}%")),
        (0..=50u32).prop_map(|pods| pods.to_string()),
        Just("100%".to_owned()),
        Just("+3".to_owned()),
        Just("%10".to_owned()),
        Just("1%0".to_owned()),
        Just("2147483647".to_owned()),
    ]
}

prop_compose! {
    fn input()(
        messages in small_count(),
        seconds in seconds_per_job(),
        // Rates that land on integer worker boundaries, and free ones.
        rate_choice in prop_oneof![
            Just(None),
            (0..=2000u32).prop_map(|workers| Some(f64::from(workers))),
            (0.0..1e6f64).prop_map(Some),
            Just(Some(1e15)),
        ],
        target in prop_oneof![1..=5i32, 1..=1000i32, Just(i32::MAX)],
        current in prop_oneof![0..=20i32, 0..=100_000i32],
        idle_choice in prop_oneof![Just(-1), 0..=20i32, Just(i32::MIN), Just(i32::MIN + 1)],
        min in prop_oneof![0..=5i32, 0..=200i32],
        max in prop_oneof![0..=10i32, 0..=100_000i32, Just(i32::MAX)],
        max_disruption in max_disruption(),
    ) -> Input {
        // `Some(workers)` picks a rate giving exactly that many workers'
        // worth of seconds, the case where float rounding matters.
        let rate = match rate_choice {
            None => 0.0,
            Some(workers) if workers == workers.trunc() && seconds > 0.0 && workers <= 2000.0 => {
                workers * 60.0 / seconds
            }
            Some(rate) => rate,
        };
        // MIN: a count equal to current; MIN + 1: "every worker idle".
        let all_idle = idle_choice == i32::MIN + 1;
        let idle = if idle_choice <= i32::MIN + 1 { current } else { idle_choice };
        Input { messages, rate, seconds, target, current, idle, all_idle, min, max, max_disruption }
    }
}

fn ours(input: &Input) -> u32 {
    let spec = RawWpaSpec {
        min_replicas: Some(i64::from(input.min)),
        max_replicas: Some(i64::from(input.max)),
        target_messages_per_worker: Some(i64::from(input.target)),
        seconds_to_process_one_job: Some(input.seconds),
        max_disruption: Some(input.max_disruption.clone()),
        ..RawWpaSpec::default()
    }
    .validate(MaxDisruption::DEFAULT)
    .unwrap();
    let snapshot = QueueSnapshot::from_signed(
        i64::from(input.messages),
        Some(input.rate),
        Some(i64::from(input.idle)),
    )
    .unwrap();
    let snapshot = if input.all_idle {
        snapshot.with_idleness(Idleness::AllIdle)
    } else {
        snapshot
    };
    desired_replicas(&spec, &snapshot, u32::try_from(input.current).unwrap()).desired_replicas
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn same_decisions_as_the_reference(input in input()) {
        let reference = go::get_desired_workers(
            input.messages,
            input.rate,
            input.seconds,
            input.target,
            input.current,
            input.idle,
            input.min,
            input.max,
            &input.max_disruption,
        )
        .expect("the generator only makes inputs the reference accepts");
        prop_assert_eq!(i64::from(ours(&input)), i64::from(reference), "{:?}", input);
    }
}

#[test]
fn the_oracle_reproduces_known_reference_outputs() {
    // The example from the seed article: 15 messages, 2 per worker, 1
    // running, 0..10 replicas, 100% disruption: 8.
    assert_eq!(
        go::get_desired_workers(15, 0.0, 0.03, 2, 1, -1, 0, 10, "100%"),
        Some(8)
    );
    // ...and later, 8 messages with 5 running: 4.
    assert_eq!(
        go::get_desired_workers(8, 0.0, 0.03, 2, 5, -1, 0, 10, "100%"),
        Some(4)
    );
    // 9 messages with 5 running: within tolerance, 5.
    assert_eq!(
        go::get_desired_workers(9, 0.0, 0.03, 2, 5, -1, 0, 10, "100%"),
        Some(5)
    );
    // The reference exits on "abc", and turns "-1" into a scale up.
    assert_eq!(
        go::get_desired_workers(0, 0.0, 0.0, 1, 5, -1, 0, 10, "abc"),
        None
    );
    assert_eq!(
        go::get_desired_workers(0, 0.0, 0.0, 1, 5, -1, 0, 10, "-1"),
        Some(6)
    );
}
