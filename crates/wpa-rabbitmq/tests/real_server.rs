//! The adapter against a real RabbitMQ node (started by this test binary on
//! free ports), driven by amqprs producers and consumers as a user's
//! workers would be. One node is shared by the tests (each has its own
//! vhost); the restart test runs its own. A missing `rabbitmq-server`
//! fails these tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use amqprs::BasicProperties;
use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicPublishArguments, BasicQosArguments, Channel,
    QueueDeclareArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use tokio::sync::mpsc::UnboundedReceiver;
use wpa_core::{Idleness, QueueMetrics, QueueSnapshot};
use wpa_poller::{PollRequest, PollerConfig, QueueSource, Registry};
use wpa_rabbitmq::testing::RabbitMqServer;
use wpa_rabbitmq::{Error, QueueConfig, RabbitQueue, RabbitUri};

fn start() -> RabbitMqServer {
    RabbitMqServer::start().expect(
        "rabbitmq-server must be installed for these tests (Debian: apt-get install -y rabbitmq-server)",
    )
}

/// The node shared by every test but the restart test.
fn server() -> &'static RabbitMqServer {
    static SERVER: OnceLock<RabbitMqServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// A vhost of its own for one test.
fn vhost(name: &str) -> &'static RabbitMqServer {
    let server = server();
    server.add_vhost(name).unwrap();
    server
}

fn fast() -> QueueConfig {
    QueueConfig {
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(3),
        reconnect_attempts: 2,
        reconnect_initial_backoff: Duration::from_millis(20),
        reconnect_max_backoff: Duration::from_millis(100),
        ..QueueConfig::default()
    }
}

fn adapter(server: &RabbitMqServer, vhost: &str, queue: &str) -> RabbitQueue {
    adapter_with(server, vhost, queue, fast())
}

fn adapter_with(
    server: &RabbitMqServer,
    vhost: &str,
    queue: &str,
    config: QueueConfig,
) -> RabbitQueue {
    let uri: RabbitUri = server.uri(vhost, queue).parse().unwrap();
    RabbitQueue::with_config(uri, config)
}

/// A user's client: its own connection and channel.
struct Client {
    _connection: Connection,
    channel: Channel,
}

async fn client_as(server: &RabbitMqServer, user: &str, password: &str, vhost: &str) -> Client {
    let mut arguments =
        OpenConnectionArguments::new("127.0.0.1", server.amqp_port(), user, password);
    arguments.virtual_host(vhost);
    let connection = Connection::open(&arguments).await.unwrap();
    let channel = connection.open_channel(None).await.unwrap();
    Client {
        _connection: connection,
        channel,
    }
}

async fn client(server: &RabbitMqServer, vhost: &str) -> Client {
    client_as(server, "guest", "guest", vhost).await
}

impl Client {
    async fn declare(&self, queue: &str) {
        self.channel
            .queue_declare(QueueDeclareArguments::durable_client_named(queue))
            .await
            .unwrap();
    }

    async fn publish(&self, queue: &str, body: &[u8]) {
        self.publish_with(queue, body, BasicProperties::default())
            .await;
    }

    async fn publish_with(&self, queue: &str, body: &[u8], properties: BasicProperties) {
        self.channel
            .basic_publish(
                properties,
                body.to_vec(),
                BasicPublishArguments::new("", queue),
            )
            .await
            .unwrap();
    }

    /// Becomes a consumer with this prefetch and acknowledgement mode.
    async fn consume(self, queue: &str, prefetch: u16, manual_ack: bool) -> Consumer {
        self.channel
            .basic_qos(BasicQosArguments::new(0, prefetch, false))
            .await
            .unwrap();
        let (_, deliveries) = self
            .channel
            .basic_consume_rx(
                BasicConsumeArguments::new(queue, "")
                    .manual_ack(manual_ack)
                    .finish(),
            )
            .await
            .unwrap();
        Consumer {
            _client: self,
            deliveries,
        }
    }
}

struct Consumer {
    _client: Client,
    deliveries: UnboundedReceiver<amqprs::channel::ConsumerMessage>,
}

/// One delivery: its body, tag and redelivered flag.
struct Delivery {
    body: Vec<u8>,
    tag: u64,
    redelivered: bool,
}

impl Consumer {
    async fn next(&mut self) -> Delivery {
        let message = tokio::time::timeout(Duration::from_secs(5), self.deliveries.recv())
            .await
            .expect("no delivery within 5 s")
            .expect("the consumer stopped");
        let deliver = message.deliver.unwrap();
        Delivery {
            body: message.content.unwrap(),
            tag: deliver.delivery_tag(),
            redelivered: deliver.redelivered(),
        }
    }

    async fn ack(&self, tag: u64) {
        self._client
            .channel
            .basic_ack(BasicAckArguments::new(tag, false))
            .await
            .unwrap();
    }

    /// Nothing more arrives within `wait`.
    async fn nothing_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.deliveries.recv())
            .await
            .is_err()
    }
}

const SHORT: PollRequest = PollRequest {
    wake_up: false,
    long_poll: Duration::from_secs(20),
    short_poll: Duration::from_secs(20),
    arrival_rate: false,
    oldest_age: false,
};

fn wake_up(long_poll: Duration, short_poll: Duration) -> PollRequest {
    PollRequest {
        wake_up: true,
        long_poll,
        short_poll,
        ..SHORT
    }
}

/// Short polls until `check` accepts the snapshot (the management counts
/// lag by about a second here), or fails after 15 s with the last one.
async fn until(
    queue: &mut RabbitQueue,
    what: &str,
    check: impl Fn(&QueueSnapshot) -> bool,
) -> QueueSnapshot {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let snapshot = queue.poll(SHORT).await.unwrap();
        if check(&snapshot) {
            return snapshot;
        }
        assert!(Instant::now() < deadline, "never {what}: last {snapshot:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the management API counts `count` messages published.
async fn published(queue: &mut RabbitQueue, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = queue.management_stats().await.unwrap().unwrap();
        if stats.published == Some(count) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never {count} published: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The queue's `message_stats` as the management API shows them.
fn message_stats(server: &RabbitMqServer, vhost: &str, queue: &str) -> String {
    let path = format!(
        "/api/queues/{}/{queue}?columns=message_stats",
        vhost.replace('/', "%2F")
    );
    let (status, body) = server.admin("GET", &path, None).unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn ready_unacknowledged_and_idle_consumers() {
    let server = vhost("counts");
    let producer = client(server, "counts").await;
    producer.declare("jobs").await;
    let mut queue = adapter(server, "counts", "jobs");
    let empty = until(&mut queue, "an empty queue, no consumer", |s| {
        s.messages() == 0 && s.idleness() == Idleness::Idle(0)
    })
    .await;
    assert_eq!(empty.in_flight(), Some(0));

    for i in 0..5_u8 {
        producer.publish("jobs", &[i]).await;
    }
    let ready = until(&mut queue, "5 ready", |s| {
        s.messages() == 5 && s.in_flight() == Some(0)
    })
    .await;
    assert_eq!(ready.idleness(), Idleness::Unknown, "messages are ready");

    // A worker takes all five (prefetch 10) and acknowledges none.
    let mut greedy = client(server, "counts")
        .await
        .consume("jobs", 10, true)
        .await;
    let mut tags = Vec::new();
    for _ in 0..5 {
        tags.push(greedy.next().await.tag);
    }
    let held = until(&mut queue, "5 unacknowledged", |s| {
        s.messages() == 5 && s.in_flight() == Some(5)
    })
    .await;
    assert_eq!(
        held.idleness(),
        Idleness::Unknown,
        "prefetch 10: who holds what is unknown"
    );

    for tag in tags {
        greedy.ack(tag).await;
    }
    until(&mut queue, "the one consumer idle", |s| {
        s.messages() == 0 && s.idleness() == Idleness::Idle(1)
    })
    .await;
    drop(greedy);

    // Three prefetch-1 workers; one message: one busy, two idle.
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(
            client(server, "counts")
                .await
                .consume("jobs", 1, true)
                .await,
        );
    }
    until(&mut queue, "3 idle consumers", |s| {
        s.messages() == 0 && s.idleness() == Idleness::Idle(3)
    })
    .await;
    producer.publish("jobs", b"one").await;
    let busy = until(&mut queue, "1 in flight, 2 idle", |s| {
        s.messages() == 1 && s.in_flight() == Some(1) && s.idleness() == Idleness::Idle(2)
    })
    .await;
    assert_eq!(busy.idle_workers(3), Some(2));

    // A consumer with automatic acknowledgement may be busy unseen.
    let _auto = client(server, "counts")
        .await
        .consume("jobs", 1, false)
        .await;
    until(&mut queue, "idleness unknown", |s| {
        s.idleness() == Idleness::Unknown
    })
    .await;
    drop(workers);
}

#[tokio::test]
async fn a_short_poll_is_one_declare_and_one_management_get() {
    let server = vhost("calls");
    client(server, "calls").await.declare("jobs").await;
    let mut queue = adapter(server, "calls", "jobs");
    queue.poll(SHORT).await.unwrap();
    let first = queue.calls();
    assert_eq!(
        (
            first.connections,
            first.channels,
            first.declares,
            first.management_gets
        ),
        (1, 1, 1, 1)
    );
    for _ in 0..3 {
        queue.poll(SHORT).await.unwrap();
    }
    let after = queue.calls();
    assert_eq!((after.connections, after.channels), (1, 1), "{after:?}");
    assert_eq!((after.declares, after.management_gets), (4, 4));
    assert_eq!(queue.snapshot().await.unwrap().messages(), 0);
}

#[tokio::test]
async fn the_wake_up_sees_the_first_message_within_a_second_and_never_touches_it() {
    let server = vhost("wake");
    let producer = client(server, "wake").await;
    producer.declare("jobs").await;
    let mut queue = adapter(server, "wake", "jobs");
    let poll = tokio::spawn(async move {
        let snapshot = queue
            .poll(wake_up(Duration::from_secs(20), Duration::from_secs(20)))
            .await;
        (snapshot, Instant::now(), queue)
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !poll.is_finished(),
        "the wake-up returned on an empty queue"
    );
    let published = Instant::now();
    for body in [&b"first"[..], b"second", b"third"] {
        producer.publish("jobs", body).await;
    }
    let (snapshot, woke, queue) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the wake-up did not return")
        .unwrap();
    let snapshot = snapshot.unwrap();
    let latency = woke.duration_since(published);
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    assert!(snapshot.messages() >= 1, "{snapshot:?}");
    assert_eq!(snapshot.idleness(), Idleness::Unknown);
    let calls = queue.calls();
    assert_eq!(calls.management_gets, 0, "a wake-up only declares");
    assert!(calls.declares >= 3, "{calls:?}");

    // Nothing was delivered: no deliver, get or redeliver counted.
    let stats = message_stats(server, "wake", "jobs");
    for counter in ["deliver", "\"get", "redeliver", "ack"] {
        assert!(!stats.contains(counter), "{counter} in {stats}");
    }
    // A worker gets all three, in order, first deliveries.
    let mut worker = client(server, "wake").await.consume("jobs", 10, true).await;
    for expected in [&b"first"[..], b"second", b"third"] {
        let delivery = worker.next().await;
        assert_eq!(delivery.body, expected, "order changed");
        assert!(!delivery.redelivered, "redelivered after the wake-up");
        worker.ack(delivery.tag).await;
    }
    assert!(worker.nothing_within(Duration::from_millis(300)).await);
}

#[tokio::test]
async fn the_wake_up_waits_out_the_long_poll_on_an_empty_queue() {
    let server = vhost("sleepy");
    client(server, "sleepy").await.declare("jobs").await;
    let mut queue = adapter(server, "sleepy", "jobs");
    let started = Instant::now();
    let snapshot = queue
        .poll(wake_up(Duration::from_secs(1), Duration::from_secs(20)))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(snapshot.messages(), 0);
    let calls = queue.calls();
    // One declare per 200 ms, then the short poll's declare and GET.
    assert!((5..=8).contains(&calls.declares), "{calls:?}");
    assert_eq!(calls.management_gets, 1, "{calls:?}");
    assert_eq!((calls.connections, calls.channels), (1, 1));
}

#[tokio::test]
async fn consumers_on_the_queue_cut_the_wake_up_to_the_short_poll() {
    let server = vhost("watched");
    let producer = client(server, "watched").await;
    producer.declare("jobs").await;
    // Someone else's worker: messages go straight to it, never ready.
    let mut other = client(server, "watched")
        .await
        .consume("jobs", 1, true)
        .await;
    let mut queue = adapter(server, "watched", "jobs");
    let started = Instant::now();
    let poll = queue.poll(wake_up(Duration::from_secs(20), Duration::from_secs(1)));
    let (snapshot, ()) = tokio::join!(poll, async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        producer.publish("jobs", b"taken").await;
    });
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let delivery = other.next().await;
    assert_eq!(delivery.body, b"taken");
    let snapshot = snapshot.unwrap();
    assert!(snapshot.messages() <= 1, "{snapshot:?}");
    // The short poll that follows counts the message held by that worker.
    until(&mut queue, "the unacknowledged message", |s| {
        s.messages() == 1 && s.in_flight() == Some(1)
    })
    .await;
    other.ack(delivery.tag).await;
}

#[tokio::test]
async fn a_missing_queue_reads_empty_until_it_is_created() {
    let server = vhost("missing");
    let mut queue = adapter(server, "missing", "later");
    let snapshot = queue.poll(SHORT).await.unwrap();
    assert_eq!(
        (
            snapshot.messages(),
            snapshot.in_flight(),
            snapshot.idleness()
        ),
        (0, Some(0), Idleness::Idle(0))
    );
    let started = Instant::now();
    let woke = queue
        .poll(wake_up(Duration::from_millis(600), Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(woke.messages(), 0);
    assert!(started.elapsed() >= Duration::from_millis(600));
    // Each 404 closes the channel: one channel per declare, one connection.
    let calls = queue.calls();
    assert_eq!(calls.channels, calls.declares, "{calls:?}");
    assert_eq!(calls.connections, 1, "{calls:?}");

    let producer = client(server, "missing").await;
    producer.declare("later").await;
    producer.publish("later", b"x").await;
    until(&mut queue, "the new queue's message", |s| s.messages() == 1).await;
}

#[tokio::test]
async fn a_missing_vhost_and_refused_credentials_are_errors() {
    let server = server();
    let mut queue = adapter(server, "no-such-vhost", "jobs");
    let error = queue.poll(SHORT).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::AccessRefused {
                operation: "connection.open",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("no-such-vhost"), "{error}");

    let uri: RabbitUri = server
        .uri_as("guest", "wrong", "/", "jobs")
        .parse()
        .unwrap();
    let mut queue = RabbitQueue::with_config(uri, fast());
    let error = queue.poll(SHORT).await.unwrap_err();
    assert!(
        matches!(error, Error::ManagementUnauthorized { status: 401, .. }),
        "{error:?}"
    );
    let error = queue.declare().await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    assert!(error.to_string().contains("password"), "{error}");
    assert!(!error.to_string().contains("wrong"), "the password leaked");
}

/// The least a deployment needs: a user tagged `monitoring` (or
/// `management`) with a permission entry on the vhost that matches nothing.
#[tokio::test]
async fn a_monitoring_user_without_permissions_is_enough() {
    let server = vhost("restricted");
    let producer = client(server, "restricted").await;
    producer.declare("jobs").await;
    producer.publish("jobs", b"x").await;
    for (user, tags) in [("watcher", "monitoring"), ("viewer", "management")] {
        server.add_user(user, "pw", tags).unwrap();
        server
            .set_permissions("restricted", user, "^$", "^$", "^$")
            .unwrap();
        let uri: RabbitUri = server
            .uri_as(user, "pw", "restricted", "jobs")
            .parse()
            .unwrap();
        let mut queue = RabbitQueue::with_config(uri, fast());
        until(&mut queue, "the message", |s| s.messages() == 1).await;
        let woke = queue
            .poll(wake_up(Duration::from_secs(5), Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(woke.messages(), 1, "{user}");
    }
    // The restriction is real: that user may not consume.
    let watcher = client_as(server, "watcher", "pw", "restricted").await;
    let refused = watcher
        .channel
        .basic_consume_rx(BasicConsumeArguments::new("jobs", "").finish())
        .await;
    assert!(refused.is_err(), "a user with ^$ permissions consumed");

    // Without a tag the management API refuses it.
    server.add_user("untagged", "pw", "").unwrap();
    server
        .set_permissions("restricted", "untagged", "^$", "^$", "^$")
        .unwrap();
    let uri: RabbitUri = server
        .uri_as("untagged", "pw", "restricted", "jobs")
        .parse()
        .unwrap();
    let error = RabbitQueue::with_config(uri, fast())
        .poll(SHORT)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::ManagementUnauthorized { status: 401, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("monitoring"), "{error}");
}

#[tokio::test]
async fn the_arrival_rate_follows_the_publish_counter() {
    let server = vhost("rate");
    let producer = client(server, "rate").await;
    producer.declare("jobs").await;
    producer.publish("jobs", b"warm").await;
    let mut queue = adapter(server, "rate", "jobs");
    published(&mut queue, 1).await;
    // The counter exists once a message was published: the first sample.
    let first = queue.poll(SHORT).await.unwrap();
    assert_eq!(first.messages_sent_per_minute(), None, "one sample");
    for _ in 0..12 {
        producer.publish("jobs", b"j").await;
    }
    published(&mut queue, 13).await;
    // 12 more within the 60 s window: 12 per minute (no extrapolation).
    let counted = queue.poll(SHORT).await.unwrap();
    assert_eq!(counted.messages_sent_per_minute(), Some(12.0));
    assert_eq!(counted.messages(), 13);
}

#[tokio::test]
async fn the_oldest_age_comes_from_the_head_timestamp_when_asked() {
    let server = vhost("aged");
    let producer = client(server, "aged").await;
    producer.declare("jobs").await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    producer
        .publish_with(
            "jobs",
            b"old",
            BasicProperties::default()
                .with_timestamp(now.as_secs() - 30)
                .finish(),
        )
        .await;
    producer.publish("jobs", b"no timestamp").await;
    let mut queue = adapter(server, "aged", "jobs");
    let asking = PollRequest {
        oldest_age: true,
        ..SHORT
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let aged = loop {
        let snapshot = queue.poll(asking).await.unwrap();
        if snapshot.oldest_age().is_some() {
            break snapshot;
        }
        assert!(Instant::now() < deadline, "no age: {snapshot:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let age = aged.oldest_age().unwrap();
    assert!(
        age >= Duration::from_secs(30) && age < Duration::from_secs(40),
        "{age:?}"
    );
    assert_eq!(queue.poll(SHORT).await.unwrap().oldest_age(), None);
}

/// The poller may drop a wake-up poll mid-call (replicas came back): the
/// connection stays usable, and the next poll counts right.
#[tokio::test]
async fn a_cancelled_wake_up_leaves_the_adapter_usable() {
    let server = vhost("cancel");
    let producer = client(server, "cancel").await;
    producer.declare("jobs").await;
    let mut queue = adapter(server, "cancel", "jobs");
    for wait in [5, 50, 250] {
        let cancelled = tokio::time::timeout(
            Duration::from_millis(wait),
            queue.poll(wake_up(Duration::from_secs(20), Duration::from_secs(20))),
        )
        .await;
        assert!(cancelled.is_err(), "the wake-up returned on an empty queue");
    }
    producer.publish("jobs", b"x").await;
    until(&mut queue, "the message", |s| s.messages() == 1).await;
    assert_eq!(queue.calls().connections, 1, "{:?}", queue.calls());
}

#[tokio::test]
async fn recovers_from_a_server_restart() {
    let mut server = start();
    let producer = client(&server, "/").await;
    producer.declare("durable").await;
    producer.publish("durable", b"before").await;
    let mut queue = adapter(&server, "/", "durable");
    until(&mut queue, "the message", |s| s.messages() == 1).await;

    // A poller with a short schedule beside it, marking its snapshot stale.
    let uri = server.uri("/", "durable");
    let mut config = PollerConfig::new(Duration::from_millis(200), Duration::from_secs(1));
    config.stale_after = Duration::from_millis(600);
    let registry = Registry::new();
    let source = adapter(&server, "/", "durable");
    let mut subscription = registry
        .subscribe(&uri, config, Some(1), || Ok::<_, Error>(source))
        .unwrap();
    subscription.changed().await.unwrap();

    server.stop();
    let started = Instant::now();
    let error = queue.poll(SHORT).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Connect { .. }
                | Error::Amqp { .. }
                | Error::Timeout { .. }
                | Error::ManagementRequest { .. }
        ),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "no hang while down"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !subscription.latest().unwrap().is_stale() {
        assert!(Instant::now() < deadline, "never marked stale");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(subscription.observation().last_error.is_some());

    server.restart().unwrap();
    // The durable queue survived (its message, published without
    // confirms, may not have reached the disk before the kill).
    // A publish before the node has recovered the queue is unroutable and
    // dropped (no confirms): publish once a poll (a passive declare) finds
    // the queue again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue.poll(SHORT).await.is_err() {
        assert!(Instant::now() < deadline, "the queue never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Even then a publish without confirms was seen lost once (the poll's
    // passive declare answered before the queue took messages again): a
    // publish not counted within 5 s is sent again; a lost one never shows
    // up later, so the queue ends with one message.
    let producer = client(&server, "/").await;
    let mut counted = false;
    for _ in 0..3 {
        producer.publish("durable", b"after the restart").await;
        let counting = Instant::now() + Duration::from_secs(5);
        while Instant::now() < counting {
            if queue.poll(SHORT).await.is_ok_and(|s| s.messages() >= 1) {
                counted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if counted {
            break;
        }
    }
    assert!(counted, "no publish after the restart was ever counted");
    until(&mut queue, "the message after the restart", |s| {
        s.messages() == 1
    })
    .await;
    assert!(queue.calls().connections >= 2, "{:?}", queue.calls());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let latest = subscription.latest().unwrap();
        if !latest.is_stale() && latest.messages() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the poller did not recover: {latest:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(subscription);

    // The wake-up works on the new connection too.
    let mut worker = client(&server, "/").await.consume("durable", 1, true).await;
    let delivery = worker.next().await;
    worker.ack(delivery.tag).await;
    until(&mut queue, "an empty queue", |s| s.messages() == 0).await;
    drop(worker);
    let poll = tokio::spawn(async move {
        queue
            .poll(wake_up(Duration::from_secs(10), Duration::from_secs(10)))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    producer.publish("durable", b"after").await;
    let snapshot = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.messages(), 1);
}

/// Every 404 costs amqprs a channel id it never gives back: the adapter
/// replaces the connection once half of the ids are gone, long before they
/// run out (RabbitMQ allows 2047 channels per connection).
#[tokio::test]
async fn a_missing_queue_never_exhausts_the_channel_ids() {
    let server = vhost("exhaust");
    let mut queue = adapter(server, "exhaust", "absent");
    for _ in 0..1_100 {
        assert_eq!(queue.declare().await.unwrap(), None);
    }
    let calls = queue.calls();
    assert_eq!(calls.declares, 1_100);
    assert_eq!(calls.connections, 2, "{calls:?}");
}
