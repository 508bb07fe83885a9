//! Fuzz target bodies: each takes raw bytes and panics only when an
//! invariant breaks. `fuzz/` (cargo-fuzz: `redis_uri`, `redis_reply`) and
//! this crate's property tests call the same functions.

use crate::{Layout, MAX_NAME_LEN, RedisUri, WakeUp, reply};

/// Replies nested deeper than this are not decoded: redis-rs' parser
/// recurses per level, and no reply this crate reads nests beyond 4.
pub const MAX_REPLY_DEPTH: usize = 32;

/// URI parsing never panics; what it accepts prints in a form that parses
/// back to the same URI (the password printed as `***`), never shows the
/// password, and keeps names within bounds; what it refuses says why on
/// one line.
pub fn uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<RedisUri>() {
        Ok(uri) => check_uri(&uri),
        Err(error) => {
            let message = error.to_string();
            assert!(!message.contains('\n'), "{message}");
            if let Some(password) = password_of(text)
                && password.len() > 3
            {
                assert!(!message.contains(&format!(":{password}@")), "{message}");
            }
        }
    }
    let _ = wpa_poller::redact_uri(text);
    let _ = wpa_poller::redact_queue_uri(text);
}

/// The raw password of a URI's user info, if it has one.
fn password_of(text: &str) -> Option<&str> {
    let rest = text.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = authority.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1)
}

fn check_uri(uri: &RedisUri) {
    let printed = uri.to_string();
    if let Some(password) = uri.password()
        && password != "***"
    {
        assert!(!printed.contains(&format!(":{password}@")), "{printed}");
    }
    let again: RedisUri = match printed.parse() {
        Ok(again) => again,
        Err(error) => panic!("{printed} does not parse back: {error}"),
    };
    let expected = match uri.password() {
        Some(_) => uri
            .clone()
            .with_credentials(uri.username().map(str::to_owned), "***"),
        None => uri.clone(),
    };
    assert_eq!(again, expected, "{printed}");
    let name = uri.layout().name();
    assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN);
    if let Layout::Stream { group, .. } = uri.layout() {
        assert!(!group.is_empty());
    }
    if uri.wake_up() == WakeUp::Block {
        assert!(matches!(
            uri.layout(),
            Layout::List { .. }
                | Layout::Stream { .. }
                | Layout::Sidekiq { .. }
                | Layout::Rq { .. }
                | Layout::Celery { .. }
        ));
    }
    assert!(
        !uri.layout().waiting_lists().is_empty() || matches!(uri.layout(), Layout::Stream { .. })
    );
}

/// How deeply the aggregates of a RESP reply nest, reading only the type
/// bytes and lengths (without decoding it). Stops counting past `limit`.
fn depth(data: &[u8], limit: usize) -> usize {
    let mut max = 0;
    for line in data.split(|&b| b == b'\n') {
        if matches!(line.first(), Some(b'*' | b'%' | b'~' | b'>' | b'|')) {
            max += 1;
            if max > limit {
                break;
            }
        }
    }
    max
}

/// Reply decoding never panics on anything redis-rs' parser accepts: every
/// decoder of [`reply`] gets the value, and what they accept is within
/// bounds.
pub fn reply(data: &[u8]) {
    if depth(data, MAX_REPLY_DEPTH) > MAX_REPLY_DEPTH {
        return;
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(ms) = reply::rq_timestamp_ms(text) {
            assert!(ms < 253_402_300_800_000, "{text} is after 9999");
        }
        let _ = reply::sidekiq_enqueued_ms(text);
        let _ = text.parse::<reply::StreamId>();
    }
    let Ok(value) = redis::parse_redis_value(data) else {
        return;
    };
    let _ = reply::count(&value, "LLEN");
    let _ = reply::optional_count(&value, "GET");
    if let Ok(groups) = reply::groups(&value) {
        for group in groups {
            assert!(!group.last_delivered_id.to_string().is_empty());
        }
    }
    let _ = reply::consumers(&value);
    let _ = reply::stream(&value);
    let _ = reply::entry_ids(&value);
    let _ = reply::xread_has_entries(&value);
    let _ = reply::time_ms(&value);
    let _ = reply::optional_text(&value, "LINDEX");
    let _ = reply::members(&value, "SMEMBERS");
    let _ = reply::sidekiq_process(&value);
    let _ = reply::sidekiq_work_queues(&value);
    let _ = reply::server_error(&value);
    let _ = reply::is_no_such_key(&value);
    let _ = reply::is_no_group(&value);
}
