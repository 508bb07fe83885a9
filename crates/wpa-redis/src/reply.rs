//! Pure decoders of the replies this crate reads, from [`redis::Value`]
//! (RESP2 flat arrays and RESP3 maps alike) to plain structs. No I/O: the
//! property tests and the `redis_reply` fuzz target drive them with any
//! bytes [`redis::parse_redis_value`] accepts.

use std::fmt;
use std::str::FromStr;

use redis::Value;

use crate::Error;

/// A stream entry ID, `<milliseconds>-<sequence>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds since the Unix epoch (of the server's clock, for IDs
    /// the server made).
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for StreamId {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (ms, seq) = text.split_once('-').ok_or(())?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(());
        }
        Ok(StreamId {
            ms: ms.parse().map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

/// One consumer group, from `XINFO GROUPS`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupInfo {
    /// The group's name.
    pub name: String,
    /// Consumers the group knows (live or not).
    pub consumers: u64,
    /// Entries delivered to a consumer and not acknowledged (the PEL).
    pub pending: u64,
    /// The last entry delivered to any consumer of the group.
    pub last_delivered_id: StreamId,
    /// Entries the group read (Redis 7.0+; `None`: unknown).
    pub entries_read: Option<u64>,
    /// Entries not delivered yet (Redis 7.0+; `None`: Redis cannot tell,
    /// e.g. after an `XDEL` between the group's position and the end).
    pub lag: Option<u64>,
}

/// One consumer, from `XINFO CONSUMERS`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerInfo {
    /// The consumer's name.
    pub name: String,
    /// Entries it holds (delivered, not acknowledged).
    pub pending: u64,
    /// Milliseconds since its last interaction: on Redis 7.0 the last
    /// successful read, claim or ack (an empty read does not count); on 7.2
    /// and later its last read attempt.
    pub idle_ms: u64,
    /// Milliseconds since its last successful interaction (Redis 7.2+; -1
    /// for never); `None` on servers that do not report it.
    pub inactive_ms: Option<i64>,
}

/// The parts of `XINFO STREAM` this crate uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamInfo {
    /// Entries in the stream now.
    pub length: u64,
    /// The ID of the newest entry ever added.
    pub last_generated_id: StreamId,
    /// Entries ever added (Redis 7.0+): the arrival counter.
    pub entries_added: Option<u64>,
    /// The oldest entry's ID, if there is one.
    pub first_entry_id: Option<StreamId>,
}

/// What one live Sidekiq process says of itself (its heartbeat hash).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SidekiqProcess {
    /// The queues it fetches from (`info.queues`).
    pub queues: Vec<String>,
    /// Threads running a job (`busy`).
    pub busy: u64,
    /// Its last heartbeat, Unix seconds (`beat`).
    pub beat: f64,
}

/// Text of a bulk or simple string (lossy UTF-8), or a number as text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(number) => Some(number.to_string()),
        Value::Okay => Some("OK".to_owned()),
        _ => None,
    }
}

/// A non-negative integer: an integer reply, or a string of digits (Redis
/// sends some numbers as strings).
pub fn count(value: &Value, command: &'static str) -> Result<u64, Error> {
    match value {
        Value::Int(number) => u64::try_from(*number)
            .map_err(|_| Error::unexpected(command, "a negative count", value)),
        Value::BulkString(_) | Value::SimpleString(_) => text(value)
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| Error::unexpected(command, "not a whole number", value)),
        _ => Err(Error::unexpected(command, "not an integer", value)),
    }
}

/// A counter read with `GET`: `None` when the key does not exist.
pub fn optional_count(value: &Value, command: &'static str) -> Result<Option<u64>, Error> {
    match value {
        Value::Nil => Ok(None),
        other => count(other, command).map(Some),
    }
}

/// Field-value pairs of a RESP3 map or a RESP2 flat array.
fn pairs<'a>(value: &'a Value, command: &'static str) -> Result<Vec<(String, &'a Value)>, Error> {
    match value {
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| {
                text(k).map(|k| (k, v)).ok_or_else(|| {
                    Error::unexpected(command, "a field name that is not a string", value)
                })
            })
            .collect(),
        Value::Array(items) if items.len() % 2 == 0 => items
            .chunks_exact(2)
            .map(|pair| match pair {
                [k, v] => text(k).map(|k| (k, v)).ok_or_else(|| {
                    Error::unexpected(command, "a field name that is not a string", value)
                }),
                _ => Err(Error::unexpected(command, "an odd number of fields", value)),
            })
            .collect(),
        _ => Err(Error::unexpected(command, "not a field-value list", value)),
    }
}

fn field<'a>(fields: &[(String, &'a Value)], name: &str) -> Option<&'a Value> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn required<'a>(
    fields: &[(String, &'a Value)],
    name: &'static str,
    command: &'static str,
    whole: &Value,
) -> Result<&'a Value, Error> {
    field(fields, name).ok_or_else(|| Error::unexpected(command, missing(name), whole))
}

fn missing(name: &'static str) -> &'static str {
    match name {
        "name" => "no name field",
        "pending" => "no pending field",
        "consumers" => "no consumers field",
        "last-delivered-id" => "no last-delivered-id field",
        "idle" => "no idle field",
        "length" => "no length field",
        "last-generated-id" => "no last-generated-id field",
        _ => "a field is missing",
    }
}

fn stream_id(value: &Value, command: &'static str) -> Result<StreamId, Error> {
    text(value)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| Error::unexpected(command, "not a stream ID", value))
}

/// `XINFO GROUPS key`: every group of the stream.
pub fn groups(value: &Value) -> Result<Vec<GroupInfo>, Error> {
    const COMMAND: &str = "XINFO GROUPS";
    let Value::Array(items) = value else {
        return Err(Error::unexpected(COMMAND, "not an array", value));
    };
    items
        .iter()
        .map(|item| {
            let fields = pairs(item, COMMAND)?;
            let name = text(required(&fields, "name", COMMAND, item)?).ok_or_else(|| {
                Error::unexpected(COMMAND, "a group name that is not a string", item)
            })?;
            let nullable = |name: &str| match field(&fields, name) {
                None | Some(Value::Nil) => Ok(None),
                Some(v) => count(v, COMMAND).map(Some),
            };
            Ok(GroupInfo {
                name,
                consumers: count(required(&fields, "consumers", COMMAND, item)?, COMMAND)?,
                pending: count(required(&fields, "pending", COMMAND, item)?, COMMAND)?,
                last_delivered_id: stream_id(
                    required(&fields, "last-delivered-id", COMMAND, item)?,
                    COMMAND,
                )?,
                entries_read: nullable("entries-read")?,
                lag: nullable("lag")?,
            })
        })
        .collect()
}

/// `XINFO CONSUMERS key group`: every consumer of the group.
pub fn consumers(value: &Value) -> Result<Vec<ConsumerInfo>, Error> {
    const COMMAND: &str = "XINFO CONSUMERS";
    let Value::Array(items) = value else {
        return Err(Error::unexpected(COMMAND, "not an array", value));
    };
    items
        .iter()
        .map(|item| {
            let fields = pairs(item, COMMAND)?;
            let name = text(required(&fields, "name", COMMAND, item)?).ok_or_else(|| {
                Error::unexpected(COMMAND, "a consumer name that is not a string", item)
            })?;
            let inactive_ms = match field(&fields, "inactive") {
                None | Some(Value::Nil) => None,
                Some(Value::Int(ms)) => Some(*ms),
                Some(other) => {
                    return Err(Error::unexpected(
                        COMMAND,
                        "inactive is not an integer",
                        other,
                    ));
                }
            };
            Ok(ConsumerInfo {
                name,
                pending: count(required(&fields, "pending", COMMAND, item)?, COMMAND)?,
                idle_ms: count(required(&fields, "idle", COMMAND, item)?, COMMAND)?,
                inactive_ms,
            })
        })
        .collect()
}

/// The ID of a stream entry reply `[id, [field, value, ...]]`.
fn entry_id(value: &Value, command: &'static str) -> Result<StreamId, Error> {
    match value {
        Value::Array(parts) => match parts.first() {
            Some(id) => stream_id(id, command),
            None => Err(Error::unexpected(command, "an empty entry", value)),
        },
        _ => Err(Error::unexpected(
            command,
            "an entry that is not an array",
            value,
        )),
    }
}

/// `XINFO STREAM key` (not `FULL`).
pub fn stream(value: &Value) -> Result<StreamInfo, Error> {
    const COMMAND: &str = "XINFO STREAM";
    let fields = pairs(value, COMMAND)?;
    let entries_added = match field(&fields, "entries-added") {
        None | Some(Value::Nil) => None,
        Some(v) => Some(count(v, COMMAND)?),
    };
    let first_entry_id = match field(&fields, "first-entry") {
        None | Some(Value::Nil) => None,
        Some(entry) => Some(entry_id(entry, COMMAND)?),
    };
    Ok(StreamInfo {
        length: count(required(&fields, "length", COMMAND, value)?, COMMAND)?,
        last_generated_id: stream_id(
            required(&fields, "last-generated-id", COMMAND, value)?,
            COMMAND,
        )?,
        entries_added,
        first_entry_id,
    })
}

/// The IDs of an `XRANGE` / `XREAD` list of entries (`Nil`: none).
pub fn entry_ids(value: &Value) -> Result<Vec<StreamId>, Error> {
    const COMMAND: &str = "XRANGE";
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(entries) => entries
            .iter()
            .map(|entry| entry_id(entry, COMMAND))
            .collect(),
        _ => Err(Error::unexpected(COMMAND, "not an array", value)),
    }
}

/// Whether an `XREAD` reply holds at least one entry (`Nil`: timed out).
pub fn xread_has_entries(value: &Value) -> Result<bool, Error> {
    const COMMAND: &str = "XREAD";
    match value {
        Value::Nil => Ok(false),
        // RESP2: [[key, [entries]]]; RESP3: {key: [entries]}.
        Value::Array(streams) => {
            for stream in streams {
                match stream {
                    Value::Array(parts) => match parts.get(1) {
                        Some(entries) => {
                            if !entry_ids(entries)?.is_empty() {
                                return Ok(true);
                            }
                        }
                        None => {
                            return Err(Error::unexpected(
                                COMMAND,
                                "a stream without entries",
                                stream,
                            ));
                        }
                    },
                    _ => {
                        return Err(Error::unexpected(
                            COMMAND,
                            "a stream that is not an array",
                            stream,
                        ));
                    }
                }
            }
            Ok(false)
        }
        Value::Map(streams) => {
            for (_, entries) in streams {
                if !entry_ids(entries)?.is_empty() {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => Err(Error::unexpected(COMMAND, "not an array", value)),
    }
}

/// `TIME`: the server's clock in milliseconds since the Unix epoch.
pub fn time_ms(value: &Value) -> Result<u64, Error> {
    const COMMAND: &str = "TIME";
    let Value::Array(parts) = value else {
        return Err(Error::unexpected(COMMAND, "not an array", value));
    };
    let [seconds, micros] = parts.as_slice() else {
        return Err(Error::unexpected(COMMAND, "not two numbers", value));
    };
    let seconds = count(seconds, COMMAND)?;
    let micros = count(micros, COMMAND)?;
    seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(micros / 1000))
        .ok_or_else(|| Error::unexpected(COMMAND, "a time out of range", value))
}

/// A string reply (`Nil`: `None`), for `LINDEX` and `HGET`.
pub fn optional_text(value: &Value, command: &'static str) -> Result<Option<String>, Error> {
    match value {
        Value::Nil => Ok(None),
        other => text(other)
            .map(Some)
            .ok_or_else(|| Error::unexpected(command, "not a string", other)),
    }
}

/// The members of a set (`SMEMBERS`), as text.
pub fn members(value: &Value, command: &'static str) -> Result<Vec<String>, Error> {
    match value {
        Value::Array(items) | Value::Set(items) => items
            .iter()
            .map(|item| {
                text(item).ok_or_else(|| {
                    Error::unexpected(command, "a member that is not a string", item)
                })
            })
            .collect(),
        _ => Err(Error::unexpected(command, "not an array", value)),
    }
}

/// A Sidekiq process from `HMGET <identity> info busy beat`: `None` when
/// the hash is gone (the process stopped beating 60 s ago).
pub fn sidekiq_process(value: &Value) -> Result<Option<SidekiqProcess>, Error> {
    const COMMAND: &str = "HMGET";
    let Value::Array(parts) = value else {
        return Err(Error::unexpected(COMMAND, "not an array", value));
    };
    let [info, busy, beat] = parts.as_slice() else {
        return Err(Error::unexpected(COMMAND, "not three fields", value));
    };
    let Some(info) = optional_text(info, COMMAND)? else {
        return Ok(None);
    };
    let info: serde_json::Value = serde_json::from_str(&info)
        .map_err(|_| Error::unexpected(COMMAND, "the info field is not JSON", value))?;
    let queues = match info.get("queues") {
        Some(serde_json::Value::Array(queues)) => queues
            .iter()
            .filter_map(|q| q.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return Err(Error::unexpected(
                COMMAND,
                "the info field has no queues array",
                value,
            ));
        }
    };
    let busy = match busy {
        Value::Nil => 0,
        other => count(other, COMMAND)?,
    };
    let beat = match optional_text(beat, COMMAND)? {
        None => 0.0,
        Some(beat) => beat
            .parse::<f64>()
            .ok()
            .filter(|b| b.is_finite())
            .ok_or_else(|| Error::unexpected(COMMAND, "beat is not a number", value))?,
    };
    Ok(Some(SidekiqProcess { queues, busy, beat }))
}

/// The queue of each job a Sidekiq process runs, from `HVALS
/// <identity>:work` (each value `{"queue": ..., "payload": ..., "run_at": ...}`).
pub fn sidekiq_work_queues(value: &Value) -> Result<Vec<String>, Error> {
    const COMMAND: &str = "HVALS";
    let Value::Array(items) = value else {
        return Err(Error::unexpected(COMMAND, "not an array", value));
    };
    items
        .iter()
        .map(|item| {
            let json =
                text(item).ok_or_else(|| Error::unexpected(COMMAND, "not a string", item))?;
            let work: serde_json::Value = serde_json::from_str(&json)
                .map_err(|_| Error::unexpected(COMMAND, "a work entry that is not JSON", item))?;
            work.get("queue")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Error::unexpected(COMMAND, "a work entry without a queue", item))
        })
        .collect()
}

/// When a Sidekiq job was enqueued, in Unix milliseconds, from its JSON
/// (`enqueued_at`, else `created_at`): Sidekiq 8 writes integer
/// milliseconds, earlier versions float seconds. `None` if absent or not a
/// number.
#[must_use]
pub fn sidekiq_enqueued_ms(job: &str) -> Option<u64> {
    let job: serde_json::Value = serde_json::from_str(job).ok()?;
    let stamp = job.get("enqueued_at").or_else(|| job.get("created_at"))?;
    if let Some(ms) = stamp.as_u64() {
        return Some(ms);
    }
    let seconds = stamp.as_f64()?;
    (0.0..1e15).contains(&seconds).then(|| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ms = (seconds * 1000.0) as u64;
        ms
    })
}

/// Unix milliseconds of an RQ timestamp, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`
/// (UTC, as RQ's `utcformat` writes it). `None` if it is not one.
#[must_use]
pub fn rq_timestamp_ms(stamp: &str) -> Option<u64> {
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let number = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let mut date_parts = date.split('-');
    let year = number(date_parts.next()?, 4)?;
    let month = number(date_parts.next()?, 2)?;
    let day = number(date_parts.next()?, 2)?;
    if date_parts.next().is_some() {
        return None;
    }
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let mut clock_parts = clock.split(':');
    let hour = number(clock_parts.next()?, 2)?;
    let minute = number(clock_parts.next()?, 2)?;
    let second = number(clock_parts.next()?, 2)?;
    if clock_parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<3}");
            padded.get(..3)?.parse::<u64>().ok()?
        }
        Some(_) => return None,
    };
    let days = days_from_civil(year, month, day)?;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (years 1970 to
/// 9999), `None` for an invalid date.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day > *month_days.get(usize::try_from(month - 1).ok()?)? {
        return None;
    }
    // Howard Hinnant's days_from_civil, shifted to unsigned years.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// The error code and message of an error reply (`WRONGTYPE`, `NOPERM`,
/// `NOGROUP`, `ERR`, ...).
#[must_use]
pub fn server_error(value: &Value) -> Option<(String, String)> {
    match value {
        Value::ServerError(error) => Some((
            error.code().to_owned(),
            error.details().unwrap_or_default().to_owned(),
        )),
        _ => None,
    }
}

/// Whether an error reply says the key does not exist (`XINFO` on a
/// missing stream: `ERR no such key`).
#[must_use]
pub fn is_no_such_key(value: &Value) -> bool {
    server_error(value)
        .is_some_and(|(code, detail)| code == "ERR" && detail.contains("no such key"))
}

/// Whether an error reply says the consumer group does not exist.
#[must_use]
pub fn is_no_group(value: &Value) -> bool {
    server_error(value).is_some_and(|(code, _)| code == "NOGROUP")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn stream_ids() {
        assert_eq!("5-1".parse(), Ok(StreamId { ms: 5, seq: 1 }));
        for bad in [
            "",
            "5",
            "-1",
            "5-",
            "a-1",
            "5-1-2",
            "+5-1",
            "18446744073709551616-0",
        ] {
            assert!(bad.parse::<StreamId>().is_err(), "{bad}");
        }
        assert_eq!(StreamId { ms: 7, seq: 0 }.to_string(), "7-0");
    }

    #[test]
    fn groups_with_a_nil_lag() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("name"),
            bulk("g"),
            bulk("consumers"),
            Value::Int(2),
            bulk("pending"),
            Value::Int(1),
            bulk("last-delivered-id"),
            bulk("10-0"),
            bulk("entries-read"),
            Value::Nil,
            bulk("lag"),
            Value::Nil,
        ])]);
        let groups = groups(&reply).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].lag, None);
        assert_eq!(groups[0].pending, 1);
        assert_eq!(groups[0].last_delivered_id, StreamId { ms: 10, seq: 0 });
    }

    #[test]
    fn rq_timestamps() {
        assert_eq!(rq_timestamp_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rq_timestamp_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            rq_timestamp_ms("2024-02-29T12:34:56.789012Z"),
            Some(1_709_210_096_789)
        );
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "1969-12-31T23:59:59Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.Z",
        ] {
            assert_eq!(rq_timestamp_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn sidekiq_stamps() {
        assert_eq!(
            sidekiq_enqueued_ms(r#"{"enqueued_at":1700000000123}"#),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            sidekiq_enqueued_ms(r#"{"enqueued_at":1700000000.5}"#),
            Some(1_700_000_000_500)
        );
        assert_eq!(sidekiq_enqueued_ms(r#"{"created_at":1.5}"#), Some(1500));
        assert_eq!(sidekiq_enqueued_ms(r#"{"jid":"x"}"#), None);
        assert_eq!(sidekiq_enqueued_ms("not json"), None);
    }
}
