//! The adapter against a real `beanstalkd` (started by this test binary on a
//! free port). A missing `beanstalkd` binary fails these tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wpa_beanstalkd::testing::BeanstalkdServer;
use wpa_beanstalkd::{
    BeanstalkQueue, BeanstalkUri, Client, ClientConfig, Error, QueueConfig, TubeName,
};
use wpa_core::{Idleness, QueueMetrics};
use wpa_poller::{PollRequest, PollerConfig, QueueSource, Registry};

fn server() -> BeanstalkdServer {
    BeanstalkdServer::start().expect(
        "beanstalkd must be installed for these tests (Debian: apt-get install -y beanstalkd)",
    )
}

fn fast() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_secs(2),
        reconnect_attempts: 2,
        reconnect_initial_backoff: Duration::from_millis(20),
        reconnect_max_backoff: Duration::from_millis(100),
    }
}

fn queue(server: &BeanstalkdServer, tube: &str) -> BeanstalkQueue {
    let uri: BeanstalkUri = server.uri(tube).parse().unwrap();
    BeanstalkQueue::with_config(
        uri,
        QueueConfig {
            client: fast(),
            ..QueueConfig::default()
        },
    )
}

async fn producer(server: &BeanstalkdServer, tube: &str) -> Client {
    let mut client = Client::new(server.address(), fast());
    client.set_used_tube(tube.parse().unwrap()).await.unwrap();
    client
}

async fn worker(server: &BeanstalkdServer, tube: &str) -> Client {
    let mut client = Client::new(server.address(), fast());
    client
        .set_watched_tube(tube.parse().unwrap())
        .await
        .unwrap();
    client
}

async fn waiting(server: &BeanstalkdServer, tube: &str, count: u64) {
    let mut client = Client::new(server.address(), fast());
    let tube: TubeName = tube.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = client.stats_tube(&tube).await.unwrap();
        if stats.is_some_and(|s| s.waiting == count) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {count} waiting on {tube}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const SHORT: PollRequest = PollRequest {
    wake_up: false,
    long_poll: Duration::from_secs(1),
    short_poll: Duration::from_secs(1),
    arrival_rate: false,
    oldest_age: false,
};

#[tokio::test]
async fn missing_tube_is_an_empty_queue() {
    let server = server();
    let mut queue = queue(&server, "never-created");
    let snapshot = queue.snapshot().await.unwrap();
    assert_eq!(snapshot.messages(), 0);
    assert_eq!(snapshot.idleness(), Idleness::Idle(0));
    assert!(!snapshot.is_stale());
}

#[tokio::test]
async fn empty_tube_counts_no_messages() {
    let server = server();
    let _watcher = worker(&server, "empty").await; // keeps the tube alive
    let mut queue = queue(&server, "empty");
    let snapshot = queue.poll(SHORT).await.unwrap();
    assert_eq!(snapshot.messages(), 0);
    assert_eq!(snapshot.idleness(), Idleness::Idle(0));
}

#[tokio::test]
async fn busy_tube_counts_ready_jobs_and_idle_is_unknown() {
    let server = server();
    let mut producer = producer(&server, "busy").await;
    for i in 0..5_u8 {
        producer.put(100, 0, 60, &[i]).await.unwrap();
    }
    // A job in another tube is not counted.
    let mut other = self::producer(&server, "other").await;
    other.put(1, 0, 60, b"x").await.unwrap();
    let snapshot = queue(&server, "busy").poll(SHORT).await.unwrap();
    assert_eq!(snapshot.messages(), 5);
    assert_eq!(snapshot.idleness(), Idleness::Unknown);
}

#[tokio::test]
async fn reserved_jobs_are_counted() {
    let server = server();
    let mut producer = producer(&server, "work").await;
    for _ in 0..3 {
        producer.put(100, 0, 60, b"job").await.unwrap();
    }
    let mut worker = worker(&server, "work").await;
    let job = worker.reserve_with_timeout(1).await.unwrap().unwrap();
    let mut queue = queue(&server, "work");
    let snapshot = queue.poll(SHORT).await.unwrap();
    assert_eq!(snapshot.messages(), 3, "2 ready + 1 reserved");
    assert_eq!(snapshot.idleness(), Idleness::Unknown);

    // Only reserved left: still work in flight, idle unknown.
    let mut other = self::worker(&server, "work").await;
    for _ in 0..2 {
        let job = other.reserve_with_timeout(1).await.unwrap().unwrap();
        assert!(other.delete(job.id).await.unwrap());
    }
    let snapshot = queue.poll(SHORT).await.unwrap();
    assert_eq!(snapshot.messages(), 1);
    assert_eq!(snapshot.idleness(), Idleness::Unknown);

    assert!(worker.delete(job.id).await.unwrap());
    let snapshot = queue.poll(SHORT).await.unwrap();
    assert_eq!(snapshot.messages(), 0);
    assert_eq!(snapshot.idleness(), Idleness::Idle(0));
}

#[tokio::test]
async fn workers_blocked_in_reserve_are_idle() {
    let server = server();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let mut worker = worker(&server, "idle").await;
        handles.push(tokio::spawn(async move {
            let _ = worker.reserve_with_timeout(30).await;
        }));
    }
    waiting(&server, "idle", 2).await;
    let snapshot = queue(&server, "idle").poll(SHORT).await.unwrap();
    assert_eq!(snapshot.messages(), 0);
    assert_eq!(snapshot.idleness(), Idleness::Idle(2));
    for handle in handles {
        handle.abort();
    }
}

#[tokio::test]
async fn wake_up_leaves_the_job_ready_with_its_priority_and_place() {
    let server = server();
    let mut producer = producer(&server, "wake").await;
    let first = producer.put(10, 0, 60, b"first").await.unwrap();
    let second = producer.put(10, 0, 60, b"second").await.unwrap();
    let third = producer.put(20, 0, 60, b"third").await.unwrap();

    let mut queue = queue(&server, "wake");
    let started = Instant::now();
    let snapshot = queue
        .poll(PollRequest {
            wake_up: true,
            long_poll: Duration::from_secs(10),
            short_poll: Duration::from_secs(10),
            arrival_rate: false,
            oldest_age: false,
        })
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(snapshot.messages(), 3);

    let stats = producer.stats_job(first).await.unwrap().unwrap();
    assert_eq!(stats.state, "ready");
    assert_eq!(stats.priority, 10);
    assert_eq!(producer.peek_ready().await.unwrap().unwrap().id, first);

    let mut worker = worker(&server, "wake").await;
    for expected in [first, second, third] {
        let job = worker.reserve_with_timeout(1).await.unwrap().unwrap();
        assert_eq!(job.id, expected, "order changed by the wake-up");
        worker.delete(job.id).await.unwrap();
    }
}

/// Asked for it (a wait-target WPA), a short poll reports the age of the
/// job a worker gets next, with two more calls and only while jobs are
/// ready; the job stays ready and first in line.
#[tokio::test]
async fn the_oldest_age_is_read_only_when_asked_and_jobs_are_ready() {
    let server = server();
    let mut queue = queue(&server, "aged");
    let asking = PollRequest {
        oldest_age: true,
        ..SHORT
    };
    // Nothing ready: no age, and no peek (nothing to look at).
    let empty = queue.poll(asking).await.unwrap();
    assert_eq!(empty.oldest_age(), None);

    let mut producer = producer(&server, "aged").await;
    let first = producer.put(10, 0, 60, b"first").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    producer.put(10, 0, 60, b"second").await.unwrap();
    let before = server_counter(&mut producer, "cmd-peek-ready").await;
    let snapshot = queue.poll(asking).await.unwrap();
    assert_eq!(snapshot.messages(), 2);
    let age = snapshot.oldest_age().unwrap();
    assert!(age >= Duration::from_secs(1), "{age:?}");
    assert_eq!(
        server_counter(&mut producer, "cmd-peek-ready").await,
        before + 1
    );
    // Not asked: no age, no peek.
    let plain = queue.poll(SHORT).await.unwrap();
    assert_eq!(plain.oldest_age(), None);
    assert_eq!(
        server_counter(&mut producer, "cmd-peek-ready").await,
        before + 1
    );
    // The job is still ready and next.
    assert_eq!(producer.peek_ready().await.unwrap().unwrap().id, first);
}

/// A server-wide command counter from `stats`.
async fn server_counter(client: &mut Client, name: &'static str) -> u64 {
    client.stats().await.unwrap().number(name).unwrap()
}

#[tokio::test]
async fn wake_up_returns_on_the_first_put_and_times_out_when_empty() {
    let server = server();
    let mut queue = queue(&server, "sleepy");
    let started = Instant::now();
    let snapshot = queue
        .poll(PollRequest {
            wake_up: true,
            long_poll: Duration::from_secs(1),
            short_poll: Duration::from_secs(1),
            arrival_rate: false,
            oldest_age: false,
        })
        .await
        .unwrap();
    assert_eq!(snapshot.messages(), 0);
    assert!(started.elapsed() >= Duration::from_millis(900));

    let poll = tokio::spawn(async move {
        let snapshot = queue
            .poll(PollRequest {
                wake_up: true,
                long_poll: Duration::from_secs(20),
                short_poll: Duration::from_secs(20),
                arrival_rate: false,
                oldest_age: false,
            })
            .await;
        (snapshot, Instant::now())
    });
    waiting(&server, "sleepy", 1).await;
    let mut producer = producer(&server, "sleepy").await;
    let put_at = Instant::now();
    let id = producer.put(7, 0, 60, b"hello").await.unwrap();
    let (snapshot, woke_at) = poll.await.unwrap();
    assert_eq!(snapshot.unwrap().messages(), 1);
    assert!(woke_at.duration_since(put_at) < Duration::from_millis(500));
    let stats = producer.stats_job(id).await.unwrap().unwrap();
    assert_eq!((stats.state.as_str(), stats.priority), ("ready", 7));
}

#[tokio::test]
async fn arrival_rate_after_putting_jobs() {
    let server = server();
    // Default 60 s window, less than a window of history: the jobs count
    // over the whole window (no extrapolation of a burst).
    let mut queue = queue(&server, "rate");
    let mut producer = producer(&server, "rate").await;
    assert_eq!(
        queue.poll(SHORT).await.unwrap().messages_sent_per_minute(),
        None
    );
    for _ in 0..12 {
        producer.put(1, 0, 60, b"j").await.unwrap();
    }
    let rate = queue.poll(SHORT).await.unwrap().messages_sent_per_minute();
    assert_eq!(rate, Some(12.0));

    // A 1 s window, more than a window of history: the true average.
    let uri: BeanstalkUri = server.uri("rate2").parse().unwrap();
    let mut queue = BeanstalkQueue::with_config(
        uri,
        QueueConfig {
            client: fast(),
            rate_window: Duration::from_secs(1),
        },
    );
    let mut producer = self::producer(&server, "rate2").await;
    producer.put(1, 0, 60, b"warm").await.unwrap();
    let t0 = Instant::now();
    let first = queue.poll(SHORT).await.unwrap();
    let t1 = Instant::now();
    assert_eq!(
        first.messages_sent_per_minute(),
        None,
        "one sample: no rate yet"
    );
    const N: u32 = 30;
    for _ in 0..N {
        producer.put(1, 0, 60, b"j").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t2 = Instant::now();
    let second = queue.poll(SHORT).await.unwrap();
    let t3 = Instant::now();
    let rate = second.messages_sent_per_minute().unwrap();
    let low = f64::from(N) * 60.0 / t3.duration_since(t0).as_secs_f64();
    let high = f64::from(N) * 60.0 / t2.duration_since(t1).as_secs_f64();
    assert!(
        rate >= low && rate <= high,
        "rate {rate} not in [{low}, {high}]"
    );
    assert_eq!(second.messages(), N + 1);
}

#[tokio::test]
async fn recovers_from_a_server_restart_in_the_same_process() {
    let mut server = server();
    let mut queue = queue(&server, "restart");
    let mut producer = producer(&server, "restart").await;
    producer.put(1, 0, 60, b"a").await.unwrap();
    assert_eq!(queue.poll(SHORT).await.unwrap().messages(), 1);

    server.stop();
    let started = Instant::now();
    let error = queue.poll(SHORT).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Connect { .. } | Error::Closed { .. } | Error::Io { .. }
        ),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no hang while down"
    );
    let error = queue.poll(SHORT).await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");

    server.restart().unwrap();
    // The server lost its jobs (no binlog): the queue is empty again.
    let snapshot = queue.poll(SHORT).await.unwrap();
    assert_eq!(snapshot.messages(), 0);
    // The producer reconnects and `use`s its tube again by itself.
    let mut ok = false;
    for _ in 0..3 {
        if producer.put(1, 0, 60, b"b").await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "producer did not recover");
    assert_eq!(queue.poll(SHORT).await.unwrap().messages(), 1);
    // The wake-up connection watches the tube again after a restart too.
    let mut worker = worker(&server, "restart").await;
    let job = worker.reserve_with_timeout(1).await.unwrap().unwrap();
    worker.delete(job.id).await.unwrap();
    server.restart().unwrap();
    let mut producer = self::producer(&server, "restart").await;
    producer.put(3, 0, 60, b"c").await.unwrap();
    let mut snapshot = Err(());
    for _ in 0..3 {
        snapshot = queue
            .poll(PollRequest {
                wake_up: true,
                long_poll: Duration::from_secs(2),
                short_poll: Duration::from_secs(2),
                arrival_rate: false,
                oldest_age: false,
            })
            .await
            .map_err(|_| ());
        if snapshot.is_ok() {
            break;
        }
    }
    assert_eq!(snapshot.unwrap().messages(), 1);
}

#[tokio::test]
async fn poller_recovers_after_restart_and_marks_stale_while_down() {
    let mut server = server();
    let uri = server.uri("polled");
    let mut config = PollerConfig::new(Duration::from_millis(100), Duration::from_secs(1));
    config.stale_after = Duration::from_millis(300);
    let registry = Registry::new();
    let source = queue(&server, "polled");
    let mut subscription = registry
        .subscribe(&uri, config, Some(1), || Ok::<_, Error>(source))
        .unwrap();
    subscription.changed().await.unwrap();
    assert_eq!(subscription.latest().unwrap().messages(), 0);

    server.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !subscription.latest().unwrap().is_stale() {
        assert!(Instant::now() < deadline, "never marked stale");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(subscription.observation().last_error.is_some());

    server.restart().unwrap();
    let mut producer = producer(&server, "polled").await;
    producer.put(1, 0, 60, b"x").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let latest = subscription.latest().unwrap();
        if !latest.is_stale() && latest.messages() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "poller did not recover: {latest:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Another listener on the port (another test's server, taken between the
/// pick of a free port and the bind) is not taken for this beanstalkd: it
/// fails to bind and says so.
#[test]
fn a_port_held_by_another_listener_is_not_mistaken_for_the_server() {
    let mut server = BeanstalkdServer::start().unwrap();
    server.stop();
    let holder = std::net::TcpListener::bind(("127.0.0.1", server.port())).unwrap();
    let error = server.restart().unwrap_err();
    assert!(error.to_string().contains("exited at start"), "{error}");
    drop(holder);
    server.restart().unwrap();
}
