//! The limit row's wait: an ideal reactive scaler. Every tick it sees
//! exactly what runs, what waits and what just arrived, and starts a pod
//! (up to `maxReplicas`) for each job running or waiting and for each
//! message the current rate brings within the start-up delay; it never
//! removes one, so no later message waits for a pod it let go. What it
//! cannot beat is the start-up delay: its p99 is the best a reactive
//! autoscaler with the same bounds and start-up can do. (Its cost is not a
//! bound: the limit row's worker-hours are the work itself.)

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
        // A pod for each job running or waiting.
        let wanted = world.pods.busy().saturating_add(world.visible());
        let wanted = u32::try_from(wanted)
            .unwrap_or(u32::MAX)
            .min(self.max_replicas);
        if wanted <= from {
            return None;
        }
        world.scale_to(wanted, false);
        Some(Applied {
            to: wanted,
            rule: None,
            snapshot: None,
        })
    }
}
