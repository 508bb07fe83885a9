//! `workerpodautoscaler`: the Worker Pod Autoscaler controller and its tools.
//!
//! Each subcommand lives in its own module; this file only parses the
//! command line and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod crd;
mod decide;
mod run;
mod simulate;
mod watch;

/// Scales Kubernetes worker pods on queue length (SQS, beanstalkd).
#[derive(Debug, Parser)]
#[command(name = "workerpodautoscaler", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reads decision inputs as JSON Lines on stdin, writes one decision per line.
    Decide(decide::DecideArgs),
    /// Runs the simulator: the WPA, HPA-style and KEDA-style scaling side by side on modelled workloads.
    Simulate(simulate::SimulateArgs),
    /// Dry run without Kubernetes: polls a real queue and prints each decision as a JSON line.
    Watch(watch::WatchArgs),
    /// Prints the WorkerPodAutoScaler CustomResourceDefinition as YAML (pipe it to `kubectl apply -f -`).
    Crd(crd::CrdArgs),
    /// Runs the controller: scales the targets of every WorkerPodAutoScaler on their queues.
    Run(wpa_controller::cli::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decide(args) => decide::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Crd(args) => crd::run(&args),
        Command::Run(args) => run::run(&args),
    }
}
