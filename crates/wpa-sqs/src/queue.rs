//! One SQS queue: attribute polls, the guarded wake-up, CloudWatch metrics.

use std::time::{Duration, SystemTime};

use aws_sdk_sqs::types::QueueAttributeName;
use tokio::time::Instant;
use wpa_core::{Idleness, QueueSnapshot};
use wpa_poller::{Clock, PollRequest, QueueSource};

use crate::answer::{self, QueueCounts};
use crate::clients::timeouts;
use crate::{CloudWatchMetrics, Error, QueueUrl, SqsClients, SqsOptions};

/// SQS caps `WaitTimeSeconds` at 20.
const MAX_WAIT_SECONDS: u64 = 20;

/// A queue's dead-letter redrive policy, as far as the wake-up cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedrivePolicy {
    /// No redrive policy: receives never divert a message.
    None,
    /// Messages received more than `max_receive_count` times go to the
    /// dead-letter queue.
    MaxReceiveCount(u32),
    /// A policy that could not be read: treated as the strictest.
    Unreadable(String),
}

impl RedrivePolicy {
    /// Reads the `RedrivePolicy` attribute (JSON; `maxReceiveCount` may be a
    /// string or a number).
    #[must_use]
    pub fn parse(attribute: Option<&str>) -> RedrivePolicy {
        let Some(text) = attribute.filter(|t| !t.trim().is_empty()) else {
            return RedrivePolicy::None;
        };
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => return RedrivePolicy::Unreadable(format!("not JSON: {e}")),
        };
        let count = match value.get("maxReceiveCount") {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match count.and_then(|c| u32::try_from(c).ok()) {
            Some(count) => RedrivePolicy::MaxReceiveCount(count),
            None => RedrivePolicy::Unreadable(format!("no usable maxReceiveCount in {text}")),
        }
    }

    /// Whether a wake-up probe (one extra receive per message) is allowed
    /// under this policy with the given threshold.
    #[must_use]
    pub fn allows_probe(&self, min_max_receive_count: u32) -> bool {
        match self {
            RedrivePolicy::None => true,
            RedrivePolicy::MaxReceiveCount(count) => *count >= min_max_receive_count,
            RedrivePolicy::Unreadable(_) => false,
        }
    }
}

/// How a poll was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PollMethod {
    /// One GetQueueAttributes call (plus CloudWatch when due).
    Attributes,
    /// A wake-up probe: one long-poll ReceiveMessage with VisibilityTimeout
    /// 0 and at most one message, which stays visible.
    Probe,
    /// A wake-up on a queue whose redrive policy forbids probing: a wait,
    /// then one GetQueueAttributes call.
    GuardedAttributes,
}

/// Everything one poll of a queue learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsObservation {
    /// How the poll was made.
    pub method: PollMethod,
    /// The attribute counts (absent for a probe).
    pub counts: Option<QueueCounts>,
    /// The backlog the decision uses: visible + not visible (+ delayed if
    /// opted in); for a probe, the messages it saw (0 or 1).
    pub messages: u32,
    /// Messages sent per minute, if measured (the last good value is kept
    /// while CloudWatch fails).
    pub messages_sent_per_minute: Option<f64>,
    /// How long a window that rate counts (`arrival_rate_window`'s length).
    pub rate_window: Duration,
    /// What the poll says about the workers' idleness: unknown (messages
    /// visible or in flight, CloudWatch not asked or not answering, or a
    /// wake-up poll), none idle (messages received in the idleness window),
    /// or every worker idle (nothing visible, in flight or received in the
    /// window), however many run: the decision resolves it per WPA.
    pub idle: Idleness,
    /// The last CloudWatch error of this poll, if any (the poll itself
    /// still succeeds: counts matter more than metrics).
    pub cloudwatch_error: Option<Error>,
}

impl SqsObservation {
    /// The core's snapshot.
    #[must_use]
    pub fn snapshot(&self) -> QueueSnapshot {
        answer::snapshot(
            self.messages,
            self.counts.map(|counts| counts.not_visible),
            self.idle,
            self.messages_sent_per_minute,
            self.rate_window,
        )
    }
}

/// One SQS queue, polled by the [`wpa_poller`] driver.
#[derive(Debug)]
pub struct SqsQueue {
    url: QueueUrl,
    region: String,
    sqs: aws_sdk_sqs::Client,
    cloudwatch: Option<CloudWatchMetrics>,
    count_delayed: bool,
    arrival_rate: bool,
    idle_from_cloudwatch: bool,
    probe_min_max_receive_count: u32,
    guarded_wake_up_interval: Option<Duration>,
    redrive_policy_ttl: Duration,
    request_timeout: Duration,
    redrive: Option<(RedrivePolicy, Instant)>,
    last_rate: Option<f64>,
    /// The wall clock CloudWatch windows are computed from.
    clock: Clock,
}

impl SqsQueue {
    /// How long a window the arrival rate counts (the CloudWatch
    /// arrival-rate window's length).
    fn rate_window(&self) -> Duration {
        self.cloudwatch
            .as_ref()
            .map_or(Duration::ZERO, |cloudwatch| {
                cloudwatch.arrival_rate_window().length()
            })
    }

    /// Makes a queue from its URL: loads the default credential chain and
    /// makes clients for its region. To share clients between queues, make
    /// one [`SqsClients`] and call [`SqsClients::queue`] instead.
    pub async fn from_url(url: &str, options: &SqsOptions) -> Result<SqsQueue, Error> {
        SqsClients::new(options.clone()).await.queue(url)
    }

    /// Makes a queue from ready clients (tests pass mocked ones).
    #[must_use]
    pub fn from_parts(
        url: QueueUrl,
        region: String,
        sqs: aws_sdk_sqs::Client,
        cloudwatch: aws_sdk_cloudwatch::Client,
        options: &SqsOptions,
    ) -> SqsQueue {
        // Always there: a poll may ask for the rate even when the options
        // do not (`PollRequest::arrival_rate`). Making it calls nothing.
        let cloudwatch = Some(CloudWatchMetrics::new(
            cloudwatch,
            url.as_str(),
            url.name(),
            options.arrival_rate_window,
            options.idle_window,
            options.cloudwatch_cache_ttl,
        ));
        SqsQueue {
            url,
            region,
            sqs,
            cloudwatch,
            count_delayed: options.count_delayed,
            arrival_rate: options.arrival_rate,
            idle_from_cloudwatch: options.idle_from_cloudwatch,
            probe_min_max_receive_count: options.probe_min_max_receive_count,
            guarded_wake_up_interval: options.guarded_wake_up_interval,
            redrive_policy_ttl: options.redrive_policy_ttl,
            request_timeout: options.request_timeout,
            redrive: None,
            last_rate: None,
            clock: Clock::system(),
        }
    }

    /// Takes "now" for the CloudWatch windows from `clock` instead of the
    /// system's clock (the redrive-policy TTL follows tokio's clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The queue's URL.
    #[must_use]
    pub fn url(&self) -> &QueueUrl {
        &self.url
    }

    /// The region its clients call.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The redrive policy last read, if any.
    #[must_use]
    pub fn redrive_policy(&self) -> Option<&RedrivePolicy> {
        self.redrive.as_ref().map(|(policy, _)| policy)
    }

    /// Polls once, as the driver asks, and says everything it learnt.
    ///
    /// A wake-up poll is a probe only when the queue's redrive policy is
    /// known (read within `redrive_policy_ttl`) and allows it; with the
    /// policy unknown it is an attribute poll (which reads the policy), and
    /// on a guarded queue it waits and then polls attributes. No call made
    /// here deletes, hides or diverts a message.
    pub async fn observe(
        &mut self,
        request: PollRequest,
        now: SystemTime,
    ) -> Result<SqsObservation, Error> {
        // The rate is measured (and reported) when the options or the poll
        // ask for it.
        let rate = self.arrival_rate || request.arrival_rate;
        if !request.wake_up {
            return self
                .attributes(PollMethod::Attributes, true, rate, now)
                .await;
        }
        let policy = match &self.redrive {
            Some((policy, read_at)) if read_at.elapsed() < self.redrive_policy_ttl => {
                policy.clone()
            }
            _ => {
                return self
                    .attributes(PollMethod::Attributes, false, rate, now)
                    .await;
            }
        };
        if policy.allows_probe(self.probe_min_max_receive_count) {
            self.probe(request.long_poll, rate).await
        } else {
            // No probe: look at the attributes every short poll (no more
            // calls than short polls would make), never later than a
            // long poll would have returned.
            let wait = self
                .guarded_wake_up_interval
                .unwrap_or(request.short_poll)
                .min(request.short_poll)
                .min(request.long_poll);
            tokio::time::sleep(wait).await;
            let now = now.checked_add(wait).unwrap_or(now);
            self.attributes(PollMethod::GuardedAttributes, false, rate, now)
                .await
        }
    }

    /// One GetQueueAttributes call; CloudWatch too when `with_cloudwatch`
    /// (not in wake-up mode: at 0 replicas idleness means nothing, and the
    /// reference does not refresh the rate there either): the rate when
    /// `rate`, idleness when the queue is empty.
    async fn attributes(
        &mut self,
        method: PollMethod,
        with_cloudwatch: bool,
        rate: bool,
        now: SystemTime,
    ) -> Result<SqsObservation, Error> {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(self.url.as_str())
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| Error::from_sdk(self.url.as_str(), "GetQueueAttributes", e))?;
        let attributes = output.attributes();
        let get = |name: &QueueAttributeName| attributes.and_then(|a| a.get(name));
        let count = |name: QueueAttributeName| -> Result<u32, Error> {
            let text = get(&name).ok_or_else(|| Error::InvalidResponse {
                queue: self.url.as_str().to_owned(),
                operation: "GetQueueAttributes",
                detail: format!("{} is missing", name.as_str()),
            })?;
            answer::parse_count(text).ok_or_else(|| Error::InvalidResponse {
                queue: self.url.as_str().to_owned(),
                operation: "GetQueueAttributes",
                detail: format!("{} is {text:?}, not a count", name.as_str()),
            })
        };
        let counts = QueueCounts {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages)?,
            not_visible: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?,
            delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed)?,
        };
        let policy =
            RedrivePolicy::parse(get(&QueueAttributeName::RedrivePolicy).map(String::as_str));
        self.redrive = Some((policy, Instant::now()));

        let messages = answer::backlog(counts, self.count_delayed);
        let mut cloudwatch_error = None;
        let mut received = None;
        if let Some(cloudwatch) = self.cloudwatch.as_mut().filter(|_| with_cloudwatch) {
            if rate {
                match cloudwatch.messages_sent_per_minute(now).await {
                    Ok(rate) => self.last_rate = Some(rate),
                    Err(e) => {
                        tracing::warn!(queue = %self.url, error = %e, "arrival rate not refreshed; keeping the last value");
                        cloudwatch_error = Some(e);
                    }
                }
            }
            if self.idle_from_cloudwatch && answer::idleness_is_knowable(counts) {
                match cloudwatch.messages_received(now).await {
                    Ok(sum) => received = Some(sum),
                    Err(e) => {
                        tracing::warn!(queue = %self.url, error = %e, "idleness unknown");
                        cloudwatch_error = Some(e);
                    }
                }
            }
        }
        Ok(SqsObservation {
            method,
            counts: Some(counts),
            messages,
            messages_sent_per_minute: self.last_rate.filter(|_| rate),
            rate_window: self.rate_window(),
            idle: answer::idleness(counts, received),
            cloudwatch_error,
        })
    }

    /// A long-poll ReceiveMessage that leaves the message visible; the
    /// rate reported is the last measured, when `rate`.
    async fn probe(&mut self, long_poll: Duration, rate: bool) -> Result<SqsObservation, Error> {
        let wait = long_poll.as_secs().min(MAX_WAIT_SECONDS);
        let attempt = Duration::from_secs(wait).saturating_add(self.request_timeout);
        let output = self
            .sqs
            .receive_message()
            .queue_url(self.url.as_str())
            .max_number_of_messages(1)
            .visibility_timeout(0)
            .wait_time_seconds(i32::try_from(wait).unwrap_or(20))
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::new().timeout_config(timeouts(attempt)))
            .send()
            .await
            .map_err(|e| Error::from_sdk(self.url.as_str(), "ReceiveMessage", e))?;
        let received = u32::try_from(output.messages().len()).unwrap_or(u32::MAX);
        Ok(SqsObservation {
            method: PollMethod::Probe,
            counts: None,
            messages: received,
            messages_sent_per_minute: self.last_rate.filter(|_| rate),
            rate_window: self.rate_window(),
            idle: Idleness::Unknown,
            cloudwatch_error: None,
        })
    }
}

impl QueueSource for SqsQueue {
    type Error = Error;

    async fn poll(&mut self, request: PollRequest) -> Result<QueueSnapshot, Error> {
        let observation = self.observe(request, self.clock.now()).await?;
        Ok(observation.snapshot())
    }
}

impl wpa_core::QueueMetrics for SqsQueue {
    type Error = Error;

    /// A short poll (never a wake-up).
    async fn snapshot(&mut self) -> Result<QueueSnapshot, Error> {
        let request = PollRequest {
            wake_up: false,
            long_poll: Duration::ZERO,
            short_poll: Duration::ZERO,
            arrival_rate: false,
            oldest_age: false,
        };
        let observation = self.observe(request, self.clock.now()).await?;
        Ok(observation.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policies() {
        assert_eq!(RedrivePolicy::parse(None), RedrivePolicy::None);
        assert_eq!(RedrivePolicy::parse(Some("")), RedrivePolicy::None);
        assert_eq!(
            RedrivePolicy::parse(Some(
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":"3"}"#
            )),
            RedrivePolicy::MaxReceiveCount(3)
        );
        assert_eq!(
            RedrivePolicy::parse(Some(r#"{"deadLetterTargetArn":"x","maxReceiveCount":12}"#)),
            RedrivePolicy::MaxReceiveCount(12)
        );
        assert!(matches!(
            RedrivePolicy::parse(Some("{")),
            RedrivePolicy::Unreadable(_)
        ));
        assert!(matches!(
            RedrivePolicy::parse(Some(r#"{"maxReceiveCount":"x"}"#)),
            RedrivePolicy::Unreadable(_)
        ));
        assert!(RedrivePolicy::None.allows_probe(10));
        assert!(RedrivePolicy::MaxReceiveCount(10).allows_probe(10));
        assert!(!RedrivePolicy::MaxReceiveCount(9).allows_probe(10));
        assert!(!RedrivePolicy::Unreadable(String::new()).allows_probe(0));
    }
}
