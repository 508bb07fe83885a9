//! The controller: kube-runtime's [`Controller`](kube::runtime::Controller)
//! over WorkerPodAutoScalers. Each WPA is reconciled when it changes, when
//! its queue's snapshot changes (`reconcile_on`), at least every resync
//! period (`Action::requeue`), when a wait-target WPA's held scale down
//! becomes due (sooner than the resync), and, after a transient write error, after its own
//! backoff (`error_policy`). `--wpa-threads` is its concurrency.

mod caches;
mod reconcile;
#[cfg(feature = "bench")]
mod sweep;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wpa_core::MaxDisruption;
use wpa_kube::{WorkerPodAutoScaler, WpaEvents};
use wpa_poller::{Jitter, Registry, exponential_delay};

use self::caches::{TargetCaches, api};
use self::reconcile::{Context, Outcome};
use crate::limiter::RateLimiter;
use crate::metrics::Metrics;
use crate::{Clock, Error, SourceFactory};

#[cfg(feature = "bench")]
pub use sweep::{DecisionSweep, SweepSummary};

/// Condition type: whether the spec can be acted on.
pub const CONDITION_VALID: &str = "Valid";
/// Condition type: whether the queue was polled recently.
pub const CONDITION_FRESH: &str = "QueueMetricsFresh";

/// First delay before retrying a reconcile whose write failed transiently
/// (then doubling, with jitter, up to the resync period), as a per-item
/// rate limiter in a client-go workqueue does.
const RETRY_INITIAL: Duration = Duration::from_millis(50);

/// How long in-flight reconciles may take to finish after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    /// `--scale-down-delay-after-last-scale-activity`. A WPA with
    /// `targetWaitSeconds` waits its own `workerStartupSeconds` instead.
    pub scale_down_delay: Duration,
    /// `--k8s-api-qps` (0: unlimited).
    pub api_qps: f64,
    /// `--k8s-api-burst`.
    pub api_burst: u32,
    /// Reported as the events' controller instance (the pod name).
    pub instance: Option<String>,
    /// Where "now" comes from for statuses and `LastScaleTime`.
    pub clock: Clock,
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
            clock: Clock::system(),
        }
    }
}

impl ControllerConfig {
    fn resync(&self) -> Duration {
        self.resync_period.max(Duration::from_millis(10))
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

/// The controller: watches WorkerPodAutoScalers, Deployments and
/// ReplicaSets and reconciles every WPA, until `shutdown` turns true.
pub struct Controller {
    ctx: Arc<Context>,
    health: Arc<Health>,
    queue_changes: mpsc::UnboundedReceiver<ObjectRef<WorkerPodAutoScaler>>,
    /// Fills the WPA store the context reads.
    wpa_writer: reflector::store::Writer<WorkerPodAutoScaler>,
    /// Jitter draws for the retry backoff.
    jitter: Arc<Mutex<Jitter>>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller on `client`, with queue sources from `factory`. The
    /// returned tasks are the Deployment and ReplicaSet reflectors: abort
    /// them when done with the controller.
    pub fn new(
        client: Client,
        config: ControllerConfig,
        factory: Arc<dyn SourceFactory>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let (caches, reflectors) = TargetCaches::start(&client, config.namespace.as_deref());
        let events = WpaEvents::new(
            client.clone(),
            "workerpodautoscaler",
            config.instance.clone(),
        );
        let (sender, queue_changes) = mpsc::unbounded();
        let (wpas, wpa_writer) = reflector::store::<WorkerPodAutoScaler>();
        let ctx = Context {
            wpas,
            limiter: RateLimiter::new(config.api_qps, config.api_burst),
            clock: config.clock.clone(),
            client,
            config,
            factory,
            registry: Registry::new(),
            caches,
            events,
            metrics,
            states: Mutex::new(HashMap::new()),
            queue_changes: sender,
        };
        let controller = Controller {
            ctx: Arc::new(ctx),
            health,
            queue_changes,
            wpa_writer,
            jitter: Arc::new(Mutex::new(Jitter::new())),
        };
        (controller, reflectors)
    }

    /// Runs until `shutdown` is true; reconciles in progress then get
    /// [`SHUTDOWN_GRACE`] to finish.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let Controller {
            ctx,
            health,
            queue_changes,
            wpa_writer,
            jitter,
        } = self;
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            ready = ctx.caches.wait_until_ready() => ready?,
        }
        health.set_ready(true);

        let deletions = Arc::clone(&ctx);
        // The store keeps every WPA: without the `kubectl apply` annotation
        // and the managed fields (status writes are merge patches). A
        // deletion is acted on once the store has dropped the object, so
        // that no later trigger finds it.
        let objects = reflector::reflector(
            wpa_writer,
            watcher(
                api(&ctx.client, ctx.config.namespace.as_deref()),
                watcher::Config::default(),
            )
            .modify(|wpa: &mut WorkerPodAutoScaler| {
                wpa.metadata.annotations = None;
                wpa.metadata.managed_fields = None;
            })
            .default_backoff(),
        )
        .inspect(move |event| match event {
            Ok(watcher::Event::Delete(wpa)) => {
                deletions.forget(&wpa.namespace().unwrap_or_default(), &wpa.name_any());
            }
            // A relist drops vanished objects from the store without a
            // Delete event.
            Ok(watcher::Event::InitDone) => deletions.forget_missing(),
            _ => {}
        })
        .applied_objects();

        let concurrency = u16::try_from(ctx.config.wpa_threads.max(1)).unwrap_or(u16::MAX);
        let mut graceful = shutdown.clone();
        let results = kube::runtime::Controller::for_stream(objects, ctx.wpas.clone())
            .reconcile_on(queue_changes)
            .with_config(controller::Config::default().concurrency(concurrency))
            .graceful_shutdown_on(async move {
                let _ = graceful.wait_for(|stop| *stop).await;
            })
            .run(
                reconcile_wpa,
                move |wpa, error, ctx| error_policy(&wpa, error, &ctx, &jitter),
                Arc::clone(&ctx),
            );
        let drive = results.for_each(|result| {
            match result {
                Ok(_) => {}
                Err(controller::Error::ObjectNotFound(object)) => {
                    // Deleted (or gone in a relist) while a reconcile was due.
                    ctx.forget(
                        object.namespace.as_deref().unwrap_or_default(),
                        &object.name,
                    );
                }
                Err(controller::Error::ReconcilerFailed(error, _)) => {
                    tracing::debug!("{error}: retrying with backoff");
                }
                Err(controller::Error::QueueError(error)) => {
                    tracing::warn!("watch WorkerPodAutoScalers: {error}");
                }
                Err(controller::Error::RunnerError(error)) => {
                    tracing::warn!("controller runner: {error}");
                }
            }
            std::future::ready(())
        });
        let mut drive = std::pin::pin!(drive);
        tokio::select! {
            () = &mut drive => return Ok(()),
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, drive).await.is_err() {
            tracing::warn!(
                "reconciles did not finish within {} s of shutdown",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        Ok(())
    }
}

/// The reconciler kube-runtime runs: a settled WPA is reconciled again
/// after the resync period; a transient write failure goes to
/// [`error_policy`].
async fn reconcile_wpa(wpa: Arc<WorkerPodAutoScaler>, ctx: Arc<Context>) -> Result<Action, Error> {
    match reconcile::reconcile(&ctx, &wpa).await {
        Outcome::Settled => Ok(Action::requeue(ctx.config.resync())),
        // A held scale down is acted on when due, not up to a resync late.
        Outcome::DueIn(due) => Ok(Action::requeue(due.min(ctx.config.resync()))),
        Outcome::Retry => Err(Error::TransientWrite {
            namespace: wpa.namespace().unwrap_or_default(),
            name: wpa.name_any(),
        }),
    }
}

/// The retry of a transient failure: capped exponential backoff per WPA,
/// from [`RETRY_INITIAL`] to the resync period, with jitter.
fn error_policy(
    wpa: &WorkerPodAutoScaler,
    _error: &Error,
    ctx: &Context,
    jitter: &Mutex<Jitter>,
) -> Action {
    let key = (wpa.namespace().unwrap_or_default(), wpa.name_any());
    let failures = ctx
        .lock_states()
        .get(&key)
        .map_or(1, |state| state.failures.max(1));
    let unit = jitter
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .next_unit();
    let resync = ctx.config.resync();
    Action::requeue(exponential_delay(
        RETRY_INITIAL.min(resync),
        resync,
        failures - 1,
        unit,
    ))
}
