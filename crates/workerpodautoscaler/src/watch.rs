//! `watch`: a dry run without Kubernetes. Polls a real queue, applies each
//! decision to an in-memory target and prints one JSON line per decision.
//!
//! A decision is taken as soon as the poller publishes a changed snapshot,
//! and otherwise every short-poll interval (the resync), or exactly when a
//! held scale down becomes due.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::time::Instant;
use wpa_beanstalkd::{BeanstalkQueue, BeanstalkUri};
use wpa_core::{
    HoldReason, MaxDisruption, RawWpaSpec, ReconcileError, ScaleOperation, ScaleTarget,
    TargetReplicas, WpaSpec, reconcile,
};
use wpa_poller::{PollerConfig, PollerError, Registry, Subscription};

/// Arguments of `watch`. Every flag can also be set in the environment as
/// `WORKERPODAUTOSCALER_<FLAG>` (upper case, `-` as `_`).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Output: one JSON object per decision on stdout, with keys time (RFC 3339),
queueMessages, idleWorkers (null: unknown), messagesSentPerMinute (null:
unknown), currentReplicas, desiredReplicas, scaleOperation
(scale-up|scale-down|none) and reason. Logs go to stderr.
Exit status: 0 on Ctrl-C or SIGTERM, 2 for a bad queue URI or spec.")]
pub(crate) struct WatchArgs {
    /// Queue to poll: beanstalk://host:port/tube (host defaults to localhost, port to 11300)
    /// or an SQS queue URL, https://sqs.<region>.amazonaws.com/<account>/<name>.
    #[arg(long, env = "WORKERPODAUTOSCALER_QUEUE_URI")]
    queue_uri: String,

    /// minReplicas of the spec.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_MIN_REPLICAS",
        allow_negative_numbers = true
    )]
    min_replicas: i64,

    /// maxReplicas of the spec.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_MAX_REPLICAS",
        allow_negative_numbers = true
    )]
    max_replicas: i64,

    /// targetMessagesPerWorker of the spec (at least 1).
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_TARGET_MESSAGES_PER_WORKER",
        allow_negative_numbers = true
    )]
    target_messages_per_worker: i64,

    /// secondsToProcessOneJob of the spec (0 or absent: no arrival-rate floor).
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_SECONDS_TO_PROCESS_ONE_JOB",
        allow_negative_numbers = true
    )]
    seconds_to_process_one_job: Option<f64>,

    /// maxDisruption of the spec ("2" pods or "25%"); absent: --wpa-default-max-disruption.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_MAX_DISRUPTION",
        allow_hyphen_values = true
    )]
    max_disruption: Option<String>,

    /// Replicas the in-memory target starts with.
    #[arg(long, env = "WORKERPODAUTOSCALER_REPLICAS", default_value_t = 0)]
    replicas: u32,

    /// Seconds after the last scale activity before a scale down is allowed.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_SCALE_DOWN_DELAY_AFTER_LAST_SCALE_ACTIVITY",
        default_value_t = 600
    )]
    scale_down_delay_after_last_scale_activity: u64,

    /// Seconds between two beanstalkd polls (and between two decisions when nothing changes).
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_BEANSTALK_SHORT_POLL_INTERVAL",
        default_value_t = 20
    )]
    beanstalk_short_poll_interval: u64,

    /// Longest wait of one wake-up poll (reserve-with-timeout) at 0 replicas, in seconds.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_BEANSTALK_LONG_POLL_INTERVAL",
        default_value_t = 20
    )]
    beanstalk_long_poll_interval: u64,

    /// Seconds between two SQS polls (and between two decisions when nothing changes).
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_SQS_SHORT_POLL_INTERVAL",
        default_value_t = 20
    )]
    sqs_short_poll_interval: u64,

    /// Longest wait of one SQS wake-up poll (long-poll ReceiveMessage) at 0 replicas, in seconds.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_SQS_LONG_POLL_INTERVAL",
        default_value_t = 20
    )]
    sqs_long_poll_interval: u64,

    /// AWS regions whose SQS clients are made up front (others get one on demand).
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_AWS_REGIONS",
        default_value = "ap-south-1,ap-southeast-1",
        value_delimiter = ','
    )]
    aws_regions: Vec<String>,

    /// SQS endpoint override (an emulator or a proxy); then any http(s)://host[:port]/<account>/<queue>
    /// URL is accepted, with the region from AWS_REGION or the first of --aws-regions.
    #[arg(long, env = "WORKERPODAUTOSCALER_SQS_ENDPOINT")]
    sqs_endpoint: Option<String>,

    /// maxDisruption used when the spec gives none.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_WPA_DEFAULT_MAX_DISRUPTION",
        default_value = "100%"
    )]
    wpa_default_max_disruption: String,

    /// Log verbosity on stderr: 0 info, 1-3 debug, 4 and up trace (RUST_LOG overrides).
    #[arg(
        short = 'v',
        long = "v",
        env = "WORKERPODAUTOSCALER_V",
        default_value_t = 0,
        num_args = 0..=1,
        default_missing_value = "1"
    )]
    verbosity: u8,
}

/// Why `watch` cannot start.
#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("{0}")]
    Beanstalk(#[from] wpa_beanstalkd::Error),
    #[error("{0}")]
    Sqs(#[from] wpa_sqs::Error),
    #[error(
        "unsupported queue URI {uri:?}: expected beanstalk://host:port/tube or an SQS queue URL"
    )]
    UnsupportedUri { uri: String },
    #[error("invalid spec: {0}")]
    Spec(#[from] wpa_core::Error),
    #[error("invalid --wpa-default-max-disruption: {0}")]
    DefaultMaxDisruption(#[source] wpa_core::Error),
    #[error("--{flag} must be at least 1 second")]
    ZeroInterval { flag: &'static str },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The queue services `watch` can poll. To add one: a variant, a branch in
/// [`Queue::parse`] and one in [`Queue::subscribe`].
#[derive(Debug)]
enum Queue {
    Beanstalk(BeanstalkUri),
    /// Checked for syntax here; against the endpoint settings when subscribed.
    Sqs,
}

impl Queue {
    fn parse(uri: &str) -> Result<Self, WatchError> {
        if uri.starts_with("beanstalk://") {
            return Ok(Queue::Beanstalk(uri.parse()?));
        }
        if uri.starts_with("https://") || uri.starts_with("http://") {
            wpa_sqs::QueueUrl::parse(uri, true)?;
            return Ok(Queue::Sqs);
        }
        Err(WatchError::UnsupportedUri {
            uri: uri.to_owned(),
        })
    }

    /// Starts the queue's poller (needs the runtime).
    async fn subscribe(
        self,
        uri: &str,
        args: &WatchArgs,
        spec: &WpaSpec,
        registry: &Registry,
    ) -> Result<Subscription, WatchError> {
        match self {
            Queue::Beanstalk(address) => {
                let config = PollerConfig::new(
                    Duration::from_secs(args.beanstalk_short_poll_interval),
                    Duration::from_secs(args.beanstalk_long_poll_interval),
                );
                let subscribed = registry.subscribe(uri, config, Some(args.replicas), || {
                    Ok::<_, Infallible>(BeanstalkQueue::new(address))
                });
                match subscribed {
                    Ok(subscription) => Ok(subscription),
                    Err(never) => match never {},
                }
            }
            Queue::Sqs => {
                let clients = wpa_sqs::SqsClients::new(wpa_sqs::SqsOptions {
                    endpoint: args.sqs_endpoint.clone(),
                    regions: args.aws_regions.clone(),
                    // The reference measures the rate only when it is used.
                    arrival_rate: spec.seconds_to_process_one_job() > 0.0,
                    ..wpa_sqs::SqsOptions::default()
                })
                .await;
                let queue = clients.queue(uri)?;
                let config = PollerConfig::new(
                    Duration::from_secs(args.sqs_short_poll_interval),
                    Duration::from_secs(args.sqs_long_poll_interval),
                );
                Ok(registry.subscribe(uri, config, Some(args.replicas), || {
                    Ok::<_, wpa_sqs::Error>(queue)
                })?)
            }
        }
    }

    /// The interval between decisions when nothing changes.
    fn resync(&self, args: &WatchArgs) -> Duration {
        match self {
            Queue::Beanstalk(_) => Duration::from_secs(args.beanstalk_short_poll_interval),
            Queue::Sqs => Duration::from_secs(args.sqs_short_poll_interval),
        }
    }
}

/// The in-memory scale target.
#[derive(Debug)]
struct MemoryTarget {
    replicas: u32,
}

impl ScaleTarget for MemoryTarget {
    type Error = Infallible;

    fn replicas(&mut self) -> impl Future<Output = Result<TargetReplicas, Infallible>> + Send {
        std::future::ready(Ok(TargetReplicas {
            current: self.replicas,
            available: self.replicas,
        }))
    }

    fn apply(&mut self, replicas: u32) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.replicas = replicas;
        std::future::ready(Ok(()))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DecisionLine<'a> {
    time: &'a str,
    queue_messages: u32,
    idle_workers: Option<u32>,
    messages_sent_per_minute: Option<f64>,
    current_replicas: u32,
    desired_replicas: u32,
    scale_operation: &'static str,
    reason: &'a str,
}

pub(crate) fn run(args: &WatchArgs) -> ExitCode {
    init_logs(args.verbosity);
    let prepared = prepare(args).and_then(|(queue, spec)| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(WatchError::Runtime)?;
        Ok((queue, spec, runtime))
    });
    match prepared {
        Ok((queue, spec, runtime)) => runtime.block_on(watch(args, queue, spec)),
        Err(error) => {
            eprintln!("workerpodautoscaler watch: {error}");
            ExitCode::from(2)
        }
    }
}

fn prepare(args: &WatchArgs) -> Result<(Queue, WpaSpec), WatchError> {
    let queue = Queue::parse(&args.queue_uri)?;
    let default_max_disruption: MaxDisruption = args
        .wpa_default_max_disruption
        .parse()
        .map_err(WatchError::DefaultMaxDisruption)?;
    let spec = RawWpaSpec {
        min_replicas: Some(args.min_replicas),
        max_replicas: Some(args.max_replicas),
        target_messages_per_worker: Some(args.target_messages_per_worker),
        seconds_to_process_one_job: args.seconds_to_process_one_job,
        max_disruption: args.max_disruption.clone(),
    }
    .validate(default_max_disruption)?;
    if args.beanstalk_short_poll_interval == 0 {
        return Err(WatchError::ZeroInterval {
            flag: "beanstalk-short-poll-interval",
        });
    }
    if args.sqs_short_poll_interval == 0 {
        return Err(WatchError::ZeroInterval {
            flag: "sqs-short-poll-interval",
        });
    }
    Ok((queue, spec))
}

fn init_logs(verbosity: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match verbosity {
        0 => "info",
        1..=3 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn watch(args: &WatchArgs, queue: Queue, spec: WpaSpec) -> ExitCode {
    let registry = Registry::new();
    let resync = queue.resync(args);
    let mut subscription = match queue
        .subscribe(&args.queue_uri, args, &spec, &registry)
        .await
    {
        Ok(subscription) => subscription,
        Err(error) => {
            eprintln!("workerpodautoscaler watch: {error}");
            return ExitCode::from(2);
        }
    };
    let mut target = MemoryTarget {
        replicas: args.replicas,
    };
    let delay = Duration::from_secs(args.scale_down_delay_after_last_scale_activity);
    let mut last_scale_time = None;
    let mut next_resync = Instant::now() + resync;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    tracing::info!(uri = %args.queue_uri, replicas = args.replicas, "watching");
    let mut stdout = std::io::stdout();
    let mut reason = String::new();
    loop {
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("stopping");
                return ExitCode::SUCCESS;
            }
            changed = subscription.changed() => {
                if let Err(error) = changed {
                    tracing::error!(%error, "poller stopped");
                    return ExitCode::FAILURE;
                }
            }
            () = tokio::time::sleep_until(next_resync) => {}
        }
        next_resync = Instant::now() + resync;
        let now = SystemTime::now();
        let plan = match reconcile(
            &mut subscription,
            &mut target,
            &spec,
            delay,
            last_scale_time,
            now,
        )
        .await
        {
            Ok(plan) => plan,
            Err(ReconcileError::Queue(PollerError::NotPolledYet { last_error, .. })) => {
                tracing::warn!(
                    error = last_error.as_deref().unwrap_or("first poll pending"),
                    "no queue snapshot yet: no decision"
                );
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "reconcile failed");
                continue;
            }
        };
        last_scale_time = plan.status.last_scale_time;
        subscription.set_replicas(target.replicas);
        if let ScaleOperation::ScaleDownHeld(HoldReason::ScaleDownDelay { remaining }) =
            plan.operation
            && let Some(due) = Instant::now().checked_add(remaining + Duration::from_millis(1))
        {
            next_resync = next_resync.min(due);
        }
        reason.clear();
        let _ = write!(reason, "{}", plan.decision);
        if let ScaleOperation::ScaleDownHeld(_) = plan.operation {
            let _ = write!(reason, "; {}", plan.operation);
        }
        let time = rfc3339(now);
        let line = DecisionLine {
            time: &time,
            queue_messages: plan.snapshot.messages(),
            idle_workers: plan.snapshot.idle_workers(plan.replicas.current),
            messages_sent_per_minute: plan.snapshot.messages_sent_per_minute(),
            current_replicas: plan.replicas.current,
            desired_replicas: plan.decision.desired_replicas,
            scale_operation: plan.operation.as_str(),
            reason: &reason,
        };
        tracing::debug!(operation = %plan.operation, desired = plan.decision.desired_replicas, "decision");
        let written = serde_json::to_string(&line)
            .map_err(std::io::Error::other)
            .and_then(|json| writeln!(stdout, "{json}"));
        if let Err(error) = written {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
            tracing::error!(%error, "cannot write to stdout");
            return ExitCode::FAILURE;
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C still stops");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `2026-11-28T12:38:29.123Z`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let of_day = seconds % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(s * 1000 + ms);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_700_000_000, 999)), "2023-11-14T22:13:20.999Z");
        assert_eq!(rfc3339(at(4_102_444_799, 0)), "2099-12-31T23:59:59.000Z");
    }

    #[test]
    fn queue_uris_dispatch() {
        assert!(matches!(
            Queue::parse("beanstalk://h:1/t"),
            Ok(Queue::Beanstalk(_))
        ));
        assert!(matches!(
            Queue::parse("beanstalk://h:x/t"),
            Err(WatchError::Beanstalk(_))
        ));
        assert!(matches!(
            Queue::parse("redis://h/t"),
            Err(WatchError::UnsupportedUri { .. })
        ));
        assert!(matches!(
            Queue::parse("https://sqs.ap-south-1.amazonaws.com/123456789012/jobs"),
            Ok(Queue::Sqs)
        ));
        assert!(matches!(
            Queue::parse("http://127.0.0.1:5000/123456789012/jobs"),
            Ok(Queue::Sqs)
        ));
        assert!(matches!(
            Queue::parse("https://sqs.ap-south-1.amazonaws.com/"),
            Err(WatchError::Sqs(_))
        ));
    }
}
