//! The controller loop: one task per WorkerPodAutoScaler, woken by its
//! queue's snapshot changes, its own changes and the resync period.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use wpa_core::{MaxDisruption, Plan, ReconcileError, ScaleTarget, TargetReplicas};
use wpa_kube::{
    KubeScaleTarget, TargetKind, TargetRef, WorkerPodAutoScaler, WorkerPodAutoScalerStatus,
    WpaEvents, invalid_spec_event, scale_event, scale_failed_event, write_status,
};
use wpa_poller::{Backoff, PollerError, Registry, Subscription};

use crate::limiter::RateLimiter;
use crate::metrics::{Metrics, WpaLabels, WpaSample, queue_name};
use crate::{Error, SourceFactory};

/// Condition type: whether the spec can be acted on.
pub const CONDITION_VALID: &str = "Valid";
/// Condition type: whether the queue was polled recently.
pub const CONDITION_FRESH: &str = "QueueMetricsFresh";

/// How the controller runs (the `run` flags that concern it).
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Only this namespace (`--namespace`); all when `None`.
    pub namespace: Option<String>,
    /// Reconcile every WPA at least this often (`--resync-period`).
    pub resync_period: Duration,
    /// Reconciles running at once (`--wpa-threads`).
    pub wpa_threads: usize,
    /// `--wpa-default-max-disruption`.
    pub default_max_disruption: MaxDisruption,
    /// `--scale-down-delay-after-last-scale-activity`.
    pub scale_down_delay: Duration,
    /// `--k8s-api-qps` (0: unlimited).
    pub api_qps: f64,
    /// `--k8s-api-burst`.
    pub api_burst: u32,
    /// Reported as the events' controller instance (the pod name).
    pub instance: Option<String>,
}

impl Default for ControllerConfig {
    /// The reference's defaults.
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            resync_period: Duration::from_secs(20),
            wpa_threads: 10,
            default_max_disruption: MaxDisruption::DEFAULT,
            scale_down_delay: wpa_core::DEFAULT_SCALE_DOWN_DELAY,
            api_qps: 5.0,
            api_burst: 10,
            instance: None,
        }
    }
}

/// Health shared with the HTTP endpoints.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    leader: AtomicBool,
}

impl Health {
    /// Whether the caches are synced (or this replica is a follower).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Marks readiness.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether this replica holds the lease (always true without election).
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Marks leadership.
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }
}

struct Context {
    client: Client,
    config: ControllerConfig,
    factory: Arc<dyn SourceFactory>,
    registry: Registry,
    deployments: Store<Deployment>,
    replica_sets: Store<ReplicaSet>,
    events: WpaEvents,
    metrics: Arc<Metrics>,
    limiter: RateLimiter,
    permits: Semaphore,
}

/// What one WPA's task remembers between reconciles.
#[derive(Default)]
struct TaskState {
    uri: Option<String>,
    subscription: Option<Subscription>,
    /// The last status written (the watch may lag behind our own writes).
    written: Option<WorkerPodAutoScalerStatus>,
    /// The last problem reported by Event, to report each one once.
    reported: Option<String>,
    last_scale_time: Option<SystemTime>,
}

/// A [`ScaleTarget`] reading replicas from the reflector cache and writing
/// through the scale subresource.
struct CachedTarget<'a> {
    replicas: TargetReplicas,
    inner: KubeScaleTarget,
    limiter: &'a RateLimiter,
    /// Writes the last apply made (0: the scale already had that count,
    /// e.g. the cache lagged behind our own previous scale).
    writes: u32,
}

impl ScaleTarget for CachedTarget<'_> {
    type Error = wpa_kube::Error;

    async fn replicas(&mut self) -> Result<TargetReplicas, wpa_kube::Error> {
        Ok(self.replicas)
    }

    async fn apply(&mut self, replicas: u32) -> Result<(), wpa_kube::Error> {
        self.limiter.acquire().await;
        self.writes = self.inner.scale(replicas).await?;
        Ok(())
    }
}

fn cached_replicas(
    ctx: &Context,
    namespace: &str,
    target: &TargetRef,
) -> Result<TargetReplicas, wpa_kube::Error> {
    let key_dep = ObjectRef::<Deployment>::new(&target.name).within(namespace);
    let key_rs = ObjectRef::<ReplicaSet>::new(&target.name).within(namespace);
    let (spec, available) = match target.kind {
        TargetKind::Deployment => ctx.deployments.get(&key_dep).map(|d| {
            (
                d.spec.replicas,
                d.status.as_ref().and_then(|s| s.available_replicas),
            )
        }),
        TargetKind::ReplicaSet => ctx.replica_sets.get(&key_rs).map(|r| {
            (
                r.spec.replicas,
                r.status.as_ref().and_then(|s| s.available_replicas),
            )
        }),
    }
    .ok_or_else(|| wpa_kube::Error::NotFound {
        kind: target.kind.as_str().to_owned(),
        namespace: namespace.to_owned(),
        name: target.name.clone(),
    })?;
    TargetReplicas::from_signed(
        i64::from(spec.unwrap_or(1)),
        i64::from(available.unwrap_or(0)),
    )
    .map_err(|source| wpa_kube::Error::InvalidReplicas {
        kind: target.kind,
        namespace: namespace.to_owned(),
        name: target.name.clone(),
        source,
    })
}

/// How a reconcile ended, for its task's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Done, or failed in a way another try soon would not fix: the next
    /// reconcile comes with a change or the resync.
    Settled,
    /// A write failed with a transient error (5xx, 429, timeout, conflict):
    /// try again after the task's backoff, without waiting for a resync.
    Retry,
}

async fn save_status(
    ctx: &Context,
    wpa: &WorkerPodAutoScaler,
    state: &mut TaskState,
    next: WorkerPodAutoScalerStatus,
) -> Outcome {
    if state.written.as_ref() == Some(&next) || wpa.status.as_ref() == Some(&next) {
        state.written = Some(next);
        return Outcome::Settled;
    }
    ctx.limiter.acquire().await;
    match write_status(&ctx.client, wpa, &next).await {
        Ok(_) => {
            state.written = Some(next);
            Outcome::Settled
        }
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
fn base_status(wpa: &WorkerPodAutoScaler, state: &TaskState) -> WorkerPodAutoScalerStatus {
    state
        .written
        .clone()
        .or_else(|| wpa.status.clone())
        .unwrap_or_default()
}

/// Reports a problem the user must fix: an Event (once per distinct
/// message) and a `Valid=False` condition.
async fn report_problem(
    ctx: &Context,
    wpa: &WorkerPodAutoScaler,
    state: &mut TaskState,
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
        SystemTime::now(),
    );
    save_status(ctx, wpa, state, next).await
}

/// Why a WPA cannot be decided on: what [`reconcile_one`] reports.
struct Problem {
    reason: &'static str,
    error: wpa_kube::Error,
}

/// What a reconcile decides on, read from the caches without any I/O.
struct Inputs {
    valid: wpa_kube::ValidatedSpec,
    replicas: TargetReplicas,
    last_scale_time: Option<SystemTime>,
}

/// The first part of every reconcile: validates the spec, subscribes to
/// its queue (once per WPA, or again when the URI changes), reads the
/// target's replicas from the reflector cache and tells the queue's poller
/// what it needs (the replicas that run, whether the arrival rate is
/// used). No API call.
fn inputs(
    ctx: &Context,
    wpa: &WorkerPodAutoScaler,
    namespace: &str,
    state: &mut TaskState,
) -> Result<Inputs, Box<Problem>> {
    let valid = match wpa.spec.validate(ctx.config.default_max_disruption) {
        Ok(valid) => valid,
        Err(error) => {
            state.subscription = None;
            state.uri = None;
            return Err(Box::new(Problem {
                reason: wpa_kube::reason::INVALID_SPEC,
                error,
            }));
        }
    };
    if state.uri.as_deref() != Some(valid.queue_uri.as_str()) || state.subscription.is_none() {
        state.subscription = None;
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
    let replicas = cached_replicas(ctx, namespace, &valid.target).map_err(|error| {
        Box::new(Problem {
            reason: "TargetNotFound",
            error,
        })
    })?;
    if let Some(subscription) = &state.subscription {
        subscription.set_replicas(replicas.current);
        // Only a spec with the rate floor makes the SQS poller pay
        // CloudWatch for the arrival rate, as in the reference.
        subscription.set_needs_arrival_rate(valid.spec.seconds_to_process_one_job() > 0.0);
    }
    let stored_time = wpa
        .status
        .as_ref()
        .and_then(WorkerPodAutoScalerStatus::last_scale_time);
    let last_scale_time = match (stored_time, state.last_scale_time) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Ok(Inputs {
        valid,
        replicas,
        last_scale_time,
    })
}

async fn reconcile_one(ctx: &Context, wpa: &WorkerPodAutoScaler, state: &mut TaskState) -> Outcome {
    let started = std::time::Instant::now();
    let namespace = wpa.namespace().unwrap_or_default();
    let name = wpa.name_any();
    let Inputs {
        valid,
        replicas,
        last_scale_time,
    } = match inputs(ctx, wpa, &namespace, state) {
        Ok(inputs) => inputs,
        Err(problem) => {
            return report_problem(ctx, wpa, state, problem.reason, &problem.error).await;
        }
    };
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
        writes: 0,
    };
    let now = SystemTime::now();
    let result = wpa_core::reconcile(
        subscription,
        &mut target,
        &valid.spec,
        ctx.config.scale_down_delay,
        last_scale_time,
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
            return report_problem(ctx, wpa, state, "TargetNotFound", &error).await;
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
        state.last_scale_time = Some(now);
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
    let outcome = save_status(ctx, wpa, state, next).await;
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

async fn wait_for_queue(subscription: Option<&mut Subscription>) {
    match subscription {
        Some(subscription) => {
            if subscription.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// First delay before retrying a reconcile whose write failed transiently
/// (then doubling, with jitter, up to the resync period), as a per-item
/// rate limiter in a client-go workqueue does.
const RETRY_INITIAL: Duration = Duration::from_millis(50);

async fn wait_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending::<()>().await,
    }
}

async fn wpa_task(
    ctx: Arc<Context>,
    mut object: watch::Receiver<Arc<WorkerPodAutoScaler>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut state = TaskState::default();
    let resync_period = ctx.config.resync_period.max(Duration::from_millis(10));
    let mut resync = tokio::time::interval(resync_period);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Backoff::new(RETRY_INITIAL.min(resync_period), resync_period);
    let mut retry_at = None;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => {}
            changed = object.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = wait_for_queue(state.subscription.as_mut()) => {}
            () = wait_until(retry_at) => {}
            _ = resync.tick() => {}
        }
        if *stop.borrow() {
            break;
        }
        let Ok(_permit) = ctx.permits.acquire().await else {
            break;
        };
        let wpa = object.borrow_and_update().clone();
        // Boxed: a reconcile's future (kube requests inside) is several
        // kilobytes, and unboxed it would sit in every idle task.
        let outcome = Box::pin(reconcile_one(&ctx, &wpa, &mut state)).await;
        // The resync counts from the last reconcile: a retry (or a queue
        // change) stands in for it, so a failing write is tried about
        // once per resync period at worst, never in a hot loop.
        resync.reset();
        retry_at = match outcome {
            Outcome::Retry => Some(tokio::time::Instant::now() + backoff.next_delay()),
            Outcome::Settled => {
                backoff.reset();
                None
            }
        };
    }
    if object.has_changed().is_err() && !*stop.borrow() {
        // Deleted (not shut down): drop its series, even if a reconcile
        // was in progress when the deletion arrived.
        let wpa = object.borrow().clone();
        ctx.metrics
            .forget(&wpa.namespace().unwrap_or_default(), &wpa.name_any());
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Keeps of a cached object only what a reconcile reads (its name, the
/// spec's replicas, the available replicas): a reflector caches every
/// Deployment and ReplicaSet of the cluster, and their pod templates and
/// `kubectl apply` annotations are most of their size.
fn strip_metadata(metadata: &mut kube::api::ObjectMeta) {
    metadata.annotations = None;
    metadata.labels = None;
    metadata.managed_fields = None;
    metadata.owner_references = None;
    metadata.finalizers = None;
}

fn strip_deployment(deployment: &mut Deployment) {
    strip_metadata(&mut deployment.metadata);
    let spec = &mut deployment.spec;
    spec.template = Default::default();
    spec.selector = Default::default();
    spec.strategy = None;
    if let Some(status) = deployment.status.as_mut() {
        status.conditions = None;
    }
}

fn strip_replica_set(replica_set: &mut ReplicaSet) {
    strip_metadata(&mut replica_set.metadata);
    let spec = &mut replica_set.spec;
    spec.template = None;
    spec.selector = Default::default();
    if let Some(status) = replica_set.status.as_mut() {
        status.conditions = None;
    }
}

fn spawn_reflector<K>(
    client: &Client,
    namespace: Option<&str>,
    strip: fn(&mut K),
) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api::<K>(client, namespace), watcher::Config::default()).modify(strip),
    )
    .default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(error) => tracing::warn!("watch {}: {error}", std::any::type_name::<K>()),
            }
        }
    });
    (reader, task)
}

/// The running task of each WPA, by (namespace, name), with the channel
/// that hands it the latest object.
type Tasks = HashMap<(String, String), (watch::Sender<Arc<WorkerPodAutoScaler>>, JoinHandle<()>)>;

/// The controller: watches WorkerPodAutoScalers, Deployments and
/// ReplicaSets, runs one task per WPA, until `shutdown` turns true.
pub struct Controller {
    ctx: Arc<Context>,
    health: Arc<Health>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller on `client`, with queue sources from `factory`.
    pub fn new(
        client: Client,
        config: ControllerConfig,
        factory: Arc<dyn SourceFactory>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let namespace = config.namespace.clone();
        let (deployments, dep_task) =
            spawn_reflector(&client, namespace.as_deref(), strip_deployment);
        let (replica_sets, rs_task) =
            spawn_reflector(&client, namespace.as_deref(), strip_replica_set);
        let events = WpaEvents::new(
            client.clone(),
            "workerpodautoscaler",
            config.instance.clone(),
        );
        let ctx = Context {
            limiter: RateLimiter::new(config.api_qps, config.api_burst),
            permits: Semaphore::new(config.wpa_threads.max(1)),
            client,
            config,
            factory,
            registry: Registry::new(),
            deployments,
            replica_sets,
            events,
            metrics,
        };
        (
            Controller {
                ctx: Arc::new(ctx),
                health,
            },
            vec![dep_task, rs_task],
        )
    }

    /// A [`DecisionSweep`] on this controller's caches and queue registry:
    /// the in-memory part of a reconcile pass, for benchmarks and dry runs.
    /// Take it before [`Controller::run`]; its Deployment and ReplicaSet
    /// caches fill as the controller's reflectors sync.
    #[must_use]
    pub fn decision_sweep(&self) -> DecisionSweep {
        DecisionSweep {
            ctx: Arc::clone(&self.ctx),
            states: HashMap::new(),
        }
    }

    /// Runs until `shutdown` is true: every WPA's task then finishes its
    /// reconcile in progress and stops.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let ctx = self.ctx;
        let wpas: Api<WorkerPodAutoScaler> = api(&ctx.client, ctx.config.namespace.as_deref());
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            ready = async {
                ctx.deployments.wait_until_ready().await?;
                ctx.replica_sets.wait_until_ready().await
            } => ready.map_err(|_| Error::CacheSync)?,
        }
        self.health.set_ready(true);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks: Tasks = HashMap::new();
        let mut listed: Option<HashSet<(String, String)>> = None;
        // Each task holds its WPA: without the `kubectl apply` annotation
        // and the managed fields (status writes are merge patches).
        let stream = watcher(wpas, watcher::Config::default())
            .modify(|wpa: &mut WorkerPodAutoScaler| {
                wpa.metadata.annotations = None;
                wpa.metadata.managed_fields = None;
            })
            .default_backoff();
        let mut stream = std::pin::pin!(stream);
        let upsert = |tasks: &mut Tasks, wpa: WorkerPodAutoScaler| {
            let key = (wpa.namespace().unwrap_or_default(), wpa.name_any());
            let wpa = Arc::new(wpa);
            match tasks.get(&key) {
                Some((sender, _)) => {
                    sender.send_replace(wpa);
                }
                None => {
                    let (sender, receiver) = watch::channel(wpa);
                    let task = tokio::spawn(wpa_task(Arc::clone(&ctx), receiver, stop_rx.clone()));
                    tasks.insert(key.clone(), (sender, task));
                }
            }
            key
        };
        loop {
            let event = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                event = stream.next() => event,
            };
            match event {
                None => break,
                Some(Err(error)) => tracing::warn!("watch WorkerPodAutoScalers: {error}"),
                Some(Ok(watcher::Event::Init)) => listed = Some(HashSet::new()),
                Some(Ok(watcher::Event::InitApply(wpa))) => {
                    let key = upsert(&mut tasks, wpa);
                    if let Some(listed) = listed.as_mut() {
                        listed.insert(key);
                    }
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    if let Some(listed) = listed.take() {
                        let gone: Vec<_> = tasks
                            .keys()
                            .filter(|k| !listed.contains(*k))
                            .cloned()
                            .collect();
                        for key in gone {
                            remove(&ctx, &mut tasks, &key);
                        }
                    }
                }
                Some(Ok(watcher::Event::Apply(wpa))) => {
                    upsert(&mut tasks, wpa);
                }
                Some(Ok(watcher::Event::Delete(wpa))) => {
                    let key = (wpa.namespace().unwrap_or_default(), wpa.name_any());
                    remove(&ctx, &mut tasks, &key);
                }
            }
        }
        stop_tx.send_replace(true);
        for (_, (sender, task)) in tasks.drain() {
            drop(sender);
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a reconcile did not finish within 10 s of shutdown");
            }
        }
        Ok(())
    }
}

fn remove(ctx: &Context, tasks: &mut Tasks, key: &(String, String)) {
    if let Some((sender, task)) = tasks.remove(key) {
        // Dropping the sender ends the task after its reconcile in progress.
        drop(sender);
        drop(task);
        ctx.metrics.forget(&key.0, &key.1);
        tracing::info!(namespace = %key.0, wpa = %key.1, "WorkerPodAutoScaler deleted");
    }
}

/// What one [`DecisionSweep::run`] decided, counted by outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepSummary {
    /// WPAs decided on (the core returned a plan).
    pub decided: usize,
    /// Of those, plans that change replicas (a reconcile would scale).
    pub scales: usize,
    /// WPAs whose queue has no snapshot yet (a reconcile waits).
    pub not_polled: usize,
    /// WPAs a reconcile would report as a problem (invalid spec,
    /// unsupported queue URI, missing target) or whose queue failed.
    pub problems: usize,
}

/// Decides for WPAs the way the controller's reconciles do, without any
/// write: see [`Controller::decision_sweep`].
pub struct DecisionSweep {
    ctx: Arc<Context>,
    states: HashMap<(String, String), TaskState>,
}

impl std::fmt::Debug for DecisionSweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionSweep")
            .field("wpas", &self.states.len())
            .finish_non_exhaustive()
    }
}

/// A target answering from the reflector cache whose apply writes nothing.
struct DryRunTarget(TargetReplicas);

impl ScaleTarget for DryRunTarget {
    type Error = std::convert::Infallible;

    async fn replicas(&mut self) -> Result<TargetReplicas, Self::Error> {
        Ok(self.0)
    }

    async fn apply(&mut self, _replicas: u32) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl DecisionSweep {
    /// Decides for every WPA of `wpas` as a reconcile does: the same code
    /// validates the spec, subscribes to its queue (once per WPA, as its
    /// task does), reads the target's replicas from this controller's
    /// reflector cache, tells the poller what a task tells it (replicas,
    /// whether the rate is used), and calls the core's `reconcile` on the
    /// queue's
    /// latest snapshot, but the scale is not applied and no status, Event
    /// or metric is written. No I/O: this is the in-memory part of a full
    /// reconcile pass. Must be called inside a tokio runtime (a first
    /// subscription to a queue starts its poller).
    pub fn run<'a>(
        &mut self,
        wpas: impl IntoIterator<Item = &'a WorkerPodAutoScaler>,
        now: SystemTime,
    ) -> SweepSummary {
        use futures::FutureExt as _;
        let mut summary = SweepSummary::default();
        for wpa in wpas {
            let namespace = wpa.namespace().unwrap_or_default();
            let state = self
                .states
                .entry((namespace.clone(), wpa.name_any()))
                .or_default();
            let Ok(inputs) = inputs(&self.ctx, wpa, &namespace, state) else {
                summary.problems += 1;
                continue;
            };
            let Some(subscription) = state.subscription.as_mut() else {
                continue;
            };
            let mut target = DryRunTarget(inputs.replicas);
            // Every await inside is ready at once: the snapshot is the
            // poller's latest publication, the target a cached count.
            let Some(result) = wpa_core::reconcile(
                subscription,
                &mut target,
                &inputs.valid.spec,
                self.ctx.config.scale_down_delay,
                inputs.last_scale_time,
                now,
            )
            .now_or_never() else {
                summary.problems += 1;
                continue;
            };
            match result {
                Ok(plan) => {
                    summary.decided += 1;
                    if plan.operation.changes_replicas() {
                        summary.scales += 1;
                    }
                }
                Err(ReconcileError::Queue(PollerError::NotPolledYet { .. })) => {
                    summary.not_polled += 1;
                }
                Err(_) => summary.problems += 1,
            }
        }
        summary
    }

    /// WPAs this sweep holds a state (and queue subscription) for.
    #[must_use]
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}
