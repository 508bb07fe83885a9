//! What the plain bench programs share. `cargo bench --bench <name>` from
//! the workspace root runs one benchmark.

use std::time::Duration;

pub mod counting_proxy;

use wpa_core::{ScaleTarget, TargetReplicas};

/// How a plain bench program was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// A test harness asking for a listing (`--list`): print nothing, run
    /// nothing.
    List,
    /// `cargo bench` (which passes `--bench`): the full measurement.
    Full,
    /// Anything else, e.g. `cargo test --all-targets`: a short smoke run.
    Smoke,
}

impl RunMode {
    /// From this process's arguments.
    #[must_use]
    pub fn from_args() -> Self {
        let args: Vec<String> = std::env::args().collect();
        if args.iter().any(|a| a == "--list") {
            RunMode::List
        } else if args.iter().any(|a| a == "--bench") {
            RunMode::Full
        } else {
            RunMode::Smoke
        }
    }
}

/// A number from the environment variable `name`, else `default` (unset
/// or not a number).
#[must_use]
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The nearest-rank `p`-th percentile of `sorted` (ascending); zero when
/// it is empty.
#[must_use]
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `d` in milliseconds.
#[must_use]
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A scale target in memory: every replica is available at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryTarget(pub u32);

impl ScaleTarget for MemoryTarget {
    type Error = std::convert::Infallible;

    async fn replicas(&mut self) -> Result<TargetReplicas, Self::Error> {
        Ok(TargetReplicas::new(self.0, self.0))
    }

    async fn apply(&mut self, replicas: u32) -> Result<(), Self::Error> {
        self.0 = replicas;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&sorted[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
