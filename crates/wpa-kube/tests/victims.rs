//! The victim choice against the ReplicaSet controller's order: after the
//! writes, a scale down by up to `removable` pods deletes idle pods only,
//! with ties broken the worst way; `removable` is the most for which that
//! is possible; the writes are few.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use proptest::prelude::*;
use wpa_kube::victims::{CostWrite, PodView, Rank, deletion_costs, removable};

fn arb_pods() -> impl Strategy<Value = Vec<PodView>> {
    let rank = prop_oneof![
        1 => Just(Rank::Unscheduled),
        1 => Just(Rank::Pending),
        1 => Just(Rank::Unknown),
        2 => Just(Rank::NotReady),
        8 => Just(Rank::Ready),
    ];
    let cost = prop_oneof![
        4 => Just(0i32),
        2 => -3..3i32,
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
        1 => any::<i32>(),
    ];
    prop::collection::vec((rank, cost, any::<bool>()), 0..40).prop_map(|pods| {
        pods.into_iter()
            .enumerate()
            .map(|(i, (rank, cost, idle))| PodView {
                name: format!("pod-{i:02}"),
                rank,
                cost,
                idle,
            })
            .collect()
    })
}

/// The pods after the writes.
fn apply(pods: &[PodView], writes: &[CostWrite]) -> Vec<PodView> {
    let costs: HashMap<&str, i32> = writes.iter().map(|w| (w.pod.as_str(), w.cost)).collect();
    pods.iter()
        .map(|pod| PodView {
            cost: costs.get(pod.name.as_str()).copied().unwrap_or(pod.cost),
            ..pod.clone()
        })
        .collect()
}

/// The first `n` the controller deletes, ties between equal ranks and
/// costs broken the worst way (busy pods first).
fn worst_victims(pods: &[PodView], n: usize) -> Vec<PodView> {
    let mut order = pods.to_vec();
    order.sort_by_key(|pod| (pod.rank, pod.cost, pod.idle));
    order.truncate(n);
    order
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn no_busy_pod_among_the_victims(pods in arb_pods()) {
        let most = removable(&pods);
        prop_assert!(most as usize <= pods.len());
        for n in 0..=most {
            let writes = deletion_costs(&pods, n);
            let after = apply(&pods, &writes);
            let victims = worst_victims(&after, n as usize);
            prop_assert!(victims.iter().all(|pod| pod.idle), "n {n}: {victims:?} after {writes:?}");
            // Only pods of the rank where the cut falls are written.
            let ranks: Vec<Rank> = writes
                .iter()
                .filter_map(|w| pods.iter().find(|p| p.name == w.pod).map(|p| p.rank))
                .collect();
            prop_assert!(ranks.windows(2).all(|pair| pair[0] == pair[1]), "{writes:?}");
            // Each pod written at most once.
            let mut names: Vec<&str> = writes.iter().map(|w| w.pod.as_str()).collect();
            names.dedup();
            prop_assert_eq!(names.len(), writes.len());
        }
    }

    #[test]
    fn one_more_would_take_a_busy_pod(pods in arb_pods()) {
        let most = removable(&pods) as usize;
        prop_assume!(most < pods.len());
        // Whatever the costs, the first most + 1 hold a busy pod: the
        // ranks before the cut are whole, and the cut rank's idle pods are
        // all taken already.
        let mut ranks: Vec<Rank> = pods.iter().map(|p| p.rank).collect();
        ranks.sort();
        ranks.dedup();
        let mut taken = 0;
        for rank in ranks {
            let in_rank: Vec<&PodView> = pods.iter().filter(|p| p.rank == rank).collect();
            let idle = in_rank.iter().filter(|p| p.idle).count();
            if idle < in_rank.len() {
                prop_assert_eq!(taken + idle, most);
                break;
            }
            taken += in_rank.len();
        }
    }

    #[test]
    fn an_order_already_right_writes_nothing(pods in arb_pods(), n in 0..40u32) {
        let n = n.min(removable(&pods));
        let writes = deletion_costs(&pods, n);
        let after = apply(&pods, &writes);
        // Deciding again on the written costs writes nothing more.
        prop_assert_eq!(deletion_costs(&after, n), Vec::<CostWrite>::new());
    }
}

#[test]
fn the_smaller_side_is_written() {
    let pod = |i: usize, idle: bool, cost: i32| PodView {
        name: format!("p{i}"),
        rank: Rank::Ready,
        cost,
        idle,
    };
    // 10 ready pods at cost 0, one busy: removing 9 raises the busy one.
    let mut pods: Vec<PodView> = (0..9).map(|i| pod(i, true, 0)).collect();
    pods.push(pod(9, false, 0));
    assert_eq!(
        deletion_costs(&pods, 9),
        vec![CostWrite {
            pod: "p9".to_owned(),
            cost: 1
        }]
    );
    // Removing 2 of them lowers those 2 (the cheapest idle, by name).
    assert_eq!(
        deletion_costs(&pods, 2),
        vec![
            CostWrite {
                pod: "p0".to_owned(),
                cost: -1
            },
            CostWrite {
                pod: "p1".to_owned(),
                cost: -1
            }
        ]
    );
    // A stale low cost on an idle pod already orders it: no write.
    pods[4].cost = -1;
    assert_eq!(deletion_costs(&pods, 1), Vec::new());
    // A stale low cost on a busy pod: one write either way (lowering the
    // victim under it is preferred on a tie).
    pods[4].cost = 0;
    pods[9].cost = -5;
    assert_eq!(
        deletion_costs(&pods, 1),
        vec![CostWrite {
            pod: "p0".to_owned(),
            cost: -6
        }]
    );
    // Removing 8 of the 9 idle ones: raising the 2 others beats lowering 8.
    assert_eq!(
        deletion_costs(&pods, 8),
        vec![
            CostWrite {
                pod: "p8".to_owned(),
                cost: 1
            },
            CostWrite {
                pod: "p9".to_owned(),
                cost: 1
            }
        ]
    );
    // Pods not ready go first whatever their cost: removing them takes no write.
    pods[9].rank = Rank::NotReady;
    pods[9].idle = true;
    assert_eq!(removable(&pods), 10);
    assert_eq!(deletion_costs(&pods, 1), Vec::new());
}
