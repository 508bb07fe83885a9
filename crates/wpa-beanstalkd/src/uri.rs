//! `beanstalk://host:port/tube` and tube names.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// beanstalkd's default port.
pub const DEFAULT_PORT: u16 = 11300;
/// The host used when the URI names none.
pub const DEFAULT_HOST: &str = "localhost";

/// A tube name beanstalkd accepts: 1 to 200 bytes of `A-Z a-z 0-9 - + / ;
/// . $ _ ( )`, not starting with `-`. Checked once, so a command line built
/// from it can never be broken by spaces or line breaks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TubeName(String);

impl TubeName {
    /// The tube every connection uses and watches at first.
    #[must_use]
    pub fn default_tube() -> Self {
        TubeName("default".to_owned())
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TubeName {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-+/;.$_()".contains(&b);
        if name.is_empty()
            || name.len() > 200
            || name.starts_with('-')
            || !name.bytes().all(allowed)
        {
            return Err(Error::InvalidTube {
                name: name.to_owned(),
            });
        }
        Ok(TubeName(name.to_owned()))
    }
}

impl fmt::Display for TubeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed `beanstalk://host:port/tube` queue URI.
///
/// The host defaults to `localhost` and the port to 11300; an IPv6 host is
/// written in brackets (`beanstalk://[::1]:11300/jobs`). The tube is the
/// whole path after the first `/` (tube names may contain `/`). Anything
/// else (another scheme, user info, a query, a fragment, a bad port, an
/// empty or invalid tube) is an [`Error::InvalidUri`] or
/// [`Error::InvalidTube`].
///
/// ```
/// use wpa_beanstalkd::BeanstalkUri;
///
/// let uri: BeanstalkUri = "beanstalk://:11301/emails".parse()?;
/// assert_eq!(uri.address(), "localhost:11301");
/// assert_eq!(uri.tube().as_str(), "emails");
/// assert!("beanstalk://host:99999/t".parse::<BeanstalkUri>().is_err());
/// # Ok::<(), wpa_beanstalkd::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BeanstalkUri {
    host: String,
    port: u16,
    tube: TubeName,
}

impl BeanstalkUri {
    /// A URI from its parts.
    #[must_use]
    pub fn new(host: impl Into<String>, port: u16, tube: TubeName) -> Self {
        BeanstalkUri {
            host: host.into(),
            port,
            tube,
        }
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

    /// The tube.
    #[must_use]
    pub fn tube(&self) -> &TubeName {
        &self.tube
    }

    /// `host:port`, as `TcpStream::connect` takes it (IPv6 in brackets).
    #[must_use]
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for BeanstalkUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "beanstalk://{}/{}", self.address(), self.tube)
    }
}

impl FromStr for BeanstalkUri {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self, Error> {
        let bad = |reason| Error::InvalidUri {
            uri: uri.to_owned(),
            reason,
        };
        let rest = uri
            .strip_prefix("beanstalk://")
            .ok_or_else(|| bad("the scheme must be beanstalk://"))?;
        if rest.contains(['?', '#']) {
            return Err(bad("a query or fragment is not allowed"));
        }
        let (authority, tube) = rest
            .split_once('/')
            .ok_or_else(|| bad("the tube is missing"))?;
        if tube.is_empty() {
            return Err(bad("the tube is missing"));
        }
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let wpa_poller::HostPort { host, port, .. } =
            wpa_poller::split_host_port(authority).map_err(bad)?;
        let host = if host.is_empty() { DEFAULT_HOST } else { host };
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
        {
            return Err(bad("invalid host"));
        }
        let port = match port {
            None | Some("") => DEFAULT_PORT,
            Some(port) => wpa_poller::parse_port(port).map_err(bad)?,
        };
        Ok(BeanstalkUri {
            host: host.to_owned(),
            port,
            tube: tube.parse()?,
        })
    }
}
