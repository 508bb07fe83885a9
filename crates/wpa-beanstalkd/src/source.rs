//! The queue adapter: a beanstalkd tube as a [`QueueSource`] and a
//! [`QueueMetrics`].

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant};

use wpa_core::{QueueMetrics, QueueSnapshot};
use wpa_poller::{PollRequest, QueueSource};

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

/// Arrival rate from successive `total-jobs` counters.
///
/// Every poll records `(when, total-jobs)`. Samples are dropped from the
/// front as long as the next one is itself at least `window` old, so the
/// oldest sample kept is the newest one taken at least `window` ago (60 s
/// by default: 3 polls at the default 20 s interval). The rate is the
/// counter's rise from the oldest to the newest sample, per minute of
/// `max(span, window)`: over a full window it is the true average; before
/// that much history exists it counts nothing for the time not yet
/// observed, so that a burst seen over a few seconds is not extrapolated to
/// a whole minute (3 jobs in 1 s reads as 3 per minute, not 180). No rate
/// is reported before two samples. A counter that goes down (beanstalkd
/// drops an unused empty tube and recreates it later) restarts the window.
#[derive(Debug, Clone)]
pub struct ArrivalRate {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl ArrivalRate {
    /// An empty window.
    #[must_use]
    pub fn new(window: Duration) -> Self {
        ArrivalRate {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records a `total-jobs` reading taken at `at`.
    pub fn record(&mut self, at: Instant, total_jobs: u64) {
        if let Some(&(last_at, last_total)) = self.samples.back()
            && (total_jobs < last_total || at < last_at)
        {
            self.samples.clear();
        }
        self.samples.push_back((at, total_jobs));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|&(second, _)| at.duration_since(second) >= self.window)
        {
            self.samples.pop_front();
        }
    }

    /// Messages per minute over the window, if known yet.
    #[must_use]
    pub fn per_minute(&self) -> Option<f64> {
        let (&(first_at, first), &(last_at, last)) = (self.samples.front()?, self.samples.back()?);
        if self.samples.len() < 2 {
            return None;
        }
        let span = last_at.duration_since(first_at).max(self.window);
        if span.is_zero() {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let risen = (last - first) as f64;
        Some(risen * 60.0 / span.as_secs_f64())
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
    rate: ArrivalRate,
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
            rate: ArrivalRate::new(config.rate_window),
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
        let messages = stats.ready.saturating_add(stats.reserved);
        let messages = u32::try_from(messages).map_err(|_| Error::InvalidStat {
            field: "current-jobs-ready + current-jobs-reserved",
            value: messages.to_string(),
            max: u64::from(u32::MAX),
        })?;
        let idle = if stats.ready == 0 && stats.reserved == 0 && !woke {
            Some(
                u32::try_from(stats.waiting).map_err(|_| Error::InvalidStat {
                    field: "current-waiting",
                    value: stats.waiting.to_string(),
                    max: u64::from(u32::MAX),
                })?,
            )
        } else {
            None
        };
        self.rate.record(Instant::now(), stats.total_jobs);
        let snapshot = QueueSnapshot::new(if woke { messages.max(1) } else { messages })
            .with_idle_workers(idle);
        Ok(match self.rate.per_minute() {
            Some(rate) => snapshot.with_arrival_rate(rate).unwrap_or(snapshot),
            None => snapshot,
        })
    }

    async fn poll_once(&mut self, request: PollRequest) -> Result<QueueSnapshot, Error> {
        if request.wake_up {
            self.wake_up(request.long_poll).await
        } else {
            self.stats_snapshot().await
        }
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
