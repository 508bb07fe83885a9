//! The one error type of this crate.

use std::time::Duration;

/// Everything that can go wrong talking to beanstalkd, from a malformed URI
/// to a reply that is not beanstalkd's. Messages name the server and the
/// command so that a log line says what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The queue URI is not `beanstalk://host:port/tube`.
    #[error("invalid beanstalkd queue URI {uri:?}: {reason} (expected beanstalk://host:port/tube)")]
    InvalidUri {
        /// The URI given.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A tube name beanstalkd would refuse.
    #[error(
        "invalid beanstalkd tube name {name:?}: 1 to 200 characters of A-Z a-z 0-9 - + / ; . $ _ ( ), not starting with -"
    )]
    InvalidTube {
        /// The name given.
        name: String,
    },

    /// The server could not be reached.
    #[error("cannot connect to beanstalkd at {address} ({attempts} attempts): {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Connection attempts made before giving up.
        attempts: u32,
        /// The last failure.
        #[source]
        source: std::io::Error,
    },

    /// The server did not answer in time.
    #[error("beanstalkd at {address} did not answer `{command}` within {timeout:?}")]
    Timeout {
        /// `host:port`.
        address: String,
        /// The command sent.
        command: &'static str,
        /// How long the client waited.
        timeout: Duration,
    },

    /// Reading or writing the connection failed.
    #[error("I/O error talking to beanstalkd at {address} during `{command}`: {source}")]
    Io {
        /// `host:port`.
        address: String,
        /// The command being sent.
        command: &'static str,
        /// What failed.
        #[source]
        source: std::io::Error,
    },

    /// The server closed the connection before its reply was complete.
    #[error(
        "beanstalkd at {address} closed the connection during `{command}` ({pending} bytes of an incomplete reply received)"
    )]
    Closed {
        /// `host:port`.
        address: String,
        /// The command sent.
        command: &'static str,
        /// Bytes of the incomplete reply.
        pending: usize,
    },

    /// Bytes that are not a beanstalkd reply (is something else listening?).
    #[error("malformed reply from beanstalkd: {reason}: {reply:?}")]
    MalformedReply {
        /// What is wrong.
        reason: &'static str,
        /// The start of the offending reply.
        reply: String,
    },

    /// The server refused a command (`OUT_OF_MEMORY`, `INTERNAL_ERROR`,
    /// `BAD_FORMAT`, `UNKNOWN_COMMAND`, `DRAINING`, ...).
    #[error("beanstalkd at {address} answered `{command}` with {reply}")]
    Server {
        /// `host:port`.
        address: String,
        /// The command sent.
        command: &'static str,
        /// The reply keyword.
        reply: &'static str,
    },

    /// A well-formed reply that makes no sense for the command sent.
    #[error("beanstalkd at {address} answered `{command}` with unexpected {reply}")]
    UnexpectedReply {
        /// `host:port`.
        address: String,
        /// The command sent.
        command: &'static str,
        /// The reply keyword.
        reply: &'static str,
    },

    /// A stats document without a field this crate needs.
    #[error("beanstalkd stats lack the field {field:?}")]
    MissingStat {
        /// The field.
        field: &'static str,
    },

    /// A stats field that is not a number, or one too large to use.
    #[error("beanstalkd stats field {field:?} is {value:?}: expected a whole number up to {max}")]
    InvalidStat {
        /// The field.
        field: &'static str,
        /// The value as sent.
        value: String,
        /// The largest value accepted.
        max: u64,
    },

    /// A stats body that is not the simple YAML mapping beanstalkd sends.
    #[error("malformed beanstalkd stats document: {reason}")]
    MalformedStats {
        /// What is wrong.
        reason: &'static str,
    },
}

impl Error {
    /// Whether the connection that produced this error must be dropped
    /// (its byte stream can no longer be trusted).
    #[must_use]
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Timeout { .. }
                | Error::Io { .. }
                | Error::Closed { .. }
                | Error::MalformedReply { .. }
        )
    }
}
