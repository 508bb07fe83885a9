//! The management API's queue object, `GET /api/queues/{vhost}/{name}`, as
//! a pure parser: bytes in, [`QueueStats`] out.

use serde::Deserialize;

use crate::Error;

/// The `columns` asked of `GET /api/queues/{vhost}/{name}`: only what the
/// autoscaler reads. The whole object is about 1.5 KB larger (the backing
/// queue's internals), plus some 500 bytes per consumer (its channel's
/// details); with these columns a consumer costs about 60 bytes.
pub const QUEUE_COLUMNS: &str = "messages_ready,messages_unacknowledged,consumers,consumer_details.ack_required,consumer_details.prefetch_count,consumer_details.active,message_stats.publish,head_message_timestamp";

/// The largest management reply accepted (a queue with thousands of
/// consumers stays well below it).
pub const MAX_REPLY_BYTES: usize = 8 << 20;

/// One consumer of the queue, from the reply's `consumer_details`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumerDetails {
    /// `ack_required`: the consumer acknowledges manually (its messages
    /// count as unacknowledged until it does). `false`: automatic
    /// acknowledgement, its messages leave the queue on delivery.
    pub ack_required: Option<bool>,
    /// `prefetch_count`: how many unacknowledged messages it may hold (0:
    /// no per-consumer limit).
    pub prefetch_count: Option<u64>,
    /// `active`: it may receive messages (false for the waiting consumers of
    /// a single-active-consumer queue).
    pub active: Option<bool>,
}

/// The numbers of one management queue object the autoscaler uses. Every
/// field is `None` when the reply lacks it: a queue created or recovered
/// less than a statistics interval ago has no message counts yet, and
/// `message_stats` appears only once a message was published to it (and
/// never with `management.rates_mode = none`).
///
/// These numbers are sampled: queues report them every
/// `collect_statistics_interval` (5 s by default) and the management
/// database serves the latest sample of its time series, kept at the
/// granularity of `management.sample_retention_policies` (5 s by default).
/// With RabbitMQ's defaults a change shows 2 to 8 s later (2.4 to 7.4 s
/// measured on 3.10).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// `messages_ready`: waiting for a consumer.
    pub ready: Option<u64>,
    /// `messages_unacknowledged`: delivered, not yet acknowledged.
    pub unacknowledged: Option<u64>,
    /// `consumers`.
    pub consumers: Option<u64>,
    /// `consumer_details`, one entry per consumer.
    pub consumer_details: Option<Vec<ConsumerDetails>>,
    /// `message_stats.publish`: messages routed to the queue since its
    /// statistics began (a counter: it restarts when the queue is
    /// recreated or the node restarts).
    pub published: Option<u64>,
    /// `head_message_timestamp`: the `timestamp` property (seconds since
    /// the Unix epoch) of the message at the head of the queue, when its
    /// publisher set one.
    pub head_message_timestamp: Option<u64>,
}

#[derive(Deserialize)]
struct RawQueue {
    messages_ready: Option<u64>,
    messages_unacknowledged: Option<u64>,
    consumers: Option<u64>,
    consumer_details: Option<Vec<RawConsumer>>,
    /// An object, or `[]` (how the broker writes an empty one, seen while a
    /// queue's first samples are taken).
    #[serde(default, deserialize_with = "stats_or_empty")]
    message_stats: Option<RawMessageStats>,
    head_message_timestamp: Option<u64>,
}

fn stats_or_empty<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<RawMessageStats>, D::Error> {
    Ok(
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            Some(serde_json::Value::Object(stats)) => Some(RawMessageStats {
                publish: stats.get("publish").and_then(serde_json::Value::as_u64),
            }),
            _ => None,
        },
    )
}

#[derive(Deserialize)]
struct RawConsumer {
    ack_required: Option<bool>,
    prefetch_count: Option<u64>,
    active: Option<bool>,
}

#[derive(Deserialize)]
struct RawMessageStats {
    publish: Option<u64>,
}

impl QueueStats {
    /// Parses a `GET /api/queues/{vhost}/{name}` reply body. Unknown fields
    /// are ignored; a known field of the wrong type (a negative or
    /// fractional count) is [`Error::MalformedReply`], as is anything that
    /// is not a JSON object or is larger than [`MAX_REPLY_BYTES`].
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        if body.len() > MAX_REPLY_BYTES {
            return Err(Error::MalformedReply {
                reason: format!(
                    "{} bytes, more than the {MAX_REPLY_BYTES} accepted",
                    body.len()
                ),
            });
        }
        let raw: RawQueue =
            serde_json::from_slice(body).map_err(|error| Error::MalformedReply {
                reason: format!("not a queue object: {error}"),
            })?;
        Ok(QueueStats {
            ready: raw.messages_ready,
            unacknowledged: raw.messages_unacknowledged,
            consumers: raw.consumers,
            consumer_details: raw.consumer_details.map(|consumers| {
                consumers
                    .into_iter()
                    .map(|c| ConsumerDetails {
                        ack_required: c.ack_required,
                        prefetch_count: c.prefetch_count,
                        active: c.active,
                    })
                    .collect()
            }),
            published: raw.message_stats.and_then(|stats| stats.publish),
            head_message_timestamp: raw.head_message_timestamp,
        })
    }
}

/// The `reason` of a management error reply (`{"error": ..., "reason":
/// ...}`), or the start of the body when it is not one.
#[must_use]
pub fn error_reason(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorReply {
        error: Option<String>,
        reason: Option<String>,
    }
    match serde_json::from_slice::<ErrorReply>(body) {
        Ok(ErrorReply {
            reason: Some(reason),
            ..
        }) => reason,
        Ok(ErrorReply {
            error: Some(error), ..
        }) => error,
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_reply() {
        // An empty message_stats is written as an empty list.
        let empty =
            br#"{"consumers":0,"message_stats":[],"messages_ready":0,"messages_unacknowledged":0}"#;
        let stats = QueueStats::from_json(empty).unwrap();
        assert_eq!(stats.published, None);
        assert_eq!(stats.ready, Some(0));
        let body = br#"{"consumer_details":[{"ack_required":true,"prefetch_count":1,"active":true,"activity_status":"up","arguments":{},"channel_details":{"name":"x"}}],"consumers":1,"head_message_timestamp":1700000000,"message_stats":{"publish":7,"publish_details":{"rate":0.2}},"messages_ready":3,"messages_unacknowledged":1,"name":"jobs"}"#;
        let stats = QueueStats::from_json(body).unwrap();
        assert_eq!(stats.ready, Some(3));
        assert_eq!(stats.unacknowledged, Some(1));
        assert_eq!(stats.consumers, Some(1));
        assert_eq!(stats.published, Some(7));
        assert_eq!(stats.head_message_timestamp, Some(1_700_000_000));
        assert_eq!(
            stats.consumer_details.unwrap(),
            vec![ConsumerDetails {
                ack_required: Some(true),
                prefetch_count: Some(1),
                active: Some(true)
            }]
        );
    }

    #[test]
    fn a_queue_without_statistics_yet() {
        let body = br#"{"consumer_details":[],"arguments":{},"auto_delete":false,"deliveries":[],"durable":true,"name":"q1","node":"n@h","type":"classic","vhost":"/","head_message_timestamp":null}"#;
        let stats = QueueStats::from_json(body).unwrap();
        assert_eq!(
            stats,
            QueueStats {
                consumer_details: Some(Vec::new()),
                ..QueueStats::default()
            }
        );
    }

    #[test]
    fn wrong_types_and_garbage_are_errors() {
        for body in [
            &br#"{"messages_ready":-1}"#[..],
            br#"{"messages_ready":1.5}"#,
            br#"{"messages_ready":"3"}"#,
            br#"{"consumer_details":{}}"#,
            br#"[]"#,
            b"",
            b"<html>",
        ] {
            assert!(QueueStats::from_json(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn error_reasons() {
        assert_eq!(
            error_reason(br#"{"error":"not_authorised","reason":"Not management user"}"#),
            "Not management user"
        );
        assert_eq!(error_reason(b"oops"), "oops");
    }
}
