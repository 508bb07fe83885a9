//! The beanstalkd protocol as pure functions: commands to bytes, bytes to
//! replies. No I/O, no async: the client feeds socket reads in, and the
//! proptest suite and the fuzz target feed arbitrary bytes in.
//!
//! Replies are parsed incrementally: [`parse_reply`] answers `Ok(None)` until
//! a whole reply (its line and, for `OK`, `RESERVED` and `FOUND`, its body)
//! is in the buffer, so a reply split anywhere parses the same.

use std::fmt;

use crate::{Error, TubeName};

/// Longest reply line accepted, `\r\n` included. beanstalkd's longest
/// reply line is far shorter (`USING` and a 200-byte tube name).
pub const MAX_LINE: usize = 1024;

/// Largest reply body accepted (a job body or a stats document). beanstalkd's
/// default `max-job-size` is 65,535 bytes; anything above this bound is
/// treated as garbage rather than buffered.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// One beanstalkd command, borrowing what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<'a> {
    /// `use <tube>`: the tube `put` goes to.
    Use(&'a TubeName),
    /// `watch <tube>`: add a tube to the reserve list.
    Watch(&'a TubeName),
    /// `ignore <tube>`: remove a tube from the reserve list.
    Ignore(&'a TubeName),
    /// `put <pri> <delay> <ttr> <bytes>` and the body.
    Put {
        /// Priority: lower is more urgent.
        priority: u32,
        /// Seconds before the job is ready.
        delay: u32,
        /// Seconds a worker may hold the job.
        ttr: u32,
        /// The job body.
        body: &'a [u8],
    },
    /// `reserve`: block until a job is ready on a watched tube.
    Reserve,
    /// `reserve-with-timeout <seconds>`.
    ReserveWithTimeout(u32),
    /// `release <id> <pri> <delay>`: give a reserved job back.
    Release {
        /// The job.
        id: u64,
        /// The priority it goes back with.
        priority: u32,
        /// Seconds before it is ready again.
        delay: u32,
    },
    /// `delete <id>`.
    Delete(u64),
    /// `bury <id> <pri>`.
    Bury {
        /// The job.
        id: u64,
        /// Its new priority.
        priority: u32,
    },
    /// `peek-ready` on the used tube.
    PeekReady,
    /// `stats-job <id>`.
    StatsJob(u64),
    /// `stats-tube <tube>`.
    StatsTube(&'a TubeName),
    /// `stats`: server-wide statistics.
    Stats,
    /// `list-tubes`.
    ListTubes,
    /// `quit`: the server closes the connection.
    Quit,
}

impl Command<'_> {
    /// The command's name, for errors and logs.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Command::Use(_) => "use",
            Command::Watch(_) => "watch",
            Command::Ignore(_) => "ignore",
            Command::Put { .. } => "put",
            Command::Reserve => "reserve",
            Command::ReserveWithTimeout(_) => "reserve-with-timeout",
            Command::Release { .. } => "release",
            Command::Delete(_) => "delete",
            Command::Bury { .. } => "bury",
            Command::PeekReady => "peek-ready",
            Command::StatsJob(_) => "stats-job",
            Command::StatsTube(_) => "stats-tube",
            Command::Stats => "stats",
            Command::ListTubes => "list-tubes",
            Command::Quit => "quit",
        }
    }

    /// Appends the command's wire form (line, and body for `put`) to `out`.
    ///
    /// ```
    /// use wpa_beanstalkd::{Command, TubeName};
    ///
    /// let tube: TubeName = "emails".parse()?;
    /// let mut out = Vec::new();
    /// Command::StatsTube(&tube).encode(&mut out);
    /// assert_eq!(out, b"stats-tube emails\r\n");
    /// # Ok::<(), wpa_beanstalkd::Error>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing to a Vec cannot fail.
        let _ = match self {
            Command::Use(tube) | Command::Watch(tube) | Command::Ignore(tube) => {
                write!(out, "{} {}\r\n", self.name(), tube)
            }
            Command::Put {
                priority,
                delay,
                ttr,
                body,
            } => {
                let _ = write!(out, "put {priority} {delay} {ttr} {}\r\n", body.len());
                out.extend_from_slice(body);
                out.extend_from_slice(b"\r\n");
                Ok(())
            }
            Command::ReserveWithTimeout(seconds) => {
                write!(out, "reserve-with-timeout {seconds}\r\n")
            }
            Command::Release {
                id,
                priority,
                delay,
            } => write!(out, "release {id} {priority} {delay}\r\n"),
            Command::Delete(id) | Command::StatsJob(id) => write!(out, "{} {id}\r\n", self.name()),
            Command::Bury { id, priority } => write!(out, "bury {id} {priority}\r\n"),
            Command::StatsTube(tube) => write!(out, "stats-tube {tube}\r\n"),
            Command::Reserve
            | Command::PeekReady
            | Command::Stats
            | Command::ListTubes
            | Command::Quit => write!(out, "{}\r\n", self.name()),
        };
    }
}

/// One reply from beanstalkd.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// `OK <bytes>` and a body (a YAML document for the stats commands).
    Ok(Vec<u8>),
    /// `RESERVED <id> <bytes>` and the job body.
    Reserved {
        /// The job.
        id: u64,
        /// Its body.
        body: Vec<u8>,
    },
    /// `FOUND <id> <bytes>` and the job body (peek commands).
    Found {
        /// The job.
        id: u64,
        /// Its body.
        body: Vec<u8>,
    },
    /// `INSERTED <id>`.
    Inserted(u64),
    /// `BURIED <id>` (a put the server could not queue) or `BURIED`.
    Buried(Option<u64>),
    /// `WATCHING <count>`.
    Watching(u64),
    /// `USING <tube>`.
    Using(String),
    /// `RELEASED`.
    Released,
    /// `DELETED`.
    Deleted,
    /// `TOUCHED`.
    Touched,
    /// `KICKED` or `KICKED <count>`.
    Kicked(Option<u64>),
    /// `PAUSED`.
    Paused,
    /// `TIMED_OUT`: a `reserve-with-timeout` saw no job.
    TimedOut,
    /// `DEADLINE_SOON`: a job this connection reserved is about to time out.
    DeadlineSoon,
    /// `NOT_FOUND`.
    NotFound,
    /// `NOT_IGNORED`: the last watched tube cannot be ignored.
    NotIgnored,
    /// `EXPECTED_CRLF`.
    ExpectedCrlf,
    /// `JOB_TOO_BIG`.
    JobTooBig,
    /// `DRAINING`: the server is in drain mode and takes no new jobs.
    Draining,
    /// `OUT_OF_MEMORY`.
    OutOfMemory,
    /// `INTERNAL_ERROR`.
    InternalError,
    /// `BAD_FORMAT`.
    BadFormat,
    /// `UNKNOWN_COMMAND`.
    UnknownCommand,
}

impl Reply {
    /// The reply's keyword, as on the wire.
    #[must_use]
    pub const fn keyword(&self) -> &'static str {
        match self {
            Reply::Ok(_) => "OK",
            Reply::Reserved { .. } => "RESERVED",
            Reply::Found { .. } => "FOUND",
            Reply::Inserted(_) => "INSERTED",
            Reply::Buried(_) => "BURIED",
            Reply::Watching(_) => "WATCHING",
            Reply::Using(_) => "USING",
            Reply::Released => "RELEASED",
            Reply::Deleted => "DELETED",
            Reply::Touched => "TOUCHED",
            Reply::Kicked(_) => "KICKED",
            Reply::Paused => "PAUSED",
            Reply::TimedOut => "TIMED_OUT",
            Reply::DeadlineSoon => "DEADLINE_SOON",
            Reply::NotFound => "NOT_FOUND",
            Reply::NotIgnored => "NOT_IGNORED",
            Reply::ExpectedCrlf => "EXPECTED_CRLF",
            Reply::JobTooBig => "JOB_TOO_BIG",
            Reply::Draining => "DRAINING",
            Reply::OutOfMemory => "OUT_OF_MEMORY",
            Reply::InternalError => "INTERNAL_ERROR",
            Reply::BadFormat => "BAD_FORMAT",
            Reply::UnknownCommand => "UNKNOWN_COMMAND",
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// Parses one reply from the front of `buf`.
///
/// `Ok(None)`: the reply is not complete yet, read more. `Ok(Some((reply,
/// used)))`: a reply and the number of bytes it took. `Err`: the bytes are
/// not a beanstalkd reply ([`Error::MalformedReply`]); the connection can
/// no longer be trusted.
///
/// ```
/// use wpa_beanstalkd::{parse_reply, Reply};
///
/// assert_eq!(parse_reply(b"RESERVED 7 2\r\nhi")?, None); // body incomplete
/// let (reply, used) = parse_reply(b"RESERVED 7 2\r\nhi\r\nTIMED_OUT\r\n")?.unwrap();
/// assert_eq!(reply, Reply::Reserved { id: 7, body: b"hi".to_vec() });
/// assert_eq!(used, 18);
/// # Ok::<(), wpa_beanstalkd::Error>(())
/// ```
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, Error> {
    let search = &buf[..buf.len().min(MAX_LINE)];
    let Some(end) = search.windows(2).position(|pair| pair == b"\r\n") else {
        if buf.len() >= MAX_LINE {
            return Err(malformed("reply line longer than 1024 bytes", search));
        }
        // A lone `\n` or a byte no reply contains is garbage already.
        if buf
            .iter()
            .any(|&b| !(b == b' ' || b == b'\r' || b.is_ascii_graphic()))
        {
            return Err(malformed("reply line holds a non-printable byte", search));
        }
        if buf.len() >= 2 && buf[..buf.len() - 1].contains(&b'\r') {
            return Err(malformed("carriage return inside a reply line", search));
        }
        return Ok(None);
    };
    let line = &buf[..end];
    if !line.iter().all(|&b| b == b' ' || b.is_ascii_graphic()) {
        return Err(malformed("reply line holds a non-printable byte", line));
    }
    let header = end + 2;
    let text = std::str::from_utf8(line).map_err(|_| malformed("reply line is not ASCII", line))?;
    let mut words = text.split(' ');
    let keyword = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    let simple = |reply: Reply| -> Result<Option<(Reply, usize)>, Error> {
        if args.is_empty() {
            Ok(Some((reply, header)))
        } else {
            Err(malformed(
                "unexpected argument after the reply keyword",
                line,
            ))
        }
    };
    let one_number = || -> Result<u64, Error> {
        match args.as_slice() {
            [value] => number(value, line),
            _ => Err(malformed("expected exactly one number", line)),
        }
    };
    let with_body = |make: fn(u64, Vec<u8>) -> Reply,
                     id: u64,
                     len: &str|
     -> Result<Option<(Reply, usize)>, Error> {
        let len = number(len, line)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= MAX_BODY)
            .ok_or_else(|| malformed("reply body larger than 16 MiB", line))?;
        let total = header + len + 2;
        if buf.len() < total {
            // Check what is already there, so that garbage fails early.
            let have = &buf[header..];
            if have.len() > len && have[len] != b'\r' {
                return Err(malformed("reply body not followed by \\r\\n", line));
            }
            return Ok(None);
        }
        if &buf[header + len..total] != b"\r\n" {
            return Err(malformed("reply body not followed by \\r\\n", line));
        }
        Ok(Some((make(id, buf[header..header + len].to_vec()), total)))
    };
    match keyword {
        "OK" => match args.as_slice() {
            [len] => with_body(|_, body| Reply::Ok(body), 0, len),
            _ => Err(malformed("OK takes one byte count", line)),
        },
        "RESERVED" | "FOUND" => match args.as_slice() {
            [id, len] => {
                let id = number(id, line)?;
                if keyword == "RESERVED" {
                    with_body(|id, body| Reply::Reserved { id, body }, id, len)
                } else {
                    with_body(|id, body| Reply::Found { id, body }, id, len)
                }
            }
            _ => Err(malformed("expected a job id and a byte count", line)),
        },
        "INSERTED" => Ok(Some((Reply::Inserted(one_number()?), header))),
        "BURIED" if args.is_empty() => Ok(Some((Reply::Buried(None), header))),
        "BURIED" => Ok(Some((Reply::Buried(Some(one_number()?)), header))),
        "KICKED" if args.is_empty() => Ok(Some((Reply::Kicked(None), header))),
        "KICKED" => Ok(Some((Reply::Kicked(Some(one_number()?)), header))),
        "WATCHING" => Ok(Some((Reply::Watching(one_number()?), header))),
        "USING" => match args.as_slice() {
            [tube] if !tube.is_empty() => Ok(Some((Reply::Using((*tube).to_owned()), header))),
            _ => Err(malformed("USING takes one tube name", line)),
        },
        "RELEASED" => simple(Reply::Released),
        "DELETED" => simple(Reply::Deleted),
        "TOUCHED" => simple(Reply::Touched),
        "PAUSED" => simple(Reply::Paused),
        "TIMED_OUT" => simple(Reply::TimedOut),
        "DEADLINE_SOON" => simple(Reply::DeadlineSoon),
        "NOT_FOUND" => simple(Reply::NotFound),
        "NOT_IGNORED" => simple(Reply::NotIgnored),
        "EXPECTED_CRLF" => simple(Reply::ExpectedCrlf),
        "JOB_TOO_BIG" => simple(Reply::JobTooBig),
        "DRAINING" => simple(Reply::Draining),
        "OUT_OF_MEMORY" => simple(Reply::OutOfMemory),
        "INTERNAL_ERROR" => simple(Reply::InternalError),
        "BAD_FORMAT" => simple(Reply::BadFormat),
        "UNKNOWN_COMMAND" => simple(Reply::UnknownCommand),
        _ => Err(malformed("unknown reply keyword", line)),
    }
}

/// A decimal number as beanstalkd writes it: ASCII digits only, fits 64 bits.
fn number(text: &str, line: &[u8]) -> Result<u64, Error> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("expected a decimal number", line));
    }
    text.parse()
        .map_err(|_| malformed("number does not fit in 64 bits", line))
}

fn malformed(reason: &'static str, bytes: &[u8]) -> Error {
    let shown = &bytes[..bytes.len().min(64)];
    Error::MalformedReply {
        reason,
        reply: String::from_utf8_lossy(shown).into_owned(),
    }
}

/// An incremental reply decoder: push bytes as they arrive, take replies as
/// they complete.
///
/// ```
/// use wpa_beanstalkd::{ReplyDecoder, Reply};
///
/// let mut decoder = ReplyDecoder::default();
/// decoder.push(b"WATCH");
/// assert_eq!(decoder.next_reply()?, None);
/// decoder.push(b"ING 2\r\nTIMED_OUT\r\n");
/// assert_eq!(decoder.next_reply()?, Some(Reply::Watching(2)));
/// assert_eq!(decoder.next_reply()?, Some(Reply::TimedOut));
/// assert_eq!(decoder.next_reply()?, None);
/// # Ok::<(), wpa_beanstalkd::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct ReplyDecoder {
    buf: Vec<u8>,
}

impl ReplyDecoder {
    /// Appends bytes read from the server.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next complete reply, if there is one.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, Error> {
        match parse_reply(&self.buf)? {
            Some((reply, used)) => {
                self.buf.drain(..used);
                Ok(Some(reply))
            }
            None => Ok(None),
        }
    }

    /// Bytes received but not yet part of a complete reply.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Forgets everything buffered (after a reconnect).
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}
