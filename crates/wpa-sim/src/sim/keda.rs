//! The KEDA-style driver: [`KedaModel`]'s activation check on its polling
//! interval, and the HPA it manages on the HPA's sync period, both on the
//! queue length (visible + in flight, read in real time).

use crate::policy::{KedaModel, KedaSettings};

use super::Applied;
use super::world::{World, ticks};

/// A KEDA `ScaledObject` on the Deployment, with its state.
pub(super) struct KedaDriver {
    model: KedaModel,
    poll_ticks: u64,
    sync_ticks: u64,
}

impl KedaDriver {
    /// A ScaledObject last active at t = 0, at `initial` replicas.
    pub(super) fn new(settings: &KedaSettings, initial: u32, ticks_per_second: u64) -> Self {
        KedaDriver {
            model: KedaModel::new(*settings, 0.0, initial),
            poll_ticks: ticks(settings.polling_s, ticks_per_second).max(1),
            sync_ticks: ticks(settings.hpa.sync_s, ticks_per_second).max(1),
        }
    }

    /// KEDA's poll, then the HPA's sync, each on its own tick; both may
    /// act in the same tick, reported as one change from `from`.
    pub(super) fn step(
        &mut self,
        world: &mut World,
        tick: u64,
        now_s: f64,
        from: u32,
    ) -> Option<Applied> {
        // Read once: a scale this tick moves no message.
        let metric = world.visible() + world.not_visible();
        let mut current = from;
        if tick.is_multiple_of(self.poll_ticks) {
            let to = self.model.poll(now_s, current, metric);
            if to != current {
                world.scale_to(to, false);
                current = to;
            }
        }
        if tick.is_multiple_of(self.sync_ticks) {
            let to = self.model.hpa_sync(now_s, current, metric);
            if to != current {
                world.scale_to(to, false);
                current = to;
            }
        }
        (current != from).then_some(Applied {
            to: current,
            rule: None,
            snapshot: None,
        })
    }
}
