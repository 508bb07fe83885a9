//! Redis adapter of the Worker Pod Autoscaler: a queue kept in Redis as a
//! [`wpa_poller::QueueSource`] and a [`wpa_core::QueueMetrics`].
//!
//! - [`RedisUri`] parses
//!   `redis[s]://[user:password@]host[:port]/[db/]KIND/NAME[?options]`,
//!   which names the key layout: a `list` (with processing lists for the
//!   reliable-queue pattern), a `stream` read by a consumer group, or the
//!   layout of a worker framework (`celery`, `sidekiq`, `rq`, `bullmq`);
//! - [`reply`]: pure decoders of the replies read (`XINFO`, Sidekiq's
//!   heartbeat hashes, timestamps), fuzzed and property-tested;
//! - [`answer`]: the numbers as a [`wpa_core::QueueSnapshot`], pure
//!   functions the simulator shares;
//! - [`RedisQueue`] (feature `client`, on by default): the adapter, on
//!   [redis-rs](https://docs.rs/redis); every call under a timeout,
//!   reconnecting with capped exponential backoff and jitter;
//! - [`testing::RedisServer`] (feature `client`): a throwaway local server.
//!
//! # Wake-up from zero
//!
//! When the driver asks for it ([`wpa_poller::PollRequest::wake_up`]: the
//! target runs 0 replicas and the queue was empty) the poll blocks up to
//! the long poll on a second connection and returns as soon as a message
//! arrives, without taking, reordering or losing one:
//!
//! - a list (`list`, `sidekiq`, `rq`, `celery` with one priority step):
//!   `BLMOVE key key RIGHT RIGHT <long poll>`. It blocks while the list is
//!   empty; once it is not, Redis pops the tail element and pushes it back
//!   to the tail of the same list in one atomic step: the list is exactly
//!   as it was, whatever its length, and a worker blocked on it is served
//!   next from the same contents. (`RIGHT LEFT` would rotate the list and
//!   reorder it; `RIGHT RIGHT` does not.) It is a write command: a
//!   read-only ACL user needs `wakeup=poll`;
//! - a stream: `XREAD BLOCK <ms> COUNT 1 STREAMS key <group's
//!   last-delivered-id>`, a plain read that returns on the first entry the
//!   group has not been given and does not touch the group;
//! - layouts that wait on several keys (`bullmq`, `celery` with priority
//!   steps) and `wakeup=poll`: the `LLEN` (and BullMQ's `ZCARD
//!   prioritized`) of the keys a message arrives in, every 200 ms
//!   (`wakeup-interval-ms`), so the first message is seen within that; the
//!   whole snapshot is read once one is there, or at the end of the long
//!   poll.
//!
//! ```no_run
//! # #[cfg(feature = "client")]
//! # async fn demo() -> Result<(), wpa_redis::Error> {
//! use wpa_core::QueueMetrics;
//! use wpa_redis::{RedisQueue, RedisUri};
//!
//! let uri: RedisUri = "redis://localhost:6379/0/stream/events?group=workers".parse()?;
//! let mut queue = RedisQueue::new(uri);
//! let snapshot = queue.snapshot().await?;
//! println!("{} messages, {}", snapshot.messages(), snapshot.idleness());
//! # Ok(())
//! # }
//! ```

pub mod answer;
#[cfg(feature = "client")]
mod client;
mod error;
pub mod fuzzing;
pub mod reply;
#[cfg(feature = "client")]
mod source;
#[cfg(feature = "client")]
pub mod testing;
mod uri;

pub use answer::{ArrivalRate, Reading};
#[cfg(feature = "client")]
pub use client::ClientConfig;
pub use error::Error;
#[cfg(feature = "client")]
pub use source::{DEFAULT_RATE_WINDOW, QueueConfig, RedisQueue};
pub use uri::{
    CELERY_DEFAULT_PRIORITY_STEPS, CELERY_PRIORITY_SEP, DEFAULT_CONSUMER_IDLE, DEFAULT_HOST,
    DEFAULT_LAG_SCAN, DEFAULT_PORT, DEFAULT_WAKEUP_INTERVAL, Layout, MAX_NAME_LEN,
    MAX_PROCESSING_LISTS, RedisUri, WakeUp, celery_list,
};
