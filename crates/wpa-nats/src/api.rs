//! The JetStream JSON API replies this adapter reads, decoded by pure
//! functions: the subjects, the request bodies, and the parsers of
//! `CONSUMER.INFO`, `STREAM.INFO` and `STREAM.MSG.GET` replies.
//!
//! Only the fields used are decoded (unknown fields are ignored, so newer
//! servers' additions do not break the parse); a missing or mistyped
//! needed field, a reply of another type, or one about another stream or
//! consumer is [`Error::MalformedReply`]. A JetStream error object becomes
//! a typed error: 10059 [`Error::StreamNotFound`], 10014
//! [`Error::ConsumerNotFound`], anything else [`Error::Api`]. Covered by
//! proptest and the `nats_consumer_info` fuzz target.

use std::time::SystemTime;

use serde::Deserialize;

use crate::{ConsumerName, Error, StreamName};

/// JetStream's "stream not found".
pub const ERR_STREAM_NOT_FOUND: u16 = 10059;
/// JetStream's "consumer not found".
pub const ERR_CONSUMER_NOT_FOUND: u16 = 10014;
/// JetStream's "no message found" (`STREAM.MSG.GET`).
pub const ERR_NO_MESSAGE_FOUND: u16 = 10037;

const CONSUMER_INFO_TYPE: &str = "io.nats.jetstream.api.v1.consumer_info_response";
const STREAM_INFO_TYPE: &str = "io.nats.jetstream.api.v1.stream_info_response";
const MSG_GET_TYPE: &str = "io.nats.jetstream.api.v1.stream_msg_get_response";

/// `$JS.API.CONSUMER.INFO.<stream>.<consumer>`.
#[must_use]
pub fn consumer_info_subject(stream: &StreamName, consumer: &ConsumerName) -> String {
    format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}")
}

/// `$JS.API.STREAM.INFO.<stream>`.
#[must_use]
pub fn stream_info_subject(stream: &StreamName) -> String {
    format!("$JS.API.STREAM.INFO.{stream}")
}

/// `$JS.API.STREAM.MSG.GET.<stream>`.
#[must_use]
pub fn msg_get_subject(stream: &StreamName) -> String {
    format!("$JS.API.STREAM.MSG.GET.{stream}")
}

/// The `STREAM.MSG.GET` request for the first message at or after `seq`
/// on `subject` (a filter, wildcards allowed: `>` for any).
#[must_use]
pub fn next_message_request(seq: u64, subject: &str) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Request<'a> {
        seq: u64,
        next_by_subj: &'a str,
    }
    serde_json::to_vec(&Request {
        seq,
        next_by_subj: subject,
    })
    .unwrap_or_default()
}

/// A delivered or acknowledged position of a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct SequencePair {
    /// The consumer's own delivery sequence (every delivery counts,
    /// redeliveries included).
    pub consumer_seq: u64,
    /// The stream sequence of that message.
    pub stream_seq: u64,
}

/// The consumer configuration fields used here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ConsumerConfig {
    /// The durable name (absent for an ephemeral consumer).
    #[serde(default)]
    pub durable_name: Option<String>,
    /// Set for a push consumer; absent or empty for a pull consumer.
    #[serde(default)]
    pub deliver_subject: Option<String>,
    /// The subject filter (2.9), absent or empty for none.
    #[serde(default)]
    pub filter_subject: Option<String>,
    /// The subject filters (2.10 and later).
    #[serde(default)]
    pub filter_subjects: Vec<String>,
}

impl ConsumerConfig {
    /// Whether this is a pull consumer (no deliver subject).
    #[must_use]
    pub fn is_pull(&self) -> bool {
        self.deliver_subject.as_deref().is_none_or(str::is_empty)
    }

    /// The subject filters, empty when the consumer sees the whole stream.
    #[must_use]
    pub fn filters(&self) -> Vec<String> {
        let mut filters: Vec<String> = self
            .filter_subject
            .iter()
            .chain(&self.filter_subjects)
            .filter(|f| !f.is_empty())
            .cloned()
            .collect();
        filters.sort();
        filters.dedup();
        filters
    }
}

/// The part of a `CONSUMER.INFO` reply the autoscaler reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ConsumerInfo {
    /// The stream.
    pub stream_name: String,
    /// The consumer.
    pub name: String,
    /// Its configuration.
    pub config: ConsumerConfig,
    /// The last message delivered (first deliveries move it; redeliveries
    /// only move `consumer_seq`).
    pub delivered: SequencePair,
    /// Everything at or below it is acknowledged.
    pub ack_floor: SequencePair,
    /// Messages delivered and not acknowledged yet: in flight.
    pub num_ack_pending: u64,
    /// Of those, messages delivered more than once.
    pub num_redelivered: u64,
    /// Pull requests waiting for messages (pull consumers).
    pub num_waiting: u64,
    /// Messages matching the consumer not delivered yet.
    pub num_pending: u64,
    /// Push consumers: whether a subscriber listens on the deliver subject.
    #[serde(default)]
    pub push_bound: bool,
}

/// The part of a `STREAM.INFO` reply used here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StreamInfo {
    /// Its configuration.
    pub config: StreamConfig,
    /// Its state.
    pub state: StreamState,
}

/// The stream configuration fields used here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StreamConfig {
    /// The stream's name.
    pub name: String,
    /// The subjects it stores (empty for a mirror).
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Set when the stream mirrors another.
    #[serde(default)]
    pub mirror: Option<serde_json::Value>,
    /// Streams it sources messages from.
    #[serde(default)]
    pub sources: Option<Vec<serde_json::Value>>,
}

impl StreamConfig {
    /// Whether messages can enter the stream other than by a publish on
    /// its subjects (a mirror, or sources).
    #[must_use]
    pub fn takes_other_streams(&self) -> bool {
        self.mirror.as_ref().is_some_and(|m| !m.is_null())
            || self.sources.as_ref().is_some_and(|s| !s.is_empty())
    }
}

/// The stream state fields used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct StreamState {
    /// Messages stored now.
    pub messages: u64,
    /// The sequence of the last message ever stored: never goes down (a
    /// purge keeps it), so it counts arrivals.
    pub last_seq: u64,
}

/// A stored message's place and time (its payload is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its subject.
    pub subject: String,
    /// Its stream sequence.
    pub seq: u64,
    /// When the server stored it (the server's clock).
    pub time: SystemTime,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    code: u16,
    #[serde(default)]
    err_code: u16,
    #[serde(default)]
    description: String,
}

const EXCERPT: usize = 200;

fn malformed(reply: &'static str, reason: impl Into<String>, body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text.chars().take(EXCERPT).collect();
    Error::MalformedReply {
        reply,
        reason: reason.into(),
        excerpt,
    }
}

/// The envelope's error, typed; a reply of another `type` is malformed.
fn check_envelope(
    body: &[u8],
    reply: &'static str,
    expected_type: &str,
    subject: impl FnOnce() -> String,
    typed: impl FnOnce(&ApiError) -> Option<Error>,
) -> Result<(), Error> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| malformed(reply, e.to_string(), body))?;
    if let Some(kind) = &envelope.kind
        && kind != expected_type
    {
        return Err(malformed(
            reply,
            format!("reply type {kind:?}, expected {expected_type:?}"),
            body,
        ));
    }
    match envelope.error {
        Some(error) => Err(typed(&error).unwrap_or_else(|| Error::Api {
            subject: subject(),
            code: error.code,
            err_code: error.err_code,
            description: error.description.chars().take(EXCERPT).collect(),
        })),
        None => Ok(()),
    }
}

fn not_found(
    stream: &StreamName,
    consumer: Option<&ConsumerName>,
    error: &ApiError,
) -> Option<Error> {
    match (error.err_code, consumer) {
        (ERR_STREAM_NOT_FOUND, _) => Some(Error::StreamNotFound {
            stream: stream.to_string(),
        }),
        (ERR_CONSUMER_NOT_FOUND, Some(consumer)) => Some(Error::ConsumerNotFound {
            stream: stream.to_string(),
            consumer: consumer.to_string(),
        }),
        _ => None,
    }
}

/// Parses a `$JS.API.CONSUMER.INFO.<stream>.<consumer>` reply.
pub fn parse_consumer_info(
    body: &[u8],
    stream: &StreamName,
    consumer: &ConsumerName,
) -> Result<ConsumerInfo, Error> {
    const REPLY: &str = "consumer info";
    check_envelope(
        body,
        REPLY,
        CONSUMER_INFO_TYPE,
        || consumer_info_subject(stream, consumer),
        |e| not_found(stream, Some(consumer), e),
    )?;
    let info: ConsumerInfo =
        serde_json::from_slice(body).map_err(|e| malformed(REPLY, e.to_string(), body))?;
    if info.stream_name != stream.as_str() || info.name != consumer.as_str() {
        return Err(malformed(
            REPLY,
            format!(
                "it describes consumer {:?} of stream {:?}, not {consumer:?} of {stream:?}",
                info.name, info.stream_name
            ),
            body,
        ));
    }
    Ok(info)
}

/// Parses a `$JS.API.STREAM.INFO.<stream>` reply.
pub fn parse_stream_info(body: &[u8], stream: &StreamName) -> Result<StreamInfo, Error> {
    const REPLY: &str = "stream info";
    check_envelope(
        body,
        REPLY,
        STREAM_INFO_TYPE,
        || stream_info_subject(stream),
        |e| not_found(stream, None, e),
    )?;
    let info: StreamInfo =
        serde_json::from_slice(body).map_err(|e| malformed(REPLY, e.to_string(), body))?;
    if info.config.name != stream.as_str() {
        return Err(malformed(
            REPLY,
            format!("it describes stream {:?}, not {stream:?}", info.config.name),
            body,
        ));
    }
    Ok(info)
}

/// Parses a `$JS.API.STREAM.MSG.GET.<stream>` reply: `None` when no
/// message matches (error 10037).
pub fn parse_stored_message(
    body: &[u8],
    stream: &StreamName,
) -> Result<Option<StoredMessage>, Error> {
    const REPLY: &str = "stream message";
    #[derive(Deserialize)]
    struct Reply {
        message: Message,
    }
    #[derive(Deserialize)]
    struct Message {
        subject: String,
        seq: u64,
        time: String,
    }
    let checked = check_envelope(
        body,
        REPLY,
        MSG_GET_TYPE,
        || msg_get_subject(stream),
        |e| not_found(stream, None, e),
    );
    match checked {
        Err(Error::Api {
            err_code: ERR_NO_MESSAGE_FOUND,
            ..
        }) => return Ok(None),
        other => other?,
    }
    let reply: Reply =
        serde_json::from_slice(body).map_err(|e| malformed(REPLY, e.to_string(), body))?;
    let time = parse_time(&reply.message.time)
        .ok_or_else(|| malformed(REPLY, "the time is not an RFC 3339 timestamp", body))?;
    Ok(Some(StoredMessage {
        subject: reply.message.subject,
        seq: reply.message.seq,
        time,
    }))
}

/// An RFC 3339 timestamp as JetStream writes it
/// (`2026-12-02T03:17:04.71251333Z`).
#[must_use]
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let timestamp: jiff::Timestamp = text.parse().ok()?;
    Some(SystemTime::from(timestamp))
}
