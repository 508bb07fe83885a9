//! The one error type of this crate.

use std::time::Duration;

/// A failure of the client library, kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong polling a JetStream consumer, from a
/// malformed URI to a reply that is not JetStream's. Messages name the
/// server, the stream, the consumer or the API subject, so that a log line
/// says what to check. Secrets never appear in them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The queue URI is not `nats://[user:password@]host[:port]/STREAM/CONSUMER`.
    #[error("invalid NATS queue URI {uri:?}: {reason} ({expected})")]
    InvalidUri {
        /// The URI given, any user info replaced by `***`.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
        /// The accepted forms.
        expected: &'static str,
    },

    /// A stream or consumer name JetStream would refuse.
    #[error(
        "invalid JetStream {kind} name {name:?}: {reason} (1 to 255 bytes, none of whitespace . * > / \\)"
    )]
    InvalidName {
        /// `stream` or `consumer`.
        kind: &'static str,
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The server could not be reached, or refused the connection.
    #[error("cannot connect to NATS at {address} ({attempts} attempts): {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Connection attempts made before giving up.
        attempts: u32,
        /// The last failure.
        #[source]
        source: BoxError,
    },

    /// [`ClientConfig::tls_root_certificates`](crate::ClientConfig) holds
    /// no usable CA certificate.
    #[error("the NATS TLS root certificates are not usable: {reason}; give PEM CA certificates")]
    TlsRoots {
        /// What is wrong with them.
        reason: String,
    },

    /// [`ClientConfig::credentials_file`](crate::ClientConfig) or
    /// `nkey_seed_file` cannot be read or holds no user credentials. The
    /// seed never appears here.
    #[error("NATS credentials file {}: {reason}", path.display())]
    CredentialsFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// No answer in time (the server is down, reconnecting, or the
    /// request was dropped: see [`Error::PermissionDenied`]).
    #[error("NATS at {address} did not answer {subject} within {timeout:?}")]
    Timeout {
        /// `host:port`.
        address: String,
        /// The request's subject (or `flush`).
        subject: String,
        /// How long the client waited.
        timeout: Duration,
    },

    /// The server reported a permissions violation for a subject this
    /// adapter needs (the crate README lists the permissions).
    #[error(
        "the NATS user may not {operation} {subject:?} at {address} (permissions violation); see wpa-nats' README for the permissions needed"
    )]
    PermissionDenied {
        /// `host:port`.
        address: String,
        /// `publish to` or `subscribe to`.
        operation: &'static str,
        /// The subject refused.
        subject: String,
    },

    /// Nobody answers the JetStream API: JetStream is off on the server or
    /// for this account.
    #[error(
        "no JetStream API answers {subject} at {address}: JetStream is not enabled on the server or for this account"
    )]
    JetStreamUnavailable {
        /// `host:port`.
        address: String,
        /// The request's subject.
        subject: String,
    },

    /// A request, subscription or flush failed in the client.
    #[error("NATS request {subject} at {address} failed: {source}")]
    Request {
        /// `host:port`.
        address: String,
        /// The subject.
        subject: String,
        /// What failed.
        #[source]
        source: BoxError,
    },

    /// The stream does not exist (JetStream error 10059).
    #[error(
        "JetStream stream {stream:?} not found (err_code 10059): create it, or fix the stream in the queue URI"
    )]
    StreamNotFound {
        /// The stream.
        stream: String,
    },

    /// The consumer does not exist on an existing stream (JetStream error
    /// 10014).
    #[error(
        "JetStream consumer {consumer:?} not found on stream {stream:?} (err_code 10014): create the durable consumer, or fix the consumer in the queue URI"
    )]
    ConsumerNotFound {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
    },

    /// Any other JetStream API error.
    #[error("JetStream API {subject} answered error {code} (err_code {err_code}): {description}")]
    Api {
        /// The request's subject.
        subject: String,
        /// The HTTP-like status.
        code: u16,
        /// JetStream's own error code (0 if the server sent none).
        err_code: u16,
        /// The server's description.
        description: String,
    },

    /// Bytes that are not the JetStream reply expected.
    #[error("malformed JetStream {reply} reply: {reason}: {excerpt:?}")]
    MalformedReply {
        /// Which reply (`consumer info`, `stream info`, `stream message`).
        reply: &'static str,
        /// What is wrong.
        reason: String,
        /// The start of the offending reply.
        excerpt: String,
    },

    /// A count too large for the autoscaler.
    #[error("JetStream {field} is {value}: more than the {max} the autoscaler counts")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// The value sent.
        value: u64,
        /// The largest value accepted.
        max: u64,
    },
}
