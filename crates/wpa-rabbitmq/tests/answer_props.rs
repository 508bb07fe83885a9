//! Management replies and what they mean: properties over generated
//! replies and counts (the fuzz target's body included).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;
use wpa_core::Idleness;
use wpa_rabbitmq::answer::{self, ArrivalRate, DeclareOk};
use wpa_rabbitmq::{ConsumerDetails, QueueStats, fuzzing};

fn consumer() -> impl Strategy<Value = ConsumerDetails> {
    (
        proptest::option::of(any::<bool>()),
        proptest::option::of(0..4_u64),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(ack_required, prefetch_count, active)| ConsumerDetails {
            ack_required,
            prefetch_count,
            active,
        })
}

fn stats() -> impl Strategy<Value = QueueStats> {
    (
        proptest::option::of(0..50_u64),
        proptest::option::of(0..50_u64),
        proptest::option::of(proptest::collection::vec(consumer(), 0..5)),
        proptest::option::of(0..10_000_u64),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |(ready, unacknowledged, consumer_details, published, head)| QueueStats {
                ready,
                unacknowledged,
                consumers: consumer_details.as_ref().map(|c| c.len() as u64),
                consumer_details,
                published,
                head_message_timestamp: head,
            },
        )
}

fn declare() -> impl Strategy<Value = DeclareOk> {
    (0..50_u32, 0..5_u32).prop_map(|(ready, consumers)| DeclareOk { ready, consumers })
}

/// The reply RabbitMQ would send for these stats, with the fields it adds
/// that the parser ignores.
fn reply(stats: &QueueStats) -> Vec<u8> {
    let mut object = json!({
        "name": "jobs",
        "vhost": "/",
        "durable": true,
        "garbage_collection": {"minor_gcs": 3},
        "head_message_timestamp": stats.head_message_timestamp,
    });
    if let Some(ready) = stats.ready {
        object["messages_ready"] = json!(ready);
        object["messages_ready_details"] = json!({"rate": 0.0});
    }
    if let Some(unacknowledged) = stats.unacknowledged {
        object["messages_unacknowledged"] = json!(unacknowledged);
    }
    if let Some(consumers) = stats.consumers {
        object["consumers"] = json!(consumers);
    }
    if let Some(details) = &stats.consumer_details {
        object["consumer_details"] = details
            .iter()
            .map(|c| {
                let mut entry =
                    json!({"consumer_tag": "amq.ctag-1", "channel_details": {"name": "c"}});
                if let Some(ack) = c.ack_required {
                    entry["ack_required"] = json!(ack);
                }
                if let Some(prefetch) = c.prefetch_count {
                    entry["prefetch_count"] = json!(prefetch);
                }
                if let Some(active) = c.active {
                    entry["active"] = json!(active);
                }
                entry
            })
            .collect();
    }
    if let Some(published) = stats.published {
        object["message_stats"] = json!({"publish": published, "publish_details": {"rate": 1.5}});
    }
    serde_json::to_vec(&object).unwrap()
}

proptest! {
    /// A reply in RabbitMQ's shape parses to exactly its numbers.
    #[test]
    fn replies_parse_to_their_numbers(stats in stats()) {
        let body = reply(&stats);
        prop_assert_eq!(QueueStats::from_json(&body).unwrap(), stats);
        fuzzing::management_reply(&body);
    }

    /// Any bytes: stats or a typed error, never a panic (the fuzz target).
    #[test]
    fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzzing::management_reply(&bytes);
    }

    /// A valid reply cut short or with a byte changed: the same.
    #[test]
    fn damaged_replies_fail_cleanly(stats in stats(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut body = reply(&stats);
        let at = cut.index(body.len());
        let mut damaged = b"\x01\x02\x03\x04\x05\x06\x07\x08".to_vec();
        damaged.extend_from_slice(&body[..at]);
        fuzzing::management_reply(&damaged);
        body[at] = byte;
        let mut changed = b"\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
        changed.extend_from_slice(&body);
        fuzzing::management_reply(&changed);
    }

    /// The snapshot's numbers agree with what it was made of.
    #[test]
    fn snapshots_agree_with_their_sources(declare in declare(), stats in stats(), report_idle in any::<bool>(), age in proptest::option::of(0..1_000_u64)) {
        let age = age.map(Duration::from_secs);
        let snapshot = answer::snapshot(declare, &stats, Some(3.0), age, report_idle).unwrap();
        let waiting = stats.ready.unwrap_or(0).max(u64::from(declare.ready));
        let unacked = match (stats.ready, stats.unacknowledged) {
            (Some(_), Some(u)) => u,
            _ => 0,
        };
        prop_assert_eq!(u64::from(snapshot.messages()), waiting + unacked);
        prop_assert!(snapshot.messages() >= declare.ready);
        if let Some(in_flight) = snapshot.in_flight() {
            prop_assert_eq!(u64::from(in_flight), unacked);
        }
        prop_assert_eq!(snapshot.messages_sent_per_minute(), Some(3.0));
        prop_assert_eq!(snapshot.oldest_age().is_some(), age.is_some() && waiting > 0);
        match snapshot.idleness() {
            Idleness::Idle(idle) => {
                prop_assert!(report_idle);
                prop_assert!(idle <= declare.consumers);
                prop_assert_eq!(waiting, 0);
                let details = stats.consumer_details.as_ref().unwrap();
                prop_assert!(details.iter().all(|c| c.ack_required == Some(true)));
                // Each unacknowledged message makes at most one consumer busy.
                prop_assert!(u64::from(idle) + unacked >= u64::from(declare.consumers));
            }
            Idleness::Unknown => {}
            Idleness::AllIdle | Idleness::NotAllIdle => prop_assert!(false, "never reported"),
        }
    }

    /// A counter rising at a steady pace over a full window reads as that
    /// pace; any counter gives a finite, non-negative rate.
    #[test]
    fn rates_are_finite_and_exact_when_steady(per_poll in 0..100_u64, polls in 4..20_u64, noise in proptest::collection::vec(0..50_u64, 0..20)) {
        let window = Duration::from_secs(60);
        let mut rate = ArrivalRate::new(window);
        for poll in 0..polls {
            rate.record(Duration::from_secs(20 * poll), 1_000 + per_poll * poll);
        }
        // 20 s per poll: per_poll * 3 per minute.
        prop_assert_eq!(rate.per_minute(), Some(per_poll as f64 * 3.0));
        let mut total = 0;
        let mut any = ArrivalRate::new(window);
        for (i, step) in noise.iter().enumerate() {
            total += step;
            any.record(Duration::from_secs(7 * i as u64), total);
            if let Some(r) = any.per_minute() {
                prop_assert!(r.is_finite() && r >= 0.0);
            }
        }
    }
}
