//! The limit row's wait: an ideal reactive scaler. Every tick it sees
//! exactly what waits and starts one pod per waiting message not already
//! covered by a pod starting or working (up to `maxReplicas`), and it never
//! removes a pod, so no later message waits for one it let go. What it
//! cannot beat is the start-up delay: its p99 is the best a reactive
//! autoscaler with the same pods can do. (Its cost is not a bound: the
//! limit row's worker-hours are the work itself.)

use super::Applied;
use super::world::World;

/// The ideal scaler (no state: it sees everything every tick).
pub(super) struct IdealDriver {
    max_replicas: u32,
}

impl IdealDriver {
    pub(super) fn new(max_replicas: u32) -> Self {
        IdealDriver { max_replicas }
    }

    /// One look at the world: up for what waits, down by the free pods.
    pub(super) fn step(&mut self, world: &mut World, from: u32) -> Option<Applied> {
        let wanted = world.pods.busy().saturating_add(world.visible());
        let wanted = u32::try_from(wanted)
            .unwrap_or(u32::MAX)
            .min(self.max_replicas);
        if wanted <= from {
            return None;
        }
        world.scale_to(wanted);
        Some(Applied {
            to: wanted,
            rule: None,
            snapshot: None,
        })
    }
}
