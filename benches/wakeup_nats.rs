//! Wake-up latency and API cost of the NATS JetStream adapter, on a real
//! `nats-server -js` (a plain program: `cargo bench -p wpa-benches --bench
//! wakeup_nats`).
//!
//! 1. Latency: the poller and the reconcile step run with the target at 0
//!    replicas and an empty durable pull consumer, at the default poll
//!    settings (20 s short and long polls). Each trial waits until the
//!    poller's wake-up subscription is at the server (`/connz?subs=1`),
//!    waits a little more (varied per trial), publishes one message from an
//!    independent JetStream connection and times publish → the reconcile
//!    step that scales up. A worker then fetches and acknowledges the
//!    message and the target goes back to 0. `WPA_BENCH_TRIALS` (default
//!    60) trials; p50 and p99.
//! 2. Cost: the server's own count of JetStream API requests
//!    (`$JS.API.INFO` `api.total`, less the bench's own calls) over
//!    `WPA_BENCH_WINDOW_SECS` (default 60) seconds in three states: idle at
//!    0 replicas (wake-up polls), idle with workers, and busy (messages
//!    pending, workers running, the arrival rate asked for). The adapter's
//!    own count is printed beside it.
//!
//! Run without `--bench` (as `cargo test --all-targets` does), it is a
//! 3-trial smoke run.

use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use wpa_benches::{MemoryTarget, RunMode, env_number, ms, percentile};
use wpa_core::{MaxDisruption, ScaleOperation, WpaSpec, reconcile};
use wpa_nats::testing::NatsServer;
use wpa_nats::{NatsQueue, NatsUri};
use wpa_poller::{PollerConfig, Registry};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SUBJECT: &str = "bench.jobs";

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

async fn bench(full: bool) -> BenchResult<()> {
    let server = NatsServer::start()?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let stream = js
        .create_stream(stream::Config {
            name: "BENCH".to_owned(),
            subjects: vec![SUBJECT.to_owned()],
            ..stream::Config::default()
        })
        .await?;
    let workers: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("workers".to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..consumer::pull::Config::default()
        })
        .await?;

    let uri = server.uri("BENCH", "workers");
    let spec = WpaSpec::new(0, 10, 1, 0.0, MaxDisruption::DEFAULT)?;
    let delay = Duration::from_secs(600);
    let registry = Registry::new();
    let source = NatsQueue::new(uri.parse::<NatsUri>()?);
    let adapter_calls = source.api_calls();
    let mut subscription = registry.subscribe(&uri, PollerConfig::default(), Some(0), || {
        Ok::<_, wpa_nats::Error>(source)
    })?;
    let mut target = MemoryTarget(0);

    let trials = if full {
        env_number("WPA_BENCH_TRIALS", 60)
    } else {
        3
    };
    let mut latencies = Vec::new();
    for trial in 0..trials {
        wait_until_subscribed(&server).await?;
        tokio::time::sleep(Duration::from_millis(trial * 37 % 200)).await;
        let published_at = Instant::now();
        js.publish(SUBJECT, "job".into()).await?.await?;
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
        latencies.push(scaled_at.duration_since(published_at));
        // Reset: a worker takes the message, the target goes back to zero.
        let mut batch = workers
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages()
            .await?;
        match batch.next().await {
            Some(message) => message?.double_ack().await?,
            None => return Err("the message was not delivered to the worker".into()),
        }
        target.0 = 0;
        subscription.set_replicas(0);
    }
    latencies.sort_unstable();
    println!(
        "wake-up latency, publish -> scale-up decision, {} trials at 20 s short/long polls: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (goal p99 < 1000 ms; reference WPA: no NATS support)",
        latencies.len(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );

    if !full {
        return Ok(());
    }
    let window = Duration::from_secs(env_number("WPA_BENCH_WINDOW_SECS", 60));
    // Idle at zero: wake-up polls. Start half a cycle in.
    wait_until_subscribed(&server).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_zero = calls_per_minute(&js, &adapter_calls, window).await?;
    // Idle with workers: short polls.
    subscription.set_replicas(2);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_running = calls_per_minute(&js, &adapter_calls, window).await?;
    // Busy: messages pending, workers running, the rate asked for (an
    // unfiltered consumer: one STREAM.INFO more per poll).
    subscription.set_needs_arrival_rate(true);
    for _ in 0..10 {
        js.publish(SUBJECT, "job".into()).await?.await?;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let busy = calls_per_minute(&js, &adapter_calls, window).await?;
    println!(
        "JetStream API requests per queue per minute over {} s (server count / adapter count): idle at 0 replicas {:.1} / {:.1}, idle with workers {:.1} / {:.1}, busy with the rate asked {:.1} / {:.1}",
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

/// Waits until the poller's wake-up subscription is at the server.
async fn wait_until_subscribed(server: &NatsServer) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let connz: serde_json::Value = serde_json::from_str(&server.monitor("/connz?subs=1")?)?;
        let subscribed = connz["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["subscriptions_list"].as_array())
            .flatten()
            .any(|s| s.as_str() == Some(SUBJECT));
        if subscribed {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the poller never subscribed for a wake-up".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The account's JetStream API request count (`$JS.API.INFO` counts
/// itself).
async fn api_total(js: &jetstream::Context) -> BenchResult<u64> {
    let reply = js.client().request("$JS.API.INFO", "".into()).await?;
    let info: serde_json::Value = serde_json::from_slice(&reply.payload)?;
    info["api"]["total"]
        .as_u64()
        .ok_or_else(|| "no api.total in $JS.API.INFO".into())
}

/// JetStream API requests per minute over `window`: the server's count
/// less this function's closing `$JS.API.INFO`, and the adapter's count.
async fn calls_per_minute(
    js: &jetstream::Context,
    adapter: &wpa_nats::ApiCounter,
    window: Duration,
) -> BenchResult<(f64, f64)> {
    let before = api_total(js).await?;
    let adapter_before = adapter.get();
    tokio::time::sleep(window).await;
    let after = api_total(js).await?;
    let adapter_after = adapter.get();
    let per_minute = |n: u64| n as f64 * 60.0 / window.as_secs_f64();
    Ok((
        per_minute(after.saturating_sub(before).saturating_sub(1)),
        per_minute(adapter_after - adapter_before),
    ))
}
