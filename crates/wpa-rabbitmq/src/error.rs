//! The one error type of this crate.

use std::time::Duration;

/// Everything that can go wrong, from a malformed URI to a management reply
/// that is not RabbitMQ's. Messages name the server, the operation and what
/// to check; they never contain a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The queue URI is not `amqp[s]://[user:password@]host[:port]/vhost/queue[?management=...]`.
    #[error(
        "invalid RabbitMQ queue URI {uri}: {reason} (expected amqp[s]://[user:password@]host[:port]/vhost/queue[?management=http[s]://host:port], names percent-encoded, %2F for the default vhost /)"
    )]
    InvalidUri {
        /// The URI given, its password replaced by `***`.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The server could not be reached, or refused the AMQP handshake for
    /// another reason than credentials.
    #[error("cannot connect to RabbitMQ at {address} ({attempts} attempts): {reason}")]
    Connect {
        /// `host:port` of the AMQP listener.
        address: String,
        /// Connection attempts made before giving up.
        attempts: u32,
        /// The last failure.
        reason: String,
    },

    /// The server refused the credentials or the vhost (AMQP 403
    /// `ACCESS_REFUSED`, 530 `NOT_ALLOWED`), or an operation on the queue.
    #[error(
        "RabbitMQ at {address} refused `{operation}`: {reason} (check the user, its password and its permissions on the vhost)"
    )]
    AccessRefused {
        /// `host:port` of the AMQP listener.
        address: String,
        /// What was refused (`connection.open`, `queue.declare`).
        operation: &'static str,
        /// The server's reply text.
        reason: String,
    },

    /// The server did not answer in time.
    #[error("RabbitMQ at {address} did not answer `{operation}` within {timeout:?}")]
    Timeout {
        /// `host:port` of the AMQP listener, or the management URL.
        address: String,
        /// What was asked.
        operation: &'static str,
        /// How long the client waited.
        timeout: Duration,
    },

    /// The AMQP connection failed during a call (closed, reset, heartbeat
    /// missed).
    #[error("AMQP connection to RabbitMQ at {address} failed during `{operation}`: {reason}")]
    Amqp {
        /// `host:port` of the AMQP listener.
        address: String,
        /// The call in progress.
        operation: &'static str,
        /// What the client library reported.
        reason: String,
    },

    /// The server closed the channel with an error other than "no such
    /// queue" (404, an empty queue here) and "access refused" (403).
    #[error("RabbitMQ at {address} closed the channel during `{operation}`: {code} {text}")]
    ChannelClosed {
        /// `host:port` of the AMQP listener.
        address: String,
        /// The call in progress.
        operation: &'static str,
        /// The AMQP reply code.
        code: u16,
        /// The AMQP reply text.
        text: String,
    },

    /// TLS could not be set up (no trusted certificates found).
    #[error("cannot set up TLS for RabbitMQ: {reason}")]
    Tls {
        /// What failed.
        reason: String,
    },

    /// The management API could not be reached or the request failed on the
    /// wire.
    #[error(
        "cannot reach the RabbitMQ management API at {url}: {reason} (is the rabbitmq_management plugin enabled, and is this its address? set it with ?management=http://host:15672)"
    )]
    ManagementRequest {
        /// The request URL (without credentials).
        url: String,
        /// What failed.
        reason: String,
    },

    /// The management API refused the credentials (401) or the vhost (403).
    #[error(
        "the RabbitMQ management API at {url} answered {status}: {reason} (the user needs the `monitoring` or `management` tag and a permission entry on the vhost, even `^$ ^$ ^$`)"
    )]
    ManagementUnauthorized {
        /// The request URL (without credentials).
        url: String,
        /// 401 or 403.
        status: u16,
        /// The `reason` of the reply, if any.
        reason: String,
    },

    /// The management API answered with another unexpected status.
    #[error("the RabbitMQ management API at {url} answered {status}: {body}")]
    ManagementStatus {
        /// The request URL (without credentials).
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },

    /// A management reply that is not the JSON object RabbitMQ sends.
    #[error("malformed reply from the RabbitMQ management API: {reason}")]
    MalformedReply {
        /// What is wrong.
        reason: String,
    },

    /// A count too large to use.
    #[error("RabbitMQ reported {field} = {value}: expected at most {max}")]
    InvalidStat {
        /// The field.
        field: &'static str,
        /// The value as reported.
        value: u64,
        /// The largest value accepted.
        max: u64,
    },
}

impl Error {
    /// Whether the AMQP connection that produced this error must be
    /// dropped and opened again (its state can no longer be trusted).
    #[must_use]
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Timeout { .. } | Error::Amqp { .. }
        )
    }
}
