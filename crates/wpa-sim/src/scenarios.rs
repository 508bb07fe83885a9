//! The built-in scenario set of `workerpodautoscaler simulate`.

use wpa_core::{MaxDisruption, WpaSpec};

use crate::error::SimError;
use crate::service::ServiceTime;
use crate::sim::SimConfig;
use crate::workload::{ArrivalProcess, RateShape, Workload};

/// A named workload with the WPA spec a user would give it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name (`--scenario NAME`).
    pub name: &'static str,
    /// One line on what it shows.
    pub description: &'static str,
    /// The run's settings.
    pub config: SimConfig,
    /// The WPA spec (the baselines are derived from it).
    pub spec: WpaSpec,
}

fn spec(min: u32, max: u32, target: u32, seconds_per_job: f64) -> Result<WpaSpec, SimError> {
    Ok(WpaSpec::new(
        min,
        max,
        target,
        seconds_per_job,
        MaxDisruption::DEFAULT,
    )?)
}

/// The built-in scenarios, in table order. `seed` seeds each of them.
pub fn builtin(seed: u64) -> Result<Vec<Scenario>, SimError> {
    Ok(vec![
        Scenario {
            name: "burst",
            description: "steady 20 msg/s (Poisson, 1 s jobs), a 10x burst of 5 min at 1 h",
            config: SimConfig::new(
                Workload {
                    rate: RateShape::StepBurst {
                        base: 20.0,
                        burst: 200.0,
                        start_s: 3_600.0,
                        duration_s: 300.0,
                    },
                    process: ArrivalProcess::Poisson,
                    service: ServiceTime::Exponential { mean: 1.0 },
                },
                3.0 * 3_600.0,
                seed,
            ),
            spec: spec(0, 300, 10, 1.0)?,
        },
        Scenario {
            name: "idle-then-burst",
            description: "nothing for an hour, then 50 msg/s for 10 min (2 s jobs)",
            config: SimConfig::new(
                Workload {
                    rate: RateShape::StepBurst {
                        base: 0.0,
                        burst: 50.0,
                        start_s: 3_600.0,
                        duration_s: 600.0,
                    },
                    process: ArrivalProcess::Poisson,
                    service: ServiceTime::Fixed { seconds: 2.0 },
                },
                2.0 * 3_600.0,
                seed,
            ),
            spec: spec(0, 200, 10, 2.0)?,
        },
        Scenario {
            name: "long-jobs",
            description: "0.1 msg/s of ~4 min log-normal jobs, 1 msg/s for 20 min at 1 h",
            config: SimConfig::new(
                Workload {
                    rate: RateShape::StepBurst {
                        base: 0.1,
                        burst: 1.0,
                        start_s: 3_600.0,
                        duration_s: 1_200.0,
                    },
                    process: ArrivalProcess::Poisson,
                    service: ServiceTime::LogNormal {
                        mean: 240.0,
                        sigma: 0.8,
                    },
                },
                6.0 * 3_600.0,
                seed,
            ),
            spec: spec(0, 400, 1, 240.0)?,
        },
        Scenario {
            name: "fast-jobs",
            description: "150 msg/s of 0.03 s jobs, the reference's example spec (0..10, target 2)",
            config: SimConfig::new(
                Workload {
                    rate: RateShape::Constant { per_second: 150.0 },
                    process: ArrivalProcess::Poisson,
                    service: ServiceTime::Fixed { seconds: 0.03 },
                },
                3_600.0,
                seed,
            ),
            spec: spec(0, 10, 2, 0.03)?,
        },
        Scenario {
            name: "diurnal",
            description: "a day: 5 to 95 msg/s, peak at 14:00 (exponential 1 s jobs)",
            config: SimConfig::new(
                Workload {
                    rate: RateShape::Diurnal {
                        mean: 50.0,
                        amplitude: 0.9,
                        period_s: 86_400.0,
                        peak_s: 14.0 * 3_600.0,
                    },
                    process: ArrivalProcess::Poisson,
                    service: ServiceTime::Exponential { mean: 1.0 },
                },
                86_400.0,
                seed,
            ),
            spec: spec(0, 300, 10, 1.0)?,
        },
        Scenario {
            name: "spikes",
            description: "10 msg/s with random 2 min spikes of 100 msg/s every ~30 min",
            config: SimConfig::new(
                Workload {
                    rate: RateShape::RandomSpikes {
                        base: 10.0,
                        spike: 100.0,
                        mean_gap_s: 1_800.0,
                        duration_s: 120.0,
                    },
                    process: ArrivalProcess::Poisson,
                    service: ServiceTime::Exponential { mean: 1.0 },
                },
                6.0 * 3_600.0,
                seed,
            ),
            spec: spec(0, 300, 10, 1.0)?,
        },
    ])
}

/// Names of the built-in scenarios run when none is chosen (all but
/// `spikes`, which is available by name).
pub const DEFAULT_SET: [&str; 5] = [
    "burst",
    "idle-then-burst",
    "long-jobs",
    "fast-jobs",
    "diurnal",
];
