//! Whether to act on a decision now: up at once, down only after a delay.

use std::fmt;
use std::time::{Duration, SystemTime};

/// The reference's default `--scale-down-delay-after-last-scale-activity`.
pub const DEFAULT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(600);

/// What to do with a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleOperation {
    /// Desired above current: scale up now.
    ScaleUp,
    /// Desired below current and nothing holds it back: scale down now.
    ScaleDown,
    /// Desired equals current.
    None,
    /// Desired below current, but the scale down waits.
    ScaleDownHeld(HoldReason),
}

/// Why a scale down waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldReason {
    /// The last scale activity is more recent than the scale-down delay.
    ScaleDownDelay {
        /// How long until a scale down is allowed.
        remaining: Duration,
    },
    /// The queue snapshot is stale: a stale count never removes workers.
    StaleQueueMetrics,
}

impl ScaleOperation {
    /// Whether the target's replica count changes.
    #[must_use]
    pub const fn changes_replicas(self) -> bool {
        matches!(self, ScaleOperation::ScaleUp | ScaleOperation::ScaleDown)
    }

    /// The name used in JSON output and logs: `scale-up`, `scale-down` or
    /// `none` (a held scale down is `none`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ScaleOperation::ScaleUp => "scale-up",
            ScaleOperation::ScaleDown => "scale-down",
            ScaleOperation::None | ScaleOperation::ScaleDownHeld(_) => "none",
        }
    }
}

impl fmt::Display for ScaleOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaleOperation::ScaleDownHeld(HoldReason::ScaleDownDelay { remaining }) => write!(
                f,
                "scale-down held: {} s left of the scale-down delay",
                remaining.as_secs_f64().ceil()
            ),
            ScaleOperation::ScaleDownHeld(HoldReason::StaleQueueMetrics) => {
                f.write_str("scale-down held: the queue metrics are stale")
            }
            other => f.write_str(other.as_str()),
        }
    }
}

/// Decides whether a desired count is applied now.
///
/// Up is always immediate. Down happens when the target was never scaled
/// (`last_scale_time` is `None`) or when `last_scale_time + delay` is
/// strictly before `now`. Time is an argument: this crate has no clock.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use wpa_core::{scale_operation, ScaleOperation};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
/// let delay = Duration::from_secs(600);
/// assert_eq!(scale_operation(8, 1, None, delay, now), ScaleOperation::ScaleUp);
/// assert_eq!(scale_operation(1, 8, None, delay, now), ScaleOperation::ScaleDown);
/// let recent = Some(now - Duration::from_secs(60));
/// assert!(matches!(
///     scale_operation(1, 8, recent, delay, now),
///     ScaleOperation::ScaleDownHeld(_)
/// ));
/// ```
#[must_use]
pub fn scale_operation(
    desired_replicas: u32,
    current_replicas: u32,
    last_scale_time: Option<SystemTime>,
    scale_down_delay: Duration,
    now: SystemTime,
) -> ScaleOperation {
    use std::cmp::Ordering;
    match desired_replicas.cmp(&current_replicas) {
        Ordering::Greater => ScaleOperation::ScaleUp,
        Ordering::Equal => ScaleOperation::None,
        Ordering::Less => {
            let Some(last) = last_scale_time else {
                return ScaleOperation::ScaleDown;
            };
            // A delay so long that the deadline is not representable never
            // expires.
            match last.checked_add(scale_down_delay) {
                Some(allowed_after) if allowed_after < now => ScaleOperation::ScaleDown,
                Some(allowed_after) => ScaleOperation::ScaleDownHeld(HoldReason::ScaleDownDelay {
                    remaining: allowed_after.duration_since(now).unwrap_or(Duration::ZERO),
                }),
                None => ScaleOperation::ScaleDownHeld(HoldReason::ScaleDownDelay {
                    remaining: Duration::MAX,
                }),
            }
        }
    }
}
