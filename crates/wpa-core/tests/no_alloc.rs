//! The decision path allocates nothing: checked with a counting allocator.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, SystemTime};

use wpa_core::{
    MaxDisruption, QueueSnapshot, TargetReplicas, WpaSpec, desired_replicas, plan, scale_operation,
};

struct CountingAllocator;

thread_local! {
    // Per thread, so the test harness's own threads do not interfere.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; it only
// counts allocations made on the current thread.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during(work: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    work();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_sees_allocations() {
    // Guards against a counter that always reads 0.
    let count = allocations_during(|| {
        std::hint::black_box(vec![1u8; 64]);
    });
    assert!(count >= 1);
}

#[test]
fn deciding_allocates_nothing() {
    let specs: Vec<WpaSpec> = [
        (0, 10, 2, 0.0, MaxDisruption::Percent(100)),
        (1, 50, 5, 0.03, MaxDisruption::Percent(10)),
        (2, 3, 1, 1.5, MaxDisruption::Absolute(1)),
        (5, 5, 1, 0.0, MaxDisruption::Absolute(0)),
    ]
    .into_iter()
    .map(|(min, max, target, seconds, budget)| {
        WpaSpec::new(min, max, target, seconds, budget).unwrap()
    })
    .collect();
    let snapshots: Vec<QueueSnapshot> = (0..40u32)
        .map(|i| {
            QueueSnapshot::new(i * 7 % 23)
                .with_arrival_rate(f64::from(i % 5) * 100.0)
                .unwrap()
                .with_idle_workers(if i % 3 == 0 { None } else { Some(i % 11) })
        })
        .collect();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let delay = Duration::from_secs(600);

    let mut checksum = 0u64;
    let count = allocations_during(|| {
        for spec in &specs {
            for (i, snapshot) in snapshots.iter().enumerate() {
                let current = (i % 13) as u32;
                let decision = desired_replicas(spec, snapshot, current);
                let operation =
                    scale_operation(decision.desired_replicas, current, Some(now), delay, now);
                let replicas = TargetReplicas::new(current, current);
                let step = plan(spec, *snapshot, replicas, delay, None, now);
                checksum += u64::from(decision.desired_replicas)
                    + u64::from(operation.changes_replicas())
                    + u64::from(step.status.desired_replicas);
            }
        }
    });
    assert!(checksum > 0);
    assert_eq!(count, 0, "the decision path allocated {count} times");
}
