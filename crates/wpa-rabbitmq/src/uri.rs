//! `amqp[s]://[user:password@]host[:port]/vhost/queue[?management=...]`.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::Error;

/// RabbitMQ's AMQP port.
pub const DEFAULT_AMQP_PORT: u16 = 5672;
/// RabbitMQ's AMQP-over-TLS port.
pub const DEFAULT_AMQPS_PORT: u16 = 5671;
/// The management plugin's HTTP port.
pub const DEFAULT_MANAGEMENT_PORT: u16 = 15672;
/// The management plugin's HTTPS port.
pub const DEFAULT_MANAGEMENT_TLS_PORT: u16 = 15671;
/// The host used when the URI names none.
pub const DEFAULT_HOST: &str = "localhost";
/// The user (and password) used when the URI names none, as RabbitMQ's URI
/// spec says. RabbitMQ lets `guest` in from the loopback interface only.
pub const DEFAULT_USER: &str = "guest";
/// The longest vhost or queue name, in bytes (an AMQP short string).
pub const MAX_NAME_BYTES: usize = 255;

/// Characters written as they are: RFC 3986's unreserved set. Everything
/// else is percent-encoded when a URI is printed.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A user name and password. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// Credentials from their parts.
    #[must_use]
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    /// `guest` / `guest`.
    #[must_use]
    pub fn guest() -> Self {
        Credentials::new(DEFAULT_USER, DEFAULT_USER)
    }

    /// The user name.
    #[must_use]
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password.
    #[must_use]
    pub fn password(&self) -> &str {
        &self.password
    }

    fn write(&self, out: &mut String, redact: bool) {
        out.extend(utf8_percent_encode(&self.user, ENCODE));
        out.push(':');
        if redact {
            out.push_str("***");
        } else {
            out.extend(utf8_percent_encode(&self.password, ENCODE));
        }
        out.push('@');
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// Where the management API of the server answers:
/// `http[s]://[user:password@]host[:port][/path-prefix]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManagementUrl {
    tls: bool,
    host: String,
    port: u16,
    path_prefix: String,
    credentials: Option<Credentials>,
}

impl ManagementUrl {
    /// Whether it is `https`.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host (without brackets for IPv6).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path the API is mounted under (`management.path_prefix`), empty
    /// or starting with `/`.
    #[must_use]
    pub fn path_prefix(&self) -> &str {
        &self.path_prefix
    }

    /// Its own credentials, if the URL names them (else the AMQP ones are
    /// used).
    #[must_use]
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// `http[s]://host:port[/prefix]`, without credentials: for logs and
    /// errors.
    #[must_use]
    pub fn base(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, None);
        out
    }

    /// The path of `GET /api/queues/{vhost}/{queue}`, both names
    /// percent-encoded (`/` of the default vhost as `%2F`).
    #[must_use]
    pub fn queue_path(&self, vhost: &str, queue: &str) -> String {
        format!(
            "{}/api/queues/{}/{}",
            self.path_prefix,
            utf8_percent_encode(vhost, ENCODE),
            utf8_percent_encode(queue, ENCODE)
        )
    }

    /// `redact`: `None` writes no credentials, `Some(true)` writes them with
    /// the password hidden, `Some(false)` writes them as they are.
    fn write(&self, out: &mut String, redact: Option<bool>) {
        out.push_str(if self.tls { "https://" } else { "http://" });
        if let (Some(credentials), Some(redact)) = (&self.credentials, redact) {
            credentials.write(out, redact);
        }
        write_host(out, &self.host);
        out.push(':');
        out.push_str(&self.port.to_string());
        out.push_str(&self.path_prefix);
    }
}

/// A parsed RabbitMQ queue URI:
/// `amqp[s]://[user:password@]host[:port]/vhost/queue[?management=URL]`.
///
/// - The scheme is `amqp` (port 5672 by default) or `amqps` (TLS, port
///   5671).
/// - User and password are percent-decoded; without them, `guest`/`guest`
///   (RabbitMQ's URI spec). The host defaults to `localhost`; an IPv6 host
///   is written in brackets.
/// - The path is exactly two segments, `/vhost/queue`, each percent-decoded:
///   the default vhost `/` is `%2F`, a `/` inside a name is `%2F`. Names
///   are 1 to 255 bytes of UTF-8 without control characters.
/// - `?management=http[s]://[user:password@]host[:port][/prefix]` says where
///   the management API answers, as a URL written as is (or wholly
///   percent-encoded). Without it: `http://<same host>:15672`, or
///   `https://<same host>:15671` for `amqps`, with the AMQP credentials.
///   No other query parameter is accepted.
///
/// `Display` and `Debug` hide the password; [`RabbitUri::to_string_with_password`]
/// prints it, and parses back to the same URI.
///
/// ```
/// use wpa_rabbitmq::RabbitUri;
///
/// let uri: RabbitUri = "amqp://wpa:s%40cret@rabbit:5672/%2F/emails".parse()?;
/// assert_eq!((uri.vhost(), uri.queue()), ("/", "emails"));
/// assert_eq!(uri.credentials().password(), "s@cret");
/// assert_eq!(uri.management().base(), "http://rabbit:15672");
/// assert_eq!(uri.to_string(), "amqp://wpa:***@rabbit:5672/%2F/emails");
///
/// let uri: RabbitUri = "amqps://rabbit/prod/jobs?management=https://rabbit-admin:443/rabbitmq".parse()?;
/// assert_eq!(uri.port(), 5671);
/// assert_eq!(uri.management().queue_path(uri.vhost(), uri.queue()), "/rabbitmq/api/queues/prod/jobs");
/// assert!("amqp://rabbit/emails".parse::<RabbitUri>().is_err()); // the vhost is missing
/// # Ok::<(), wpa_rabbitmq::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RabbitUri {
    tls: bool,
    host: String,
    port: u16,
    credentials: Credentials,
    /// Whether the URI names the credentials (printed back) or they are
    /// the default.
    credentials_given: bool,
    vhost: String,
    queue: String,
    management: ManagementUrl,
    /// Whether `management` came from the URI (printed back) or is the
    /// default.
    management_given: bool,
}

impl RabbitUri {
    /// Whether it is `amqps`.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host (without brackets for IPv6).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The AMQP port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` of the AMQP listener (IPv6 in brackets).
    #[must_use]
    pub fn address(&self) -> String {
        let mut out = String::new();
        write_host(&mut out, &self.host);
        out.push(':');
        out.push_str(&self.port.to_string());
        out
    }

    /// The credentials: the URI's, else `guest`/`guest`.
    #[must_use]
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Whether the URI names credentials.
    #[must_use]
    pub fn has_credentials(&self) -> bool {
        self.credentials_given
    }

    /// The vhost, decoded (`/` for the default one).
    #[must_use]
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// The queue name, decoded.
    #[must_use]
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Where the management API answers (the URI's `management`, else the
    /// default on the same host).
    #[must_use]
    pub fn management(&self) -> &ManagementUrl {
        &self.management
    }

    /// The credentials for the management API: its URL's, else the AMQP
    /// ones.
    #[must_use]
    pub fn management_credentials(&self) -> &Credentials {
        self.management
            .credentials
            .as_ref()
            .unwrap_or(&self.credentials)
    }

    /// The URI with its passwords: it parses back to `self`. Not for logs.
    #[must_use]
    pub fn to_string_with_password(&self) -> String {
        self.render(false)
    }

    fn render(&self, redact: bool) -> String {
        let mut out = String::with_capacity(64);
        out.push_str(if self.tls { "amqps://" } else { "amqp://" });
        if self.credentials_given {
            self.credentials.write(&mut out, redact);
        }
        write_host(&mut out, &self.host);
        out.push(':');
        out.push_str(&self.port.to_string());
        out.push('/');
        out.extend(utf8_percent_encode(&self.vhost, ENCODE));
        out.push('/');
        out.extend(utf8_percent_encode(&self.queue, ENCODE));
        if self.management_given {
            out.push_str("?management=");
            self.management.write(&mut out, Some(redact));
        }
        out
    }
}

impl fmt::Display for RabbitUri {
    /// The URI with every password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(true))
    }
}

fn write_host(out: &mut String, host: &str) {
    if host.contains(':') {
        out.push('[');
        out.push_str(host);
        out.push(']');
    } else {
        out.push_str(host);
    }
}

/// The parts of `[user:password@]host[:port]`.
struct Authority {
    credentials: Option<Credentials>,
    host: String,
    port: Option<u16>,
}

fn parse_authority(authority: &str) -> Result<Authority, String> {
    let (userinfo, hostport) = match authority.split_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    if hostport.contains('@') {
        return Err("more than one @: percent-encode @ in a user name or password as %40".into());
    }
    let credentials = match userinfo {
        None => None,
        Some(userinfo) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let user = decode(user, "the user name", |c| c != ':')?;
            if user.is_empty() {
                return Err("the user name is empty".into());
            }
            let password = decode(password, "the password", |_| true)?;
            Some(Credentials { user, password })
        }
    };
    let wpa_poller::HostPort {
        host,
        bracketed,
        port,
    } = wpa_poller::split_host_port(hostport)?;
    if bracketed && !host.contains(':') {
        return Err("invalid IPv6 host".into());
    }
    let host = if host.is_empty() { DEFAULT_HOST } else { host };
    if host.len() > 253
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return Err("invalid host: letters, digits, - . _ or an IPv6 address in brackets".into());
    }
    let port = match port {
        None | Some("") => None,
        Some(port) => Some(wpa_poller::parse_port(port)?),
    };
    Ok(Authority {
        credentials,
        host: host.to_owned(),
        port,
    })
}

/// Characters a URI part may hold raw: RFC 3986's unreserved and
/// sub-delims, `:` and `@` (as in a path segment), and non-ASCII letters
/// (written by hand, they would otherwise be refused).
fn raw_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c) || !c.is_ascii()
}

/// Percent-decodes `part` strictly: every `%` starts two hex digits, the
/// result is UTF-8, and raw characters are ones a URI may hold (`extra`
/// narrows them).
fn decode(part: &str, what: &str, extra: impl Fn(char) -> bool) -> Result<String, String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: Option<&u8>| b.and_then(|&b| char::from(b).to_digit(16));
            match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(high), Some(low)) => {
                    // Both digits are below 16: the byte fits.
                    out.push(u8::try_from(high * 16 + low).unwrap_or(0));
                    i += 3;
                }
                _ => return Err(format!("{what} has a % not followed by two hex digits")),
            }
        } else {
            // `part` is a str: a non-ASCII byte starts a whole character.
            let c = part[i..].chars().next().unwrap_or('\u{0}');
            if !(raw_allowed(c) && extra(c)) {
                return Err(format!("{what} holds {c:?}: percent-encode it"));
            }
            let mut buffer = [0_u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            i += c.len_utf8();
        }
    }
    String::from_utf8(out).map_err(|_| format!("{what} is not UTF-8 once decoded"))
}

fn decode_name(part: &str, what: &str) -> Result<String, String> {
    let name = decode(part, what, |_| true)?;
    if name.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{what} is {} bytes long: at most {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{what} holds a control character"));
    }
    Ok(name)
}

fn parse_management(value: &str) -> Result<ManagementUrl, String> {
    // As is (it holds `://`), or wholly percent-encoded once.
    let decoded;
    let url = if value.contains("://") {
        value
    } else {
        decoded = decode(value, "the management URL", |_| true)?;
        decoded.as_str()
    };
    let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err("the management URL must start with http:// or https://".into());
    };
    if rest.contains(['?', '#']) {
        return Err("the management URL cannot have a query or fragment".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let authority =
        parse_authority(authority).map_err(|reason| format!("management URL: {reason}"))?;
    let path = path.trim_end_matches('/');
    if !path.is_empty() {
        let segments_ok = path.split('/').skip(1).all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        });
        if !segments_ok {
            return Err(
                "the management URL's path prefix must be segments of letters, digits, - . _ ~ (not . or ..)"
                    .into(),
            );
        }
    }
    Ok(ManagementUrl {
        tls,
        host: authority.host,
        port: authority.port.unwrap_or(if tls {
            DEFAULT_MANAGEMENT_TLS_PORT
        } else {
            DEFAULT_MANAGEMENT_PORT
        }),
        path_prefix: path.to_owned(),
        credentials: authority.credentials,
    })
}

impl FromStr for RabbitUri {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self, Error> {
        parse(uri).map_err(|reason| Error::InvalidUri {
            uri: wpa_poller::redact_queue_uri(uri).into_owned(),
            reason,
        })
    }
}

fn parse(uri: &str) -> Result<RabbitUri, String> {
    let (tls, rest) = if let Some(rest) = uri.strip_prefix("amqp://") {
        (false, rest)
    } else if let Some(rest) = uri.strip_prefix("amqps://") {
        (true, rest)
    } else {
        return Err("the scheme must be amqp:// or amqps://".into());
    };
    if rest.contains('#') {
        return Err("a fragment is not allowed (percent-encode # as %23)".into());
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = rest
        .split_once('/')
        .ok_or("the vhost and the queue are missing")?;
    let authority = parse_authority(authority)?;
    let mut segments = path.split('/');
    let (vhost, queue) = match (segments.next(), segments.next(), segments.next()) {
        (Some(vhost), Some(queue), None) => (vhost, queue),
        (_, None, _) => {
            return Err(
                "the path must be /vhost/queue (the default vhost / is written %2F)".into(),
            );
        }
        _ => {
            return Err(
                "the path must be /vhost/queue: percent-encode a / inside a name as %2F".into(),
            );
        }
    };
    let vhost = decode_name(vhost, "the vhost")?;
    let queue = decode_name(queue, "the queue name")?;

    let mut management = None;
    if let Some(query) = query {
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "management" => {
                    if management.is_some() {
                        return Err("management is given twice".into());
                    }
                    if value.is_empty() {
                        return Err("management is empty: give the management API's URL".into());
                    }
                    management = Some(parse_management(value)?);
                }
                "" => return Err("an empty query parameter".into()),
                other => {
                    return Err(format!(
                        "unknown query parameter {other:?}: only management=http[s]://host:port is supported"
                    ));
                }
            }
        }
    }
    let management_given = management.is_some();
    let management = management.unwrap_or_else(|| ManagementUrl {
        tls,
        host: authority.host.clone(),
        port: if tls {
            DEFAULT_MANAGEMENT_TLS_PORT
        } else {
            DEFAULT_MANAGEMENT_PORT
        },
        path_prefix: String::new(),
        credentials: None,
    });
    Ok(RabbitUri {
        tls,
        port: authority.port.unwrap_or(if tls {
            DEFAULT_AMQPS_PORT
        } else {
            DEFAULT_AMQP_PORT
        }),
        host: authority.host,
        credentials_given: authority.credentials.is_some(),
        credentials: authority.credentials.unwrap_or_else(Credentials::guest),
        vhost,
        queue,
        management,
        management_given,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_percent_decoding() {
        assert_eq!(decode("a%2Fb", "x", |_| true).unwrap(), "a/b");
        assert_eq!(decode("%C3%A9", "x", |_| true).unwrap(), "é");
        assert!(decode("%", "x", |_| true).is_err());
        assert!(decode("%G1", "x", |_| true).is_err());
        assert!(decode("%C3", "x", |_| true).is_err(), "not UTF-8");
        assert!(decode("a b", "x", |_| true).is_err());
        assert!(decode("a:b", "x", |c| c != ':').is_err());
    }
}
