//! The polling driver against scripted sources, in paused tokio time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;
use wpa_core::{QueueMetrics, QueueSnapshot};
use wpa_poller::{PollRequest, PollerConfig, PollerError, QueueSource, Registry};

#[derive(Debug, thiserror::Error)]
#[error("scripted failure")]
struct Failure;

#[derive(Default)]
struct Script {
    /// Results handed out in order; when empty, the last one repeats.
    results: VecDeque<Result<u32, ()>>,
    last: Option<Result<u32, ()>>,
    requests: Vec<(Instant, PollRequest)>,
}

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<Script>>,
    /// Wakes a wake-up poll early, as a put would.
    put: Arc<Notify>,
}

impl Fake {
    fn with(results: impl IntoIterator<Item = Result<u32, ()>>) -> Self {
        let fake = Fake::default();
        fake.script.lock().unwrap().results = results.into_iter().collect();
        fake
    }

    fn requests(&self) -> Vec<(Instant, PollRequest)> {
        self.script.lock().unwrap().requests.clone()
    }

    fn next(&self) -> Result<u32, ()> {
        let mut script = self.script.lock().unwrap();
        let next = script.results.pop_front().or(script.last).unwrap_or(Ok(0));
        script.last = Some(next);
        next
    }
}

impl QueueSource for Fake {
    type Error = Failure;

    fn poll(
        &mut self,
        request: PollRequest,
    ) -> impl Future<Output = Result<QueueSnapshot, Failure>> + Send {
        let this = self.clone();
        async move {
            this.script
                .lock()
                .unwrap()
                .requests
                .push((Instant::now(), request));
            if request.wake_up {
                tokio::select! {
                    () = tokio::time::sleep(request.long_poll) => {}
                    () = this.put.notified() => {}
                }
            }
            this.next().map(QueueSnapshot::new).map_err(|()| Failure)
        }
    }
}

fn config() -> PollerConfig {
    PollerConfig::new(Duration::from_secs(20), Duration::from_secs(20))
}

#[tokio::test(start_paused = true)]
async fn one_poller_per_uri_stopped_with_its_last_subscriber() {
    let registry = Registry::new();
    let fake = Fake::with([Ok(3)]);
    let mut made = 0;
    let mut a = registry
        .subscribe("q://1", config(), Some(1), || {
            made += 1;
            Ok::<_, Failure>(fake.clone())
        })
        .unwrap();
    let b = registry
        .subscribe("q://1", config(), Some(2), || {
            made += 1;
            Ok::<_, Failure>(fake.clone())
        })
        .unwrap();
    let _c = registry
        .subscribe("q://2", config(), Some(2), || {
            Ok::<_, Failure>(Fake::default())
        })
        .unwrap();
    assert_eq!(made, 1);
    assert_eq!(registry.pollers(), 2);
    a.changed().await.unwrap();
    assert_eq!(a.latest().unwrap().messages(), 3);
    assert_eq!(b.latest().unwrap().messages(), 3);
    drop(a);
    drop(b);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(registry.pollers(), 1);
}

#[tokio::test(start_paused = true)]
async fn short_polls_every_interval_and_changes_are_pushed_at_once() {
    let registry = Registry::new();
    let fake = Fake::with([Ok(1), Ok(1), Ok(5)]);
    let mut sub = registry
        .subscribe("q", config(), Some(1), || Ok::<_, Failure>(fake.clone()))
        .unwrap();
    let start = Instant::now();
    sub.changed().await.unwrap();
    assert_eq!(sub.latest().unwrap().messages(), 1);
    // The unchanged second poll is not pushed; the third is.
    sub.changed().await.unwrap();
    assert_eq!(sub.latest().unwrap().messages(), 5);
    assert_eq!(start.elapsed(), Duration::from_secs(40));
    let requests = fake.requests();
    assert!(requests.iter().all(|(_, r)| !r.wake_up));
}

#[tokio::test(start_paused = true)]
async fn polled_at_is_the_latest_poll_even_when_it_changed_nothing() {
    let registry = Registry::new();
    let fake = Fake::with([Ok(4)]);
    let mut sub = registry
        .subscribe("q", config(), Some(1), || Ok::<_, Failure>(fake.clone()))
        .unwrap();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(sub.polled_at(wall), None);
    sub.changed().await.unwrap();
    // Polls at 0 s and 20 s (the same count, not pushed); asked at 25 s.
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(sub.polled_at(wall), Some(wall - Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn the_arrival_rate_is_asked_for_while_a_subscriber_needs_it() {
    let registry = Registry::new();
    let fake = Fake::with([Ok(3)]);
    let first = registry
        .subscribe("q", config(), Some(1), || Ok::<_, Failure>(fake.clone()))
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = registry
        .subscribe("q", config(), Some(1), || Ok::<_, Failure>(fake.clone()))
        .unwrap();
    // Needing the rate polls again at once, not 20 s later.
    second.set_needs_arrival_rate(true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked: Vec<bool> = fake
        .requests()
        .iter()
        .map(|(_, r)| r.arrival_rate)
        .collect();
    assert_eq!(asked, [false, true]);
    // Still needed by one subscriber: every poll asks.
    first.set_needs_arrival_rate(false);
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert!(fake.requests().iter().skip(1).all(|(_, r)| r.arrival_rate));
    let polls = fake.requests().len();
    assert_eq!(polls, 4, "no extra polls once the rate was asked for");
    // The subscriber that needed it gone: no more.
    drop(second);
    tokio::time::sleep(Duration::from_secs(40)).await;
    let requests = fake.requests();
    assert!(requests.len() >= polls + 2);
    assert!(requests[polls..].iter().all(|(_, r)| !r.arrival_rate));
    drop(first);
}

#[tokio::test(start_paused = true)]
async fn wake_up_polls_only_when_every_subscriber_is_at_zero_and_queue_empty() {
    let registry = Registry::new();
    let fake = Fake::with([Ok(0)]);
    let mut a = registry
        .subscribe("q", config(), Some(0), || Ok::<_, Failure>(fake.clone()))
        .unwrap();
    let b = registry
        .subscribe("q", config(), Some(2), || Ok::<_, Failure>(fake.clone()))
        .unwrap();
    a.changed().await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        fake.requests().iter().all(|(_, r)| !r.wake_up),
        "b runs replicas"
    );

    b.set_replicas(0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let requests = fake.requests();
    let last = requests.last().unwrap();
    assert!(
        last.1.wake_up,
        "scaling to zero starts waking-up polls at once"
    );
    assert_eq!(last.1.long_poll, Duration::from_secs(20));

    // A put wakes the poll; the change is pushed at once.
    fake.script.lock().unwrap().results.push_back(Ok(1));
    let put_at = Instant::now();
    fake.put.notify_one();
    a.changed().await.unwrap();
    assert_eq!(a.latest().unwrap().messages(), 1);
    assert!(put_at.elapsed() < Duration::from_millis(1));

    // Replicas again: no more wake-up polls.
    a.set_replicas(1);
    let count = fake.requests().len();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(fake.requests()[count..].iter().all(|(_, r)| !r.wake_up));
}

#[tokio::test(start_paused = true)]
async fn replicas_cancel_a_wake_up_poll_in_progress() {
    let registry = Registry::new();
    let fake = Fake::with([Ok(0)]);
    let mut sub = registry
        .subscribe("q", config(), Some(0), || Ok::<_, Failure>(fake.clone()))
        .unwrap();
    sub.changed().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(fake.requests().last().unwrap().1.wake_up);
    let cancelled_at = Instant::now();
    sub.set_replicas(3);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (at, request) = *fake.requests().last().unwrap();
    assert!(!request.wake_up);
    assert!(at.duration_since(cancelled_at) < Duration::from_millis(150));
}

#[tokio::test(start_paused = true)]
async fn errors_back_off_and_the_last_value_goes_stale() {
    let registry = Registry::new();
    let fake = Fake::with([Ok(4), Err(())]);
    let mut sub = registry
        .subscribe("q", config(), Some(2), || Ok::<_, Failure>(fake.clone()))
        .unwrap();
    sub.changed().await.unwrap();
    let good_at = Instant::now();
    assert!(!sub.latest().unwrap().is_stale());
    // Stale after 3 × 20 s, published as a change.
    sub.changed().await.unwrap();
    let latest = sub.latest().unwrap();
    assert!(latest.is_stale());
    assert_eq!(latest.messages(), 4, "the last good value is kept");
    let stale_after = good_at.elapsed();
    assert!(stale_after >= Duration::from_secs(60) && stale_after < Duration::from_secs(61));
    assert!(sub.observation().last_error.is_some());

    let requests = fake.requests();
    let gaps: Vec<Duration> = requests
        .windows(2)
        .skip(1)
        .map(|w| w[1].0.duration_since(w[0].0))
        .collect();
    assert!(gaps.len() >= 4, "{gaps:?}");
    // Exponential: each retry gap at most 20 s, growing until the cap.
    assert!(gaps[0] <= Duration::from_millis(500), "{gaps:?}");
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_secs(20)),
        "{gaps:?}"
    );
    assert!(gaps[3] > gaps[0], "{gaps:?}");
    assert!(requests.iter().all(|(_, r)| !r.wake_up));

    // Recovery clears staleness.
    fake.script.lock().unwrap().results.push_back(Ok(4));
    sub.changed().await.unwrap();
    assert!(!sub.latest().unwrap().is_stale());
}

#[tokio::test(start_paused = true)]
async fn subscription_is_queue_metrics() {
    let registry = Registry::new();
    let fake = Fake::with([Err(()), Ok(2)]);
    let mut sub = registry
        .subscribe("q", config(), None, || Ok::<_, Failure>(fake.clone()))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let error = sub.snapshot().await.unwrap_err();
    assert!(
        matches!(
            &error,
            PollerError::NotPolledYet {
                last_error: Some(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("scripted failure"));
    sub.changed().await.unwrap();
    assert_eq!(sub.snapshot().await.unwrap().messages(), 2);
    // Unknown replicas count as running: no wake-up polls.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(fake.requests().iter().all(|(_, r)| !r.wake_up));
}

#[derive(Debug, thiserror::Error)]
#[error("cannot reach {0}")]
struct Unreachable(String);

/// A source whose errors name its URI, password and all (as a client
/// library's may).
struct Leaky(String);

impl QueueSource for Leaky {
    type Error = Unreachable;

    fn poll(
        &mut self,
        _: PollRequest,
    ) -> impl Future<Output = Result<QueueSnapshot, Unreachable>> + Send {
        std::future::ready(Err(Unreachable(self.0.clone())))
    }
}

#[tokio::test(start_paused = true)]
async fn a_password_in_the_uri_reaches_no_error() {
    let uri = "redis://app:hunter2@redis:6379/0/list/jobs";
    let registry = Registry::new();
    let mut sub = registry
        .subscribe(uri, config(), None, || {
            Ok::<_, Unreachable>(Leaky(uri.to_owned()))
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let error = sub.snapshot().await.unwrap_err().to_string();
    assert!(!error.contains("hunter2"), "{error}");
    assert!(
        error.contains("queue redis://app:***@redis:6379/0/list/jobs not polled"),
        "{error}"
    );
    assert!(
        error.ends_with("cannot reach redis://app:***@redis:6379/0/list/jobs"),
        "{error}"
    );
    let last = sub.observation().last_error.unwrap();
    assert!(!last.contains("hunter2"), "{last}");
    // The subscription still knows the queue as given.
    assert_eq!(sub.uri(), uri);
}
