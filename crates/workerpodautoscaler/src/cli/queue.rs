//! The queue flags: poll intervals (`run`, `watch`, `simulate`), AWS
//! regions and the SQS endpoint (`run`, `watch`), with the reference's
//! names, defaults and environment variables.

use std::time::Duration;

#[cfg(feature = "controller")]
use wpa_poller::PollerConfig;

use super::values::interval;

/// How the queues are polled.
#[cfg(feature = "controller")]
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct QueueArgs {
    #[command(flatten)]
    pub(crate) poll: PollArgs,
    /// AWS regions whose SQS clients are made up front, comma separated
    /// (a queue in another region gets a client on demand).
    #[arg(
        long,
        value_name = "REGIONS",
        env = "WORKERPODAUTOSCALER_AWS_REGIONS",
        default_value = "ap-south-1,ap-southeast-1"
    )]
    pub(crate) aws_regions: String,
    /// SQS endpoint override (an emulator, a proxy, a VPC endpoint); then
    /// any http(s)://host[:port]/<account>/<queue> URL is accepted, with the
    /// region from AWS_REGION or the first of --aws-regions.
    #[arg(long, value_name = "URL", env = "WORKERPODAUTOSCALER_SQS_ENDPOINT")]
    pub(crate) sqs_endpoint: Option<String>,
    /// A file holding a NATS user NKey seed (SU..., a mounted Secret): NATS
    /// queue URIs without user info authenticate with it. Read at each new
    /// connection.
    #[arg(
        long,
        value_name = "FILE",
        env = "WORKERPODAUTOSCALER_NATS_NKEY_SEED_FILE",
        conflicts_with = "nats_credentials_file"
    )]
    pub(crate) nats_nkey_seed_file: Option<std::path::PathBuf>,
    /// A NATS .creds file (a user JWT and its NKey seed, as nsc writes it,
    /// a mounted Secret), for servers in operator mode: NATS queue URIs
    /// without user info authenticate with it. Read at each new connection.
    #[arg(
        long,
        value_name = "FILE",
        env = "WORKERPODAUTOSCALER_NATS_CREDENTIALS_FILE"
    )]
    pub(crate) nats_credentials_file: Option<std::path::PathBuf>,
}

/// The poll intervals, two per queue service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub(crate) struct PollArgs {
    /// Seconds (or a duration: 20s, 1m) between two SQS short polls; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_SQS_SHORT_POLL_INTERVAL",
        default_value = "20",
        value_parser = interval,
        allow_negative_numbers = true
    )]
    pub(crate) sqs_short_poll_interval: Duration,
    /// Longest wait of one SQS wake-up poll (a long-poll ReceiveMessage at
    /// 0 replicas), in seconds; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_SQS_LONG_POLL_INTERVAL",
        default_value = "20",
        value_parser = interval,
        allow_negative_numbers = true
    )]
    pub(crate) sqs_long_poll_interval: Duration,
    /// Seconds between two beanstalkd short polls; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_BEANSTALK_SHORT_POLL_INTERVAL",
        default_value = "20",
        value_parser = interval,
        allow_negative_numbers = true
    )]
    pub(crate) beanstalk_short_poll_interval: Duration,
    /// Longest wait of one beanstalkd wake-up poll (reserve-with-timeout at
    /// 0 replicas), in seconds; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_BEANSTALK_LONG_POLL_INTERVAL",
        default_value = "20",
        value_parser = interval,
        allow_negative_numbers = true
    )]
    pub(crate) beanstalk_long_poll_interval: Duration,
    /// Seconds between two Redis short polls; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_REDIS_SHORT_POLL_INTERVAL",
        default_value = "20",
        value_parser = interval,
        allow_negative_numbers = true
    )]
    pub(crate) redis_short_poll_interval: Duration,
    /// Longest wait of one Redis wake-up poll (a blocking BLMOVE/XREAD or LLEN probes at 0 replicas), in seconds; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_REDIS_LONG_POLL_INTERVAL",
        default_value = "20",
        value_parser = interval,
        allow_negative_numbers = true
    )]
    pub(crate) redis_long_poll_interval: Duration,
    /// Seconds between two RabbitMQ short polls; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_RABBITMQ_SHORT_POLL_INTERVAL",
        default_value = "20",
        value_parser = interval,
        allow_negative_numbers = true
    )]
    pub(crate) rabbitmq_short_poll_interval: Duration,
    /// Longest wait of one RabbitMQ wake-up poll (queue.declare passive probes at 0 replicas), in seconds; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_RABBITMQ_LONG_POLL_INTERVAL",
        default_value = "20",
        value_parser = interval,
        allow_negative_numbers = true
    )]
    pub(crate) rabbitmq_long_poll_interval: Duration,
    /// Seconds between two NATS JetStream short polls; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_NATS_SHORT_POLL_INTERVAL",
        default_value = "20",
        value_parser = interval,
        allow_negative_numbers = true
    )]
    pub(crate) nats_short_poll_interval: Duration,
    /// Longest wait of one NATS JetStream wake-up poll (a core subscription to the stream's subjects at 0 replicas), in seconds; at least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_NATS_LONG_POLL_INTERVAL",
        default_value = "20",
        value_parser = interval,
        allow_negative_numbers = true
    )]
    pub(crate) nats_long_poll_interval: Duration,
}

impl PollArgs {
    /// Short and long poll of a simulated backend.
    #[must_use]
    pub(crate) fn for_backend(&self, backend: wpa_sim::Backend) -> (Duration, Duration) {
        match backend {
            wpa_sim::Backend::Sqs => self.intervals(true),
            wpa_sim::Backend::Beanstalkd => self.intervals(false),
            wpa_sim::Backend::RedisList => (
                self.redis_short_poll_interval,
                self.redis_long_poll_interval,
            ),
            wpa_sim::Backend::Rabbitmq => (
                self.rabbitmq_short_poll_interval,
                self.rabbitmq_long_poll_interval,
            ),
            wpa_sim::Backend::Nats => (self.nats_short_poll_interval, self.nats_long_poll_interval),
        }
    }

    /// Short and long poll of SQS (`sqs`) or beanstalkd.
    #[must_use]
    pub(crate) fn intervals(&self, sqs: bool) -> (Duration, Duration) {
        if sqs {
            (self.sqs_short_poll_interval, self.sqs_long_poll_interval)
        } else {
            (
                self.beanstalk_short_poll_interval,
                self.beanstalk_long_poll_interval,
            )
        }
    }
}

impl PollArgs {
    /// The poller schedule of Redis, RabbitMQ or NATS queues.
    #[cfg(feature = "controller")]
    #[must_use]
    pub(crate) fn poller(&self, service: crate::queues::Service) -> PollerConfig {
        use crate::queues::Service;
        let (short, long) = match service {
            Service::Sqs => self.intervals(true),
            Service::Beanstalkd => self.intervals(false),
            Service::Redis => (
                self.redis_short_poll_interval,
                self.redis_long_poll_interval,
            ),
            Service::Rabbitmq => (
                self.rabbitmq_short_poll_interval,
                self.rabbitmq_long_poll_interval,
            ),
            Service::Nats => (self.nats_short_poll_interval, self.nats_long_poll_interval),
        };
        PollerConfig::new(short, long)
    }
}

#[cfg(feature = "controller")]
impl QueueArgs {
    /// The poller schedule of SQS queues.
    #[must_use]
    pub(crate) fn sqs_poller(&self) -> PollerConfig {
        let (short, long) = self.poll.intervals(true);
        PollerConfig::new(short, long)
    }

    /// The poller schedule of beanstalkd tubes.
    #[must_use]
    pub(crate) fn beanstalk_poller(&self) -> PollerConfig {
        let (short, long) = self.poll.intervals(false);
        PollerConfig::new(short, long)
    }

    /// The adapters' options that come from flags (beyond the URI).
    #[must_use]
    pub(crate) fn adapters(&self) -> crate::queues::Adapters {
        let mut nats = wpa_nats::QueueConfig::default();
        nats.client
            .nkey_seed_file
            .clone_from(&self.nats_nkey_seed_file);
        nats.client
            .credentials_file
            .clone_from(&self.nats_credentials_file);
        crate::queues::Adapters { nats }
    }

    /// `--aws-regions`, split (empty entries dropped).
    #[must_use]
    pub(crate) fn aws_regions(&self) -> Vec<String> {
        super::comma_list(&self.aws_regions)
    }

    /// The SQS adapter's options for these flags; `arrival_rate`: whether
    /// every poll measures the rate (CloudWatch), or only those a
    /// subscriber asks it of.
    #[must_use]
    pub(crate) fn sqs_options(&self, arrival_rate: bool) -> wpa_sqs::SqsOptions {
        wpa_sqs::SqsOptions {
            endpoint: self.sqs_endpoint.clone().filter(|url| !url.is_empty()),
            regions: self.aws_regions(),
            arrival_rate,
            ..wpa_sqs::SqsOptions::default()
        }
    }
}
