//! `watch`: a dry run without Kubernetes. Polls a real queue, applies each
//! decision to an in-memory target and prints one JSON line per decision.
//!
//! A decision is taken as soon as the poller publishes a changed snapshot,
//! and otherwise every short-poll interval (the resync), or exactly when a
//! held scale down becomes due.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::time::Instant;
use wpa_beanstalkd::{BeanstalkQueue, BeanstalkUri};
use wpa_core::{
    History, HoldReason, ReconcileError, ScaleOperation, ScaleTarget, TargetReplicas, WpaSpec,
    reconcile_with_history,
};
use wpa_poller::{PollerError, Registry, Subscription};

use crate::cli::{self, DefaultsArgs, LogArgs, QueueArgs, SpecArgs};
use crate::queues::Service;

/// Arguments of `watch`. Every flag can also be set in the environment as
/// `WORKERPODAUTOSCALER_<FLAG>` (upper case, `-` as `_`); the spec, queue,
/// defaults and logging flags are the shared ones of [`crate::cli`].
#[derive(Debug, clap::Args)]
#[command(
    mut_arg("min_replicas", |arg| arg.required(true)),
    mut_arg("max_replicas", |arg| arg.required(true)),
    mut_arg("target_messages_per_worker", |arg| arg.required(true)),
    after_help = "\
Output: one JSON object per decision on stdout, with keys time (RFC 3339),
queueMessages, idleWorkers (null: unknown), messagesSentPerMinute (null:
unknown), currentReplicas, desiredReplicas, scaleOperation
(scale-up|scale-down|none) and reason. Logs go to stderr.
Exit status: 0 on Ctrl-C or SIGTERM, 2 for a bad flag, queue URI or spec."
)]
pub(crate) struct WatchArgs {
    /// Queue to poll: beanstalk://host:port/tube (host defaults to localhost, port to 11300),
    /// an SQS queue URL, https://sqs.<region>.amazonaws.com/<account>/<name>, a Redis
    /// (redis://), RabbitMQ (amqp://) or NATS JetStream (nats://) queue: see the README.
    #[arg(long, env = "WORKERPODAUTOSCALER_QUEUE_URI")]
    queue_uri: String,

    #[command(flatten)]
    spec: SpecArgs,

    /// Replicas the in-memory target starts with.
    #[arg(long, env = "WORKERPODAUTOSCALER_REPLICAS", default_value_t = 0)]
    replicas: u32,

    #[command(flatten)]
    defaults: DefaultsArgs,

    #[command(flatten)]
    queue: QueueArgs,

    #[command(flatten)]
    pub(crate) log: LogArgs,
}

/// Why `watch` cannot start.
#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("{0}")]
    Beanstalk(#[from] wpa_beanstalkd::Error),
    #[error("{0}")]
    Sqs(#[from] wpa_sqs::Error),
    #[error("unsupported queue URI {uri:?}: expected {}", crate::queues::URI_FORMS)]
    UnsupportedUri { uri: String },
    #[error("{0}")]
    Queue(String),
    #[error("invalid spec: {0}")]
    Spec(#[from] wpa_core::Error),
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
    /// Redis, RabbitMQ or NATS: checked when subscribed.
    Other(Service),
}

impl Queue {
    fn parse(uri: &str) -> Result<Self, WatchError> {
        match Service::of_uri(uri) {
            Some(Service::Sqs) => {
                wpa_sqs::QueueUrl::parse(uri, true)?;
                Ok(Queue::Sqs)
            }
            Some(Service::Beanstalkd) => Ok(Queue::Beanstalk(uri.parse()?)),
            Some(other) => Ok(Queue::Other(other)),
            None => Err(WatchError::UnsupportedUri {
                uri: crate::queues::redact(uri),
            }),
        }
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
                let config = args.queue.beanstalk_poller();
                let subscribed = registry.subscribe(uri, config, Some(args.replicas), || {
                    Ok::<_, Infallible>(BeanstalkQueue::new(address))
                });
                match subscribed {
                    Ok(subscription) => Ok(subscription),
                    Err(never) => match never {},
                }
            }
            Queue::Sqs => {
                // The reference measures the rate only when it is used.
                let options = args
                    .queue
                    .sqs_options(spec.seconds_to_process_one_job() > 0.0);
                let clients = wpa_sqs::SqsClients::new(options).await;
                let queue = clients.queue(uri)?;
                let config = args.queue.sqs_poller();
                Ok(registry.subscribe(uri, config, Some(args.replicas), || {
                    Ok::<_, wpa_sqs::Error>(queue)
                })?)
            }
            Queue::Other(service) => crate::queues::subscribe_other(
                service,
                &args.queue.adapters(),
                registry,
                uri,
                args.queue.poll.poller(service),
                Some(args.replicas),
            )
            .map_err(WatchError::Queue),
        }
    }

    /// The interval between decisions when nothing changes.
    fn resync(&self, args: &WatchArgs) -> Duration {
        match self {
            Queue::Beanstalk(_) => args.queue.poll.beanstalk_short_poll_interval,
            Queue::Sqs => args.queue.poll.sqs_short_poll_interval,
            Queue::Other(service) => args.queue.poll.poller(*service).short_poll,
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
        std::future::ready(Ok(TargetReplicas::new(self.replicas, self.replicas)))
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
    args.log.init(None);
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
    let spec = args
        .spec
        .raw()
        .validate(args.defaults.wpa_default_max_disruption)?;
    Ok((queue, spec))
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
    // What the controller asks of the poller for this spec.
    subscription.set_needs_arrival_rate(spec.seconds_to_process_one_job() > 0.0);
    subscription.set_needs_oldest_age(spec.wait_target().is_some());
    let mut target = MemoryTarget {
        replicas: args.replicas,
    };
    let delay = args.defaults.scale_down_delay_after_last_scale_activity;
    let mut history = History::default();
    let mut next_resync = Instant::now() + resync;
    let shutdown = cli::signal::terminated();
    tokio::pin!(shutdown);
    tracing::info!(uri = %crate::queues::redact(&args.queue_uri), replicas = args.replicas, "watching");
    let mut stdout = std::io::stdout();
    let mut reason = String::new();
    loop {
        tokio::select! {
            () = &mut shutdown => return ExitCode::SUCCESS,
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
        // Read before the reconcile, whose scale write a newer poll may overtake.
        let polled_at = subscription.polled_at(now).unwrap_or(now);
        let plan = match reconcile_with_history(
            &mut subscription,
            &mut target,
            &spec,
            delay,
            history,
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
        history = History::after(&plan, polled_at);
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

/// `2026-11-28T12:38:29.123Z`: RFC 3339 in UTC, to the millisecond.
fn rfc3339(time: SystemTime) -> String {
    // Out of jiff's range only past the year 9999.
    let timestamp = jiff::Timestamp::try_from(time).unwrap_or(jiff::Timestamp::MAX);
    format!("{timestamp:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wpa_core::reconcile;

    use std::time::UNIX_EPOCH;

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
            Ok(Queue::Other(Service::Redis))
        ));
        assert!(matches!(
            Queue::parse("kafka://h/t"),
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

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        watch: WatchArgs,
    }

    fn parse(extra: &[&str]) -> WatchArgs {
        use clap::Parser as _;
        let base = [
            "watch",
            "--queue-uri",
            "beanstalk://h:1/t",
            "--min-replicas",
            "0",
            "--max-replicas",
            "50",
            "--target-messages-per-worker",
            "100",
        ];
        Cli::try_parse_from(base.iter().chain(extra)).unwrap().watch
    }

    /// A queue that always says the same.
    struct Fixed(wpa_core::QueueSnapshot);

    impl wpa_core::QueueMetrics for Fixed {
        type Error = Infallible;
        async fn snapshot(&mut self) -> Result<wpa_core::QueueSnapshot, Infallible> {
            Ok(self.0)
        }
    }

    /// `--target-wait-seconds` / `--worker-startup-seconds` reach the
    /// decision as the loop takes it (same spec, same delay flag, same
    /// reason text), and the scale down waits the start-up time instead of
    /// `--scale-down-delay-after-last-scale-activity`.
    #[test]
    fn wait_target_flags_reach_the_decision_and_its_reason() {
        use wpa_core::QueueSnapshot;
        for flag in ["--target-wait-seconds", "--target-wait"] {
            let args = parse(&[
                "--seconds-to-process-one-job",
                "2",
                flag,
                "30",
                "--worker-startup-seconds",
                "5",
            ]);
            let (_, spec) = prepare(&args).unwrap();
            let target = spec.wait_target().expect("the wait-target policy");
            assert_eq!(target.target_wait_seconds(), 30.0, "{flag}");
            assert_eq!(target.worker_startup_seconds(), 5.0, "{flag}");
        }
        let args = parse(&[
            "--seconds-to-process-one-job",
            "2",
            "--target-wait",
            "30",
            "--worker-startup-seconds",
            "5",
        ]);
        let (_, spec) = prepare(&args).unwrap();
        let delay = args.defaults.scale_down_delay_after_last_scale_activity;
        assert_eq!(delay, Duration::from_secs(600));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut target = MemoryTarget { replicas: 4 };
        // 10 workers busy on average (300 per minute of 2 s jobs, counted
        // over an hour: 2% of it may be noise).
        let busy = QueueSnapshot::new(4)
            .with_in_flight(4)
            .with_arrival_rate(300.0)
            .unwrap()
            .with_arrival_rate_window(Duration::from_secs(3_600));
        let up = runtime
            .block_on(reconcile(
                &mut Fixed(busy),
                &mut target,
                &spec,
                delay,
                None,
                now,
            ))
            .unwrap();
        assert_eq!(up.operation, ScaleOperation::ScaleUp);
        assert!(target.replicas > 10, "more than the reference's 10");
        let reason = up.decision.to_string();
        assert!(
            reason.starts_with("99% of waits under 30 s need"),
            "{reason}"
        );

        // Drained 2 s after that scale: held 3 s more, not 598 s.
        let idle = QueueSnapshot::new(0)
            .with_in_flight(0)
            .with_arrival_rate(0.0)
            .unwrap();
        let later = now + Duration::from_secs(2);
        let held = runtime
            .block_on(reconcile(
                &mut Fixed(idle),
                &mut target,
                &spec,
                delay,
                up.status.last_scale_time,
                later,
            ))
            .unwrap();
        assert_eq!(
            held.operation,
            ScaleOperation::ScaleDownHeld(HoldReason::ScaleDownDelay {
                remaining: Duration::from_secs(3)
            })
        );
        let down = runtime
            .block_on(reconcile(
                &mut Fixed(idle),
                &mut target,
                &spec,
                delay,
                up.status.last_scale_time,
                now + Duration::from_secs(6),
            ))
            .unwrap();
        assert_eq!(down.operation, ScaleOperation::ScaleDown);
        assert_eq!(target.replicas, 0);

        // Without the flags: the reference's rules and delay.
        let (_, reference) = prepare(&parse(&["--seconds-to-process-one-job", "2"])).unwrap();
        assert!(reference.wait_target().is_none());
    }

    #[test]
    fn a_wait_target_without_a_job_time_is_a_spec_error() {
        let error = prepare(&parse(&["--target-wait-seconds", "30"])).unwrap_err();
        assert!(
            matches!(
                error,
                WatchError::Spec(wpa_core::Error::WaitTargetNeedsJobTime)
            ),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .starts_with("invalid spec: targetWaitSeconds needs secondsToProcessOneJob"),
            "{error}"
        );
        let error = prepare(&parse(&[
            "--seconds-to-process-one-job",
            "2",
            "--target-wait-seconds",
            "30",
            "--worker-startup-seconds",
            "-1",
        ]))
        .unwrap_err();
        assert!(
            error.to_string().contains("workerStartupSeconds"),
            "{error}"
        );
    }
}
