//! The rate limit on API requests (`--k8s-api-qps`, `--k8s-api-burst`),
//! on the `governor` crate: `burst` requests at once, then `qps` per
//! second, as client-go's token bucket allows them.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};

/// Tokio's clock, for governor: its own clocks read the OS clock and its
/// `until_ready` sleeps on `futures-timer`, neither of which follows
/// tokio's clock (which tests pause). Instants are the time since the
/// limiter was made (governor counts `Duration`s as instants).
#[derive(Debug, Clone, Copy)]
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

type Gcra = governor::RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// A rate limiter: `burst` requests at once, then `qps` per second.
pub struct RateLimiter {
    qps: f64,
    burst: u32,
    /// `None`: unlimited.
    limiter: Option<(Gcra, TokioClock)>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("qps", &self.qps)
            .field("burst", &self.burst)
            .field("limited", &self.limiter.is_some())
            .finish()
    }
}

/// The limiter of `qps` and `burst`; `None` when unlimited.
fn gcra(qps: f64, burst: u32) -> Option<(Gcra, TokioClock)> {
    if !(qps.is_finite() && qps > 0.0) {
        return None;
    }
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    // Governor counts in u64 nanoseconds, the period times the burst
    // included: a rate below that (one request in years) is rounded up.
    let longest = Duration::from_nanos((1 << 62) / u64::from(burst.get()));
    let period = Duration::try_from_secs_f64(qps.recip())
        .unwrap_or(longest)
        .min(longest);
    // `None`: under a nanosecond per request, i.e. unlimited.
    let quota = Quota::with_period(period)?.allow_burst(burst);
    let clock = TokioClock(tokio::time::Instant::now());
    Some((Gcra::direct_with_clock(quota, clock), clock))
}

impl RateLimiter {
    /// `burst` requests at once (at least 1), refilled at `qps` per second.
    /// A `qps` of 0 or less (or not finite) disables limiting.
    #[must_use]
    pub fn new(qps: f64, burst: u32) -> Self {
        RateLimiter {
            qps,
            burst,
            limiter: gcra(qps, burst),
        }
    }

    /// Waits until a request may go.
    pub async fn acquire(&self) {
        let Some((limiter, clock)) = &self.limiter else {
            return;
        };
        while let Err(not_until) = limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(clock.now())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::time::Instant;

    use super::*;

    async fn acquire_n(limiter: &RateLimiter, n: usize) -> f64 {
        let start = Instant::now();
        for _ in 0..n {
            limiter.acquire().await;
        }
        start.elapsed().as_secs_f64()
    }

    fn near(seconds: f64, expected: f64) -> bool {
        (seconds - expected).abs() < 0.01
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_qps() {
        let limiter = RateLimiter::new(5.0, 10);
        let start = Instant::now();
        for _ in 0..10 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(1));
        for _ in 0..5 {
            limiter.acquire().await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!((0.99..1.01).contains(&elapsed), "{elapsed}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_holds_and_idle_time_refills_at_most_the_burst() {
        let limiter = RateLimiter::new(5.0, 10);
        assert!(near(acquire_n(&limiter, 10).await, 0.0));
        // After the burst: one every 200 ms.
        let steady = acquire_n(&limiter, 50).await;
        assert!(near(steady, 10.0), "{steady}");
        // Idle for a minute: the bucket holds 10, not 300.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(near(acquire_n(&limiter, 10).await, 0.0));
        let next = acquire_n(&limiter, 1).await;
        assert!(near(next, 0.2), "{next}");
        // Idle for 1 s: 5 requests at once, then the rate again.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(near(acquire_n(&limiter, 5).await, 0.0));
        let sixth = acquire_n(&limiter, 1).await;
        assert!(near(sixth, 0.2), "{sixth}");
    }

    #[tokio::test(start_paused = true)]
    async fn fractional_rate_and_burst_zero() {
        // client-go's burst 0 would block forever; here it means 1.
        let limiter = RateLimiter::new(0.5, 0);
        assert!(near(acquire_n(&limiter, 1).await, 0.0));
        let three = acquire_n(&limiter, 3).await;
        assert!(near(three, 6.0), "{three}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let limiter = Arc::new(RateLimiter::new(10.0, 5));
        let start = Instant::now();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                tokio::spawn(async move { limiter.acquire().await })
            })
            .collect();
        for task in tasks {
            task.await.ok();
        }
        // 5 at once, then 15 at 10 per second.
        let elapsed = start.elapsed().as_secs_f64();
        assert!(near(elapsed, 1.5), "{elapsed}");
    }

    #[tokio::test(start_paused = true)]
    async fn zero_negative_or_infinite_qps_is_unlimited() {
        for qps in [0.0, -1.0, f64::INFINITY, f64::NAN, 1e12] {
            let limiter = RateLimiter::new(qps, 1);
            assert!(near(acquire_n(&limiter, 1000).await, 0.0), "{qps}");
        }
        // Absurdly slow rates do not overflow.
        let limiter = RateLimiter::new(1e-300, u32::MAX);
        assert!(near(acquire_n(&limiter, 3).await, 0.0));
    }
}
