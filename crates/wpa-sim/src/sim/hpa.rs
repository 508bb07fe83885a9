//! The HPA-style driver: [`HpaModel`] synced on its period, on the queue
//! length as an external metric (visible + in flight, read in real time).

use crate::policy::{HpaModel, HpaSettings};

use super::Applied;
use super::world::{World, ticks};

/// An HPA on the Deployment, with its state.
pub(super) struct HpaDriver {
    model: HpaModel,
    sync_ticks: u64,
}

impl HpaDriver {
    /// An HPA that has recommended `initial` replicas until now.
    pub(super) fn new(settings: &HpaSettings, initial: u32, ticks_per_second: u64) -> Self {
        HpaDriver {
            model: HpaModel::new(*settings).with_history(0.0, initial),
            sync_ticks: ticks(settings.sync_s, ticks_per_second).max(1),
        }
    }

    /// On a sync tick, one HPA sync; `from` is the replicas now.
    pub(super) fn step(
        &mut self,
        world: &mut World,
        tick: u64,
        now_s: f64,
        from: u32,
    ) -> Option<Applied> {
        if !tick.is_multiple_of(self.sync_ticks) {
            return None;
        }
        let metric = world.visible() + world.not_visible();
        let to = self.model.sync(now_s, from, metric);
        if to == from {
            return None;
        }
        world.scale_to(to, false);
        Some(Applied {
            to,
            rule: None,
            snapshot: None,
        })
    }
}
