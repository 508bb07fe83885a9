//! A dry decision pass over many WPAs, for the 10,000-WPA benchmark: the
//! in-memory part of a reconcile (behind the `bench` feature; not a
//! stable API).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use kube::ResourceExt;
use wpa_core::{ReconcileError, ScaleTarget, TargetReplicas};
use wpa_kube::WorkerPodAutoScaler;
use wpa_poller::PollerError;

use super::Controller;
use super::reconcile::{Context, WpaKey, WpaState, inputs};

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
    states: HashMap<WpaKey, WpaState>,
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

impl Controller {
    /// A [`DecisionSweep`] on this controller's caches and queue registry.
    /// Take it before [`Controller::run`]; its Deployment and ReplicaSet
    /// caches fill as the controller's reflectors sync.
    #[must_use]
    pub fn decision_sweep(&self) -> DecisionSweep {
        DecisionSweep {
            ctx: Arc::clone(&self.ctx),
            states: HashMap::new(),
        }
    }
}

impl DecisionSweep {
    /// Decides for every WPA of `wpas` as a reconcile does: the same code
    /// validates the spec, subscribes to its queue (once per WPA), reads
    /// the target's replicas from the reflector cache, tells the poller
    /// what a reconcile tells it, and calls the core's `reconcile` on the
    /// queue's latest snapshot; nothing is applied and no status, Event or
    /// metric is written. Must be called inside a tokio runtime (a first
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
