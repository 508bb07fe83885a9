//! The bodies of this crate's fuzz targets (`fuzz/fuzz_targets/nats_*.rs`),
//! also run by its property tests, so `cargo test` exercises what the
//! fuzzer checks. Each panics only when a property fails.

use crate::answer::{self, IdleWorkers};
use crate::api;
use crate::{ConsumerName, Error, NatsUri, StreamName};

/// `nats_uri`: parsing never panics; an accepted URI prints (credentials
/// aside) to a string that parses back to it, and never prints its
/// secret; a refusal is one line.
pub fn uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<NatsUri>() {
        Ok(uri) => {
            let bare = uri.clone().with_credentials(None);
            let again: NatsUri = bare
                .to_string()
                .parse()
                .unwrap_or_else(|e| panic!("{bare} does not parse back: {e}"));
            assert_eq!(again, bare);
            // The secret is shown as `***`, and only the user is shown.
            let userinfo = match uri.credentials() {
                Some(crate::Credentials::UserPassword { user, .. }) => {
                    format!("{}:***@", crate::uri::percent_encode(user))
                }
                Some(crate::Credentials::Token(_)) => "***@".to_owned(),
                None => String::new(),
            };
            let expected = format!(
                "{}://{userinfo}{}/{}/{}",
                uri.scheme().as_str(),
                uri.address(),
                uri.stream(),
                uri.consumer()
            );
            assert_eq!(uri.to_string(), expected);
            let debug = match uri.credentials() {
                Some(crate::Credentials::UserPassword { user, .. }) => {
                    format!("Some(UserPassword {{ user: {user:?}, password: \"***\" }})")
                }
                Some(crate::Credentials::Token(_)) => "Some(Token(\"***\"))".to_owned(),
                None => "None".to_owned(),
            };
            assert_eq!(format!("{:?}", uri.credentials()), debug);
        }
        Err(error) => {
            assert!(matches!(
                error,
                Error::InvalidUri { .. } | Error::InvalidName { .. }
            ));
            assert!(!error.to_string().contains('\n'), "{error}");
        }
    }
}

/// `nats_consumer_info`: decoding any bytes as a `CONSUMER.INFO` reply never
/// panics; what it accepts makes a snapshot (or a `TooLarge` error) whose
/// messages are `num_pending + num_ack_pending` and in-flight
/// `num_ack_pending`; the same bytes as a `STREAM.INFO` or `STREAM.MSG.GET`
/// reply never panic either.
pub fn consumer_info(data: &[u8]) {
    let (Ok(stream), Ok(consumer)) = ("S".parse::<StreamName>(), "C".parse::<ConsumerName>())
    else {
        return;
    };
    match api::parse_consumer_info(data, &stream, &consumer) {
        Ok(info) => {
            for rule in [
                IdleWorkers::WhenNothingHeld,
                IdleWorkers::OneMessagePerFetch,
                IdleWorkers::Never,
            ] {
                match answer::snapshot(&info, rule, None, None) {
                    Ok(snapshot) => {
                        assert_eq!(
                            u64::from(snapshot.messages()),
                            info.num_pending + info.num_ack_pending
                        );
                        assert_eq!(
                            snapshot.in_flight().map(u64::from),
                            Some(info.num_ack_pending)
                        );
                    }
                    Err(error) => assert!(matches!(error, Error::TooLarge { .. }), "{error:?}"),
                }
            }
        }
        Err(error) => assert!(
            matches!(
                error,
                Error::MalformedReply { .. }
                    | Error::StreamNotFound { .. }
                    | Error::ConsumerNotFound { .. }
                    | Error::Api { .. }
            ),
            "{error:?}"
        ),
    }
    let _ = api::parse_stream_info(data, &stream);
    let _ = api::parse_stored_message(data, &stream);
}
