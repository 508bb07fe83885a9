//! Another autoscaler built on the core: build a spec, take a snapshot,
//! print the decision and why, then plan the step at an explicit time.
//!
//! `cargo run -p wpa-examples --example custom_autoscaler`

use std::time::{Duration, SystemTime};

use wpa_core::{MaxDisruption, QueueSnapshot, RawWpaSpec, TargetReplicas, desired_replicas, plan};

fn main() -> Result<(), wpa_core::Error> {
    // The spec as a user wrote it (here: the reference's example object).
    let spec = RawWpaSpec {
        min_replicas: Some(0),
        max_replicas: Some(10),
        target_messages_per_worker: Some(2),
        seconds_to_process_one_job: Some(0.03),
        max_disruption: Some("100%".to_owned()),
        ..RawWpaSpec::default()
    }
    .validate(MaxDisruption::DEFAULT)?;

    // What some queue reported: 15 messages, 1,200 arriving per minute,
    // idleness unknown.
    let snapshot = QueueSnapshot::new(15).with_arrival_rate(1_200.0)?;
    let decision = desired_replicas(&spec, &snapshot, 1);
    println!("desired replicas: {}", decision.desired_replicas);
    println!("why: {decision}");

    // The queue drained and all 8 workers are idle: may we scale down now?
    // Time is an argument: pass your own clock (or a simulated one).
    let now = SystemTime::now();
    let drained = QueueSnapshot::new(0).with_idle_workers(Some(8));
    let replicas = TargetReplicas::new(8, 8);
    let last_scale = Some(now - Duration::from_secs(120));
    let step = plan(
        &spec,
        drained,
        replicas,
        Duration::from_secs(600),
        last_scale,
        now,
    );
    println!(
        "then: desired {} ({}), operation: {}",
        step.decision.desired_replicas, step.decision, step.operation
    );
    Ok(())
}
