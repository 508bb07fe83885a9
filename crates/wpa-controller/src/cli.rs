//! The `run` command line: the reference's flags, with the same defaults
//! and `WORKERPODAUTOSCALER_*` environment variables, and the process
//! around the controller (logging, client, metrics port, signals).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use wpa_core::MaxDisruption;
use wpa_poller::PollerConfig;

use crate::{
    ControllerConfig, Error, Health, LeaderElectionConfig, LogCounter, Metrics, SourceFactory,
};

/// `workerpodautoscaler run`: every flag of the Go controller, same names
/// and defaults; each also read from `WORKERPODAUTOSCALER_<FLAG>`.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct RunArgs {
    /// Seconds between two reconciles of a WorkerPodAutoScaler when nothing
    /// else triggers one.
    #[arg(long, env = "WORKERPODAUTOSCALER_RESYNC_PERIOD", default_value_t = 20)]
    pub resync_period: u64,
    /// Reconciles running at once.
    #[arg(long, env = "WORKERPODAUTOSCALER_WPA_THREADS", default_value_t = 10)]
    pub wpa_threads: usize,
    /// maxDisruption of WorkerPodAutoScalers that do not set one.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_WPA_DEFAULT_MAX_DISRUPTION",
        default_value = "100%"
    )]
    pub wpa_default_max_disruption: String,
    /// AWS regions whose SQS queues may be used, comma separated.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_AWS_REGIONS",
        default_value = "ap-south-1,ap-southeast-1"
    )]
    pub aws_regions: String,
    /// Path of a kubeconfig; in-cluster configuration (or ~/.kube/config)
    /// when absent.
    #[arg(long, env = "WORKERPODAUTOSCALER_KUBE_CONFIG")]
    pub kube_config: Option<PathBuf>,
    /// Seconds between two SQS short polls.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_SQS_SHORT_POLL_INTERVAL",
        default_value_t = 20
    )]
    pub sqs_short_poll_interval: u64,
    /// Seconds an SQS wake-up (long) poll may wait.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_SQS_LONG_POLL_INTERVAL",
        default_value_t = 20
    )]
    pub sqs_long_poll_interval: u64,
    /// Seconds between two beanstalkd short polls.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_BEANSTALK_SHORT_POLL_INTERVAL",
        default_value_t = 20
    )]
    pub beanstalk_short_poll_interval: u64,
    /// Seconds a beanstalkd wake-up (long) poll may wait.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_BEANSTALK_LONG_POLL_INTERVAL",
        default_value_t = 20
    )]
    pub beanstalk_long_poll_interval: u64,
    /// Queue services enabled, comma separated (`sqs`, `beanstalkd`).
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_QUEUE_SERVICES",
        default_value = "sqs,beanstalkd"
    )]
    pub queue_services: String,
    /// Address of /metrics, /status, /healthz and /readyz (`:8787`: all
    /// interfaces).
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_METRICS_PORT",
        default_value = ":8787"
    )]
    pub metrics_port: String,
    /// Requests per second of the reconciles to the Kubernetes API: scales,
    /// status writes, Events (0: unlimited). Watches and the leader
    /// election's Lease renewals are not counted, so a burst of scaling
    /// never delays a renewal.
    #[arg(long, env = "WORKERPODAUTOSCALER_K8S_API_QPS", default_value_t = 5.0)]
    pub k8s_api_qps: f64,
    /// Burst of those requests (the token bucket's size).
    #[arg(long, env = "WORKERPODAUTOSCALER_K8S_API_BURST", default_value_t = 10)]
    pub k8s_api_burst: u32,
    /// Only watch this namespace (all namespaces when empty).
    #[arg(long, env = "WORKERPODAUTOSCALER_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// Seconds after a scale activity before a scale down is allowed.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_SCALE_DOWN_DELAY_AFTER_LAST_SCALE_ACTIVITY",
        default_value_t = 600
    )]
    pub scale_down_delay_after_last_scale_activity: u64,
    /// Log verbosity, as klog's `-v`: 0-1 info, 2-3 debug, 4+ trace
    /// (`RUST_LOG` overrides).
    #[arg(
        short = 'v',
        long = "v",
        env = "WORKERPODAUTOSCALER_V",
        default_value_t = 0
    )]
    pub verbosity: u8,
    /// Leader election on a Lease, so that only one replica scales
    /// (`--leader-elect=false` to turn off; the reference has none).
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_LEADER_ELECT",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: `POD_NAMESPACE`, else `default`).
    #[arg(long, env = "WORKERPODAUTOSCALER_LEADER_ELECT_NAMESPACE")]
    pub leader_elect_namespace: Option<String>,
    /// This replica's identity in the Lease (default: `POD_NAME`, else the
    /// host name).
    #[arg(long, env = "WORKERPODAUTOSCALER_LEADER_ELECT_IDENTITY")]
    pub leader_elect_identity: Option<String>,
}

/// Why `run` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A flag value is invalid.
    #[error("--{flag}: {message}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No Kubernetes configuration could be loaded.
    #[error("loading the Kubernetes configuration: {0}")]
    KubeConfig(String),
    /// The controller failed.
    #[error(transparent)]
    Controller(#[from] Error),
}

fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl RunArgs {
    /// The controller configuration these flags describe.
    pub fn controller_config(&self) -> Result<ControllerConfig, CliError> {
        let default_max_disruption: MaxDisruption = self
            .wpa_default_max_disruption
            .parse()
            .map_err(|e: wpa_core::Error| CliError::Flag {
                flag: "wpa-default-max-disruption",
                message: e.to_string(),
            })?;
        if self.resync_period == 0 {
            return Err(CliError::Flag {
                flag: "resync-period",
                message: "must be at least 1 second".to_owned(),
            });
        }
        Ok(ControllerConfig {
            namespace: Some(self.namespace.clone()).filter(|ns| !ns.is_empty()),
            resync_period: Duration::from_secs(self.resync_period),
            wpa_threads: self.wpa_threads.max(1),
            default_max_disruption,
            scale_down_delay: Duration::from_secs(self.scale_down_delay_after_last_scale_activity),
            api_qps: self.k8s_api_qps,
            api_burst: self.k8s_api_burst,
            instance: self.identity(),
        })
    }

    /// `--queue-services`, split.
    #[must_use]
    pub fn queue_services(&self) -> Vec<String> {
        comma_list(&self.queue_services)
    }

    /// `--aws-regions`, split.
    #[must_use]
    pub fn aws_regions(&self) -> Vec<String> {
        comma_list(&self.aws_regions)
    }

    /// The poller schedule of SQS queues.
    #[must_use]
    pub fn sqs_poller(&self) -> PollerConfig {
        PollerConfig::new(
            Duration::from_secs(self.sqs_short_poll_interval.max(1)),
            Duration::from_secs(self.sqs_long_poll_interval),
        )
    }

    /// The poller schedule of beanstalkd tubes.
    #[must_use]
    pub fn beanstalk_poller(&self) -> PollerConfig {
        PollerConfig::new(
            Duration::from_secs(self.beanstalk_short_poll_interval.max(1)),
            Duration::from_secs(self.beanstalk_long_poll_interval),
        )
    }

    fn identity(&self) -> Option<String> {
        self.leader_elect_identity
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|s| !s.is_empty())
    }

    /// The leader election these flags ask for, if any.
    #[must_use]
    pub fn leader_election(&self) -> Option<LeaderElectionConfig> {
        if !self.leader_elect {
            return None;
        }
        let namespace = self
            .leader_elect_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let identity = self
            .identity()
            .unwrap_or_else(|| format!("workerpodautoscaler-{}", std::process::id()));
        Some(LeaderElectionConfig::new(&namespace, &identity))
    }

    /// The tracing filter for `-v` (unless `RUST_LOG` is set).
    #[must_use]
    pub fn log_filter(&self) -> String {
        let level = match self.verbosity {
            0 | 1 => "info",
            2 | 3 => "debug",
            _ => "trace",
        };
        // kube's and hyper's own debug output is noise below -v=4.
        if self.verbosity >= 4 {
            level.to_owned()
        } else {
            format!(
                "{level},hyper=info,kube_client=info,kube_runtime=info,tower=info,kube_lease_manager=info"
            )
        }
    }
}

/// Sets up logging (counted into `metrics`) for `args`.
pub fn init_logging(args: &RunArgs, metrics: &Arc<Metrics>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(args.log_filter()));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer())
        .with(LogCounter(Arc::clone(metrics)))
        .try_init();
}

async fn client(args: &RunArgs) -> Result<kube::Client, CliError> {
    let config = match &args.kube_config {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| CliError::KubeConfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| CliError::KubeConfig(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| CliError::KubeConfig(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| CliError::KubeConfig(e.to_string()))
}

/// Turns true on SIGTERM or Ctrl-C.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!("cannot listen for SIGTERM: {error}");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = terminate => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
        }
        tx.send_replace(true);
    });
    rx
}

/// Runs the controller as `workerpodautoscaler run` does, until SIGTERM.
/// `metrics` must be the one given to [`init_logging`].
pub async fn run(
    args: RunArgs,
    factory: Arc<dyn SourceFactory>,
    metrics: Arc<Metrics>,
) -> Result<(), CliError> {
    let config = args.controller_config()?;
    let client = client(&args).await?;
    let health = Arc::new(Health::default());
    let shutdown = shutdown_signal();
    let (address, http) = crate::serve_http(
        &args.metrics_port,
        Arc::clone(&metrics),
        Arc::clone(&health),
        shutdown.clone(),
    )
    .await?;
    tracing::info!(
        %address, namespace = ?config.namespace, leader_elect = args.leader_elect,
        "workerpodautoscaler controller starting"
    );
    let result = crate::run(
        client,
        config,
        factory,
        metrics,
        health,
        args.leader_election(),
        shutdown,
    )
    .await;
    let _ = http.await;
    tracing::info!("stopped");
    result.map_err(CliError::from)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn defaults_are_the_references() {
        let args = Cli::try_parse_from(["run"]).unwrap().run;
        assert_eq!(args.resync_period, 20);
        assert_eq!(args.wpa_threads, 10);
        assert_eq!(args.wpa_default_max_disruption, "100%");
        assert_eq!(args.aws_regions(), ["ap-south-1", "ap-southeast-1"]);
        assert_eq!(args.kube_config, None);
        assert_eq!(args.sqs_short_poll_interval, 20);
        assert_eq!(args.sqs_long_poll_interval, 20);
        assert_eq!(args.beanstalk_short_poll_interval, 20);
        assert_eq!(args.beanstalk_long_poll_interval, 20);
        assert_eq!(args.queue_services(), ["sqs", "beanstalkd"]);
        assert_eq!(args.metrics_port, ":8787");
        assert!((args.k8s_api_qps - 5.0).abs() < f64::EPSILON);
        assert_eq!(args.k8s_api_burst, 10);
        assert_eq!(args.namespace, "");
        assert_eq!(args.scale_down_delay_after_last_scale_activity, 600);
        assert_eq!(args.verbosity, 0);
        assert!(args.leader_elect);
        let config = args.controller_config().unwrap();
        assert_eq!(config.namespace, None);
        assert_eq!(config.default_max_disruption, MaxDisruption::Percent(100));
        assert_eq!(config.scale_down_delay, Duration::from_secs(600));
    }

    #[test]
    fn flags_parse_as_in_go() {
        let args = Cli::try_parse_from([
            "run",
            "--resync-period=30",
            "--namespace=jobs",
            "-v=2",
            "--leader-elect=false",
            "--wpa-default-max-disruption",
            "25%",
        ])
        .unwrap()
        .run;
        assert_eq!(args.resync_period, 30);
        assert_eq!(args.verbosity, 2);
        assert!(!args.leader_elect);
        assert!(args.leader_election().is_none());
        let config = args.controller_config().unwrap();
        assert_eq!(config.namespace.as_deref(), Some("jobs"));
        assert_eq!(config.default_max_disruption, MaxDisruption::Percent(25));
        assert!(args.log_filter().starts_with("debug"));
        assert!(
            Cli::try_parse_from(["run", "--leader-elect"])
                .unwrap()
                .run
                .leader_elect
        );
    }

    #[test]
    fn every_flag_has_its_environment_variable() {
        use clap::CommandFactory;
        let command = Cli::command();
        let mut checked = 0;
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let expected = format!(
                "WORKERPODAUTOSCALER_{}",
                long.to_uppercase().replace('-', "_")
            );
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(env.as_deref(), Some(expected.as_str()), "--{long}");
            checked += 1;
        }
        assert_eq!(
            checked, 19,
            "the 16 reference flags (with -v), plus 3 for leader election"
        );
    }

    #[test]
    fn bad_flag_values_are_refused_with_the_flag_name() {
        let args = Cli::try_parse_from(["run", "--wpa-default-max-disruption=abc"])
            .unwrap()
            .run;
        let error = args.controller_config().unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("--wpa-default-max-disruption: maxDisruption \"abc\""),
            "{error}"
        );
        assert!(Cli::try_parse_from(["run", "--resync-period=soon"]).is_err());
    }
}
