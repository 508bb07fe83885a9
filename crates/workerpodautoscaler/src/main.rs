//! `workerpodautoscaler`: the Worker Pod Autoscaler controller and its tools.
//!
//! Each subcommand lives in its own module; this file only parses the
//! command line and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;
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
    Run(run::RunArgs),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The logging flags of `run` and `watch` as parsed from `extra`.
    fn log_args(extra: &[&str]) -> [cli::LogArgs; 2] {
        let run = Cli::try_parse_from(["wpa", "run"].iter().chain(extra)).unwrap();
        let watch = Cli::try_parse_from(
            [
                "wpa",
                "watch",
                "--queue-uri=beanstalk://h/t",
                "--min-replicas=0",
                "--max-replicas=1",
                "--target-messages-per-worker=1",
            ]
            .iter()
            .chain(extra),
        )
        .unwrap();
        match (run.command, watch.command) {
            (Command::Run(run), Command::Watch(watch)) => [run.log, watch.log],
            _ => unreachable!(),
        }
    }

    #[test]
    fn v_and_log_format_mean_the_same_in_run_and_watch() {
        for extra in [
            &[][..],
            &["-v", "1"],
            &["-v=2"],
            &["--v", "3"],
            &["-v4"],
            &["-v", "7", "--log-format", "json"],
            &["--log-format=text"],
        ] {
            let [run, watch] = log_args(extra);
            assert_eq!(run, watch, "{extra:?}");
            assert_eq!(run.filter(), watch.filter(), "{extra:?}");
        }
        let [run, _] = log_args(&["-v", "2"]);
        assert!(run.filter().starts_with("debug,"), "{}", run.filter());
        let [run, _] = log_args(&["-v", "1"]);
        assert!(run.filter().starts_with("info,"), "{}", run.filter());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
