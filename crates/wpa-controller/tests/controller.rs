#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The controller end to end against the in-process API double, driven by
//! the real kube client, with a fake queue whose length the test sets.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};
use tokio::sync::watch;
use wpa_controller::{ControllerConfig, Health, LeaderElectionConfig, Metrics, SourceFactory};
use wpa_core::QueueSnapshot;
use wpa_kube_testing::{ApiServer, Fault};

use common::*;

#[tokio::test(start_paused = true)]
async fn scales_up_on_backlog_without_waiting_for_a_resync() {
    let run = start(config(), |server, _| {
        server.insert(deployment("jobs", "worker", 1)).unwrap();
        server
            .insert(wpa("jobs", "w", "worker", "fake://q"))
            .unwrap();
    })
    .await;
    // With an empty queue and one busy-unknown worker: desired 0, a scale
    // down (never scaled before).
    eventually("the first decision", Duration::from_secs(10), || {
        status(&run.server, "jobs", "w")["DesiredReplicas"] == 0
    })
    .await;

    // The resync period is 600 s: only the snapshot change can trigger this.
    let started = tokio::time::Instant::now();
    run.queues.set("fake://q", 15);
    eventually("the scale up", Duration::from_secs(10), || {
        replicas(&run.server, "jobs", "worker") == Some(8)
    })
    .await;
    // Seconds, not the 600 s resync period (typically ~50 ms here).
    assert!(started.elapsed() < Duration::from_secs(10));
    eventually("the status", Duration::from_secs(5), || {
        status(&run.server, "jobs", "w")["DesiredReplicas"] == 8
    })
    .await;
    let s = status(&run.server, "jobs", "w");
    assert_eq!(s["CurrentMessages"], 15);
    assert!(s["LastScaleTime"].as_str().unwrap().ends_with('Z'));
    let valid = s["Conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Valid")
        .unwrap();
    assert_eq!(valid["status"], "True");

    eventually("the ScaledUp event", Duration::from_secs(5), || {
        events(&run.server, "jobs")
            .iter()
            .any(|e| e["reason"] == "ScaledUp")
    })
    .await;
    let scaled_up: Vec<Value> = events(&run.server, "jobs")
        .into_iter()
        .filter(|e| e["reason"] == "ScaledUp")
        .collect();
    assert_eq!(scaled_up.len(), 1, "{scaled_up:?}");
    assert!(
        scaled_up[0]["note"]
            .as_str()
            .unwrap()
            .contains("-> 8 replicas")
    );

    // Only the scale subresource was written; the Deployment never.
    for request in run.server.requests() {
        if request.path.contains("/deployments/") && request.method != Method::GET {
            assert!(request.path.ends_with("/scale"), "{request:?}");
        }
    }
    let text = run.metrics.render();
    assert!(
        text.contains(
            "wpa_worker_desired{namespace=\"jobs\",workerpodautoscaler=\"w\",queueName=\"q\"} 8"
        ),
        "{text}"
    );
    assert!(text.contains(
        "wpa_controller_loop_count_success{namespace=\"jobs\",workerpodautoscaler=\"w\"}"
    ));

    assert_rbac_allows(&run.server.requests());

    // Deleting the WPA removes its series.
    run.server
        .delete("k8s.practo.dev/v1", "workerpodautoscalers", "jobs", "w");
    eventually("series removal", Duration::from_secs(5), || {
        !run.metrics.render().contains("workerpodautoscaler=\"w\"")
    })
    .await;
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn scale_down_waits_for_the_delay_and_status_is_not_rewritten() {
    let config = ControllerConfig {
        resync_period: Duration::from_millis(100),
        scale_down_delay: Duration::from_secs(3),
        ..config()
    };
    let run = start(config, |server, queues| {
        queues.set("fake://q", 10);
        server.insert(deployment("jobs", "worker", 1)).unwrap();
        server
            .insert(wpa("jobs", "w", "worker", "fake://q"))
            .unwrap();
    })
    .await;
    eventually("the scale up", Duration::from_secs(5), || {
        replicas(&run.server, "jobs", "worker") == Some(5)
    })
    .await;
    let scaled_at = tokio::time::Instant::now();

    // Steady state: resyncs every 100 ms, but nothing changes, so no status
    // writes.
    eventually("the status", Duration::from_secs(5), || {
        status(&run.server, "jobs", "w")["DesiredReplicas"] == 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    run.server.clear_requests();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes: Vec<_> = run
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method != Method::GET)
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    // Queue drained: the desired count drops at once, replicas only after
    // the scale-down delay.
    run.queues.set("fake://q", 0);
    eventually("the held decision", Duration::from_secs(5), || {
        status(&run.server, "jobs", "w")["DesiredReplicas"] == 0
    })
    .await;
    assert_eq!(
        replicas(&run.server, "jobs", "worker"),
        Some(5),
        "held by the delay"
    );
    eventually("the scale down", Duration::from_secs(5), || {
        replicas(&run.server, "jobs", "worker") == Some(0)
    })
    .await;
    // `LastScaleTime` has whole seconds (metav1.Time), as the reference's:
    // the 3 s delay counts from the second the scale up was stamped in.
    assert!(
        scaled_at.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        scaled_at.elapsed()
    );
    eventually("the ScaledDown event", Duration::from_secs(5), || {
        events(&run.server, "jobs")
            .iter()
            .any(|e| e["reason"] == "ScaledDown")
    })
    .await;
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_wpa_is_reported_and_isolated_from_a_valid_one() {
    let config = ControllerConfig {
        resync_period: Duration::from_millis(200),
        ..config()
    };
    let run = start(config, |server, queues| {
        queues.set("fake://good", 4);
        server.insert(deployment("jobs", "good", 1)).unwrap();
        server.insert(deployment("jobs", "bad", 1)).unwrap();
        server
            .insert(wpa("jobs", "good", "good", "fake://good"))
            .unwrap();
        let mut bad = wpa("jobs", "bad", "bad", "fake://bad");
        bad["spec"]["maxDisruption"] = json!("abc");
        server.insert(bad).unwrap();
        let mut both = wpa("jobs", "both", "bad", "fake://bad");
        both["spec"]["replicaSetName"] = json!("rs");
        server.insert(both).unwrap();
        server
            .insert(wpa("jobs", "unsupported", "bad", "ftp://nope"))
            .unwrap();
        server
            .insert(wpa("jobs", "orphan", "ghost", "fake://good"))
            .unwrap();
    })
    .await;
    eventually("the valid one scales", Duration::from_secs(5), || {
        replicas(&run.server, "jobs", "good") == Some(2)
    })
    .await;
    let condition = |name: &str| {
        status(&run.server, "jobs", name)["Conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Valid").cloned())
            .unwrap_or(Value::Null)
    };
    eventually("conditions", Duration::from_secs(5), || {
        ["bad", "both", "unsupported", "orphan"]
            .iter()
            .all(|n| condition(n)["status"] == "False")
    })
    .await;
    assert!(
        condition("bad")["message"]
            .as_str()
            .unwrap()
            .contains("maxDisruption \"abc\"")
    );
    assert!(
        condition("both")["message"]
            .as_str()
            .unwrap()
            .contains("set exactly one")
    );
    assert_eq!(condition("unsupported")["reason"], "UnsupportedQueueURI");
    assert_eq!(condition("orphan")["reason"], "TargetNotFound");
    assert!(
        condition("orphan")["message"]
            .as_str()
            .unwrap()
            .contains("ghost")
    );
    assert_eq!(
        replicas(&run.server, "jobs", "bad"),
        Some(1),
        "an invalid WPA scales nothing"
    );

    let warnings: Vec<String> = events(&run.server, "jobs")
        .iter()
        .filter(|e| e["type"] == "Warning")
        .map(|e| {
            format!(
                "{} {}",
                e["regarding"]["name"].as_str().unwrap(),
                e["reason"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "bad InvalidSpec",
        "both InvalidSpec",
        "unsupported InvalidSpec",
        "orphan TargetNotFound",
    ] {
        assert!(
            warnings.iter().any(|w| w == expected),
            "{expected} in {warnings:?}"
        );
    }

    // The missing target appears: the orphan recovers at its next resync,
    // without a restart.
    run.server.insert(deployment("jobs", "ghost", 0)).unwrap();
    eventually("the orphan scales", Duration::from_secs(5), || {
        replicas(&run.server, "jobs", "ghost") == Some(2)
    })
    .await;
    eventually("its condition clears", Duration::from_secs(5), || {
        condition("orphan")["status"] == "True"
    })
    .await;
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_scale_is_survived_and_retried() {
    let config = ControllerConfig {
        resync_period: Duration::from_millis(100),
        ..config()
    };
    let run = start(config, |server, queues| {
        queues.set("fake://q", 6);
        server.insert(deployment("jobs", "worker", 1)).unwrap();
        server
            .insert(wpa("jobs", "w", "worker", "fake://q"))
            .unwrap();
        server.inject(Fault::respond(
            Method::PUT,
            "/deployments/worker/scale",
            500,
            3,
        ));
        server.inject(Fault::concurrent_write(
            Method::PUT,
            "/deployments/worker/scale",
            2,
        ));
    })
    .await;
    eventually(
        "the scale up despite 500s and conflicts",
        Duration::from_secs(10),
        || replicas(&run.server, "jobs", "worker") == Some(3),
    )
    .await;
    let statuses: Vec<u16> = run
        .server
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT)
        .map(|r| r.status)
        .collect();
    assert_eq!(&statuses[..3], [500, 500, 500]);
    assert!(statuses.contains(&409), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&200));
    assert!(!run.task.is_finished(), "the controller keeps running");
    run.stop().await;
}

/// A 500 on `/scale` is retried by the WPA's own backoff (tens of
/// milliseconds, doubling), not at the next resync (10 minutes here).
#[tokio::test(start_paused = true)]
async fn a_scale_after_two_500s_lands_within_seconds_not_at_the_resync() {
    let run = start(config(), |server, queues| {
        queues.set("fake://q", 6);
        server.insert(deployment("jobs", "worker", 1)).unwrap();
        server
            .insert(wpa("jobs", "w", "worker", "fake://q"))
            .unwrap();
        server.inject(Fault::respond(
            Method::PUT,
            "/deployments/worker/scale",
            500,
            2,
        ));
    })
    .await;
    eventually(
        "the scale up after two 500s",
        Duration::from_secs(5),
        || replicas(&run.server, "jobs", "worker") == Some(3),
    )
    .await;
    let statuses: Vec<u16> = run
        .server
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT && r.path.ends_with("/scale"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [500, 500, 200]);
    run.stop().await;
}

/// A scale that keeps failing backs off to the resync period: no hot loop.
#[tokio::test(start_paused = true)]
async fn a_persistent_500_backs_off_to_the_resync_period() {
    let config = ControllerConfig {
        resync_period: Duration::from_secs(1),
        ..config()
    };
    let run = start(config, |server, queues| {
        queues.set("fake://q", 6);
        server.insert(deployment("jobs", "worker", 1)).unwrap();
        server
            .insert(wpa("jobs", "w", "worker", "fake://q"))
            .unwrap();
        server.inject(Fault::respond(
            Method::PUT,
            "/deployments/worker/scale",
            500,
            u32::MAX,
        ));
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let attempts: Vec<_> = run
        .server
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT && r.path.ends_with("/scale"))
        .map(|r| r.at)
        .collect();
    // 50 ms doubling with jitter in [d/2, d], capped at 1 s: 10 to 16
    // tries in 6 s (a hot loop would make hundreds), and the last gaps
    // near the period.
    assert!(
        (5..=20).contains(&attempts.len()),
        "{} tries in 6 s",
        attempts.len()
    );
    let last_gap = attempts[attempts.len() - 1].duration_since(attempts[attempts.len() - 2]);
    assert!(
        last_gap >= Duration::from_millis(450),
        "last retry gap {last_gap:?}"
    );
    assert_eq!(replicas(&run.server, "jobs", "worker"), Some(1));
    assert!(!run.task.is_finished(), "the controller keeps running");
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_namespace_filter_leaves_other_namespaces_alone() {
    let config = ControllerConfig {
        namespace: Some("mine".to_owned()),
        ..config()
    };
    let run = start(config, |server, queues| {
        queues.set("fake://q", 8);
        for namespace in ["mine", "theirs"] {
            server.insert(deployment(namespace, "worker", 1)).unwrap();
            server
                .insert(wpa(namespace, "w", "worker", "fake://q"))
                .unwrap();
        }
    })
    .await;
    eventually("mine scales", Duration::from_secs(5), || {
        replicas(&run.server, "mine", "worker") == Some(4)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(replicas(&run.server, "theirs", "worker"), Some(1));
    assert_eq!(status(&run.server, "theirs", "w"), Value::Null);
    for request in run.server.requests() {
        assert!(!request.path.contains("/namespaces/theirs/"), "{request:?}");
        assert!(
            request.path.contains("/namespaces/mine/"),
            "no cluster-wide access: {request:?}"
        );
    }
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn one_poller_per_queue_shared_by_its_autoscalers() {
    let run = start(config(), |server, queues| {
        queues.set("fake://shared", 4);
        for name in ["a", "b", "c"] {
            server.insert(deployment("jobs", name, 1)).unwrap();
            server
                .insert(wpa("jobs", name, name, "fake://shared"))
                .unwrap();
        }
    })
    .await;
    for name in ["a", "b", "c"] {
        eventually("each scales", Duration::from_secs(5), || {
            replicas(&run.server, "jobs", name) == Some(2)
        })
        .await;
    }
    assert_eq!(run.queues.lengths.lock().unwrap().len(), 1);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn only_a_spec_with_seconds_to_process_one_job_asks_for_the_arrival_rate() {
    let run = start(config(), |server, queues| {
        queues.set("fake://plain", 2);
        queues.set("fake://rated", 2);
        server.insert(deployment("jobs", "plain", 1)).unwrap();
        server.insert(deployment("jobs", "rated", 1)).unwrap();
        server
            .insert(wpa("jobs", "plain", "plain", "fake://plain"))
            .unwrap();
        let mut rated = wpa("jobs", "rated", "rated", "fake://rated");
        rated["spec"]["secondsToProcessOneJob"] = json!(0.5);
        server.insert(rated).unwrap();
    })
    .await;
    let asked = |uri: &str| run.queues.asked_rate(uri).load(Ordering::SeqCst);
    // The poll right after the first reconcile asks for it, without
    // waiting for the next short poll.
    eventually(
        "the rated queue is polled for its rate",
        Duration::from_secs(5),
        || asked("fake://rated"),
    )
    .await;
    for name in ["plain", "rated"] {
        eventually("reconciled", Duration::from_secs(5), || {
            status(&run.server, "jobs", name)["Conditions"].is_array()
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // several polls
    assert!(!asked("fake://plain"));
    assert!(asked("fake://rated"));
    run.stop().await;
}

/// The wait-target WPA of these tests: 2 s jobs, 99% of waits under 30 s,
/// pods taking jobs 5 s after a scale up; `targetMessagesPerWorker` 100,
/// which the reference's rules would size on.
fn wait_target_wpa(namespace: &str, name: &str, target: &str, queue: &str) -> Value {
    let mut wpa = reference_twin(namespace, name, target, queue);
    wpa["spec"]["targetWaitSeconds"] = json!(30);
    wpa["spec"]["workerStartupSeconds"] = json!(5);
    wpa
}

/// The same spec without the wait-target fields.
fn reference_twin(namespace: &str, name: &str, target: &str, queue: &str) -> Value {
    let mut wpa = wpa(namespace, name, target, queue);
    wpa["spec"]["maxReplicas"] = json!(50);
    wpa["spec"]["targetMessagesPerWorker"] = json!(100);
    wpa["spec"]["secondsToProcessOneJob"] = json!(2);
    wpa
}

/// What the core decides for [`wait_target_wpa`] (and, second, for its
/// [`reference_twin`]) on 4 ready workers when the queue says: 4 messages,
/// all in flight, 300 sent per minute (10 workers busy on 2 s jobs).
fn pools_for_the_load() -> (u32, u32) {
    use wpa_core::{MaxDisruption, RawWpaSpec, Rule, TargetReplicas};
    let spec = RawWpaSpec {
        min_replicas: Some(0),
        max_replicas: Some(50),
        target_messages_per_worker: Some(100),
        seconds_to_process_one_job: Some(2.0),
        target_wait_seconds: Some(30.0),
        worker_startup_seconds: Some(5.0),
        ..RawWpaSpec::default()
    }
    .validate(MaxDisruption::DEFAULT)
    .unwrap();
    let queue = QueueSnapshot::new(4)
        .with_in_flight(4)
        .with_arrival_rate(300.0)
        .unwrap()
        .with_arrival_rate_window(common::FAKE_RATE_WINDOW);
    let four = TargetReplicas::new(4, 4);
    let ours = wpa_core::decide(&spec, &queue, four, None);
    assert_eq!(ours.rule, Rule::WaitTargetUp, "{ours}");
    let theirs = wpa_core::decide(&spec.without_wait_target(), &queue, four, None);
    (ours.desired_replicas, theirs.desired_replicas)
}

/// The replica counts written through `/scale` to `name`, in order.
fn scale_writes(server: &ApiServer, name: &str) -> Vec<i64> {
    let suffix = format!("/deployments/{name}/scale");
    server
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT && r.path.ends_with(&suffix) && r.status == 200)
        .filter_map(|r| r.body.pointer("/spec/replicas").and_then(Value::as_i64))
        .collect()
}

fn event_notes(server: &ApiServer, namespace: &str, wpa: &str, reason: &str) -> Vec<String> {
    events(server, namespace)
        .iter()
        .filter(|e| e["regarding"]["name"] == wpa && e["reason"] == reason)
        .map(|e| e["note"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A 4-minute-job WPA with a 20 s wait target and a 30 s start-up.
fn long_job_wpa(namespace: &str, name: &str, queue: &str, probe: bool) -> Value {
    let mut wpa = wpa(namespace, name, name, queue);
    wpa["spec"]["maxReplicas"] = json!(100);
    wpa["spec"]["targetMessagesPerWorker"] = json!(1);
    wpa["spec"]["secondsToProcessOneJob"] = json!(240);
    wpa["spec"]["targetWaitSeconds"] = json!(20);
    wpa["spec"]["workerStartupSeconds"] = json!(30);
    if probe {
        wpa["spec"]["busyProbe"] = json!({"port": "busy", "timeoutSeconds": 0.5});
    }
    wpa
}

/// What the core decides for [`long_job_wpa`] on 4 ready workers, with a
/// busy probe and without, when the queue says: 24 messages, all in
/// flight, 6 sent per minute (24 workers busy on 4 min jobs).
fn long_job_pools() -> (u32, u32) {
    use wpa_core::{MaxDisruption, RawWpaSpec, TargetReplicas};
    let spec = RawWpaSpec {
        min_replicas: Some(0),
        max_replicas: Some(100),
        target_messages_per_worker: Some(1),
        seconds_to_process_one_job: Some(240.0),
        target_wait_seconds: Some(20.0),
        worker_startup_seconds: Some(30.0),
        ..RawWpaSpec::default()
    }
    .validate(MaxDisruption::DEFAULT)
    .unwrap();
    let queue = QueueSnapshot::new(24)
        .with_in_flight(24)
        .with_arrival_rate(6.0)
        .unwrap()
        .with_arrival_rate_window(common::FAKE_RATE_WINDOW);
    let four = TargetReplicas::new(4, 4);
    let decide = |replicas| wpa_core::decide(&spec, &queue, replicas, None).desired_replicas;
    (decide(four.with_idle_pods(4)), decide(four))
}

/// With a `busyProbe` the controller runs the wait target's tracked pool
/// (the core is told the target is idle-first even when no probe is
/// needed, as for a scale up): on long jobs fewer workers than the same
/// WPA without a probe, which must size for every swing of the load.
#[tokio::test(start_paused = true)]
async fn a_busy_probe_lets_the_wait_target_track_long_jobs() {
    let (tracked, fixed) = long_job_pools();
    assert!(tracked < fixed, "{tracked} vs {fixed}");
    let run = start(config(), |server, queues| {
        queues.set_load("fake://long", 24, 24, 6.0);
        server.insert(deployment("jobs", "tracked", 4)).unwrap();
        server.insert(deployment("jobs", "fixed", 4)).unwrap();
        let probed = long_job_wpa("jobs", "tracked", "fake://long", true);
        server.insert(probed).unwrap();
        let unprobed = long_job_wpa("jobs", "fixed", "fake://long", false);
        server.insert(unprobed).unwrap();
    })
    .await;
    eventually("both pools", Duration::from_secs(10), || {
        replicas(&run.server, "jobs", "tracked") == Some(i64::from(tracked))
            && replicas(&run.server, "jobs", "fixed") == Some(i64::from(fixed))
    })
    .await;
    eventually("the ScaledUp event", Duration::from_secs(5), || {
        event_notes(&run.server, "jobs", "tracked", "ScaledUp")
            .iter()
            .any(|n| n.contains("(tracked: idle pods can go)"))
    })
    .await;
    assert!(
        event_notes(&run.server, "jobs", "fixed", "ScaledUp")
            .iter()
            .all(|n| !n.contains("tracked")),
    );
    run.stop().await;
}

/// A WPA with `targetWaitSeconds` runs the wait-target policy end to end:
/// the rate is asked for, the pool is the policy's (not the reference's,
/// decided beside it on the same queue), and its scale down waits
/// `workerStartupSeconds` (5 s), not the controller's 600 s delay (nor the
/// 600 s resync: the reconcile comes when the hold is due).
#[tokio::test(start_paused = true)]
async fn a_wait_target_wpa_sizes_by_the_policy_and_scales_down_after_its_startup_time() {
    let (pool, reference_pool) = pools_for_the_load();
    // The reference's rate floor is 10; the policy adds the workers that
    // keep 99% of waits under 30 s at 10 busy on average.
    assert_eq!(reference_pool, 10);
    assert!(pool > reference_pool, "{pool}");
    let pool_i = i64::from(pool);

    let config = ControllerConfig {
        scale_down_delay: Duration::from_secs(600),
        ..config()
    };
    let run = start(config, |server, queues| {
        queues.set_load("fake://q", 4, 4, 300.0);
        server.insert(deployment("jobs", "waiter", 4)).unwrap();
        server.insert(deployment("jobs", "classic", 4)).unwrap();
        server
            .insert(wait_target_wpa("jobs", "waiter", "waiter", "fake://q"))
            .unwrap();
        server
            .insert(reference_twin("jobs", "classic", "classic", "fake://q"))
            .unwrap();
    })
    .await;
    eventually("both pools", Duration::from_secs(10), || {
        replicas(&run.server, "jobs", "waiter") == Some(pool_i)
            && replicas(&run.server, "jobs", "classic") == Some(10)
    })
    .await;
    assert!(run.queues.asked_rate("fake://q").load(Ordering::SeqCst));
    eventually("the status", Duration::from_secs(5), || {
        status(&run.server, "jobs", "waiter")["DesiredReplicas"] == pool
    })
    .await;
    let scaled_up = status(&run.server, "jobs", "waiter");
    assert_eq!(scaled_up["CurrentMessages"], 4);
    let up_time = scaled_up["LastScaleTime"].as_str().unwrap().to_owned();
    assert!(up_time.ends_with('Z'), "{up_time}");
    // The last observation is kept in the status, for the backlog's growth
    // after a restart: the time of the poll the scale up decided on, not
    // of the decision; the reference's status has no such key.
    let read_at = scaled_up["CurrentMessagesTime"].as_str().unwrap();
    let read_time = wpa_kube::parse_time(read_at).unwrap();
    // (LastScaleTime is in whole seconds, as the reference writes it.)
    let up = wpa_kube::parse_time(&up_time).unwrap();
    assert!(
        read_time < up + Duration::from_secs(1),
        "{read_at} after {up_time}"
    );
    let classic = status(&run.server, "jobs", "classic");
    assert!(classic["CurrentMessagesTime"].is_null(), "{classic}");
    // Up at once, never past what the policy needs (a first poll without
    // the rate may size on the in-flight count alone first).
    let writes = scale_writes(&run.server, "waiter");
    assert_eq!(writes.last(), Some(&pool_i), "{writes:?}");
    assert!(writes.iter().all(|&n| n > 4 && n <= pool_i), "{writes:?}");
    let note = format!("-> {pool} replicas: 99% of waits under 30 s need {pool} workers");
    eventually("the ScaledUp event", Duration::from_secs(5), || {
        event_notes(&run.server, "jobs", "waiter", "ScaledUp")
            .iter()
            .any(|n| n.contains(&note))
    })
    .await;
    let text = run.metrics.render();
    let desired = format!(
        "wpa_worker_desired{{namespace=\"jobs\",workerpodautoscaler=\"waiter\",queueName=\"q\"}} {pool}"
    );
    assert!(text.contains(&desired), "{text}");
    let scaled_at = tokio::time::Instant::now();

    // Steady: the pool is within its band (down only past what 25% more
    // load would need).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(replicas(&run.server, "jobs", "waiter"), Some(pool_i));

    // The queue drains and nothing arrives: desired 0 at once, the scale
    // down held until 5 s after the scale up.
    run.queues.set_load("fake://q", 0, 0, 0.0);
    eventually("the held decision", Duration::from_secs(5), || {
        status(&run.server, "jobs", "waiter")["DesiredReplicas"] == 0
    })
    .await;
    assert_eq!(
        replicas(&run.server, "jobs", "waiter"),
        Some(pool_i),
        "held by workerStartupSeconds"
    );
    eventually("the scale down", Duration::from_secs(10), || {
        replicas(&run.server, "jobs", "waiter") == Some(0)
    })
    .await;
    // LastScaleTime has whole seconds: 4 to 5 s after the scale up, then
    // the reconcile due at the end of the hold.
    let waited = scaled_at.elapsed();
    assert!(
        waited >= Duration::from_millis(3900) && waited < Duration::from_secs(7),
        "{waited:?}"
    );
    eventually(
        "the status after the scale down",
        Duration::from_secs(5),
        || {
            let s = status(&run.server, "jobs", "waiter");
            s["LastScaleTime"].as_str() != Some(up_time.as_str())
        },
    )
    .await;
    let down = event_notes(&run.server, "jobs", "waiter", "ScaledDown");
    assert_eq!(down.len(), 1, "{down:?}");
    let note = format!("{pool} -> 0 replicas: 99% of waits under 30 s");
    assert!(down[0].contains(&note), "{down:?}");
    // The reference's twin on the same queue decided 0 too, but waits its
    // 600 s delay.
    assert_eq!(status(&run.server, "jobs", "classic")["DesiredReplicas"], 0);
    assert_eq!(replicas(&run.server, "jobs", "classic"), Some(10));
    assert_rbac_allows(&run.server.requests());
    run.stop().await;
}

/// Invalid wait-target specs are reported on their WPA (condition and one
/// Warning Event each) and scale nothing; a valid one beside them scales;
/// a fixed spec recovers without a restart.
#[tokio::test(start_paused = true)]
async fn an_invalid_wait_target_is_reported_on_its_wpa_only() {
    let config = ControllerConfig {
        resync_period: Duration::from_millis(200),
        ..config()
    };
    let pool = i64::from(pools_for_the_load().0);
    let run = start(config, |server, queues| {
        queues.set_load("fake://good", 4, 4, 300.0);
        queues.set_load("fake://bad", 4, 4, 300.0);
        for name in ["good", "no-job-time", "bad-startup"] {
            server.insert(deployment("jobs", name, 4)).unwrap();
        }
        server
            .insert(wait_target_wpa("jobs", "good", "good", "fake://good"))
            .unwrap();
        let mut no_job_time = wait_target_wpa("jobs", "no-job-time", "no-job-time", "fake://bad");
        no_job_time["spec"]
            .as_object_mut()
            .unwrap()
            .remove("secondsToProcessOneJob");
        server.insert(no_job_time).unwrap();
        let mut bad_startup = wait_target_wpa("jobs", "bad-startup", "bad-startup", "fake://bad");
        bad_startup["spec"]["workerStartupSeconds"] = json!(-1);
        server.insert(bad_startup).unwrap();
    })
    .await;
    eventually("the valid one scales", Duration::from_secs(10), || {
        replicas(&run.server, "jobs", "good") == Some(pool)
    })
    .await;
    let condition = |name: &str| {
        status(&run.server, "jobs", name)["Conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Valid").cloned())
            .unwrap_or(Value::Null)
    };
    eventually("conditions", Duration::from_secs(5), || {
        ["no-job-time", "bad-startup"]
            .iter()
            .all(|n| condition(n)["status"] == "False")
    })
    .await;
    assert_eq!(condition("good")["status"], "True");
    for (name, message) in [
        (
            "no-job-time",
            "targetWaitSeconds needs secondsToProcessOneJob (> 0)",
        ),
        (
            "bad-startup",
            "workerStartupSeconds must be >= 0 and <= 86400 seconds, got -1",
        ),
    ] {
        let valid = condition(name);
        assert_eq!(valid["reason"], "InvalidSpec", "{name}");
        assert!(
            valid["message"].as_str().unwrap().contains(message),
            "{name}: {valid}"
        );
        assert_eq!(replicas(&run.server, "jobs", name), Some(4), "{name}");
        assert_eq!(
            status(&run.server, "jobs", name).get("DesiredReplicas"),
            None,
            "{name}: no decision"
        );
    }
    // Several resyncs later: still one Warning each.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for name in ["no-job-time", "bad-startup"] {
        let notes = event_notes(&run.server, "jobs", name, "InvalidSpec");
        assert_eq!(notes.len(), 1, "{name}: {notes:?}");
    }
    assert!(event_notes(&run.server, "jobs", "good", "InvalidSpec").is_empty());

    // Fixed: decided at its next resync.
    run.server.modify(
        "k8s.practo.dev/v1",
        "workerpodautoscalers",
        "jobs",
        "no-job-time",
        |wpa| wpa["spec"]["secondsToProcessOneJob"] = json!(2),
    );
    eventually("the fixed one scales", Duration::from_secs(5), || {
        replicas(&run.server, "jobs", "no-job-time") == Some(pool)
    })
    .await;
    eventually("its condition clears", Duration::from_secs(5), || {
        condition("no-job-time")["status"] == "True"
    })
    .await;
    run.stop().await;
}

// Real time and sockets: the Lease expires on wall-clock time, which
// paused tokio time cannot move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server = ApiServer::start().await.unwrap();
    server.set_auto_ready(true);
    server.insert(deployment("jobs", "worker", 1)).unwrap();
    server
        .insert(wpa("jobs", "w", "worker", "fake://q"))
        .unwrap();
    let queues = Arc::new(FakeQueues::default());
    queues.set("fake://q", 2);

    let launch = |identity: &str| {
        let (stop, shutdown) = watch::channel(false);
        let health = Arc::new(Health::default());
        let mut election = LeaderElectionConfig::new("kube-system", identity);
        election.duration = Duration::from_secs(2);
        election.grace = Duration::from_secs(1);
        let task = tokio::spawn(wpa_controller::run(
            server.client().unwrap(),
            config(),
            Arc::clone(&queues) as Arc<dyn SourceFactory>,
            Arc::new(Metrics::default()),
            Arc::clone(&health),
            Some(election),
            shutdown,
        ));
        (stop, health, task)
    };
    let (stop_a, health_a, task_a) = launch("a");
    eventually("a leads", Duration::from_secs(10), || health_a.is_leader()).await;
    let (stop_b, health_b, task_b) = launch("b");
    eventually("a scales", Duration::from_secs(5), || {
        replicas(&server, "jobs", "worker") == Some(1)
            && status(&server, "jobs", "w")["DesiredReplicas"] == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!health_b.is_leader(), "two leaders");
    let lease = server
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "kube-system",
            "workerpodautoscaler",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "a");

    // a stops (SIGTERM): it gives the lease up, b takes over and acts.
    stop_a.send_replace(true);
    tokio::time::timeout(Duration::from_secs(15), task_a)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    eventually("b leads", Duration::from_secs(10), || health_b.is_leader()).await;
    assert!(!health_a.is_leader());
    queues.set("fake://q", 10);
    eventually("b scales", Duration::from_secs(5), || {
        replicas(&server, "jobs", "worker") == Some(5)
    })
    .await;
    let lease = server
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "kube-system",
            "workerpodautoscaler",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    stop_b.send_replace(true);
    tokio::time::timeout(Duration::from_secs(15), task_b)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Scaled, wrote status, events and the lease: all within deploy/rbac.yaml.
    assert_rbac_allows(&server.requests());
}

#[tokio::test(start_paused = true)]
async fn a_decision_sweep_decides_from_the_caches_without_writing() {
    let server = ApiServer::start().await.unwrap();
    server.insert(deployment("jobs", "busy", 1)).unwrap();
    server.insert(deployment("jobs", "steady", 2)).unwrap();
    server
        .insert(wpa("jobs", "scales", "busy", "fake://backlog"))
        .unwrap();
    server
        .insert(wpa("jobs", "holds", "steady", "fake://steady"))
        .unwrap();
    server
        .insert(wpa("jobs", "orphan", "missing", "fake://steady"))
        .unwrap();
    server
        .insert(wpa("jobs", "bad-uri", "steady", "sqs://nope"))
        .unwrap();
    let queues = Arc::new(FakeQueues::default());
    queues.set("fake://backlog", 15);
    queues.set("fake://steady", 4);
    let (controller, reflectors) = wpa_controller::Controller::new(
        server.in_process_client(),
        config(),
        Arc::clone(&queues) as Arc<dyn SourceFactory>,
        Arc::new(Metrics::default()),
        Arc::new(Health::default()),
    );
    let mut sweep = controller.decision_sweep();
    let wpas: Vec<wpa_kube::WorkerPodAutoScaler> = server
        .list("k8s.practo.dev/v1", "workerpodautoscalers", Some("jobs"))
        .into_iter()
        .map(|object| serde_json::from_value(object).unwrap())
        .collect();
    let mut summary = wpa_controller::SweepSummary::default();
    // Until the Deployment cache has synced and both queues were polled.
    eventually(
        "the caches and the first polls",
        Duration::from_secs(10),
        || {
            summary = sweep.run(&wpas, std::time::SystemTime::now());
            summary.decided == 2
        },
    )
    .await;
    assert_eq!(sweep.len(), 4);
    assert_eq!(summary.scales, 1, "{summary:?}");
    assert_eq!(summary.not_polled, 0, "{summary:?}");
    assert_eq!(summary.problems, 2, "{summary:?}");
    // Nothing scaled, no status, no Event: only list and watch requests.
    assert_eq!(replicas(&server, "jobs", "busy"), Some(1));
    assert!(
        server.requests().iter().all(|r| r.method == Method::GET),
        "{:?}",
        server.requests()
    );
    reflectors.iter().for_each(tokio::task::JoinHandle::abort);
}
