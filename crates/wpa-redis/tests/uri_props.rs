//! Queue URIs: the accepted forms, the refused ones, and properties over
//! generated URIs (the same body as the `redis_uri` fuzz target).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;
use wpa_redis::{Error, Layout, RedisUri, WakeUp, fuzzing};

#[test]
fn forms_and_defaults() {
    let cases: &[(&str, &str, u16, &str, &str)] = &[
        (
            "redis://localhost:6379/0/list/jobs",
            "localhost:6379",
            0,
            "list",
            "jobs",
        ),
        ("redis:///list/jobs", "localhost:6379", 0, "list", "jobs"),
        (
            "redis://:6380/list/jobs",
            "localhost:6380",
            0,
            "list",
            "jobs",
        ),
        (
            "redis://cache.example/15/list/a/b:c",
            "cache.example:6379",
            15,
            "list",
            "a/b:c",
        ),
        (
            "redis://[::1]:7000/stream/events?group=g",
            "[::1]:7000",
            0,
            "stream",
            "events",
        ),
        (
            "redis://h/list/with%20space%3F",
            "h:6379",
            0,
            "list",
            "with space?",
        ),
        ("redis://h/celery", "h:6379", 0, "celery", "celery"),
        ("redis://h/celery/video", "h:6379", 0, "celery", "video"),
        ("redis://h/sidekiq", "h:6379", 0, "sidekiq", "default"),
        ("redis://h/rq/high", "h:6379", 0, "rq", "high"),
        (
            "redis://h/2/bullmq/emails?prefix=app",
            "h:6379",
            2,
            "bullmq",
            "emails",
        ),
        (
            "rediss://user:p%40ss@h:6380/list/jobs",
            "h:6380",
            0,
            "list",
            "jobs",
        ),
    ];
    for &(text, address, db, kind, name) in cases {
        let uri: RedisUri = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(uri.address(), address, "{text}");
        assert_eq!(uri.db(), db, "{text}");
        assert_eq!(uri.layout().kind(), kind, "{text}");
        assert_eq!(uri.layout().name(), name, "{text}");
    }
    let uri: RedisUri = "rediss://user:p%40ss@h:6380/list/jobs".parse().unwrap();
    assert!(uri.tls());
    assert_eq!(
        (uri.username(), uri.password()),
        (Some("user"), Some("p@ss"))
    );
    assert_eq!(uri.to_string(), "rediss://user:***@h:6380/0/list/jobs");
    assert!(!format!("{uri:?}").contains("p@ss"));
    let uri: RedisUri = "redis://:secret@h/list/jobs".parse().unwrap();
    assert_eq!((uri.username(), uri.password()), (None, Some("secret")));
}

#[test]
fn layouts_and_options() {
    let uri: RedisUri = "redis://h/list/jobs?processing=p1&processing=p2"
        .parse()
        .unwrap();
    assert_eq!(
        uri.layout(),
        &Layout::List {
            key: "jobs".into(),
            processing: vec!["p1".into(), "p2".into()]
        }
    );
    assert_eq!(uri.wake_up(), WakeUp::Block);
    let uri: RedisUri = "redis://h/stream/s?group=g&consumer-idle=30&lag-scan=50&wakeup=poll&wakeup-interval-ms=100"
        .parse()
        .unwrap();
    assert_eq!(
        uri.layout(),
        &Layout::Stream {
            key: "s".into(),
            group: "g".into(),
            consumer_idle: Duration::from_secs(30),
            lag_scan: 50
        }
    );
    assert_eq!(
        uri.wake_up(),
        WakeUp::Poll {
            interval: Duration::from_millis(100)
        }
    );
    let uri: RedisUri = "redis://h/celery/q?prefix=app:&priority-steps=0,5&unacked=false"
        .parse()
        .unwrap();
    assert_eq!(uri.layout().waiting_lists(), ["app:q", "app:q\x06\x165"]);
    assert!(
        matches!(uri.wake_up(), WakeUp::Poll { .. }),
        "two lists: polling"
    );
    let uri: RedisUri = "redis://h/celery?priority-steps=0".parse().unwrap();
    assert_eq!(uri.wake_up(), WakeUp::Block, "one list: blocking");
    let uri: RedisUri = "redis://h/bullmq/emails".parse().unwrap();
    assert_eq!(
        uri.layout().waiting_lists(),
        ["bull:emails:wait", "bull:emails:paused"]
    );
    assert!(matches!(uri.wake_up(), WakeUp::Poll { .. }));
    let uri: RedisUri = "redis://h/sidekiq/mail".parse().unwrap();
    assert_eq!(uri.layout().waiting_lists(), ["queue:mail"]);
    let uri: RedisUri = "redis://h/rq".parse().unwrap();
    assert_eq!(uri.layout().waiting_lists(), ["rq:queue:default"]);
}

#[test]
fn malformed_uris_are_typed_errors_that_say_what_is_expected() {
    for (text, hint) in [
        ("", "scheme"),
        ("http://h/list/jobs", "scheme"),
        ("redis://h", "layout is missing"),
        ("redis://h/", "layout is missing"),
        ("redis://h/0", "layout is missing after the database"),
        ("redis://h/queue/jobs", "unknown layout"),
        ("redis://h/list", "list needs the list key"),
        ("redis://h/list/", "empty"),
        ("redis://h/stream/s", "consumer group"),
        ("redis://h/stream/s?group=", "group name is empty"),
        ("redis://h/stream/s?group=a&group=b", "more than once"),
        ("redis://h/bullmq", "queue name"),
        (
            "redis://h/list/jobs?group=g",
            "unknown option \"group\" for list",
        ),
        ("redis://h/list/jobs?processing", "no value"),
        ("redis://h/list/jobs?wakeup=sometimes", "block or poll"),
        ("redis://h/bullmq/q?wakeup=block", "several keys"),
        (
            "redis://h/list/jobs?wakeup-interval-ms=100",
            "wakeup=poll only",
        ),
        (
            "redis://h/list/jobs?wakeup=poll&wakeup-interval-ms=5",
            "10 to 60000",
        ),
        ("redis://h/stream/s?group=g&lag-scan=0", "1 to 100000"),
        ("redis://h/celery?priority-steps=0,x", "priority-steps"),
        ("redis://h/celery?priority-steps=1,1", "repeats"),
        ("redis://h/celery?unacked=yes", "true or false"),
        ("redis://h:0/list/jobs", "port"),
        ("redis://h:65536/list/jobs", "port"),
        ("redis://h:x/list/jobs", "port"),
        ("redis://ho st/list/jobs", "percent-encoded"),
        ("redis://h/list/a\nb", "percent-encoded"),
        ("redis://h/list/jobs#frag", "fragment"),
        ("redis://h/list/%zz", "two hex digits"),
        ("redis://h/list/%ff", "UTF-8"),
        ("redis://user@h/list/jobs", "needs a password"),
        ("redis://user:@h/list/jobs", "password is empty"),
        ("redis://[::1/list/jobs", "unterminated"),
        ("redis://[zz]/list/jobs", "IPv6"),
        ("redis://h/99999/list/jobs", "database"),
    ] {
        let error = text.parse::<RedisUri>().unwrap_err();
        assert!(
            matches!(error, Error::InvalidUri { .. }),
            "{text}: {error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(hint), "{text}: {message}");
        assert!(
            message.contains("expected redis[s]://"),
            "{text}: {message}"
        );
        assert!(!message.contains('\n'), "{text}: {message}");
    }
    let long = format!("redis://h/list/{}", "a".repeat(1025));
    assert!(long.parse::<RedisUri>().is_err());
    let error = "redis://u:hunter2@h/nope/x"
        .parse::<RedisUri>()
        .unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

/// A name of any characters, percent-encoded byte by byte where needed.
fn encoded(name: &str) -> String {
    escape(name, b"-._:/")
}

/// User info: only letters and digits raw.
fn strict(text: &str) -> String {
    escape(text, b"")
}

fn escape(name: &str, safe: &[u8]) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || safe.contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn layout() -> impl Strategy<Value = (String, Layout)> {
    let name = "\\PC{1,24}";
    prop_oneof![
        (name, proptest::collection::vec(name, 0..3)).prop_map(|(key, processing)| {
            let query: Vec<String> = processing
                .iter()
                .map(|p| format!("processing={}", encoded(p)))
                .collect();
            let text = if query.is_empty() {
                format!("list/{}", encoded(&key))
            } else {
                format!("list/{}?{}", encoded(&key), query.join("&"))
            };
            (text, Layout::List { key, processing })
        }),
        (name, name, 1_u64..=86_400, 1_u32..=100_000).prop_map(|(key, group, idle, scan)| (
            format!(
                "stream/{}?group={}&consumer-idle={idle}&lag-scan={scan}",
                encoded(&key),
                encoded(&group)
            ),
            Layout::Stream {
                key,
                group,
                consumer_idle: Duration::from_secs(idle),
                lag_scan: scan
            }
        )),
        (
            name,
            "[a-z:]{0,8}",
            proptest::collection::btree_set(any::<u8>(), 1..6),
            any::<bool>()
        )
            .prop_map(|(queue, prefix, steps, unacked)| {
                let steps: Vec<u8> = steps.into_iter().collect();
                let list: Vec<String> = steps.iter().map(u8::to_string).collect();
                (
                    format!(
                        "celery/{}?prefix={prefix}&priority-steps={}&unacked={unacked}",
                        encoded(&queue),
                        list.join(",")
                    ),
                    Layout::Celery {
                        queue,
                        prefix,
                        priority_steps: steps,
                        unacked,
                    },
                )
            }),
        name.prop_map(|queue| (
            format!("sidekiq/{}", encoded(&queue)),
            Layout::Sidekiq { queue }
        )),
        name.prop_map(|queue| (format!("rq/{}", encoded(&queue)), Layout::Rq { queue })),
        (name, "[a-z]{1,8}").prop_map(|(queue, prefix)| (
            format!("bullmq/{}?prefix={prefix}", encoded(&queue)),
            Layout::Bullmq { queue, prefix }
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_uris_parse_to_their_parts_and_print_back(
        tls in any::<bool>(),
        host in "[a-z][a-z0-9.-]{0,20}",
        port in 1_u16..,
        db in 0_u16..,
        credentials in proptest::option::of(("\\PC{0,8}", "\\PC{1,12}")),
        (path, layout) in layout(),
    ) {
        let userinfo = match &credentials {
            Some((user, password)) => format!("{}:{}@", strict(user), strict(password)),
            None => String::new(),
        };
        let scheme = if tls { "rediss" } else { "redis" };
        let text = format!("{scheme}://{userinfo}{host}:{port}/{db}/{path}");
        let uri: RedisUri = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(uri.tls(), tls);
        prop_assert_eq!(uri.host(), host.as_str());
        prop_assert_eq!((uri.port(), uri.db()), (port, db));
        prop_assert_eq!(uri.layout(), &layout);
        if let Some((user, password)) = &credentials {
            prop_assert_eq!(uri.username(), (!user.is_empty()).then_some(user.as_str()));
            prop_assert_eq!(uri.password(), Some(password.as_str()));
        }
        fuzzing::uri(text.as_bytes());
    }

    #[test]
    fn any_text_is_parsed_or_refused_without_panicking(text in "(redis|rediss)://\\PC{0,60}") {
        fuzzing::uri(text.as_bytes());
    }

    #[test]
    fn any_bytes_are_parsed_or_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        fuzzing::uri(&bytes);
    }
}
