//! Amazon SQS queue adapter for the Worker Pod Autoscaler.
//!
//! [`SqsQueue`] implements [`wpa_poller::QueueSource`] (and
//! [`wpa_core::QueueMetrics`]) for one queue:
//!
//! - **One call per poll.** A short poll is one `GetQueueAttributes` call
//!   returning `ApproximateNumberOfMessages` (visible),
//!   `ApproximateNumberOfMessagesNotVisible` (in flight),
//!   `ApproximateNumberOfMessagesDelayed` and the `RedrivePolicy`. The
//!   backlog is visible + in flight, plus delayed when
//!   [`SqsOptions::count_delayed`] is set.
//! - **Idleness** as the reference: messages visible or in flight → unknown;
//!   otherwise all workers are idle when CloudWatch `NumberOfMessagesReceived`
//!   summed over [now-20 min, now-10 min] is 0, else none is. "All" is
//!   reported as it is ([`Idleness::AllIdle`], the core's type): one poller
//!   serves every autoscaler of a queue, and each decision resolves it
//!   against the replicas of its own target.
//! - **Arrival rate** (opt-in, as the reference only measures it when
//!   `secondsToProcessOneJob` is set): CloudWatch `NumberOfMessagesSent`,
//!   Sum per 60 s over [now-10 min, now-5 min], averaged per minute. Both
//!   CloudWatch answers are cached 60 s, and CloudWatch is not asked during
//!   wake-up polls (0 replicas). Windows and TTL are in [`SqsOptions`].
//! - **Wake-up from zero** ([`wpa_poller::PollRequest::wake_up`]): a
//!   long-poll `ReceiveMessage` with `VisibilityTimeout` 0 and at most one
//!   message returns as soon as a message arrives, and leaves it visible.
//!   But each receive raises the message's receive count, and a queue with
//!   a redrive policy moves a message to its dead-letter queue once that
//!   count exceeds `maxReceiveCount`. So the probe is used only on queues
//!   without a redrive policy or with `maxReceiveCount` >= 10
//!   ([`SqsOptions::probe_min_max_receive_count`]): a probe costs a message
//!   at most one receive in the usual case (the scale-up follows at once),
//!   and a few when several controllers probe the same queue or a scale-up
//!   fails; 10 keeps that under 10-30% of the delivery budget even then,
//!   while 1 to 9 (typical "retry a few times then DLQ" settings) would let
//!   the autoscaler eat a real retry or, at 1, divert the message outright.
//!   Below the threshold (or with an unreadable policy) the wake-up polls
//!   attributes once per long-poll interval instead, which never touches a
//!   message. The policy is read by every attribute poll and re-read at
//!   least every [`SqsOptions::redrive_policy_ttl`].
//! - **Every URL form** ([`QueueUrl`]): standard, FIFO, GovCloud, China,
//!   legacy `queue.amazonaws.com`, VPC endpoints; any host with an endpoint
//!   override. Clients per region are made up front for
//!   [`SqsOptions::regions`] and on demand for others ([`SqsClients`]).
//! - **Typed errors** ([`Error`], classified by [`Error::kind`] for backoff);
//!   nothing panics. CloudWatch failures do not fail a poll: the counts are
//!   returned, the rate keeps its last value and idleness is unknown.
//!
//! Credentials come from the SDK's default chain: environment variables,
//! shared config/credentials profiles, web identity (IRSA), ECS container
//! credentials and EC2 instance metadata (`credential_process` with the
//! `credentials-process` feature; SSO is not built in).
//!
//! ```no_run
//! # async fn demo() -> Result<(), wpa_sqs::Error> {
//! use wpa_poller::{PollRequest, QueueSource};
//! use wpa_sqs::{SqsClients, SqsOptions};
//!
//! let clients = SqsClients::new(SqsOptions::default()).await;
//! let mut queue = clients.queue("https://sqs.eu-west-1.amazonaws.com/123456789012/jobs")?;
//! let request = PollRequest { wake_up: false, short_poll: std::time::Duration::from_secs(20), long_poll: std::time::Duration::from_secs(20), arrival_rate: false, oldest_age: false };
//! let snapshot = queue.poll(request).await?;
//! println!("{} messages", snapshot.messages());
//! # Ok(()) }
//! ```

pub mod answer;
#[cfg(feature = "client")]
mod clients;
#[cfg(feature = "client")]
mod cloudwatch;
mod error;
mod options;
#[cfg(feature = "client")]
mod queue;
#[cfg(feature = "client")]
pub mod testing;
mod url;

pub use answer::QueueCounts;
#[cfg(feature = "client")]
pub use clients::{SqsClients, behavior_version};
#[cfg(feature = "client")]
pub use cloudwatch::{CloudWatchMetrics, MESSAGES_RECEIVED, MESSAGES_SENT};
pub use error::{Error, ErrorKind};
pub use options::{MetricWindow, SqsOptions};
#[cfg(feature = "client")]
pub use queue::{PollMethod, RedrivePolicy, SqsObservation, SqsQueue};
pub use url::{QueueUrl, UrlForm};
/// What a poll says about idleness: the core's type, re-exported.
pub use wpa_core::Idleness;
