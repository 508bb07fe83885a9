//! The wall clock, injected: the controller stamps statuses and compares
//! `LastScaleTime` with it, the SQS adapter computes CloudWatch windows
//! from it, and tests run them on paused time.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// Where "now" comes from.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    /// The system's wall clock (the default).
    #[must_use]
    pub fn system() -> Self {
        Clock(Arc::new(SystemTime::now))
    }

    /// The wall time of this call, advanced by tokio's clock from then on:
    /// under a paused test runtime, time moves only as the test advances
    /// it. Must be called inside a tokio runtime.
    #[must_use]
    pub fn tokio() -> Self {
        let wall = SystemTime::now();
        let start = tokio::time::Instant::now();
        Clock(Arc::new(move || wall + start.elapsed()))
    }

    /// A clock from any function.
    pub fn from_fn(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }

    /// Now.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Clock").field(&self.now()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_paused_time() {
        let clock = Clock::tokio();
        let before = clock.now();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(
            clock.now().duration_since(before).ok(),
            Some(Duration::from_secs(3600))
        );
    }
}
