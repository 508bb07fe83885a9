//! NATS JetStream adapter of the Worker Pod Autoscaler: a durable
//! consumer's backlog as a queue.
//!
//! - [`NatsUri`]: parses `nats://[user:password@]host[:port]/STREAM/CONSUMER`
//!   (or `tls://`);
//! - [`api`]: the JetStream JSON API replies read here, as pure,
//!   fuzzed decoders;
//! - [`answer`]: what the numbers mean (messages, in flight, idle workers,
//!   arrival rate, oldest age), pure;
//! - `NatsQueue` (feature `client`, on by default): a consumer as a
//!   `wpa_poller::QueueSource` and a `wpa_core::QueueMetrics`, with a
//!   wake-up from zero that consumes nothing;
//! - `testing::NatsServer` (feature `client`): a throwaway local
//!   `nats-server -js`.
//!
//! **Wake-up from zero.** When the driver asks for it (the target runs 0
//! replicas and the queue was empty) the adapter subscribes, with a plain
//! core NATS subscription, to the consumer's filter subject (or, for an
//! unfiltered consumer, the stream's subjects). A core subscription sees
//! every publish on those subjects as it happens and takes nothing from
//! the stream: the durable consumer's state (pending, delivered, acks) is
//! untouched, so the message is delivered once, in order, to the workers.
//! Each publish seen triggers a `CONSUMER.INFO`; the poll returns as soon
//! as that shows a message (retried for up to 375 ms, since the stream
//! stores a message slightly after the subscription sees it). A
//! `CONSUMER.INFO` also runs right after subscribing, 100 ms later (a
//! publish routed before the subscription took effect), after a
//! reconnect, every short-poll interval as a safety net, and at the end of
//! the long poll. Streams fed by a mirror or sources, where messages
//! arrive without a publish on the stream's subjects, and a subscription
//! the server refuses, fall back to a `CONSUMER.INFO` every
//! `QueueConfig::wake_up_poll_interval` (250 ms). See the README for the
//! call counts.
//!
//! ```no_run
//! # #[cfg(feature = "client")]
//! # async fn demo() -> Result<(), wpa_nats::Error> {
//! use wpa_core::QueueMetrics;
//! use wpa_nats::{NatsQueue, NatsUri};
//!
//! let uri: NatsUri = "nats://localhost:4222/ORDERS/workers".parse()?;
//! let mut queue = NatsQueue::new(uri);
//! let snapshot = queue.snapshot().await?; // one CONSUMER.INFO
//! println!("{} messages, {}", snapshot.messages(), snapshot.idleness());
//! # Ok(())
//! # }
//! ```

pub mod answer;
pub mod api;
mod error;
pub mod fuzz;
mod uri;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod source;
#[cfg(feature = "client")]
pub mod testing;

pub use answer::{ArrivalCounter, ArrivalRate, IdleWorkers};
pub use api::{ConsumerInfo, StoredMessage, StreamInfo};
#[cfg(feature = "client")]
pub use client::{ApiCounter, ClientConfig, JetStreamClient};
pub use error::{BoxError, Error};
#[cfg(feature = "client")]
pub use source::{DEFAULT_RATE_WINDOW, NatsQueue, QueueConfig, WakeUp};
pub use uri::{
    ConsumerName, Credentials, DEFAULT_HOST, DEFAULT_PORT, MAX_NAME_LEN, NatsUri, Scheme,
    StreamName,
};
