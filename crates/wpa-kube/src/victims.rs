//! Which pods a scale down removes, and the fewest
//! `controller.kubernetes.io/pod-deletion-cost` writes that make them idle
//! ones. Pure: the pods come in, the writes go out.
//!
//! When a ReplicaSet shrinks by `n`, its controller deletes the first `n`
//! active pods in its order (Kubernetes' `ActivePodsWithRanks`): not
//! scheduled, then `Pending`, `Unknown`, running but not ready, ready
//! ([`Rank`]); within a rank, the lower deletion cost first (an int32
//! annotation, 0 when absent or unparsable); later rules (pods doubled up
//! on a node, ready time, restarts, age) decide only between equal costs.
//!
//! So the victims of a scale down by `n` are: every pod of the ranks that
//! fit whole into `n`, then, in the rank where the cut falls, the pods of
//! lowest cost. [`removable`] is the largest `n` for which all of them can
//! be idle, [`deletion_costs`] the writes that make the cut fall on idle
//! pods only: a cost strictly below every other pod of that rank, written
//! either on the victims (lowered) or on the others (raised), whichever
//! takes fewer writes. Costs already in place count: a stale annotation
//! from an earlier scale down is harmless, it is either already right or
//! rewritten.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

/// The annotation the ReplicaSet controller reads (beta, on by default
/// since Kubernetes 1.22).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Where a pod stands in the ReplicaSet controller's deletion order before
/// its deletion cost counts: a lower rank goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rank {
    /// No `spec.nodeName`.
    Unscheduled,
    /// Phase `Pending`.
    Pending,
    /// Phase `Unknown`.
    Unknown,
    /// Running, not ready.
    NotReady,
    /// Running and ready.
    Ready,
}

/// What the victim choice reads of one active pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// `metadata.name`.
    pub name: String,
    /// Its rank in the deletion order.
    pub rank: Rank,
    /// Its `pod-deletion-cost` (0 when absent or unparsable, as the
    /// ReplicaSet controller reads it).
    pub cost: i32,
    /// Whether removing it stops no job: it answered the busy probe
    /// "idle", or it has no IP yet (no worker can have taken a job).
    pub idle: bool,
}

impl PodView {
    /// The view of `pod`, `idle` as the probe (or its lack of an IP) says.
    #[must_use]
    pub fn of(pod: &Pod, idle: bool) -> Self {
        PodView {
            name: pod.metadata.name.clone().unwrap_or_default(),
            rank: rank(pod),
            cost: deletion_cost(pod),
            idle,
        }
    }
}

/// One annotation write: `pod`'s deletion cost becomes `cost`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CostWrite {
    /// The pod's name.
    pub pod: String,
    /// The new `pod-deletion-cost`.
    pub cost: i32,
}

/// Whether the ReplicaSet controller counts `pod`: not terminating, not
/// finished.
#[must_use]
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// The pod's rank in the deletion order.
#[must_use]
pub fn rank(pod: &Pod) -> Rank {
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.node_name.as_deref())
        .is_some_and(|node| !node.is_empty());
    if !scheduled {
        return Rank::Unscheduled;
    }
    let status = pod.status.as_ref();
    match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => {}
        Some("Unknown") => return Rank::Unknown,
        // The controller ranks every other phase with Pending.
        _ => return Rank::Pending,
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
    if ready { Rank::Ready } else { Rank::NotReady }
}

/// The pod's `pod-deletion-cost`: 0 when absent or not an int32, as the
/// ReplicaSet controller reads it.
#[must_use]
pub fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(POD_DELETION_COST))
        .and_then(|cost| cost.trim().parse().ok())
        .unwrap_or(0)
}

/// The pods grouped by rank, lowest (first to go) first.
fn by_rank(pods: &[PodView]) -> BTreeMap<Rank, Vec<&PodView>> {
    let mut ranks: BTreeMap<Rank, Vec<&PodView>> = BTreeMap::new();
    for pod in pods {
        ranks.entry(pod.rank).or_default().push(pod);
    }
    ranks
}

/// The most pods one scale down can remove with only idle ones among them:
/// every pod of the ranks that are idle throughout, then the idle pods of
/// the first rank that is not.
#[must_use]
pub fn removable(pods: &[PodView]) -> u32 {
    let mut total: usize = 0;
    for pods in by_rank(pods).values() {
        let idle = pods.iter().filter(|pod| pod.idle).count();
        total += idle;
        if idle < pods.len() {
            break;
        }
    }
    u32::try_from(total).unwrap_or(u32::MAX)
}

/// The fewest deletion-cost writes after which a scale down by `remove`
/// pods deletes idle pods only (`remove` at most [`removable`]; beyond it
/// the victims are the idle ones plus whatever the controller picks). Sorted
/// by pod name.
#[must_use]
pub fn deletion_costs(pods: &[PodView], remove: u32) -> Vec<CostWrite> {
    let mut left = remove as usize;
    for pods in by_rank(pods).values() {
        if left >= pods.len() {
            // The whole rank goes: its order does not matter.
            left -= pods.len();
            continue;
        }
        return if left == 0 {
            Vec::new()
        } else {
            cut_within(pods, left)
        };
    }
    Vec::new()
}

/// The writes that make `remove` idle pods (fewer than `pods`) the lowest
/// cost of their rank.
fn cut_within(pods: &[&PodView], remove: usize) -> Vec<CostWrite> {
    let mut idle: Vec<&PodView> = pods.iter().copied().filter(|pod| pod.idle).collect();
    // The cheapest idle pods are the victims: the fewest to lower.
    idle.sort_by(|a, b| a.cost.cmp(&b.cost).then_with(|| a.name.cmp(&b.name)));
    let victims = &idle[..remove.min(idle.len())];
    let keepers: Vec<&PodView> = pods
        .iter()
        .copied()
        .filter(|pod| !victims.iter().any(|v| v.name == pod.name))
        .collect();
    let (Some(highest_victim), Some(lowest_keeper)) = (
        victims.iter().map(|pod| pod.cost).max(),
        keepers.iter().map(|pod| pod.cost).min(),
    ) else {
        return Vec::new();
    };
    if highest_victim < lowest_keeper {
        return Vec::new();
    }
    // Lower the victims under the cheapest keeper, or raise the keepers
    // over the dearest victim: whichever writes fewer (an int32 bound can
    // rule one out).
    let lowered: Option<Vec<CostWrite>> = lowest_keeper.checked_sub(1).map(|cost| {
        victims
            .iter()
            .filter(|pod| pod.cost >= lowest_keeper)
            .map(|pod| CostWrite {
                pod: pod.name.clone(),
                cost,
            })
            .collect()
    });
    let raised: Option<Vec<CostWrite>> = highest_victim.checked_add(1).map(|cost| {
        keepers
            .iter()
            .filter(|pod| pod.cost <= highest_victim)
            .map(|pod| CostWrite {
                pod: pod.name.clone(),
                cost,
            })
            .collect()
    });
    let mut writes = match (lowered, raised) {
        (Some(lowered), Some(raised)) if raised.len() < lowered.len() => raised,
        (Some(lowered), _) => lowered,
        (None, Some(raised)) => raised,
        // Victims at i32::MAX and keepers at i32::MIN: both move.
        (None, None) => victims
            .iter()
            .map(|pod| CostWrite {
                pod: pod.name.clone(),
                cost: i32::MIN,
            })
            .chain(
                keepers
                    .iter()
                    .filter(|pod| pod.cost == i32::MIN)
                    .map(|pod| CostWrite {
                        pod: pod.name.clone(),
                        cost: i32::MIN + 1,
                    }),
            )
            .collect(),
    };
    writes.sort();
    writes
}
