//! Properties of the pure parts: the reply decoders (any bytes; replies
//! written as a RESP2 or RESP3 server would), timestamps, and `answer`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;
use wpa_core::Idleness;
use wpa_redis::answer::{self, ArrivalRate, Reading};
use wpa_redis::fuzzing;
use wpa_redis::reply::{self, ConsumerInfo, GroupInfo, StreamId, StreamInfo};

fn bulk(text: &str) -> String {
    format!("${}\r\n{text}\r\n", text.len())
}

fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

/// A field-value list as RESP2 (flat array) or RESP3 (map) writes it.
fn record(resp3: bool, fields: &[(&str, String)]) -> String {
    let mut out = if resp3 {
        format!("%{}\r\n", fields.len())
    } else {
        format!("*{}\r\n", fields.len() * 2)
    };
    for (name, value) in fields {
        out.push_str(&bulk(name));
        out.push_str(value);
    }
    out
}

fn nil(resp3: bool) -> String {
    if resp3 {
        "_\r\n".to_owned()
    } else {
        "$-1\r\n".to_owned()
    }
}

fn optional(resp3: bool, value: Option<u64>) -> String {
    value.map_or_else(|| nil(resp3), |v| int(i64::try_from(v).unwrap()))
}

fn stream_id() -> impl Strategy<Value = StreamId> {
    (any::<u64>(), any::<u64>()).prop_map(|(ms, seq)| StreamId { ms, seq })
}

fn group() -> impl Strategy<Value = GroupInfo> {
    (
        "[a-z0-9:-]{1,12}",
        0..i64::MAX as u64,
        0..i64::MAX as u64,
        stream_id(),
        proptest::option::of(0..i64::MAX as u64),
        proptest::option::of(0..i64::MAX as u64),
    )
        .prop_map(
            |(name, consumers, pending, last_delivered_id, entries_read, lag)| GroupInfo {
                name,
                consumers,
                pending,
                last_delivered_id,
                entries_read,
                lag,
            },
        )
}

fn consumer() -> impl Strategy<Value = ConsumerInfo> {
    (
        "[a-z0-9-]{1,12}",
        0..i64::MAX as u64,
        0..i64::MAX as u64,
        proptest::option::of(-1..i64::MAX),
    )
        .prop_map(|(name, pending, idle_ms, inactive_ms)| ConsumerInfo {
            name,
            pending,
            idle_ms,
            inactive_ms,
        })
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's civil_from_days).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(m <= 2), m, d)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_are_decoded_or_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzzing::reply(&bytes);
    }

    #[test]
    fn any_reply_shaped_bytes_are_decoded_or_refused_without_panicking(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("*2\r\n".to_owned()), Just("%1\r\n".to_owned()), Just("_\r\n".to_owned()),
                Just("$-1\r\n".to_owned()), Just(bulk("name")), Just(bulk("lag")), Just(bulk("1-0")),
                Just(bulk("{\"queues\":[\"a\"]}")), (-3_i64..3).prop_map(int), "[ -~]{0,6}".prop_map(|t| bulk(&t)),
            ],
            0..24,
        )
    ) {
        fuzzing::reply(parts.concat().as_bytes());
    }

    #[test]
    fn xinfo_groups_decode_as_written(groups in proptest::collection::vec(group(), 0..4), resp3 in any::<bool>()) {
        let mut text = format!("*{}\r\n", groups.len());
        for g in &groups {
            text.push_str(&record(resp3, &[
                ("name", bulk(&g.name)),
                ("consumers", int(i64::try_from(g.consumers).unwrap())),
                ("pending", int(i64::try_from(g.pending).unwrap())),
                ("last-delivered-id", bulk(&g.last_delivered_id.to_string())),
                ("entries-read", optional(resp3, g.entries_read)),
                ("lag", optional(resp3, g.lag)),
            ]));
        }
        let value = redis::parse_redis_value(text.as_bytes()).unwrap();
        prop_assert_eq!(reply::groups(&value).unwrap(), groups);
    }

    #[test]
    fn xinfo_consumers_decode_as_written(consumers in proptest::collection::vec(consumer(), 0..4), resp3 in any::<bool>()) {
        let mut text = format!("*{}\r\n", consumers.len());
        for c in &consumers {
            let mut fields = vec![
                ("name", bulk(&c.name)),
                ("pending", int(i64::try_from(c.pending).unwrap())),
                ("idle", int(i64::try_from(c.idle_ms).unwrap())),
            ];
            if let Some(inactive) = c.inactive_ms {
                fields.push(("inactive", int(inactive)));
            }
            text.push_str(&record(resp3, &fields));
        }
        let value = redis::parse_redis_value(text.as_bytes()).unwrap();
        prop_assert_eq!(reply::consumers(&value).unwrap(), consumers);
    }

    #[test]
    fn xinfo_stream_decodes_as_written(
        length in 0..i64::MAX as u64,
        last in stream_id(),
        added in proptest::option::of(0..i64::MAX as u64),
        first in proptest::option::of(stream_id()),
        resp3 in any::<bool>(),
    ) {
        let first_entry = match first {
            Some(id) => format!("*2\r\n{}*2\r\n{}{}", bulk(&id.to_string()), bulk("f"), bulk("v")),
            None => nil(resp3),
        };
        let mut fields = vec![
            ("length", int(i64::try_from(length).unwrap())),
            ("radix-tree-keys", int(1)),
            ("last-generated-id", bulk(&last.to_string())),
            ("first-entry", first_entry.clone()),
            ("last-entry", first_entry),
        ];
        if let Some(added) = added {
            fields.push(("entries-added", int(i64::try_from(added).unwrap())));
        }
        let value = redis::parse_redis_value(record(resp3, &fields).as_bytes()).unwrap();
        prop_assert_eq!(
            reply::stream(&value).unwrap(),
            StreamInfo { length, last_generated_id: last, entries_added: added, first_entry_id: first }
        );
    }

    #[test]
    fn rq_timestamps_are_unix_milliseconds(ms in 0_u64..253_402_300_800_000, micros in 0_u32..1000, full in any::<bool>()) {
        let (y, m, d) = civil(ms / 86_400_000);
        let in_day = ms % 86_400_000;
        let (h, mi, s) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60);
        let stamp = if full {
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}{micros:03}Z", ms % 1000)
        } else {
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        };
        let expected = if full { ms } else { ms - ms % 1000 };
        prop_assert_eq!(reply::rq_timestamp_ms(&stamp), Some(expected), "{}", stamp);
    }

    #[test]
    fn a_snapshot_counts_waiting_plus_in_flight(
        waiting in 0_u64..=u64::from(u32::MAX),
        in_flight in proptest::option::of(0_u64..=u64::from(u32::MAX)),
        woke in any::<bool>(),
        rate in proptest::option::of(0.0_f64..1e6),
    ) {
        let reading = Reading { waiting, in_flight, idleness: Idleness::AllIdle, ..Reading::default() };
        let total = waiting + in_flight.unwrap_or(0);
        match answer::snapshot(&reading, woke, rate) {
            Ok(s) => {
                prop_assert!(total <= u64::from(u32::MAX));
                prop_assert_eq!(u64::from(s.messages()), if woke { total.max(1) } else { total });
                prop_assert!(s.in_flight().is_none_or(|f| f <= s.messages()));
                prop_assert_eq!(s.in_flight().is_some(), in_flight.is_some());
                prop_assert_eq!(s.idleness(), if woke { Idleness::Unknown } else { Idleness::AllIdle });
                prop_assert_eq!(s.messages_sent_per_minute(), rate);
            }
            Err(_) => prop_assert!(total > u64::from(u32::MAX)),
        }
    }

    #[test]
    fn the_rate_is_never_negative_and_never_more_than_the_rise_over_the_window(
        steps in proptest::collection::vec((0_u64..30_000, 0_u64..1000), 1..40),
        window_s in 1_u64..120,
    ) {
        let window = Duration::from_secs(window_s);
        let mut rate = ArrivalRate::new(window);
        let (mut at, mut total) = (Duration::ZERO, 0_u64);
        for (gap_ms, added) in steps {
            at += Duration::from_millis(gap_ms);
            total += added;
            rate.record(at, total);
            if let Some(per_minute) = rate.per_minute() {
                #[allow(clippy::cast_precision_loss)]
                let bound = total as f64 * 60.0 / window.as_secs_f64();
                prop_assert!(per_minute >= 0.0 && per_minute <= bound + 1e-9, "{per_minute} > {bound}");
            }
        }
    }
}

#[test]
fn an_error_reply_is_recognised() {
    let value =
        redis::parse_redis_value(b"-NOGROUP No such key 's' or consumer group 'g'\r\n").unwrap();
    assert!(reply::is_no_group(&value));
    let value = redis::parse_redis_value(b"-ERR no such key\r\n").unwrap();
    assert!(reply::is_no_such_key(&value));
    assert_eq!(
        reply::server_error(&value),
        Some(("ERR".to_owned(), "no such key".to_owned()))
    );
}

#[test]
fn xread_and_time_replies() {
    let entries =
        "*1\r\n*2\r\n$6\r\nevents\r\n*1\r\n*2\r\n$3\r\n5-0\r\n*2\r\n$1\r\nn\r\n$1\r\n1\r\n";
    assert!(
        reply::xread_has_entries(&redis::parse_redis_value(entries.as_bytes()).unwrap()).unwrap()
    );
    assert!(!reply::xread_has_entries(&redis::parse_redis_value(b"*-1\r\n").unwrap()).unwrap());
    let time = redis::parse_redis_value(b"*2\r\n$10\r\n1700000000\r\n$6\r\n123456\r\n").unwrap();
    assert_eq!(reply::time_ms(&time).unwrap(), 1_700_000_000_123);
}
