//! The Deployment's pods: start-up delay, one job at a time, and scale down
//! as a ReplicaSet does it, interrupting the jobs that cannot finish within
//! the grace period.
//!
//! Busy pods are not tracked one by one: they are a calendar of counts keyed
//! by the tick their job ends.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::service::ServiceSampler;

use super::config::SimConfig;
use super::world::ticks;

/// A calendar of counts per future tick: index 0 is the next tick.
#[derive(Debug, Default)]
struct Calendar {
    slots: VecDeque<u64>,
    total: u64,
}

impl Calendar {
    /// Adds `count` at `offset` ticks from now (>= 1).
    #[inline]
    fn add(&mut self, offset: u32, count: u64) {
        let index = offset.max(1) as usize - 1;
        if self.slots.len() <= index {
            self.slots.resize(index + 1, 0);
        }
        self.slots[index] += count;
        self.total += count;
    }

    /// Takes what is due this tick.
    #[inline]
    fn pop_due(&mut self) -> u64 {
        let due = self.slots.pop_front().unwrap_or(0);
        self.total -= due;
        due
    }
}

/// The Deployment's pods, by state.
pub(super) struct Pods {
    /// Not ready yet: `(ready tick, count)`, oldest first.
    starting: VecDeque<(u64, u64)>,
    starting_total: u64,
    /// Ready, without a job.
    pub(super) idle: u64,
    /// Ready, with a job, by the tick it ends.
    busy: Calendar,
    /// Removed, finishing their job within the grace period.
    draining: Calendar,
    /// Removed, killed at the end of the grace period: `(kill tick, count)`.
    doomed: VecDeque<(u64, u64)>,
    doomed_total: u64,
    startup_ticks: u64,
    grace_ticks: u64,
    sampler: ServiceSampler,
    service_rng: StdRng,
    removal_rng: StdRng,
    /// Jobs finished.
    pub(super) processed: u64,
    /// Jobs killed before they finished.
    pub(super) interrupted: u64,
}

impl Pods {
    /// `initial` ready, idle pods; each random stream has its own seed.
    pub(super) fn new(config: &SimConfig, ticks_per_second: u64, initial: u32) -> Self {
        Pods {
            starting: VecDeque::new(),
            starting_total: 0,
            idle: u64::from(initial),
            busy: Calendar::default(),
            draining: Calendar::default(),
            doomed: VecDeque::new(),
            doomed_total: 0,
            startup_ticks: ticks(config.startup_delay_s, ticks_per_second),
            grace_ticks: ticks(config.grace_period_s, ticks_per_second),
            sampler: ServiceSampler::new(&config.workload.service, ticks_per_second),
            service_rng: StdRng::seed_from_u64(config.seed ^ 0x0053_4552_5649_4345),
            removal_rng: StdRng::seed_from_u64(config.seed ^ 0x5245_4d4f_5645),
            processed: 0,
            interrupted: 0,
        }
    }

    /// Requested replicas: removed pods no longer count.
    pub(super) fn replicas(&self) -> u32 {
        u32::try_from(self.starting_total + self.idle + self.busy.total).unwrap_or(u32::MAX)
    }

    pub(super) fn ready(&self) -> u64 {
        self.idle + self.busy.total
    }

    /// Jobs held by a pod, removed or not.
    pub(super) fn holding_jobs(&self) -> u64 {
        self.busy.total + self.draining.total + self.doomed_total
    }

    /// Requested pods without a job: starting, or ready and idle.
    pub(super) fn without_a_job(&self) -> u64 {
        self.starting_total + self.idle
    }

    /// Ready pods with a job (not removed).
    pub(super) fn busy(&self) -> u64 {
        self.busy.total
    }

    /// Pods working on a job that will finish (busy or draining).
    pub(super) fn working(&self) -> u64 {
        self.busy.total + self.draining.total
    }

    /// Pods paid for: starting, ready and terminating.
    pub(super) fn count(&self) -> u64 {
        self.starting_total + self.idle + self.busy.total + self.draining.total + self.doomed_total
    }

    /// Pods becoming ready, jobs ending, and the kills due at `tick`:
    /// `interrupted(count)` gets each batch of killed jobs, in order.
    #[inline]
    pub(super) fn advance(&mut self, tick: u64, mut interrupted: impl FnMut(u64)) {
        while let Some(&(ready_tick, count)) = self.starting.front() {
            if ready_tick > tick {
                break;
            }
            self.starting.pop_front();
            self.starting_total -= count;
            self.idle += count;
        }
        let finished = self.busy.pop_due();
        self.idle += finished;
        self.processed += finished + self.draining.pop_due();
        while let Some(&(kill_tick, count)) = self.doomed.front() {
            if kill_tick > tick {
                break;
            }
            self.doomed.pop_front();
            self.doomed_total -= count;
            self.interrupted += count;
            interrupted(count);
        }
    }

    /// `taken` idle pods start a job each, its end drawn from the service
    /// time distribution.
    #[inline]
    pub(super) fn start_jobs(&mut self, taken: u64) {
        self.idle -= taken;
        let busy = &mut self.busy;
        self.sampler
            .schedule(taken, &mut self.service_rng, |offset, n| {
                busy.add(offset, n)
            });
    }

    /// Removes up to `count` not-yet-ready pods, newest first; returns how
    /// many.
    fn remove_starting(&mut self, count: u64) -> u64 {
        let mut removed = 0;
        while removed < count {
            let Some(newest) = self.starting.back_mut() else {
                break;
            };
            let n = newest.1.min(count - removed);
            newest.1 -= n;
            if newest.1 == 0 {
                self.starting.pop_back();
            }
            self.starting_total -= n;
            removed += n;
        }
        removed
    }

    /// Sets the requested replicas as a Deployment would: new pods start
    /// (ready after the start-up delay); removed pods are the not-yet-ready
    /// newest first, then ready ones picked without regard to whether they
    /// are busy (the ReplicaSet controller cannot know), unless
    /// `idle_first`: then idle ones go before any busy one, as the
    /// controller's `pod-deletion-cost` annotations make the ReplicaSet do.
    pub(super) fn scale_to(&mut self, tick: u64, replicas: u32, idle_first: bool) {
        let current = self.replicas();
        let replicas = u64::from(replicas);
        let current64 = u64::from(current);
        if replicas > current64 {
            let added = replicas - current64;
            self.starting
                .push_back((tick + self.startup_ticks.max(1), added));
            self.starting_total += added;
            return;
        }
        let mut to_remove = current64 - replicas;
        to_remove -= self.remove_starting(to_remove);
        if idle_first {
            let idle_removed = to_remove.min(self.idle);
            self.idle -= idle_removed;
            to_remove -= idle_removed;
        }
        if to_remove == 0 {
            return;
        }
        // Selection sampling (Knuth's algorithm S) over the ready pods,
        // busy ones (by job end) then idle ones: each is equally likely to go.
        let mut population = self.ready();
        let grace = self.grace_ticks;
        let kill_tick = tick + grace;
        for index in 0..self.busy.slots.len() {
            if to_remove == 0 {
                break;
            }
            let in_slot = self.busy.slots[index];
            let chosen = choose(
                &mut self.removal_rng,
                in_slot,
                &mut population,
                &mut to_remove,
            );
            if chosen == 0 {
                continue;
            }
            self.busy.slots[index] -= chosen;
            self.busy.total -= chosen;
            let ticks_left = index as u64 + 1;
            if ticks_left <= grace {
                // Finishes its job within the grace period, then exits.
                self.draining.add(ticks_left as u32, chosen);
            } else {
                self.doomed.push_back((kill_tick, chosen));
                self.doomed_total += chosen;
            }
        }
        let idle_removed = to_remove.min(self.idle);
        self.idle -= idle_removed;
    }
}

/// How many of the next `in_slot` items selection sampling picks when
/// `needed` of `population` remain to be picked.
fn choose(rng: &mut StdRng, in_slot: u64, population: &mut u64, needed: &mut u64) -> u64 {
    let mut chosen = 0;
    for _ in 0..in_slot {
        if *needed == 0 {
            break;
        }
        if *needed >= *population || rng.random_range(0..*population) < *needed {
            chosen += 1;
            *needed -= 1;
        }
        *population -= 1;
    }
    chosen
}
