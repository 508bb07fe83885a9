#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The SQS adapter against a real SQS-protocol server: `moto_server`
//! (PyPI `moto[server]`), started by each test on a free loopback port.
//!
//! `moto_server` must be on PATH: a missing binary fails the tests, it never
//! skips them. CloudWatch is disabled here (moto does not serve the Rust
//! SDK's CloudWatch protocol); see `cloudwatch_mock.rs` for that part.

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use wpa_poller::{PollRequest, QueueSource};
use wpa_sqs::testing::test_clients;
use wpa_sqs::{Error, ErrorKind, Idleness, PollMethod, RedrivePolicy, SqsClients, SqsOptions};

const REGION: &str = "us-east-1";

type Moto = wpa_sqs::testing::MotoServer;

fn options(endpoint: String) -> SqsOptions {
    SqsOptions {
        endpoint: Some(endpoint),
        regions: vec![REGION.into()],
        idle_from_cloudwatch: false,
        arrival_rate: false,
        max_attempts: 1,
        request_timeout: Duration::from_secs(5),
        ..SqsOptions::default()
    }
}

async fn clients(moto: &Moto, options_fn: impl FnOnce(SqsOptions) -> SqsOptions) -> SqsClients {
    test_clients(options_fn(options(moto.endpoint()))).await
}

/// The raw client the tests use as producer and worker, in the region the
/// adapter picks for the emulator's URLs.
fn raw(clients: &SqsClients) -> aws_sdk_sqs::Client {
    clients.sqs_client(clients.default_region().unwrap_or(REGION))
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create_queue")
        .queue_url()
        .expect("queue url")
        .to_owned()
}

/// A queue whose messages go to the dead-letter queue `dlq` after
/// `max_receive_count` receives (the policy as SQS stores it).
async fn create_queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    dlq: &str,
    max_receive_count: &str,
) -> String {
    let dlq_arn = attribute(sqs, dlq, QueueAttributeName::QueueArn).await;
    let policy =
        format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":{max_receive_count}}}"#);
    sqs.create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await
        .expect("create")
        .queue_url()
        .expect("url")
        .to_owned()
}

async fn send(sqs: &aws_sdk_sqs::Client, url: &str, body: &str, delay: i32) {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .delay_seconds(delay)
        .send()
        .await
        .expect("send_message");
}

async fn attribute(sqs: &aws_sdk_sqs::Client, url: &str, name: QueueAttributeName) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .expect("get_queue_attributes")
        .attributes()
        .and_then(|a| a.get(&name).cloned())
        .unwrap_or_default()
}

/// A worker's receive: returns (body, ApproximateReceiveCount) of each message.
async fn worker_receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<(String, u32)> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(300)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .expect("receive_message");
    out.messages()
        .iter()
        .map(|m| {
            let count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            (m.body().unwrap_or_default().to_owned(), count)
        })
        .collect()
}

fn short() -> PollRequest {
    PollRequest {
        wake_up: false,
        long_poll: Duration::from_secs(1),
        short_poll: Duration::from_secs(1),
        arrival_rate: false,
        oldest_age: false,
    }
}

fn wake_up(long_poll: Duration) -> PollRequest {
    PollRequest {
        wake_up: true,
        long_poll,
        short_poll: long_poll,
        arrival_rate: false,
        oldest_age: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_visible_in_flight_and_delayed_in_one_call() {
    let moto = Moto::start();
    let clients = clients(&moto, |o| o).await;
    let sqs = raw(&clients);
    let url = create_queue(&sqs, "counts").await;

    let mut queue = clients.queue(&url).expect("queue");
    assert_eq!(queue.url().name(), "counts");

    // Empty queue.
    let empty = queue
        .observe(short(), SystemTime::now())
        .await
        .expect("poll");
    assert_eq!(empty.messages, 0);
    assert_eq!(empty.method, PollMethod::Attributes);
    assert_eq!(
        empty.idle,
        Idleness::Unknown,
        "CloudWatch is off: idleness unknown"
    );
    assert_eq!(queue.redrive_policy(), Some(&RedrivePolicy::None));

    for i in 0..3 {
        send(&sqs, &url, &format!("m{i}"), 0).await;
    }
    // One message in flight, as a worker holds it.
    let held = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(1)
        .visibility_timeout(300)
        .send()
        .await
        .expect("receive");
    assert_eq!(held.messages().len(), 1);
    // Two delayed messages.
    send(&sqs, &url, "d1", 600).await;
    send(&sqs, &url, "d2", 600).await;

    let seen = queue
        .observe(short(), SystemTime::now())
        .await
        .expect("poll");
    let counts = seen.counts.expect("counts");
    assert_eq!(
        (counts.visible, counts.not_visible, counts.delayed),
        (2, 1, 2)
    );
    assert_eq!(
        seen.messages, 3,
        "visible + in flight; delayed not counted by default"
    );
    assert_eq!(seen.idle, Idleness::Unknown);

    // Through the driver's trait.
    let snapshot = queue.poll(short()).await.expect("poll");
    assert_eq!(snapshot.messages(), 3);
    assert_eq!(snapshot.idleness(), Idleness::Unknown);
    assert_eq!(snapshot.messages_sent_per_minute(), None);

    // Opting in counts delayed messages.
    let clients = self::clients(&moto, |o| SqsOptions {
        count_delayed: true,
        ..o
    })
    .await;
    let mut counting = clients.queue(&url).expect("queue");
    let snapshot = counting.poll(short()).await.expect("poll");
    assert_eq!(snapshot.messages(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_up_returns_on_the_first_message_and_leaves_it_visible() {
    let moto = Moto::start();
    let clients = clients(&moto, |o| o).await;
    let sqs = raw(&clients);
    let url = create_queue(&sqs, "wake").await;
    let mut queue = clients.queue(&url).expect("queue");

    // First wake-up poll: redrive policy unknown, so attributes (and the policy).
    let first = queue
        .observe(wake_up(Duration::from_secs(5)), SystemTime::now())
        .await
        .expect("poll");
    assert_eq!(first.method, PollMethod::Attributes);
    assert_eq!(first.messages, 0);

    // An empty probe blocks for the long poll.
    let started = Instant::now();
    let idle = queue
        .observe(wake_up(Duration::from_secs(1)), SystemTime::now())
        .await
        .expect("poll");
    assert_eq!(idle.method, PollMethod::Probe);
    assert_eq!(idle.messages, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // A message sent while probing wakes it up early.
    let producer = sqs.clone();
    let url2 = url.clone();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        send(&producer, &url2, "hello", 0).await;
    });
    let started = Instant::now();
    let woke = queue
        .observe(wake_up(Duration::from_secs(10)), SystemTime::now())
        .await
        .expect("poll");
    let latency = started.elapsed();
    sender.await.expect("sender");
    assert_eq!(woke.method, PollMethod::Probe);
    assert_eq!(woke.messages, 1);
    assert!(latency < Duration::from_secs(5), "woke after {latency:?}");
    eprintln!("wake-up probe returned {latency:?} after the poll started (message sent at 500 ms)");

    // The message is still visible for real workers.
    let after = queue
        .observe(short(), SystemTime::now())
        .await
        .expect("poll");
    let counts = after.counts.expect("counts");
    assert_eq!((counts.visible, counts.not_visible), (1, 0));
    let received = worker_receive(&sqs, &url).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0, "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_wake_up_never_sends_the_message_to_the_dead_letter_queue() {
    let moto = Moto::start();
    let clients = clients(&moto, |o| o).await;
    let sqs = raw(&clients);
    let dlq = create_queue(&sqs, "guarded-dlq").await;
    let url = create_queue_with_dlq(&sqs, "guarded", &dlq, r#""1""#).await;
    let mut queue = clients.queue(&url).expect("queue");

    let first = queue
        .observe(wake_up(Duration::from_secs(1)), SystemTime::now())
        .await
        .expect("poll");
    assert_eq!(first.method, PollMethod::Attributes);
    assert_eq!(
        queue.redrive_policy(),
        Some(&RedrivePolicy::MaxReceiveCount(1))
    );

    send(&sqs, &url, "precious", 0).await;
    // Many wake-up polls before any worker runs: none may touch the message.
    for _ in 0..3 {
        let started = Instant::now();
        let seen = queue
            .observe(wake_up(Duration::from_secs(1)), SystemTime::now())
            .await
            .expect("poll");
        assert_eq!(seen.method, PollMethod::GuardedAttributes);
        assert_eq!(seen.messages, 1);
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "guarded polls wait the interval"
        );
    }
    // The worker gets it on its first receive; the dead-letter queue stays empty.
    let received = worker_receive(&sqs, &url).await;
    assert_eq!(received, vec![("precious".to_owned(), 1)]);
    assert_eq!(
        attribute(&sqs, &dlq, QueueAttributeName::ApproximateNumberOfMessages).await,
        "0"
    );

    // Control: the reference's unguarded probe on the same kind of queue
    // diverts the message before the worker sees it.
    let control = create_queue_with_dlq(&sqs, "unguarded", &dlq, r#""1""#).await;
    send(&sqs, &control, "lost", 0).await;
    let probe = sqs
        .receive_message()
        .queue_url(&control)
        .max_number_of_messages(1)
        .visibility_timeout(0)
        .send()
        .await
        .expect("probe");
    assert_eq!(probe.messages().len(), 1);
    let worker = worker_receive(&sqs, &control).await;
    let in_dlq = attribute(&sqs, &dlq, QueueAttributeName::ApproximateNumberOfMessages).await;
    eprintln!("control: unguarded probe, then worker received {worker:?}; DLQ holds {in_dlq}");
    assert!(
        worker.is_empty() && in_dlq == "1",
        "moto should divert the probed message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_max_receive_count_still_allows_the_probe() {
    let moto = Moto::start();
    let clients = clients(&moto, |o| o).await;
    let sqs = raw(&clients);
    let dlq = create_queue(&sqs, "probe-dlq").await;
    let url = create_queue_with_dlq(&sqs, "probed", &dlq, "10").await;
    let mut queue = clients.queue(&url).expect("queue");
    queue
        .observe(wake_up(Duration::from_secs(1)), SystemTime::now())
        .await
        .expect("poll");
    assert_eq!(
        queue.redrive_policy(),
        Some(&RedrivePolicy::MaxReceiveCount(10))
    );
    send(&sqs, &url, "m", 0).await;
    let seen = queue
        .observe(wake_up(Duration::from_secs(2)), SystemTime::now())
        .await
        .expect("poll");
    assert_eq!((seen.method, seen.messages), (PollMethod::Probe, 1));
    assert_eq!(worker_receive(&sqs, &url).await, vec![("m".to_owned(), 2)]);
    assert_eq!(
        attribute(&sqs, &dlq, QueueAttributeName::ApproximateNumberOfMessages).await,
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_is_a_typed_error() {
    let moto = Moto::start();
    let clients = clients(&moto, |o| o).await;
    let url = format!("{}/123456789012/no-such-queue", moto.endpoint());
    let mut queue = clients.queue(&url).expect("queue");
    let err = queue.poll(short()).await.expect_err("missing queue");
    assert!(matches!(err, Error::QueueDoesNotExist { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::NeedsAttention);
    assert!(err.to_string().contains("does not exist"), "{err}");
    // The probe path types it the same way.
    let err = queue
        .observe(wake_up(Duration::from_secs(1)), SystemTime::now())
        .await
        .expect_err("missing queue");
    assert!(matches!(err, Error::QueueDoesNotExist { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_recovers_when_the_server_restarts() {
    let mut moto = Moto::start();
    let port = moto.port();
    let clients = clients(&moto, |o| o).await;
    let sqs = raw(&clients);
    let url = create_queue(&sqs, "restart").await;
    send(&sqs, &url, "a", 0).await;
    let mut queue = clients.queue(&url).expect("queue");
    assert_eq!(queue.poll(short()).await.expect("poll").messages(), 1);

    moto.stop();
    let err = queue.poll(short()).await.expect_err("server down");
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert!(err.is_transient());
    let err = queue
        .observe(wake_up(Duration::from_secs(1)), SystemTime::now())
        .await
        .expect_err("server down");
    assert!(err.is_transient(), "{err:?}");

    // Same port, fresh state: the queue is recreated, the adapter is not.
    let moto = Moto::start_on(port);
    let url2 = create_queue(&sqs, "restart").await;
    assert_eq!(url2, url);
    send(&sqs, &url, "b", 0).await;
    send(&sqs, &url, "c", 0).await;
    assert_eq!(
        queue
            .poll(short())
            .await
            .expect("poll after restart")
            .messages(),
        2
    );
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_urls_need_an_endpoint_override_and_get_the_default_region() {
    let moto = Moto::start();
    let clients = clients(&moto, |o| o).await;
    assert!(clients.endpoint_override());
    let queue = clients
        .queue(&format!("{}/123456789012/q", moto.endpoint()))
        .expect("queue");
    assert_eq!(Some(queue.region()), clients.default_region());
    // An AWS URL in a region not configured gets a client on demand.
    let other = clients
        .queue("https://sqs.eu-north-1.amazonaws.com/123456789012/q")
        .expect("queue");
    assert_eq!(other.region(), "eu-north-1");
    assert!(clients.regions().contains(&"eu-north-1".to_owned()));

    let plain = test_clients(SqsOptions {
        regions: vec![REGION.into()],
        ..SqsOptions::default()
    })
    .await;
    if !plain.endpoint_override() {
        let err = plain
            .queue(&format!("{}/123456789012/q", moto.endpoint()))
            .expect_err("no override");
        assert!(matches!(err, Error::InvalidQueueUrl { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}

/// At zero replicas a guarded queue (no probe allowed) is looked at every
/// short poll, not every long poll: through the shared poller, with a
/// 1 s short poll and a 20 s long poll, the first message shows within
/// the short poll plus a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_wake_up_sees_the_first_message_within_the_short_poll() {
    let moto = Moto::start();
    let clients = clients(&moto, |o| o).await;
    let sqs = raw(&clients);
    let dlq = create_queue(&sqs, "short-dlq").await;
    let url = create_queue_with_dlq(&sqs, "short-guarded", &dlq, r#""2""#).await;
    let queue = clients.queue(&url).expect("queue");
    let registry = wpa_poller::Registry::new();
    let config = wpa_poller::PollerConfig::new(Duration::from_secs(1), Duration::from_secs(20));
    let mut subscription = registry
        .subscribe(&url, config, Some(0), || Ok::<_, Error>(queue))
        .expect("subscribe");
    // The first poll reads the redrive policy; wake-up polls follow.
    while wpa_core::QueueMetrics::snapshot(&mut subscription)
        .await
        .is_err()
    {
        subscription.changed().await.expect("poller runs");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    send(&sqs, &url, "first", 0).await;
    let sent = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            subscription.changed().await.expect("poller runs");
            if subscription.latest().is_some_and(|s| s.messages() == 1) {
                break;
            }
        }
    })
    .await
    .expect("the message is seen");
    let seen_after = sent.elapsed();
    assert!(
        seen_after <= Duration::from_secs(2),
        "seen {seen_after:?} after it was sent: short poll 1 s + 1 s"
    );
    // Seen by attribute polls only: the worker receives it first.
    let received = worker_receive(&sqs, &url).await;
    assert_eq!(received, vec![("first".to_owned(), 1)]);
}

/// Another server on the port (a beanstalkd in CI, which the SDK then
/// spoke HTTP to) is not taken for moto: moto fails to bind and says so.
#[test]
fn a_port_held_by_another_server_is_not_mistaken_for_moto() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("address").port();
    let started = std::panic::catch_unwind(|| Moto::start_on(port));
    let message = started.expect_err("moto cannot answer on a held port");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("exited before answering"), "{message}");
    // A free port is found instead when none is asked for.
    let moto = Moto::start();
    assert_ne!(moto.port(), port);
}
