//! Everything configurable about the SQS adapter, with the reference's
//! values as defaults.

use std::time::Duration;

/// A CloudWatch window relative to the time of the query:
/// `[now - start_ago, now - end_ago]`, in periods of `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricWindow {
    /// How far back the window starts.
    pub start_ago: Duration,
    /// How far back the window ends (CloudWatch SQS metrics arrive late:
    /// a window ending now would read too low).
    pub end_ago: Duration,
    /// The statistic's period (whole seconds, a multiple of 60 for SQS).
    pub period: Duration,
}

impl MetricWindow {
    /// How long the window is: `start_ago - end_ago` (zero if reversed).
    #[must_use]
    pub const fn length(&self) -> Duration {
        self.start_ago.saturating_sub(self.end_ago)
    }

    /// The reference's arrival-rate window: `NumberOfMessagesSent` over
    /// [now-10 min, now-5 min], Sum per 60 s, averaged per period.
    pub const ARRIVAL_RATE: MetricWindow = MetricWindow {
        start_ago: Duration::from_secs(10 * 60),
        end_ago: Duration::from_secs(5 * 60),
        period: Duration::from_secs(60),
    };

    /// The reference's idleness window: `NumberOfMessagesReceived` summed
    /// over [now-20 min, now-10 min].
    pub const IDLE: MetricWindow = MetricWindow {
        start_ago: Duration::from_secs(20 * 60),
        end_ago: Duration::from_secs(10 * 60),
        period: Duration::from_secs(60),
    };
}

/// Configuration of the SQS adapter.
///
/// Construct with struct update syntax from the defaults:
///
/// ```
/// let options = wpa_sqs::SqsOptions {
///     endpoint: Some("http://127.0.0.1:5000".into()),
///     regions: vec!["eu-west-1".into()],
///     ..wpa_sqs::SqsOptions::default()
/// };
/// assert_eq!(options.cloudwatch_cache_ttl.as_secs(), 60);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SqsOptions {
    /// Endpoint override for SQS (`--sqs-endpoint`): all SQS calls go there,
    /// and any `http(s)://host[:port]/<account>/<queue>` URL is accepted.
    /// The SDK's `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL` have the same
    /// effect when this is unset.
    pub endpoint: Option<String>,
    /// Endpoint override for CloudWatch. Unset: `endpoint` when that is set
    /// (emulators serve every service on one port), else the SDK's own
    /// resolution (`AWS_ENDPOINT_URL_CLOUDWATCH`, `AWS_ENDPOINT_URL`, AWS).
    pub cloudwatch_endpoint: Option<String>,
    /// `--aws-regions`: clients made up front; the first is the region of
    /// URLs that name none (after `AWS_REGION`). Queues in other regions
    /// get clients on demand.
    pub regions: Vec<String>,
    /// Count `ApproximateNumberOfMessagesDelayed` in the backlog (not done
    /// by the reference; the delayed count is always reported).
    pub count_delayed: bool,
    /// Always measure the arrival rate (CloudWatch `NumberOfMessagesSent`).
    /// Off (the default), it is measured only for polls that ask for it
    /// ([`wpa_poller::PollRequest::arrival_rate`]: while an autoscaler whose
    /// spec sets `secondsToProcessOneJob` watches the queue), as the
    /// reference does.
    pub arrival_rate: bool,
    /// Ask CloudWatch `NumberOfMessagesReceived` whether the workers of an
    /// empty queue are idle (the reference does). Off: idle stays unknown.
    pub idle_from_cloudwatch: bool,
    /// Window of the arrival rate. Default [`MetricWindow::ARRIVAL_RATE`].
    pub arrival_rate_window: MetricWindow,
    /// Window of the idleness query. Default [`MetricWindow::IDLE`].
    pub idle_window: MetricWindow,
    /// How long a CloudWatch answer is reused. Default 60 s (the reference).
    pub cloudwatch_cache_ttl: Duration,
    /// A wake-up probe (a ReceiveMessage with VisibilityTimeout 0) is used
    /// only on queues without a redrive policy or whose `maxReceiveCount`
    /// is at least this; other queues wake up by polling attributes.
    /// Default 10 (see the crate docs for why).
    pub probe_min_max_receive_count: u32,
    /// Interval of the attribute polls that replace the probe on guarded
    /// queues, at most the short-poll interval. `None` (default): the
    /// short-poll interval, so the first message is seen within one short
    /// poll, with no more calls than short polls make (at the default
    /// flags, short = long = 20 s: as many as a probed queue).
    pub guarded_wake_up_interval: Option<Duration>,
    /// How long a queue's `RedrivePolicy` is trusted before it is read
    /// again (it is refreshed for free by every attribute poll; this only
    /// matters while the queue sits empty at 0 replicas). Default 1 h.
    pub redrive_policy_ttl: Duration,
    /// Timeout of one attempt of a non-blocking call. Default 10 s.
    pub request_timeout: Duration,
    /// Attempts the SDK makes per call (its own retries, before the
    /// driver's backoff). Default 3.
    pub max_attempts: u32,
}

impl Default for SqsOptions {
    fn default() -> Self {
        SqsOptions {
            endpoint: None,
            cloudwatch_endpoint: None,
            regions: vec!["ap-south-1".into(), "ap-southeast-1".into()],
            count_delayed: false,
            arrival_rate: false,
            idle_from_cloudwatch: true,
            arrival_rate_window: MetricWindow::ARRIVAL_RATE,
            idle_window: MetricWindow::IDLE,
            cloudwatch_cache_ttl: Duration::from_secs(60),
            probe_min_max_receive_count: 10,
            guarded_wake_up_interval: None,
            redrive_policy_ttl: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(10),
            max_attempts: 3,
        }
    }
}
