//! The validated form of a `WorkerPodAutoScaler` spec.
//!
//! [`RawWpaSpec`] holds the CRD fields as they arrive (signed, optional,
//! unchecked). [`WpaSpec`] is what the decision math accepts: building one
//! is the only place where input is checked, so the math itself can neither
//! fail nor panic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::wait_target::WaitTarget;

/// Largest replica count or disruption value accepted: Kubernetes stores
/// replicas as int32.
pub const MAX_REPLICAS: u32 = i32::MAX as u32;

/// How many workers one scale down may remove (`maxDisruption`).
///
/// Parsed like the reference parses a Kubernetes IntOrString: a string that
/// is entirely a decimal integer (optional sign) is an absolute count;
/// otherwise every `%` is removed and the rest must be such an integer, a
/// percentage of the current replicas, rounded up.
///
/// ```
/// use wpa_core::MaxDisruption;
///
/// let budget: MaxDisruption = "25%".parse()?;
/// assert_eq!(budget, MaxDisruption::Percent(25));
/// assert_eq!(budget.budget(10), 3); // ceil(25 * 10 / 100)
/// assert_eq!("2".parse::<MaxDisruption>()?.budget(10), 2);
/// assert!("abc".parse::<MaxDisruption>().is_err());
/// # Ok::<(), wpa_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxDisruption {
    /// At most this many pods per scale down.
    Absolute(u32),
    /// At most this percentage of the current replicas, rounded up.
    Percent(u32),
}

impl MaxDisruption {
    /// The controller's default, `"100%"`: a scale down may remove every pod.
    pub const DEFAULT: MaxDisruption = MaxDisruption::Percent(100);

    /// The number of pods one scale down may remove from `current`.
    ///
    /// A percentage is computed in floating point exactly as the reference
    /// does, `ceil((percent * current) / 100)`.
    #[inline]
    #[must_use]
    pub fn budget(self, current: u32) -> u64 {
        match self {
            MaxDisruption::Absolute(pods) => u64::from(pods),
            MaxDisruption::Percent(percent) => {
                let product = u64::from(percent) * u64::from(current);
                if product < 1 << 53 {
                    // Exact in float64, so the reference's rounded quotient
                    // never crosses an integer: integer division is exact.
                    product.div_ceil(100)
                } else {
                    // The reference's float ops, in its order. At most
                    // 2^31 * 2^32 / 100 < 2^57: fits a u64.
                    ((f64::from(percent) * f64::from(current)) / 100.0).ceil() as u64
                }
            }
        }
    }
}

impl Default for MaxDisruption {
    fn default() -> Self {
        MaxDisruption::DEFAULT
    }
}

impl FromStr for MaxDisruption {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        let refuse = |make: fn(String) -> Error| Err(make(value.to_owned()));
        let (number, percent) = match parse_go_atoi(value) {
            Some(number) => (number, false),
            None => {
                let without_percent: String = value.chars().filter(|&c| c != '%').collect();
                match parse_go_atoi(&without_percent) {
                    Some(number) => (number, true),
                    // Well-formed but beyond 64 bits: say so, not "unparsable".
                    None if is_go_integer_syntax(&without_percent) => {
                        return refuse(|value| Error::MaxDisruptionTooLarge { value });
                    }
                    None => return refuse(|value| Error::UnparsableMaxDisruption { value }),
                }
            }
        };
        if number < 0 {
            return refuse(|value| Error::NegativeMaxDisruption { value });
        }
        let Ok(number) = u32::try_from(number) else {
            return refuse(|value| Error::MaxDisruptionTooLarge { value });
        };
        if number > MAX_REPLICAS {
            return refuse(|value| Error::MaxDisruptionTooLarge { value });
        }
        Ok(if percent {
            MaxDisruption::Percent(number)
        } else {
            MaxDisruption::Absolute(number)
        })
    }
}

impl fmt::Display for MaxDisruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxDisruption::Absolute(pods) => write!(f, "{pods}"),
            MaxDisruption::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

/// Go's `strconv.Atoi`: an optional `+` or `-`, then one or more ASCII
/// digits, within the 64-bit range; nothing else (no spaces, no `_`).
fn parse_go_atoi(text: &str) -> Option<i64> {
    if !is_go_integer_syntax(text) {
        return None;
    }
    // Rust's parser accepts the same sign and digit forms.
    text.parse::<i64>().ok()
}

fn is_go_integer_syntax(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The spec fields of a `WorkerPodAutoScaler`, as they arrive: unchecked.
///
/// Field names are the CRD's (camelCase) when (de)serialized. Integers are
/// 64-bit so that out-of-range values reach validation and get a precise
/// error instead of a parse failure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawWpaSpec {
    /// `minReplicas` (required).
    pub min_replicas: Option<i64>,
    /// `maxReplicas` (required).
    pub max_replicas: Option<i64>,
    /// `targetMessagesPerWorker` (required).
    pub target_messages_per_worker: Option<i64>,
    /// `secondsToProcessOneJob`; absent or 0 disables the arrival-rate floor.
    pub seconds_to_process_one_job: Option<f64>,
    /// `maxDisruption`; absent means the controller default.
    pub max_disruption: Option<String>,
    /// `targetWaitSeconds`: the wait 99% of messages should stay under.
    /// Set, it selects the wait-target policy (and needs
    /// `secondsToProcessOneJob`); absent, the reference's rules decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_wait_seconds: Option<f64>,
    /// `workerStartupSeconds`: from a scale up until a new pod takes jobs
    /// (default 30); used by the wait-target policy only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_startup_seconds: Option<f64>,
}

impl RawWpaSpec {
    /// Checks every field and builds a [`WpaSpec`]. An absent
    /// `maxDisruption` takes `default_max_disruption` (the controller's
    /// `--wpa-default-max-disruption`).
    ///
    /// ```
    /// use wpa_core::{MaxDisruption, RawWpaSpec};
    ///
    /// let raw = RawWpaSpec {
    ///     min_replicas: Some(0),
    ///     max_replicas: Some(10),
    ///     target_messages_per_worker: Some(0),
    ///     ..RawWpaSpec::default()
    /// };
    /// let error = raw.validate(MaxDisruption::DEFAULT).unwrap_err();
    /// assert_eq!(error.to_string(), "targetMessagesPerWorker must be at least 1, got 0");
    /// ```
    pub fn validate(&self, default_max_disruption: MaxDisruption) -> Result<WpaSpec, Error> {
        let min_replicas = replica_count("minReplicas", self.min_replicas)?;
        let max_replicas = replica_count("maxReplicas", self.max_replicas)?;
        let target = self.target_messages_per_worker.ok_or(Error::Missing {
            field: "targetMessagesPerWorker",
        })?;
        if target < 1 {
            return Err(Error::TargetMessagesPerWorkerTooSmall { value: target });
        }
        let target_messages_per_worker = bounded("targetMessagesPerWorker", target)?;
        let seconds_to_process_one_job =
            non_negative_finite("secondsToProcessOneJob", self.seconds_to_process_one_job)?;
        let max_disruption = match &self.max_disruption {
            Some(text) => text.parse()?,
            None => default_max_disruption,
        };
        let worker_startup_s = match self.worker_startup_seconds {
            None => crate::wait_target::DEFAULT_WORKER_STARTUP.as_secs_f64(),
            Some(value) => seconds_up_to_a_day("workerStartupSeconds", value, 0.0)?,
        };
        let wait_target = match self.target_wait_seconds {
            None => None,
            Some(value) => {
                let target_wait_s =
                    seconds_up_to_a_day("targetWaitSeconds", value, f64::MIN_POSITIVE)?;
                if seconds_to_process_one_job == 0.0 {
                    return Err(Error::WaitTargetNeedsJobTime);
                }
                Some(WaitTarget {
                    target_wait_s,
                    worker_startup_s,
                })
            }
        };
        Ok(WpaSpec {
            min_replicas,
            max_replicas,
            target_messages_per_worker,
            seconds_to_process_one_job,
            max_disruption,
            wait_target,
        })
    }
}

/// A time in seconds from `least` to one day (86,400 s).
fn seconds_up_to_a_day(field: &'static str, value: f64, least: f64) -> Result<f64, Error> {
    if value.is_finite() && value >= least && value <= 86_400.0 {
        Ok(value + 0.0)
    } else {
        Err(Error::OutOfRange {
            field,
            value,
            range: if least > 0.0 {
                "> 0 and <= 86400"
            } else {
                ">= 0 and <= 86400"
            },
        })
    }
}

pub(crate) fn replica_count(field: &'static str, value: Option<i64>) -> Result<u32, Error> {
    let value = value.ok_or(Error::Missing { field })?;
    if value < 0 {
        return Err(Error::Negative { field, value });
    }
    bounded(field, value)
}

fn bounded(field: &'static str, value: i64) -> Result<u32, Error> {
    match u32::try_from(value) {
        Ok(count) if count <= MAX_REPLICAS => Ok(count),
        _ => Err(Error::TooLarge {
            field,
            value,
            max: i64::from(MAX_REPLICAS),
        }),
    }
}

/// A float that must be finite and not negative; absent is 0. Negative zero
/// is zero.
pub(crate) fn non_negative_finite(field: &'static str, value: Option<f64>) -> Result<f64, Error> {
    match value {
        None => Ok(0.0),
        Some(value) if value.is_finite() && value >= 0.0 => Ok(value + 0.0),
        Some(value) => Err(Error::InvalidNumber { field, value }),
    }
}

/// A checked `WorkerPodAutoScaler` spec: what the decision math runs on.
///
/// Invariants, established by [`RawWpaSpec::validate`] or [`WpaSpec::new`]:
/// replica bounds at most [`MAX_REPLICAS`], `targetMessagesPerWorker` >= 1,
/// `secondsToProcessOneJob` finite and >= 0.
///
/// `minReplicas > maxReplicas` is accepted, as in the reference: the upper
/// bound wins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WpaSpec {
    min_replicas: u32,
    max_replicas: u32,
    target_messages_per_worker: u32,
    seconds_to_process_one_job: f64,
    max_disruption: MaxDisruption,
    wait_target: Option<WaitTarget>,
}

impl WpaSpec {
    /// Builds a spec from already-typed values, checking the invariants.
    ///
    /// ```
    /// use wpa_core::{MaxDisruption, WpaSpec};
    ///
    /// let spec = WpaSpec::new(0, 10, 2, 0.03, MaxDisruption::Percent(100))?;
    /// assert_eq!(spec.target_messages_per_worker(), 2);
    /// # Ok::<(), wpa_core::Error>(())
    /// ```
    pub fn new(
        min_replicas: u32,
        max_replicas: u32,
        target_messages_per_worker: u32,
        seconds_to_process_one_job: f64,
        max_disruption: MaxDisruption,
    ) -> Result<Self, Error> {
        RawWpaSpec {
            min_replicas: Some(i64::from(min_replicas)),
            max_replicas: Some(i64::from(max_replicas)),
            target_messages_per_worker: Some(i64::from(target_messages_per_worker)),
            seconds_to_process_one_job: Some(seconds_to_process_one_job),
            ..RawWpaSpec::default()
        }
        .validate(max_disruption)
    }

    /// This spec with the wait-target policy selected: `target_wait_s`
    /// (> 0) and `worker_startup_s` (>= 0), both at most a day. Needs
    /// `secondsToProcessOneJob`.
    ///
    /// ```
    /// use wpa_core::{MaxDisruption, WpaSpec};
    ///
    /// let spec = WpaSpec::new(0, 10, 2, 1.5, MaxDisruption::DEFAULT)?.with_wait_target(30.0, 45.0)?;
    /// assert_eq!(spec.wait_target().map(|t| t.target_wait_seconds()), Some(30.0));
    /// assert!(WpaSpec::new(0, 10, 2, 0.0, MaxDisruption::DEFAULT)?.with_wait_target(30.0, 45.0).is_err());
    /// # Ok::<(), wpa_core::Error>(())
    /// ```
    pub fn with_wait_target(
        self,
        target_wait_s: f64,
        worker_startup_s: f64,
    ) -> Result<Self, Error> {
        let mut raw = self.to_raw();
        raw.target_wait_seconds = Some(target_wait_s);
        raw.worker_startup_seconds = Some(worker_startup_s);
        raw.validate(self.max_disruption)
    }

    /// This spec with another disruption budget.
    #[must_use]
    pub(crate) const fn with_max_disruption(mut self, max_disruption: MaxDisruption) -> Self {
        self.max_disruption = max_disruption;
        self
    }

    /// This spec with the reference's rules: the wait target removed.
    #[must_use]
    pub fn without_wait_target(mut self) -> Self {
        self.wait_target = None;
        self
    }

    /// The fields as a [`RawWpaSpec`] would carry them (every field set but
    /// the wait target's when there is none): what validates back to this
    /// spec.
    #[must_use]
    pub fn to_raw(&self) -> RawWpaSpec {
        RawWpaSpec {
            min_replicas: Some(i64::from(self.min_replicas)),
            max_replicas: Some(i64::from(self.max_replicas)),
            target_messages_per_worker: Some(i64::from(self.target_messages_per_worker)),
            seconds_to_process_one_job: Some(self.seconds_to_process_one_job),
            max_disruption: Some(self.max_disruption.to_string()),
            target_wait_seconds: self.wait_target.map(|t| t.target_wait_s),
            worker_startup_seconds: self.wait_target.map(|t| t.worker_startup_s),
        }
    }

    /// The wait-target policy's settings, when `targetWaitSeconds` selects it.
    #[must_use]
    pub fn wait_target(&self) -> Option<&WaitTarget> {
        self.wait_target.as_ref()
    }

    /// `minReplicas`.
    #[must_use]
    pub fn min_replicas(&self) -> u32 {
        self.min_replicas
    }

    /// `maxReplicas`.
    #[must_use]
    pub fn max_replicas(&self) -> u32 {
        self.max_replicas
    }

    /// `targetMessagesPerWorker`, at least 1.
    #[must_use]
    pub fn target_messages_per_worker(&self) -> u32 {
        self.target_messages_per_worker
    }

    /// `secondsToProcessOneJob`; 0 disables the arrival-rate floor.
    #[must_use]
    pub fn seconds_to_process_one_job(&self) -> f64 {
        self.seconds_to_process_one_job
    }

    /// `maxDisruption`, with the controller default already applied.
    #[must_use]
    pub fn max_disruption(&self) -> MaxDisruption {
        self.max_disruption
    }
}
