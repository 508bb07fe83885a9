//! `simulate --recommend`: for one workload, the setting of each policy
//! that keeps the p99 wait within a target at the fewest worker-hours.
//!
//! A plain grid search over the knob a user would turn, each candidate a
//! full simulation on the same arrivals: targetMessagesPerWorker (with and
//! without the arrival-rate floor) for the WPA, the per-pod target for the
//! HPA and KEDA, and targetWaitSeconds for the wait-target policy (from
//! four times the target to a quarter of it: the setting is the policy's
//! aim, the simulation says what it achieves).

use wpa_core::WpaSpec;

use crate::error::SimError;
use crate::policy::{HpaSettings, KedaSettings};
use crate::sim::{Outcome, Policy, SimConfig, simulate};

/// Per-worker targets tried for the WPA, the HPA and KEDA.
const PER_WORKER_TARGETS: [u32; 9] = [1, 2, 3, 5, 10, 20, 50, 100, 200];

/// Multiples of the wait target tried as the wait-target policy's aim
/// (a looser aim can still keep the measured p99 within the target).
const WAIT_TARGET_FRACTIONS: [f64; 8] = [4.0, 3.0, 2.0, 1.5, 1.0, 0.75, 0.5, 0.25];

/// The best setting found for one policy.
#[derive(Debug, Clone)]
pub struct Recommendation {
    /// The policy with its best setting.
    pub policy: Policy,
    /// What it did.
    pub outcome: Outcome,
    /// Whether its p99 wait is within the target (otherwise: the candidate
    /// with the lowest p99, for reference).
    pub meets_target: bool,
    /// Candidates simulated.
    pub candidates: usize,
}

/// For `config`, the cheapest setting of each policy (WPA, HPA, KEDA,
/// wait target, in that order) whose p99 wait is at most `target_wait_s`.
/// `spec` gives the bounds and `secondsToProcessOneJob` (the service
/// time's mean when it has none); `startup_s` is `workerStartupSeconds`.
pub fn recommend(
    config: &SimConfig,
    spec: &WpaSpec,
    target_wait_s: f64,
    startup_s: f64,
) -> Result<Vec<Recommendation>, SimError> {
    let seconds_per_job = match spec.seconds_to_process_one_job() {
        0.0 => config.workload.service.mean(),
        seconds => seconds,
    };
    let reference = spec.without_wait_target();
    let with = |target: u32, seconds: f64| {
        WpaSpec::new(
            reference.min_replicas(),
            reference.max_replicas(),
            target,
            seconds,
            reference.max_disruption(),
        )
    };

    let mut wpa = Vec::new();
    for target in PER_WORKER_TARGETS {
        for seconds in [0.0, seconds_per_job] {
            wpa.push(Policy::Wpa {
                spec: with(target, seconds)?,
                scale_down_delay: wpa_core::DEFAULT_SCALE_DOWN_DELAY,
                idle_first: false,
            });
        }
    }
    let mut hpa = Vec::new();
    let mut keda = Vec::new();
    for target in PER_WORKER_TARGETS {
        let base = with(target, 0.0)?;
        hpa.push(Policy::Hpa(HpaSettings::like_wpa(&base)));
        keda.push(Policy::Keda(KedaSettings::like_wpa(&base)));
    }
    let mut wait = Vec::new();
    for fraction in WAIT_TARGET_FRACTIONS {
        let aim = (target_wait_s * fraction).max(0.5);
        wait.push(Policy::Wpa {
            spec: with(reference.target_messages_per_worker(), seconds_per_job)?
                .with_wait_target(aim, startup_s)?,
            scale_down_delay: wpa_core::DEFAULT_SCALE_DOWN_DELAY,
            idle_first: false,
        });
    }

    [wpa, hpa, keda, wait]
        .into_iter()
        .map(|candidates| best(config, candidates, target_wait_s))
        .collect()
}

/// Runs every candidate; the cheapest within the target, else the fastest.
fn best(
    config: &SimConfig,
    candidates: Vec<Policy>,
    target_wait_s: f64,
) -> Result<Recommendation, SimError> {
    let count = candidates.len();
    let mut best: Option<Recommendation> = None;
    for policy in candidates {
        let outcome = simulate(config, &policy, None)?;
        let meets_target = outcome.wait_p99_s <= target_wait_s;
        let better = match &best {
            None => true,
            Some(current) => match (meets_target, current.meets_target) {
                (true, false) => true,
                (false, true) => false,
                (true, true) => outcome.worker_seconds < current.outcome.worker_seconds,
                (false, false) => outcome.wait_p99_s < current.outcome.wait_p99_s,
            },
        };
        if better {
            best = Some(Recommendation {
                policy,
                outcome,
                meets_target,
                candidates: count,
            });
        }
    }
    best.ok_or_else(|| SimError::Reconcile("no candidate to recommend".into()))
}
