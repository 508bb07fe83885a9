//! A small tokio beanstalkd client: one connection, one command at a time,
//! every call bounded by a timeout, reconnecting with capped exponential
//! backoff and jitter.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wpa_poller::Backoff;

use crate::codec::{Command, Reply, ReplyDecoder};
use crate::stats::{JobStats, Stats, TubeStats};
use crate::{Error, TubeName};

/// Timeouts and reconnect policy of a [`Client`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Longest wait for a TCP connection. Default 2 s.
    pub connect_timeout: Duration,
    /// Longest wait for a reply, beyond the server-side wait of a
    /// `reserve-with-timeout`. Default 5 s.
    pub call_timeout: Duration,
    /// Connection attempts per call once the connection is lost. Default 3.
    pub reconnect_attempts: u32,
    /// Backoff before the second attempt; doubles up to
    /// `reconnect_max_backoff`, each delay jittered down by up to half.
    /// Default 100 ms.
    pub reconnect_initial_backoff: Duration,
    /// Backoff cap. Default 2 s.
    pub reconnect_max_backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(5),
            reconnect_attempts: 3,
            reconnect_initial_backoff: Duration::from_millis(100),
            reconnect_max_backoff: Duration::from_secs(2),
        }
    }
}

/// A reserved job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job id.
    pub id: u64,
    /// The job body.
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    decoder: ReplyDecoder,
    /// A command was written and its reply not fully read: set when a call
    /// is cancelled (its future dropped) or fails midway. Such a connection
    /// is out of step and is replaced.
    in_flight: bool,
}

/// A beanstalkd connection that re-establishes itself.
///
/// Connecting is lazy: the first call connects. A call that fails on the
/// wire (timeout, I/O error, closed connection, garbage) drops the
/// connection; the next call reconnects, trying up to
/// [`ClientConfig::reconnect_attempts`] times with capped exponential
/// backoff and jitter, and restores the tubes set with
/// [`Client::set_used_tube`] and [`Client::set_watched_tube`].
///
/// Cancel-safe: dropping a call's future mid-way marks the connection out
/// of step and the next call replaces it.
#[derive(Debug)]
pub struct Client {
    address: String,
    config: ClientConfig,
    conn: Option<Connection>,
    used: Option<TubeName>,
    watched: Option<TubeName>,
    connects: u64,
}

impl Client {
    /// A client for `address` (`host:port`); nothing is connected yet.
    #[must_use]
    pub fn new(address: impl Into<String>, config: ClientConfig) -> Self {
        Client {
            address: address.into(),
            config,
            conn: None,
            used: None,
            watched: None,
            connects: 0,
        }
    }

    /// `host:port`.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.address
    }

    /// How many connections were established so far (1 plus reconnects).
    #[must_use]
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// Drops the connection (the server then releases any job this client
    /// had reserved). The next call reconnects.
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// `use`s `tube` now and after every reconnect.
    pub async fn set_used_tube(&mut self, tube: TubeName) -> Result<(), Error> {
        self.used = Some(tube);
        if self.conn.is_some() {
            self.conn = None;
        }
        self.ensure_connected().await
    }

    /// Watches only `tube` (ignoring `default` unless that is the tube), now
    /// and after every reconnect.
    pub async fn set_watched_tube(&mut self, tube: TubeName) -> Result<(), Error> {
        self.watched = Some(tube);
        if self.conn.is_some() {
            self.conn = None;
        }
        self.ensure_connected().await
    }

    /// Sends one command and reads its reply, within the call timeout.
    ///
    /// Replies that refuse the command outright (`OUT_OF_MEMORY`,
    /// `INTERNAL_ERROR`, `BAD_FORMAT`, `UNKNOWN_COMMAND`, `EXPECTED_CRLF`,
    /// `JOB_TOO_BIG`, `DRAINING`) are [`Error::Server`]; other replies are
    /// returned for the caller to interpret.
    pub async fn call(&mut self, command: &Command<'_>) -> Result<Reply, Error> {
        self.call_within(command, self.config.call_timeout).await
    }

    async fn call_within(
        &mut self,
        command: &Command<'_>,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        self.ensure_connected().await?;
        let result = self.send(command, timeout).await;
        if let Err(error) = &result
            && error.breaks_connection()
        {
            self.conn = None;
        }
        result
    }

    async fn send(&mut self, command: &Command<'_>, timeout: Duration) -> Result<Reply, Error> {
        let name = command.name();
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::Closed {
                address: self.address.clone(),
                command: name,
                pending: 0,
            });
        };
        let mut bytes = Vec::with_capacity(64);
        command.encode(&mut bytes);
        let reply = match tokio::time::timeout(timeout, round_trip(conn, &bytes)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(failure)) => return Err(failure.into_error(&self.address, name)),
            Err(_) => {
                return Err(Error::Timeout {
                    address: self.address.clone(),
                    command: name,
                    timeout,
                });
            }
        };
        match reply {
            Reply::OutOfMemory
            | Reply::InternalError
            | Reply::BadFormat
            | Reply::UnknownCommand
            | Reply::ExpectedCrlf
            | Reply::JobTooBig
            | Reply::Draining => Err(Error::Server {
                address: self.address.clone(),
                command: name,
                reply: reply.keyword(),
            }),
            reply => Ok(reply),
        }
    }

    async fn ensure_connected(&mut self) -> Result<(), Error> {
        match &self.conn {
            Some(conn) if !conn.in_flight => return Ok(()),
            Some(_) => self.conn = None,
            None => {}
        }
        let attempts = self.config.reconnect_attempts.max(1);
        let mut backoff = Backoff::new(
            self.config.reconnect_initial_backoff,
            self.config.reconnect_max_backoff,
        );
        let mut last_error = None;
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff.next_delay()).await;
            }
            let connected = tokio::time::timeout(
                self.config.connect_timeout,
                TcpStream::connect(&self.address),
            )
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", self.config.connect_timeout),
                ))
            });
            let stream = match connected {
                Ok(stream) => stream,
                Err(source) => {
                    tracing::debug!(address = %self.address, attempt, %source, "beanstalkd connect failed");
                    last_error = Some(Error::Connect {
                        address: self.address.clone(),
                        attempts: attempt,
                        source,
                    });
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            self.conn = Some(Connection {
                stream,
                decoder: ReplyDecoder::default(),
                in_flight: false,
            });
            match self.restore_tubes().await {
                Ok(()) => {
                    self.connects += 1;
                    if self.connects > 1 {
                        tracing::info!(address = %self.address, "reconnected to beanstalkd");
                    }
                    return Ok(());
                }
                Err(error) => {
                    self.conn = None;
                    if !error.breaks_connection() {
                        return Err(error);
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Closed {
            address: self.address.clone(),
            command: "connect",
            pending: 0,
        }))
    }

    async fn restore_tubes(&mut self) -> Result<(), Error> {
        let timeout = self.config.call_timeout;
        if let Some(tube) = self.used.clone() {
            let reply = self.send(&Command::Use(&tube), timeout).await?;
            self.expect(reply, "use", |r| matches!(r, Reply::Using(_)))?;
        }
        if let Some(tube) = self.watched.clone() {
            let reply = self.send(&Command::Watch(&tube), timeout).await?;
            self.expect(reply, "watch", |r| matches!(r, Reply::Watching(_)))?;
            if tube != TubeName::default_tube() {
                let default = TubeName::default_tube();
                let reply = self.send(&Command::Ignore(&default), timeout).await?;
                self.expect(reply, "ignore", |r| matches!(r, Reply::Watching(_)))?;
            }
        }
        Ok(())
    }

    fn expect(
        &self,
        reply: Reply,
        command: &'static str,
        ok: impl Fn(&Reply) -> bool,
    ) -> Result<Reply, Error> {
        if ok(&reply) {
            Ok(reply)
        } else {
            Err(self.unexpected(command, &reply))
        }
    }

    fn unexpected(&self, command: &'static str, reply: &Reply) -> Error {
        Error::UnexpectedReply {
            address: self.address.clone(),
            command,
            reply: reply.keyword(),
        }
    }

    /// `put` on the used tube; returns the new job's id.
    pub async fn put(
        &mut self,
        priority: u32,
        delay: u32,
        ttr: u32,
        body: &[u8],
    ) -> Result<u64, Error> {
        let reply = self
            .call(&Command::Put {
                priority,
                delay,
                ttr,
                body,
            })
            .await?;
        match reply {
            Reply::Inserted(id) => Ok(id),
            other => Err(self.unexpected("put", &other)),
        }
    }

    /// `reserve-with-timeout`: waits up to `seconds` on the server for a job
    /// of a watched tube. `None` when none came (`TIMED_OUT`) or when a job
    /// this connection holds is about to expire (`DEADLINE_SOON`).
    pub async fn reserve_with_timeout(&mut self, seconds: u32) -> Result<Option<Job>, Error> {
        let timeout = self.config.call_timeout + Duration::from_secs(u64::from(seconds));
        let reply = self
            .call_within(&Command::ReserveWithTimeout(seconds), timeout)
            .await?;
        match reply {
            Reply::Reserved { id, body } => Ok(Some(Job { id, body })),
            Reply::TimedOut | Reply::DeadlineSoon => Ok(None),
            other => Err(self.unexpected("reserve-with-timeout", &other)),
        }
    }

    /// `release <id> <pri> <delay>`: gives back a job this connection
    /// reserved.
    pub async fn release(&mut self, id: u64, priority: u32, delay: u32) -> Result<(), Error> {
        let reply = self
            .call(&Command::Release {
                id,
                priority,
                delay,
            })
            .await?;
        match reply {
            Reply::Released => Ok(()),
            other => Err(self.unexpected("release", &other)),
        }
    }

    /// `delete <id>`; `false` when the job does not exist (or is reserved by
    /// another connection).
    pub async fn delete(&mut self, id: u64) -> Result<bool, Error> {
        match self.call(&Command::Delete(id)).await? {
            Reply::Deleted => Ok(true),
            Reply::NotFound => Ok(false),
            other => Err(self.unexpected("delete", &other)),
        }
    }

    /// `peek-ready` on the used tube: the job a worker would get next.
    pub async fn peek_ready(&mut self) -> Result<Option<Job>, Error> {
        match self.call(&Command::PeekReady).await? {
            Reply::Found { id, body } => Ok(Some(Job { id, body })),
            Reply::NotFound => Ok(None),
            other => Err(self.unexpected("peek-ready", &other)),
        }
    }

    /// `stats-tube`; `None` when the tube does not exist (yet).
    pub async fn stats_tube(&mut self, tube: &TubeName) -> Result<Option<TubeStats>, Error> {
        match self.call(&Command::StatsTube(tube)).await? {
            Reply::Ok(body) => Ok(Some(TubeStats::from_stats(&Stats::parse(&body)?)?)),
            Reply::NotFound => Ok(None),
            other => Err(self.unexpected("stats-tube", &other)),
        }
    }

    /// `stats-job`; `None` when the job does not exist.
    pub async fn stats_job(&mut self, id: u64) -> Result<Option<JobStats>, Error> {
        match self.call(&Command::StatsJob(id)).await? {
            Reply::Ok(body) => Ok(Some(JobStats::from_stats(&Stats::parse(&body)?)?)),
            Reply::NotFound => Ok(None),
            other => Err(self.unexpected("stats-job", &other)),
        }
    }

    /// `stats`: the server-wide statistics (command counters among them).
    pub async fn stats(&mut self) -> Result<Stats, Error> {
        match self.call(&Command::Stats).await? {
            Reply::Ok(body) => Stats::parse(&body),
            other => Err(self.unexpected("stats", &other)),
        }
    }
}

/// How a round trip failed, before the address and command are known.
enum Failure {
    Io(std::io::Error),
    Closed(usize),
    Protocol(Error),
}

impl Failure {
    fn into_error(self, address: &str, command: &'static str) -> Error {
        match self {
            Failure::Io(source) => Error::Io {
                address: address.to_owned(),
                command,
                source,
            },
            Failure::Closed(pending) => Error::Closed {
                address: address.to_owned(),
                command,
                pending,
            },
            Failure::Protocol(error) => error,
        }
    }
}

async fn round_trip(conn: &mut Connection, bytes: &[u8]) -> Result<Reply, Failure> {
    conn.in_flight = true;
    conn.stream.write_all(bytes).await.map_err(Failure::Io)?;
    let mut chunk = [0_u8; 4096];
    loop {
        if let Some(reply) = conn.decoder.next_reply().map_err(Failure::Protocol)? {
            if conn.decoder.pending() == 0 {
                conn.in_flight = false;
            }
            return Ok(reply);
        }
        let read = conn.stream.read(&mut chunk).await.map_err(Failure::Io)?;
        if read == 0 {
            return Err(Failure::Closed(conn.decoder.pending()));
        }
        conn.decoder.push(&chunk[..read]);
    }
}
