//! RabbitMQ adapter of the Worker Pod Autoscaler.
//!
//! One queue, `amqp[s]://[user:password@]host[:port]/vhost/queue`, polled
//! through two doors:
//!
//! - **AMQP** (port 5672): a passive `queue.declare` on an open channel.
//!   It never creates, consumes or changes anything, and answers with the
//!   queue's ready messages and consumers, exact at that moment;
//! - **the management API** (the `rabbitmq_management` plugin, port 15672):
//!   `GET /api/queues/{vhost}/{queue}` for what AMQP does not tell:
//!   unacknowledged messages, each consumer's acknowledgement mode and
//!   prefetch, the publish counter, the head message's timestamp. These
//!   are sampled: queues report every `collect_statistics_interval` and the
//!   API serves the latest sample at the granularity of
//!   `management.sample_retention_policies` (5 s and 5 s by default), so a
//!   change shows 2 to 8 s later.
//!
//! A short poll makes one call through each door, concurrently: 6 calls a
//! minute at the default 20 s interval.
//!
//! What each number means is [`answer`]'s, as pure functions (the
//! simulator calls them too):
//!
//! - **messages** = waiting + unacknowledged, waiting being the larger of
//!   the sampled `messages_ready` and the declare's exact ready count;
//!   **in flight** = `messages_unacknowledged`;
//! - **idle workers** ([`answer::idle_consumers`]): with no message ready
//!   and every consumer acknowledging manually, the consumers holding no
//!   unacknowledged message: all of them when none is unacknowledged, or
//!   consumers - unacknowledged when every prefetch is 1; unknown
//!   otherwise;
//! - **arrival rate**: the rise of `message_stats.publish` per minute over
//!   a sliding window ([`ArrivalRate`]);
//! - **oldest message's age** (when a wait-target autoscaler asks): from
//!   `head_message_timestamp`, the head message's `timestamp` property,
//!   when publishers set it.
//!
//! **Wake-up from zero** ([`wpa_poller::PollRequest::wake_up`]): the
//! passive declare again, every [`QueueConfig::wake_up_interval`] (200 ms)
//! until it reports a ready message or the long poll ends. Nothing is
//! consumed, so no message is reordered, redelivered (its `redelivered`
//! flag stays false) or lost: the first message is seen within one
//! interval plus a round trip. `basic.get` followed by a requeue would
//! also see it, but marks it redelivered and may reorder it; a consumer
//! would take it. If consumers appear on the queue meanwhile (messages
//! may then go straight to them, never ready), the wake-up ends after the
//! short-poll interval with a full poll.
//!
//! **A queue that does not exist** reads as an empty queue (as a
//! beanstalkd tube that does not exist): nothing can be queued in it.
//! The transition is logged at `warn` so that a mistyped name shows. A
//! vhost that does not exist, or credentials the server refuses, are
//! errors ([`Error::AccessRefused`], [`Error::ManagementUnauthorized`]).
//!
//! **Permissions:** a user with the `monitoring` (or `management`) tag and a
//! permission entry on the vhost that matches nothing (`'^$' '^$' '^$'`):
//! a passive declare needs no configure, write or read permission.
//!
//! `amqps://` and `https://` management URLs use rustls with ring, trusting
//! the system's certificates or [`QueueConfig::tls`].
//!
//! ```no_run
//! use wpa_core::QueueMetrics;
//! use wpa_rabbitmq::{RabbitQueue, RabbitUri};
//!
//! # async fn demo() -> Result<(), wpa_rabbitmq::Error> {
//! let uri: RabbitUri = "amqp://wpa:secret@rabbit:5672/%2F/emails".parse()?;
//! let mut queue = RabbitQueue::new(uri);
//! let snapshot = queue.snapshot().await?; // one passive declare + one management GET
//! println!("{} messages, {}", snapshot.messages(), snapshot.idleness());
//! # Ok(())
//! # }
//! ```

pub mod answer;
mod error;
pub mod fuzzing;
pub mod management;
mod uri;

#[cfg(feature = "client")]
mod amqp;
#[cfg(feature = "client")]
mod http;
#[cfg(feature = "client")]
mod source;
pub mod testing;
#[cfg(feature = "client")]
mod tls;

pub use answer::{ArrivalRate, DeclareOk};
pub use error::Error;
pub use management::{ConsumerDetails, QueueStats};
#[cfg(feature = "client")]
pub use source::{Calls, DEFAULT_RATE_WINDOW, QueueConfig, RabbitQueue};
pub use uri::{
    Credentials, DEFAULT_AMQP_PORT, DEFAULT_AMQPS_PORT, DEFAULT_HOST, DEFAULT_MANAGEMENT_PORT,
    DEFAULT_MANAGEMENT_TLS_PORT, DEFAULT_USER, MAX_NAME_BYTES, ManagementUrl, RabbitUri,
};
