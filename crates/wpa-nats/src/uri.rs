//! `nats://[user:password@]host[:port]/STREAM/CONSUMER` and JetStream
//! stream and consumer names.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The NATS client port.
pub const DEFAULT_PORT: u16 = 4222;
/// The host used when the URI names none.
pub const DEFAULT_HOST: &str = "localhost";
/// The longest stream or consumer name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why a stream or consumer name is refused, or `None` if it is valid.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Some("it is longer than 255 bytes");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("it contains whitespace or a control character");
    }
    if name.contains(['.', '*', '>']) {
        return Some("it contains `.`, `*` or `>` (names are single subject tokens)");
    }
    if name.contains(['/', '\\']) {
        return Some("it contains `/` or `\\`");
    }
    None
}

macro_rules! jetstream_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The name.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(name: &str) -> Result<Self, Error> {
                match name_problem(name) {
                    Some(reason) => Err(Error::InvalidName {
                        kind: $kind,
                        name: name.to_owned(),
                        reason,
                    }),
                    None => Ok($name(name.to_owned())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

jetstream_name!(
    /// A JetStream stream name: 1 to 255 bytes, no whitespace, control
    /// characters, `.`, `*`, `>`, `/` or `\`. Checked once, so the API
    /// subjects built from it are always single tokens.
    StreamName,
    "stream"
);

jetstream_name!(
    /// A JetStream durable consumer name, with the same rules as a
    /// [`StreamName`].
    ConsumerName,
    "consumer"
);

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `nats://`: plain TCP, upgraded to TLS if the server requires it.
    Nats,
    /// `tls://`: TLS required (rustls, the system's root certificates).
    Tls,
}

impl Scheme {
    /// `nats` or `tls`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Nats => "nats",
            Scheme::Tls => "tls",
        }
    }
}

/// Credentials from the URI's user info. `Debug` and `Display` never show
/// the secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Credentials {
    /// `user:password@`.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// `token@`: a bare user info is a token, as in every NATS client.
    Token(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"***")
                .finish(),
            Credentials::Token(_) => f.debug_tuple("Token").field(&"***").finish(),
        }
    }
}

/// A parsed `nats://[user:password@]host[:port]/STREAM/CONSUMER` queue URI.
///
/// - scheme `nats://` (TLS if the server asks for it) or `tls://` (TLS
///   required); anything else (`nats+tls://`, `ws://`, `jetstream://`) is
///   refused with the accepted forms in the message;
/// - user info `user:password@` or `token@`, percent-decoded (write `@`
///   as `%40`, `:` in a user as `%3A`); `Display` and `Debug` print the
///   secret as `***`;
/// - host defaulting to `localhost`, IPv6 in brackets, port defaulting to
///   4222;
/// - the path is exactly `/STREAM/CONSUMER`: the stream and the durable
///   consumer whose backlog scales the workers. A query or fragment is
///   refused.
///
/// ```
/// use wpa_nats::NatsUri;
///
/// let uri: NatsUri = "nats://wpa:s3cret@nats.queue:4222/ORDERS/workers".parse()?;
/// assert_eq!(uri.address(), "nats.queue:4222");
/// assert_eq!((uri.stream().as_str(), uri.consumer().as_str()), ("ORDERS", "workers"));
/// assert_eq!(uri.to_string(), "nats://wpa:***@nats.queue:4222/ORDERS/workers");
/// assert!("nats://host/ORDERS".parse::<NatsUri>().is_err());
/// # Ok::<(), wpa_nats::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NatsUri {
    scheme: Scheme,
    credentials: Option<Credentials>,
    host: String,
    port: u16,
    stream: StreamName,
    consumer: ConsumerName,
}

impl NatsUri {
    /// A URI from its parts (plain `nats://`, no credentials).
    #[must_use]
    pub fn new(
        host: impl Into<String>,
        port: u16,
        stream: StreamName,
        consumer: ConsumerName,
    ) -> Self {
        NatsUri {
            scheme: Scheme::Nats,
            credentials: None,
            host: host.into(),
            port,
            stream,
            consumer,
        }
    }

    /// The same URI with these credentials.
    #[must_use]
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    /// The same URI with this scheme.
    #[must_use]
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// `nats` or `tls`.
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The credentials, if the URI has user info.
    #[must_use]
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
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

    /// The stream.
    #[must_use]
    pub fn stream(&self) -> &StreamName {
        &self.stream
    }

    /// The durable consumer.
    #[must_use]
    pub fn consumer(&self) -> &ConsumerName {
        &self.consumer
    }

    /// `host:port` (IPv6 in brackets).
    #[must_use]
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `nats://host:port` or `tls://host:port`, without credentials: the
    /// server address handed to the client.
    #[must_use]
    pub fn server_url(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.address())
    }
}

impl fmt::Display for NatsUri {
    /// The URI with any password or token shown as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        match &self.credentials {
            Some(Credentials::UserPassword { user, .. }) => {
                write!(f, "{}:***@", percent_encode(user))?;
            }
            Some(Credentials::Token(_)) => f.write_str("***@")?,
            None => {}
        }
        write!(f, "{}/{}/{}", self.address(), self.stream, self.consumer)
    }
}

/// Encodes what user info cannot hold literally (for `Display`).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

const EXPECTED: &str = "expected nats://[user:password@]host[:port]/STREAM/CONSUMER or tls://...";

impl FromStr for NatsUri {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self, Error> {
        let bad = |reason: &'static str| Error::InvalidUri {
            uri: wpa_poller::redact_queue_uri(uri).into_owned(),
            reason,
            expected: EXPECTED,
        };
        let (scheme, rest) = if let Some(rest) = uri.strip_prefix("nats://") {
            (Scheme::Nats, rest)
        } else if let Some(rest) = uri.strip_prefix("tls://") {
            (Scheme::Tls, rest)
        } else {
            return Err(bad(
                "the scheme must be nats:// or tls:// (for TLS write tls://, not nats+tls://)",
            ));
        };
        if rest.contains(['?', '#']) {
            return Err(bad("a query or fragment is not supported"));
        }
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("the path /STREAM/CONSUMER is missing"))?;
        let (stream, consumer) = path
            .split_once('/')
            .ok_or_else(|| bad("the path must be /STREAM/CONSUMER: the consumer is missing"))?;
        if stream.is_empty() {
            return Err(bad("the stream is missing"));
        }
        if consumer.is_empty() {
            return Err(bad("the consumer is missing"));
        }
        if consumer.contains('/') {
            return Err(bad(
                "the path must be exactly /STREAM/CONSUMER (names cannot contain /)",
            ));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let credentials = match userinfo {
            None => None,
            Some(userinfo) => Some(parse_userinfo(userinfo).map_err(bad)?),
        };
        let (host, port) = split_host_port(hostport).map_err(bad)?;
        Ok(NatsUri {
            scheme,
            credentials,
            host: host.to_owned(),
            port,
            stream: stream.parse()?,
            consumer: consumer.parse()?,
        })
    }
}

fn parse_userinfo(userinfo: &str) -> Result<Credentials, &'static str> {
    const BAD_ESCAPE: &str = "the user info has a bad percent escape (write @ as %40)";
    if userinfo.is_empty() {
        return Err("the user info before @ is empty");
    }
    match userinfo.split_once(':') {
        Some((user, password)) => {
            let user = percent_decode(user).ok_or(BAD_ESCAPE)?;
            let password = percent_decode(password).ok_or(BAD_ESCAPE)?;
            if user.is_empty() {
                return Err("the user before : is empty");
            }
            Ok(Credentials::UserPassword { user, password })
        }
        None => Ok(Credentials::Token(
            percent_decode(userinfo).ok_or(BAD_ESCAPE)?,
        )),
    }
}

fn split_host_port(hostport: &str) -> Result<(&str, u16), &'static str> {
    let wpa_poller::HostPort {
        host,
        bracketed,
        port,
    } = wpa_poller::split_host_port(hostport)?;
    let host = if host.is_empty() { DEFAULT_HOST } else { host };
    if !bracketed
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        return Err("invalid host (IPv6 addresses go in brackets)");
    }
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(port) => wpa_poller::parse_port(port)?,
    };
    Ok((host, port))
}
