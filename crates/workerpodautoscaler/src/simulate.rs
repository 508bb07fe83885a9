//! `simulate`: the WPA, an HPA-style and a KEDA-style autoscaler side by
//! side on simulated workloads, with no queue and no cluster.
//!
//! Without arguments it runs the built-in scenario set and prints one
//! comparison table. Bad input gets a one-line error and exit status 2.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod recommend;

use crate::cli::values::{delay, positive_delay};
use crate::cli::{DefaultsArgs, PollArgs, SpecArgs};
use serde::Deserialize;
use serde_json::json;
use wpa_core::{MaxDisruption, RawWpaSpec, WpaSpec};
use wpa_sim::{
    ArrivalProcess, Backend, Outcome, Policy, RateShape, Scenario, ServiceTime, SimConfig, Trace,
    Workload,
};

/// The wait target of the `WAIT` row when neither the WPA object nor
/// `--target-wait-seconds` sets one.
pub(crate) const DEFAULT_TARGET_WAIT_S: f64 = 20.0;

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Scenarios: burst, idle-then-burst, long-jobs, fast-jobs, diurnal (the default set),
spikes, constant and poisson (at --rate msg/s), or --trace FILE.csv (timestamp,count rows).
Policies compared: WPA (this project's core), HPA-style (external AverageValue metric,
Kubernetes defaults), KEDA-style (HPA plus activation from zero and cooldown to zero).
Durations are seconds (3600, 0.5) or take units (90m, 24h, 1d 12h).")]
pub(crate) struct SimulateArgs {
    // Boxed: the options are many, and the command enum stays small.
    #[command(flatten)]
    options: Box<SimulateOptions>,
}

/// The options of `simulate`. The spec and the controller's defaults are
/// the flags `watch` and `run` take ([`crate::cli`]).
#[derive(Debug, clap::Args)]
#[command(mut_arg("scale_down_delay_after_last_scale_activity", |arg| arg.visible_alias("scale-down-delay")))]
pub(crate) struct SimulateOptions {
    /// Built-in scenario to run (default: the standard set).
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
    /// Replay arrivals from a CSV of `timestamp,count` rows (seconds).
    #[arg(long, value_name = "FILE.csv", conflicts_with = "scenario")]
    trace: Option<PathBuf>,
    /// How arrivals scatter around the rate: `poisson` (a trace's default)
    /// or `fluid` (exactly the rate). Overrides the scenario's.
    #[arg(long, value_name = "poisson|fluid")]
    arrivals: Option<String>,
    /// Arrival rate in messages/s for `constant` and `poisson`.
    #[arg(long, value_name = "MSG_PER_S")]
    rate: Option<f64>,
    /// Service time: `fixed:S`, `exp:MEAN` or `lognormal:MEAN,SIGMA`.
    #[arg(long, value_name = "DIST")]
    service: Option<String>,
    /// A WorkerPodAutoScaler object (YAML) whose spec to simulate.
    #[arg(long, value_name = "FILE.yaml")]
    wpa: Option<PathBuf>,
    #[command(flatten)]
    spec: SpecArgs,
    /// Queue service whose adapter the WPA reads through: sqs, beanstalkd,
    /// redis (a list), rabbitmq or nats.
    #[arg(long, value_name = "sqs|beanstalkd|redis|rabbitmq|nats")]
    backend: Option<String>,
    /// The poll intervals, as `run` and `watch` take them; the simulated
    /// adapter uses its backend's pair.
    #[command(flatten)]
    poll: PollArgs,
    /// Seed of every random draw (same seed, same result).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated time, e.g. 3600, 90m, 24h.
    #[arg(long, value_name = "DURATION", value_parser = positive_delay, allow_negative_numbers = true)]
    horizon: Option<Duration>,
    /// Seconds until a new worker takes jobs.
    #[arg(long, value_name = "S", value_parser = delay, allow_negative_numbers = true)]
    startup_delay: Option<Duration>,
    /// terminationGracePeriodSeconds of the workers.
    #[arg(long, value_name = "S", value_parser = delay, allow_negative_numbers = true)]
    grace_period: Option<Duration>,
    /// SQS visibility timeout: delay before an interrupted job is visible again.
    #[arg(long, value_name = "S", value_parser = delay, allow_negative_numbers = true)]
    visibility_timeout: Option<Duration>,
    /// The WPA controller's defaults (`--scale-down-delay` is an alias of
    /// `--scale-down-delay-after-last-scale-activity`).
    #[command(flatten)]
    defaults: DefaultsArgs,
    /// For each scenario, the cheapest setting of each policy (WPA, HPA,
    /// KEDA, wait target) whose p99 wait stays within --target-wait-seconds
    /// (default 20), printed as objects ready to apply.
    #[arg(long, conflicts_with_all = ["plot"])]
    recommend: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write backlog, replicas and wait over time as an SVG (one panel per policy).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// Why `simulate` could not run: always the user's input.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SimulateError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Sim(#[from] wpa_sim::SimError),
    #[error(transparent)]
    Spec(#[from] wpa_core::Error),
    #[error("{path}: {message}")]
    WpaFile { path: String, message: String },
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

pub(crate) fn run(args: &SimulateArgs) -> ExitCode {
    match run_checked(&args.options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(SimulateError::Output(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn run_checked(args: &SimulateOptions) -> Result<(), SimulateError> {
    let scenarios = scenarios(args)?;
    if args.recommend {
        return recommend::run(args, &scenarios);
    }
    let series_points = if args.plot.is_some() { 1_500 } else { 0 };
    let mut results: Vec<(Scenario, Vec<Outcome>)> = Vec::new();
    let started = Instant::now();
    let mut progress = Progress::new(started);
    for mut scenario in scenarios {
        scenario.config.series_points = series_points;
        let mut outcomes = Vec::new();
        let startup = args
            .spec
            .worker_startup_seconds
            .unwrap_or(scenario.config.startup_delay_s);
        let policies =
            Policy::comparison_with_wait_target(&scenario.spec, DEFAULT_TARGET_WAIT_S, startup)?;
        for policy in policies {
            let policy = match policy {
                Policy::Wpa {
                    spec, idle_first, ..
                } => Policy::Wpa {
                    spec,
                    scale_down_delay: args.defaults.scale_down_delay_after_last_scale_activity,
                    idle_first,
                },
                other => other,
            };
            let label = format!("{} / {}", scenario.name, policy.name());
            let mut report = |fraction: f64| progress.report(&label, fraction);
            outcomes.push(wpa_sim::simulate(
                &scenario.config,
                &policy,
                Some(&mut report),
            )?);
        }
        results.push((scenario, outcomes));
    }
    progress.finish();

    if let Some(path) = &args.plot {
        let rows: Vec<(String, Vec<Outcome>)> = results
            .iter()
            .map(|(scenario, outcomes)| (scenario.name.to_owned(), outcomes.clone()))
            .collect();
        wpa_sim::plot_svg(path, &rows)?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &json_report(&results, args.seed))
            .map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &results)?;
        if let Some(path) = &args.plot {
            writeln!(out, "plot written to {}", path.display())?;
        }
    }
    Ok(())
}

/// The scenarios to run, with the user's spec, backend and times applied.
fn scenarios(args: &SimulateOptions) -> Result<Vec<Scenario>, SimulateError> {
    let builtin = wpa_sim::builtin(args.seed)?;
    let horizon = args.horizon.map(|horizon| horizon.as_secs_f64());
    let service = args
        .service
        .as_deref()
        .map(ServiceTime::parse)
        .transpose()?;
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate >= 0.0)
    {
        return Err(SimulateError::Usage(format!(
            "--rate must be a number >= 0, got {rate}"
        )));
    }

    let mut chosen: Vec<Scenario> = if let Some(path) = &args.trace {
        let trace = Trace::from_file(path)?;
        let horizon = horizon.unwrap_or(trace.duration_s.ceil().max(1.0));
        let workload = Workload {
            rate: RateShape::Trace(trace),
            process: ArrivalProcess::Poisson,
            service: service.unwrap_or(ServiceTime::Fixed { seconds: 1.0 }),
        };
        vec![custom(
            "trace",
            "arrivals replayed from a trace",
            workload,
            horizon,
            args.seed,
        )?]
    } else {
        match args.scenario.as_deref() {
            None => builtin
                .into_iter()
                .filter(|s| wpa_sim::DEFAULT_SET.contains(&s.name))
                .collect(),
            Some(name @ ("constant" | "poisson")) => {
                let process = if name == "constant" {
                    ArrivalProcess::Fluid
                } else {
                    ArrivalProcess::Poisson
                };
                let workload = Workload {
                    rate: RateShape::Constant {
                        per_second: args.rate.unwrap_or(100.0),
                    },
                    process,
                    service: service.unwrap_or(ServiceTime::Fixed { seconds: 1.0 }),
                };
                let (name, description) = if name == "constant" {
                    ("constant", "a constant rate")
                } else {
                    ("poisson", "Poisson arrivals at a constant rate")
                };
                vec![custom(
                    name,
                    description,
                    workload,
                    horizon.unwrap_or(3_600.0),
                    args.seed,
                )?]
            }
            Some(name) => {
                let names: Vec<&str> = builtin.iter().map(|s| s.name).collect();
                let found = builtin.iter().find(|s| s.name == name).cloned();
                vec![found.ok_or_else(|| {
                    SimulateError::Usage(format!(
                        "unknown scenario {name:?} (one of {}, constant, poisson)",
                        names.join(", ")
                    ))
                })?]
            }
        }
    };

    let arrivals = match args.arrivals.as_deref() {
        None => None,
        Some("poisson") => Some(ArrivalProcess::Poisson),
        Some("fluid") => Some(ArrivalProcess::Fluid),
        Some(other) => {
            return Err(SimulateError::Usage(format!(
                "--arrivals must be poisson or fluid, got {other:?}"
            )));
        }
    };
    let from_file = args.wpa.as_deref().map(read_wpa_file).transpose()?;
    for scenario in &mut chosen {
        if let Some(process) = arrivals {
            scenario.config.workload.process = process;
        }
        if let Some(service) = service {
            scenario.config.workload.service = service;
        }
        if let (Some(rate), RateShape::Constant { per_second }) =
            (args.rate, &mut scenario.config.workload.rate)
        {
            *per_second = rate;
        }
        if let Some(horizon) = horizon {
            scenario.config.horizon_s = horizon;
        }
        let config = &mut scenario.config;
        for (value, field) in [
            (args.startup_delay, &mut config.startup_delay_s),
            (args.grace_period, &mut config.grace_period_s),
            (args.visibility_timeout, &mut config.visibility_timeout_s),
        ] {
            if let Some(value) = value {
                *field = value.as_secs_f64();
            }
        }
        if let Some((_, Some(backend))) = &from_file {
            config.backend = *backend;
        }
        if let Some(backend) = &args.backend {
            config.backend = match backend.as_str() {
                "beanstalk" => Backend::Beanstalkd,
                name => Backend::ALL
                    .iter()
                    .find(|(_, n)| *n == name)
                    .map(|(backend, _)| *backend)
                    .ok_or_else(|| {
                        SimulateError::Usage(format!(
                            "--backend must be sqs, beanstalkd, redis, rabbitmq or nats, got {name:?}"
                        ))
                    })?,
            };
        }
        let (short_poll, long_poll) = args.poll.for_backend(config.backend);
        config.adapter.short_poll_s = short_poll.as_secs_f64();
        config.adapter.long_poll_s = long_poll.as_secs_f64();
        let base = match &from_file {
            Some((raw, _)) => raw.clone(),
            None => scenario.spec.to_raw(),
        };
        scenario.spec = args
            .spec
            .over(base)
            .validate(args.defaults.wpa_default_max_disruption)?;
        scenario.config.validate()?;
    }
    Ok(chosen)
}

fn custom(
    name: &'static str,
    description: &'static str,
    workload: Workload,
    horizon_s: f64,
    seed: u64,
) -> Result<Scenario, SimulateError> {
    let seconds_per_job = workload.service.mean();
    Ok(Scenario {
        name,
        description,
        config: SimConfig::new(workload, horizon_s, seed),
        spec: WpaSpec::new(0, 100, 10, seconds_per_job, MaxDisruption::DEFAULT)?,
    })
}

/// A `WorkerPodAutoScaler` object as `kubectl apply` would take it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WpaObject {
    api_version: String,
    kind: String,
    spec: WpaObjectSpec,
}

#[derive(Debug, Deserialize)]
struct WpaObjectSpec {
    #[serde(rename = "queueURI")]
    queue_uri: Option<String>,
    #[serde(flatten)]
    raw: RawWpaSpec,
}

/// Reads a WorkerPodAutoScaler YAML: its spec, and the backend its
/// `queueURI` names (`beanstalk://` is beanstalkd, anything else SQS).
fn read_wpa_file(path: &Path) -> Result<(RawWpaSpec, Option<Backend>), SimulateError> {
    let file_error = |message: String| SimulateError::WpaFile {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let object: WpaObject = serde_norway::from_str(&text)
        .map_err(|e| file_error(format!("not a WorkerPodAutoScaler: {e}")))?;
    if object.kind != "WorkerPodAutoScaler" || !object.api_version.starts_with("k8s.practo.dev/") {
        return Err(file_error(format!(
            "expected apiVersion k8s.practo.dev/v1, kind WorkerPodAutoScaler; got {} {}",
            object.api_version, object.kind
        )));
    }
    let backend = object.spec.queue_uri.as_deref().map(|uri| {
        let scheme = uri.split_once("://").map_or("", |(scheme, _)| scheme);
        match scheme {
            "beanstalk" => Backend::Beanstalkd,
            "redis" | "rediss" => Backend::RedisList,
            "amqp" | "amqps" => Backend::Rabbitmq,
            "nats" | "tls" => Backend::Nats,
            _ => Backend::Sqs,
        }
    });
    Ok((object.spec.raw, backend))
}

/// Progress on stderr, only once a run has taken more than a second.
struct Progress {
    started: Instant,
    terminal: bool,
    shown: bool,
    last_step: Option<(String, u32)>,
}

impl Progress {
    fn new(started: Instant) -> Self {
        Progress {
            started,
            terminal: std::io::stderr().is_terminal(),
            shown: false,
            last_step: None,
        }
    }

    fn report(&mut self, label: &str, fraction: f64) {
        if self.started.elapsed().as_secs_f64() < 1.0 {
            return;
        }
        let percent = (fraction * 100.0).round() as u32;
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(stderr, "\r\x1b[Ksimulating {label}: {percent:>3}%");
            let _ = stderr.flush();
            self.shown = true;
        } else {
            // Without a terminal, a line per quarter per run.
            let step = percent / 25;
            if self.last_step.as_ref() != Some(&(label.to_owned(), step)) {
                let _ = writeln!(stderr, "simulating {label}: {percent}%");
                self.last_step = Some((label.to_owned(), step));
            }
        }
    }

    fn finish(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

fn format_seconds(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.1}s")
    } else if seconds < 600.0 {
        format!("{seconds:.0}s")
    } else if seconds < 36_000.0 {
        format!("{:.1}m", seconds / 60.0)
    } else {
        format!("{:.1}h", seconds / 3_600.0)
    }
}

fn write_table(out: &mut impl Write, results: &[(Scenario, Vec<Outcome>)]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:<9} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9} {:>6} {:>8} {:>7}",
        "scenario",
        "policy",
        "wait50",
        "wait95",
        "wait99",
        "waitmax",
        "peakqueue",
        "worker-h",
        "scales",
        "drain",
        "killed"
    )?;
    for (scenario, outcomes) in results {
        for outcome in outcomes {
            // The limit row: worker-h is the work itself; its scales are
            // the ideal scaler's, not a policy's.
            let (worker_hours, scales) = if outcome.policy == "LIMIT" {
                (outcome.busy_seconds / 3_600.0, "-".to_owned())
            } else {
                (
                    outcome.worker_seconds / 3_600.0,
                    outcome.scale_operations().to_string(),
                )
            };
            writeln!(
                out,
                "{:<16} {:<9} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9.1} {:>6} {:>8} {:>7}",
                scenario.name,
                outcome.policy,
                format_seconds(outcome.wait_p50_s),
                format_seconds(outcome.wait_p95_s),
                format_seconds(outcome.wait_p99_s),
                format_seconds(outcome.wait_max_s),
                outcome.peak_backlog,
                worker_hours,
                scales,
                outcome
                    .drain_after_burst_s
                    .map_or_else(|| "-".to_owned(), format_seconds),
                outcome.interrupted_jobs,
            )?;
        }
    }
    writeln!(out)?;
    for (scenario, _) in results {
        let spec = &scenario.spec;
        writeln!(
            out,
            "{:<16} {} | {} backend, {} | WPA spec min {} max {} target {} secondsToProcessOneJob {} maxDisruption {}",
            scenario.name,
            scenario.description,
            scenario.config.backend.name(),
            format_seconds(scenario.config.horizon_s),
            spec.min_replicas(),
            spec.max_replicas(),
            spec.target_messages_per_worker(),
            spec.seconds_to_process_one_job(),
            spec.max_disruption(),
        )?;
    }
    writeln!(
        out,
        "\nwait: arrival to pick-up (p50/p95/p99/max); peakqueue: most messages waiting; worker-h: pod-hours paid\n\
         (start-up included); scales: replica changes; drain: start of first burst until its backlog is gone;\n\
         killed: jobs interrupted by a scale down. HPA/KEDA: Kubernetes/KEDA defaults, same bounds and target.\n\
         WAIT: the wait-target policy with the WPA's targetWaitSeconds, else --target-wait-seconds (default {} s),\n\
         and workerStartupSeconds = the start-up delay. LIMIT: worker-h is the work itself (total service time);\n\
         the waits are an ideal reactive scaler's (sees every message at once, same start-up delay and maxReplicas).",
        DEFAULT_TARGET_WAIT_S
    )
}

fn json_report(results: &[(Scenario, Vec<Outcome>)], seed: u64) -> serde_json::Value {
    let scenarios: Vec<serde_json::Value> = results
        .iter()
        .map(|(scenario, outcomes)| {
            let spec = &scenario.spec;
            json!({
                "scenario": scenario.name,
                "description": scenario.description,
                "config": &scenario.config,
                "wpaSpec": {
                    "minReplicas": spec.min_replicas(),
                    "maxReplicas": spec.max_replicas(),
                    "targetMessagesPerWorker": spec.target_messages_per_worker(),
                    "secondsToProcessOneJob": spec.seconds_to_process_one_job(),
                    "maxDisruption": spec.max_disruption().to_string(),
                },
                "results": outcomes,
            })
        })
        .collect();
    json!({ "seed": seed, "scenarios": scenarios })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        simulate: SimulateArgs,
    }

    fn parse(args: &[&str]) -> Result<SimulateOptions, clap::Error> {
        use clap::Parser as _;
        Cli::try_parse_from(std::iter::once("simulate").chain(args.iter().copied()))
            .map(|cli| *cli.simulate.options)
    }

    #[test]
    fn durations_are_seconds_or_take_units() {
        let options = parse(&["--horizon", "90m", "--startup-delay", "0.5"]).unwrap();
        assert_eq!(options.horizon, Some(Duration::from_secs(5_400)));
        assert_eq!(options.startup_delay, Some(Duration::from_millis(500)));
        assert_eq!(
            parse(&["--horizon", "1d 12h"]).unwrap().horizon,
            Some(Duration::from_secs(129_600))
        );
        assert_eq!(
            parse(&["--horizon=3600"]).unwrap().horizon,
            Some(Duration::from_secs(3_600))
        );
        for bad in ["", "-3", "h", "0", "1x", "nan"] {
            let error = parse(&["--horizon", bad]).unwrap_err().to_string();
            assert!(error.contains("--horizon"), "{bad}: {error}");
        }
    }

    /// The poll intervals are `run`'s and `watch`'s flags, applied to the
    /// simulated adapter of the backend (and refused by the same rule).
    #[test]
    fn poll_intervals_are_the_shared_flags() {
        let options = parse(&[
            "--sqs-short-poll-interval",
            "5",
            "--beanstalk-long-poll-interval",
            "1m",
        ])
        .unwrap();
        assert_eq!(
            options.poll.intervals(true),
            (Duration::from_secs(5), Duration::from_secs(20))
        );
        assert_eq!(
            options.poll.intervals(false),
            (Duration::from_secs(20), Duration::from_secs(60))
        );
        let error = parse(&["--sqs-short-poll-interval", "0"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--sqs-short-poll-interval"), "{error}");
        let chosen = scenarios(&options).unwrap();
        assert!(
            chosen.iter().all(|s| s.config.adapter.short_poll_s == 5.0),
            "SQS scenarios"
        );
    }

    #[test]
    fn spec_and_defaults_are_the_shared_flags() {
        let options = parse(&[
            "--min-replicas",
            "2",
            "--max-disruption",
            "10%",
            "--scale-down-delay",
            "30",
        ])
        .unwrap();
        assert_eq!(options.spec.min_replicas, Some(2));
        assert_eq!(options.spec.max_disruption.as_deref(), Some("10%"));
        assert_eq!(
            options.defaults.scale_down_delay_after_last_scale_activity,
            Duration::from_secs(30)
        );
        let options = parse(&["--scale-down-delay-after-last-scale-activity", "5m"]).unwrap();
        assert_eq!(
            options.defaults.scale_down_delay_after_last_scale_activity,
            Duration::from_secs(300)
        );
        assert_eq!(
            parse(&[])
                .unwrap()
                .defaults
                .scale_down_delay_after_last_scale_activity,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn reads_a_worker_pod_autoscaler_object() {
        let path = std::env::temp_dir().join(format!("wpa-sim-test-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            "apiVersion: k8s.practo.dev/v1\nkind: WorkerPodAutoScaler\nmetadata: {name: w}\nspec:\n  \
             minReplicas: 0\n  maxReplicas: 10\n  deploymentName: d\n  \
             queueURI: beanstalk://localhost:11300/jobs\n  targetMessagesPerWorker: 2\n  \
             secondsToProcessOneJob: 0.03\n  maxDisruption: \"25%\"\n",
        )
        .unwrap();
        let read = read_wpa_file(&path);
        std::fs::remove_file(&path).unwrap();
        let (raw, backend) = read.unwrap();
        assert_eq!(backend, Some(Backend::Beanstalkd));
        let spec = raw.validate(MaxDisruption::DEFAULT).unwrap();
        assert_eq!(spec.max_disruption(), MaxDisruption::Percent(25));
        assert_eq!(spec.target_messages_per_worker(), 2);
        assert_eq!(spec.seconds_to_process_one_job(), 0.03);
    }
}
