//! The one reconcile step every driver runs: snapshot, decision, apply.
//!
//! Adapters produce a [`QueueSnapshot`] ([`QueueMetrics`]) and read or set a
//! replica count ([`ScaleTarget`]); [`reconcile`] ties them to the decision.
//! The controller, the `watch` dry run and the simulator all call it, so
//! there is exactly one decision path.
//!
//! The traits return futures but name no runtime: an adapter on tokio and a
//! simulator whose futures are always ready implement the same traits.

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::{
    Decision, HoldReason, Limit, QueueSnapshot, ScaleOperation, WpaSpec, decide, scale_operation,
};

/// A source of queue snapshots (an SQS queue, a beanstalkd tube, a model).
pub trait QueueMetrics {
    /// Why a snapshot could not be taken.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The latest observation of the queue.
    fn snapshot(&mut self) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send;
}

/// Something with a replica count to scale (a Deployment, a ReplicaSet, a
/// pool of local processes, a model).
pub trait ScaleTarget {
    /// Why the target could not be read or scaled.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Current (requested) and available (ready) replicas.
    fn replicas(&mut self) -> impl Future<Output = Result<TargetReplicas, Self::Error>> + Send;

    /// Sets the requested replica count. After [`ScaleTarget::idle_pods`],
    /// a scale down removes the pods it found idle first.
    fn apply(&mut self, replicas: u32) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Whether the target scales down idle-first: it can tell, right
    /// before a scale down, how many pods may go without stopping a job
    /// ([`ScaleTarget::idle_pods`]). Default: no, and the policies' own
    /// limits (`maxDisruption`, the queue's idleness) apply.
    fn idle_first(&self) -> bool {
        false
    }

    /// Right before a scale down (only when [`ScaleTarget::idle_first`]):
    /// how many pods may be removed without stopping a job. The target
    /// remembers which, for the [`ScaleTarget::apply`] that follows.
    fn idle_pods(
        &mut self,
        replicas: TargetReplicas,
    ) -> impl Future<Output = Result<u32, Self::Error>> + Send {
        async move { Ok(replicas.current) }
    }
}

/// The replica counts of a scale target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TargetReplicas {
    /// Requested replicas (a Deployment's `spec.replicas`): what decisions use.
    pub current: u32,
    /// Ready replicas (`status.availableReplicas`): reported; the
    /// wait-target policy also counts on them (pods not ready yet serve later).
    pub available: u32,
    /// Pods a scale down may remove without stopping a job, by the target's
    /// per-pod busy signal (idle-first scale down, [`crate::idle_first`]);
    /// `None`: the target has no such signal, and decisions are the
    /// reference's.
    pub idle_pods: Option<u32>,
}

impl TargetReplicas {
    /// Requested and ready replicas, without a per-pod signal.
    #[must_use]
    pub const fn new(current: u32, available: u32) -> Self {
        TargetReplicas {
            current,
            available,
            idle_pods: None,
        }
    }

    /// Builds replica counts from Kubernetes' signed int32 fields (or any
    /// signed source), refusing negative values.
    pub fn from_signed(current: i64, available: i64) -> Result<Self, crate::Error> {
        Ok(TargetReplicas {
            current: crate::spec::replica_count("currentReplicas", Some(current))?,
            available: crate::spec::replica_count("availableReplicas", Some(available))?,
            idle_pods: None,
        })
    }

    /// These counts with the per-pod signal's idle count.
    #[must_use]
    pub const fn with_idle_pods(mut self, idle_pods: u32) -> Self {
        self.idle_pods = Some(idle_pods);
        self
    }
}

/// What a `WorkerPodAutoScaler` status holds after a reconcile step, with
/// the reference's meaning for each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WpaStatus {
    /// `CurrentMessages`: the snapshot's message count.
    pub current_messages: u32,
    /// `CurrentReplicas`: the target's requested replicas before this step.
    pub current_replicas: u32,
    /// `AvailableReplicas`: the target's available replicas.
    pub available_replicas: u32,
    /// `DesiredReplicas`: the computed count, even when a scale down was held.
    pub desired_replicas: u32,
    /// `LastScaleTime`: when replicas were last changed by the autoscaler.
    pub last_scale_time: Option<SystemTime>,
}

/// One observation of the queue a step decided on: its message count, and
/// when. The wait-target policy reads the backlog's growth from the last
/// one (a rate that lags, like CloudWatch's, cannot tell a burst has begun).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Observation {
    /// Visible plus in-flight messages.
    pub messages: u32,
    /// When the queue was polled for them (not when a step decided on
    /// them: a resync that decides again on the same poll must not shorten
    /// the interval the next growth is measured over).
    pub at: SystemTime,
}

/// How fast the backlog grew between two polls, and over how long: the
/// interval sets the growth's noise (a count's change over a few seconds
/// swings by more per second than one over minutes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BacklogGrowth {
    /// Messages per second (negative: the backlog shrank).
    pub per_second: f64,
    /// Seconds between the two polls.
    pub over_seconds: f64,
}

/// What a WPA's controller keeps from one step to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct History {
    /// `LastScaleTime`.
    pub last_scale_time: Option<SystemTime>,
    /// The last step's observation (`None`: the first step, or after a
    /// restart).
    pub last_observation: Option<Observation>,
}

impl History {
    /// Only a `LastScaleTime` (what the reference keeps).
    #[must_use]
    pub const fn since(last_scale_time: Option<SystemTime>) -> Self {
        History {
            last_scale_time,
            last_observation: None,
        }
    }

    /// What to keep after `plan`, whose snapshot the queue was polled
    /// for at `polled_at`. Pass the poll's time, not the decision's: the
    /// controller also decides at each resync on the poll it already has,
    /// and a growth measured from that decision to the next poll counts
    /// one poll interval's change over part of it (twice the growth at a
    /// resync halfway between polls).
    #[must_use]
    pub fn after(plan: &Plan, polled_at: SystemTime) -> Self {
        History {
            last_scale_time: plan.status.last_scale_time,
            last_observation: Some(Observation {
                messages: plan.snapshot.messages(),
                at: polled_at,
            }),
        }
    }

    /// How fast the backlog grew since the last observation (negative: it
    /// shrank), and over how long; `None` without one, or when less than a
    /// second has passed (too short to tell).
    #[must_use]
    pub fn backlog_growth(&self, messages: u32, now: SystemTime) -> Option<BacklogGrowth> {
        let last = self.last_observation?;
        let elapsed = now.duration_since(last.at).ok()?.as_secs_f64();
        (elapsed >= 1.0).then(|| BacklogGrowth {
            per_second: (f64::from(messages) - f64::from(last.messages)) / elapsed,
            over_seconds: elapsed,
        })
    }
}

/// Everything one reconcile step decided, for logs, status and output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// The snapshot decided on.
    pub snapshot: QueueSnapshot,
    /// The target's replicas when decided.
    pub replicas: TargetReplicas,
    /// The desired count and why.
    pub decision: Decision,
    /// What is done about it now.
    pub operation: ScaleOperation,
    /// The status to write (its `last_scale_time` already advanced to `now`
    /// when the operation changes replicas, except for an idle-first scale
    /// down, which stops no job and restarts no delay).
    pub status: WpaStatus,
}

/// Past a held scale down's due time: `LastScaleTime + delay` must be
/// strictly before now.
const DUE_SLACK: Duration = Duration::from_millis(10);

impl Plan {
    /// When to decide again even if the queue does not change (a driver's
    /// resync may come first); `None`: at the next change or resync, as the
    /// reference does.
    ///
    /// - A wait-target scale down held by its start-up hold: just after
    ///   the hold ends.
    /// - An idle-first scale down cut short by busy pods (or prevented by
    ///   them): one job time later (`secondsToProcessOneJob`, at least
    ///   1 s), when those pods may be idle.
    #[must_use]
    pub fn due_in(&self) -> Option<Duration> {
        let spec = &self.decision.inputs.spec;
        if let (Some(_), ScaleOperation::ScaleDownHeld(HoldReason::ScaleDownDelay { remaining })) =
            (spec.wait_target(), self.operation)
        {
            return Some(remaining.saturating_add(DUE_SLACK));
        }
        let cut_by_busy_pods =
            self.replicas.idle_pods.is_some() && self.decision.limit == Limit::IdleWorkers;
        let job = spec.seconds_to_process_one_job();
        (cut_by_busy_pods && job > 0.0).then(|| Duration::from_secs_f64(job.clamp(1.0, 86_400.0)))
    }
}

/// Plans one step without doing any I/O: the pure core of [`reconcile`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use wpa_core::{plan, MaxDisruption, QueueSnapshot, ScaleOperation, TargetReplicas, WpaSpec};
///
/// let spec = WpaSpec::new(0, 10, 2, 0.0, MaxDisruption::DEFAULT)?;
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let replicas = TargetReplicas::new(0, 0);
/// let step = plan(&spec, QueueSnapshot::new(1), replicas, Duration::from_secs(600), None, now);
/// assert_eq!(step.operation, ScaleOperation::ScaleUp);
/// assert_eq!(step.status.desired_replicas, 1);
/// assert_eq!(step.status.last_scale_time, Some(now));
/// # Ok::<(), wpa_core::Error>(())
/// ```
#[must_use]
pub fn plan(
    spec: &WpaSpec,
    snapshot: QueueSnapshot,
    replicas: TargetReplicas,
    scale_down_delay: Duration,
    last_scale_time: Option<SystemTime>,
    now: SystemTime,
) -> Plan {
    plan_with_history(
        spec,
        snapshot,
        replicas,
        scale_down_delay,
        History::since(last_scale_time),
        now,
    )
}

/// [`plan`] with everything the controller keeps: the wait-target policy
/// also reads the backlog's growth since the last observation. Keep
/// [`History::after`] the returned plan for the next step.
#[must_use]
pub fn plan_with_history(
    spec: &WpaSpec,
    snapshot: QueueSnapshot,
    replicas: TargetReplicas,
    scale_down_delay: Duration,
    history: History,
    now: SystemTime,
) -> Plan {
    let last_scale_time = history.last_scale_time;
    // Only the wait-target policy reads the growth.
    let growth = spec
        .wait_target()
        .and_then(|_| history.backlog_growth(snapshot.messages(), now));
    let decision = decide(spec, &snapshot, replicas, growth);
    // The wait-target policy waits its own hold, not the controller's delay.
    let scale_down_delay = spec
        .wait_target()
        .map_or(scale_down_delay, |target| target.scale_down_hold());
    let mut operation = scale_operation(
        decision.desired_replicas,
        replicas.current,
        last_scale_time,
        scale_down_delay,
        now,
    );
    if operation == ScaleOperation::ScaleDown && snapshot.is_stale() {
        operation = ScaleOperation::ScaleDownHeld(crate::HoldReason::StaleQueueMetrics);
    }
    // An idle-first scale down stops no job, so it does not restart the
    // delay (which, with maxDisruption, paces how fast jobs are stopped):
    // the pool follows its pods down as they become idle.
    let idle_first_down = operation == ScaleOperation::ScaleDown && replicas.idle_pods.is_some();
    let last_scale_time = if operation.changes_replicas() && !idle_first_down {
        Some(now)
    } else {
        last_scale_time
    };
    Plan {
        snapshot,
        replicas,
        decision,
        operation,
        status: WpaStatus {
            current_messages: snapshot.messages(),
            current_replicas: replicas.current,
            available_replicas: replicas.available,
            desired_replicas: decision.desired_replicas,
            last_scale_time,
        },
    }
}

/// Why a reconcile step failed. Nothing was applied unless the error is
/// [`ReconcileError::Apply`], and then the target may or may not have
/// changed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError<Q, T>
where
    Q: std::error::Error + 'static,
    T: std::error::Error + 'static,
{
    /// The queue could not be read.
    #[error("reading the queue: {0}")]
    Queue(#[source] Q),
    /// The target's replicas could not be read.
    #[error("reading the scale target: {0}")]
    ReadTarget(#[source] T),
    /// The new replica count could not be applied.
    #[error("scaling the target to {replicas}: {source}")]
    Apply {
        /// The count that was being applied.
        replicas: u32,
        /// What went wrong.
        #[source]
        source: T,
    },
}

/// One reconcile step: take a snapshot, read the target, decide, apply.
///
/// `last_scale_time` is the WPA status's `LastScaleTime`; the returned
/// [`Plan::status`] carries its new value, for the caller to persist.
pub async fn reconcile<Q, T>(
    queue: &mut Q,
    target: &mut T,
    spec: &WpaSpec,
    scale_down_delay: Duration,
    last_scale_time: Option<SystemTime>,
    now: SystemTime,
) -> Result<Plan, ReconcileError<Q::Error, T::Error>>
where
    Q: QueueMetrics,
    T: ScaleTarget,
{
    reconcile_with_history(
        queue,
        target,
        spec,
        scale_down_delay,
        History::since(last_scale_time),
        now,
    )
    .await
}

/// [`reconcile`] with everything the controller keeps ([`History`]).
pub async fn reconcile_with_history<Q, T>(
    queue: &mut Q,
    target: &mut T,
    spec: &WpaSpec,
    scale_down_delay: Duration,
    history: History,
    now: SystemTime,
) -> Result<Plan, ReconcileError<Q::Error, T::Error>>
where
    Q: QueueMetrics,
    T: ScaleTarget,
{
    let snapshot = queue.snapshot().await.map_err(ReconcileError::Queue)?;
    let mut replicas = target
        .replicas()
        .await
        .map_err(ReconcileError::ReadTarget)?;
    let idle_first = target.idle_first();
    if idle_first {
        // Would a scale down happen if every pod were idle? Only then are
        // the pods asked: the signal costs nothing otherwise.
        replicas.idle_pods = Some(replicas.current);
    }
    let mut step = plan_with_history(spec, snapshot, replicas, scale_down_delay, history, now);
    if idle_first && step.operation == ScaleOperation::ScaleDown {
        let idle = target
            .idle_pods(replicas)
            .await
            .map_err(ReconcileError::ReadTarget)?;
        replicas.idle_pods = Some(idle.min(replicas.current));
        step = plan_with_history(spec, snapshot, replicas, scale_down_delay, history, now);
    }
    if step.operation.changes_replicas() {
        let replicas = step.decision.desired_replicas;
        target
            .apply(replicas)
            .await
            .map_err(|source| ReconcileError::Apply { replicas, source })?;
    }
    Ok(step)
}
