//! Queue URIs: the documented forms, typed errors, and properties over
//! generated URIs (the fuzz target's body included).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use wpa_rabbitmq::{Error, RabbitUri, fuzzing};

#[test]
fn forms_and_defaults() {
    let uri: RabbitUri = "amqp://rabbit/%2F/jobs".parse().unwrap();
    assert_eq!(uri.address(), "rabbit:5672");
    assert_eq!((uri.vhost(), uri.queue()), ("/", "jobs"));
    assert_eq!(
        (uri.credentials().user(), uri.credentials().password()),
        ("guest", "guest")
    );
    assert!(!uri.has_credentials());
    assert_eq!(uri.management().base(), "http://rabbit:15672");
    assert_eq!(
        uri.management().queue_path(uri.vhost(), uri.queue()),
        "/api/queues/%2F/jobs"
    );
    assert_eq!(uri.to_string(), "amqp://rabbit:5672/%2F/jobs");

    let uri: RabbitUri = "amqps://u%3Ax:p%40ss%2Fw@[::1]/prod%2Feu/emails.high?management=https://mon:secret@admin.example:8443/rabbitmq/"
        .parse()
        .unwrap();
    assert!(uri.is_tls());
    assert_eq!(uri.address(), "[::1]:5671");
    assert_eq!(uri.credentials().user(), "u:x");
    assert_eq!(uri.credentials().password(), "p@ss/w");
    assert_eq!((uri.vhost(), uri.queue()), ("prod/eu", "emails.high"));
    let management = uri.management();
    assert!(management.is_tls());
    assert_eq!(
        (
            management.host(),
            management.port(),
            management.path_prefix()
        ),
        ("admin.example", 8443, "/rabbitmq")
    );
    assert_eq!(uri.management_credentials().user(), "mon");
    assert_eq!(
        uri.to_string(),
        "amqps://u%3Ax:***@[::1]:5671/prod%2Feu/emails.high?management=https://mon:***@admin.example:8443/rabbitmq"
    );
    assert!(!format!("{uri:?}").contains("secret"));
    assert!(!format!("{uri:?}").contains("p@ss"));
    let again: RabbitUri = uri.to_string_with_password().parse().unwrap();
    assert_eq!(again, uri);

    // amqps defaults to https on 15671 on the same host.
    let uri: RabbitUri = "amqps://h:1234/v/q".parse().unwrap();
    assert_eq!(uri.management().base(), "https://h:15671");
    // The management URL may be percent-encoded as a whole.
    let uri: RabbitUri = "amqp://h/v/q?management=http%3A%2F%2Fm%3A1"
        .parse()
        .unwrap();
    assert_eq!(uri.management().base(), "http://m:1");
    // Empty host: localhost; raw sub-delims and UTF-8 in names.
    let uri: RabbitUri = "amqp://:5673/v/a+b(c)!é".parse().unwrap();
    assert_eq!(uri.address(), "localhost:5673");
    assert_eq!(uri.queue(), "a+b(c)!é");
    let uri: RabbitUri = "amqp://user@h/v/q".parse().unwrap();
    assert_eq!(uri.credentials().password(), "");
}

#[test]
fn malformed_uris_are_typed_errors_that_say_what_is_expected() {
    for text in [
        "",
        "amqp://",
        "amqp://host",
        "amqp://host/",
        "amqp://host/jobs",
        "amqp://host//jobs",
        "amqp://host/v/",
        "amqp://host/v/q/extra",
        "amqp://host/%2F/a/b",
        "rabbitmq://host/v/q",
        "http://host/v/q",
        "AMQP://host/v/q",
        "amqp://host:0/v/q",
        "amqp://host:65536/v/q",
        "amqp://host:-1/v/q",
        "amqp://host:port/v/q",
        "amqp://u:p@w@host/v/q",
        "amqp://:p@host/v/q",
        "amqp://ho st/v/q",
        "amqp://[::1/v/q",
        "amqp://[zz]/v/q",
        "amqp://[::1]x/v/q",
        "amqp://host/v/q#frag",
        "amqp://host/v/q?",
        "amqp://host/v/q?heartbeat=10",
        "amqp://host/v/q?management",
        "amqp://host/v/q?management=",
        "amqp://host/v/q?management=ftp://m",
        "amqp://host/v/q?management=http://m:1&management=http://m:2",
        "amqp://host/v/q?management=http://m/a/../b",
        "amqp://host/v/q?management=http://m/?x=1",
        "amqp://host/v/%ZZ",
        "amqp://host/v/%C3",
        "amqp://host/v/%00",
        "amqp://host/v/a b",
        "amqp://host/v/a\"b",
    ] {
        let error = text.parse::<RabbitUri>().unwrap_err();
        assert!(
            matches!(error, Error::InvalidUri { .. }),
            "{text}: {error:?}"
        );
        let message = error.to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("expected amqp[s]://"), "{message}");
    }
    let long = format!("amqp://h/v/{}", "q".repeat(256));
    assert!(long.parse::<RabbitUri>().is_err());
    let long_vhost = format!("amqp://h/{}/q", "v".repeat(256));
    assert!(long_vhost.parse::<RabbitUri>().is_err());
    assert!(
        format!("amqp://h/v/{}", "q".repeat(255))
            .parse::<RabbitUri>()
            .is_ok()
    );
    // A refused URI's password is not in the message.
    let error = "amqp://user:hunter2@host/jobs"
        .parse::<RabbitUri>()
        .unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// 1 to 40 characters of anything printable (names RabbitMQ accepts).
fn name() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{1,40}"
}

fn host() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "[a-z0-9][a-z0-9.-]{0,20}".prop_map(|h| (h.clone(), h)),
        Just(("::1".to_owned(), "[::1]".to_owned())),
        Just(("fe80::1:2".to_owned(), "[fe80::1:2]".to_owned())),
        Just(("10.0.0.7".to_owned(), "10.0.0.7".to_owned())),
    ]
}

proptest! {
    /// A URI built from any parts parses back to those parts, prints back
    /// to itself, and never shows its password.
    #[test]
    fn uris_from_parts_round_trip(
        tls in any::<bool>(),
        credentials in proptest::option::of((name(), "[^\\p{Cc}]{0,20}")),
        (host, written_host) in host(),
        port in proptest::option::of(1..=u16::MAX),
        vhost in name(),
        queue in name(),
        management in proptest::option::of((any::<bool>(), host(), 1..=u16::MAX, "(/[a-z0-9_~-][a-z0-9._~-]{0,7}){0,2}")),
    ) {
        let mut text = String::from(if tls { "amqps://" } else { "amqp://" });
        if let Some((user, password)) = &credentials {
            text.push_str(&format!("{}:{}@", encode(user), encode(password)));
        }
        text.push_str(&written_host);
        if let Some(port) = port {
            text.push_str(&format!(":{port}"));
        }
        text.push_str(&format!("/{}/{}", encode(&vhost), encode(&queue)));
        if let Some((mtls, (_, mhost), mport, prefix)) = &management {
            text.push_str(&format!(
                "?management={}://{mhost}:{mport}{prefix}",
                if *mtls { "https" } else { "http" }
            ));
        }
        let uri: RabbitUri = text.parse().unwrap();
        prop_assert_eq!(uri.is_tls(), tls);
        prop_assert_eq!(uri.host(), host.as_str());
        prop_assert_eq!(uri.port(), port.unwrap_or(if tls { 5671 } else { 5672 }));
        prop_assert_eq!(uri.vhost(), vhost.as_str());
        prop_assert_eq!(uri.queue(), queue.as_str());
        if let Some((user, password)) = &credentials {
            prop_assert_eq!(uri.credentials().user(), user.as_str());
            prop_assert_eq!(uri.credentials().password(), password.as_str());
        }
        if let Some((mtls, (mhost, _), mport, prefix)) = &management {
            prop_assert_eq!(uri.management().is_tls(), *mtls);
            prop_assert_eq!(uri.management().host(), mhost.as_str());
            prop_assert_eq!(uri.management().port(), *mport);
            prop_assert_eq!(uri.management().path_prefix(), prefix.as_str());
        } else {
            prop_assert_eq!(uri.management().host(), host.as_str());
        }
        let again: RabbitUri = uri.to_string_with_password().parse().unwrap();
        prop_assert_eq!(&again, &uri);
        fuzzing::uri(text.as_bytes());
    }

    /// Any text: a URI or a typed error, never a panic (the fuzz target).
    #[test]
    fn any_text_parses_or_fails_cleanly(text in "\\PC{0,80}") {
        fuzzing::uri(text.as_bytes());
        fuzzing::uri(format!("amqp://{text}").as_bytes());
        fuzzing::uri(format!("amqps://u:p@h/{text}").as_bytes());
    }

    /// Any bytes, including invalid UTF-8 and control characters.
    #[test]
    fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        fuzzing::uri(&bytes);
        let mut prefixed = b"amqp://h/v/".to_vec();
        prefixed.extend_from_slice(&bytes);
        fuzzing::uri(&prefixed);
    }
}
