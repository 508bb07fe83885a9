//! Wake-up latency and command cost of the beanstalkd adapter, on a real
//! beanstalkd (a plain program: `cargo bench -p wpa-benches --bench
//! wakeup_beanstalkd`).
//!
//! 1. Latency: the poller and the reconcile step run with the target at 0
//!    replicas and an empty tube, at the default poll settings (20 s short
//!    and long polls). Each trial waits until the poller blocks in
//!    `reserve-with-timeout`, waits a little more (varied per trial), puts
//!    one job from an independent connection and times `put` → the
//!    reconcile step that scales up. The job is then deleted and the target
//!    set back to 0. `WPA_BENCH_TRIALS` (default 60) trials; p50 and p99.
//! 2. Cost: beanstalkd's own `cmd-*` counters (from `stats`, less the
//!    bench's own `stats` calls) over `WPA_BENCH_WINDOW_SECS` (default 60)
//!    seconds in three states: idle at 0 replicas (wake-up polls), idle with
//!    workers, and busy (jobs ready, workers running). The reference sends
//!    two `stats-tube` every 20 s in every state: 6 commands per minute.
//!
//! Run without `--bench` (as `cargo test --all-targets` does), it is a
//! 3-trial smoke run.

use std::time::{Duration, Instant, SystemTime};

use wpa_beanstalkd::testing::BeanstalkdServer;
use wpa_beanstalkd::{BeanstalkQueue, BeanstalkUri, Client, ClientConfig, Stats, TubeName};
use wpa_benches::{MemoryTarget, RunMode, env_number, ms, percentile};
use wpa_core::{MaxDisruption, ScaleOperation, WpaSpec, reconcile};
use wpa_poller::{PollerConfig, Registry};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BenchResult<()> {
    let mode = RunMode::from_args();
    if mode == RunMode::List {
        return Ok(());
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // program without it: then a 3-trial smoke run, no cost windows.
    let full = mode == RunMode::Full;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(full))
}

async fn bench(full: bool) -> BenchResult<()> {
    let server = BeanstalkdServer::start()?;
    let tube: TubeName = "bench".parse()?;
    let uri = server.uri(tube.as_str());
    let spec = WpaSpec::new(0, 10, 1, 0.0, MaxDisruption::DEFAULT)?;
    let delay = Duration::from_secs(600);
    let registry = Registry::new();
    let address: BeanstalkUri = uri.parse()?;
    let mut subscription = registry.subscribe(&uri, PollerConfig::default(), Some(0), || {
        Ok::<_, wpa_beanstalkd::Error>(BeanstalkQueue::new(address))
    })?;
    let mut target = MemoryTarget(0);
    let mut producer = Client::new(server.address(), ClientConfig::default());
    producer.set_used_tube(tube.clone()).await?;
    let mut worker = Client::new(server.address(), ClientConfig::default());
    worker.set_watched_tube(tube.clone()).await?;
    let mut observer = Client::new(server.address(), ClientConfig::default());

    let trials = if full {
        env_number("WPA_BENCH_TRIALS", 60)
    } else {
        3
    };
    let mut latencies = Vec::new();
    for trial in 0..trials {
        wait_for_waiting(&mut observer, &tube, 1).await?;
        tokio::time::sleep(Duration::from_millis(trial * 37 % 200)).await;
        let put_at = Instant::now();
        producer.put(100, 0, 60, b"job").await?;
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
        latencies.push(scaled_at.duration_since(put_at));
        // Reset: take the job away, scale back to zero.
        if let Some(job) = worker.reserve_with_timeout(5).await? {
            worker.delete(job.id).await?;
        }
        target.0 = 0;
        subscription.set_replicas(0);
    }
    latencies.sort_unstable();
    println!(
        "wake-up latency, put -> scale-up decision, {} trials at 20 s short/long polls: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (goal p99 < 1000 ms; reference 20 s typical, 40 s worst)",
        latencies.len(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );

    if !full {
        return Ok(());
    }
    let window = Duration::from_secs(env_number("WPA_BENCH_WINDOW_SECS", 60));
    // Idle at zero: the poller is in wake-up polls. Start the window half a
    // cycle in, so that it holds whole cycles rather than their edges.
    wait_for_waiting(&mut observer, &tube, 1).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_zero = commands_per_minute(&mut observer, window).await?;
    // Idle with workers.
    subscription.set_replicas(2);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_running = commands_per_minute(&mut observer, window).await?;
    // Busy: jobs ready, workers running.
    for _ in 0..10 {
        producer.put(100, 0, 60, b"job").await?;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let busy = commands_per_minute(&mut observer, window).await?;
    println!(
        "beanstalkd commands per queue per minute over {} s: idle at 0 replicas {idle_zero:.1}, idle with workers {idle_running:.1}, busy {busy:.1} (reference: 6.0 in every state)",
        window.as_secs()
    );
    drop(subscription);
    Ok(())
}

async fn wait_for_waiting(observer: &mut Client, tube: &TubeName, count: u64) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if observer
            .stats_tube(tube)
            .await?
            .is_some_and(|s| s.waiting == count)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the poller never blocked in reserve-with-timeout".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn total_commands(stats: &Stats) -> u64 {
    stats
        .iter()
        .filter(|(key, _)| key.starts_with("cmd-"))
        .filter_map(|(_, value)| value.parse::<u64>().ok())
        .sum()
}

/// Commands the server executed per minute over `window`, less this
/// function's own closing `stats` call (and the observer's wait loop, which
/// does not run meanwhile).
async fn commands_per_minute(observer: &mut Client, window: Duration) -> BenchResult<f64> {
    let before = total_commands(&observer.stats().await?);
    tokio::time::sleep(window).await;
    let after = total_commands(&observer.stats().await?);
    let executed = after.saturating_sub(before).saturating_sub(1);
    Ok(executed as f64 * 60.0 / window.as_secs_f64())
}
