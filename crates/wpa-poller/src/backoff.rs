//! Capped exponential backoff with jitter.
//!
//! Kept by hand rather than taken from `backon`/`backoff`: the delay is a
//! pure function of the attempt and a jitter draw ([`exponential_delay`]),
//! so the poll schedule stays pure and the simulator reproducible, while
//! those crates' policies draw their own randomness inside.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// Capped exponential backoff with jitter: the n-th delay is
/// `min(max, initial × 2^n)` scaled by a random factor in [0.5, 1], so that
/// many clients failing together do not retry in lockstep.
///
/// ```
/// use std::time::Duration;
/// use wpa_poller::Backoff;
///
/// let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
/// let first = backoff.next_delay();
/// assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
/// for _ in 0..10 {
///     assert!(backoff.next_delay() <= Duration::from_secs(1));
/// }
/// backoff.reset();
/// assert!(backoff.next_delay() <= Duration::from_millis(100));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    jitter: Jitter,
}

/// Uniform draws in [0, 1) for backoff jitter (splitmix64: a few lines,
/// where a random-number crate would be a dependency of every adapter).
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

impl Default for Jitter {
    fn default() -> Self {
        Jitter {
            state: RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl Jitter {
    /// A generator seeded from the process's hash randomness.
    #[must_use]
    pub fn new() -> Self {
        Jitter::default()
    }

    /// The next draw in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        #[allow(clippy::cast_precision_loss)]
        let unit = (z >> 11) as f64 / (1_u64 << 53) as f64;
        unit
    }
}

impl Backoff {
    /// A backoff starting at `initial`, capped at `max`.
    #[must_use]
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            attempt: 0,
            jitter: Jitter::new(),
        }
    }

    /// The next delay; each call doubles the base up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let unit = self.jitter.next_unit();
        let delay = exponential_delay(self.initial, self.max, self.attempt, unit);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The `attempt`-th delay (from 0) of a capped exponential backoff:
/// `min(max, initial × 2^attempt)`, scaled by `0.5 + 0.5 × unit` for a
/// `unit` in [0, 1] (clamped), so that the delay lies in [d/2, d].
#[must_use]
pub fn exponential_delay(initial: Duration, max: Duration, attempt: u32, unit: f64) -> Duration {
    let factor = 1_u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    let base = initial.saturating_mul(factor).min(max);
    let unit = if unit.is_nan() {
        1.0
    } else {
        unit.clamp(0.0, 1.0)
    };
    base.mul_f64(0.5 + 0.5 * unit)
}
