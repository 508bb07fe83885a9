//! Shared by the real-server tests: a server, an independent client (the
//! redis crate, used as a producer or worker would), fast settings.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use wpa_poller::PollRequest;
use wpa_redis::testing::RedisServer;
use wpa_redis::{ClientConfig, QueueConfig, RedisQueue, RedisUri};

pub fn server() -> RedisServer {
    RedisServer::start().expect(
        "redis-server must be installed for these tests (Debian: apt-get install -y redis-server)",
    )
}

pub fn fast() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_secs(2),
        reconnect_attempts: 2,
        reconnect_initial_backoff: Duration::from_millis(20),
        reconnect_max_backoff: Duration::from_millis(100),
        ..ClientConfig::default()
    }
}

pub fn queue_at(uri: &str) -> RedisQueue {
    let uri: RedisUri = uri.parse().unwrap();
    RedisQueue::with_config(
        uri,
        QueueConfig {
            client: fast(),
            ..QueueConfig::default()
        },
    )
}

pub fn queue(server: &RedisServer, layout: &str) -> RedisQueue {
    queue_at(&server.uri(layout))
}

/// An independent client: redis-rs' own connection, as a user's producer
/// or worker would open it.
pub async fn client(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Runs one command on `conn`.
pub async fn run<T: redis::FromRedisValue>(conn: &mut MultiplexedConnection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match cmd.query_async(conn).await {
        Ok(value) => value,
        Err(error) => panic!("{args:?}: {error}"),
    }
}

pub const SHORT: PollRequest = PollRequest {
    wake_up: false,
    long_poll: Duration::from_secs(1),
    short_poll: Duration::from_secs(1),
    arrival_rate: false,
    oldest_age: false,
};

pub fn wake(long_poll: Duration) -> PollRequest {
    PollRequest {
        wake_up: true,
        long_poll,
        short_poll: long_poll,
        arrival_rate: false,
        oldest_age: false,
    }
}

/// One field of `INFO <section>`.
pub async fn info_field(conn: &mut MultiplexedConnection, section: &str, field: &str) -> String {
    let info: String = run(conn, &["INFO", section]).await;
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the server has `count` clients blocked in a command.
pub async fn wait_blocked(conn: &mut MultiplexedConnection, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let blocked: u64 = info_field(conn, "clients", "blocked_clients")
            .await
            .parse()
            .unwrap();
        if blocked == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {count} blocked clients (saw {blocked})"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Calls per command since the server started (`INFO commandstats`),
/// e.g. `{"llen": 3, "xinfo|groups": 1}`.
pub async fn command_calls(conn: &mut MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = run(conn, &["INFO", "commandstats"]).await;
    info.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// What changed between two `command_calls`, without the observer's own
/// `INFO` calls.
pub fn calls_between(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(name, _)| name.as_str() != "info")
        .filter_map(|(name, &calls)| {
            let delta = calls - before.get(name).copied().unwrap_or(0);
            (delta > 0).then(|| (name.clone(), delta))
        })
        .collect()
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}
