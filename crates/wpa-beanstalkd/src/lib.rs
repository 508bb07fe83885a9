//! beanstalkd adapter of the Worker Pod Autoscaler.
//!
//! - [`codec`]: the protocol as pure functions ([`Command::encode`],
//!   [`parse_reply`], [`ReplyDecoder`]), fuzzed and property-tested;
//! - [`Client`]: a small tokio client, every call under a timeout,
//!   reconnecting with capped exponential backoff and jitter;
//! - [`BeanstalkQueue`]: a tube as a [`wpa_poller::QueueSource`] (snapshot,
//!   arrival rate, wake-up from zero) and a [`wpa_core::QueueMetrics`];
//! - [`BeanstalkUri`]: parses `beanstalk://host:port/tube`;
//! - [`testing::BeanstalkdServer`]: a throwaway local server.
//!
//! ```no_run
//! use wpa_beanstalkd::{BeanstalkQueue, BeanstalkUri};
//!
//! # async fn demo() -> Result<(), wpa_beanstalkd::Error> {
//! let mut queue = BeanstalkQueue::new("beanstalk://localhost:11300/emails".parse::<BeanstalkUri>()?);
//! let snapshot = queue.stats_snapshot().await?;
//! println!("{} messages, {}", snapshot.messages(), snapshot.idleness());
//! # Ok(())
//! # }
//! ```

pub mod answer;
mod client;
pub mod codec;
mod error;
mod source;
mod stats;
pub mod testing;
mod uri;

pub use answer::ArrivalRate;
pub use client::{Client, ClientConfig, Job};
pub use codec::{Command, Reply, ReplyDecoder, parse_reply};
pub use error::Error;
pub use source::{BeanstalkQueue, DEFAULT_RATE_WINDOW, QueueConfig};
pub use stats::{JobStats, Stats, TubeStats};
pub use uri::{BeanstalkUri, DEFAULT_HOST, DEFAULT_PORT, TubeName};
