//! `redis://` queue URIs: the server, the database, and the key layout.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// Redis' default port.
pub const DEFAULT_PORT: u16 = 6379;
/// The host used when the URI names none.
pub const DEFAULT_HOST: &str = "localhost";
/// Longest key or name accepted, in bytes (after percent-decoding).
pub const MAX_NAME_LEN: usize = 1024;
/// Most `processing=` lists one list URI may name.
pub const MAX_PROCESSING_LISTS: usize = 16;
/// The separator kombu puts between a queue and its priority step.
pub const CELERY_PRIORITY_SEP: &str = "\x06\x16";
/// kombu's default priority steps.
pub const CELERY_DEFAULT_PRIORITY_STEPS: [u8; 4] = [0, 3, 6, 9];
/// Default interval of a polling wake-up.
pub const DEFAULT_WAKEUP_INTERVAL: Duration = Duration::from_millis(200);
/// Default `consumer-idle` of a stream: a consumer whose last read attempt
/// is older is taken as gone (Redis 7.2 and later only, see the README).
pub const DEFAULT_CONSUMER_IDLE: Duration = Duration::from_secs(60);
/// Default `lag-scan` of a stream: the most entries counted by hand when
/// Redis cannot tell a group's lag.
pub const DEFAULT_LAG_SCAN: u32 = 1000;

/// How a wake-up poll waits for the first message without consuming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WakeUp {
    /// A blocking command that leaves the queue as it was: `BLMOVE key key
    /// RIGHT RIGHT` on a list (pops the tail and pushes it back to the tail,
    /// the same list), `XREAD BLOCK` on a stream. One key only.
    Block,
    /// The snapshot read again every `interval` (read-only; any layout).
    Poll {
        /// Time between two reads.
        interval: Duration,
    },
}

/// Where the queue's messages are, and what the autoscaler reads.
///
/// Every key a layout reads is listed in the crate README. Key names are
/// used as given: no prefix is added unless the layout says so.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Layout {
    /// A list of messages (`LPUSH`/`BRPOP`, or `BLMOVE` into a processing
    /// list for the reliable-queue pattern).
    List {
        /// The list producers push to.
        key: String,
        /// Lists holding messages taken by a worker and not yet done
        /// (`?processing=KEY`, repeatable).
        processing: Vec<String>,
    },
    /// A stream read by a consumer group (`XREADGROUP`, `XACK`).
    Stream {
        /// The stream.
        key: String,
        /// The consumer group of the workers (`?group=`).
        group: String,
        /// A consumer whose last read attempt is older is taken as gone
        /// (`?consumer-idle=SECONDS`; used on Redis 7.2 and later).
        consumer_idle: Duration,
        /// The most entries counted when Redis reports no lag
        /// (`?lag-scan=N`).
        lag_scan: u32,
    },
    /// Celery on kombu's Redis transport.
    Celery {
        /// The queue (default `celery`).
        queue: String,
        /// kombu's `global_keyprefix` (`?prefix=`, default none).
        prefix: String,
        /// kombu's `priority_steps` (`?priority-steps=0,3,6,9`).
        priority_steps: Vec<u8>,
        /// Whether the `unacked` hash counts as in flight (`?unacked=`,
        /// default true). It is shared by every queue of the database.
        unacked: bool,
    },
    /// Sidekiq (basic fetch).
    Sidekiq {
        /// The queue (default `default`).
        queue: String,
    },
    /// RQ (Python).
    Rq {
        /// The queue (default `default`).
        queue: String,
    },
    /// BullMQ (Node.js).
    Bullmq {
        /// The queue.
        queue: String,
        /// The key prefix (`?prefix=`, default `bull`).
        prefix: String,
    },
}

impl Layout {
    /// The layout's name in the URI (`list`, `stream`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Layout::List { .. } => "list",
            Layout::Stream { .. } => "stream",
            Layout::Celery { .. } => "celery",
            Layout::Sidekiq { .. } => "sidekiq",
            Layout::Rq { .. } => "rq",
            Layout::Bullmq { .. } => "bullmq",
        }
    }

    /// The name in the URI: the key of a list or stream, else the queue.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Layout::List { key, .. } | Layout::Stream { key, .. } => key,
            Layout::Celery { queue, .. }
            | Layout::Sidekiq { queue }
            | Layout::Rq { queue }
            | Layout::Bullmq { queue, .. } => queue,
        }
    }

    /// The lists a message waits in before a worker takes it, in the order
    /// the layout's workers read them (streams: none).
    #[must_use]
    pub fn waiting_lists(&self) -> Vec<String> {
        match self {
            Layout::List { key, .. } => vec![key.clone()],
            Layout::Stream { .. } => Vec::new(),
            Layout::Celery {
                queue,
                prefix,
                priority_steps,
                ..
            } => priority_steps
                .iter()
                .map(|&step| celery_list(prefix, queue, step))
                .collect(),
            Layout::Sidekiq { queue } => vec![format!("queue:{queue}")],
            Layout::Rq { queue } => vec![format!("rq:queue:{queue}")],
            Layout::Bullmq { queue, prefix } => vec![
                format!("{prefix}:{queue}:wait"),
                format!("{prefix}:{queue}:paused"),
            ],
        }
    }

    /// The wake-up this layout uses unless the URI says `wakeup=`: a
    /// blocking wait where one key receives every message, else polling.
    #[must_use]
    pub fn default_wake_up(&self) -> WakeUp {
        if self.blocks_on_one_key() {
            WakeUp::Block
        } else {
            WakeUp::Poll {
                interval: DEFAULT_WAKEUP_INTERVAL,
            }
        }
    }

    fn blocks_on_one_key(&self) -> bool {
        match self {
            Layout::List { .. }
            | Layout::Stream { .. }
            | Layout::Sidekiq { .. }
            | Layout::Rq { .. } => true,
            Layout::Celery { priority_steps, .. } => priority_steps.len() == 1,
            Layout::Bullmq { .. } => false,
        }
    }
}

/// The list kombu keeps the messages of `queue` with priority `step` in.
#[must_use]
pub fn celery_list(prefix: &str, queue: &str, step: u8) -> String {
    if step == 0 {
        format!("{prefix}{queue}")
    } else {
        format!("{prefix}{queue}{CELERY_PRIORITY_SEP}{step}")
    }
}

/// A parsed Redis queue URI:
///
/// ```text
/// redis[s]://[[user]:password@]host[:port]/[db/]KIND[/NAME][?option=value&...]
/// ```
///
/// | KIND | NAME | options |
/// |---|---|---|
/// | `list` | the list's key (required) | `processing=KEY` (repeatable) |
/// | `stream` | the stream's key (required) | `group=NAME` (required), `consumer-idle=SECONDS` (60), `lag-scan=N` (1000) |
/// | `celery` | the queue (`celery`) | `prefix=` (kombu's `global_keyprefix`), `priority-steps=0,3,6,9`, `unacked=true\|false` |
/// | `sidekiq` | the queue (`default`) | |
/// | `rq` | the queue (`default`) | |
/// | `bullmq` | the queue (required) | `prefix=` (`bull`) |
///
/// Every kind also takes `wakeup=block|poll` and `wakeup-interval-ms=N`
/// (10 to 60000, default 200). The host defaults to `localhost`, the port
/// to 6379, the database to 0; an IPv6 host is written in brackets. NAME is
/// the rest of the path and may contain `/`; it, the user, the password
/// and option values are percent-decoded (`%2F`, `%3F`, `%25`, ...).
/// `rediss://` is TLS. Anything else is an [`Error::InvalidUri`] saying
/// what is wrong.
///
/// ```
/// use wpa_redis::{Layout, RedisUri};
///
/// let uri: RedisUri = "redis://:secret@cache:6380/2/list/jobs?processing=jobs:processing".parse()?;
/// assert_eq!(uri.address(), "cache:6380");
/// assert_eq!(uri.db(), 2);
/// assert!(matches!(uri.layout(), Layout::List { key, processing } if key == "jobs" && processing == &["jobs:processing"]));
/// // The password never shows.
/// assert_eq!(uri.to_string(), "redis://:***@cache:6380/2/list/jobs?processing=jobs:processing");
///
/// let celery: RedisUri = "redis://localhost/celery".parse()?;
/// assert_eq!(celery.layout().waiting_lists(), ["celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169"]);
/// assert!("redis://host/stream/events".parse::<RedisUri>().is_err()); // no group
/// # Ok::<(), wpa_redis::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisUri {
    tls: bool,
    host: String,
    port: u16,
    db: u16,
    username: Option<String>,
    password: Option<String>,
    layout: Layout,
    wake_up: WakeUp,
}

impl fmt::Debug for RedisUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUri")
            .field("tls", &self.tls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("layout", &self.layout)
            .field("wake_up", &self.wake_up)
            .finish()
    }
}

impl RedisUri {
    /// A plain-TCP URI from its parts, on database 0, without credentials,
    /// with the layout's default wake-up.
    #[must_use]
    pub fn new(host: impl Into<String>, port: u16, layout: Layout) -> Self {
        RedisUri {
            tls: false,
            host: host.into(),
            port,
            db: 0,
            username: None,
            password: None,
            wake_up: layout.default_wake_up(),
            layout,
        }
    }

    /// Whether the connection uses TLS (`rediss://`).
    #[must_use]
    pub fn tls(&self) -> bool {
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

    /// The database number (`SELECT`).
    #[must_use]
    pub fn db(&self) -> u16 {
        self.db
    }

    /// The ACL user, if the URI names one (else `default`).
    #[must_use]
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The password, if any.
    #[must_use]
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The key layout.
    #[must_use]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The wake-up mechanism.
    #[must_use]
    pub fn wake_up(&self) -> WakeUp {
        self.wake_up
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

    /// The same URI with another database.
    #[must_use]
    pub fn with_db(mut self, db: u16) -> Self {
        self.db = db;
        self
    }

    /// The same URI with credentials (`username` `None`: the `default` user).
    #[must_use]
    pub fn with_credentials(
        mut self,
        username: Option<String>,
        password: impl Into<String>,
    ) -> Self {
        self.username = username;
        self.password = Some(password.into());
        self
    }

    /// The same URI with another wake-up mechanism. [`WakeUp::Block`] on
    /// a layout that waits on several keys falls back to polling.
    #[must_use]
    pub fn with_wake_up(mut self, wake_up: WakeUp) -> Self {
        self.wake_up = match wake_up {
            WakeUp::Block if !self.layout.blocks_on_one_key() => self.layout.default_wake_up(),
            other => other,
        };
        self
    }
}

/// The canonical form, password shown as `***`: every default written out
/// except the wake-up, percent-encoding where needed.
impl fmt::Display for RedisUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.tls { "rediss://" } else { "redis://" })?;
        if self.username.is_some() || self.password.is_some() {
            if let Some(user) = &self.username {
                f.write_str(&encode(user, USERINFO_SAFE))?;
            }
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            f.write_char('@')?;
        }
        write!(f, "{}/{}/{}", self.address(), self.db, self.layout.kind())?;
        write!(f, "/{}", encode(self.layout.name(), PATH_SAFE))?;
        let mut options: Vec<(&str, String)> = Vec::new();
        match &self.layout {
            Layout::List { processing, .. } => {
                options.extend(processing.iter().map(|key| ("processing", key.clone())));
            }
            Layout::Stream {
                group,
                consumer_idle,
                lag_scan,
                ..
            } => {
                options.push(("group", group.clone()));
                if *consumer_idle != DEFAULT_CONSUMER_IDLE {
                    options.push(("consumer-idle", consumer_idle.as_secs().to_string()));
                }
                if *lag_scan != DEFAULT_LAG_SCAN {
                    options.push(("lag-scan", lag_scan.to_string()));
                }
            }
            Layout::Celery {
                prefix,
                priority_steps,
                unacked,
                ..
            } => {
                if !prefix.is_empty() {
                    options.push(("prefix", prefix.clone()));
                }
                if priority_steps.as_slice() != CELERY_DEFAULT_PRIORITY_STEPS {
                    let steps: Vec<String> = priority_steps.iter().map(u8::to_string).collect();
                    options.push(("priority-steps", steps.join(",")));
                }
                if !unacked {
                    options.push(("unacked", "false".to_owned()));
                }
            }
            Layout::Sidekiq { .. } | Layout::Rq { .. } => {}
            Layout::Bullmq { prefix, .. } => {
                if prefix != "bull" {
                    options.push(("prefix", prefix.clone()));
                }
            }
        }
        if self.wake_up != self.layout.default_wake_up() {
            match self.wake_up {
                WakeUp::Block => options.push(("wakeup", "block".to_owned())),
                WakeUp::Poll { interval } => {
                    options.push(("wakeup", "poll".to_owned()));
                    if interval != DEFAULT_WAKEUP_INTERVAL {
                        options.push(("wakeup-interval-ms", interval.as_millis().to_string()));
                    }
                }
            }
        } else if let WakeUp::Poll { interval } = self.wake_up
            && interval != DEFAULT_WAKEUP_INTERVAL
        {
            options.push(("wakeup-interval-ms", interval.as_millis().to_string()));
        }
        for (i, (name, value)) in options.iter().enumerate() {
            f.write_char(if i == 0 { '?' } else { '&' })?;
            write!(f, "{name}={}", encode(value, VALUE_SAFE))?;
        }
        Ok(())
    }
}

/// Bytes written as they are in each part; everything else is `%XX`.
const USERINFO_SAFE: &[u8] = b"-._~!$'()*+,;=";
const PATH_SAFE: &[u8] = b"-._~!$'()*+,;=:@/&";
const VALUE_SAFE: &[u8] = b"-._~!$'()*,;:@/";

fn encode(text: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || safe.contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `%XX` decoded; the result must be UTF-8.
fn decode(text: &str) -> Result<String, &'static str> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or("a % must be followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-decoding gives bytes that are not UTF-8")
}

fn check_name(what: &'static str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("the {what} is longer than {MAX_NAME_LEN} bytes"));
    }
    Ok(())
}

/// The options of one URI, each taken once by the layout that knows it.
struct Options {
    pairs: Vec<(String, String)>,
}

impl Options {
    fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut pairs = Vec::new();
        let Some(query) = query else {
            return Ok(Options { pairs });
        };
        for part in query.split('&') {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("option {part:?} has no value (expected name=value)"))?;
            let value = decode(value).map_err(|e| format!("option {name}: {e}"))?;
            pairs.push((name.to_owned(), value));
        }
        Ok(Options { pairs })
    }

    /// The values of `name`, removed from the options.
    fn take_all(&mut self, name: &str) -> Vec<String> {
        let (taken, rest) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(n, _)| n == name);
        self.pairs = rest;
        taken.into_iter().map(|(_, v)| v).collect()
    }

    /// The value of `name` if given, at most once.
    fn take(&mut self, name: &str) -> Result<Option<String>, String> {
        let mut values = self.take_all(name);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            _ => Err(format!("option {name} is given more than once")),
        }
    }

    fn number<T: FromStr + Copy + PartialOrd + fmt::Display>(
        &mut self,
        name: &str,
        range: (T, T),
    ) -> Result<Option<T>, String> {
        let Some(text) = self.take(name)? else {
            return Ok(None);
        };
        match text.parse::<T>() {
            Ok(value) if value >= range.0 && value <= range.1 => Ok(Some(value)),
            _ => Err(format!(
                "option {name}={text:?} must be a whole number from {} to {}",
                range.0, range.1
            )),
        }
    }

    fn boolean(&mut self, name: &str) -> Result<Option<bool>, String> {
        match self.take(name)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(format!("option {name}={other:?} must be true or false")),
        }
    }

    /// Fails on any option left over.
    fn finish(self, kind: &str, known: &[&str]) -> Result<(), String> {
        match self.pairs.first() {
            None => Ok(()),
            Some((name, _)) => {
                let mut allowed: Vec<&str> = known.to_vec();
                allowed.extend(["wakeup", "wakeup-interval-ms"]);
                Err(format!(
                    "unknown option {name:?} for {kind} (known: {})",
                    allowed.join(", ")
                ))
            }
        }
    }
}

fn layout(
    kind: &str,
    name: Option<String>,
    options: &mut Options,
) -> Result<(Layout, &'static [&'static str]), String> {
    let required = |name: Option<String>, what: &'static str| {
        let name = name.ok_or_else(|| format!("{kind} needs the {what}: {kind}/NAME"))?;
        check_name(what, &name)?;
        Ok::<_, String>(name)
    };
    let or_default = |name: Option<String>, default: &str| {
        let name = name.unwrap_or_else(|| default.to_owned());
        check_name("queue name", &name)?;
        Ok::<_, String>(name)
    };
    Ok(match kind {
        "list" => {
            let key = required(name, "list key")?;
            let processing = options.take_all("processing");
            if processing.len() > MAX_PROCESSING_LISTS {
                return Err(format!("at most {MAX_PROCESSING_LISTS} processing lists"));
            }
            for list in &processing {
                check_name("processing list key", list)?;
            }
            (Layout::List { key, processing }, &["processing"])
        }
        "stream" => {
            let key = required(name, "stream key")?;
            let group = options
                .take("group")?
                .ok_or("a stream needs its consumer group: stream/KEY?group=GROUP")?;
            check_name("group name", &group)?;
            let consumer_idle = options
                .number("consumer-idle", (1_u64, 86_400))?
                .map_or(DEFAULT_CONSUMER_IDLE, Duration::from_secs);
            let lag_scan = options
                .number("lag-scan", (1_u32, 100_000))?
                .unwrap_or(DEFAULT_LAG_SCAN);
            (
                Layout::Stream {
                    key,
                    group,
                    consumer_idle,
                    lag_scan,
                },
                &["group", "consumer-idle", "lag-scan"],
            )
        }
        "celery" => {
            let queue = or_default(name, "celery")?;
            let prefix = options.take("prefix")?.unwrap_or_default();
            if prefix.len() > MAX_NAME_LEN {
                return Err(format!("the prefix is longer than {MAX_NAME_LEN} bytes"));
            }
            let priority_steps = match options.take("priority-steps")? {
                None => CELERY_DEFAULT_PRIORITY_STEPS.to_vec(),
                Some(text) => {
                    let mut steps = Vec::new();
                    for step in text.split(',') {
                        let step: u8 = step.parse().map_err(|_| {
                            format!("priority-steps={text:?} must be numbers from 0 to 255 separated by commas")
                        })?;
                        if steps.contains(&step) {
                            return Err(format!("priority-steps={text:?} repeats {step}"));
                        }
                        steps.push(step);
                    }
                    if steps.len() > 32 {
                        return Err("at most 32 priority steps".to_owned());
                    }
                    steps
                }
            };
            let unacked = options.boolean("unacked")?.unwrap_or(true);
            (
                Layout::Celery {
                    queue,
                    prefix,
                    priority_steps,
                    unacked,
                },
                &["prefix", "priority-steps", "unacked"],
            )
        }
        "sidekiq" => (
            Layout::Sidekiq {
                queue: or_default(name, "default")?,
            },
            &[],
        ),
        "rq" => (
            Layout::Rq {
                queue: or_default(name, "default")?,
            },
            &[],
        ),
        "bullmq" => {
            let queue = required(name, "queue name")?;
            let prefix = options.take("prefix")?.unwrap_or_else(|| "bull".to_owned());
            check_name("prefix", &prefix)?;
            (Layout::Bullmq { queue, prefix }, &["prefix"])
        }
        other => {
            return Err(format!(
                "unknown layout {other:?} (expected list, stream, celery, sidekiq, rq or bullmq)"
            ));
        }
    })
}

fn wake_up(layout: &Layout, options: &mut Options) -> Result<WakeUp, String> {
    let interval = options
        .number("wakeup-interval-ms", (10_u64, 60_000))?
        .map(Duration::from_millis);
    let mode = options.take("wakeup")?;
    match (mode.as_deref(), interval) {
        (Some("block"), Some(_)) => {
            Err("wakeup-interval-ms applies to wakeup=poll only".to_owned())
        }
        (Some("block"), None) if !layout.blocks_on_one_key() => Err(format!(
            "wakeup=block needs one key receiving every message; {} waits on several keys: use wakeup=poll",
            layout.kind()
        )),
        (Some("block"), None) => Ok(WakeUp::Block),
        (Some("poll"), interval) => Ok(WakeUp::Poll {
            interval: interval.unwrap_or(DEFAULT_WAKEUP_INTERVAL),
        }),
        (Some(other), _) => Err(format!("wakeup={other:?} must be block or poll")),
        (None, None) => Ok(layout.default_wake_up()),
        (None, Some(interval)) => match layout.default_wake_up() {
            WakeUp::Poll { .. } => Ok(WakeUp::Poll { interval }),
            WakeUp::Block => Err("wakeup-interval-ms applies to wakeup=poll only".to_owned()),
        },
    }
}

fn host_and_port(authority: &str) -> Result<(String, u16), &'static str> {
    let wpa_poller::HostPort { host, port, .. } = wpa_poller::split_host_port(authority)?;
    let host = if host.is_empty() { DEFAULT_HOST } else { host };
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return Err("invalid host");
    }
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(port) => wpa_poller::parse_port(port)?,
    };
    Ok((host.to_owned(), port))
}

fn credentials(userinfo: &str) -> Result<(Option<String>, String), String> {
    let (user, password) = userinfo
        .split_once(':')
        .ok_or("a user needs a password: redis://user:password@host (or redis://:password@host)")?;
    let user = decode(user).map_err(|e| format!("user: {e}"))?;
    let password = decode(password).map_err(|e| format!("password: {e}"))?;
    if password.is_empty() {
        return Err("the password is empty".to_owned());
    }
    Ok(((!user.is_empty()).then_some(user), password))
}

fn parse(uri: &str) -> Result<RedisUri, String> {
    let (tls, rest) = if let Some(rest) = uri.strip_prefix("redis://") {
        (false, rest)
    } else if let Some(rest) = uri.strip_prefix("rediss://") {
        (true, rest)
    } else {
        return Err("the scheme must be redis:// or rediss://".to_owned());
    };
    if rest.contains('#') {
        return Err("a fragment (#) is not allowed".to_owned());
    }
    if let Some(bad) = rest.chars().find(|c| c.is_control() || *c == ' ') {
        return Err(format!("{bad:?} must be percent-encoded"));
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = rest
        .split_once('/')
        .ok_or("the layout is missing: add /KIND/NAME after the host")?;
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        Some(userinfo) => {
            let (user, password) = credentials(userinfo)?;
            (user, Some(password))
        }
        None => (None, None),
    };
    let (host, port) = host_and_port(hostport)?;
    let (db, path) = match path.split_once('/') {
        Some((first, rest)) if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) => {
            let db = first
                .parse::<u16>()
                .map_err(|_| format!("database {first} is not a number from 0 to 65535"))?;
            (db, rest)
        }
        _ if !path.is_empty() && path.bytes().all(|b| b.is_ascii_digit()) => {
            return Err("the layout is missing after the database: /DB/KIND/NAME".to_owned());
        }
        _ => (0, path),
    };
    let (kind, name) = match path.split_once('/') {
        Some((kind, name)) => (kind, Some(decode(name).map_err(|e| format!("name: {e}"))?)),
        None => (path, None),
    };
    if kind.is_empty() {
        return Err("the layout is missing: add /KIND/NAME after the host".to_owned());
    }
    if name.as_deref() == Some("") {
        return Err(format!("the name after {kind}/ is empty"));
    }
    let mut options = Options::parse(query)?;
    let (layout, known) = layout(kind, name, &mut options)?;
    let wake_up = wake_up(&layout, &mut options)?;
    options.finish(kind, known)?;
    Ok(RedisUri {
        tls,
        host,
        port,
        db,
        username,
        password,
        layout,
        wake_up,
    })
}

impl FromStr for RedisUri {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self, Error> {
        parse(uri).map_err(|reason| Error::InvalidUri {
            uri: wpa_poller::redact_queue_uri(uri).into_owned(),
            reason,
        })
    }
}
