//! The baselines the WPA is compared with: an HPA on an external
//! AverageValue metric, and KEDA's scaler on top of such an HPA. These are
//! models of Kubernetes' and KEDA's documented algorithms (sources in the
//! README), not of the WPA: the WPA itself is always the core's `reconcile`.

use std::collections::VecDeque;

use serde::Serialize;
use wpa_core::WpaSpec;

/// An HPA scaling a Deployment on an external metric (the queue length)
/// with target type `AverageValue`, Kubernetes' default behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HpaSettings {
    /// `minReplicas` (at least 1: an HPA never scales to zero by itself).
    pub min_replicas: u32,
    /// `maxReplicas`.
    pub max_replicas: u32,
    /// The metric's `averageValue` target: messages per pod.
    pub target_per_pod: u32,
    /// `--horizontal-pod-autoscaler-sync-period` (15 s).
    pub sync_s: f64,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1).
    pub tolerance: f64,
    /// `behavior.scaleDown.stabilizationWindowSeconds` (300).
    pub scale_down_window_s: f64,
    /// `behavior.scaleUp` Percent policy value (100).
    pub scale_up_percent: u32,
    /// `behavior.scaleUp` Pods policy value (4).
    pub scale_up_pods: u32,
    /// `behavior.scaleUp` policies' `periodSeconds` (15).
    pub scale_up_period_s: f64,
}

impl HpaSettings {
    /// The HPA a user would write for the same workers: same bounds (the
    /// minimum raised to 1), `averageValue` = `targetMessagesPerWorker`,
    /// Kubernetes defaults for everything else.
    #[must_use]
    pub fn like_wpa(spec: &WpaSpec) -> Self {
        HpaSettings {
            min_replicas: spec.min_replicas().max(1),
            max_replicas: spec.max_replicas().max(1),
            target_per_pod: spec.target_messages_per_worker(),
            sync_s: 15.0,
            tolerance: 0.1,
            scale_down_window_s: 300.0,
            scale_up_percent: 100,
            scale_up_pods: 4,
            scale_up_period_s: 15.0,
        }
    }
}

/// A KEDA `ScaledObject` on the queue: KEDA activates 0 -> 1 and
/// deactivates to 0, and an HPA it manages scales between 1 and the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KedaSettings {
    /// The HPA KEDA creates (its minimum is `max(minReplicaCount, 1)`).
    pub hpa: HpaSettings,
    /// `minReplicaCount` (0 allows scale to zero).
    pub min_replica_count: u32,
    /// `pollingInterval` (30 s): how often activation is checked.
    pub polling_s: f64,
    /// `cooldownPeriod` (300 s): inactivity before scaling to zero.
    pub cooldown_s: f64,
    /// `activationQueueLength` (0): the queue is active above this.
    pub activation_threshold: u64,
}

impl KedaSettings {
    /// The ScaledObject a user would write for the same workers, with
    /// KEDA's defaults.
    #[must_use]
    pub fn like_wpa(spec: &WpaSpec) -> Self {
        KedaSettings {
            hpa: HpaSettings::like_wpa(spec),
            min_replica_count: spec.min_replicas(),
            polling_s: 30.0,
            cooldown_s: 300.0,
            activation_threshold: 0,
        }
    }
}

/// The state an HPA keeps between syncs: recent recommendations (for the
/// scale-down stabilization window) and recent scale-ups (for the rate
/// limit).
#[derive(Debug, Clone)]
pub struct HpaModel {
    settings: HpaSettings,
    recommendations: VecDeque<(f64, u32)>,
    scale_ups: VecDeque<(f64, u32)>,
}

impl HpaModel {
    /// A fresh HPA (no history).
    #[must_use]
    pub fn new(settings: HpaSettings) -> Self {
        HpaModel {
            settings,
            recommendations: VecDeque::new(),
            scale_ups: VecDeque::new(),
        }
    }

    /// Records a past recommendation of `replicas` at `time_s`: an HPA that
    /// has been running steadily, not one just created.
    #[must_use]
    pub fn with_history(mut self, time_s: f64, replicas: u32) -> Self {
        self.recommendations.push_back((time_s, replicas));
        self
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &HpaSettings {
        &self.settings
    }

    /// One HPA sync at `now_s` with `current` replicas and the metric value
    /// `queue_length`: the replica count to set (equal to `current` when
    /// nothing changes). At 0 replicas an HPA is disabled and keeps 0.
    ///
    /// Follows `pkg/controller/podautoscaler/horizontal.go`:
    /// `GetExternalPerPodMetricReplicas` (ratio, tolerance, ceil), then
    /// `stabilizeRecommendationWithBehaviors` and
    /// `convertDesiredReplicasWithBehaviorRate`.
    pub fn sync(&mut self, now_s: f64, current: u32, queue_length: u64) -> u32 {
        let s = self.settings;
        if current == 0 {
            return 0;
        }
        let proposed = if current > s.max_replicas {
            s.max_replicas
        } else if current < s.min_replicas {
            s.min_replicas
        } else {
            let target = f64::from(s.target_per_pod);
            let ratio = queue_length as f64 / (target * f64::from(current));
            let recommendation = if (1.0 - ratio).abs() <= s.tolerance {
                current
            } else {
                let wanted = (queue_length as f64 / target).ceil();
                wanted.min(f64::from(u32::MAX)) as u32
            };
            self.stabilized_and_limited(now_s, current, recommendation)
        };
        if proposed > current {
            self.scale_ups.push_back((now_s, proposed - current));
        }
        proposed
    }

    fn stabilized_and_limited(&mut self, now_s: f64, current: u32, recommendation: u32) -> u32 {
        let s = self.settings;
        // Stabilization: down to no lower than the highest recommendation
        // of the window (the scale-up window is 0: only this one counts).
        let window_start = now_s - s.scale_down_window_s;
        while self
            .recommendations
            .front()
            .is_some_and(|&(time, _)| time <= window_start)
        {
            self.recommendations.pop_front();
        }
        let down_limit = self
            .recommendations
            .iter()
            .map(|&(_, r)| r)
            .fold(recommendation, u32::max);
        self.recommendations.push_back((now_s, recommendation));
        let mut desired = current.max(recommendation).min(down_limit);

        if desired > current {
            // Scale-up rate: max(+percent%, +pods) per period, measured from
            // the replicas at the start of the period.
            let period_start = now_s - s.scale_up_period_s;
            while self
                .scale_ups
                .front()
                .is_some_and(|&(time, _)| time <= period_start)
            {
                self.scale_ups.pop_front();
            }
            let added: u32 = self.scale_ups.iter().map(|&(_, n)| n).sum();
            let start = f64::from(current.saturating_sub(added));
            let by_percent = (start * (1.0 + f64::from(s.scale_up_percent) / 100.0)).ceil();
            let by_pods = start + f64::from(s.scale_up_pods);
            let limit = (by_percent.max(by_pods).min(f64::from(u32::MAX)) as u32).max(current);
            desired = desired.min(limit).min(s.max_replicas);
        } else if desired < current {
            // The default scale-down policy (100% per 15 s) lets any step
            // through: only the minimum binds.
            desired = desired.max(s.min_replicas);
        }
        desired
    }
}

/// KEDA's scale loop on top of its HPA.
#[derive(Debug, Clone)]
pub struct KedaModel {
    settings: KedaSettings,
    hpa: HpaModel,
    last_active_s: f64,
}

impl KedaModel {
    /// A ScaledObject last active at `start_s` (the queue was in use before
    /// the simulation starts), its HPA last recommending `replicas`.
    #[must_use]
    pub fn new(settings: KedaSettings, start_s: f64, replicas: u32) -> Self {
        let mut hpa_settings = settings.hpa;
        hpa_settings.min_replicas = settings.min_replica_count.max(1);
        KedaModel {
            settings,
            hpa: HpaModel::new(hpa_settings).with_history(start_s, replicas),
            last_active_s: start_s,
        }
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &KedaSettings {
        &self.settings
    }

    /// KEDA's polling step (every `pollingInterval`): activate a scaled-to-
    /// zero target (to `max(minReplicaCount, 1)`) when the queue is active,
    /// scale to zero after `cooldownPeriod` without activity.
    pub fn poll(&mut self, now_s: f64, current: u32, queue_length: u64) -> u32 {
        let s = self.settings;
        if queue_length > s.activation_threshold {
            self.last_active_s = now_s;
            if current == 0 {
                return s.min_replica_count.max(1);
            }
        } else if current > 0
            && s.min_replica_count == 0
            && self.last_active_s + s.cooldown_s < now_s
        {
            return 0;
        }
        current
    }

    /// A sync of the HPA KEDA manages (disabled at 0 replicas).
    pub fn hpa_sync(&mut self, now_s: f64, current: u32, queue_length: u64) -> u32 {
        self.hpa.sync(now_s, current, queue_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(min: u32, max: u32, target: u32) -> HpaModel {
        HpaModel::new(HpaSettings {
            min_replicas: min,
            max_replicas: max,
            target_per_pod: target,
            sync_s: 15.0,
            tolerance: 0.1,
            scale_down_window_s: 300.0,
            scale_up_percent: 100,
            scale_up_pods: 4,
            scale_up_period_s: 15.0,
        })
    }

    #[test]
    fn scale_up_is_limited_to_double_or_plus_four_per_period() {
        let mut model = hpa(1, 100, 10);
        // 100 messages at 10 per pod want 10; from 1, max(2, 5) = 5.
        assert_eq!(model.sync(0.0, 1, 100), 5);
        // 15 s later the period restarts: from 5, max(10, 9) = 10.
        assert_eq!(model.sync(15.0, 5, 100), 10);
        // 500 messages want 50: from 10, max(20, 14) = 20.
        assert_eq!(model.sync(30.0, 10, 500), 20);
    }

    #[test]
    fn tolerance_keeps_the_count_within_ten_percent() {
        let mut model = hpa(1, 100, 10);
        assert_eq!(model.sync(0.0, 10, 109), 10); // ratio 1.09
        assert_eq!(model.sync(15.0, 10, 111), 12); // ratio 1.11: ceil(11.1)
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window() {
        let mut model = hpa(1, 100, 10);
        assert_eq!(model.sync(0.0, 10, 100), 10);
        // Empty queue: the recommendation is 0 (then the minimum, 1), but
        // the 10 of t = 0 holds the count for 300 s.
        assert_eq!(model.sync(15.0, 10, 0), 10);
        assert_eq!(model.sync(285.0, 10, 0), 10);
        assert_eq!(model.sync(300.0, 10, 0), 1);
    }
}
