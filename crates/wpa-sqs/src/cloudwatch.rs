//! Arrival rate and idleness from CloudWatch `GetMetricData`, cached.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};

use crate::{Error, MetricWindow};

/// The CloudWatch side of one queue: `AWS/SQS` metrics with the
/// `QueueName` dimension, each answer reused for a cache TTL.
///
/// Times are arguments, so tests (and callers) decide what "now" is.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
    queue_url: String,
    queue_name: String,
    arrival_rate_window: MetricWindow,
    idle_window: MetricWindow,
    ttl: Duration,
    sent: Option<(SystemTime, f64)>,
    received: Option<(SystemTime, f64)>,
}

/// CloudWatch's metric for messages sent to a queue.
pub const MESSAGES_SENT: &str = "NumberOfMessagesSent";
/// CloudWatch's metric for messages received from a queue.
pub const MESSAGES_RECEIVED: &str = "NumberOfMessagesReceived";

impl CloudWatchMetrics {
    /// Metrics of the queue `queue_name` (the last segment of its URL;
    /// `queue_url` only names the queue in errors).
    #[must_use]
    pub fn new(
        client: aws_sdk_cloudwatch::Client,
        queue_url: &str,
        queue_name: &str,
        arrival_rate_window: MetricWindow,
        idle_window: MetricWindow,
        ttl: Duration,
    ) -> Self {
        CloudWatchMetrics {
            client,
            queue_url: queue_url.to_owned(),
            queue_name: queue_name.to_owned(),
            arrival_rate_window,
            idle_window,
            ttl,
            sent: None,
            received: None,
        }
    }

    /// The arrival-rate window.
    #[must_use]
    pub fn arrival_rate_window(&self) -> MetricWindow {
        self.arrival_rate_window
    }

    /// Messages sent per minute: the mean of the per-period sums of
    /// `NumberOfMessagesSent` over the arrival-rate window, scaled to one
    /// minute (0 when CloudWatch has no data points). With the default
    /// 60 s period this is exactly the reference's value.
    pub async fn messages_sent_per_minute(&mut self, now: SystemTime) -> Result<f64, Error> {
        if let Some(value) = fresh(self.sent, now, self.ttl) {
            return Ok(value);
        }
        let values = self
            .query(MESSAGES_SENT, self.arrival_rate_window, now)
            .await?;
        let per_minute = crate::answer::sent_per_minute(&values, self.arrival_rate_window.period);
        self.sent = Some((now, per_minute));
        Ok(per_minute)
    }

    /// Messages received over the idleness window (the sum of
    /// `NumberOfMessagesReceived`): 0 means the workers received nothing,
    /// i.e. they are all idle.
    pub async fn messages_received(&mut self, now: SystemTime) -> Result<f64, Error> {
        if let Some(value) = fresh(self.received, now, self.ttl) {
            return Ok(value);
        }
        let values = self.query(MESSAGES_RECEIVED, self.idle_window, now).await?;
        let sum = crate::answer::received(&values);
        self.received = Some((now, sum));
        Ok(sum)
    }

    /// Forgets the cached answers.
    pub fn clear_cache(&mut self) {
        self.sent = None;
        self.received = None;
    }

    async fn query(
        &self,
        metric_name: &str,
        window: MetricWindow,
        now: SystemTime,
    ) -> Result<Vec<f64>, Error> {
        let start = now
            .checked_sub(window.start_ago)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let end = now
            .checked_sub(window.end_ago)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let period = i32::try_from(window.period.as_secs().max(1)).unwrap_or(60);
        let query = MetricDataQuery::builder()
            .id("m1")
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("AWS/SQS")
                            .metric_name(metric_name)
                            .dimensions(
                                Dimension::builder()
                                    .name("QueueName")
                                    .value(&self.queue_name)
                                    .build(),
                            )
                            .build(),
                    )
                    .period(period)
                    .stat("Sum")
                    .build(),
            )
            .return_data(true)
            .build();
        let output = self
            .client
            .get_metric_data()
            .start_time(DateTime::from(start))
            .end_time(DateTime::from(end))
            .metric_data_queries(query)
            .send()
            .await
            .map_err(|e| Error::from_sdk(&self.queue_url, "GetMetricData", e))?;
        let results = output.metric_data_results();
        if results.len() > 1 {
            return Err(Error::InvalidResponse {
                queue: self.queue_url.clone(),
                operation: "GetMetricData",
                detail: format!("expected one metric result, got {}", results.len()),
            });
        }
        let values: Vec<f64> = results
            .first()
            .map(|r| r.values().to_vec())
            .unwrap_or_default();
        if let Some(bad) = values.iter().find(|v| !v.is_finite() || **v < 0.0) {
            return Err(Error::InvalidResponse {
                queue: self.queue_url.clone(),
                operation: "GetMetricData",
                detail: format!("{metric_name} has the value {bad}"),
            });
        }
        Ok(values)
    }
}

fn fresh(cached: Option<(SystemTime, f64)>, now: SystemTime, ttl: Duration) -> Option<f64> {
    let (at, value) = cached?;
    let age = now.duration_since(at).ok()?;
    (age < ttl).then_some(value)
}
