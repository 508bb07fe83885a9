//! The queue adapter: a Redis key layout as a [`QueueSource`] and a
//! [`QueueMetrics`].

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;
use tokio::time::Instant;
use wpa_core::{QueueMetrics, QueueSnapshot};
use wpa_poller::{PollRequest, QueueSource};

use crate::answer::{self, ArrivalRate, BullmqCounts, Reading, SidekiqWorker, StreamState};
use crate::client::{ClientConfig, Connection};
use crate::reply::{self, StreamId};
use crate::{Error, Layout, RedisUri, WakeUp};

/// Default window of the arrival rate: 60 s.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// Settings of a [`RedisQueue`].
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

/// A queue kept in Redis, polled for the autoscaler.
///
/// Two connections: one for the snapshot reads (one pipeline per poll,
/// two for the layouts that read per-worker keys), one that only blocks in
/// a wake-up (`BLMOVE key key RIGHT RIGHT` on a list, `XREAD BLOCK` on a
/// stream; see the crate docs). The numbers and their meaning per layout
/// are [`answer`]'s; the keys and commands are listed in the README.
///
/// A key that does not exist reads as an empty queue (`LLEN` of a missing
/// list is 0; a missing stream is empty, with no consumers); a key of
/// another type is [`Error::WrongType`].
#[derive(Debug)]
pub struct RedisQueue {
    uri: RedisUri,
    main: Connection,
    waker: Connection,
    rate: ArrivalRate,
    /// The rate's time origin: tokio's clock, so paused tests control it.
    epoch: Instant,
    /// Where a stream wake-up reads from: the group's last-delivered ID at
    /// the last read (`0-0` without a group).
    stream_from: StreamId,
}

fn pipeline() -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe
}

fn at<'a>(values: &'a [Value], index: usize, command: &'static str) -> Result<&'a Value, Error> {
    values.get(index).ok_or(Error::UnexpectedReply {
        command,
        reason: "fewer replies than commands",
        reply: String::new(),
    })
}

fn unix_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RedisQueue {
    /// An adapter with default settings; nothing is connected yet.
    #[must_use]
    pub fn new(uri: RedisUri) -> Self {
        Self::with_config(uri, QueueConfig::default())
    }

    /// An adapter with the given settings; nothing is connected yet.
    #[must_use]
    pub fn with_config(uri: RedisUri, config: QueueConfig) -> Self {
        RedisQueue {
            main: Connection::new(&uri, config.client.clone()),
            waker: Connection::new(&uri, config.client),
            rate: ArrivalRate::new(config.rate_window),
            epoch: Instant::now(),
            stream_from: StreamId::default(),
            uri,
        }
    }

    /// The queue's URI.
    #[must_use]
    pub fn uri(&self) -> &RedisUri {
        &self.uri
    }

    /// Connections established so far, both connections together (each
    /// reconnect counts one).
    #[must_use]
    pub fn connects(&self) -> u64 {
        self.main.connects() + self.waker.connects()
    }

    /// One short poll: the layout's reads, no waiting. `oldest_age`: also
    /// read the age of the message a worker gets next, where the layout
    /// tells it (a stream, Sidekiq, RQ, BullMQ; one or two more commands,
    /// only while messages wait).
    pub async fn read_snapshot(&mut self, oldest_age: bool) -> Result<QueueSnapshot, Error> {
        let reading = self.read(oldest_age).await?;
        self.build(&reading, false)
    }

    /// One wake-up poll: blocks up to `long_poll` for the first message,
    /// leaves every message where it was, and returns as soon as it saw
    /// one (see the crate docs for the mechanism of each layout).
    pub async fn wake_up(&mut self, long_poll: Duration) -> Result<QueueSnapshot, Error> {
        match (self.uri.wake_up(), self.uri.layout()) {
            (WakeUp::Poll { interval }, _) => self.wake_up_polling(long_poll, interval).await,
            (WakeUp::Block, Layout::Stream { .. }) => self.wake_up_stream(long_poll).await,
            (WakeUp::Block, _) => self.wake_up_list(long_poll).await,
        }
    }

    fn build(&mut self, reading: &Reading, woke: bool) -> Result<QueueSnapshot, Error> {
        match reading.added_total {
            Some(total) => self.rate.record(self.epoch.elapsed(), total),
            None => self.rate.reset(),
        }
        answer::snapshot(reading, woke, self.rate.per_minute())
    }

    /// The snapshot after a wake-up saw a message (`woke`) or timed out.
    async fn after_wake_up(&mut self, woke: bool) -> Result<QueueSnapshot, Error> {
        match self.read(false).await {
            Ok(reading) => self.build(&reading, woke),
            Err(error) if woke => {
                tracing::warn!(uri = %self.uri, %error, "read after a wake-up failed; reporting 1 message");
                Ok(QueueSnapshot::new(1))
            }
            Err(error) => Err(error),
        }
    }

    async fn wake_up_list(&mut self, long_poll: Duration) -> Result<QueueSnapshot, Error> {
        let Some(key) = self.uri.layout().waiting_lists().into_iter().next() else {
            return self.read_snapshot(false).await;
        };
        if long_poll.is_zero() {
            return self.read_snapshot(false).await;
        }
        // BLMOVE's timeout is in seconds; 0 would block forever.
        let seconds = long_poll.max(Duration::from_millis(1)).as_secs_f64();
        let mut pipe = pipeline();
        pipe.cmd("BLMOVE")
            .arg(&key)
            .arg(&key)
            .arg("RIGHT")
            .arg("RIGHT")
            .arg(format!("{seconds:.3}"));
        let values = self.waker.query(&pipe, "BLMOVE", long_poll).await?;
        let moved = self.check(at(&values, 0, "BLMOVE")?, "BLMOVE", &key, "list")?;
        self.after_wake_up(!matches!(moved, Value::Nil)).await
    }

    async fn wake_up_stream(&mut self, long_poll: Duration) -> Result<QueueSnapshot, Error> {
        let reading = self.read(false).await?;
        let snapshot = self.build(&reading, false)?;
        if snapshot.messages() > 0 || long_poll.is_zero() {
            return Ok(snapshot);
        }
        let key = self.uri.layout().name().to_owned();
        let ms = u64::try_from(long_poll.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut pipe = pipeline();
        pipe.cmd("XREAD")
            .arg("BLOCK")
            .arg(ms)
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(&key)
            .arg(self.stream_from.to_string());
        let values = self.waker.query(&pipe, "XREAD", long_poll).await?;
        let reply = self.check(at(&values, 0, "XREAD")?, "XREAD", &key, "stream")?;
        let woke = reply::xread_has_entries(reply)?;
        self.after_wake_up(woke).await
    }

    /// Probes the waiting keys every `interval` until one holds a message
    /// or `long_poll` passed, then reads the whole snapshot.
    async fn wake_up_polling(
        &mut self,
        long_poll: Duration,
        interval: Duration,
    ) -> Result<QueueSnapshot, Error> {
        let deadline = Instant::now() + long_poll;
        loop {
            let waiting = self.probe().await?;
            let now = Instant::now();
            if waiting || now >= deadline {
                return self.read_snapshot(false).await;
            }
            tokio::time::sleep(interval.min(deadline - now)).await;
        }
    }

    /// Whether a message waits, from the keys a message arrives in only:
    /// `LLEN` of the waiting lists (and BullMQ's `ZCARD prioritized`); a
    /// stream is read whole.
    async fn probe(&mut self) -> Result<bool, Error> {
        let lists = self.uri.layout().waiting_lists();
        let prioritized = match self.uri.layout() {
            Layout::Stream { .. } => return Ok(self.read_snapshot(false).await?.messages() > 0),
            Layout::Bullmq { queue, prefix } => Some(format!("{prefix}:{queue}:prioritized")),
            _ => None,
        };
        let mut pipe = pipeline();
        for list in &lists {
            pipe.cmd("LLEN").arg(list);
        }
        if let Some(key) = &prioritized {
            pipe.cmd("ZCARD").arg(key);
        }
        let values = self.main.query(&pipe, "LLEN", Duration::ZERO).await?;
        for (i, list) in lists.iter().enumerate() {
            if self.len(&values, i, "LLEN", list, "list")? > 0 {
                return Ok(true);
            }
        }
        match &prioritized {
            Some(key) => Ok(self.len(&values, lists.len(), "ZCARD", key, "sorted set")? > 0),
            None => Ok(false),
        }
    }

    /// An error reply turned into this crate's error, naming the key.
    fn check<'a>(
        &self,
        value: &'a Value,
        command: &'static str,
        key: &str,
        expected: &'static str,
    ) -> Result<&'a Value, Error> {
        let Some((code, detail)) = reply::server_error(value) else {
            return Ok(value);
        };
        Err(match code.as_str() {
            "WRONGTYPE" => Error::WrongType {
                key: key.to_owned(),
                expected,
                command,
            },
            "NOPERM" => Error::Permission {
                address: self.main.address().to_owned(),
                command,
                key: key.to_owned(),
                detail,
            },
            _ => Error::Server {
                address: self.main.address().to_owned(),
                command,
                key: key.to_owned(),
                code,
                detail,
            },
        })
    }

    fn len(
        &self,
        values: &[Value],
        index: usize,
        command: &'static str,
        key: &str,
        expected: &'static str,
    ) -> Result<u64, Error> {
        reply::count(
            self.check(at(values, index, command)?, command, key, expected)?,
            command,
        )
    }

    async fn read(&mut self, oldest_age: bool) -> Result<Reading, Error> {
        match self.uri.layout().clone() {
            Layout::List { key, processing } => self.read_list(&key, &processing).await,
            Layout::Stream {
                key,
                group,
                consumer_idle,
                lag_scan,
            } => {
                self.read_stream(&key, &group, consumer_idle, lag_scan, oldest_age)
                    .await
            }
            Layout::Celery {
                prefix, unacked, ..
            } => self.read_celery(&prefix, unacked).await,
            Layout::Sidekiq { queue } => self.read_sidekiq(&queue, oldest_age).await,
            Layout::Rq { queue } => self.read_rq(&queue, oldest_age).await,
            Layout::Bullmq { queue, prefix } => self.read_bullmq(&prefix, &queue, oldest_age).await,
        }
    }

    /// `LLEN key` and `LLEN` of each processing list.
    async fn read_list(&mut self, key: &str, processing: &[String]) -> Result<Reading, Error> {
        let mut pipe = pipeline();
        pipe.cmd("LLEN").arg(key);
        for list in processing {
            pipe.cmd("LLEN").arg(list);
        }
        let values = self.main.query(&pipe, "LLEN", Duration::ZERO).await?;
        let waiting = self.len(&values, 0, "LLEN", key, "list")?;
        let mut held = 0_u64;
        for (i, list) in processing.iter().enumerate() {
            held = held.saturating_add(self.len(&values, i + 1, "LLEN", list, "list")?);
        }
        Ok(answer::list(
            waiting,
            (!processing.is_empty()).then_some(held),
        ))
    }

    /// `XINFO STREAM`, `XINFO GROUPS`, `XINFO CONSUMERS` (and `TIME` for
    /// the age) in one pipeline; an `XRANGE` after it when Redis reports no
    /// lag, or for the age of the first undelivered entry.
    async fn read_stream(
        &mut self,
        key: &str,
        group_name: &str,
        consumer_idle: Duration,
        lag_scan: u32,
        oldest_age: bool,
    ) -> Result<Reading, Error> {
        let mut pipe = pipeline();
        pipe.cmd("XINFO").arg("STREAM").arg(key);
        pipe.cmd("XINFO").arg("GROUPS").arg(key);
        pipe.cmd("XINFO").arg("CONSUMERS").arg(key).arg(group_name);
        if oldest_age {
            pipe.cmd("TIME");
        }
        let values = self.main.query(&pipe, "XINFO", Duration::ZERO).await?;
        let stream_value = at(&values, 0, "XINFO")?;
        if reply::is_no_such_key(stream_value) {
            self.stream_from = StreamId::default();
            return Ok(answer::stream(&StreamState {
                stream: None,
                group: None,
                consumers: &[],
                scanned: None,
                consumer_idle,
                oldest_age: None,
            }));
        }
        let stream = reply::stream(self.check(stream_value, "XINFO", key, "stream")?)?;
        let groups =
            reply::groups(self.check(at(&values, 1, "XINFO")?, "XINFO", key, "stream")?)?;
        let group = groups.into_iter().find(|g| g.name == group_name);
        let consumers_value = at(&values, 2, "XINFO")?;
        let consumers = if reply::is_no_group(consumers_value) || group.is_none() {
            Vec::new()
        } else {
            reply::consumers(self.check(consumers_value, "XINFO", key, "stream")?)?
        };
        let now_ms = match oldest_age {
            true => Some(reply::time_ms(self.check(
                at(&values, 3, "TIME")?,
                "TIME",
                "",
                "",
            )?)?),
            false => None,
        };
        self.stream_from = group
            .as_ref()
            .map(|g| g.last_delivered_id)
            .unwrap_or_default();
        let (scanned, first) = match &group {
            Some(g) if g.lag.is_none() => {
                let ids = self
                    .entries_after(key, g.last_delivered_id, lag_scan)
                    .await?;
                (
                    Some(u64::try_from(ids.len()).unwrap_or(u64::MAX)),
                    ids.first().copied(),
                )
            }
            Some(g) if oldest_age && g.lag.is_some_and(|lag| lag > 0) => {
                let ids = self.entries_after(key, g.last_delivered_id, 1).await?;
                (None, ids.first().copied())
            }
            Some(_) => (None, None),
            None => (None, stream.first_entry_id),
        };
        let age = match (now_ms, first) {
            (Some(now), Some(id)) => Some(answer::age(now, id.ms)),
            _ => None,
        };
        Ok(answer::stream(&StreamState {
            stream: Some(&stream),
            group: group.as_ref(),
            consumers: &consumers,
            scanned,
            consumer_idle,
            oldest_age: age,
        }))
    }

    /// `XRANGE key (<after> + COUNT <count>`: the IDs of the first entries
    /// after `after`.
    async fn entries_after(
        &mut self,
        key: &str,
        after: StreamId,
        count: u32,
    ) -> Result<Vec<StreamId>, Error> {
        let mut pipe = pipeline();
        pipe.cmd("XRANGE")
            .arg(key)
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(count);
        let values = self.main.query(&pipe, "XRANGE", Duration::ZERO).await?;
        reply::entry_ids(self.check(at(&values, 0, "XRANGE")?, "XRANGE", key, "stream")?)
    }

    /// `LLEN` of each priority list and `HLEN <prefix>unacked`.
    async fn read_celery(&mut self, prefix: &str, unacked: bool) -> Result<Reading, Error> {
        let lists = self.uri.layout().waiting_lists();
        let unacked_key = format!("{prefix}unacked");
        let mut pipe = pipeline();
        for list in &lists {
            pipe.cmd("LLEN").arg(list);
        }
        if unacked {
            pipe.cmd("HLEN").arg(&unacked_key);
        }
        let values = self.main.query(&pipe, "LLEN", Duration::ZERO).await?;
        let mut waiting = 0_u64;
        for (i, list) in lists.iter().enumerate() {
            waiting = waiting.saturating_add(self.len(&values, i, "LLEN", list, "list")?);
        }
        let held = if unacked {
            Some(self.len(&values, lists.len(), "HLEN", &unacked_key, "hash")?)
        } else {
            None
        };
        Ok(answer::celery(waiting, held))
    }

    /// `LLEN queue:<q>`, `SMEMBERS processes` (and `LINDEX queue:<q> -1`
    /// for the age); then `HMGET <identity> info busy beat` and `HVALS
    /// <identity>:work` per process, in one pipeline.
    async fn read_sidekiq(&mut self, queue: &str, oldest_age: bool) -> Result<Reading, Error> {
        let list = format!("queue:{queue}");
        let mut pipe = pipeline();
        pipe.cmd("LLEN").arg(&list);
        pipe.cmd("SMEMBERS").arg("processes");
        if oldest_age {
            pipe.cmd("LINDEX").arg(&list).arg(-1);
        }
        let values = self.main.query(&pipe, "LLEN", Duration::ZERO).await?;
        let waiting = self.len(&values, 0, "LLEN", &list, "list")?;
        let identities = reply::members(
            self.check(at(&values, 1, "SMEMBERS")?, "SMEMBERS", "processes", "set")?,
            "SMEMBERS",
        )?;
        let next_job = match oldest_age {
            true => reply::optional_text(
                self.check(at(&values, 2, "LINDEX")?, "LINDEX", &list, "list")?,
                "LINDEX",
            )?,
            false => None,
        };
        let mut workers = Vec::with_capacity(identities.len());
        if !identities.is_empty() {
            let mut pipe = pipeline();
            for identity in &identities {
                pipe.cmd("HMGET")
                    .arg(identity)
                    .arg("info")
                    .arg("busy")
                    .arg("beat");
                pipe.cmd("HVALS").arg(format!("{identity}:work"));
            }
            let values = self.main.query(&pipe, "HMGET", Duration::ZERO).await?;
            for (i, identity) in identities.iter().enumerate() {
                let process = reply::sidekiq_process(self.check(
                    at(&values, 2 * i, "HMGET")?,
                    "HMGET",
                    identity,
                    "hash",
                )?)?;
                let work_key = format!("{identity}:work");
                let work_queues = reply::sidekiq_work_queues(self.check(
                    at(&values, 2 * i + 1, "HVALS")?,
                    "HVALS",
                    &work_key,
                    "hash",
                )?)?;
                workers.push(SidekiqWorker {
                    process,
                    work_queues,
                });
            }
        }
        let now = unix_ms(SystemTime::now());
        let mut reading = answer::sidekiq(waiting, queue, &workers, now);
        if waiting > 0 {
            reading.oldest_age = next_job
                .as_deref()
                .and_then(reply::sidekiq_enqueued_ms)
                .map(|stamp| answer::age(now, stamp));
        }
        Ok(reading)
    }

    /// `LLEN rq:queue:<q>`, `LLEN rq:queue:<q>:intermediate`, `ZCOUNT
    /// rq:wip:<q> (<now> +inf`, `SMEMBERS rq:workers:<q>` (and `LINDEX
    /// rq:queue:<q> 0` for the age); then `HGET <worker> state` per worker
    /// (and `HGET rq:job:<id> enqueued_at`).
    async fn read_rq(&mut self, queue: &str, oldest_age: bool) -> Result<Reading, Error> {
        let list = format!("rq:queue:{queue}");
        let intermediate = format!("{list}:intermediate");
        let started = format!("rq:wip:{queue}");
        let registered = format!("rq:workers:{queue}");
        let now = SystemTime::now();
        let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut pipe = pipeline();
        pipe.cmd("LLEN").arg(&list);
        pipe.cmd("LLEN").arg(&intermediate);
        pipe.cmd("ZCOUNT")
            .arg(&started)
            .arg(format!("({now_s}"))
            .arg("+inf");
        pipe.cmd("SMEMBERS").arg(&registered);
        if oldest_age {
            pipe.cmd("LINDEX").arg(&list).arg(0);
        }
        let values = self.main.query(&pipe, "LLEN", Duration::ZERO).await?;
        let waiting = self.len(&values, 0, "LLEN", &list, "list")?;
        let moving = self.len(&values, 1, "LLEN", &intermediate, "list")?;
        let running = self.len(&values, 2, "ZCOUNT", &started, "sorted set")?;
        let workers = reply::members(
            self.check(at(&values, 3, "SMEMBERS")?, "SMEMBERS", &registered, "set")?,
            "SMEMBERS",
        )?;
        let next_job = match oldest_age && waiting > 0 {
            true => reply::optional_text(
                self.check(at(&values, 4, "LINDEX")?, "LINDEX", &list, "list")?,
                "LINDEX",
            )?,
            false => None,
        };
        let mut states = Vec::with_capacity(workers.len());
        let mut enqueued = None;
        if !workers.is_empty() || next_job.is_some() {
            let mut pipe = pipeline();
            for worker in &workers {
                pipe.cmd("HGET").arg(worker).arg("state");
            }
            let job_key = next_job.as_ref().map(|id| format!("rq:job:{id}"));
            if let Some(job_key) = &job_key {
                pipe.cmd("HGET").arg(job_key).arg("enqueued_at");
            }
            let values = self.main.query(&pipe, "HGET", Duration::ZERO).await?;
            for (i, worker) in workers.iter().enumerate() {
                states.push(reply::optional_text(
                    self.check(at(&values, i, "HGET")?, "HGET", worker, "hash")?,
                    "HGET",
                )?);
            }
            if let Some(job_key) = &job_key {
                enqueued = reply::optional_text(
                    self.check(at(&values, workers.len(), "HGET")?, "HGET", job_key, "hash")?,
                    "HGET",
                )?;
            }
        }
        let mut reading = answer::rq(waiting, moving, running, &states);
        reading.oldest_age = enqueued
            .as_deref()
            .and_then(reply::rq_timestamp_ms)
            .map(|stamp| answer::age(unix_ms(now), stamp));
        Ok(reading)
    }

    /// `LLEN` of `wait`, `paused` and `active`, `ZCARD prioritized`, `GET
    /// id` (and `LINDEX wait -1` for the age); then `HGET <job> timestamp`.
    async fn read_bullmq(
        &mut self,
        prefix: &str,
        queue: &str,
        oldest_age: bool,
    ) -> Result<Reading, Error> {
        let key = |suffix: &str| format!("{prefix}:{queue}:{suffix}");
        let (wait, paused, prioritized, active, id) = (
            key("wait"),
            key("paused"),
            key("prioritized"),
            key("active"),
            key("id"),
        );
        let mut pipe = pipeline();
        pipe.cmd("LLEN").arg(&wait);
        pipe.cmd("LLEN").arg(&paused);
        pipe.cmd("ZCARD").arg(&prioritized);
        pipe.cmd("LLEN").arg(&active);
        pipe.cmd("GET").arg(&id);
        if oldest_age {
            pipe.cmd("LINDEX").arg(&wait).arg(-1);
        }
        let values = self.main.query(&pipe, "LLEN", Duration::ZERO).await?;
        let counts = BullmqCounts {
            wait: self.len(&values, 0, "LLEN", &wait, "list")?,
            paused: self.len(&values, 1, "LLEN", &paused, "list")?,
            prioritized: self.len(&values, 2, "ZCARD", &prioritized, "sorted set")?,
            active: self.len(&values, 3, "LLEN", &active, "list")?,
            id: reply::optional_count(
                self.check(at(&values, 4, "GET")?, "GET", &id, "string")?,
                "GET",
            )?,
        };
        let mut reading = answer::bullmq(&counts);
        if oldest_age && counts.wait > 0 {
            let next = reply::optional_text(
                self.check(at(&values, 5, "LINDEX")?, "LINDEX", &wait, "list")?,
                "LINDEX",
            )?;
            if let Some(job) = next {
                let job_key = key(&job);
                let mut pipe = pipeline();
                pipe.cmd("HGET").arg(&job_key).arg("timestamp");
                let values = self.main.query(&pipe, "HGET", Duration::ZERO).await?;
                let stamp = reply::optional_text(
                    self.check(at(&values, 0, "HGET")?, "HGET", &job_key, "hash")?,
                    "HGET",
                )?;
                reading.oldest_age = stamp
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(|stamp| answer::age(unix_ms(SystemTime::now()), stamp));
            }
        }
        Ok(reading)
    }

    async fn poll_once(&mut self, request: PollRequest) -> Result<QueueSnapshot, Error> {
        if request.wake_up {
            self.wake_up(request.long_poll).await
        } else {
            self.read_snapshot(request.oldest_age).await
        }
    }
}

impl QueueSource for RedisQueue {
    type Error = Error;

    fn poll(
        &mut self,
        request: PollRequest,
    ) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        self.poll_once(request)
    }
}

/// A direct short poll per call (no wake-up, no schedule): for a program
/// that runs its own loop. The autoscaler itself goes through the poller.
impl QueueMetrics for RedisQueue {
    type Error = Error;

    fn snapshot(&mut self) -> impl Future<Output = Result<QueueSnapshot, Self::Error>> + Send {
        self.read_snapshot(false)
    }
}
