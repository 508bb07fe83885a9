//! The one error type of this crate.

use std::time::Duration;

/// Everything that can go wrong, from a malformed URI to a reply that is
/// not what the layout expects. Messages name the server, the command and
/// the key, so that a log line says what to check. No message carries a
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The queue URI is not one of the forms of [`crate::RedisUri`].
    #[error(
        "invalid Redis queue URI {uri:?}: {reason} (expected redis[s]://[user:password@]host[:port]/[db/]KIND/NAME[?options], KIND one of list, stream, celery, sidekiq, rq, bullmq)"
    )]
    InvalidUri {
        /// The URI given, its password replaced by `***`.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `rediss://` in a build without the `tls` feature.
    #[error(
        "{uri} asks for TLS (rediss://) but this build has no TLS support: build wpa-redis with the `tls` feature"
    )]
    TlsUnavailable {
        /// The URI, password redacted.
        uri: String,
    },

    /// The server could not be reached (or refused the handshake).
    #[error("cannot connect to Redis at {address} ({attempts} attempts): {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Connection attempts made before giving up.
        attempts: u32,
        /// The last failure.
        #[source]
        source: redis::RedisError,
    },

    /// The server refused the credentials (`WRONGPASS`, `NOAUTH`).
    #[error(
        "Redis at {address} refused the credentials of the queue URI: {source} (check user and password in redis://user:password@host)"
    )]
    Auth {
        /// `host:port`.
        address: String,
        /// What the server said.
        #[source]
        source: redis::RedisError,
    },

    /// The server did not answer in time.
    #[error("Redis at {address} did not answer `{command}` within {timeout:?}")]
    Timeout {
        /// `host:port`.
        address: String,
        /// The command (the first of a pipeline).
        command: &'static str,
        /// How long the client waited.
        timeout: Duration,
    },

    /// The connection failed during a call (reset, closed, I/O error).
    #[error("connection to Redis at {address} failed during `{command}`: {source}")]
    Connection {
        /// `host:port`.
        address: String,
        /// The command (the first of a pipeline).
        command: &'static str,
        /// What failed.
        #[source]
        source: redis::RedisError,
    },

    /// The ACL user may not run a command or read a key (`NOPERM`).
    #[error(
        "Redis at {address} refused `{command}` on {key:?}: {detail} (grant the ACL rules listed in the wpa-redis README)"
    )]
    Permission {
        /// `host:port`.
        address: String,
        /// The command.
        command: &'static str,
        /// The key it was about.
        key: String,
        /// The server's message.
        detail: String,
    },

    /// A key holds another type than the layout expects (`WRONGTYPE`).
    #[error(
        "Redis key {key:?} is not a {expected} (`{command}` failed with WRONGTYPE): does the queue URI name the right layout and key?"
    )]
    WrongType {
        /// The key.
        key: String,
        /// The type the layout needs (`list`, `stream`, ...).
        expected: &'static str,
        /// The command.
        command: &'static str,
    },

    /// Any other error reply.
    #[error("Redis at {address} answered `{command}` on {key:?} with {code} {detail}")]
    Server {
        /// `host:port`.
        address: String,
        /// The command.
        command: &'static str,
        /// The key it was about.
        key: String,
        /// The error code (`ERR`, `READONLY`, `LOADING`, ...).
        code: String,
        /// The rest of the message.
        detail: String,
    },

    /// A reply of the wrong shape for the command (a different server, a
    /// proxy, or a framework version whose data this crate does not know).
    #[error("unexpected reply to `{command}`: {reason}: {reply}")]
    UnexpectedReply {
        /// The command.
        command: &'static str,
        /// What is wrong.
        reason: &'static str,
        /// The start of the offending reply.
        reply: String,
    },

    /// A count too large for the autoscaler (over `u32::MAX` messages).
    #[error("{field} is {value}: more than {max} messages")]
    TooLarge {
        /// What was counted.
        field: &'static str,
        /// The count.
        value: u64,
        /// The largest count accepted.
        max: u64,
    },
}

impl Error {
    /// Whether the connection that produced this error must be dropped
    /// (its state can no longer be trusted).
    #[must_use]
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Timeout { .. } | Error::Connection { .. }
        )
    }

    pub(crate) fn unexpected(
        command: &'static str,
        reason: &'static str,
        reply: &redis::Value,
    ) -> Self {
        let mut text = format!("{reply:?}");
        if text.len() > 200 {
            let mut cut = 200;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        Error::UnexpectedReply {
            command,
            reason,
            reply: text,
        }
    }
}
