//! How many workers should run: the reference's rules, top to bottom.
//!
//! This file is the whole decision. It reproduces the Go Worker Pod
//! Autoscaler (v1.6) decision for decision on every input that the
//! reference accepts; see `docs/reference-semantics.md` for the rules and the README
//! for the few places where a reference defect is not copied.
//!
//! Arithmetic is done in `i64` (every input fits in 32 bits, so nothing can
//! overflow) and in `f64` exactly where the reference uses floats, in the
//! same order of operations, so results are bit-identical.

use std::fmt;

use crate::wait_target::WaitSizing;
use crate::{BacklogGrowth, Idleness, MaxDisruption, QueueSnapshot, TargetReplicas, WpaSpec};

/// Decides with the policy the spec selects: the wait-target policy
/// (`crate::wait_target`) when `targetWaitSeconds` is set, otherwise the
/// reference's rules ([`desired_replicas`]), bit for bit. `backlog_growth`
/// (since the last poll, [`crate::History::backlog_growth`]) only matters
/// to the wait-target policy.
///
/// ```
/// use std::time::Duration;
/// use wpa_core::{decide, MaxDisruption, QueueSnapshot, RawWpaSpec, Rule, TargetReplicas};
///
/// let spec = RawWpaSpec {
///     min_replicas: Some(0),
///     max_replicas: Some(50),
///     target_messages_per_worker: Some(10),
///     seconds_to_process_one_job: Some(2.0),
///     target_wait_seconds: Some(30.0),
///     ..RawWpaSpec::default()
/// }
/// .validate(MaxDisruption::DEFAULT)?;
/// // 300 msg/min of 2 s jobs, counted over SQS's 5 minutes: 10 workers
/// // busy on average, 9.7 net of one sigma of the count's noise: 11
/// // workers meet a 30 s target for that.
/// let queue = QueueSnapshot::new(0)
///     .with_arrival_rate(300.0)?
///     .with_arrival_rate_window(Duration::from_secs(300));
/// let decision = decide(&spec, &queue, TargetReplicas::new(4, 4), None);
/// assert_eq!(decision.rule, Rule::WaitTargetUp);
/// assert_eq!(decision.desired_replicas, 11);
/// # Ok::<(), wpa_core::Error>(())
/// ```
#[must_use]
#[inline]
pub fn decide(
    spec: &WpaSpec,
    queue: &QueueSnapshot,
    replicas: TargetReplicas,
    backlog_growth: Option<BacklogGrowth>,
) -> Decision {
    match (spec.wait_target(), replicas.idle_pods) {
        (None, None) => desired_replicas(spec, queue, replicas.current),
        (None, Some(idle_pods)) => {
            crate::idle_first::desired_replicas(spec, queue, replicas, idle_pods)
        }
        (Some(target), _) => {
            crate::wait_target::desired_replicas(spec, target, queue, replicas, backlog_growth)
        }
    }
}

/// The outcome of [`desired_replicas`]: the count, and why.
///
/// `Display` renders the reason in words ("15 messages at 2 per worker need
/// 8 workers; capped at maxReplicas 5"); formatting is the only part that
/// does any work beyond the decision itself, and only when asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// How many replicas should run.
    pub desired_replicas: u32,
    /// The rule that chose the starting point.
    pub rule: Rule,
    /// The bound, if any, that then moved it.
    pub limit: Limit,
    /// The inputs and intermediate values, for explaining the decision.
    pub inputs: DecisionInputs,
}

/// What a decision was made from, kept so that a [`Decision`] can explain
/// itself without its spec or snapshot at hand. (Whole copies, not picked
/// fields: block copies are cheaper on the decision path.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionInputs {
    /// The spec decided on.
    pub spec: WpaSpec,
    /// The snapshot decided on.
    pub snapshot: QueueSnapshot,
    /// Replicas running when the decision was made.
    pub current_replicas: u32,
    /// The lower bound in force: `minReplicas`, or the arrival-rate floor
    /// when that is higher.
    pub floor: u32,
    /// Whether `floor` comes from the arrival rate rather than `minReplicas`.
    pub floor_from_arrival_rate: bool,
    /// The wait-target policy's sizing (`None`: the reference's rules decided).
    pub wait: Option<WaitSizing>,
    /// The per-pod signal's idle pods, when the target scales down
    /// idle-first ([`crate::idle_first`]).
    pub idle_pods: Option<u32>,
}

impl DecisionInputs {
    /// Pods one scale down may remove: `maxDisruption` applied to the
    /// current replicas.
    #[must_use]
    pub fn disruption_budget(&self) -> u64 {
        self.spec.max_disruption().budget(self.current_replicas)
    }

    /// Workers the backlog needs: `ceil(queueMessages / targetMessagesPerWorker)`.
    #[must_use]
    pub fn workers_for_backlog(&self) -> u32 {
        self.snapshot
            .messages()
            .div_ceil(self.spec.target_messages_per_worker())
    }
}

/// Which of the reference's rules chose the starting point of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// No replicas run: size for the backlog directly.
    ScaleFromZero,
    /// A backlog whose size is within 10% of what runs: keep the current count.
    WithinTolerance,
    /// A backlog: one worker per `targetMessagesPerWorker` messages.
    Backlog,
    /// No backlog, but messages keep arriving: keep the arrival-rate floor.
    ArrivalRate,
    /// No backlog and every worker idle: scale down to the floor at once,
    /// ignoring the disruption budget.
    AllIdle,
    /// No backlog, but workers may be busy: scale down to the floor within
    /// the disruption budget.
    NoBacklog,
    /// Wait target: the target needs more workers than run; up at once.
    WaitTargetUp,
    /// Wait target: the pool is within its band; keep it.
    WaitTargetHold,
    /// Wait target: the pool is larger than the load plus its noise would
    /// need; down.
    WaitTargetDown,
}

/// Which bound moved the rule's count, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The rule's count stood.
    None,
    /// The floor (`minReplicas` or the arrival-rate floor) is at or above
    /// `maxReplicas`: the upper bound wins, whatever the rule said.
    FloorReachesMax,
    /// Cut to `maxReplicas`.
    MaxReplicas,
    /// Raised to the floor (`minReplicas` or the arrival-rate floor).
    Floor,
    /// A scale down cut short by `maxDisruption`.
    DisruptionBudget,
    /// A scale down cut short to the pods known not to hold a job: the
    /// per-pod signal's idle pods (idle-first), or, for the wait-target
    /// policy without one, the queue's idle and in-flight counts.
    IdleWorkers,
}

/// Computes how many replicas should run, and which rule decided.
///
/// Pure and allocation-free: the same inputs always give the same result.
///
/// ```
/// use wpa_core::{desired_replicas, MaxDisruption, QueueSnapshot, Rule, WpaSpec};
///
/// // The reference's example: 0..10 workers, 2 messages per worker.
/// let spec = WpaSpec::new(0, 10, 2, 0.0, MaxDisruption::DEFAULT)?;
/// let decision = desired_replicas(&spec, &QueueSnapshot::new(15), 1);
/// assert_eq!(decision.desired_replicas, 8);
/// assert_eq!(decision.rule, Rule::Backlog);
/// assert_eq!(decision.to_string(), "15 messages at 2 per worker need 8 workers");
/// # Ok::<(), wpa_core::Error>(())
/// ```
#[must_use]
#[inline]
pub fn desired_replicas(spec: &WpaSpec, queue: &QueueSnapshot, current_replicas: u32) -> Decision {
    let current = i64::from(current_replicas);
    let messages = i64::from(queue.messages());
    let target = spec.target_messages_per_worker();
    let seconds_per_job = spec.seconds_to_process_one_job();
    // An unknown rate acts as 0: the reference's -1 gives the same result.
    let rate = queue.messages_sent_per_minute().unwrap_or(0.0);

    // 1. The floor: minReplicas, raised by the arrival rate when
    //    secondsToProcessOneJob is set.
    let min = i64::from(spec.min_replicas());
    let max = i64::from(spec.max_replicas());
    let (floor, floor_from_arrival_rate) = if seconds_per_job == 0.0 {
        (min, false)
    } else {
        let workers_for_rate = go_int32(ceil((seconds_per_job * rate) / 60.0));
        if workers_for_rate > min {
            (workers_for_rate, true)
        } else {
            (min, false)
        }
    };

    // 2. How many pods one scale down may remove: computed in `clamp`, and
    //    only for a scale down, the one case that needs it.

    // 3. Workers the backlog needs, `ceil(messages / target)`, in float64
    //    as the reference does (a float division is also the cheaper one).
    let for_backlog = if messages == 0 {
        0
    } else {
        ceil(messages as f64 / f64::from(target)) as i64
    };

    let bounds = Bounds {
        current,
        floor,
        max,
        max_disruption: Some(spec.max_disruption()),
    };
    let (rule, (desired, limit)) = if current == 0 {
        // 4. From zero: straight to what the backlog needs.
        (Rule::ScaleFromZero, bounds.clamp(for_backlog))
    } else if messages > 0 {
        // 5. A backlog: resize unless the change is within tolerance.
        if within_tolerance(
            (for_backlog - current).unsigned_abs(),
            current.unsigned_abs(),
        ) {
            (Rule::WithinTolerance, bounds.clamp(current))
        } else {
            (Rule::Backlog, bounds.clamp(for_backlog))
        }
    } else if rate > 0.0 && seconds_per_job > 0.0 {
        // 6. Nothing queued, but messages arrive: hold the rate floor.
        (Rule::ArrivalRate, bounds.clamp(floor))
    } else if queue.idle_workers(current_replicas) == Some(current_replicas) {
        // 7. Nothing queued and every worker idle: all may go at once.
        let unbudgeted = Bounds {
            max_disruption: None,
            ..bounds
        };
        (Rule::AllIdle, unbudgeted.clamp(0))
    } else {
        // 8. Nothing queued, workers possibly busy: down within the budget.
        (Rule::NoBacklog, bounds.clamp(floor))
    };

    Decision {
        // Every path ends on current, a bound or a value between them: all
        // are within 0..=u32::MAX.
        desired_replicas: clamp_to_u32(desired),
        rule,
        limit,
        inputs: DecisionInputs {
            spec: *spec,
            snapshot: *queue,
            current_replicas,
            floor: clamp_to_u32(floor),
            floor_from_arrival_rate,
            wait: None,
            idle_pods: None,
        },
    }
}

/// The reference's `convertDesiredReplicasWithRules`.
#[derive(Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) current: i64,
    pub(crate) floor: i64,
    pub(crate) max: i64,
    /// `None`: no budget (all may go, the reference's budget of `current`).
    pub(crate) max_disruption: Option<MaxDisruption>,
}

impl Bounds {
    #[inline]
    pub(crate) fn clamp(self, mut desired: i64) -> (i64, Limit) {
        if self.floor >= self.max {
            return (self.max, Limit::FloorReachesMax);
        }
        let mut limit = Limit::None;
        if let Some(max_disruption) = self.max_disruption
            && desired < self.current
        {
            // `current` came from a u32; the budget is below 2^57 (see
            // `MaxDisruption::budget`), so both casts are lossless.
            let budget = max_disruption.budget(self.current as u32) as i64;
            if self.current - desired > budget {
                desired = self.current - budget;
                limit = Limit::DisruptionBudget;
            }
        }
        if desired > self.max {
            (self.max, Limit::MaxReplicas)
        } else if desired < self.floor {
            (self.floor, Limit::Floor)
        } else {
            (desired, limit)
        }
    }
}

/// The reference's `abs(float64(desired - current)) / float64(current) <= 0.1`
/// (a 10% tolerance), without a division.
///
/// For integers below 2^32, `fl(change / current) <= fl(0.1)` holds exactly
/// when `10 * change <= current`: if `10 * change <= current` the real
/// quotient is at most 1/10 and rounding is monotonic; otherwise the real
/// quotient exceeds 1/10 by at least `1 / (10 * current)` > 2^-36, far more
/// than the gap between 1/10 and `fl(0.1)` (about 2^-57).
#[inline]
fn within_tolerance(change: u64, current: u64) -> bool {
    change * 10 <= current
}

/// `f64::ceil` for a non-negative (or NaN) `x`, without the libm call that
/// the baseline x86-64 target makes for it. Exact: below 2^52 the
/// truncation is exact and one step up fixes a fractional part; from 2^52
/// on every float is an integer. NaN passes through.
#[inline]
fn ceil(x: f64) -> f64 {
    const TWO_TO_52: f64 = 4_503_599_627_370_496.0;
    debug_assert!(
        x >= 0.0 || x.is_nan(),
        "ceil is only used on non-negative values"
    );
    if x < TWO_TO_52 {
        let truncated = x as i64 as f64;
        if truncated < x {
            truncated + 1.0
        } else {
            truncated
        }
    } else {
        x
    }
}

/// Go's `int32(x)` for a non-negative float64 on amd64 (the reference's
/// platform): it truncates, and anything that does not fit becomes
/// `MinInt32`. So an arrival-rate floor above 2^31 - 1 workers falls back
/// to `minReplicas` in the reference, and here.
#[inline]
fn go_int32(x: f64) -> i64 {
    debug_assert!(x >= 0.0, "only used on non-negative values");
    if x < 2_147_483_648.0 {
        x as i64
    } else {
        // Infinity lands here too (NaN cannot occur: both factors are finite).
        i64::from(i32::MIN)
    }
}

#[inline]
pub(crate) fn clamp_to_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inputs = &self.inputs;
        let current = inputs.current_replicas;
        let backlog = |f: &mut fmt::Formatter<'_>| {
            write!(
                f,
                "{} messages at {} per worker need {} workers",
                inputs.snapshot.messages(),
                inputs.spec.target_messages_per_worker(),
                inputs.workers_for_backlog()
            )
        };
        match self.rule {
            Rule::ScaleFromZero => {
                f.write_str("no replicas running: ")?;
                backlog(f)?;
            }
            Rule::WithinTolerance => {
                backlog(f)?;
                write!(f, ", within 10% of the current {current}: keep {current}")?;
            }
            Rule::Backlog => backlog(f)?,
            Rule::ArrivalRate => write!(
                f,
                "queue empty but {} messages/min arrive at {} s per job: keep the arrival-rate floor of {}",
                inputs.snapshot.messages_sent_per_minute().unwrap_or(0.0),
                inputs.spec.seconds_to_process_one_job(),
                inputs.floor
            )?,
            Rule::AllIdle => write!(
                f,
                "queue empty and all {current} workers idle ({}): scale down to the floor at once (maxDisruption does not apply)",
                idleness_source(inputs.snapshot.idleness())
            )?,
            Rule::NoBacklog => {
                f.write_str("queue empty, ")?;
                match inputs.snapshot.idleness().idle_workers(current) {
                    None => write!(f, "idleness of the {current} workers not known")?,
                    Some(idle) => write!(f, "{idle} of the {current} workers idle")?,
                }
                write!(f, ": down to the floor of {}", inputs.floor)?;
                if inputs.idle_pods.is_none() {
                    f.write_str(" within maxDisruption")?;
                }
            }
            Rule::WaitTargetUp | Rule::WaitTargetHold | Rule::WaitTargetDown => {
                crate::wait_target::explain(f, self.rule, inputs)?;
            }
        }
        match self.limit {
            Limit::None => Ok(()),
            Limit::FloorReachesMax => write!(
                f,
                "; {} {} >= maxReplicas {}: maxReplicas wins",
                floor_name(inputs),
                inputs.floor,
                inputs.spec.max_replicas()
            ),
            Limit::MaxReplicas => {
                write!(f, "; capped at maxReplicas {}", inputs.spec.max_replicas())
            }
            Limit::Floor => write!(f, "; raised to {} {}", floor_name(inputs), inputs.floor),
            Limit::DisruptionBudget => write!(
                f,
                "; maxDisruption lets one scale down remove at most {} of {current}",
                inputs.disruption_budget()
            ),
            Limit::IdleWorkers => {
                let removable = match (inputs.wait, inputs.idle_pods) {
                    (Some(wait), _) => wait.removable,
                    (None, Some(idle_pods)) => {
                        crate::idle_first::removable(&inputs.snapshot, current, idle_pods)
                    }
                    (None, None) => 0,
                };
                let whose = if inputs.idle_pods.is_some() {
                    "idle (the pods' busy signal)"
                } else {
                    "not to hold a message"
                };
                write!(
                    f,
                    "; only {removable} of the {current} pods are known {whose}: down to {}",
                    self.desired_replicas
                )
            }
        }
    }
}

fn idleness_source(idleness: Idleness) -> &'static str {
    match idleness {
        Idleness::AllIdle => "the queue reports every worker idle",
        // Only a count can reach the all-idle rule otherwise.
        Idleness::Idle(_) | Idleness::Unknown | Idleness::NotAllIdle => {
            "the queue counts them idle"
        }
    }
}

fn floor_name(inputs: &DecisionInputs) -> &'static str {
    if inputs.floor_from_arrival_rate {
        "the arrival-rate floor"
    } else {
        "minReplicas"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        #[test]
        fn ceil_matches_the_float_ceil(x in prop_oneof![
            any::<f64>().prop_map(f64::abs),
            0.0..1e6f64,
            0.0..1.0f64,
            4.5e15..4.6e15f64,
            (0..=1_000_000i64).prop_map(|n| n as f64),
            (0..=1_000_000i64).prop_map(|n| n as f64 / 60.0),
        ]) {
            let expected = x.ceil();
            let ours = ceil(x);
            if expected.is_nan() {
                prop_assert!(ours.is_nan());
            } else {
                prop_assert_eq!(ours, expected);
            }
        }

        #[test]
        fn integer_tolerance_matches_the_float_test(change in 0..=u32::MAX, current in 1..=u32::MAX) {
            let float = f64::from(change) / f64::from(current) <= 0.1;
            prop_assert_eq!(within_tolerance(u64::from(change), u64::from(current)), float);
        }

        #[test]
        fn integer_tolerance_near_the_boundary(current in 1..=100_000u32, delta in -2i64..=2) {
            let change = (i64::from(current) / 10 + delta).max(0) as u32;
            let float = f64::from(change) / f64::from(current) <= 0.1;
            prop_assert_eq!(within_tolerance(u64::from(change), u64::from(current)), float);
        }

        #[test]
        fn integer_division_matches_the_float_ceil(messages in 0..=u32::MAX, target in 1..=u32::MAX) {
            let float = (f64::from(messages) / f64::from(target)).ceil() as i64;
            prop_assert_eq!(i64::from(messages.div_ceil(target)), float);
        }

        #[test]
        fn integer_budget_matches_the_float_ceil(percent in 0..=crate::MAX_REPLICAS, current in any::<u32>()) {
            let float = ((f64::from(percent) * f64::from(current)) / 100.0).ceil() as u64;
            prop_assert_eq!(crate::MaxDisruption::Percent(percent).budget(current), float);
        }
    }
}
