//! The time-stepped simulation: a queue, a Deployment of workers, the
//! adapters' view of the queue, and one autoscaling policy.
//!
//! Nothing is simulated per message. Messages are FIFO buckets of
//! `(arrival tick, count)`, busy workers a calendar of counts keyed by the
//! tick their job ends, waits a histogram; a tick costs O(1) amortised
//! whatever the message rate (see the README for the approximations).
//!
//! Read in this order: [`simulate`] below (one tick, step by step), then
//! `world` (clock, messages), `pods` (workers, scale down), `queue` (what
//! the WPA's adapter reports), the drivers `wpa`, `hpa` and `keda`, and
//! `outcome` (the measures). `config` holds the public settings.

mod config;
mod hpa;
mod ideal;
mod keda;
mod outcome;
mod pods;
mod queue;
mod world;
mod wpa;

use wpa_core::{QueueSnapshot, Rule};

use crate::error::SimError;
use crate::workload::ArrivalGenerator;

pub use config::{AdapterTiming, Backend, Policy, SimConfig};
pub use outcome::{Outcome, Sample, ScaleEvent};

use hpa::HpaDriver;
use ideal::IdealDriver;
use keda::KedaDriver;
use outcome::Recorder;
use world::{World, ticks};
use wpa::WpaDriver;

/// Runs `policy` on `config`. `progress`, if given, is called with the
/// fraction done (0 to 1) about every 5% of the run.
pub fn simulate(
    config: &SimConfig,
    policy: &Policy,
    mut progress: Option<&mut dyn FnMut(f64)>,
) -> Result<Outcome, SimError> {
    config.validate()?;
    let tps = config.workload.service.ticks_per_second();
    let seconds_per_tick = 1.0 / tps as f64;
    let horizon_ticks = ticks(config.horizon_s, tps).max(1);

    let initial = initial_replicas(config, policy);
    let mut world = World::new(config, tps, initial);
    let mut arrivals = ArrivalGenerator::new(&config.workload, config.seed, tps, config.horizon_s);
    let mut driver = Driver::new(policy, config, tps, initial);
    let mut recorder = Recorder::new(config, tps, horizon_ticks, world.replicas());
    let progress_every = (horizon_ticks / 20).max(1);

    for tick in 0..horizon_ticks {
        // Within a tick, messages arrive before idle workers look for jobs,
        // and the policy sees what no worker could take.
        world.tick = tick;
        world.advance(arrivals.arrivals(tick));
        world.dispatch();

        let from = world.replicas();
        let now_s = tick as f64 * seconds_per_tick;
        if let Some(applied) = driver.step(&mut world, tick, now_s, from)? {
            recorder.scaled(now_s, from, applied);
        }
        recorder.tick(tick, now_s, &mut world);

        if let Some(report) = progress.as_mut()
            && tick % progress_every == 0
        {
            report(tick as f64 / horizon_ticks as f64);
        }
    }
    if let Some(report) = progress.as_mut() {
        report(1.0);
    }
    Ok(recorder.finish(policy, &mut world, horizon_ticks))
}

/// Ready pods at the start: the configured count, or enough for the rate at
/// time 0, within the policy's bounds (an HPA never runs at 0).
fn initial_replicas(config: &SimConfig, policy: &Policy) -> u32 {
    let workload = &config.workload;
    let (low, high) = policy.bounds();
    let initial = config.initial_replicas.unwrap_or_else(|| {
        let needed = (workload.base_rate_at(0.0) * workload.service.mean()).ceil();
        needed.min(f64::from(u32::MAX)) as u32
    });
    let initial = if low >= high {
        high
    } else {
        initial.clamp(low, high)
    };
    match policy {
        Policy::Hpa(_) => initial.max(1),
        _ => initial,
    }
}

/// A replica change a driver applied this tick.
struct Applied {
    to: u32,
    /// For the WPA: the rule of the core's decision, and its snapshot.
    rule: Option<Rule>,
    snapshot: Option<QueueSnapshot>,
}

/// The policy being run, with its state.
enum Driver {
    Wpa(WpaDriver),
    Hpa(HpaDriver),
    Keda(KedaDriver),
    Ideal(IdealDriver),
}

impl Driver {
    fn new(policy: &Policy, config: &SimConfig, tps: u64, initial: u32) -> Self {
        match policy {
            Policy::Wpa {
                spec,
                scale_down_delay,
                idle_first,
            } => Driver::Wpa(WpaDriver::new(
                spec,
                *scale_down_delay,
                *idle_first,
                config,
                tps,
            )),
            // The baselines start as if they had run at the initial count for
            // a while (a stabilization window that remembers it), like the WPA
            // starts with a warm CloudWatch history.
            Policy::Hpa(settings) => Driver::Hpa(HpaDriver::new(settings, initial, tps)),
            Policy::Keda(settings) => Driver::Keda(KedaDriver::new(settings, initial, tps)),
            Policy::Ideal { max_replicas } => Driver::Ideal(IdealDriver::new(*max_replicas)),
        }
    }

    /// The policy's work due at `tick`; `from` is the replicas before it.
    fn step(
        &mut self,
        world: &mut World,
        tick: u64,
        now_s: f64,
        from: u32,
    ) -> Result<Option<Applied>, SimError> {
        Ok(match self {
            Driver::Wpa(wpa) => wpa.step(world, tick)?,
            Driver::Hpa(hpa) => hpa.step(world, tick, now_s, from),
            Driver::Keda(keda) => keda.step(world, tick, now_s, from),
            Driver::Ideal(ideal) => ideal.step(world, from),
        })
    }
}
