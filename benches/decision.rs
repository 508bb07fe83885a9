//! The cost of one decision, and of a sweep over 10,000 WPAs.
//!
//! `cargo bench --bench decision`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wpa_core::{
    BacklogGrowth, MaxDisruption, QueueSnapshot, TargetReplicas, WpaSpec, decide, desired_replicas,
    plan, scale_operation,
};

/// 10,000 varied WPAs: every rule of the decision is exercised.
fn fleet() -> Vec<(WpaSpec, QueueSnapshot, u32)> {
    (0..10_000u32)
        .map(|i| {
            let budget = if i % 2 == 0 {
                MaxDisruption::Percent(i % 101)
            } else {
                MaxDisruption::Absolute(i % 7)
            };
            let seconds = if i % 3 == 0 {
                0.0
            } else {
                f64::from(i % 50) / 10.0
            };
            let spec = WpaSpec::new(i % 4, 5 + i % 200, 1 + i % 20, seconds, budget).unwrap();
            let snapshot = QueueSnapshot::new(if i % 5 == 0 { 0 } else { i * 31 % 5_000 })
                .with_arrival_rate(f64::from(i % 600))
                .unwrap()
                .with_idle_workers(if i % 4 == 0 { Some(i % 30) } else { None });
            (spec, snapshot, i % 30)
        })
        .collect()
}

fn decision(c: &mut Criterion) {
    let spec = WpaSpec::new(0, 10, 2, 0.03, MaxDisruption::Percent(100)).unwrap();
    let snapshot = QueueSnapshot::new(15).with_arrival_rate(120.0).unwrap();
    c.bench_function("desired_replicas (one decision)", |b| {
        b.iter(|| desired_replicas(black_box(&spec), black_box(&snapshot), black_box(1)))
    });

    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let delay = Duration::from_secs(600);
    c.bench_function("plan (decision + scale operation + status)", |b| {
        b.iter(|| {
            plan(
                black_box(&spec),
                black_box(snapshot),
                black_box(TargetReplicas::new(1, 1)),
                delay,
                black_box(Some(now)),
                now,
            )
        })
    });

    // The wait-target policy: 20 msg/s of 1 s jobs, a 20 s target, a
    // backlog to size (Erlang C over ~30 servers, the pick-up horizon).
    let wait_spec = WpaSpec::new(0, 300, 10, 1.0, MaxDisruption::Percent(100))
        .and_then(|spec| spec.with_wait_target(20.0, 30.0))
        .unwrap();
    let backlog = QueueSnapshot::new(400)
        .with_in_flight(24)
        .with_arrival_rate(1_200.0)
        .unwrap();
    c.bench_function("decide (one wait-target decision)", |b| {
        b.iter(|| {
            decide(
                black_box(&wait_spec),
                black_box(&backlog),
                black_box(TargetReplicas::new(24, 24)),
                black_box(Some(BacklogGrowth {
                    per_second: 15.0,
                    over_seconds: 20.0,
                })),
            )
        })
    });

    let fleet = fleet();
    let mut group = c.benchmark_group("sweep");
    group.throughput(Throughput::Elements(fleet.len() as u64));
    group.bench_function("10,000 WPAs (decision + scale operation)", |b| {
        b.iter(|| {
            let mut scaled = 0u32;
            for (spec, snapshot, current) in &fleet {
                let decision = desired_replicas(spec, snapshot, *current);
                let operation =
                    scale_operation(decision.desired_replicas, *current, None, delay, now);
                scaled += u32::from(operation.changes_replicas());
            }
            scaled
        })
    });
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
