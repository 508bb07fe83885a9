//! Fuzz target bodies: each takes raw bytes and panics only when an
//! invariant breaks. `fuzz/` (cargo-fuzz) and this crate's property tests
//! call the same functions.

use crate::answer::{self, DeclareOk};
use crate::management::QueueStats;
use crate::{MAX_NAME_BYTES, RabbitUri};

/// URI parsing never panics, and what it accepts is consistent: names are
/// 1 to 255 bytes, the port is not 0, the URI printed with its password
/// parses back to itself, and the one printed for logs hides the password.
pub fn uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let uri = match text.parse::<RabbitUri>() {
        Ok(uri) => uri,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    for name in [uri.vhost(), uri.queue()] {
        assert!(!name.is_empty() && name.len() <= MAX_NAME_BYTES);
    }
    assert_ne!(uri.port(), 0);
    assert_ne!(uri.management().port(), 0);
    let printed = uri.to_string_with_password();
    let again: RabbitUri = match printed.parse() {
        Ok(again) => again,
        Err(error) => panic!("{printed:?} does not parse back: {error}"),
    };
    assert_eq!(again, uri, "{printed:?}");
    let shown = uri.to_string();
    if uri.has_credentials() {
        let redacted: RabbitUri = match shown.parse() {
            Ok(redacted) => redacted,
            Err(error) => panic!("{shown:?} does not parse: {error}"),
        };
        assert_eq!(redacted.credentials().password(), "***", "{shown:?}");
        assert_eq!(redacted.queue(), uri.queue());
    }
}

/// A management reply: parsing never panics, and a parsed reply gives a
/// snapshot (or a typed error) whose numbers agree: in flight at most the
/// messages, the messages at least the declare's ready count, idle workers
/// only when nothing is ready and never more than the consumers.
pub fn management_reply(data: &[u8]) {
    let (head, body) = data.split_at(data.len().min(8));
    let mut word = [0_u8; 8];
    word[..head.len()].copy_from_slice(head);
    let declare = DeclareOk {
        ready: u32::from(word[0]) % 4 * u32::from(word[1]),
        consumers: u32::from(word[2] % 8),
    };
    let Ok(stats) = QueueStats::from_json(body) else {
        return;
    };
    let report_idle = word[3] % 2 == 0;
    let Ok(snapshot) = answer::snapshot(declare, &stats, None, None, report_idle) else {
        return;
    };
    assert!(snapshot.messages() >= declare.ready);
    if let Some(in_flight) = snapshot.in_flight() {
        assert!(in_flight <= snapshot.messages());
    }
    if let Some(idle) = snapshot.idle_workers(declare.consumers) {
        assert!(report_idle);
        assert!(idle <= declare.consumers);
        assert_eq!(declare.ready, 0);
        assert_eq!(stats.ready, Some(0));
    }
}
