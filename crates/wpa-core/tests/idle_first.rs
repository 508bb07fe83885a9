//! Idle-first scale down: the per-pod signal's idle count replaces
//! `maxDisruption`, caps every scale down, and is asked for only when a
//! scale down would happen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use wpa_core::{
    History, Idleness, Limit, MaxDisruption, QueueMetrics, QueueSnapshot, Rule, ScaleOperation,
    ScaleTarget, TargetReplicas, WpaSpec, decide, desired_replicas, idle_first,
    reconcile_with_history,
};

fn spec(min: u32, max: u32, budget: MaxDisruption) -> WpaSpec {
    WpaSpec::new(min, max, 10, 0.0, budget).unwrap()
}

fn with_idle(current: u32, idle_pods: u32) -> TargetReplicas {
    TargetReplicas::new(current, current).with_idle_pods(idle_pods)
}

#[test]
fn the_idle_pods_replace_the_budget() {
    // 20 pods, an empty queue, idleness unknown: the reference removes 2
    // (10%); with 12 pods known idle, 12 go.
    let s = spec(0, 50, MaxDisruption::Percent(10));
    let queue = QueueSnapshot::new(0);
    let reference = desired_replicas(&s, &queue, 20);
    assert_eq!(reference.desired_replicas, 18);
    assert_eq!(reference.limit, Limit::DisruptionBudget);
    let decision = decide(&s, &queue, with_idle(20, 12), None);
    assert_eq!(decision.rule, Rule::NoBacklog);
    assert_eq!(decision.desired_replicas, 8);
    assert_eq!(decision.limit, Limit::IdleWorkers);
    assert_eq!(
        decision.to_string(),
        "queue empty, idleness of the 20 workers not known: down to the floor of 0; only 12 of \
         the 20 pods are known idle (the pods' busy signal): down to 8"
    );
    // Every pod idle: down to the floor.
    assert_eq!(
        decide(&s, &queue, with_idle(20, 20), None).desired_replicas,
        0
    );
}

#[test]
fn the_smaller_of_the_pods_and_the_queue_wins() {
    // beanstalkd: 3 workers waiting in reserve, 6 pods say idle: 3 go.
    let s = spec(0, 50, MaxDisruption::DEFAULT);
    let queue = QueueSnapshot::new(0).with_idleness(Idleness::Idle(3));
    let decision = decide(&s, &queue, with_idle(10, 6), None);
    assert_eq!(decision.desired_replicas, 7);
    assert_eq!(idle_first::removable(&queue, 10, 6), 3);
    // The queue says all idle, the pods say 4: 4 go (an unanswered probe
    // counts as busy).
    let all_idle = QueueSnapshot::new(0).with_idleness(Idleness::AllIdle);
    assert_eq!(
        decide(&s, &all_idle, with_idle(10, 4), None).desired_replicas,
        6
    );
}

#[test]
fn max_replicas_still_wins() {
    let s = spec(0, 5, MaxDisruption::DEFAULT);
    let decision = decide(&s, &QueueSnapshot::new(500), with_idle(12, 0), None);
    assert_eq!(decision.desired_replicas, 5);
    assert_eq!(decision.limit, Limit::MaxReplicas);
}

#[test]
fn scale_ups_are_untouched() {
    let s = spec(0, 50, MaxDisruption::Absolute(1));
    let queue = QueueSnapshot::new(300);
    let decision = decide(&s, &queue, with_idle(4, 0), None);
    assert_eq!(decision, {
        let mut reference = desired_replicas(&s, &queue, 4);
        reference.inputs.idle_pods = Some(0);
        reference
    });
    assert_eq!(decision.desired_replicas, 30);
}

#[test]
fn the_wait_target_policy_drops_its_half_busy_gate() {
    // 40 s jobs (longer than the 30 s grace period), 80 pods, 45 holding a
    // message: without the signal the policy holds (over half the pods
    // busy); with 35 pods known idle it removes them.
    let s = WpaSpec::new(0, 100, 1, 40.0, MaxDisruption::Percent(10))
        .unwrap()
        .with_wait_target(60.0, 30.0)
        .unwrap();
    let queue = QueueSnapshot::new(45)
        .with_in_flight(45)
        .with_arrival_rate(30.0)
        .unwrap();
    let without = decide(&s, &queue, TargetReplicas::new(80, 80), None);
    assert_eq!(without.rule, Rule::WaitTargetHold, "{without}");
    assert_eq!(without.desired_replicas, 80);
    let with = decide(&s, &queue, with_idle(80, 35), None);
    assert_eq!(with.rule, Rule::WaitTargetDown, "{with}");
    // Down to what the load plus its noise needs, within the idle pods.
    let keep = with.inputs.wait.unwrap().keep;
    assert!((45..80).contains(&keep), "{with}");
    assert_eq!(with.desired_replicas, keep, "{with}");
}

/// A queue and a target whose pods are probed, counting the probes.
struct Pods {
    current: u32,
    idle: u32,
    probes: u32,
    applied: Vec<u32>,
}

impl QueueMetrics for Pods {
    type Error = Infallible;
    async fn snapshot(&mut self) -> Result<QueueSnapshot, Infallible> {
        Ok(QueueSnapshot::new(0).with_idleness(Idleness::Unknown))
    }
}

impl ScaleTarget for Pods {
    type Error = Infallible;
    async fn replicas(&mut self) -> Result<TargetReplicas, Infallible> {
        Ok(TargetReplicas::new(self.current, self.current))
    }
    async fn apply(&mut self, replicas: u32) -> Result<(), Infallible> {
        self.applied.push(replicas);
        self.current = replicas;
        Ok(())
    }
    fn idle_first(&self) -> bool {
        true
    }
    async fn idle_pods(&mut self, _: TargetReplicas) -> Result<u32, Infallible> {
        self.probes += 1;
        Ok(self.idle)
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    // Every future here is ready at once.
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a ready future was pending"),
    }
}

#[test]
fn the_pods_are_asked_only_before_a_scale_down() {
    let s = spec(2, 50, MaxDisruption::Percent(10));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let delay = Duration::from_secs(600);
    let mut pods = Pods {
        current: 10,
        idle: 3,
        probes: 0,
        applied: Vec::new(),
    };
    // Held by the scale-down delay: no probe.
    let recent = History::since(Some(now - Duration::from_secs(60)));
    let mut queue = Pods { ..pods_like() };
    let plan = block_on(reconcile_with_history(
        &mut queue, &mut pods, &s, delay, recent, now,
    ))
    .unwrap();
    assert!(matches!(plan.operation, ScaleOperation::ScaleDownHeld(_)));
    assert_eq!(pods.probes, 0);
    // Due: one probe, and the 3 idle pods go (not the 1 of the 10% budget,
    // nor the 8 the floor would allow).
    let plan = block_on(reconcile_with_history(
        &mut queue,
        &mut pods,
        &s,
        delay,
        History::default(),
        now,
    ))
    .unwrap();
    assert_eq!(plan.operation, ScaleOperation::ScaleDown);
    assert_eq!(pods.probes, 1);
    assert_eq!(pods.applied, vec![7]);
    assert_eq!(plan.replicas.idle_pods, Some(3));
    // It stopped no job: no delay restarted, and without a job time there
    // is no telling when the busy pods free up (the resync will look).
    assert_eq!(plan.status.last_scale_time, None);
    assert_eq!(plan.due_in(), None);
    // No pod idle: probed, nothing changes.
    pods.idle = 0;
    let plan = block_on(reconcile_with_history(
        &mut queue,
        &mut pods,
        &s,
        delay,
        History::default(),
        now,
    ))
    .unwrap();
    assert_eq!(plan.operation, ScaleOperation::None);
    assert_eq!(pods.probes, 2);
    assert_eq!(pods.applied, vec![7]);
}

fn pods_like() -> Pods {
    Pods {
        current: 0,
        idle: 0,
        probes: 0,
        applied: Vec::new(),
    }
}

fn arb_queue() -> impl Strategy<Value = QueueSnapshot> {
    (
        prop_oneof![Just(0u32), 0..2_000u32],
        prop::option::of(0.0..6_000.0f64),
        prop_oneof![
            Just(Idleness::Unknown),
            Just(Idleness::AllIdle),
            (0..300u32).prop_map(Idleness::Idle)
        ],
    )
        .prop_map(|(messages, rate, idleness)| {
            let queue = QueueSnapshot::new(messages).with_idleness(idleness);
            match rate {
                Some(rate) => queue.with_arrival_rate(rate).unwrap(),
                None => queue,
            }
        })
}

fn arb_reference_spec() -> impl Strategy<Value = WpaSpec> {
    (
        0..30u32,
        0..300u32,
        1..50u32,
        prop_oneof![Just(0.0), 0.1..300.0f64],
        prop_oneof![
            (0..=100u32).prop_map(MaxDisruption::Percent),
            (0..=20u32).prop_map(MaxDisruption::Absolute)
        ],
    )
        .prop_map(|(min, max, target, seconds, budget)| {
            WpaSpec::new(min, max, target, seconds, budget).unwrap()
        })
}

fn arb_spec() -> impl Strategy<Value = WpaSpec> {
    (
        0..30u32,
        0..300u32,
        1..50u32,
        prop_oneof![Just(0.0), 0.1..300.0f64],
        prop_oneof![
            (0..=100u32).prop_map(MaxDisruption::Percent),
            (0..=20u32).prop_map(MaxDisruption::Absolute)
        ],
        prop::option::of((1.0..300.0f64, 0.0..120.0f64)),
    )
        .prop_map(|(min, max, target, seconds, budget, wait)| {
            let spec = WpaSpec::new(min, max, target, seconds, budget).unwrap();
            match wait {
                Some((wait, startup)) if seconds > 0.0 => {
                    spec.with_wait_target(wait, startup).unwrap()
                }
                _ => spec,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    /// No busy pod removed: a scale down takes at most the removable pods,
    /// unless maxReplicas cut the pool.
    #[test]
    fn never_more_removed_than_known_idle(
        spec in arb_spec(),
        queue in arb_queue(),
        current in 0..400u32,
        idle in 0..400u32,
    ) {
        let decision = decide(&spec, &queue, with_idle(current, idle), None);
        let removed = current.saturating_sub(decision.desired_replicas);
        prop_assert!(
            removed <= idle_first::removable(&queue, current, idle)
                || decision.desired_replicas == spec.max_replicas(),
            "{decision}"
        );
        prop_assert!(decision.desired_replicas <= spec.max_replicas(), "{decision}");
    }

    /// More pods known idle never keeps more pods.
    #[test]
    fn monotone_in_the_idle_pods(
        spec in arb_spec(),
        queue in arb_queue(),
        current in 0..400u32,
        idle in 0..400u32,
        more in 0..400u32,
    ) {
        let fewer = decide(&spec, &queue, with_idle(current, idle), None).desired_replicas;
        let more = decide(&spec, &queue, with_idle(current, idle.saturating_add(more)), None)
            .desired_replicas;
        prop_assert!(more <= fewer);
    }

    /// Every pod idle, by the pods and the queue: the reference's rules
    /// with a budget of 100%.
    #[test]
    fn all_idle_is_the_unbudgeted_reference(
        spec in arb_reference_spec(),
        queue in arb_queue(),
        current in 0..400u32,
        all_idle in any::<bool>(),
    ) {
        let queue = queue.with_idleness(if all_idle { Idleness::AllIdle } else { Idleness::Unknown });
        let unbudgeted = WpaSpec::new(
            spec.min_replicas(),
            spec.max_replicas(),
            spec.target_messages_per_worker(),
            spec.seconds_to_process_one_job(),
            MaxDisruption::Percent(100),
        )
        .unwrap();
        let decision = decide(&spec, &queue, with_idle(current, current), None);
        prop_assert_eq!(
            decision.desired_replicas,
            desired_replicas(&unbudgeted, &queue, current).desired_replicas
        );
    }

    /// Without the signal, decisions are the reference's, bit for bit.
    #[test]
    fn without_the_signal_nothing_changes(
        spec in arb_reference_spec(),
        queue in arb_queue(),
        current in 0..400u32,
    ) {
        prop_assert_eq!(
            decide(&spec, &queue, TargetReplicas::new(current, current), None),
            desired_replicas(&spec, &queue, current)
        );
    }
}

#[test]
fn a_cut_scale_down_is_due_again_one_job_later() {
    let s = WpaSpec::new(0, 50, 10, 45.0, MaxDisruption::DEFAULT).unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let plan = wpa_core::plan_with_history(
        &s,
        QueueSnapshot::new(0),
        with_idle(10, 4),
        Duration::from_secs(600),
        History::default(),
        now,
    );
    assert_eq!(plan.operation, ScaleOperation::ScaleDown);
    assert_eq!(plan.decision.desired_replicas, 6);
    assert_eq!(plan.due_in(), Some(Duration::from_secs(45)));
    // Every pod idle: nothing cut, nothing due.
    let plan = wpa_core::plan_with_history(
        &s,
        QueueSnapshot::new(0),
        with_idle(10, 10),
        Duration::from_secs(600),
        History::default(),
        now,
    );
    assert_eq!(plan.decision.desired_replicas, 0);
    assert_eq!(plan.due_in(), None);
    // A reference WPA's held scale down is due at the resync, as before.
    let held = wpa_core::plan_with_history(
        &s,
        QueueSnapshot::new(0),
        TargetReplicas::new(10, 10),
        Duration::from_secs(600),
        History::since(Some(now - Duration::from_secs(1))),
        now,
    );
    assert!(matches!(held.operation, ScaleOperation::ScaleDownHeld(_)));
    assert_eq!(held.due_in(), None);
}
