//! The queue adapter: a beanstalkd tube as a [`QueueSource`] and a
//! [`QueueMetrics`].

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use wpa_core::{QueueMetrics, QueueSnapshot};
use wpa_poller::{PollRequest, QueueSource};

use crate::answer::{ArrivalRate, snapshot};
use crate::client::{Client, ClientConfig};
use crate::stats::TubeStats;
use crate::{BeanstalkUri, Error};

/// Default window of the arrival rate: 60 s.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// Settings of a [`BeanstalkQueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Timeouts and reconnects of both connections.
    pub client: ClientConfig,
    /// Window of the arrival rate ([`ArrivalRate`]). Default 60 s.
    pub rate_window: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            client: ClientConfig::default(),
            rate_window: DEFAULT_RATE_WINDOW,
        }
    }
}

/// A beanstalkd tube, polled for the autoscaler.
///
/// Two connections: one for `stats-tube` (and `stats-job`/`release` after a
/// wake-up), one that only ever blocks in `reserve-with-timeout`, watching
/// just this tube.
///
/// - Snapshot (`stats-tube`): messages = `current-jobs-ready` +
///   `current-jobs-reserved`; idle workers = `current-waiting` when nothing
///   is ready or reserved, unknown otherwise; a tube that does not exist is
///   an empty queue; the arrival rate comes from [`ArrivalRate`].
/// - Wake-up ([`PollRequest::wake_up`]): `reserve-with-timeout` for the long
///   poll; a job reserved is looked up with `stats-job` and released at once
///   with its own priority and no delay (same id, same priority: its place
///   among its peers is unchanged), then a `stats-tube` completes the
///   snapshot, which counts at least that one message.
#[derive(Debug)]
pub struct BeanstalkQueue {
    uri: BeanstalkUri,
    stats: Client,
    waker: Client,
    waker_ready: bool,
    /// Whether the stats connection `use`s the tube (for `peek-ready`).
    uses_tube: bool,
    rate: ArrivalRate,
    /// The rate's time origin: tokio's clock, so paused tests control it.
    epoch: Instant,
}

impl BeanstalkQueue {
    /// An adapter with default settings; nothing is connected yet.
    #[must_use]
    pub fn new(uri: BeanstalkUri) -> Self {
        Self::with_config(uri, QueueConfig::default())
    }

    /// An adapter with the given settings; nothing is connected yet.
    #[must_use]
    pub fn with_config(uri: BeanstalkUri, config: QueueConfig) -> Self {
        let address = uri.address();
        BeanstalkQueue {
            stats: Client::new(address.clone(), config.client.clone()),
            waker: Client::new(address, config.client),
            waker_ready: false,
            uses_tube: false,
            rate: ArrivalRate::new(config.rate_window),
            epoch: Instant::now(),
            uri,
        }
    }

    /// The tube's URI.
    #[must_use]
    pub fn uri(&self) -> &BeanstalkUri {
        &self.uri
    }

    /// One `stats-tube` poll.
    pub async fn stats_snapshot(&mut self) -> Result<QueueSnapshot, Error> {
        let stats = self.stats.stats_tube(self.uri.tube()).await?;
        self.build(stats, false)
    }

    /// One wake-up poll: blocks up to `long_poll` (whole seconds) for a job,
    /// leaves any job it sees ready with its priority unchanged, and returns
    /// as soon as it saw one.
    pub async fn wake_up(&mut self, long_poll: Duration) -> Result<QueueSnapshot, Error> {
        let woke = self.reserve_and_release(long_poll).await?;
        match self.stats.stats_tube(self.uri.tube()).await {
            Ok(stats) => self.build(stats, woke),
            Err(error) if woke => {
                tracing::warn!(uri = %self.uri, %error, "stats-tube after a wake-up failed; reporting 1 message");
                Ok(QueueSnapshot::new(1))
            }
            Err(error) => Err(error),
        }
    }

    async fn reserve_and_release(&mut self, long_poll: Duration) -> Result<bool, Error> {
        if !self.waker_ready {
            self.waker.set_watched_tube(self.uri.tube().clone()).await?;
            self.waker_ready = true;
        }
        let seconds = u32::try_from(long_poll.as_secs()).unwrap_or(u32::MAX);
        let Some(job) = self.waker.reserve_with_timeout(seconds).await? else {
            return Ok(false);
        };
        let released = match self.waker.stats_job(job.id).await {
            Ok(Some(stats)) => self.waker.release(job.id, stats.priority, 0).await,
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = released {
            // Closing the connection makes the server put the job back,
            // priority unchanged.
            tracing::warn!(uri = %self.uri, job = job.id, %error, "release after wake-up failed; dropping the connection so that the server releases the job");
            self.waker.disconnect();
        }
        Ok(true)
    }

    fn build(&mut self, stats: Option<TubeStats>, woke: bool) -> Result<QueueSnapshot, Error> {
        let stats = stats.unwrap_or_default();
        self.rate.record(self.epoch.elapsed(), stats.total_jobs);
        snapshot(&stats, woke, self.rate.per_minute())
    }

    async fn poll_once(&mut self, request: PollRequest) -> Result<QueueSnapshot, Error> {
        if request.wake_up {
            return self.wake_up(request.long_poll).await;
        }
        let snapshot = self.stats_snapshot().await?;
        // Ready jobs: the messages that are not reserved.
        let ready = snapshot
            .in_flight()
            .is_some_and(|reserved| snapshot.messages() > reserved);
        if !(request.oldest_age && ready) {
            return Ok(snapshot);
        }
        Ok(match self.oldest_age().await? {
            Some(age) => snapshot.with_oldest_age(age),
            None => snapshot,
        })
    }

    /// The age of the job a worker would get next: `peek-ready` on the
    /// tube, then `stats-job` (two calls, made only when a wait-target WPA
    /// asks and jobs are ready). `None` if it was taken in between.
    async fn oldest_age(&mut self) -> Result<Option<Duration>, Error> {
        if !self.uses_tube {
            self.stats.set_used_tube(self.uri.tube().clone()).await?;
            self.uses_tube = true;
        }
        let Some(job) = self.stats.peek_ready().await? else {
            return Ok(None);
        };
        Ok(self
            .stats
            .stats_job(job.id)
            .await?
            .map(|stats| Duration::from_secs(stats.age)))
    }
}

impl QueueSource for BeanstalkQueue {
    type Error = Error;

    fn poll(
        &mut self,
        request: PollRequest,
    ) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        self.poll_once(request)
    }
}

/// A direct `stats-tube` poll per call (no wake-up, no schedule): for a
/// program that runs its own loop. The autoscaler itself goes through the
/// poller.
impl QueueMetrics for BeanstalkQueue {
    type Error = Error;

    fn snapshot(&mut self) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        self.stats_snapshot()
    }
}
