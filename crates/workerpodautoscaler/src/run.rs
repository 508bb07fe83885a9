//! `workerpodautoscaler run`: the controller. The loop lives in
//! `wpa-controller`, a library without a command line; this module is the
//! process around it: the reference's flags (same names, defaults and
//! `WORKERPODAUTOSCALER_*` environment variables), logging, the Kubernetes
//! client, the metrics port, signals, and the queue adapters.

use std::convert::Infallible;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use wpa_beanstalkd::{BeanstalkQueue, BeanstalkUri};
use wpa_controller::{
    ControllerConfig, Health, LeaderElectionConfig, LogCounter, Metrics, SourceFactory,
};
use wpa_poller::{PollerConfig, Registry, Subscription};

use crate::cli::{self, DefaultsArgs, LogArgs, QueueArgs};
use crate::queues::{self, Service, URI_FORMS};

/// `workerpodautoscaler run`: every flag of the Go controller, same names
/// and defaults; each also read from `WORKERPODAUTOSCALER_<FLAG>`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    /// Seconds (or a duration: 20s, 1m) between two reconciles of a
    /// WorkerPodAutoScaler when nothing else triggers one; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_RESYNC_PERIOD",
        default_value = "20",
        value_parser = cli::values::interval,
        allow_negative_numbers = true
    )]
    pub(crate) resync_period: Duration,
    /// Reconciles running at once.
    #[arg(long, env = "WORKERPODAUTOSCALER_WPA_THREADS", default_value_t = 10)]
    pub(crate) wpa_threads: usize,
    /// Path of a kubeconfig; in-cluster configuration (or ~/.kube/config)
    /// when absent.
    #[arg(long, env = "WORKERPODAUTOSCALER_KUBE_CONFIG")]
    pub(crate) kube_config: Option<PathBuf>,
    /// Queue services enabled, comma separated: `sqs`, `beanstalkd` (the
    /// reference's default), `redis`, `rabbitmq`, `nats`. An enabled
    /// service costs nothing until a WorkerPodAutoScaler names one of its
    /// queues.
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_QUEUE_SERVICES",
        default_value = "sqs,beanstalkd"
    )]
    pub(crate) queue_services: String,
    /// Address of /metrics, /status, /healthz and /readyz (`:8787`: all
    /// interfaces).
    #[arg(
        long,
        env = "WORKERPODAUTOSCALER_METRICS_PORT",
        default_value = ":8787"
    )]
    pub(crate) metrics_port: String,
    /// Requests per second of the reconciles to the Kubernetes API: scales,
    /// status writes, Events (0: unlimited). Watches and the leader
    /// election's Lease renewals are not counted, so a burst of scaling
    /// never delays a renewal.
    #[arg(long, env = "WORKERPODAUTOSCALER_K8S_API_QPS", default_value_t = 5.0)]
    pub(crate) k8s_api_qps: f64,
    /// Burst of those requests (the token bucket's size).
    #[arg(long, env = "WORKERPODAUTOSCALER_K8S_API_BURST", default_value_t = 10)]
    pub(crate) k8s_api_burst: u32,
    /// Only watch this namespace (all namespaces when empty).
    #[arg(long, env = "WORKERPODAUTOSCALER_NAMESPACE", default_value = "")]
    pub(crate) namespace: String,
    #[command(flatten)]
    pub(crate) defaults: DefaultsArgs,
    #[command(flatten)]
    pub(crate) queue: QueueArgs,
    #[command(flatten)]
    pub(crate) log: LogArgs,
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
    pub(crate) leader_elect: bool,
    /// Namespace of the Lease (default: `POD_NAMESPACE`, else `default`).
    #[arg(long, env = "WORKERPODAUTOSCALER_LEADER_ELECT_NAMESPACE")]
    pub(crate) leader_elect_namespace: Option<String>,
    /// This replica's identity in the Lease (default: `POD_NAME`, else the
    /// host name).
    #[arg(long, env = "WORKERPODAUTOSCALER_LEADER_ELECT_IDENTITY")]
    pub(crate) leader_elect_identity: Option<String>,
}

/// Why `run` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// `--queue-services` names a service that does not exist.
    #[error(
        "--queue-services: unknown service(s) {0:?}: use sqs, beanstalkd, redis, rabbitmq, nats"
    )]
    QueueServices(Vec<String>),
    /// No Kubernetes configuration could be loaded.
    #[error("loading the Kubernetes configuration: {0}")]
    KubeConfig(String),
    /// The runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The controller failed.
    #[error(transparent)]
    Controller(#[from] wpa_controller::Error),
}

impl RunArgs {
    /// The controller configuration these flags describe.
    /// Fields the controller may gain keep their defaults.
    #[must_use]
    #[allow(clippy::needless_update)]
    pub(crate) fn controller_config(&self) -> ControllerConfig {
        ControllerConfig {
            namespace: Some(self.namespace.clone()).filter(|ns| !ns.is_empty()),
            resync_period: self.resync_period,
            wpa_threads: self.wpa_threads.max(1),
            default_max_disruption: self.defaults.wpa_default_max_disruption,
            scale_down_delay: self.defaults.scale_down_delay_after_last_scale_activity,
            api_qps: self.k8s_api_qps,
            api_burst: self.k8s_api_burst,
            instance: self.identity(),
            ..ControllerConfig::default()
        }
    }

    /// `--queue-services`, split.
    #[must_use]
    pub(crate) fn queue_services(&self) -> Vec<String> {
        cli::comma_list(&self.queue_services)
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
    pub(crate) fn leader_election(&self) -> Option<LeaderElectionConfig> {
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
}

/// The queue adapters enabled by `--queue-services`.
struct Queues {
    /// The enabled services but SQS, with their poll schedules.
    enabled: Vec<(Service, PollerConfig)>,
    sqs: Option<(wpa_sqs::SqsClients, PollerConfig)>,
    /// The flag-set options of the other adapters.
    adapters: queues::Adapters,
}

impl SourceFactory for Queues {
    fn subscribe(&self, registry: &Registry, uri: &str) -> Result<Subscription, String> {
        let service = Service::of_uri(uri)
            .ok_or_else(|| format!("unsupported queue URI: expected {URI_FORMS}"))?;
        if service == Service::Sqs {
            let (clients, config) = self
                .sqs
                .as_ref()
                .ok_or("sqs is not enabled (--queue-services)")?;
            return registry
                .subscribe(uri, *config, None, || clients.queue(uri))
                .map_err(|e| e.to_string());
        }
        let config = self
            .enabled
            .iter()
            .find(|(enabled, _)| *enabled == service)
            .map(|(_, config)| *config)
            .ok_or_else(|| format!("{} is not enabled (--queue-services)", service.name()))?;
        if service == Service::Beanstalkd {
            let address: BeanstalkUri = uri
                .parse()
                .map_err(|e: wpa_beanstalkd::Error| e.to_string())?;
            return registry
                .subscribe(uri, config, None, || {
                    Ok::<_, Infallible>(BeanstalkQueue::new(address))
                })
                .map_err(|never| match never {});
        }
        queues::subscribe_other(service, &self.adapters, registry, uri, config, None)
    }
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    let metrics = Arc::new(Metrics::default());
    args.log.init(Some(LogCounter(Arc::clone(&metrics))));
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)
        .and_then(|runtime| runtime.block_on(serve(args, metrics)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            if !tracing::enabled!(tracing::Level::ERROR) {
                // Logging is off (RUST_LOG): still say why.
                eprintln!("workerpodautoscaler run: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The adapters, the client, the HTTP endpoints, then the controller until
/// SIGTERM.
async fn serve(args: &RunArgs, metrics: Arc<Metrics>) -> Result<(), RunError> {
    let services = args.queue_services();
    let unknown: Vec<String> = services
        .iter()
        .filter(|s| Service::named(s).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(RunError::QueueServices(unknown));
    }
    let services: Vec<Service> = services.iter().filter_map(|s| Service::named(s)).collect();
    let config = args.controller_config();
    let sqs = if services.contains(&Service::Sqs) {
        // The arrival rate is measured (CloudWatch, cached 60 s per queue)
        // only while a WPA with secondsToProcessOneJob watches the queue:
        // the controller asks for it per poll.
        let options = args.queue.sqs_options(false);
        Some((
            wpa_sqs::SqsClients::new(options).await,
            args.queue.sqs_poller(),
        ))
    } else {
        None
    };
    let queues = Queues {
        enabled: services
            .iter()
            .filter(|s| **s != Service::Sqs)
            .map(|s| (*s, args.queue.poll.poller(*s)))
            .collect(),
        sqs,
        adapters: args.queue.adapters(),
    };
    let client = client(args).await?;
    let health = Arc::new(Health::default());
    let shutdown = cli::signal::shutdown();
    let (address, http) = wpa_controller::serve_http(
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
    let result = wpa_controller::run(
        client,
        config,
        Arc::new(queues),
        metrics,
        health,
        args.leader_election(),
        shutdown,
    )
    .await;
    let _ = http.await;
    tracing::info!("stopped");
    result.map_err(RunError::from)
}

/// The client of `--kube-config`, else of the environment (in-cluster, or
/// `~/.kube/config`).
async fn client(args: &RunArgs) -> Result<kube::Client, RunError> {
    let config = match &args.kube_config {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| RunError::KubeConfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| RunError::KubeConfig(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| RunError::KubeConfig(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| RunError::KubeConfig(e.to_string()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use wpa_core::MaxDisruption;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn defaults_are_the_references() {
        let args = Cli::try_parse_from(["run"]).unwrap().run;
        assert_eq!(args.resync_period, Duration::from_secs(20));
        assert_eq!(args.wpa_threads, 10);
        assert_eq!(
            args.defaults.wpa_default_max_disruption,
            MaxDisruption::Percent(100)
        );
        assert_eq!(args.queue.aws_regions(), ["ap-south-1", "ap-southeast-1"]);
        assert_eq!(args.kube_config, None);
        for interval in [
            args.queue.poll.sqs_short_poll_interval,
            args.queue.poll.sqs_long_poll_interval,
            args.queue.poll.beanstalk_short_poll_interval,
            args.queue.poll.beanstalk_long_poll_interval,
        ] {
            assert_eq!(interval, Duration::from_secs(20));
        }
        assert_eq!(args.queue.sqs_endpoint, None);
        assert_eq!(args.queue_services(), ["sqs", "beanstalkd"]);
        assert_eq!(args.metrics_port, ":8787");
        assert!((args.k8s_api_qps - 5.0).abs() < f64::EPSILON);
        assert_eq!(args.k8s_api_burst, 10);
        assert_eq!(args.namespace, "");
        assert_eq!(
            args.defaults.scale_down_delay_after_last_scale_activity,
            Duration::from_secs(600)
        );
        assert_eq!(args.log.verbosity, 0);
        assert_eq!(args.log.log_format, cli::LogFormat::Text);
        assert!(args.leader_elect);
        let config = args.controller_config();
        assert_eq!(config.namespace, None);
        assert_eq!(config.resync_period, Duration::from_secs(20));
        assert_eq!(config.default_max_disruption, MaxDisruption::Percent(100));
        assert_eq!(config.scale_down_delay, Duration::from_secs(600));
        assert_eq!(args.queue.sqs_options(false).endpoint, None);
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
            "--sqs-short-poll-interval",
            "5",
            "--scale-down-delay-after-last-scale-activity=300",
        ])
        .unwrap()
        .run;
        assert_eq!(args.resync_period, Duration::from_secs(30));
        assert_eq!(args.log.verbosity, 2);
        assert!(!args.leader_elect);
        assert!(args.leader_election().is_none());
        let config = args.controller_config();
        assert_eq!(config.namespace.as_deref(), Some("jobs"));
        assert_eq!(config.default_max_disruption, MaxDisruption::Percent(25));
        assert_eq!(config.scale_down_delay, Duration::from_secs(300));
        assert_eq!(args.queue.sqs_poller().short_poll, Duration::from_secs(5));
        assert!(args.log.filter().starts_with("debug"));
        assert!(
            Cli::try_parse_from(["run", "--leader-elect"])
                .unwrap()
                .run
                .leader_elect
        );
    }

    #[test]
    fn durations_also_take_units() {
        let args = Cli::try_parse_from([
            "run",
            "--resync-period=1m",
            "--beanstalk-long-poll-interval=10s",
            "--scale-down-delay-after-last-scale-activity=10m",
        ])
        .unwrap()
        .run;
        assert_eq!(args.resync_period, Duration::from_secs(60));
        assert_eq!(
            args.queue.beanstalk_poller().long_poll,
            Duration::from_secs(10)
        );
        assert_eq!(
            args.controller_config().scale_down_delay,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn the_sqs_endpoint_reaches_the_sqs_options() {
        let args = Cli::try_parse_from(["run", "--sqs-endpoint", "http://127.0.0.1:5000"])
            .unwrap()
            .run;
        let options = args.queue.sqs_options(false);
        assert_eq!(options.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(options.regions, ["ap-south-1", "ap-southeast-1"]);
        assert!(!options.arrival_rate);
    }

    #[test]
    fn the_nkey_seed_file_reaches_the_nats_options() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().run.queue.adapters();
        let set = parse(&["run", "--nats-nkey-seed-file", "/etc/nats/user.nk"]);
        assert_eq!(
            set.nats.client.nkey_seed_file.as_deref(),
            Some(std::path::Path::new("/etc/nats/user.nk"))
        );
        assert_eq!(parse(&["run"]).nats.client.nkey_seed_file, None);
        // An empty path is refused at start, as a bad flag value.
        assert!(Cli::try_parse_from(["run", "--nats-nkey-seed-file="]).is_err());
    }

    #[test]
    fn the_credentials_file_reaches_the_nats_options_and_excludes_a_seed_file() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.run.queue.adapters());
        let set = parse(&["run", "--nats-credentials-file", "/etc/nats/user.creds"]).unwrap();
        assert_eq!(
            set.nats.client.credentials_file.as_deref(),
            Some(std::path::Path::new("/etc/nats/user.creds"))
        );
        assert_eq!(set.nats.client.nkey_seed_file, None);
        assert_eq!(parse(&["run"]).unwrap().nats.client.credentials_file, None);
        assert!(parse(&["run", "--nats-credentials-file="]).is_err());
        // One way to sign in: both files is a start-up error naming them.
        let both = parse(&[
            "run",
            "--nats-credentials-file=/etc/nats/user.creds",
            "--nats-nkey-seed-file=/etc/nats/user.nk",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            both.contains("--nats-credentials-file") && both.contains("--nats-nkey-seed-file"),
            "{both}"
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
            checked, 29,
            "the 16 reference flags (with -v), 3 for leader election, --sqs-endpoint, --log-format, \
             a poll pair for each of redis, rabbitmq and nats, --nats-nkey-seed-file, \
             --nats-credentials-file"
        );
    }

    #[test]
    fn bad_flag_values_are_refused_with_the_flag_name() {
        let error = Cli::try_parse_from(["run", "--wpa-default-max-disruption=abc"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--wpa-default-max-disruption")
                && error.contains("maxDisruption \"abc\""),
            "{error}"
        );
        for flag in [
            "--resync-period",
            "--sqs-short-poll-interval",
            "--sqs-long-poll-interval",
            "--beanstalk-short-poll-interval",
            "--beanstalk-long-poll-interval",
        ] {
            for value in ["0", "-1", "soon"] {
                let error = Cli::try_parse_from(["run", flag, value])
                    .unwrap_err()
                    .to_string();
                assert!(error.contains(flag), "{flag} {value}: {error}");
            }
        }
        assert!(Cli::try_parse_from(["run", "--log-format=xml"]).is_err());
    }
}
