//! The WPA driver: every resync, on every changed snapshot (as the
//! controller's `reconcile_on` does) and when the last plan is due again
//! (`Plan::due_in`, the controller's requeue), the core's real
//! [`wpa_core::reconcile`] on the adapter's latest snapshot, against the
//! simulated Deployment.
//!
//! The simulated adapter and Deployment answer at once, so their futures
//! are polled once with a no-op waker: no async runtime, and no WPA rule
//! written a second time here.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use wpa_core::{History, QueueMetrics, QueueSnapshot, ScaleTarget, TargetReplicas, WpaSpec};

use crate::error::SimError;

use super::Applied;
use super::config::SimConfig;
use super::queue::Poller;
use super::world::{World, clock, ticks};

/// The WPA controller for one WorkerPodAutoScaler, with its state.
pub(super) struct WpaDriver {
    spec: WpaSpec,
    /// `--scale-down-delay-after-last-scale-activity`.
    delay: Duration,
    /// Idle-first scale down (`busyProbe`).
    idle_first: bool,
    /// What the controller keeps between steps (`LastScaleTime`, the last
    /// observation).
    history: History,
    // Boxed: keeps the driver enum small.
    poller: Box<Poller>,
    resync_ticks: u64,
    resync_offset: u64,
    /// The snapshot of the last reconcile.
    reconciled_on: Option<QueueSnapshot>,
    /// When the last plan asked to be decided again ([`wpa_core::Plan::due_in`]),
    /// as the controller requeues it.
    due_tick: Option<u64>,
}

impl WpaDriver {
    pub(super) fn new(
        spec: &WpaSpec,
        scale_down_delay: Duration,
        idle_first: bool,
        config: &SimConfig,
        ticks_per_second: u64,
    ) -> Self {
        WpaDriver {
            spec: *spec,
            delay: scale_down_delay,
            idle_first,
            history: History::default(),
            poller: Box::new(Poller::new(config, spec, ticks_per_second)),
            resync_ticks: ticks(config.adapter.resync_s, ticks_per_second).max(1),
            resync_offset: ticks(config.adapter.resync_offset_s, ticks_per_second),
            reconciled_on: None,
            due_tick: None,
        }
    }

    /// The poller's work due this tick, then, on a resync tick, one
    /// `reconcile` on what the poller last saw.
    pub(super) fn step(
        &mut self,
        world: &mut World,
        tick: u64,
    ) -> Result<Option<Applied>, SimError> {
        self.poller.step(world);
        let Some(snapshot) = self.poller.last() else {
            return Ok(None);
        };
        // The controller reconciles at every resync, and at once when the
        // poller publishes a changed snapshot (`reconcile_on`).
        let resync = tick % self.resync_ticks == self.resync_offset % self.resync_ticks;
        let changed = self.reconciled_on != Some(snapshot);
        let due = self.due_tick.is_some_and(|due| tick >= due);
        if !(resync || changed || due) {
            return Ok(None);
        }
        self.reconciled_on = Some(snapshot);
        let now = clock(tick, world.ticks_per_second);
        // The growth spans polls, as the controller's CurrentMessagesTime.
        let polled_at = self.poller.last_polled_at().unwrap_or(now);
        let step = run_ready(wpa_core::reconcile_with_history(
            &mut CachedSnapshot(snapshot),
            &mut SimulatedDeployment {
                world,
                idle_first: self.idle_first,
            },
            &self.spec,
            self.delay,
            self.history,
            now,
        ))?
        .map_err(|error| SimError::Reconcile(error.to_string()))?;
        self.history = History::after(&step, polled_at);
        self.due_tick = step.due_in().map(|due| {
            let due_ticks = (due.as_secs_f64() * world.ticks_per_second as f64).ceil() as u64;
            tick + due_ticks.max(1)
        });
        Ok(step.operation.changes_replicas().then_some(Applied {
            to: step.decision.desired_replicas,
            rule: Some(step.decision.rule),
            snapshot: Some(snapshot),
        }))
    }
}

/// Runs the future of an always-ready simulated adapter: one poll with a
/// no-op waker, no runtime.
fn run_ready<F: Future>(future: F) -> Result<F::Output, SimError> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err(SimError::NotReady),
    }
}

/// What the WPA's queue adapter last reported, served to `reconcile`.
struct CachedSnapshot(QueueSnapshot);

impl QueueMetrics for CachedSnapshot {
    type Error = std::convert::Infallible;

    fn snapshot(&mut self) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        std::future::ready(Ok(self.0))
    }
}

/// The simulated Deployment as the WPA's scale target.
struct SimulatedDeployment<'a> {
    world: &'a mut World,
    /// Whether its pods answer a busy probe (`busyProbe`).
    idle_first: bool,
}

impl ScaleTarget for SimulatedDeployment<'_> {
    type Error = std::convert::Infallible;

    fn replicas(&mut self) -> impl Future<Output = Result<TargetReplicas, Self::Error>> + Send {
        let available = u32::try_from(self.world.ready()).unwrap_or(u32::MAX);
        std::future::ready(Ok(TargetReplicas::new(self.world.replicas(), available)))
    }

    fn apply(&mut self, replicas: u32) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.world.scale_to(replicas, self.idle_first);
        std::future::ready(Ok(()))
    }

    fn idle_first(&self) -> bool {
        self.idle_first
    }

    /// Every pod answers at once and truly: pods still starting and ready
    /// ones without a job are idle (the race between the probe and the
    /// deletion, milliseconds in a cluster, is below a tick).
    fn idle_pods(
        &mut self,
        _: TargetReplicas,
    ) -> impl Future<Output = Result<u32, Self::Error>> + Send {
        let idle = u32::try_from(self.world.pods_without_a_job()).unwrap_or(u32::MAX);
        std::future::ready(Ok(idle))
    }
}
