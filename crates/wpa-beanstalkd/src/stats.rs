//! The stats documents beanstalkd sends (`stats-tube`, `stats-job`,
//! `stats`): a flat YAML mapping, parsed here without a YAML crate.

use crate::Error;

/// A parsed stats document: `key: value` pairs in the order sent.
///
/// ```
/// use wpa_beanstalkd::Stats;
///
/// let stats = Stats::parse(b"---\nname: default\ncurrent-jobs-ready: 3\n")?;
/// assert_eq!(stats.get("name"), Some("default"));
/// assert_eq!(stats.number("current-jobs-ready")?, 3);
/// # Ok::<(), wpa_beanstalkd::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    fields: Vec<(String, String)>,
}

impl Stats {
    /// Parses a stats body: an optional `---` line, then `key: value` lines.
    /// Values may be double-quoted (`version: "1.13"`).
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let text = std::str::from_utf8(body).map_err(|_| Error::MalformedStats {
            reason: "not UTF-8",
        })?;
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() || line == "---" {
                continue;
            }
            // `list-tubes` style sequences are not stats.
            let (key, value) = line.split_once(':').ok_or(Error::MalformedStats {
                reason: "a line without `key: value`",
            })?;
            let key = key.trim();
            if key.is_empty() || key.starts_with('-') && key.len() > 1 && key.as_bytes()[1] == b' '
            {
                return Err(Error::MalformedStats {
                    reason: "a line without `key: value`",
                });
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            fields.push((key.to_owned(), value.to_owned()));
        }
        Ok(Stats { fields })
    }

    /// The raw value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All fields, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `key` as a whole number; missing or not a `u64` is an error.
    pub fn number(&self, key: &'static str) -> Result<u64, Error> {
        let value = self.get(key).ok_or(Error::MissingStat { field: key })?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(key, value, u64::MAX));
        }
        value.parse().map_err(|_| invalid(key, value, u64::MAX))
    }

    /// `key` as a `u32` (priorities, counts handed to the decision).
    pub fn number_u32(&self, key: &'static str) -> Result<u32, Error> {
        let value = self.number(key)?;
        u32::try_from(value).map_err(|_| invalid(key, &value.to_string(), u64::from(u32::MAX)))
    }
}

fn invalid(field: &'static str, value: &str, max: u64) -> Error {
    Error::InvalidStat {
        field,
        value: value.chars().take(64).collect(),
        max,
    }
}

/// The fields of `stats-tube` this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TubeStats {
    /// `current-jobs-ready`.
    pub ready: u64,
    /// `current-jobs-reserved`.
    pub reserved: u64,
    /// `current-jobs-delayed`.
    pub delayed: u64,
    /// `current-jobs-buried`.
    pub buried: u64,
    /// `current-waiting`: connections blocked in `reserve` watching the tube.
    pub waiting: u64,
    /// `current-watching`: connections watching the tube.
    pub watching: u64,
    /// `total-jobs`: jobs ever put in the tube since it was created.
    pub total_jobs: u64,
}

impl TubeStats {
    /// Reads the fields from a `stats-tube` document.
    pub fn from_stats(stats: &Stats) -> Result<Self, Error> {
        Ok(TubeStats {
            ready: stats.number("current-jobs-ready")?,
            reserved: stats.number("current-jobs-reserved")?,
            delayed: stats.number("current-jobs-delayed")?,
            buried: stats.number("current-jobs-buried")?,
            waiting: stats.number("current-waiting")?,
            watching: stats.number("current-watching")?,
            total_jobs: stats.number("total-jobs")?,
        })
    }
}

/// The fields of `stats-job` this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStats {
    /// `id`.
    pub id: u64,
    /// `tube`.
    pub tube: String,
    /// `state`: `ready`, `delayed`, `reserved` or `buried`.
    pub state: String,
    /// `pri`.
    pub priority: u32,
    /// `ttr`.
    pub ttr: u32,
    /// `age`: seconds since the job was put.
    pub age: u64,
}

impl JobStats {
    /// Reads the fields from a `stats-job` document.
    pub fn from_stats(stats: &Stats) -> Result<Self, Error> {
        Ok(JobStats {
            id: stats.number("id")?,
            tube: stats
                .get("tube")
                .ok_or(Error::MissingStat { field: "tube" })?
                .to_owned(),
            state: stats
                .get("state")
                .ok_or(Error::MissingStat { field: "state" })?
                .to_owned(),
            priority: stats.number_u32("pri")?,
            ttr: stats.number_u32("ttr")?,
            age: stats.number("age")?,
        })
    }
}
