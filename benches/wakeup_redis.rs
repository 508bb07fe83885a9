//! Wake-up latency and command cost of the Redis adapter, on a real
//! redis-server (a plain program: `cargo bench -p wpa-benches --bench
//! wakeup_redis`).
//!
//! For three layouts (a list: `BLMOVE` wake-up; a stream with a consumer
//! group: `XREAD BLOCK`; BullMQ: probes every 200 ms):
//!
//! 1. Latency: the poller and the reconcile step run with the target at 0
//!    replicas and an empty queue, at the default poll settings (20 s short
//!    and long polls). Each trial waits until the poller is in its wake-up
//!    poll (blocked on the server, or probing), waits a little more (varied
//!    per trial), adds one message from an independent client and times
//!    add → the reconcile step that scales up. A worker then takes the
//!    message and the target goes back to 0. `WPA_BENCH_TRIALS` (default
//!    60) trials per layout; p50 and p99.
//! 2. Cost: the server's own `INFO commandstats` (less the bench's `INFO`
//!    calls) over `WPA_BENCH_WINDOW_SECS` (default 60) seconds in three
//!    states: idle at 0 replicas (wake-up polls), idle with workers, and
//!    busy (messages waiting, workers running).
//!
//! Run without `--bench` (as `cargo test --all-targets` does), it is a
//! 3-trial smoke run.

use std::time::{Duration, Instant, SystemTime};

use redis::aio::MultiplexedConnection;
use wpa_benches::{MemoryTarget, RunMode, env_number, ms, percentile};
use wpa_core::{MaxDisruption, ScaleOperation, WpaSpec, reconcile};
use wpa_poller::{PollerConfig, Registry};
use wpa_redis::testing::RedisServer;
use wpa_redis::{RedisQueue, RedisUri};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BenchResult<()> {
    let mode = RunMode::from_args();
    if mode == RunMode::List {
        return Ok(());
    }
    let full = mode == RunMode::Full;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(full))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Stream,
    Bullmq,
}

impl Kind {
    fn layout(self) -> &'static str {
        match self {
            Kind::List => "list/bench-list",
            Kind::Stream => "stream/bench-stream?group=workers",
            Kind::Bullmq => "bullmq/bench",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::List => "list (BLMOVE key key RIGHT RIGHT)",
            Kind::Stream => "stream (XREAD BLOCK)",
            Kind::Bullmq => "bullmq (LLEN/ZCARD probe every 200 ms)",
        }
    }
}

async fn command(conn: &mut MultiplexedConnection, args: &[&str]) -> BenchResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    Ok(cmd.query_async(conn).await?)
}

/// A producer adds one message the way the layout's producers do.
async fn add(conn: &mut MultiplexedConnection, kind: Kind) -> BenchResult<()> {
    match kind {
        Kind::List => command(conn, &["LPUSH", "bench-list", "job"]).await?,
        Kind::Stream => command(conn, &["XADD", "bench-stream", "*", "job", "1"]).await?,
        Kind::Bullmq => {
            let id = command(conn, &["INCR", "bull:bench:id"]).await?;
            let id: i64 = redis::from_redis_value(id)?;
            command(conn, &["LPUSH", "bull:bench:wait", &id.to_string()]).await?
        }
    };
    Ok(())
}

/// A worker takes every message and finishes it.
async fn drain(conn: &mut MultiplexedConnection, kind: Kind) -> BenchResult<()> {
    match kind {
        Kind::List => command(conn, &["DEL", "bench-list"]).await?,
        Kind::Stream => {
            let reply = command(
                conn,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "workers",
                    "w",
                    "COUNT",
                    "1000",
                    "STREAMS",
                    "bench-stream",
                    ">",
                ],
            )
            .await?;
            for id in wpa_redis::reply::entry_ids(&stream_entries(&reply))? {
                command(conn, &["XACK", "bench-stream", "workers", &id.to_string()]).await?;
            }
            redis::Value::Nil
        }
        Kind::Bullmq => command(conn, &["DEL", "bull:bench:wait", "bull:bench:active"]).await?,
    };
    Ok(())
}

/// The entries of the one stream of an `XREADGROUP` reply.
fn stream_entries(reply: &redis::Value) -> redis::Value {
    match reply {
        redis::Value::Array(streams) => match streams.first() {
            Some(redis::Value::Array(parts)) => parts.get(1).cloned().unwrap_or(redis::Value::Nil),
            _ => redis::Value::Nil,
        },
        _ => redis::Value::Nil,
    }
}

async fn info_number(
    conn: &mut MultiplexedConnection,
    section: &str,
    field: &str,
) -> BenchResult<u64> {
    let info: String = redis::from_redis_value(command(conn, &["INFO", section]).await?)?;
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// Commands executed so far, less `INFO` (the bench's own).
async fn total_commands(conn: &mut MultiplexedConnection) -> BenchResult<u64> {
    let info: String = redis::from_redis_value(command(conn, &["INFO", "commandstats"]).await?)?;
    Ok(info
        .lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter(|line| !line.starts_with("info:"))
        .filter_map(|line| {
            line.split(',')
                .find_map(|kv| kv.split(':').next_back()?.strip_prefix("calls="))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum())
}

async fn commands_per_minute(
    conn: &mut MultiplexedConnection,
    window: Duration,
) -> BenchResult<f64> {
    let before = total_commands(conn).await?;
    tokio::time::sleep(window).await;
    let after = total_commands(conn).await?;
    #[allow(clippy::cast_precision_loss)]
    let executed = after.saturating_sub(before) as f64;
    Ok(executed * 60.0 / window.as_secs_f64())
}

/// Waits until the poller is in its wake-up poll: blocked on the server,
/// or (polling) a little after the target went to 0.
async fn wait_for_wake_up(conn: &mut MultiplexedConnection, kind: Kind) -> BenchResult<()> {
    if kind == Kind::Bullmq {
        tokio::time::sleep(Duration::from_millis(250)).await;
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_number(conn, "clients", "blocked_clients").await? != 1 {
        if Instant::now() > deadline {
            let blocked = info_number(conn, "clients", "blocked_clients").await?;
            let clients = info_number(conn, "clients", "connected_clients").await?;
            return Err(format!(
                "the poller never blocked in its wake-up ({blocked} blocked, {clients} connected)"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

async fn bench(full: bool) -> BenchResult<()> {
    let server = RedisServer::start()?;
    let client = redis::Client::open(server.url())?;
    let mut producer = client.get_multiplexed_async_connection().await?;
    let mut worker = client.get_multiplexed_async_connection().await?;
    let mut observer = client.get_multiplexed_async_connection().await?;
    command(
        &mut producer,
        &[
            "XGROUP",
            "CREATE",
            "bench-stream",
            "workers",
            "$",
            "MKSTREAM",
        ],
    )
    .await?;
    let spec = WpaSpec::new(0, 10, 1, 0.0, MaxDisruption::DEFAULT)?;
    let delay = Duration::from_secs(600);
    let trials = if full {
        env_number("WPA_BENCH_TRIALS", 60)
    } else {
        3
    };
    let window = Duration::from_secs(env_number("WPA_BENCH_WINDOW_SECS", 60));

    for kind in [Kind::List, Kind::Stream, Kind::Bullmq] {
        let uri = server.uri(kind.layout());
        let parsed: RedisUri = uri.parse()?;
        let registry = Registry::new();
        let mut subscription =
            registry.subscribe(&uri, PollerConfig::default(), Some(0), || {
                Ok::<_, wpa_redis::Error>(RedisQueue::new(parsed))
            })?;
        let mut target = MemoryTarget(0);
        let mut latencies = Vec::new();
        for trial in 0..trials {
            if let Err(error) = wait_for_wake_up(&mut observer, kind).await {
                eprintln!("{:?}", subscription.observation());
                return Err(error);
            }
            tokio::time::sleep(Duration::from_millis(trial * 37 % 200)).await;
            let added_at = Instant::now();
            add(&mut producer, kind).await?;
            let scaled_at = loop {
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
            latencies.push(scaled_at.duration_since(added_at));
            drain(&mut worker, kind).await?;
            target.0 = 0;
            subscription.set_replicas(0);
            // Let the poller see the empty queue before the next trial.
            tokio::time::timeout(Duration::from_secs(25), async {
                while subscription.latest().is_none_or(|s| s.messages() > 0) {
                    let _ = subscription.changed().await;
                }
            })
            .await?;
        }
        latencies.sort_unstable();
        println!(
            "{}: wake-up latency, add -> scale-up decision, {} trials at 20 s short/long polls: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            kind.name(),
            latencies.len(),
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(latencies.last().copied().unwrap_or_default()),
        );
        if full {
            // Idle at zero: the poller is in wake-up polls. Start half a
            // cycle in, so the window holds whole cycles.
            wait_for_wake_up(&mut observer, kind).await?;
            tokio::time::sleep(Duration::from_secs(10)).await;
            let idle_zero = commands_per_minute(&mut observer, window).await?;
            subscription.set_replicas(2);
            tokio::time::sleep(Duration::from_secs(10)).await;
            let idle_running = commands_per_minute(&mut observer, window).await?;
            for _ in 0..10 {
                add(&mut producer, kind).await?;
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            let busy = commands_per_minute(&mut observer, window).await?;
            println!(
                "{}: Redis commands per queue per minute over {} s: idle at 0 replicas {idle_zero:.1}, idle with workers {idle_running:.1}, busy {busy:.1}",
                kind.name(),
                window.as_secs()
            );
            drain(&mut worker, kind).await?;
        }
        drop(subscription);
        // The poller task ends with its subscription; let it go.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
