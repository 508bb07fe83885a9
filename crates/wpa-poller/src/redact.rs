//! Queue URIs as they may be shown: in logs, errors and WPA status
//! conditions, a password in a URI must not appear.

use std::borrow::Cow;

/// What replaces a secret.
pub const REDACTED: &str = "***";

/// `text` with the secret of every URI's user info replaced by `***`:
/// `scheme://user:secret@host` shows as `scheme://user:***@host`, and a
/// lone token (`nats://token@host`, `redis://secret@host`) as
/// `scheme://***@host`. The user info ends at the last `@` before the
/// query or fragment, so a password holding an unescaped `/` does not leak
/// either (a path holding an `@` is then hidden up to it, which is safe).
/// Every `://` in `text` starts a URI: a query may carry another one
/// (RabbitMQ's management URL). Text without user info is returned as is.
///
/// ```
/// use wpa_poller::redact_uri;
///
/// assert_eq!(redact_uri("amqp://app:s3cret@mq:5672/%2f/jobs"), "amqp://app:***@mq:5672/%2f/jobs");
/// assert_eq!(redact_uri("nats://t0ken@nats:4222/S/C"), "nats://***@nats:4222/S/C");
/// assert_eq!(redact_uri("beanstalk://queue:11300/jobs"), "beanstalk://queue:11300/jobs");
/// ```
#[must_use]
pub fn redact_uri(text: &str) -> Cow<'_, str> {
    redact(text, true)
}

/// [`redact_uri`] of text that is one queue URI, as a spec gives it: its
/// user info may hold blank space (a URI parser may reject it, and its
/// error shows the URI), so only a query or fragment ends it.
///
/// ```
/// use wpa_poller::redact_queue_uri;
///
/// assert_eq!(redact_queue_uri("redis://a b:s3 cret@h/0/list/q"), "redis://a b:***@h/0/list/q");
/// ```
#[must_use]
pub fn redact_queue_uri(uri: &str) -> Cow<'_, str> {
    redact(uri, false)
}

/// Every URI's user info hidden; `in_text`: blank space ends a URI.
fn redact(text: &str, in_text: bool) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        // This URI's user info can only be before its query, its fragment,
        // blank space, or the next URI.
        let end = after
            .find(|c: char| c == '?' || c == '#' || (in_text && c.is_whitespace()))
            .unwrap_or(after.len())
            .min(after.find("://").unwrap_or(after.len()));
        match after[..end].rfind('@') {
            Some(at) => {
                if let Some((user, _)) = after[..at].split_once(':') {
                    out.push_str(user);
                    out.push(':');
                }
                out.push_str(REDACTED);
                rest = &after[at..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_form_of_secret_is_hidden() {
        for (uri, shown) in [
            (
                "redis://u:secret@h:6379/0/list/q",
                "redis://u:***@h:6379/0/list/q",
            ),
            ("redis://:secret@h/0/list/q", "redis://:***@h/0/list/q"),
            ("rediss://secret@h/0/list/q", "rediss://***@h/0/list/q"),
            ("nats://tok@n:4222/S/C", "nats://***@n:4222/S/C"),
            ("amqp://u:pa/ss@mq/v/q", "amqp://u:***@mq/v/q"),
            ("amqp://u:p@ss@mq/v/q", "amqp://u:***@mq/v/q"),
            (
                "amqp://u:p@mq/v/q?management=https://m:q@mq:15672",
                "amqp://u:***@mq/v/q?management=https://m:***@mq:15672",
            ),
            (
                "queue amqp://u:p@mq/v/q failed: amqp://x:y@z down",
                "queue amqp://u:***@mq/v/q failed: amqp://x:***@z down",
            ),
            (
                "https://sqs.eu-west-1.amazonaws.com/123/q",
                "https://sqs.eu-west-1.amazonaws.com/123/q",
            ),
            ("beanstalk://h:11300/t", "beanstalk://h:11300/t"),
            ("user@example.com", "user@example.com"),
        ] {
            assert_eq!(redact_uri(uri), shown, "{uri}");
        }
    }

    proptest! {
        /// Whatever the password, it does not survive, and the host after
        /// the user info does.
        #[test]
        fn a_password_never_shows(
            scheme in "(redis|rediss|amqp|amqps|nats|tls|beanstalk|https)",
            user in "[a-z]{0,8}",
            password in "[!-~]{6,24}",
            host in "[a-z]{1,12}(:[0-9]{1,5})?",
            path in "(/[a-z0-9]{1,8}){0,3}",
        ) {
            prop_assume!(!password.contains(['?', '#']));
            prop_assume!(!password.contains("://"));
            let uri = format!("{scheme}://{user}:{password}@{host}{path}");
            let shown = redact_uri(&uri);
            prop_assert!(!shown.contains(&password), "{uri} -> {shown}");
            let tail = format!("@{host}{path}");
            prop_assert!(shown.ends_with(&tail), "{uri} -> {shown}");
        }

        /// As one URI, blank space in the user info does not end it.
        #[test]
        fn a_queue_uri_password_never_shows(
            scheme in "(redis|rediss|amqp|amqps|nats|tls)",
            user in "\\PC{0,8}",
            password in "\\PC{4,24}",
            rest in "[a-z]{1,12}(:[0-9]{1,5})?(/[a-z0-9]{1,8}){0,3}",
        ) {
            prop_assume!(!user.contains(['?', '#', '@', ':']));
            prop_assume!(!password.contains(['?', '#']) && !password.contains("://"));
            let uri = format!("{scheme}://{user}:{password}@{rest}");
            let shown = redact_queue_uri(&uri);
            prop_assert!(!shown.contains(&password), "{uri} -> {shown}");
        }

        #[test]
        fn any_text_is_handled(text in "\\PC{0,80}") {
            let shown = redact_uri(&text);
            if !text.contains('@') {
                prop_assert_eq!(shown.as_ref(), text.as_str());
            }
        }
    }
}
