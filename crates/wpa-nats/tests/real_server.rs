//! The adapter against a real `nats-server -js` (started by this test
//! binary on free ports), driven by an independent client: async-nats'
//! own JetStream producer and pull consumer API, as a user's worker is
//! written. A missing `nats-server` binary fails these tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use wpa_core::{Idleness, QueueMetrics};
use wpa_nats::testing::NatsServer;
use wpa_nats::{ClientConfig, Error, IdleWorkers, NatsQueue, NatsUri, QueueConfig, WakeUp};
use wpa_poller::{PollRequest, PollerConfig, QueueSource, Registry};

fn server() -> NatsServer {
    NatsServer::start().expect(
        "nats-server must be installed for these tests (Debian: apt-get install -y nats-server)",
    )
}

fn fast() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_secs(1),
        connect_attempts: 2,
        reconnect_initial_backoff: Duration::from_millis(20),
        reconnect_max_backoff: Duration::from_millis(200),
        ..ClientConfig::default()
    }
}

fn config() -> QueueConfig {
    QueueConfig {
        client: fast(),
        ..QueueConfig::default()
    }
}

fn queue_with(uri: &str, config: QueueConfig) -> NatsQueue {
    let uri: NatsUri = uri.parse().unwrap();
    NatsQueue::with_config(uri, config)
}

fn queue(server: &NatsServer, stream: &str, consumer: &str) -> NatsQueue {
    queue_with(&server.uri(stream, consumer), config())
}

/// The independent side: a JetStream context on its own connection.
async fn jetstream(server: &NatsServer) -> jetstream::Context {
    jetstream::new(async_nats::connect(server.url()).await.unwrap())
}

async fn create_stream(js: &jetstream::Context, name: &str, subjects: &[&str]) -> stream::Stream {
    js.create_stream(stream::Config {
        name: name.to_owned(),
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
        ..stream::Config::default()
    })
    .await
    .unwrap()
}

async fn pull_consumer(
    stream: &stream::Stream,
    name: &str,
    filter: &str,
) -> consumer::PullConsumer {
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: filter.to_owned(),
            ack_policy: consumer::AckPolicy::Explicit,
            ..consumer::pull::Config::default()
        })
        .await
        .unwrap()
}

async fn publish(js: &jetstream::Context, subject: &str, body: &str) -> u64 {
    js.publish(subject.to_owned(), body.to_owned().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

/// What a worker does: one message per fetch (batch 1), within `wait`.
async fn fetch_one(
    consumer: &consumer::PullConsumer,
    wait: Duration,
) -> Option<jetstream::Message> {
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(wait)
        .messages()
        .await
        .unwrap();
    batch.next().await.map(|m| m.unwrap())
}

/// A worker blocked in a fetch of one message, for up to 30 s.
fn idle_worker(consumer: &consumer::PullConsumer) -> tokio::task::JoinHandle<()> {
    let consumer = consumer.clone();
    tokio::spawn(async move {
        let _ = fetch_one(&consumer, Duration::from_secs(30)).await;
    })
}

/// Waits until the consumer shows `count` pull requests waiting.
async fn waiting(queue: &mut NatsQueue, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if queue.consumer_info().await.unwrap().num_waiting == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {count} pull requests waiting"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The server's own count of JetStream API requests of the account
/// (`$JS.API.INFO`, which counts itself too).
async fn server_api_total(js: &jetstream::Context) -> u64 {
    let reply = js
        .client()
        .request("$JS.API.INFO", "".into())
        .await
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    info["api"]["total"].as_u64().unwrap()
}

const SHORT: PollRequest = PollRequest {
    wake_up: false,
    long_poll: Duration::from_secs(1),
    short_poll: Duration::from_secs(1),
    arrival_rate: false,
    oldest_age: false,
};

fn wake(long_poll: Duration) -> PollRequest {
    PollRequest {
        wake_up: true,
        long_poll,
        short_poll: long_poll,
        arrival_rate: false,
        oldest_age: false,
    }
}

#[tokio::test]
async fn counts_pending_in_flight_and_idle_pull_workers() {
    let server = server();
    let js = jetstream(&server).await;
    let orders = create_stream(&js, "ORDERS", &["orders.>"]).await;
    let workers = pull_consumer(&orders, "work", "").await;
    let mut queue = queue(&server, "ORDERS", "work");

    let empty = queue.poll(SHORT).await.unwrap();
    assert_eq!((empty.messages(), empty.in_flight()), (0, Some(0)));
    assert_eq!(empty.idleness(), Idleness::Idle(0));

    for i in 0..5 {
        publish(&js, "orders.new", &format!("order {i}")).await;
    }
    let ready = queue.poll(SHORT).await.unwrap();
    assert_eq!((ready.messages(), ready.in_flight()), (5, Some(0)));
    assert_eq!(ready.idleness(), Idleness::Unknown);

    // Two workers each hold one message, unacknowledged: in flight.
    let first = fetch_one(&workers, Duration::from_secs(1)).await.unwrap();
    let second = fetch_one(&workers, Duration::from_secs(1)).await.unwrap();
    let busy = queue.poll(SHORT).await.unwrap();
    assert_eq!((busy.messages(), busy.in_flight()), (5, Some(2)));
    assert_eq!(busy.idleness(), Idleness::Unknown);
    first.double_ack().await.unwrap();
    second.double_ack().await.unwrap();
    let acked = queue.poll(SHORT).await.unwrap();
    assert_eq!((acked.messages(), acked.in_flight()), (3, Some(0)));

    // Drain, then two workers block in a fetch: two idle.
    for _ in 0..3 {
        fetch_one(&workers, Duration::from_secs(1))
            .await
            .unwrap()
            .double_ack()
            .await
            .unwrap();
    }
    let a = idle_worker(&workers);
    let b = idle_worker(&workers);
    waiting(&mut queue, 2).await;
    let idle = queue.poll(SHORT).await.unwrap();
    assert_eq!((idle.messages(), idle.in_flight()), (0, Some(0)));
    assert_eq!(idle.idleness(), Idleness::Idle(2));
    a.abort();
    b.abort();
}

/// With one busy worker (a message unacknowledged) and two waiting, the
/// default rule does not count idleness (messages are held), the
/// one-message-per-fetch rule counts the two.
#[tokio::test]
async fn waiting_requests_count_while_others_work_only_with_single_fetches() {
    let server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "JOBS", &["jobs"]).await;
    let workers = pull_consumer(&stream, "w", "").await;
    publish(&js, "jobs", "one").await;
    let held = fetch_one(&workers, Duration::from_secs(1)).await.unwrap();
    let a = idle_worker(&workers);
    let b = idle_worker(&workers);
    let mut default = queue(&server, "JOBS", "w");
    waiting(&mut default, 2).await;
    let snapshot = default.poll(SHORT).await.unwrap();
    assert_eq!((snapshot.messages(), snapshot.in_flight()), (1, Some(1)));
    assert_eq!(snapshot.idleness(), Idleness::Unknown);
    let mut single = queue_with(
        &server.uri("JOBS", "w"),
        QueueConfig {
            idle_workers: IdleWorkers::OneMessagePerFetch,
            ..config()
        },
    );
    assert_eq!(
        single.poll(SHORT).await.unwrap().idleness(),
        Idleness::Idle(2)
    );
    held.double_ack().await.unwrap();
    a.abort();
    b.abort();
}

#[tokio::test]
async fn push_consumers_count_messages_and_leave_idleness_unknown() {
    let server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "PUSH", &["push.>"]).await;
    stream
        .create_consumer(consumer::push::Config {
            durable_name: Some("pushed".to_owned()),
            deliver_subject: "deliver.pushed".to_owned(),
            ack_policy: consumer::AckPolicy::Explicit,
            ..consumer::push::Config::default()
        })
        .await
        .unwrap();
    publish(&js, "push.a", "x").await;
    let snapshot = queue(&server, "PUSH", "pushed").poll(SHORT).await.unwrap();
    assert_eq!(snapshot.messages(), 1);
    assert_eq!(snapshot.idleness(), Idleness::Unknown);
}

#[tokio::test]
async fn a_filtered_consumer_counts_its_subject_and_measures_its_own_rate() {
    let server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "MIXED", &["mixed.>"]).await;
    pull_consumer(&stream, "new-only", "mixed.new").await;
    let mut queue = queue(&server, "MIXED", "new-only");
    let calls = queue.api_calls();
    assert_eq!(
        queue.poll(SHORT).await.unwrap().messages_sent_per_minute(),
        None
    );
    for _ in 0..6 {
        publish(&js, "mixed.new", "n").await;
        publish(&js, "mixed.old", "o").await;
    }
    let before = calls.get();
    let snapshot = queue
        .poll(PollRequest {
            arrival_rate: true,
            ..SHORT
        })
        .await
        .unwrap();
    assert_eq!(snapshot.messages(), 6, "only mixed.new");
    // Less than a window of history: 6 messages over the 60 s window.
    assert_eq!(snapshot.messages_sent_per_minute(), Some(6.0));
    assert_eq!(calls.get() - before, 1, "the rate costs no extra call");
}

#[tokio::test]
async fn an_unfiltered_consumer_rate_comes_from_the_stream_sequence() {
    let server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "ALL", &["all.>"]).await;
    let workers = pull_consumer(&stream, "every", "").await;
    let mut queue = queue_with(
        &server.uri("ALL", "every"),
        QueueConfig {
            rate_window: Duration::from_secs(1),
            ..config()
        },
    );
    let calls = queue.api_calls();
    let asking = PollRequest {
        arrival_rate: true,
        ..SHORT
    };
    publish(&js, "all.a", "warm").await;
    let t0 = Instant::now();
    assert_eq!(
        queue.poll(asking).await.unwrap().messages_sent_per_minute(),
        None
    );
    let t1 = Instant::now();
    assert_eq!(calls.get(), 2, "CONSUMER.INFO + STREAM.INFO");
    const N: u32 = 30;
    for i in 0..N {
        publish(&js, if i % 2 == 0 { "all.a" } else { "all.b" }, "m").await;
    }
    // Consumed messages still count as arrivals.
    for _ in 0..5 {
        fetch_one(&workers, Duration::from_secs(1))
            .await
            .unwrap()
            .double_ack()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t2 = Instant::now();
    let snapshot = queue.poll(asking).await.unwrap();
    let t3 = Instant::now();
    let rate = snapshot.messages_sent_per_minute().unwrap();
    let low = f64::from(N) * 60.0 / t3.duration_since(t0).as_secs_f64();
    let high = f64::from(N) * 60.0 / t2.duration_since(t1).as_secs_f64();
    assert!(
        rate >= low && rate <= high,
        "rate {rate} not in [{low}, {high}]"
    );
    assert_eq!(snapshot.messages(), N + 1 - 5);
    // Not asked: one call, no rate.
    let before = calls.get();
    assert_eq!(
        queue.poll(SHORT).await.unwrap().messages_sent_per_minute(),
        None
    );
    assert_eq!(calls.get() - before, 1);
}

#[tokio::test]
async fn the_oldest_age_is_the_first_undelivered_message_and_read_only_when_asked() {
    let server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "AGED", &["aged.>"]).await;
    let workers = pull_consumer(&stream, "w", "aged.work").await;
    let mut queue = queue(&server, "AGED", "w");
    let calls = queue.api_calls();
    let asking = PollRequest {
        oldest_age: true,
        ..SHORT
    };
    assert_eq!(queue.poll(asking).await.unwrap().oldest_age(), None);
    assert_eq!(calls.get(), 1, "nothing pending: no message read");

    // Older than 2 s by the time it is read: the first, in flight, and one
    // on another subject, which the filter skips.
    publish(&js, "aged.work", "delivered first").await;
    publish(&js, "aged.other", "not for this consumer").await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    publish(&js, "aged.work", "oldest waiting").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    publish(&js, "aged.work", "newest").await;
    // The first one is in flight: the oldest waiting is the second.
    let held = fetch_one(&workers, Duration::from_secs(1)).await.unwrap();
    let before = calls.get();
    let snapshot = queue.poll(asking).await.unwrap();
    assert_eq!(calls.get() - before, 2, "CONSUMER.INFO + STREAM.MSG.GET");
    assert_eq!((snapshot.messages(), snapshot.in_flight()), (3, Some(1)));
    let age = snapshot.oldest_age().unwrap();
    assert!(
        age >= Duration::from_millis(550) && age < Duration::from_secs(2),
        "{age:?}"
    );
    let before = calls.get();
    assert_eq!(queue.poll(SHORT).await.unwrap().oldest_age(), None);
    assert_eq!(calls.get() - before, 1);
    // Reading it consumed nothing: the next delivery is that message.
    held.double_ack().await.unwrap();
    let next = fetch_one(&workers, Duration::from_secs(1)).await.unwrap();
    assert_eq!(&next.payload[..], b"oldest waiting");
    assert_eq!(next.info().unwrap().delivered, 1);
}

#[tokio::test]
async fn a_missing_stream_or_consumer_is_a_typed_error_naming_it() {
    let server = server();
    let js = jetstream(&server).await;
    let error = queue(&server, "NOPE", "work").snapshot().await.unwrap_err();
    assert!(
        matches!(&error, Error::StreamNotFound { stream } if stream == "NOPE"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("stream \"NOPE\" not found"),
        "{error}"
    );
    create_stream(&js, "THERE", &["there"]).await;
    let error = queue(&server, "THERE", "ghost")
        .snapshot()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::ConsumerNotFound { stream, consumer } if stream == "THERE" && consumer == "ghost"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("consumer \"ghost\" not found on stream \"THERE\"")
    );
    // The wake-up reports it too, and at once.
    let started = Instant::now();
    let error = queue(&server, "THERE", "ghost")
        .poll(wake(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ConsumerNotFound { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn jetstream_disabled_is_reported_as_such() {
    // A core-only server: the plain `nats-server` binary without -js.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server must be installed (Debian: apt-get install -y nats-server)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let error = queue_with(&format!("nats://127.0.0.1:{port}/S/C"), config())
        .snapshot()
        .await
        .unwrap_err();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        matches!(error, Error::JetStreamUnavailable { .. }),
        "{error:?}"
    );
}

/// The wake-up returns within a second of the first publish, consuming
/// nothing: the messages are then delivered once each, in order, to a pull
/// worker of the durable consumer.
#[tokio::test]
async fn the_wake_up_sees_the_first_publish_and_leaves_every_message_in_order() {
    let server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "WAKE", &["wake.>"]).await;
    let workers = pull_consumer(&stream, "w", "wake.jobs").await;
    let mut queue = queue(&server, "WAKE", "w");
    assert_eq!(queue.poll(SHORT).await.unwrap().messages(), 0);
    let calls = queue.api_calls();

    let poll = tokio::spawn(async move {
        let snapshot = queue.poll(wake(Duration::from_secs(20))).await;
        (snapshot, Instant::now(), queue)
    });
    // Armed: the subscription is at the server.
    armed(&server, "wake.jobs").await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let published_at = Instant::now();
    let mut sequences = Vec::new();
    for i in 0..3 {
        sequences.push(publish(&js, "wake.jobs", &format!("job {i}")).await);
    }
    let (snapshot, woke_at, mut queue) = poll.await.unwrap();
    let snapshot = snapshot.unwrap();
    let latency = woke_at.duration_since(published_at);
    assert!(latency < Duration::from_secs(1), "woke after {latency:?}");
    assert!(snapshot.messages() >= 1);
    // Arming: STREAM.INFO, CONSUMER.INFO, the settle look; then one look
    // per publish seen (up to the few retries while the store catches up).
    let spent = calls.get();
    assert!((3..=9).contains(&spent), "{spent} API calls");
    // The subscription is gone.
    gone(&server, "wake.jobs").await;

    let all = queue.poll(SHORT).await.unwrap();
    assert_eq!((all.messages(), all.in_flight()), (3, Some(0)));
    for (i, sequence) in sequences.iter().enumerate() {
        let message = fetch_one(&workers, Duration::from_secs(1)).await.unwrap();
        let info = message.info().unwrap();
        assert_eq!(info.stream_sequence, *sequence, "order changed");
        assert_eq!(info.delivered, 1, "delivered before");
        assert_eq!(&message.payload[..], format!("job {i}").as_bytes());
        message.double_ack().await.unwrap();
    }
    assert!(
        fetch_one(&workers, Duration::from_millis(300))
            .await
            .is_none(),
        "delivered twice"
    );
    let info = queue.consumer_info().await.unwrap();
    assert_eq!((info.num_redelivered, info.delivered.consumer_seq), (0, 3));
}

/// Waits until the server has a subscription on `subject`.
async fn armed(server: &NatsServer, subject: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !subscribed(server, subject) {
        assert!(Instant::now() < deadline, "never subscribed to {subject}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn gone(server: &NatsServer, subject: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while subscribed(server, subject) {
        assert!(Instant::now() < deadline, "still subscribed to {subject}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn subscribed(server: &NatsServer, subject: &str) -> bool {
    let body = server.monitor("/connz?subs=1").unwrap();
    let connz: serde_json::Value = serde_json::from_str(&body).unwrap();
    connz["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["subscriptions_list"].as_array())
        .flatten()
        .any(|s| s.as_str() == Some(subject))
}

#[tokio::test]
async fn an_idle_wake_up_waits_the_long_poll_for_one_call_per_cycle() {
    let server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "IDLE", &["idle"]).await;
    pull_consumer(&stream, "w", "").await;
    let mut queue = queue(&server, "IDLE", "w");
    queue.poll(SHORT).await.unwrap();
    let calls = queue.api_calls();
    let server_before = server_api_total(&js).await;
    let started = Instant::now();
    let first = queue.poll(wake(Duration::from_secs(1))).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(first.messages(), 0);
    let arming = calls.get() - 1;
    // STREAM.INFO, CONSUMER.INFO after subscribing, the settle look, the
    // look at the end.
    assert_eq!(arming, 4, "arming cycle");
    let second = queue.poll(wake(Duration::from_secs(1))).await.unwrap();
    assert_eq!(second.messages(), 0);
    assert_eq!(
        calls.get() - 1 - arming,
        1,
        "a kept subscription: one look per cycle"
    );
    // The server counted the same requests (plus the two $JS.API.INFO).
    assert_eq!(
        server_api_total(&js).await - server_before,
        calls.get() - 1 + 1
    );
    // Between two wake-up polls the subscription stays: a publish then is
    // seen as soon as the next one starts.
    let before = calls.get();
    publish(&js, "idle", "between polls").await;
    let started = Instant::now();
    let third = queue.poll(wake(Duration::from_secs(5))).await.unwrap();
    assert_eq!(third.messages(), 1);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.get() - before, 1);
}

/// The poller itself, at zero replicas on an empty consumer, at the
/// default 20 s polls: the first publish reaches the subscriber within a
/// second.
#[tokio::test]
async fn the_poller_at_zero_replicas_publishes_the_first_message_within_a_second() {
    let server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "ZERO", &["zero"]).await;
    pull_consumer(&stream, "w", "").await;
    let uri = server.uri("ZERO", "w");
    let registry = Registry::new();
    let source = queue(&server, "ZERO", "w");
    let mut subscription = registry
        .subscribe(&uri, PollerConfig::default(), Some(0), || {
            Ok::<_, Error>(source)
        })
        .unwrap();
    subscription.changed().await.unwrap();
    assert_eq!(subscription.latest().unwrap().messages(), 0);
    armed(&server, "zero").await;
    let published_at = Instant::now();
    publish(&js, "zero", "wake").await;
    tokio::time::timeout(Duration::from_secs(1), async {
        while subscription.latest().unwrap().messages() == 0 {
            subscription.changed().await.unwrap();
        }
    })
    .await
    .expect("no snapshot with the message within 1 s");
    assert!(published_at.elapsed() < Duration::from_secs(1));
}

/// A publish the stream drops (a duplicate message id) wakes the
/// subscription but not the poll: the consumer shows nothing.
#[tokio::test]
async fn a_publish_the_stream_refuses_does_not_end_the_wake_up() {
    let server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "DEDUP", &["dedup"]).await;
    let workers = pull_consumer(&stream, "w", "").await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "once");
    js.publish_with_headers("dedup", headers.clone(), "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    fetch_one(&workers, Duration::from_secs(1))
        .await
        .unwrap()
        .double_ack()
        .await
        .unwrap();
    let mut queue = queue(&server, "DEDUP", "w");
    queue.poll(SHORT).await.unwrap();
    let poll = tokio::spawn(async move {
        let started = Instant::now();
        (
            queue.poll(wake(Duration::from_secs(2))).await,
            started.elapsed(),
        )
    });
    armed(&server, "dedup").await;
    let ack = js
        .publish_with_headers("dedup", headers, "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.duplicate);
    let (snapshot, waited) = poll.await.unwrap();
    assert_eq!(snapshot.unwrap().messages(), 0);
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
}

/// A stream fed by sources gets its messages without a publish on its
/// subjects: the wake-up polls the consumer instead, still within a second.
#[tokio::test]
async fn a_sourced_stream_wakes_up_by_polling() {
    let server = server();
    let js = jetstream(&server).await;
    create_stream(&js, "ORIGIN", &["origin.>"]).await;
    let copy = js
        .create_stream(stream::Config {
            name: "COPY".to_owned(),
            sources: Some(vec![stream::Source {
                name: "ORIGIN".to_owned(),
                ..stream::Source::default()
            }]),
            ..stream::Config::default()
        })
        .await
        .unwrap();
    let workers = pull_consumer(&copy, "w", "").await;
    let mut queue = queue(&server, "COPY", "w");
    queue.poll(SHORT).await.unwrap();
    let poll = tokio::spawn(async move {
        let snapshot = queue.poll(wake(Duration::from_secs(10))).await;
        (snapshot, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let published_at = Instant::now();
    publish(&js, "origin.a", "sourced").await;
    let (snapshot, woke_at) = poll.await.unwrap();
    assert_eq!(snapshot.unwrap().messages(), 1);
    let latency = woke_at.duration_since(published_at);
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    let message = fetch_one(&workers, Duration::from_secs(1)).await.unwrap();
    assert_eq!(message.info().unwrap().delivered, 1);
}

#[tokio::test]
async fn the_poll_mode_wakes_up_without_a_subscription() {
    let server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "POLLED", &["polled"]).await;
    pull_consumer(&stream, "w", "").await;
    let mut queue = queue_with(
        &server.uri("POLLED", "w"),
        QueueConfig {
            wake_up: WakeUp::Poll,
            wake_up_poll_interval: Duration::from_millis(100),
            ..config()
        },
    );
    queue.poll(SHORT).await.unwrap();
    let poll = tokio::spawn(async move {
        let snapshot = queue.poll(wake(Duration::from_secs(10))).await;
        (snapshot, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!subscribed(&server, "polled"));
    let published_at = Instant::now();
    publish(&js, "polled", "x").await;
    let (snapshot, woke_at) = poll.await.unwrap();
    assert_eq!(snapshot.unwrap().messages(), 1);
    assert!(woke_at.duration_since(published_at) < Duration::from_millis(500));
}

#[tokio::test]
async fn recovers_from_a_server_restart_by_itself() {
    let mut server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "DURABLE", &["durable"]).await;
    pull_consumer(&stream, "w", "").await;
    publish(&js, "durable", "kept on disk").await;
    let mut queue = queue(&server, "DURABLE", "w");
    assert_eq!(queue.poll(SHORT).await.unwrap().messages(), 1);

    server.stop();
    let started = Instant::now();
    let error = queue.poll(SHORT).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no hang while down"
    );
    // A wake-up fails too, promptly.
    let error = queue.poll(wake(Duration::from_secs(10))).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");

    server.restart().unwrap();
    // The stream and the consumer are on disk: the same count once the
    // client has reconnected by itself (backoff capped at 200 ms here).
    let deadline = Instant::now() + Duration::from_secs(10);
    let snapshot = loop {
        match queue.poll(SHORT).await {
            Ok(snapshot) => break snapshot,
            Err(error) => {
                assert!(Instant::now() < deadline, "never recovered: {error}");
            }
        }
    };
    assert_eq!(snapshot.messages(), 1);
    // The wake-up works again after the restart, subscription included.
    let workers = pull_consumer(&stream_of(&server, "DURABLE").await, "w", "").await;
    fetch_one(&workers, Duration::from_secs(1))
        .await
        .unwrap()
        .double_ack()
        .await
        .unwrap();
    let poll = tokio::spawn(async move {
        let snapshot = queue.poll(wake(Duration::from_secs(10))).await;
        (snapshot, Instant::now())
    });
    armed(&server, "durable").await;
    let js = jetstream(&server).await;
    let published_at = Instant::now();
    publish(&js, "durable", "after").await;
    let (snapshot, woke_at) = poll.await.unwrap();
    assert_eq!(snapshot.unwrap().messages(), 1);
    assert!(woke_at.duration_since(published_at) < Duration::from_secs(1));
}

async fn stream_of(server: &NatsServer, name: &str) -> stream::Stream {
    jetstream(server).await.get_stream(name).await.unwrap()
}

/// A restart while a wake-up waits: the reconnect triggers a look, and the
/// subscription is restored, so a publish afterwards still wakes it.
#[tokio::test]
async fn a_wake_up_survives_a_restart_while_it_waits() {
    let mut server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "SURVIVE", &["survive"]).await;
    pull_consumer(&stream, "w", "").await;
    drop(js);
    let mut queue = queue(&server, "SURVIVE", "w");
    queue.poll(SHORT).await.unwrap();
    let poll = tokio::spawn(async move {
        let mut result = queue.poll(wake(Duration::from_secs(15))).await;
        // A look that failed while the server was down ends the poll with
        // an error; the poller's next wake-up poll re-arms.
        if result.is_err() {
            result = queue.poll(wake(Duration::from_secs(15))).await;
        }
        (result, Instant::now())
    });
    armed(&server, "survive").await;
    server.restart().unwrap();
    armed(&server, "survive").await;
    let js = jetstream(&server).await;
    let published_at = Instant::now();
    publish(&js, "survive", "x").await;
    let (snapshot, woke_at) = poll.await.unwrap();
    assert_eq!(snapshot.unwrap().messages(), 1);
    assert!(woke_at.duration_since(published_at) < Duration::from_secs(1));
}

#[tokio::test]
async fn the_poller_marks_stale_while_down_and_recovers() {
    let mut server = server();
    let js = jetstream(&server).await;
    let stream = create_stream(&js, "POLLER", &["poller"]).await;
    pull_consumer(&stream, "w", "").await;
    drop(js);
    let uri = server.uri("POLLER", "w");
    let mut config = PollerConfig::new(Duration::from_millis(100), Duration::from_secs(1));
    config.stale_after = Duration::from_millis(300);
    let registry = Registry::new();
    let source = queue(&server, "POLLER", "w");
    let mut subscription = registry
        .subscribe(&uri, config, Some(1), || Ok::<_, Error>(source))
        .unwrap();
    subscription.changed().await.unwrap();
    assert_eq!(subscription.latest().unwrap().messages(), 0);

    server.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Stale by age first; the error once a call has timed out (1 s here).
    while !subscription.latest().unwrap().is_stale()
        || subscription.observation().last_error.is_none()
    {
        assert!(
            Instant::now() < deadline,
            "never marked stale with an error"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let error = subscription.observation().last_error.unwrap();
    assert!(error.contains("did not answer"), "{error}");

    server.restart().unwrap();
    let js = jetstream(&server).await;
    publish(&js, "poller", "x").await;
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

/// The permissions the README lists are enough for every poll; without
/// the consumer's INFO subject the error names it; without the subscribe
/// permission on the subject the wake-up polls instead, still in time.
#[tokio::test]
async fn the_readme_permissions_are_enough_and_missing_ones_are_named() {
    let server = NatsServer::start_with_config(
        r#"
authorization {
  users = [
    { user: admin, password: admin }
    { user: wpa, password: "p@ss:word", permissions: {
        publish: { allow: ["$JS.API.CONSUMER.INFO.PERM.w", "$JS.API.STREAM.INFO.PERM", "$JS.API.STREAM.MSG.GET.PERM"] }
        subscribe: { allow: ["_INBOX.>", "perm.jobs"] } } }
    { user: blind, password: blind, permissions: {
        publish: { allow: ["$JS.API.STREAM.INFO.PERM"] }
        subscribe: { allow: ["_INBOX.>", "perm.jobs"] } } }
    { user: nosub, password: nosub, permissions: {
        publish: { allow: ["$JS.API.CONSUMER.INFO.PERM.w", "$JS.API.STREAM.INFO.PERM"] }
        subscribe: { allow: ["_INBOX.>"] } } }
  ]
}
"#,
    )
    .expect("nats-server must be installed (Debian: apt-get install -y nats-server)");
    let port = server.port();
    let admin = async_nats::ConnectOptions::new()
        .user_and_password("admin".into(), "admin".into())
        .connect(server.url())
        .await
        .unwrap();
    let js = jetstream::new(admin);
    let stream = create_stream(&js, "PERM", &["perm.>"]).await;
    let workers = pull_consumer(&stream, "w", "perm.jobs").await;

    let mut queue = queue_with(
        &format!("nats://wpa:p%40ss%3Aword@127.0.0.1:{port}/PERM/w"),
        config(),
    );
    publish(&js, "perm.jobs", "a").await;
    let snapshot = queue
        .poll(PollRequest {
            arrival_rate: true,
            oldest_age: true,
            ..SHORT
        })
        .await
        .unwrap();
    assert_eq!(snapshot.messages(), 1);
    assert!(snapshot.oldest_age().is_some());
    fetch_one(&workers, Duration::from_secs(1))
        .await
        .unwrap()
        .double_ack()
        .await
        .unwrap();
    queue.poll(SHORT).await.unwrap();
    let poll = tokio::spawn(async move { queue.poll(wake(Duration::from_secs(10))).await });
    armed(&server, "perm.jobs").await;
    publish(&js, "perm.jobs", "b").await;
    assert_eq!(poll.await.unwrap().unwrap().messages(), 1);

    let error = queue_with(
        &format!("nats://blind:blind@127.0.0.1:{port}/PERM/w"),
        config(),
    )
    .snapshot()
    .await
    .unwrap_err();
    assert!(
        matches!(&error, Error::PermissionDenied { subject, .. } if subject == "$JS.API.CONSUMER.INFO.PERM.w"),
        "{error:?}"
    );

    fetch_one(&workers, Duration::from_secs(1))
        .await
        .unwrap()
        .double_ack()
        .await
        .unwrap();
    let mut nosub = queue_with(
        &format!("nats://nosub:nosub@127.0.0.1:{port}/PERM/w"),
        config(),
    );
    assert_eq!(nosub.poll(SHORT).await.unwrap().messages(), 0);
    let poll = tokio::spawn(async move {
        let snapshot = nosub.poll(wake(Duration::from_secs(10))).await;
        (snapshot, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let published_at = Instant::now();
    publish(&js, "perm.jobs", "c").await;
    let (snapshot, woke_at) = poll.await.unwrap();
    assert_eq!(snapshot.unwrap().messages(), 1);
    assert!(woke_at.duration_since(published_at) < Duration::from_secs(1));

    let error = queue_with(
        &format!("nats://wpa:wrong@127.0.0.1:{port}/PERM/w"),
        config(),
    )
    .snapshot()
    .await
    .unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    assert!(!error.to_string().contains("wrong"), "{error}");
}

#[tokio::test]
async fn tls_required_against_a_plain_server_fails_to_connect() {
    let server = server();
    let error = queue_with(&format!("tls://127.0.0.1:{}/S/C", server.port()), config())
        .snapshot()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error_within_the_attempts() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let error = queue_with(&format!("nats://127.0.0.1:{port}/S/C"), config())
        .snapshot()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Connect { attempts: 2, .. }),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Another listener on a port (another test's server, taken between the
/// pick of free ports and the bind) is not taken for this nats-server: it
/// fails to bind and says so, on the client port as on the monitoring one.
#[test]
fn a_port_held_by_another_listener_is_not_mistaken_for_the_server() {
    let mut server = NatsServer::start().unwrap();
    for port in [server.port(), server.monitor_port()] {
        server.stop();
        let holder = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let error = server.restart().unwrap_err();
        assert!(
            error.to_string().contains("exited at start"),
            "{port}: {error}"
        );
        drop(holder);
    }
    server.restart().unwrap();
}
