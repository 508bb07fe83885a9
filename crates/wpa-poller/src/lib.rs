//! Polling driver shared by the queue adapters (beanstalkd, SQS).
//!
//! An adapter implements [`QueueSource`]: one poll of one queue. The
//! driver owns the schedule (short and long polls, backoff, staleness).

use std::future::Future;
use std::time::Duration;

use wpa_core::QueueSnapshot;

/// How the driver wants the next poll done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollRequest {
    /// The target runs 0 replicas and the last snapshot showed an empty
    /// queue: the source may block for up to `long_poll` waiting for the
    /// first message, and must return as soon as it sees one.
    pub wake_up: bool,
    /// The longest a wake-up poll may block (the `*-long-poll-interval`).
    pub long_poll: Duration,
}

/// One queue, polled by the driver.
pub trait QueueSource: Send + 'static {
    /// Why a poll failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Polls the queue once.
    fn poll(
        &mut self,
        request: PollRequest,
    ) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send;
}
