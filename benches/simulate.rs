//! The simulator's speed figure: 24 simulated hours of 1,000 messages/s
//! (Poisson) with 1 s jobs, each policy, in wall time.
//!
//! `cargo bench -p wpa-benches --bench simulate`
#![allow(missing_docs)]

use std::process::ExitCode;
use std::time::Instant;

use wpa_core::{MaxDisruption, WpaSpec};
use wpa_sim::{ArrivalProcess, Policy, RateShape, ServiceTime, SimConfig, Workload, simulate};

fn main() -> ExitCode {
    // Fixed 1 s jobs run on 1 s ticks; exponential ones on 0.1 s ticks
    // (ten times the ticks, and the service-time strata on top).
    for (name, service) in [
        ("fixed-1s", ServiceTime::Fixed { seconds: 1.0 }),
        ("exp-1s", ServiceTime::Exponential { mean: 1.0 }),
    ] {
        if let Err(error) = run(name, service) {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn run(name: &str, service: ServiceTime) -> Result<(), Box<dyn std::error::Error>> {
    let workload = Workload {
        rate: RateShape::Constant {
            per_second: 1_000.0,
        },
        process: ArrivalProcess::Poisson,
        service,
    };
    let config = SimConfig::new(workload, 86_400.0, 1);
    let spec = WpaSpec::new(0, 2_000, 10, 1.0, MaxDisruption::DEFAULT)?;
    for policy in Policy::comparison(&spec) {
        let started = Instant::now();
        let outcome = simulate(&config, &policy, None)?;
        let wall = started.elapsed();
        println!(
            "simulate/24h-1000msg-s/{name:<8}/{:<4}  {:>7.3} s wall  {:>10} messages  {:>7.0} M msg/s simulated  (p99 wait {:.1} s)",
            outcome.policy,
            wall.as_secs_f64(),
            outcome.messages_arrived,
            outcome.messages_arrived as f64 / wall.as_secs_f64() / 1e6,
            outcome.wait_p99_s,
        );
    }
    Ok(())
}
