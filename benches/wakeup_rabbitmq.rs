//! Wake-up latency and server calls of the RabbitMQ adapter, on a real
//! RabbitMQ node (a plain program: `cargo bench -p wpa-benches --bench
//! wakeup_rabbitmq`).
//!
//! The adapter talks to the node through two counting proxies: one splits
//! the AMQP stream from the adapter into frames and counts its method
//! frames (passive `queue.declare`, `channel.open`, the handshake, ...;
//! heartbeats are not calls), the other counts the HTTP requests to the
//! management API. Producers and consumers talk to the node directly.
//!
//! 1. Latency: the poller and the reconcile step run with the target at 0
//!    replicas and an empty queue, at the default poll settings (20 s short
//!    and long polls). Each trial waits until the poller is in its wake-up
//!    loop (passive declares reach the proxy), waits a little more (varied
//!    per trial), publishes one message and times publish -> the reconcile
//!    step that scales up. A worker (started after the scale-up, as a pod
//!    would be: a consumer on the queue would take the message before it
//!    is ever ready) then takes it with `basic.get`, and the target goes
//!    back to 0 once the management API shows the queue empty.
//!    `WPA_BENCH_TRIALS` (default 60) trials; p50, p99.
//! 2. Cost: calls per minute over `WPA_BENCH_WINDOW_SECS` (default 60)
//!    seconds in three states: idle at 0 replicas (wake-up polls), idle
//!    with workers, and busy (messages ready, workers running).
//!
//! The node samples its statistics every 250 ms at 1 s granularity (the
//! testing default) so that a trial need not wait out RabbitMQ's 5 s
//! sampling before the queue reads empty again; the calls do not depend
//! on it.
//!
//! Run without `--bench` (as `cargo test --all-targets` does), it is a
//! 3-trial smoke run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use amqprs::BasicProperties;
use amqprs::channel::{BasicGetArguments, BasicPublishArguments, Channel, QueueDeclareArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wpa_benches::{MemoryTarget, RunMode, env_number, ms, percentile};
use wpa_core::{MaxDisruption, ScaleOperation, WpaSpec, reconcile};
use wpa_poller::{PollerConfig, Registry};
use wpa_rabbitmq::testing::RabbitMqServer;
use wpa_rabbitmq::{RabbitQueue, RabbitUri};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const QUEUE: &str = "bench";
/// AMQP `queue.declare`: class 50, method 10.
const QUEUE_DECLARE: (u16, u16) = (50, 10);

fn main() -> BenchResult<()> {
    let mode = RunMode::from_args();
    if mode == RunMode::List {
        return Ok(());
    }
    let full = mode == RunMode::Full;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(bench(full))
}

/// What the proxies counted.
#[derive(Default)]
struct Counts {
    /// AMQP method frames from the adapter (every server call).
    amqp_methods: AtomicU64,
    /// Of which passive `queue.declare`.
    declares: AtomicU64,
    /// HTTP requests to the management API.
    http_requests: AtomicU64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.amqp_methods.load(Ordering::SeqCst) + self.http_requests.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    Amqp,
    Http,
}

/// Splits what the client sends into calls and counts them.
struct Splitter {
    protocol: Protocol,
    buffer: Vec<u8>,
    header_seen: bool,
}

impl Splitter {
    fn feed(&mut self, bytes: &[u8], counts: &Counts) {
        self.buffer.extend_from_slice(bytes);
        match self.protocol {
            Protocol::Amqp => self.amqp(counts),
            Protocol::Http => self.http(counts),
        }
    }

    /// `AMQP\0\0\x09\x01`, then frames: type, channel (2), size (4),
    /// payload, 0xCE. A method frame's payload starts with its class and
    /// method ids.
    fn amqp(&mut self, counts: &Counts) {
        if !self.header_seen {
            if self.buffer.len() < 8 {
                return;
            }
            self.buffer.drain(..8);
            self.header_seen = true;
        }
        while self.buffer.len() >= 7 {
            let size = u32::from_be_bytes([
                self.buffer[3],
                self.buffer[4],
                self.buffer[5],
                self.buffer[6],
            ]) as usize;
            let total = 7 + size + 1;
            if self.buffer.len() < total {
                return;
            }
            if self.buffer[0] == 1 && size >= 4 {
                let class = u16::from_be_bytes([self.buffer[7], self.buffer[8]]);
                let method = u16::from_be_bytes([self.buffer[9], self.buffer[10]]);
                counts.amqp_methods.fetch_add(1, Ordering::SeqCst);
                if (class, method) == QUEUE_DECLARE {
                    counts.declares.fetch_add(1, Ordering::SeqCst);
                }
            }
            self.buffer.drain(..total);
        }
    }

    /// Request heads (the adapter's GETs have no body).
    fn http(&mut self, counts: &Counts) {
        while let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            if self.buffer.starts_with(b"GET ") {
                counts.http_requests.fetch_add(1, Ordering::SeqCst);
            }
            self.buffer.drain(..end + 4);
        }
    }
}

/// A proxy on a free loopback port to `upstream`, counting into `counts`.
async fn proxy(
    upstream: SocketAddr,
    protocol: Protocol,
    counts: Arc<Counts>,
) -> BenchResult<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counts = Arc::clone(&counts);
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    let _ = client_write.shutdown().await;
                });
                let mut splitter = Splitter {
                    protocol,
                    buffer: Vec::new(),
                    header_seen: false,
                };
                let mut chunk = vec![0_u8; 16 * 1024];
                loop {
                    let read = match client_read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => read,
                    };
                    splitter.feed(&chunk[..read], &counts);
                    if server_write.write_all(&chunk[..read]).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
                let _ = down.await;
            });
        }
    });
    Ok(address)
}

async fn channel(server: &RabbitMqServer) -> BenchResult<(Connection, Channel)> {
    let arguments = OpenConnectionArguments::new("127.0.0.1", server.amqp_port(), "guest", "guest");
    let connection = Connection::open(&arguments).await?;
    let channel = connection.open_channel(None).await?;
    Ok((connection, channel))
}

async fn bench(full: bool) -> BenchResult<()> {
    let server = RabbitMqServer::start()?;
    let (_producer_connection, producer) = channel(&server).await?;
    producer
        .queue_declare(QueueDeclareArguments::durable_client_named(QUEUE))
        .await?;
    let (_worker_connection, worker) = channel(&server).await?;
    let counts = Arc::new(Counts::default());
    let amqp = proxy(
        format!("127.0.0.1:{}", server.amqp_port()).parse()?,
        Protocol::Amqp,
        Arc::clone(&counts),
    )
    .await?;
    let http = proxy(
        format!("127.0.0.1:{}", server.management_port()).parse()?,
        Protocol::Http,
        Arc::clone(&counts),
    )
    .await?;
    let uri = format!("amqp://guest:guest@{amqp}/%2F/{QUEUE}?management=http://{http}");
    let parsed: RabbitUri = uri.parse()?;
    let mut observer = RabbitQueue::new(server.uri("/", QUEUE).parse()?);

    let spec = WpaSpec::new(0, 10, 1, 0.0, MaxDisruption::DEFAULT)?;
    let delay = Duration::from_secs(600);
    let registry = Registry::new();
    let mut subscription = registry.subscribe(&uri, PollerConfig::default(), Some(0), || {
        Ok::<_, wpa_rabbitmq::Error>(RabbitQueue::new(parsed))
    })?;
    let mut target = MemoryTarget(0);

    let trials = if full {
        env_number("WPA_BENCH_TRIALS", 60)
    } else {
        3
    };
    let mut latencies = Vec::new();
    for trial in 0..trials {
        wait_for_declares(&counts, 2).await?;
        tokio::time::sleep(Duration::from_millis(trial * 37 % 200)).await;
        let published = Instant::now();
        producer
            .basic_publish(
                BasicProperties::default(),
                b"job".to_vec(),
                BasicPublishArguments::new("", QUEUE),
            )
            .await?;
        let scaled = loop {
            subscription.changed().await?;
            let plan = reconcile(
                &mut subscription,
                &mut target,
                &spec,
                delay,
                None,
                SystemTime::now(),
            )
            .await?;
            subscription.set_replicas(target.0);
            if plan.operation == ScaleOperation::ScaleUp {
                break Instant::now();
            }
        };
        latencies.push(scaled.duration_since(published));
        // The worker takes it; back to zero once the queue reads empty.
        worker
            .basic_get(BasicGetArguments::new(QUEUE).no_ack(true).finish())
            .await?
            .ok_or("the message was not there")?;
        wait_until_empty(&mut observer).await?;
        target.0 = 0;
        subscription.set_replicas(0);
    }
    latencies.sort_unstable();
    println!(
        "wake-up latency, publish -> scale-up decision, {} trials at 20 s short/long polls: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (goal p99 < 1000 ms; passive declare every 200 ms)",
        latencies.len(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    if !full {
        return Ok(());
    }

    let window = Duration::from_secs(env_number("WPA_BENCH_WINDOW_SECS", 60));
    // Idle at zero: wake-up polls.
    wait_for_declares(&counts, 2).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_zero = per_minute(&counts, window).await;
    // Idle with workers: short polls.
    subscription.set_replicas(2);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_running = per_minute(&counts, window).await;
    // Busy: messages ready, workers running.
    for _ in 0..10 {
        producer
            .basic_publish(
                BasicProperties::default(),
                b"job".to_vec(),
                BasicPublishArguments::new("", QUEUE),
            )
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let busy = per_minute(&counts, window).await;
    println!(
        "server calls per queue per minute over {} s (AMQP methods + management GETs; passive declares): idle at 0 replicas {} ({}), idle with workers {} ({}), busy {} ({})",
        window.as_secs(),
        idle_zero.0,
        idle_zero.1,
        idle_running.0,
        idle_running.1,
        busy.0,
        busy.1,
    );
    drop(subscription);
    Ok(())
}

/// Waits until the adapter sends `count` more passive declares (the poller
/// is in its wake-up loop).
async fn wait_for_declares(counts: &Counts, count: u64) -> BenchResult<()> {
    let before = counts.declares.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while counts.declares.load(Ordering::SeqCst) < before + count {
        if Instant::now() > deadline {
            return Err("the poller never started its wake-up loop".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

async fn wait_until_empty(observer: &mut RabbitQueue) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = observer.management_stats().await?.ok_or("no queue")?;
        if stats.ready == Some(0) && stats.unacknowledged == Some(0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the queue never read empty".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls and passive declares per minute over `window`, as `"x.y"`.
async fn per_minute(counts: &Counts, window: Duration) -> (String, String) {
    let calls = counts.total();
    let declares = counts.declares.load(Ordering::SeqCst);
    tokio::time::sleep(window).await;
    let scale = 60.0 / window.as_secs_f64();
    (
        format!("{:.1}", (counts.total() - calls) as f64 * scale),
        format!(
            "{:.1} declares",
            (counts.declares.load(Ordering::SeqCst) - declares) as f64 * scale
        ),
    )
}
