//! One reconcile of one WorkerPodAutoScaler: read the caches and the
//! queue, decide through the core, scale, write the status, report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::channel::mpsc;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;
use wpa_core::{History, Plan, ReconcileError, ScaleTarget, TargetReplicas};
use wpa_kube::{
    BusyProbe, KubeScaleTarget, TargetRef, WorkerPodAutoScaler, WorkerPodAutoScalerStatus,
    WpaEvents, invalid_spec_event, scale_event, scale_failed_event, write_status,
};
use wpa_poller::{PollerError, Registry, Subscription};

use super::caches::TargetCaches;
use super::{CONDITION_FRESH, CONDITION_VALID, ControllerConfig};
use crate::idle_first::{PodOwners, Probed, mark_victims, probe_pods};
use crate::limiter::RateLimiter;
use crate::metrics::{Metrics, WpaLabels, WpaSample, queue_name};
use crate::{Clock, SourceFactory};

/// A WPA, by (namespace, name).
pub(crate) type WpaKey = (String, String);

/// What every reconcile shares.
pub(crate) struct Context {
    pub(crate) client: Client,
    pub(crate) config: ControllerConfig,
    pub(crate) factory: Arc<dyn SourceFactory>,
    pub(crate) registry: Registry,
    pub(crate) caches: TargetCaches,
    pub(crate) events: WpaEvents,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limiter: RateLimiter,
    pub(crate) clock: Clock,
    /// Every WPA, as the controller's watch has them.
    pub(crate) wpas: Store<WorkerPodAutoScaler>,
    /// Each WPA's state between reconciles. kube-runtime never runs two
    /// reconciles of one object at once, so a reconcile takes its state
    /// out and puts it back.
    pub(crate) states: Mutex<HashMap<WpaKey, WpaState>>,
    /// Where a WPA's queue changes are sent to wake its reconcile.
    pub(crate) queue_changes: mpsc::UnboundedSender<ObjectRef<WorkerPodAutoScaler>>,
}

impl Context {
    fn take_state(&self, key: &WpaKey) -> WpaState {
        self.lock_states().remove(key).unwrap_or_default()
    }

    fn put_state(&self, key: WpaKey, state: WpaState) {
        self.lock_states().insert(key, state);
    }

    pub(crate) fn lock_states(&self) -> std::sync::MutexGuard<'_, HashMap<WpaKey, WpaState>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets every WPA with a state that the store no longer has.
    pub(crate) fn forget_missing(&self) {
        let gone: Vec<WpaKey> = self
            .lock_states()
            .keys()
            .filter(|(namespace, name)| {
                self.wpas
                    .get(&ObjectRef::new(name).within(namespace))
                    .is_none()
            })
            .cloned()
            .collect();
        for (namespace, name) in gone {
            self.forget(&namespace, &name);
        }
    }

    /// A WPA is gone: its subscription, state and series go too.
    pub(crate) fn forget(&self, namespace: &str, name: &str) {
        let removed = self
            .lock_states()
            .remove(&(namespace.to_owned(), name.to_owned()));
        self.metrics.forget(namespace, name);
        if removed.is_some() {
            tracing::info!(namespace = %namespace, wpa = %name, "WorkerPodAutoScaler deleted");
        }
    }
}

/// What one WPA's reconciles remember.
#[derive(Default)]
pub(crate) struct WpaState {
    uri: Option<String>,
    pub(crate) subscription: Option<Subscription>,
    /// Wakes this WPA's reconcile when its queue's snapshot changes.
    forwarder: Option<AbortOnDrop>,
    /// The status this controller decided last, written or not: the one
    /// place `LastScaleTime` lives between reconciles (the watch may lag
    /// behind our own writes, and a failed write must not lose a scale).
    status: Option<WorkerPodAutoScalerStatus>,
    /// Whether `status` was written.
    persisted: bool,
    /// The last problem reported by Event, to report each one once.
    reported: Option<String>,
    /// Transient failures in a row, for the retry backoff.
    pub(crate) failures: u32,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How a reconcile ended, for its requeue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done, or failed in a way another try soon would not fix: the next
    /// reconcile comes with a change or the resync.
    Settled,
    /// A write failed with a transient error (5xx, 429, timeout, conflict):
    /// retried after the WPA's backoff, not at the next resync.
    Retry,
    /// Done, and due again after this ([`Plan::due_in`]: a wait-target
    /// WPA's held scale down, an idle-first one cut short by busy pods):
    /// reconciled again then, or at the resync if that comes first.
    DueIn(Duration),
}

/// A [`ScaleTarget`] reading replicas from the reflector cache and writing
/// through the scale subresource; idle-first with a `busyProbe`.
struct CachedTarget<'a> {
    replicas: TargetReplicas,
    inner: KubeScaleTarget,
    limiter: &'a RateLimiter,
    metrics: &'a Metrics,
    /// Writes the last apply made (0: the scale already had that count,
    /// e.g. the cache lagged behind our own previous scale).
    writes: u32,
    /// With a `busyProbe`: the target's pods.
    idle_first: Option<IdleFirstPods<'a>>,
}

/// The pods of an idle-first target, for one reconcile.
struct IdleFirstPods<'a> {
    client: &'a Client,
    namespace: &'a str,
    target: &'a TargetRef,
    owners: PodOwners,
    probe: &'a BusyProbe,
    /// What the probe found, for the scale down that follows.
    probed: Option<Probed>,
}

impl ScaleTarget for CachedTarget<'_> {
    type Error = wpa_kube::Error;

    async fn replicas(&mut self) -> Result<TargetReplicas, wpa_kube::Error> {
        Ok(self.replicas)
    }

    async fn apply(&mut self, replicas: u32) -> Result<(), wpa_kube::Error> {
        if let Some(pods) = self.idle_first.as_mut()
            && replicas < self.replicas.current
            && let Some(probed) = &pods.probed
        {
            // The victims are ordered before the count shrinks, or not at all.
            let written =
                mark_victims(pods.client, self.limiter, pods.namespace, probed, replicas).await?;
            self.metrics.pod_deletion_cost_writes(written);
        }
        self.limiter.acquire().await;
        self.writes = self.inner.scale(replicas).await?;
        Ok(())
    }

    fn idle_first(&self) -> bool {
        self.idle_first.is_some()
    }

    async fn idle_pods(&mut self, replicas: TargetReplicas) -> Result<u32, wpa_kube::Error> {
        let Some(pods) = self.idle_first.as_mut() else {
            return Ok(replicas.current);
        };
        let probed = probe_pods(
            pods.client,
            self.limiter,
            pods.namespace,
            pods.target,
            &pods.owners,
            pods.probe,
        )
        .await?;
        let idle = probed.idle_pods(replicas.current);
        self.metrics
            .busy_probe_answers(probed.idle, probed.busy, probed.unanswered);
        tracing::debug!(
            namespace = %pods.namespace, target = %pods.target.name,
            "busy probe: {} idle, {} busy, {} unanswered: {idle} may go{}",
            probed.idle, probed.busy, probed.unanswered,
            probed.blocked.as_deref().map(|why| format!(" ({why})")).unwrap_or_default()
        );
        pods.probed = Some(probed);
        Ok(idle)
    }
}

/// Why a WPA cannot be decided on.
pub(crate) struct Problem {
    reason: &'static str,
    error: wpa_kube::Error,
}

/// What a reconcile decides on, read from the caches without any I/O.
pub(crate) struct Inputs {
    pub(crate) valid: wpa_kube::ValidatedSpec,
    pub(crate) replicas: TargetReplicas,
    pub(crate) last_scale_time: Option<SystemTime>,
    /// With a `busyProbe`: what selects the target's pods.
    pub(crate) pod_owners: Option<PodOwners>,
}

/// The first part of every reconcile: validates the spec, subscribes to
/// its queue (once per WPA, or again when the URI changes), reads the
/// target's replicas from the reflector cache and tells the queue's poller
/// what it needs (the replicas that run, whether the arrival rate is
/// used). No API call.
pub(crate) fn inputs(
    ctx: &Context,
    wpa: &WorkerPodAutoScaler,
    namespace: &str,
    state: &mut WpaState,
) -> Result<Inputs, Box<Problem>> {
    let valid = match wpa.spec.validate(ctx.config.default_max_disruption) {
        Ok(valid) => valid,
        Err(error) => {
            state.subscription = None;
            state.forwarder = None;
            state.uri = None;
            return Err(Box::new(Problem {
                reason: wpa_kube::reason::INVALID_SPEC,
                error,
            }));
        }
    };
    if state.uri.as_deref() != Some(valid.queue_uri.as_str()) || state.subscription.is_none() {
        state.subscription = None;
        state.forwarder = None;
        // A new URI: the last observation was of another queue. (The
        // first subscription, after a start, keeps the stored one.)
        if state
            .uri
            .as_deref()
            .is_some_and(|uri| uri != valid.queue_uri)
            && let Some(status) = state.status.take().or_else(|| wpa.status.clone())
        {
            state.status = Some(status.with_messages_read_at(None));
            state.persisted = false;
        }
        match ctx.factory.subscribe(&ctx.registry, &valid.queue_uri) {
            Ok(subscription) => {
                state.subscription = Some(subscription);
                state.uri = Some(valid.queue_uri.clone());
            }
            Err(message) => {
                return Err(Box::new(Problem {
                    reason: "UnsupportedQueueURI",
                    error: wpa_kube::Error::UnsupportedQueueUri {
                        uri: valid.queue_uri.clone(),
                        message,
                    },
                }));
            }
        }
    }
    let replicas = ctx
        .caches
        .replicas(namespace, &valid.target)
        .map_err(|error| {
            Box::new(Problem {
                reason: "TargetNotFound",
                error,
            })
        })?;
    let pod_owners = match &valid.busy_probe {
        None => None,
        Some(_) => Some(
            ctx.caches
                .pod_owners(namespace, &valid.target)
                .map_err(|error| {
                    Box::new(Problem {
                        reason: "TargetNotFound",
                        error,
                    })
                })?,
        ),
    };
    if let Some(subscription) = &state.subscription {
        subscription.set_replicas(replicas.current);
        // Only a spec with the rate floor makes the SQS poller pay
        // CloudWatch for the arrival rate, as in the reference; the
        // wait-target policy sizes on the rate too (its validation requires
        // secondsToProcessOneJob > 0, so it is always among them).
        subscription.set_needs_arrival_rate(
            valid.spec.seconds_to_process_one_job() > 0.0 || valid.spec.wait_target().is_some(),
        );
        // Only the wait-target policy reads the oldest message's age.
        subscription.set_needs_oldest_age(valid.spec.wait_target().is_some());
    }
    let stored = wpa
        .status
        .as_ref()
        .and_then(WorkerPodAutoScalerStatus::last_scale_time);
    let ours = state
        .status
        .as_ref()
        .and_then(WorkerPodAutoScalerStatus::last_scale_time);
    Ok(Inputs {
        valid,
        replicas,
        last_scale_time: stored.max(ours),
        pod_owners,
    })
}

/// Starts the task that turns this WPA's queue changes into reconcile
/// requests, unless it runs.
fn forward_queue_changes(ctx: &Context, wpa: &WorkerPodAutoScaler, state: &mut WpaState) {
    if state.forwarder.is_some() {
        return;
    }
    let Some(subscription) = &state.subscription else {
        return;
    };
    let mut changes = subscription.changes();
    let sender = ctx.queue_changes.clone();
    let key = ObjectRef::from_obj(wpa);
    state.forwarder = Some(AbortOnDrop(tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            if sender.unbounded_send(key.clone()).is_err() {
                break;
            }
        }
    })));
}

async fn save_status(
    ctx: &Context,
    wpa: &WorkerPodAutoScaler,
    state: &mut WpaState,
    next: WorkerPodAutoScalerStatus,
) -> Outcome {
    let unchanged = state.persisted && state.status.as_ref() == Some(&next);
    if unchanged || wpa.status.as_ref() == Some(&next) {
        state.status = Some(next);
        state.persisted = true;
        return Outcome::Settled;
    }
    ctx.limiter.acquire().await;
    let written = write_status(&ctx.client, wpa, &next).await;
    state.status = Some(next);
    state.persisted = written.is_ok();
    match written {
        Ok(_) => Outcome::Settled,
        Err(error) => {
            tracing::warn!(
                namespace = %wpa.namespace().unwrap_or_default(), wpa = %wpa.name_any(),
                "writing status: {error}"
            );
            if error.is_transient() {
                Outcome::Retry
            } else {
                Outcome::Settled
            }
        }
    }
}

/// The status to build on: ours if the watch has not caught up with it.
fn base_status(wpa: &WorkerPodAutoScaler, state: &WpaState) -> WorkerPodAutoScalerStatus {
    state
        .status
        .clone()
        .or_else(|| wpa.status.clone())
        .unwrap_or_default()
}

/// Reports a problem the user must fix: an Event (once per distinct
/// message) and a `Valid=False` condition.
async fn report_problem(
    ctx: &Context,
    wpa: &WorkerPodAutoScaler,
    state: &mut WpaState,
    reason: &str,
    error: &wpa_kube::Error,
) -> Outcome {
    let message = error.to_string();
    tracing::warn!(
        namespace = %wpa.namespace().unwrap_or_default(), wpa = %wpa.name_any(),
        "{reason}: {message}"
    );
    if state.reported.as_deref() != Some(message.as_str()) {
        ctx.limiter.acquire().await;
        let event = if error.is_spec_error() {
            invalid_spec_event(error)
        } else {
            let mut event = scale_failed_event(error);
            reason.clone_into(&mut event.reason);
            event
        };
        if let Err(e) = ctx.events.publish(wpa, &event).await {
            tracing::warn!("publishing an event: {e}");
        }
        state.reported = Some(message.clone());
    }
    let next = base_status(wpa, state).with_condition(
        CONDITION_VALID,
        false,
        reason,
        &message,
        ctx.clock.now(),
    );
    save_status(ctx, wpa, state, next).await
}

/// Reconciles `wpa` with its state taken out of the context for the time.
pub(crate) async fn reconcile(ctx: &Context, wpa: &WorkerPodAutoScaler) -> Outcome {
    let key = (wpa.namespace().unwrap_or_default(), wpa.name_any());
    let mut state = ctx.take_state(&key);
    let outcome = reconcile_with(ctx, wpa, &mut state).await;
    state.failures = match outcome {
        Outcome::Retry => state.failures.saturating_add(1),
        Outcome::Settled | Outcome::DueIn(_) => 0,
    };
    if ctx.wpas.get(&ObjectRef::from_obj(wpa)).is_some() {
        ctx.put_state(key, state);
    } else {
        // Deleted while this reconcile ran: nothing of it may stay behind.
        drop(state);
        ctx.forget(&key.0, &key.1);
    }
    outcome
}

async fn reconcile_with(ctx: &Context, wpa: &WorkerPodAutoScaler, state: &mut WpaState) -> Outcome {
    let started = std::time::Instant::now();
    let namespace = wpa.namespace().unwrap_or_default();
    let name = wpa.name_any();
    let Inputs {
        valid,
        replicas,
        last_scale_time,
        pod_owners,
    } = match inputs(ctx, wpa, &namespace, state) {
        Ok(inputs) => inputs,
        Err(problem) => {
            return report_problem(ctx, wpa, state, problem.reason, &problem.error).await;
        }
    };
    forward_queue_changes(ctx, wpa, state);
    // The wait-target policy reads the backlog's growth since the last
    // step, kept in the status (`CurrentMessagesTime`) like LastScaleTime.
    let wait_target = valid.spec.wait_target().is_some();
    let last_observation = base_status(wpa, state)
        .last_observation()
        .filter(|_| wait_target);
    let Some(subscription) = state.subscription.as_mut() else {
        return Outcome::Settled;
    };
    let mut target = CachedTarget {
        replicas,
        inner: KubeScaleTarget::new(
            ctx.client.clone(),
            valid.target.kind,
            &namespace,
            &valid.target.name,
        ),
        limiter: &ctx.limiter,
        metrics: &ctx.metrics,
        writes: 0,
        idle_first: match (pod_owners, &valid.busy_probe) {
            (Some(owners), Some(probe)) => Some(IdleFirstPods {
                client: &ctx.client,
                namespace: &namespace,
                target: &valid.target,
                owners,
                probe,
                probed: None,
            }),
            _ => None,
        },
    };
    let now = ctx.clock.now();
    // The growth is measured between polls: a resync decides again on the
    // poll it has, which keeps its time. Read before the reconcile, whose
    // scale write a newer poll may overtake.
    let polled_at = subscription.polled_at(now).unwrap_or(now);
    let history = History {
        last_scale_time,
        last_observation,
    };
    let result = wpa_core::reconcile_with_history(
        subscription,
        &mut target,
        &valid.spec,
        ctx.config.scale_down_delay,
        history,
        now,
    )
    .await;
    let plan: Plan = match result {
        Ok(plan) => plan,
        Err(ReconcileError::Queue(PollerError::NotPolledYet { uri, last_error })) => {
            // The reference's "-1": no decision until the first poll.
            tracing::debug!(namespace = %namespace, wpa = %name, "queue {uri} not polled yet: {last_error:?}");
            return Outcome::Settled;
        }
        Err(ReconcileError::Queue(error)) => {
            // The poller retries the queue with its own backoff.
            tracing::warn!(namespace = %namespace, wpa = %name, "queue: {error}");
            return Outcome::Settled;
        }
        Err(ReconcileError::ReadTarget(error)) => {
            // Only the idle-first pod list reads the API here.
            tracing::warn!(namespace = %namespace, wpa = %name, "listing the target's pods: {error}");
            if error.is_transient() {
                return Outcome::Retry;
            }
            let reason = match error {
                wpa_kube::Error::NotFound { .. } => "TargetNotFound",
                _ => "PodsUnreadable",
            };
            return report_problem(ctx, wpa, state, reason, &error).await;
        }
        Err(ReconcileError::Apply { replicas, source }) => {
            tracing::warn!(namespace = %namespace, wpa = %name, "scaling to {replicas}: {source}");
            if source.is_transient() {
                return Outcome::Retry;
            }
            report_problem(ctx, wpa, state, wpa_kube::reason::SCALE_FAILED, &source).await;
            return Outcome::Settled;
        }
    };
    state.reported = None;
    let scaled = plan.operation.changes_replicas() && target.writes > 0;
    let mut core_status = plan.status;
    if !scaled {
        // Nothing written (the count was already there): not a scale.
        core_status.last_scale_time = last_scale_time;
    }
    if scaled {
        tracing::info!(
            namespace = %namespace, wpa = %name,
            "{} {} -> {}: {}", plan.operation, replicas.current, plan.decision.desired_replicas, plan.decision
        );
        if let Some(event) = scale_event(&plan) {
            ctx.limiter.acquire().await;
            if let Err(e) = ctx.events.publish(wpa, &event).await {
                tracing::warn!("publishing an event: {e}");
            }
        }
    } else {
        tracing::debug!(namespace = %namespace, wpa = %name, "{}: {}", plan.operation, plan.decision);
    }
    let stale = plan.snapshot.is_stale();
    let next = base_status(wpa, state)
        .with_core(&core_status)
        .with_messages_read_at(wait_target.then_some(polled_at))
        .with_condition(CONDITION_VALID, true, "Valid", "", now)
        .with_condition(
            CONDITION_FRESH,
            !stale,
            if stale { "StaleQueueMetrics" } else { "Polled" },
            if stale {
                "the queue could not be polled recently: scale-downs are held"
            } else {
                ""
            },
            now,
        );
    // A wait-target WPA acts when its hold ends, an idle-first one when its
    // busy pods may be idle; the reference acts at the resync.
    let outcome = match (save_status(ctx, wpa, state, next).await, plan.due_in()) {
        (Outcome::Settled, Some(due)) => Outcome::DueIn(due),
        (outcome, _) => outcome,
    };
    let signed = |value: Option<u32>| value.map_or(-1.0, f64::from);
    ctx.metrics.observe(
        WpaLabels {
            name: name.clone(),
            namespace: namespace.clone(),
            queue_name: queue_name(&valid.queue_uri),
        },
        WpaSample {
            messages: f64::from(plan.snapshot.messages()),
            sent_per_minute: plan.snapshot.messages_sent_per_minute().unwrap_or(-1.0),
            current: f64::from(replicas.current),
            desired: f64::from(plan.decision.desired_replicas),
            idle: signed(plan.snapshot.idle_workers(replicas.current)),
            available: f64::from(replicas.available),
        },
    );
    ctx.metrics
        .loop_success(&namespace, &name, started.elapsed().as_secs_f64());
    outcome
}
