//! The WPA driver: every resync and on every changed snapshot (as the
//! controller's `reconcile_on` does), the core's real
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
    /// What the controller keeps between steps (`LastScaleTime`, the last
    /// observation).
    history: History,
    // Boxed: keeps the driver enum small.
    poller: Box<Poller>,
    resync_ticks: u64,
    resync_offset: u64,
    /// The snapshot of the last reconcile.
    reconciled_on: Option<QueueSnapshot>,
}

impl WpaDriver {
    pub(super) fn new(
        spec: &WpaSpec,
        scale_down_delay: Duration,
        config: &SimConfig,
        ticks_per_second: u64,
    ) -> Self {
        WpaDriver {
            spec: *spec,
            delay: scale_down_delay,
            history: History::default(),
            poller: Box::new(Poller::new(config, spec, ticks_per_second)),
            resync_ticks: ticks(config.adapter.resync_s, ticks_per_second).max(1),
            resync_offset: ticks(config.adapter.resync_offset_s, ticks_per_second),
            reconciled_on: None,
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
        if !(resync || changed) {
            return Ok(None);
        }
        self.reconciled_on = Some(snapshot);
        let now = clock(tick, world.ticks_per_second);
        let step = run_ready(wpa_core::reconcile_with_history(
            &mut CachedSnapshot(snapshot),
            &mut SimulatedDeployment(world),
            &self.spec,
            self.delay,
            self.history,
            now,
        ))?
        .map_err(|error| SimError::Reconcile(error.to_string()))?;
        self.history = History::after(&step, now);
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
struct SimulatedDeployment<'a>(&'a mut World);

impl ScaleTarget for SimulatedDeployment<'_> {
    type Error = std::convert::Infallible;

    fn replicas(&mut self) -> impl Future<Output = Result<TargetReplicas, Self::Error>> + Send {
        let available = u32::try_from(self.0.ready()).unwrap_or(u32::MAX);
        std::future::ready(Ok(TargetReplicas::new(self.0.replicas(), available)))
    }

    fn apply(&mut self, replicas: u32) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.0.scale_to(replicas);
        std::future::ready(Ok(()))
    }
}
