//! How many workers should run: the reference's rules, top to bottom.
//!
//! This file is the whole decision. It reproduces the Go Worker Pod
//! Autoscaler (v1.6) decision for decision on every input that the
//! reference accepts; see `wpa-semantics.md` for the rules and the README
//! for the few places where a reference defect is not copied.
//!
//! Arithmetic is done in `i64` (every input fits in 32 bits, so nothing can
//! overflow) and in `f64` exactly where the reference uses floats, in the
//! same order of operations, so results are bit-identical.

use std::fmt;

use crate::{QueueSnapshot, WpaSpec};

/// Relative change below which a backlog-driven resize is not worth it.
const TOLERANCE: f64 = 0.1;

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

/// The numbers a decision was made from, kept so that a [`Decision`] can
/// explain itself without its spec or snapshot at hand.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionInputs {
    /// Replicas running when the decision was made.
    pub current_replicas: u32,
    /// Visible plus in-flight messages.
    pub queue_messages: u32,
    /// `targetMessagesPerWorker`.
    pub target_messages_per_worker: u32,
    /// Arrival rate used, messages per minute (0 when unknown).
    pub messages_sent_per_minute: f64,
    /// `secondsToProcessOneJob`.
    pub seconds_to_process_one_job: f64,
    /// `ceil(queueMessages / targetMessagesPerWorker)`.
    pub workers_for_backlog: u32,
    /// The lower bound in force: `minReplicas`, or the arrival-rate floor
    /// when that is higher.
    pub floor: u32,
    /// Whether `floor` comes from the arrival rate rather than `minReplicas`.
    pub floor_from_arrival_rate: bool,
    /// `maxReplicas`.
    pub max_replicas: u32,
    /// Pods one scale down may remove (`maxDisruption` applied to current).
    pub disruption_budget: u64,
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
        let workers_for_rate = go_int32(((seconds_per_job * rate) / 60.0).ceil());
        if workers_for_rate > min {
            (workers_for_rate, true)
        } else {
            (min, false)
        }
    };

    // 2. How many pods one scale down may remove.
    let budget = spec.max_disruption().budget(current_replicas);

    // 3. Workers the backlog needs. At most `messages`, so it fits.
    let for_backlog = (messages as f64 / f64::from(target)).ceil() as i64;

    let bounds = Bounds {
        current,
        floor,
        max,
        budget: i64::try_from(budget).unwrap_or(i64::MAX),
    };
    let (rule, (desired, limit)) = if current == 0 {
        // 4. From zero: straight to what the backlog needs.
        (Rule::ScaleFromZero, bounds.clamp(for_backlog))
    } else if messages > 0 {
        // 5. A backlog: resize unless the change is within tolerance.
        if ((for_backlog - current) as f64).abs() / current as f64 <= TOLERANCE {
            (Rule::WithinTolerance, bounds.clamp(current))
        } else {
            (Rule::Backlog, bounds.clamp(for_backlog))
        }
    } else if rate > 0.0 && seconds_per_job > 0.0 {
        // 6. Nothing queued, but messages arrive: hold the rate floor.
        (Rule::ArrivalRate, bounds.clamp(floor))
    } else if queue.idle_workers() == Some(current_replicas) {
        // 7. Nothing queued and every worker idle: all may go at once.
        let unbudgeted = Bounds {
            budget: current,
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
            current_replicas,
            queue_messages: queue.messages(),
            target_messages_per_worker: target,
            messages_sent_per_minute: rate,
            seconds_to_process_one_job: seconds_per_job,
            workers_for_backlog: clamp_to_u32(for_backlog),
            floor: clamp_to_u32(floor),
            floor_from_arrival_rate,
            max_replicas: spec.max_replicas(),
            disruption_budget: budget,
        },
    }
}

/// The reference's `convertDesiredReplicasWithRules`.
#[derive(Clone, Copy)]
struct Bounds {
    current: i64,
    floor: i64,
    max: i64,
    budget: i64,
}

impl Bounds {
    #[inline]
    fn clamp(self, mut desired: i64) -> (i64, Limit) {
        if self.floor >= self.max {
            return (self.max, Limit::FloorReachesMax);
        }
        let mut limit = Limit::None;
        if self.current - desired > self.budget {
            desired = self.current - self.budget;
            limit = Limit::DisruptionBudget;
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

/// Go's `int32(x)` for a float64 on amd64 (the reference's platform): it
/// truncates, and anything that does not fit, NaN included, becomes
/// `MinInt32`. So an arrival-rate floor above 2^31 - 1 workers falls back
/// to `minReplicas` in the reference, and here.
#[inline]
fn go_int32(x: f64) -> i64 {
    if x > -2_147_483_649.0 && x < 2_147_483_648.0 {
        x as i64
    } else {
        i64::from(i32::MIN)
    }
}

#[inline]
fn clamp_to_u32(value: i64) -> u32 {
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
                inputs.queue_messages,
                inputs.target_messages_per_worker,
                inputs.workers_for_backlog
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
                inputs.messages_sent_per_minute, inputs.seconds_to_process_one_job, inputs.floor
            )?,
            Rule::AllIdle => write!(
                f,
                "queue empty and all {current} workers idle: scale down to the floor at once (maxDisruption does not apply)"
            )?,
            Rule::NoBacklog => write!(
                f,
                "queue empty, idleness of the {current} workers not known: down to the floor of {} within maxDisruption",
                inputs.floor
            )?,
        }
        match self.limit {
            Limit::None => Ok(()),
            Limit::FloorReachesMax => write!(
                f,
                "; {} {} >= maxReplicas {}: maxReplicas wins",
                floor_name(inputs),
                inputs.floor,
                inputs.max_replicas
            ),
            Limit::MaxReplicas => write!(f, "; capped at maxReplicas {}", inputs.max_replicas),
            Limit::Floor => write!(f, "; raised to {} {}", floor_name(inputs), inputs.floor),
            Limit::DisruptionBudget => write!(
                f,
                "; maxDisruption lets one scale down remove at most {} of {current}",
                inputs.disruption_budget
            ),
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
