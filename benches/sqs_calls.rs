#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
//! AWS API calls per queue-hour and wake-up latency of the SQS adapter, on a
//! real SQS-protocol server (`moto_server`, which must be on PATH) — a plain
//! program: `cargo bench -p wpa-benches --bench sqs_calls`.
//!
//! The adapter's clients talk to a small counting HTTP proxy on 127.0.0.1
//! that forwards SQS calls to moto and classifies each by its
//! `X-Amz-Target` header (SQS JSON protocol). CloudWatch (RPC v2 CBOR, a
//! path ending in `/operation/GetMetricData`, which moto does not serve) is
//! answered by the proxy itself with an empty, valid result: it still
//! counts as a call, and the 60 s cache behaves as after a real answer.
//! The bench's own producer and worker talk to moto directly and are not
//! counted.
//!
//! 1. Cost: calls in each state (empty at 0 workers; busy, i.e. messages
//!    visible and workers running; empty with workers running), with and
//!    without `secondsToProcessOneJob` (`SqsOptions::arrival_rate`;
//!    `idle_from_cloudwatch` on, as the controller runs it). Intervals are
//!    compressed 100 times (short poll 200 ms, CloudWatch cache 600 ms)
//!    and 20 times for the wake-up long poll (1 s: `WaitTimeSeconds` is
//!    whole seconds). Each window starts and ends at the start of a poll
//!    and is scaled by polls: calls/hour at default flags = calls per poll
//!    × 180 (one poll per 20 s, the cache then refreshes every third poll
//!    in both settings). `WPA_BENCH_WINDOW_SECS` (default 12) per state.
//! 2. Latency: SendMessage → the reconcile step that scales up from 0
//!    replicas (spec min 0, max 10, target 1). A queue without a redrive
//!    policy at the default 20 s short and long polls (wake-up probe),
//!    `WPA_BENCH_TRIALS` (default 60) trials; then a guarded queue
//!    (`maxReceiveCount` 3) with both polls compressed to 1 s, its
//!    latencies also shown scaled to default flags (the wait for the poll
//!    that sees the message ×20, that poll and the decision as measured),
//!    `WPA_BENCH_GUARDED_TRIALS` (default 20) trials.
//!
//! Run without `--bench` (as `cargo test --all-targets` does), it is a
//! smoke run: 3 + 2 latency trials and 1 s cost windows for one setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::types::QueueAttributeName;
use wpa_benches::counting_proxy::{BenchResult, Proxy, RECEIVE};
use wpa_benches::{MemoryTarget, RunMode, env_number, ms, percentile};
use wpa_core::{MaxDisruption, ScaleOperation, WpaSpec, reconcile};
use wpa_poller::{PollRequest, PollerConfig, Registry, Subscription};
use wpa_sqs::testing::{MotoServer, test_clients};
use wpa_sqs::{Idleness, SqsClients, SqsOptions};

const REGION: &str = "us-east-1";
const METRIC_DATA: &str = "CloudWatch.GetMetricData";
/// Polls per hour at the default 20 s short and long polls.
const POLLS_PER_HOUR: f64 = 180.0;

fn main() -> BenchResult<()> {
    let mode = RunMode::from_args();
    if mode == RunMode::List {
        return Ok(());
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // program without it: then a short smoke run.
    let full = mode == RunMode::Full;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;
    runtime.block_on(bench(full))
}

// ---------------------------------------------------------------------------
// Queues and clients.

async fn clients(endpoint: String, options: SqsOptions) -> SqsClients {
    test_clients(SqsOptions {
        endpoint: Some(endpoint),
        regions: vec![REGION.into()],
        ..options
    })
    .await
}

fn raw(clients: &SqsClients) -> aws_sdk_sqs::Client {
    clients.sqs_client(clients.default_region().unwrap_or(REGION))
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    redrive: Option<String>,
) -> BenchResult<String> {
    let mut request = sqs.create_queue().queue_name(name);
    if let Some(policy) = redrive {
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    Ok(request
        .send()
        .await?
        .queue_url()
        .ok_or("no queue url")?
        .to_owned())
}

async fn visible(sqs: &aws_sdk_sqs::Client, url: &str) -> BenchResult<u64> {
    let name = QueueAttributeName::ApproximateNumberOfMessages;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await?;
    Ok(out
        .attributes()
        .and_then(|a| a.get(&name))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// A worker takes the message and deletes it (directly at moto).
async fn take_and_delete(sqs: &aws_sdk_sqs::Client, url: &str) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        for message in out.messages() {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await?;
        }
        if !out.messages().is_empty() && visible(sqs, url).await? == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the worker found no message to delete".into());
        }
    }
}

// ---------------------------------------------------------------------------

async fn bench(full: bool) -> BenchResult<()> {
    let moto = MotoServer::start();
    let upstream: SocketAddr = ([127, 0, 0, 1], moto.port()).into();
    let proxy = Proxy::start(upstream).await?;
    // The bench's own producer and worker go to moto directly: not counted.
    let direct = clients(moto.endpoint(), SqsOptions::default()).await;
    let sqs = raw(&direct);

    check_cloudwatch_answer(&proxy, &sqs).await?;

    let trials = if full {
        env_number("WPA_BENCH_TRIALS", 60)
    } else {
        3
    };
    let guarded_trials = if full {
        env_number("WPA_BENCH_GUARDED_TRIALS", 20)
    } else {
        2
    };
    let window = if full {
        Duration::from_secs(env_number("WPA_BENCH_WINDOW_SECS", 12))
    } else {
        Duration::from_secs(1)
    };

    let started = Instant::now();
    let open = latency_open(&proxy, &sqs, trials).await?;
    let (guarded, guarded_scaled) = latency_guarded(&proxy, &sqs, guarded_trials).await?;
    let mut rows = Vec::new();
    let settings: &[bool] = if full { &[false, true] } else { &[true] };
    for &arrival_rate in settings {
        rows.extend(cost(&proxy, &sqs, arrival_rate, window).await?);
    }
    if full {
        rows.push(cost_guarded_at_zero(&proxy, &sqs, window).await?);
    }

    println!();
    println!(
        "SQS adapter vs reference, AWS API calls per queue-hour at default flags (20 s polls, 60 s CloudWatch cache)"
    );
    println!(
        "measured against moto_server through a counting proxy, intervals compressed (see the bench's docs), {} s per state",
        window.as_secs()
    );
    println!();
    println!(
        "| state | secondsToProcessOneJob | polls | this adapter, calls/hour | total | reference, calls/hour | total | ratio |"
    );
    println!("|---|---|---:|---|---:|---|---:|---:|");
    for row in &rows {
        let ratio = row.total / row.reference_total;
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {:.0} | {:.2} |",
            row.state,
            if row.arrival_rate { "set" } else { "unset" },
            row.polls,
            row.breakdown,
            row.total,
            row.reference,
            row.reference_total,
            ratio,
        );
    }
    println!();
    let never_more = rows.iter().all(|r| r.total <= r.reference_total + 0.5);
    let busy_gqa_half = rows
        .iter()
        .filter(|r| r.state == "busy")
        .all(|r| r.total_sqs <= r.reference_sqs / 2.0 + 0.5);
    let busy_half = rows
        .iter()
        .filter(|r| r.state == "busy")
        .all(|r| r.total <= r.reference_total / 2.0 + 0.5);
    println!(
        "goal: never more than the reference: {}; at most half of it when busy: SQS calls {}, all calls (incl. CloudWatch) {}",
        yes_no(never_more),
        yes_no(busy_gqa_half),
        yes_no(busy_half),
    );
    println!();
    println!(
        "wake-up latency, SendMessage -> scale-up decision at 0 replicas, queue without redrive policy, {} trials at 20 s short/long polls (probe): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 < 1000 ms; reference: 20 s typical, 40 s worst without secondsToProcessOneJob)",
        open.len(),
        ms(percentile(&open, 50.0)),
        ms(percentile(&open, 99.0)),
        ms(*open.last().unwrap()),
    );
    println!(
        "wake-up latency, guarded queue (maxReceiveCount 3), {} trials at 1 s short/long polls: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; scaled to 20 s polls (wait for the poll x20, poll + decision as measured): p50 {:.1} s, p99 {:.1} s, max {:.1} s (goal: within the 20 s short-poll interval)",
        guarded.len(),
        ms(percentile(&guarded, 50.0)),
        ms(percentile(&guarded, 99.0)),
        ms(*guarded.last().unwrap()),
        percentile(&guarded_scaled, 50.0).as_secs_f64(),
        percentile(&guarded_scaled, 99.0).as_secs_f64(),
        guarded_scaled.last().unwrap().as_secs_f64(),
    );
    println!("total run time {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn yes_no(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

/// The proxy's canned CloudWatch answer must parse: one short poll of an
/// empty queue through the proxy reads "all idle" with no CloudWatch error.
async fn check_cloudwatch_answer(proxy: &Proxy, sqs: &aws_sdk_sqs::Client) -> BenchResult<()> {
    let url = create_queue(sqs, "cloudwatch-check", None).await?;
    let options = SqsOptions {
        arrival_rate: true,
        max_attempts: 1,
        ..SqsOptions::default()
    };
    let adapter = clients(proxy.endpoint(), options).await;
    let mut queue = adapter.queue(&url)?;
    let request = PollRequest {
        wake_up: false,
        long_poll: Duration::ZERO,
        short_poll: Duration::ZERO,
        arrival_rate: false,
        oldest_age: false,
    };
    let observation = queue.observe(request, SystemTime::now()).await?;
    if let Some(error) = observation.cloudwatch_error {
        return Err(format!("the proxy's CloudWatch answer did not parse: {error}").into());
    }
    if observation.idle != Idleness::AllIdle || observation.messages_sent_per_minute != Some(0.0) {
        return Err(format!("unexpected CloudWatch reading {observation:?}").into());
    }
    if proxy.counter.get(METRIC_DATA) != 2 {
        return Err("expected two GetMetricData calls through the proxy".into());
    }
    Ok(())
}

/// Scale-up decision loop: waits for snapshots until a reconcile scales up.
async fn until_scale_up(
    subscription: &mut Subscription,
    target: &mut MemoryTarget,
) -> BenchResult<()> {
    let spec = WpaSpec::new(0, 10, 1, 0.0, MaxDisruption::DEFAULT)?;
    loop {
        subscription.changed().await?;
        let plan = reconcile(
            subscription,
            target,
            &spec,
            Duration::from_secs(600),
            None,
            SystemTime::now(),
        )
        .await
        .map_err(|e| format!("{e:?}"))?;
        subscription.set_replicas(target.0);
        if plan.operation == ScaleOperation::ScaleUp {
            return Ok(());
        }
    }
}

/// A queue without a redrive policy, default 20 s polls: the poller blocks
/// in a long-poll probe; a message sent then must wake it at once.
async fn latency_open(
    proxy: &Proxy,
    sqs: &aws_sdk_sqs::Client,
    trials: u64,
) -> BenchResult<Vec<Duration>> {
    let url = create_queue(sqs, "latency-open", None).await?;
    let adapter = clients(proxy.endpoint(), SqsOptions::default()).await;
    let registry = Registry::new();
    let mut subscription = registry.subscribe(&url, PollerConfig::default(), Some(0), || {
        adapter.queue(&url)
    })?;
    let mut target = MemoryTarget(0);
    let mut latencies = Vec::new();
    let mut receives = proxy.counter.get(RECEIVE);
    for trial in 0..trials {
        // Wait until a new probe is in flight, then a little more (varied).
        wait_for_probe(proxy, receives).await?;
        tokio::time::sleep(Duration::from_millis(trial * 37 % 200)).await;
        let sent_at = Instant::now();
        sqs.send_message()
            .queue_url(&url)
            .message_body("job")
            .send()
            .await?;
        until_scale_up(&mut subscription, &mut target).await?;
        latencies.push(sent_at.elapsed());
        // Reset: a worker takes the job, the target goes back to zero.
        take_and_delete(sqs, &url).await?;
        receives = proxy.counter.get(RECEIVE);
        target.0 = 0;
        subscription.set_replicas(0);
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// Waits until a ReceiveMessage probe started after the first `since` is in
/// flight.
async fn wait_for_probe(proxy: &Proxy, since: u64) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.counter.get(RECEIVE) <= since
        || proxy.counter.receives_in_flight.load(Ordering::SeqCst) == 0
    {
        if Instant::now() > deadline {
            return Err("the poller never blocked in a ReceiveMessage probe".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// A guarded queue (redrive policy, `maxReceiveCount` 3), polls compressed
/// to 1 s: the wake-up polls attributes once per long-poll interval.
/// Returns the latencies as measured and scaled to 20 s polls: the wait
/// from SendMessage to the start of the attribute poll that saw the message
/// ×20, plus that poll and the decision as measured.
async fn latency_guarded(
    proxy: &Proxy,
    sqs: &aws_sdk_sqs::Client,
    trials: u64,
) -> BenchResult<(Vec<Duration>, Vec<Duration>)> {
    let dlq = create_queue(sqs, "latency-guarded-dlq", None).await?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or("no DLQ ARN")?;
    let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}"#);
    let url = create_queue(sqs, "latency-guarded", Some(policy)).await?;
    let adapter = clients(proxy.endpoint(), SqsOptions::default()).await;
    let interval = Duration::from_secs(1);
    let registry = Registry::new();
    let config = PollerConfig::new(interval, interval);
    let mut subscription = registry.subscribe(&url, config, Some(0), || adapter.queue(&url))?;
    let mut target = MemoryTarget(0);
    let mut latencies = Vec::new();
    let mut scaled = Vec::new();
    let receives_before = proxy.counter.get(RECEIVE);
    for trial in 0..trials {
        // Two polls at zero (the second a guarded wake-up), then a send at
        // a spread phase of the wake-up interval.
        proxy.next_poll_start().await?;
        proxy.next_poll_start().await?;
        let phase = (trial as f64 * 0.618_033_988_75).fract();
        tokio::time::sleep(interval.mul_f64(phase)).await;
        let sent_at = Instant::now();
        sqs.send_message()
            .queue_url(&url)
            .message_body("job")
            .send()
            .await?;
        until_scale_up(&mut subscription, &mut target).await?;
        let decided_at = Instant::now();
        let polled_at = proxy
            .counter
            .last_poll_start
            .lock()
            .unwrap()
            .unwrap_or(sent_at);
        latencies.push(decided_at - sent_at);
        scaled.push(
            polled_at.saturating_duration_since(sent_at) * 20
                + decided_at.saturating_duration_since(polled_at),
        );
        take_and_delete(sqs, &url).await?;
        target.0 = 0;
        subscription.set_replicas(0);
    }
    if proxy.counter.get(RECEIVE) != receives_before {
        return Err("the adapter probed a guarded queue".into());
    }
    if visible(sqs, &dlq).await? != 0 {
        return Err("a message reached the dead-letter queue".into());
    }
    latencies.sort_unstable();
    scaled.sort_unstable();
    Ok((latencies, scaled))
}

struct Row {
    state: &'static str,
    arrival_rate: bool,
    polls: u64,
    breakdown: String,
    total: f64,
    total_sqs: f64,
    reference: &'static str,
    reference_total: f64,
    reference_sqs: f64,
}

/// Calls per poll over `window`, from the start of one poll to the start of
/// another, scaled to 180 polls per hour.
async fn measure(
    proxy: &Proxy,
    subscription: &Subscription,
    window: Duration,
) -> BenchResult<(u64, BTreeMap<String, f64>)> {
    proxy.next_poll_start().await?;
    let calls_before = proxy.counter.snapshot();
    let polls_before = subscription.observation().polls;
    tokio::time::sleep(window).await;
    proxy.next_poll_start().await?;
    let calls_after = proxy.counter.snapshot();
    let polls = subscription.observation().polls - polls_before;
    if polls == 0 {
        return Err("no poll completed in the window".into());
    }
    let per_hour = calls_after
        .iter()
        .map(|(call, after)| {
            let before = calls_before.get(call).copied().unwrap_or(0);
            (after - before, call)
        })
        .filter(|(n, _)| *n > 0)
        .map(|(n, call)| (call.clone(), n as f64 * POLLS_PER_HOUR / polls as f64))
        .collect();
    Ok((polls, per_hour))
}

fn short_name(call: &str) -> &str {
    call.rsplit_once('.').map_or(call, |(_, op)| op)
}

fn row(
    state: &'static str,
    arrival_rate: bool,
    (polls, per_hour): (u64, BTreeMap<String, f64>),
    reference: (&'static str, f64, f64),
) -> Row {
    let breakdown = per_hour
        .iter()
        .map(|(call, n)| format!("{n:.0} {}", short_name(call)))
        .collect::<Vec<_>>()
        .join(" + ");
    let total = per_hour.values().sum();
    let total_sqs = per_hour
        .iter()
        .filter(|(call, _)| call.starts_with("AmazonSQS."))
        .map(|(_, n)| n)
        .sum();
    Row {
        state,
        arrival_rate,
        polls,
        breakdown,
        total,
        total_sqs,
        reference: reference.0,
        reference_total: reference.1,
        reference_sqs: reference.2,
    }
}

/// The three states on one queue, `arrival_rate` as given.
async fn cost(
    proxy: &Proxy,
    sqs: &aws_sdk_sqs::Client,
    arrival_rate: bool,
    window: Duration,
) -> BenchResult<Vec<Row>> {
    let name = if arrival_rate { "cost-rate" } else { "cost" };
    let url = create_queue(sqs, name, None).await?;
    let options = SqsOptions {
        arrival_rate,
        idle_from_cloudwatch: true,
        cloudwatch_cache_ttl: Duration::from_millis(600),
        ..SqsOptions::default()
    };
    let adapter = clients(proxy.endpoint(), options).await;
    let registry = Registry::new();
    let receives = proxy.counter.get(RECEIVE);
    // Short poll 20 s / 100, long poll 20 s / 20 (whole seconds only).
    let config = PollerConfig::new(Duration::from_millis(200), Duration::from_secs(1));
    let subscription = registry.subscribe(&url, config, Some(0), || adapter.queue(&url))?;
    let mut rows = Vec::new();

    // Empty at 0 workers: wake-up probes back to back.
    wait_for_probe(proxy, receives).await?;
    let reference = if arrival_rate {
        ("180 ReceiveMessage", 180.0, 180.0)
    } else {
        (
            "360 GetQueueAttributes + 60 GetMetricData (idle)",
            420.0,
            360.0,
        )
    };
    rows.push(row(
        "empty, 0 workers",
        arrival_rate,
        measure(proxy, &subscription, window).await?,
        reference,
    ));

    // Empty with workers running.
    subscription.set_replicas(2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reference = if arrival_rate {
        (
            "360 GetQueueAttributes + 120 GetMetricData (rate, idle)",
            480.0,
            360.0,
        )
    } else {
        (
            "360 GetQueueAttributes + 60 GetMetricData (idle)",
            420.0,
            360.0,
        )
    };
    rows.push(row(
        "empty, workers running",
        arrival_rate,
        measure(proxy, &subscription, window).await?,
        reference,
    ));

    // Busy: messages visible, workers running.
    for _ in 0..10 {
        sqs.send_message()
            .queue_url(&url)
            .message_body("job")
            .send()
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reference = if arrival_rate {
        (
            "360 GetQueueAttributes + 60 GetMetricData (rate)",
            420.0,
            360.0,
        )
    } else {
        ("360 GetQueueAttributes", 360.0, 360.0)
    };
    rows.push(row(
        "busy",
        arrival_rate,
        measure(proxy, &subscription, window).await?,
        reference,
    ));
    drop(subscription);
    Ok(rows)
}

/// A guarded queue sitting empty at 0 workers (`secondsToProcessOneJob`
/// unset): one attribute poll per long-poll interval, no probe.
async fn cost_guarded_at_zero(
    proxy: &Proxy,
    sqs: &aws_sdk_sqs::Client,
    window: Duration,
) -> BenchResult<Row> {
    create_queue(sqs, "cost-guarded-dlq", None).await?;
    let policy = format!(
        r#"{{"deadLetterTargetArn":"arn:aws:sqs:{REGION}:123456789012:cost-guarded-dlq","maxReceiveCount":"3"}}"#
    );
    let url = create_queue(sqs, "cost-guarded", Some(policy)).await?;
    let options = SqsOptions {
        cloudwatch_cache_ttl: Duration::from_millis(600),
        ..SqsOptions::default()
    };
    let adapter = clients(proxy.endpoint(), options).await;
    let registry = Registry::new();
    let config = PollerConfig::new(Duration::from_millis(200), Duration::from_secs(1));
    let subscription = registry.subscribe(&url, config, Some(0), || adapter.queue(&url))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let measured = measure(proxy, &subscription, window).await?;
    drop(subscription);
    Ok(row(
        "empty, 0 workers, guarded queue",
        false,
        measured,
        (
            "360 GetQueueAttributes + 60 GetMetricData (idle)",
            420.0,
            360.0,
        ),
    ))
}
