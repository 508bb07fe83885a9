//! The pure parts: queue URIs, the JetStream API reply decoders, and what
//! the numbers mean (`answer`), with examples and property tests. The fuzz
//! target bodies run here too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use wpa_core::Idleness;
use wpa_nats::answer::{self, ArrivalRate, IdleWorkers};
use wpa_nats::api::{self, ConsumerInfo};
use wpa_nats::{ConsumerName, Credentials, Error, NatsUri, Scheme, StreamName};

fn names() -> (StreamName, ConsumerName) {
    ("S".parse().unwrap(), "C".parse().unwrap())
}

#[test]
fn uri_forms_and_defaults() {
    let cases = [
        (
            "nats://localhost:4222/ORDERS/work",
            Scheme::Nats,
            "localhost:4222",
            "ORDERS",
            "work",
        ),
        (
            "nats:///ORDERS/work",
            Scheme::Nats,
            "localhost:4222",
            "ORDERS",
            "work",
        ),
        ("nats://:4333/S/C", Scheme::Nats, "localhost:4333", "S", "C"),
        (
            "tls://nats.example/S/C",
            Scheme::Tls,
            "nats.example:4222",
            "S",
            "C",
        ),
        (
            "nats://10.0.0.1:/S/C",
            Scheme::Nats,
            "10.0.0.1:4222",
            "S",
            "C",
        ),
        (
            "nats://[::1]:1234/S/C",
            Scheme::Nats,
            "[::1]:1234",
            "S",
            "C",
        ),
        ("nats://[::1]/S/C", Scheme::Nats, "[::1]:4222", "S", "C"),
        (
            "nats://h/my-stream_1/consumer-2",
            Scheme::Nats,
            "h:4222",
            "my-stream_1",
            "consumer-2",
        ),
    ];
    for (text, scheme, address, stream, consumer) in cases {
        let uri: NatsUri = text.parse().unwrap();
        assert_eq!(uri.scheme(), scheme, "{text}");
        assert_eq!(uri.address(), address, "{text}");
        assert_eq!(uri.stream().as_str(), stream, "{text}");
        assert_eq!(uri.consumer().as_str(), consumer, "{text}");
        assert_eq!(uri.credentials(), None);
    }
    let uri: NatsUri = "tls://h:5/S/C".parse().unwrap();
    assert_eq!(uri.to_string(), "tls://h:5/S/C");
    assert_eq!(uri.server_url(), "tls://h:5");
}

#[test]
fn credentials_are_decoded_and_never_shown() {
    let uri: NatsUri = "nats://wpa:p%40ss%3Aw%2Frd@h/S/C".parse().unwrap();
    assert_eq!(
        uri.credentials(),
        Some(&Credentials::UserPassword {
            user: "wpa".into(),
            password: "p@ss:w/rd".into()
        })
    );
    assert_eq!(uri.to_string(), "nats://wpa:***@h:4222/S/C");
    assert!(!format!("{uri:?}").contains("p@ss"));
    let uri: NatsUri = "nats://s3cr3t-token@h/S/C".parse().unwrap();
    assert_eq!(
        uri.credentials(),
        Some(&Credentials::Token("s3cr3t-token".into()))
    );
    assert_eq!(uri.to_string(), "nats://***@h:4222/S/C");
    assert!(!format!("{uri:?}").contains("s3cr3t"));
    let uri: NatsUri = "nats://user:@h/S/C".parse().unwrap();
    assert!(
        matches!(uri.credentials(), Some(Credentials::UserPassword { password, .. }) if password.is_empty())
    );
    // Unescaped @ in a password: the last @ ends the user info.
    let uri: NatsUri = "nats://u:a@b@h/S/C".parse().unwrap();
    assert_eq!(uri.host(), "h");
    // Errors never repeat the secret.
    let error = "nats://u:hunter2@h/S".parse::<NatsUri>().unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
    let error = "nats://u:hun/ter2@h/S/C".parse::<NatsUri>().unwrap_err();
    assert!(!error.to_string().contains("ter2"), "{error}");
}

#[test]
fn malformed_uris_are_typed_errors_saying_what_is_expected() {
    for text in [
        "",
        "nats://",
        "nats://host",
        "nats://host/",
        "nats://host/S",
        "nats://host/S/",
        "nats://host//C",
        "nats://host/S/C/extra",
        "nats+tls://host/S/C",
        "jetstream://host/S/C",
        "ws://host/S/C",
        "https://sqs.eu-west-1.amazonaws.com/1/q",
        "nats://host:0/S/C",
        "nats://host:65536/S/C",
        "nats://host:-1/S/C",
        "nats://host:port/S/C",
        "nats://@host/S/C",
        "nats://:pw@host/S/C",
        "nats://u:%zz@host/S/C",
        "nats://host/S/C?x=1",
        "nats://host/S/C#f",
        "nats://host/S.T/C",
        "nats://host/S/C*",
        "nats://host/S/>",
        "nats://host/with space/C",
        "nats://[::1/S/C",
        "nats://[zz]/S/C",
        "nats://ho st/S/C",
        "nats://::1/S/C",
    ] {
        let error = text.parse::<NatsUri>().unwrap_err();
        assert!(
            matches!(error, Error::InvalidUri { .. } | Error::InvalidName { .. }),
            "{text}: {error:?}"
        );
        let message = error.to_string();
        assert!(!message.contains('\n'));
        if let Error::InvalidUri { .. } = error {
            assert!(
                message.contains("nats://[user:password@]host[:port]/STREAM/CONSUMER"),
                "{message}"
            );
        }
    }
    assert!(
        "nats+tls://h/S/C"
            .parse::<NatsUri>()
            .unwrap_err()
            .to_string()
            .contains("tls://")
    );
    let long = format!("nats://h/{}/C", "a".repeat(256));
    assert!(long.parse::<NatsUri>().is_err());
    assert!(
        format!("nats://h/{}/C", "a".repeat(255))
            .parse::<NatsUri>()
            .is_ok()
    );
}

const INFO: &str = r#"{"type":"io.nats.jetstream.api.v1.consumer_info_response","stream_name":"S","name":"C","created":"2026-12-02T03:17:04.710985935Z","config":{"durable_name":"C","deliver_policy":"all","ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"filter_subject":"orders.new","replay_policy":"instant","max_waiting":512,"max_ack_pending":1000,"num_replicas":0},"delivered":{"consumer_seq":7,"stream_seq":12},"ack_floor":{"consumer_seq":5,"stream_seq":9},"num_ack_pending":2,"num_redelivered":1,"num_waiting":3,"num_pending":4}"#;

#[test]
fn a_consumer_info_reply_decodes() {
    let (stream, consumer) = names();
    let info = api::parse_consumer_info(INFO.as_bytes(), &stream, &consumer).unwrap();
    assert_eq!(
        (
            info.num_pending,
            info.num_ack_pending,
            info.num_waiting,
            info.num_redelivered
        ),
        (4, 2, 3, 1)
    );
    assert_eq!(
        (info.delivered.consumer_seq, info.delivered.stream_seq),
        (7, 12)
    );
    assert_eq!(info.ack_floor.stream_seq, 9);
    assert!(info.config.is_pull());
    assert_eq!(info.config.filters(), vec!["orders.new".to_owned()]);
    let snapshot = answer::snapshot(&info, IdleWorkers::default(), None, None).unwrap();
    assert_eq!((snapshot.messages(), snapshot.in_flight()), (6, Some(2)));
    assert_eq!(snapshot.idleness(), Idleness::Unknown);
    assert_eq!(answer::consumer_offered(&info), 11);
}

#[test]
fn api_errors_are_typed() {
    let (stream, consumer) = names();
    let missing_consumer = br#"{"type":"io.nats.jetstream.api.v1.consumer_info_response","error":{"code":404,"err_code":10014,"description":"consumer not found"}}"#;
    assert!(matches!(
        api::parse_consumer_info(missing_consumer, &stream, &consumer),
        Err(Error::ConsumerNotFound { stream, consumer }) if stream == "S" && consumer == "C"
    ));
    let missing_stream = br#"{"type":"io.nats.jetstream.api.v1.consumer_info_response","error":{"code":404,"err_code":10059,"description":"stream not found"}}"#;
    assert!(matches!(
        api::parse_consumer_info(missing_stream, &stream, &consumer),
        Err(Error::StreamNotFound { stream }) if stream == "S"
    ));
    let stream_missing = br#"{"type":"io.nats.jetstream.api.v1.stream_info_response","error":{"code":404,"err_code":10059,"description":"stream not found"},"total":0,"offset":0,"limit":0}"#;
    assert!(matches!(
        api::parse_stream_info(stream_missing, &stream),
        Err(Error::StreamNotFound { .. })
    ));
    let other = br#"{"error":{"code":503,"err_code":10039,"description":"jetstream not enabled for account"}}"#;
    let error = api::parse_consumer_info(other, &stream, &consumer).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Api {
                code: 503,
                err_code: 10039,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("$JS.API.CONSUMER.INFO.S.C"));
    assert!(error.to_string().contains("jetstream not enabled"));
    let none = br#"{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","error":{"code":404,"err_code":10037,"description":"no message found"}}"#;
    assert_eq!(api::parse_stored_message(none, &stream).unwrap(), None);
}

#[test]
fn wrong_or_broken_replies_are_malformed() {
    let (stream, consumer) = names();
    let other_consumer = INFO.replace(r#""name":"C""#, r#""name":"D""#);
    let wrong_type = INFO.replace("consumer_info_response", "stream_info_response");
    let negative = INFO.replace(r#""num_pending":4"#, r#""num_pending":-4"#);
    let missing = INFO.replace(r#","num_waiting":3"#, "");
    let string = INFO.replace(r#""num_pending":4"#, r#""num_pending":"4""#);
    let huge = INFO.replace(
        r#""num_pending":4"#,
        r#""num_pending":18446744073709551616"#,
    );
    for body in [
        other_consumer.as_str(),
        wrong_type.as_str(),
        negative.as_str(),
        missing.as_str(),
        string.as_str(),
        huge.as_str(),
        "",
        "null",
        "[]",
        "{}",
        "+OK",
        &INFO[..INFO.len() - 1],
    ] {
        let error = api::parse_consumer_info(body.as_bytes(), &stream, &consumer).unwrap_err();
        assert!(
            matches!(error, Error::MalformedReply { .. }),
            "{body}: {error:?}"
        );
        assert!(!error.to_string().contains('\n'));
    }
}

#[test]
fn stream_info_and_stored_messages_decode() {
    let (stream, _) = names();
    let body = br#"{"type":"io.nats.jetstream.api.v1.stream_info_response","total":0,"offset":0,"limit":0,"config":{"name":"S","subjects":["orders.\u003e"],"retention":"limits","storage":"file","num_replicas":1},"created":"2026-12-02T03:17:04.709313525Z","state":{"messages":2,"bytes":86,"first_seq":1,"first_ts":"2026-12-02T03:17:04.71251333Z","last_seq":2,"last_ts":"2026-12-02T03:17:04.754599961Z","num_subjects":2,"consumer_count":1}}"#;
    let info = api::parse_stream_info(body, &stream).unwrap();
    assert_eq!(info.config.subjects, vec!["orders.>".to_owned()]);
    assert_eq!((info.state.messages, info.state.last_seq), (2, 2));
    assert!(!info.config.takes_other_streams());
    let sourced = br#"{"config":{"name":"S","sources":[{"name":"ORIGIN"}]},"state":{"messages":0,"last_seq":0}}"#;
    assert!(
        api::parse_stream_info(sourced, &stream)
            .unwrap()
            .config
            .takes_other_streams()
    );
    let mirror = br#"{"config":{"name":"S","mirror":{"name":"ORIGIN"}},"state":{"messages":0,"last_seq":0}}"#;
    assert!(
        api::parse_stream_info(mirror, &stream)
            .unwrap()
            .config
            .takes_other_streams()
    );

    let message = br#"{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"orders.new","seq":1,"data":"aGVsbG8=","time":"2026-12-02T03:17:04.71251333Z"}}"#;
    let stored = api::parse_stored_message(message, &stream)
        .unwrap()
        .unwrap();
    assert_eq!((stored.subject.as_str(), stored.seq), ("orders.new", 1));
    let at = stored.time.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(at.subsec_nanos(), 712_513_330);
    let bad_time = br#"{"message":{"subject":"a","seq":1,"time":"yesterday"}}"#;
    assert!(matches!(
        api::parse_stored_message(bad_time, &stream),
        Err(Error::MalformedReply { .. })
    ));
    assert_eq!(
        api::next_message_request(13, "orders.new"),
        br#"{"seq":13,"next_by_subj":"orders.new"}"#
    );
}

#[test]
fn the_api_subjects() {
    let (stream, consumer) = names();
    assert_eq!(
        api::consumer_info_subject(&stream, &consumer),
        "$JS.API.CONSUMER.INFO.S.C"
    );
    assert_eq!(api::stream_info_subject(&stream), "$JS.API.STREAM.INFO.S");
    assert_eq!(api::msg_get_subject(&stream), "$JS.API.STREAM.MSG.GET.S");
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-][A-Za-z0-9_@%+=-]{0,20}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,2}",
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
        Just("[fe80::1:2]".to_owned()),
    ]
}

fn consumer_info_json(
    pending: u64,
    ack_pending: u64,
    waiting: u64,
    filter: Option<&str>,
    push: bool,
    extra: &str,
) -> String {
    let mut config = serde_json::json!({"durable_name": "C", "ack_policy": "explicit"});
    if let Some(filter) = filter {
        config["filter_subject"] = filter.into();
    }
    if push {
        config["deliver_subject"] = "deliver.x".into();
    }
    let mut value = serde_json::json!({
        "type": "io.nats.jetstream.api.v1.consumer_info_response",
        "stream_name": "S",
        "name": "C",
        "config": config,
        "delivered": {"consumer_seq": 3, "stream_seq": 9},
        "ack_floor": {"consumer_seq": 1, "stream_seq": 2},
        "num_ack_pending": ack_pending,
        "num_redelivered": 0,
        "num_waiting": waiting,
        "num_pending": pending,
    });
    value[extra] = serde_json::json!({"anything": [1, "two", null]});
    value.to_string()
}

proptest! {
    #[test]
    fn generated_uris_parse_to_their_parts(
        tls in any::<bool>(),
        user in proptest::option::of(("[a-z]{1,8}", "[ -~]{0,12}")),
        host in host(),
        port in proptest::option::of(1u16..),
        stream in name(),
        consumer in name(),
    ) {
        let scheme = if tls { "tls" } else { "nats" };
        let userinfo = match &user {
            Some((user, password)) => {
                let encoded: String = password
                    .bytes()
                    .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02x}") })
                    .collect();
                format!("{user}:{encoded}@")
            }
            None => String::new(),
        };
        let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
        let text = format!("{scheme}://{userinfo}{host}{port_text}/{stream}/{consumer}");
        let uri: NatsUri = text.parse().unwrap();
        prop_assert_eq!(uri.port(), port.unwrap_or(4222));
        prop_assert_eq!(uri.host(), host.trim_start_matches('[').trim_end_matches(']'));
        prop_assert_eq!(uri.stream().as_str(), stream.as_str());
        prop_assert_eq!(uri.consumer().as_str(), consumer.as_str());
        prop_assert_eq!(uri.scheme() == Scheme::Tls, tls);
        match (&user, uri.credentials()) {
            (Some((u, p)), Some(Credentials::UserPassword { user, password })) => {
                prop_assert_eq!(u, user);
                prop_assert_eq!(p, password);
            }
            (None, None) => {}
            (expected, got) => prop_assert!(false, "{expected:?} vs {got:?}"),
        }
        wpa_nats::fuzz::uri(text.as_bytes());
    }

    #[test]
    fn any_text_parses_or_fails_cleanly(text in "\\PC{0,60}", prefix in prop_oneof![Just(""), Just("nats://"), Just("tls://"), Just("nats://h/")]) {
        wpa_nats::fuzz::uri(format!("{prefix}{text}").as_bytes());
    }

    #[test]
    fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        wpa_nats::fuzz::consumer_info(&bytes);
    }

    #[test]
    fn generated_consumer_infos_decode_to_their_counts(
        pending in prop_oneof![0u64..10, any::<u64>()],
        ack_pending in prop_oneof![0u64..10, any::<u64>()],
        waiting in 0u64..1000,
        filter in proptest::option::of("[a-z]{1,5}(\\.[a-z]{1,5}){0,2}"),
        push in any::<bool>(),
        extra in "[a-z_]{1,10}",
    ) {
        let json = consumer_info_json(pending, ack_pending, waiting, filter.as_deref(), push, &extra);
        let (stream, consumer) = names();
        let info: ConsumerInfo = api::parse_consumer_info(json.as_bytes(), &stream, &consumer).unwrap();
        prop_assert_eq!((info.num_pending, info.num_ack_pending, info.num_waiting), (pending, ack_pending, waiting));
        prop_assert_eq!(info.config.is_pull(), !push);
        prop_assert_eq!(info.config.filters().is_empty(), filter.is_none());
        let total = pending.checked_add(ack_pending).filter(|t| *t <= u64::from(u32::MAX));
        for rule in [IdleWorkers::WhenNothingHeld, IdleWorkers::OneMessagePerFetch, IdleWorkers::Never] {
            match (answer::snapshot(&info, rule, None, None), total) {
                (Ok(snapshot), Some(total)) => {
                    prop_assert_eq!(u64::from(snapshot.messages()), total);
                    prop_assert_eq!(snapshot.in_flight().map(u64::from), Some(ack_pending));
                    let expected = match rule {
                        _ if push => Idleness::Unknown,
                        IdleWorkers::WhenNothingHeld if total == 0 => Idleness::Idle(u32::try_from(waiting).unwrap()),
                        IdleWorkers::OneMessagePerFetch => Idleness::Idle(u32::try_from(waiting).unwrap()),
                        _ => Idleness::Unknown,
                    };
                    prop_assert_eq!(snapshot.idleness(), expected);
                }
                (Err(Error::TooLarge { .. }), None) => {}
                (other, total) => prop_assert!(false, "{other:?} for total {total:?}"),
            }
        }
        wpa_nats::fuzz::consumer_info(json.as_bytes());
    }

    /// A counter rising by `per_step` every `step` reads as that rate once
    /// the window is full, never negative, never before two samples.
    #[test]
    fn the_rate_of_a_steady_counter(
        per_step in 0u64..1000,
        step_ms in 100u64..30_000,
        steps in 2usize..40,
        window_s in 1u64..300,
        start in any::<u32>(),
    ) {
        let window = Duration::from_secs(window_s);
        let step = Duration::from_millis(step_ms);
        let mut rate = ArrivalRate::new(window);
        rate.record(Duration::ZERO, u64::from(start));
        prop_assert_eq!(rate.per_minute(), None);
        let mut at = Duration::ZERO;
        let mut counter = u64::from(start);
        for _ in 1..steps {
            at += step;
            counter += per_step;
            rate.record(at, counter);
            let measured = rate.per_minute().unwrap();
            prop_assert!(measured >= 0.0 && measured.is_finite());
            #[allow(clippy::cast_precision_loss)]
            let exact = per_step as f64 * 60_000.0 / step_ms as f64;
            prop_assert!(measured <= exact * (1.0 + 1e-9) + 1e-9, "{measured} > {exact}");
            if at >= window + step {
                prop_assert!((measured - exact).abs() <= exact * 1e-9 + 1e-9, "{measured} vs {exact}");
            }
        }
    }

    #[test]
    fn ages_are_the_clock_difference_or_zero(stored_s in 0u64..1 << 40, delta_ms in -100_000i64..100_000) {
        let stored = SystemTime::UNIX_EPOCH + Duration::from_secs(stored_s);
        let now = if delta_ms >= 0 {
            stored + Duration::from_millis(delta_ms.unsigned_abs())
        } else {
            stored - Duration::from_millis(delta_ms.unsigned_abs())
        };
        let age = answer::message_age(stored, now);
        prop_assert_eq!(age, if delta_ms >= 0 { Duration::from_millis(delta_ms.unsigned_abs()) } else { Duration::ZERO });
    }
}
