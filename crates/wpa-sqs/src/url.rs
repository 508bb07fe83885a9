//! Queue URLs: which region a queue lives in, read from its URL alone.
//!
//! Pure string handling, no I/O, never panics (property-tested and fuzzed).

use std::fmt;

use crate::Error;

/// A parsed SQS queue URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueUrl {
    url: String,
    host: String,
    region: Option<String>,
    account: String,
    name: String,
    form: UrlForm,
}

/// Which form of queue URL was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrlForm {
    /// `https://sqs.<region>.amazonaws.com/<account>/<name>` (also
    /// `sqs-fips.` and the dual-stack `sqs.<region>.api.aws`).
    Standard,
    /// `https://sqs.<region>.amazonaws.com.cn/<account>/<name>`.
    China,
    /// `https://queue.amazonaws.com/...` (us-east-1) or
    /// `https://<region>.queue.amazonaws.com/...`.
    Legacy,
    /// `https://vpce-<id>.sqs.<region>.vpce.amazonaws.com/...`.
    VpcEndpoint,
    /// Any `http(s)://host[:port]/<account>/<name>`, accepted only with an
    /// endpoint override (an emulator or a proxy); no region in the URL.
    Custom,
}

impl QueueUrl {
    /// Parses a queue URL. `endpoint_override` says whether requests go to an
    /// overridden endpoint; only then is a host that is not an AWS SQS host
    /// accepted (as [`UrlForm::Custom`], without a region).
    pub fn parse(url: &str, endpoint_override: bool) -> Result<QueueUrl, Error> {
        let invalid = |reason: String| Error::InvalidQueueUrl {
            url: truncate(url),
            reason,
        };
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "it contains whitespace or control characters".into(),
            ));
        }
        let rest = strip_prefix_ignore_case(url, "https://")
            .or_else(|| strip_prefix_ignore_case(url, "http://"))
            .ok_or_else(|| invalid("it must start with https:// (or http://)".into()))?;
        if rest.contains(['?', '#']) {
            return Err(invalid("it must not have a query or a fragment".into()));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(invalid("it must not contain user information".into()));
        }
        let host = parse_authority(authority).map_err(invalid)?;
        let mut segments = path.split('/');
        let (account, name) = match (segments.next(), segments.next(), segments.next()) {
            (Some(account), Some(name), None) if !account.is_empty() && !name.is_empty() => {
                (account, name)
            }
            _ => {
                return Err(invalid(
                    "the path must be exactly /<account>/<queue name>".into(),
                ));
            }
        };
        check_queue_name(name).map_err(invalid)?;

        let lower_host = host.to_ascii_lowercase();
        let aws = aws_region(&lower_host);
        let (region, form) = match aws {
            Some((region, form)) => {
                if !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
                    return Err(invalid(format!(
                        "the account {account:?} must be a 12-digit AWS account id"
                    )));
                }
                (Some(region), form)
            }
            None if endpoint_override => {
                if !account.bytes().all(is_name_byte) || account.len() > 80 {
                    return Err(invalid(format!(
                        "the account segment {account:?} may only contain letters, digits, '-' and '_'"
                    )));
                }
                (None, UrlForm::Custom)
            }
            None => {
                return Err(invalid(format!(
                    "{host:?} is not an SQS host (expected sqs.<region>.amazonaws.com, \
                     sqs.<region>.amazonaws.com.cn, [<region>.]queue.amazonaws.com or \
                     vpce-...sqs.<region>.vpce.amazonaws.com); for an emulator or a proxy, \
                     set an endpoint override (--sqs-endpoint or AWS_ENDPOINT_URL_SQS)"
                )));
            }
        };
        Ok(QueueUrl {
            url: url.to_owned(),
            host: host.to_owned(),
            region,
            account: account.to_owned(),
            name: name.to_owned(),
            form,
        })
    }

    /// The URL as given (what SQS API calls take).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host, without the port.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The region read from the host, if the host names one.
    #[must_use]
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The account segment of the path.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The queue name (CloudWatch's `QueueName` dimension).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a FIFO queue (its name ends in `.fifo`).
    #[must_use]
    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }

    /// Which form of URL this is.
    #[must_use]
    pub fn form(&self) -> UrlForm {
        self.form
    }
}

impl fmt::Display for QueueUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// The region and URL form of an AWS SQS host (lower case), if it is one.
fn aws_region(host: &str) -> Option<(String, UrlForm)> {
    if host == "queue.amazonaws.com" {
        return Some(("us-east-1".to_owned(), UrlForm::Legacy));
    }
    if let Some(region) = host.strip_suffix(".queue.amazonaws.com") {
        return is_region(region).then(|| (region.to_owned(), UrlForm::Legacy));
    }
    if let Some(rest) = host.strip_suffix(".vpce.amazonaws.com") {
        // vpce-0123abcd-efgh5678[-us-east-1a].sqs.<region>
        let (endpoint, region) = rest.split_once(".sqs.")?;
        let endpoint_ok = endpoint.starts_with("vpce-")
            && endpoint.len() > 5
            && endpoint
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        return (endpoint_ok && is_region(region))
            .then(|| (region.to_owned(), UrlForm::VpcEndpoint));
    }
    if let Some(rest) = host.strip_suffix(".amazonaws.com.cn") {
        let region = rest.strip_prefix("sqs.")?;
        return (is_region(region) && region.starts_with("cn-"))
            .then(|| (region.to_owned(), UrlForm::China));
    }
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".api.aws"))?;
    let region = rest
        .strip_prefix("sqs.")
        .or_else(|| rest.strip_prefix("sqs-fips."))?;
    is_region(region).then(|| (region.to_owned(), UrlForm::Standard))
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`, `cn-north-1`,
/// `us-isob-east-1`: lower-case words joined by `-`, ending in a number.
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && region.len() <= 32
        && !number.is_empty()
        && number.len() <= 3
        && number.bytes().all(|b| b.is_ascii_digit())
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The host of `host[:port]` (IPv6 in brackets allowed).
fn parse_authority(authority: &str) -> Result<&str, String> {
    if authority.is_empty() {
        return Err("it has no host".into());
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| "an IPv6 host must be closed with ']'".to_owned())?;
        let host = &rest[..end];
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(format!("[{host}] is not an IPv6 address"));
        }
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err("unexpected characters after the IPv6 host".into()),
        };
        (&authority[..end + 2], port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let labels_ok = host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if host.is_empty() || host.len() > 253 || !labels_ok {
            return Err(format!("{host:?} is not a valid host name"));
        }
        (host, port)
    };
    if let Some(port) = port
        && (port.is_empty()
            || port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u32>().map_or(true, |p| p == 0 || p > 65_535))
    {
        return Err(format!("{port:?} is not a port number (1-65535)"));
    }
    Ok(host)
}

/// SQS queue names: 1 to 80 letters, digits, `-` and `_`; a FIFO queue's
/// name ends in `.fifo` (included in the 80).
fn check_queue_name(name: &str) -> Result<(), String> {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    if name.len() > 80 || base.is_empty() || !base.bytes().all(is_name_byte) {
        return Err(format!(
            "{:?} is not a queue name (1-80 letters, digits, '-' or '_', optionally ending in .fifo)",
            truncate(name)
        ));
    }
    Ok(())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// At most 200 characters of user input in an error message.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn region_of(url: &str) -> Option<String> {
        QueueUrl::parse(url, false)
            .ok()
            .and_then(|u| u.region().map(str::to_owned))
    }

    #[test]
    fn every_aws_form_gives_its_region() {
        let cases = [
            (
                "https://sqs.ap-south-1.amazonaws.com/123456789012/jobs",
                "ap-south-1",
                UrlForm::Standard,
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo",
                "us-east-1",
                UrlForm::Standard,
            ),
            (
                "https://sqs.us-gov-west-1.amazonaws.com/123456789012/q",
                "us-gov-west-1",
                UrlForm::Standard,
            ),
            (
                "https://sqs-fips.us-east-2.amazonaws.com/123456789012/q",
                "us-east-2",
                UrlForm::Standard,
            ),
            (
                "https://sqs.eu-west-1.api.aws/123456789012/q",
                "eu-west-1",
                UrlForm::Standard,
            ),
            (
                "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q",
                "cn-north-1",
                UrlForm::China,
            ),
            (
                "https://sqs.cn-northwest-1.amazonaws.com.cn/123456789012/q_1",
                "cn-northwest-1",
                UrlForm::China,
            ),
            (
                "https://queue.amazonaws.com/123456789012/q",
                "us-east-1",
                UrlForm::Legacy,
            ),
            (
                "https://eu-west-1.queue.amazonaws.com/123456789012/q",
                "eu-west-1",
                UrlForm::Legacy,
            ),
            (
                "https://vpce-0123456789abcdef0-abcdefgh.sqs.us-west-2.vpce.amazonaws.com/123456789012/q",
                "us-west-2",
                UrlForm::VpcEndpoint,
            ),
            (
                "https://vpce-0123-abcd-us-west-2a.sqs.us-west-2.vpce.amazonaws.com/123456789012/q",
                "us-west-2",
                UrlForm::VpcEndpoint,
            ),
            (
                "HTTPS://SQS.AP-SOUTHEAST-1.AMAZONAWS.COM/123456789012/Q",
                "ap-southeast-1",
                UrlForm::Standard,
            ),
            (
                "http://sqs.us-east-1.amazonaws.com:443/123456789012/q",
                "us-east-1",
                UrlForm::Standard,
            ),
        ];
        for (url, region, form) in cases {
            let parsed = QueueUrl::parse(url, false).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.region(), Some(region), "{url}");
            assert_eq!(parsed.form(), form, "{url}");
            assert_eq!(parsed.as_str(), url);
        }
    }

    #[test]
    fn names_and_fifo() {
        let u = QueueUrl::parse(
            "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo",
            false,
        )
        .unwrap();
        assert_eq!(u.name(), "orders.fifo");
        assert_eq!(u.account(), "123456789012");
        assert!(u.is_fifo());
        let u = QueueUrl::parse(
            "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
            false,
        )
        .unwrap();
        assert!(!u.is_fifo());
    }

    #[test]
    fn refusals_name_the_problem() {
        let cases = [
            ("", "https://"),
            ("sqs.us-east-1.amazonaws.com/123456789012/q", "https://"),
            ("https://example.com/123456789012/q", "endpoint override"),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012",
                "/<account>/<queue name>",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/q/extra",
                "/<account>/<queue name>",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/q/",
                "/<account>/<queue name>",
            ),
            ("https://sqs.us-east-1.amazonaws.com/1234/q", "12-digit"),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/bad.name",
                "queue name",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/.fifo",
                "queue name",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/q?x=1",
                "query",
            ),
            (
                "https://user@sqs.us-east-1.amazonaws.com/123456789012/q",
                "user information",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com:0/123456789012/q",
                "port",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com:99999/123456789012/q",
                "port",
            ),
            (
                "https://sqs.useast1.amazonaws.com/123456789012/q",
                "not an SQS host",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com.cn/123456789012/q",
                "not an SQS host",
            ),
            (
                "https://vpce-x.sqs.amazonaws.com/123456789012/q",
                "not an SQS host",
            ),
            ("https://sqs..amazonaws.com/123456789012/q", "valid host"),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/q q",
                "whitespace",
            ),
        ];
        for (url, needle) in cases {
            match QueueUrl::parse(url, false) {
                Ok(u) => panic!("{url:?} accepted as {u:?}"),
                Err(e) => assert!(e.to_string().contains(needle), "{url:?}: {e}"),
            }
        }
        let long = format!(
            "https://sqs.us-east-1.amazonaws.com/123456789012/{}",
            "a".repeat(81)
        );
        assert!(QueueUrl::parse(&long, false).is_err());
        let max = format!(
            "https://sqs.us-east-1.amazonaws.com/123456789012/{}",
            "a".repeat(80)
        );
        assert!(QueueUrl::parse(&max, false).is_ok());
    }

    #[test]
    fn custom_hosts_need_an_endpoint_override() {
        for url in [
            "http://127.0.0.1:5000/123456789012/q",
            "http://localhost:4566/000000000000/q.fifo",
            "http://[::1]:9324/queue/q",
            "https://sqs.internal.example.com/acct_1/q",
        ] {
            assert!(QueueUrl::parse(url, false).is_err(), "{url}");
            let u = QueueUrl::parse(url, true).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(u.form(), UrlForm::Custom);
            assert_eq!(u.region(), None);
        }
        // An AWS URL keeps its region under an override.
        let u =
            QueueUrl::parse("https://sqs.eu-west-3.amazonaws.com/123456789012/q", true).unwrap();
        assert_eq!(u.region(), Some("eu-west-3"));
        assert!(QueueUrl::parse("http://[::1/123/q", true).is_err());
        assert!(QueueUrl::parse("http://host:/123/q", true).is_err());
    }

    #[test]
    fn long_input_is_truncated_in_the_message() {
        let url = format!("ftp://{}", "x".repeat(10_000));
        let message = QueueUrl::parse(&url, true).unwrap_err().to_string();
        assert!(message.len() < 600, "{}", message.len());
    }

    proptest! {
        #[test]
        fn never_panics(url in ".{0,200}", custom in any::<bool>()) {
            let _ = QueueUrl::parse(&url, custom);
        }

        #[test]
        fn never_panics_on_url_like_input(
            scheme in "(https?|HTTP|ftp)://",
            host in "[a-z0-9.\\[\\]:-]{0,40}",
            path in "[a-zA-Z0-9/._-]{0,40}",
            custom in any::<bool>(),
        ) {
            let _ = QueueUrl::parse(&format!("{scheme}{host}/{path}"), custom);
        }

        #[test]
        fn standard_urls_round_trip(
            words in proptest::collection::vec("[a-z]{1,9}", 2..4),
            n in 1..20u32,
            account in "[0-9]{12}",
            name in "[A-Za-z0-9_-]{1,75}",
            fifo in any::<bool>(),
        ) {
            let region = format!("{}-{n}", words.join("-"));
            let name = if fifo { format!("{name}.fifo") } else { name };
            let url = format!("https://sqs.{region}.amazonaws.com/{account}/{name}");
            let parsed = QueueUrl::parse(&url, false);
            prop_assert!(parsed.is_ok(), "{url}: {parsed:?}");
            let parsed = parsed.unwrap();
            prop_assert_eq!(parsed.region(), Some(region.as_str()));
            prop_assert_eq!(parsed.name(), name.as_str());
            prop_assert_eq!(parsed.is_fifo(), fifo);
            prop_assert_eq!(region_of(&url), Some(region));
        }
    }
}
