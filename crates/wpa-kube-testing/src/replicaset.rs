//! The part of the ReplicaSet controller a scale down depends on: which
//! pods go when a workload's replicas shrink, and new pods when they grow.
//! On only with [`crate::ApiServer::set_replicaset_controller`].
//!
//! The victims are the first pods in the controller's order (Kubernetes'
//! `ActivePodsWithRanks.Less`, `pkg/controller/controller_utils.go`, with
//! `PodDeletionCost` and `LogarithmicScaleDown` on, their defaults since
//! 1.22), each rule deciding only when the ones before it tie:
//!
//! 1. not scheduled (no `spec.nodeName`) before scheduled;
//! 2. `Pending` before `Unknown` before `Running`;
//! 3. not ready before ready;
//! 4. lower `controller.kubernetes.io/pod-deletion-cost` (an int32
//!    annotation, 0 when absent or unparsable) before higher;
//! 5. more ready pods of the workload on its node before fewer;
//! 6. both ready: ready more recently before ready longer, compared as
//!    `floor(log2(age in ns))`, ties broken by UID;
//! 7. more container restarts before fewer;
//! 8. created more recently before older, on the same logarithmic scale.
//!
//! Emulated, not the real thing: a Deployment's pods belong to it directly
//! (no ReplicaSet in between); only `spec.selector.matchLabels` selects;
//! pods go at once (no `deletionTimestamp`, no grace period); new pods are
//! scheduled on `node-0` to `node-2` in turn, `Running` and ready at once,
//! with the template's containers and the IP [`POD_IP`].
//! Time is the double's logical clock: each created pod one second later.

use std::cmp::Ordering;

use jiff::Timestamp;
use serde_json::{Value, json};

/// The annotation the ReplicaSet controller reads (beta, on by default
/// since Kubernetes 1.22).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The indices of `pods` in the order the ReplicaSet controller deletes
/// them (the first ones go first), at `now`.
#[must_use]
pub fn deletion_order(pods: &[Value], now: Timestamp) -> Vec<usize> {
    let ranked: Vec<Ranked> = pods.iter().map(|pod| Ranked::of(pod, pods)).collect();
    let mut order: Vec<usize> = (0..pods.len()).collect();
    order.sort_by(|&a, &b| ranked[a].cmp(&ranked[b], now));
    order
}

/// What the order reads of one pod.
struct Ranked {
    scheduled: bool,
    phase: u8,
    ready_since: Option<Timestamp>,
    cost: i32,
    colocated: usize,
    restarts: i64,
    created: Option<Timestamp>,
    uid: String,
}

impl Ranked {
    fn of(pod: &Value, all: &[Value]) -> Self {
        let node = pod.pointer("/spec/nodeName").and_then(Value::as_str);
        let colocated = node.map_or(0, |node| {
            all.iter()
                .filter(|other| {
                    other.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node)
                        && is_active(other)
                })
                .count()
        });
        Ranked {
            scheduled: node.is_some_and(|node| !node.is_empty()),
            phase: match pod.pointer("/status/phase").and_then(Value::as_str) {
                Some("Pending") => 0,
                Some("Unknown") => 1,
                Some("Running") => 2,
                // The controller's map gives other phases 0 too.
                _ => 0,
            },
            ready_since: ready_since(pod),
            cost: pod
                .pointer("/metadata/annotations")
                .and_then(|annotations| annotations.get(POD_DELETION_COST))
                .and_then(Value::as_str)
                .and_then(|cost| cost.parse::<i32>().ok())
                .unwrap_or(0),
            colocated,
            restarts: pod
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map_or(0, |statuses| {
                    statuses
                        .iter()
                        .filter_map(|status| status["restartCount"].as_i64())
                        .max()
                        .unwrap_or(0)
                }),
            created: timestamp(pod.pointer("/metadata/creationTimestamp")),
            uid: pod
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// `Less` as an ordering: `Less` goes first.
    fn cmp(&self, other: &Self, now: Timestamp) -> Ordering {
        if self.scheduled != other.scheduled {
            return if self.scheduled {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ready = (self.ready_since.is_some(), other.ready_since.is_some());
        self.phase
            .cmp(&other.phase)
            .then(ready.0.cmp(&ready.1))
            .then(self.cost.cmp(&other.cost))
            .then(other.colocated.cmp(&self.colocated))
            .then_with(|| match (self.ready_since, other.ready_since) {
                (Some(mine), Some(theirs)) if mine != theirs => {
                    newer_first(mine, theirs, now).then_with(|| self.uid.cmp(&other.uid))
                }
                _ => Ordering::Equal,
            })
            .then(other.restarts.cmp(&self.restarts))
            .then_with(|| match (self.created, other.created) {
                (Some(mine), Some(theirs)) if mine != theirs => {
                    newer_first(mine, theirs, now).then_with(|| self.uid.cmp(&other.uid))
                }
                // An empty time goes first.
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                _ => Ordering::Equal,
            })
    }
}

/// The more recent time first, on the logarithmic scale of its age
/// (`Equal` when both fall in the same power of two).
fn newer_first(mine: Timestamp, theirs: Timestamp, now: Timestamp) -> Ordering {
    log2_age(mine, now).cmp(&log2_age(theirs, now))
}

/// `floor(log2(age in nanoseconds))`, -1 for no age.
fn log2_age(time: Timestamp, now: Timestamp) -> i64 {
    let nanos = now.as_nanosecond() - time.as_nanosecond();
    if nanos <= 0 {
        -1
    } else {
        i64::from(127 - nanos.leading_zeros())
    }
}

fn ready_since(pod: &Value) -> Option<Timestamp> {
    let conditions = pod.pointer("/status/conditions")?.as_array()?;
    let ready = conditions
        .iter()
        .find(|condition| condition["type"] == "Ready" && condition["status"] == "True")?;
    // Ready with no transition time: ready "since forever", like a zero time.
    Some(timestamp(ready.get("lastTransitionTime")).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn timestamp(value: Option<&Value>) -> Option<Timestamp> {
    value?.as_str()?.parse().ok()
}

/// A pod the controller counts: not terminating, not finished.
pub(crate) fn is_active(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && !matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        )
}

/// Whether `pod` carries every label of the workload's
/// `spec.selector.matchLabels` (a workload without one selects nothing).
pub(crate) fn selects(workload: &Value, pod: &Value) -> bool {
    let Some(wanted) = workload
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
    else {
        return false;
    };
    let labels = pod.pointer("/metadata/labels");
    !wanted.is_empty()
        && wanted
            .iter()
            .all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value))
}

/// The IP every emulated pod gets: loopback, where a test serves what the
/// pod's containers would (one port per pod, set by the test).
pub const POD_IP: &str = "127.0.0.1";

/// A new pod of `workload` (its template's labels, annotations and
/// containers), scheduled on `node`, running and ready since `at`, at
/// [`POD_IP`].
pub(crate) fn new_pod(workload: &Value, node: &str, at: Timestamp) -> Value {
    let meta = &workload["metadata"];
    let template = workload.pointer("/spec/template/metadata");
    let labels = template
        .and_then(|t| t.get("labels"))
        .or_else(|| workload.pointer("/spec/selector/matchLabels"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let annotations = template
        .and_then(|t| t.get("annotations"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let at = at.to_string();
    json!({
        "metadata": {
            "generateName": format!("{}-", meta["name"].as_str().unwrap_or("pod")),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": workload["apiVersion"],
                "kind": workload["kind"],
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": true,
            }],
        },
        "spec": {
            "nodeName": node,
            "containers": workload
                .pointer("/spec/template/spec/containers")
                .cloned()
                .unwrap_or_else(|| json!([])),
        },
        "status": {
            "phase": "Running",
            "podIP": POD_IP,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": at}],
            "containerStatuses": [{"name": "worker", "restartCount": 0, "ready": true}],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> String {
        Timestamp::from_second(1_767_225_600 + seconds)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<i64>, created: i64) -> Value {
        let conditions = match ready_at {
            Some(s) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": at(s)}]),
            None => json!([{"type": "Ready", "status": "False"}]),
        };
        json!({
            "metadata": {"name": name, "uid": name, "creationTimestamp": at(created), "annotations": {}},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conditions},
        })
    }

    fn names(pods: &[Value], now: i64) -> Vec<String> {
        let now = at(now).parse().unwrap_or(Timestamp::UNIX_EPOCH);
        deletion_order(pods, now)
            .into_iter()
            .map(|i| {
                pods[i]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn each_rule_in_turn() {
        let mut unscheduled = pod("unscheduled", "", "Pending", None, 0);
        unscheduled["spec"] = json!({});
        let pending = pod("pending", "n1", "Pending", None, 0);
        let unready = pod("unready", "n1", "Running", None, 0);
        let mut cheap = pod("cheap", "n2", "Running", Some(0), 0);
        cheap["metadata"]["annotations"][POD_DELETION_COST] = json!("-5");
        let ready = pod("ready", "n3", "Running", Some(0), 0);
        let mut dear = pod("dear", "n4", "Running", Some(0), 0);
        dear["metadata"]["annotations"][POD_DELETION_COST] = json!("100");
        let pods = [
            dear.clone(),
            ready.clone(),
            cheap.clone(),
            unready,
            pending,
            unscheduled,
        ];
        assert_eq!(
            names(&pods, 100),
            [
                "unscheduled",
                "pending",
                "unready",
                "cheap",
                "ready",
                "dear"
            ]
        );
    }

    #[test]
    fn doubled_up_then_ready_time_then_restarts_then_age() {
        // Two ready pods on n1, one on n2: n1's go first.
        let a = pod("a", "n1", "Running", Some(0), 0);
        let b = pod("b", "n1", "Running", Some(0), 0);
        let c = pod("c", "n2", "Running", Some(0), 0);
        assert_eq!(names(&[c.clone(), a.clone(), b.clone()], 1_000)[2], "c");
        // Ready for 1 s against ready for 1,000 s: the recent one first.
        let young = pod("young", "n1", "Running", Some(999), 0);
        let old = pod("old", "n2", "Running", Some(0), 0);
        assert_eq!(names(&[old, young], 1_000), ["young", "old"]);
        // Same ready time: more restarts first, then newer.
        let mut restarted = pod("restarted", "n1", "Running", Some(0), 0);
        restarted["status"]["containerStatuses"] = json!([{"restartCount": 3}]);
        let calm = pod("calm", "n2", "Running", Some(0), 0);
        assert_eq!(names(&[calm, restarted], 1_000), ["restarted", "calm"]);
        let newer = pod("newer", "n1", "Running", Some(0), 900);
        let older = pod("older", "n2", "Running", Some(0), 0);
        assert_eq!(names(&[older, newer], 1_000), ["newer", "older"]);
    }

    #[test]
    fn an_unparsable_cost_is_zero_and_selectors_need_every_label() {
        let mut odd = pod("odd", "n1", "Running", Some(0), 0);
        odd["metadata"]["annotations"][POD_DELETION_COST] = json!("high");
        let mut low = pod("low", "n2", "Running", Some(0), 0);
        low["metadata"]["annotations"][POD_DELETION_COST] = json!("-1");
        assert_eq!(names(&[odd, low], 10), ["low", "odd"]);

        let workload = json!({"spec": {"selector": {"matchLabels": {"app": "w", "tier": "q"}}}});
        let both = json!({"metadata": {"labels": {"app": "w", "tier": "q", "x": "y"}}});
        let one = json!({"metadata": {"labels": {"app": "w"}}});
        assert!(selects(&workload, &both));
        assert!(!selects(&workload, &one));
        assert!(!selects(&json!({"spec": {}}), &both));
    }
}
