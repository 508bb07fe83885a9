//! `workerpodautoscaler`: the Worker Pod Autoscaler controller and its tools.
//!
//! Each subcommand lives in its own module; this file only parses the
//! command line and dispatches. `run`, `watch` and `crd` need the
//! `controller` feature (the Kubernetes and AWS clients); without it they
//! are still recognised, and say how to get a build that has them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;
#[cfg(feature = "controller")]
mod crd;
mod decide;
#[cfg(feature = "controller")]
mod queues;
#[cfg(feature = "controller")]
mod run;
mod simulate;
#[cfg(feature = "controller")]
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
    #[command(flatten)]
    Controller(Box<ControllerCommand>),
}

/// The subcommands of the `controller` feature.
#[cfg(feature = "controller")]
#[derive(Debug, Subcommand)]
enum ControllerCommand {
    /// Dry run without Kubernetes: polls a real queue and prints each decision as a JSON line.
    Watch(watch::WatchArgs),
    /// Prints the WorkerPodAutoScaler CustomResourceDefinition as YAML (pipe it to `kubectl apply -f -`).
    Crd(crd::CrdArgs),
    /// Runs the controller: scales the targets of every WorkerPodAutoScaler on their queues.
    Run(run::RunArgs),
}

/// The subcommands of the `controller` feature, in a build without it:
/// any arguments are accepted, and the answer is how to get them.
#[cfg(not(feature = "controller"))]
#[derive(Debug, Subcommand)]
enum ControllerCommand {
    /// Dry run on a real queue (not in this build: needs the `controller` feature).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Watch(absent::Absent),
    /// Prints the WorkerPodAutoScaler CRD (not in this build: needs the `controller` feature).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Crd(absent::Absent),
    /// Runs the controller (not in this build: needs the `controller` feature).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Run(absent::Absent),
}

/// What `run`, `watch` and `crd` do in a build without the `controller` feature.
#[cfg(not(feature = "controller"))]
mod absent {
    use std::ffi::OsString;
    use std::process::ExitCode;

    /// Whatever follows the subcommand; ignored.
    #[derive(Debug, clap::Args)]
    pub(crate) struct Absent {
        #[arg(
            value_name = "ARGS",
            num_args = 0..,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            hide = true
        )]
        _args: Vec<OsString>,
    }

    /// The one line that says how to get `subcommand`.
    pub(crate) fn message(subcommand: &str) -> String {
        format!(
            "workerpodautoscaler {subcommand}: not in this build, which has only `simulate` and `decide`; \
             `{subcommand}` needs the `controller` feature: \
             `cargo run --release -p workerpodautoscaler --features controller -- {subcommand}`, \
             or the container image (`docker build -t workerpodautoscaler .`), which has it"
        )
    }

    /// Prints [`message`] on stderr; exit status 2, a usage error.
    pub(crate) fn run(subcommand: &str) -> ExitCode {
        eprintln!("{}", message(subcommand));
        ExitCode::from(2)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decide(args) => decide::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Controller(command) => controller(*command),
    }
}

#[cfg(feature = "controller")]
fn controller(command: ControllerCommand) -> ExitCode {
    match command {
        ControllerCommand::Watch(args) => watch::run(&args),
        ControllerCommand::Crd(args) => crd::run(&args),
        ControllerCommand::Run(args) => run::run(&args),
    }
}

#[cfg(not(feature = "controller"))]
fn controller(command: ControllerCommand) -> ExitCode {
    absent::run(match command {
        ControllerCommand::Watch(_) => "watch",
        ControllerCommand::Crd(_) => "crd",
        ControllerCommand::Run(_) => "run",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `run`, `watch` or `crd` that `cli` parsed to.
    fn controller(cli: Cli) -> ControllerCommand {
        match cli.command {
            Command::Controller(command) => *command,
            other => panic!("not a controller subcommand: {other:?}"),
        }
    }

    /// The logging flags of `run` and `watch` as parsed from `extra`.
    #[cfg(feature = "controller")]
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
        match (controller(run), controller(watch)) {
            (ControllerCommand::Run(run), ControllerCommand::Watch(watch)) => [run.log, watch.log],
            _ => unreachable!(),
        }
    }

    #[test]
    #[cfg(feature = "controller")]
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

    #[test]
    #[cfg(not(feature = "controller"))]
    fn without_the_controller_feature_run_watch_and_crd_say_how_to_get_them() {
        for (line, name) in [
            (&["wpa", "run"][..], "run"),
            (&["wpa", "run", "--leader-elect=false", "-v", "2"], "run"),
            (&["wpa", "run", "--help"], "run"),
            (&["wpa", "watch", "--queue-uri=beanstalk://h/t"], "watch"),
            (&["wpa", "crd"], "crd"),
        ] {
            let cli = Cli::try_parse_from(line).unwrap();
            let parsed = match controller(cli) {
                ControllerCommand::Run(_) => "run",
                ControllerCommand::Watch(_) => "watch",
                ControllerCommand::Crd(_) => "crd",
            };
            assert_eq!(parsed, name, "{line:?}");
            let message = absent::message(name);
            assert!(!message.contains('\n'), "{message}");
            assert!(message.contains("`controller` feature"), "{message}");
            assert!(
                message.contains(&format!(
                    "cargo run --release -p workerpodautoscaler --features controller -- {name}"
                )),
                "{message}"
            );
            assert!(message.contains("docker build"), "{message}");
        }
    }
}
