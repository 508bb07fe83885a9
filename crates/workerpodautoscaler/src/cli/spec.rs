//! The WorkerPodAutoScaler spec as flags (`watch`, `simulate`) and the
//! controller-wide defaults a spec falls back on (`run`, `watch`,
//! `simulate`, `decide`).

use std::time::Duration;

use wpa_core::{MaxDisruption, RawWpaSpec};

use super::values::{delay, max_disruption};

/// A spec's fields, each optional here: `watch` requires the bounds and
/// the target, `simulate` overrides its scenario's spec with those given.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub(crate) struct SpecArgs {
    /// spec.minReplicas.
    #[arg(
        long,
        value_name = "N",
        env = "WORKERPODAUTOSCALER_MIN_REPLICAS",
        allow_negative_numbers = true
    )]
    pub(crate) min_replicas: Option<i64>,
    /// spec.maxReplicas.
    #[arg(
        long,
        value_name = "N",
        env = "WORKERPODAUTOSCALER_MAX_REPLICAS",
        allow_negative_numbers = true
    )]
    pub(crate) max_replicas: Option<i64>,
    /// spec.targetMessagesPerWorker (at least 1).
    #[arg(
        long,
        value_name = "N",
        env = "WORKERPODAUTOSCALER_TARGET_MESSAGES_PER_WORKER",
        allow_negative_numbers = true
    )]
    pub(crate) target_messages_per_worker: Option<i64>,
    /// spec.secondsToProcessOneJob (0 or absent: no arrival-rate floor).
    #[arg(
        long,
        value_name = "S",
        env = "WORKERPODAUTOSCALER_SECONDS_TO_PROCESS_ONE_JOB",
        allow_negative_numbers = true
    )]
    pub(crate) seconds_to_process_one_job: Option<f64>,
    /// spec.maxDisruption: pods ("2") or a percentage ("25%"); absent:
    /// --wpa-default-max-disruption.
    #[arg(
        long,
        value_name = "PODS_OR_PERCENT",
        env = "WORKERPODAUTOSCALER_MAX_DISRUPTION",
        allow_hyphen_values = true
    )]
    pub(crate) max_disruption: Option<String>,
    /// spec.targetWaitSeconds: the wait 99% of messages should stay under;
    /// selects the wait-target policy (needs secondsToProcessOneJob).
    #[arg(
        long,
        visible_alias = "target-wait",
        value_name = "S",
        env = "WORKERPODAUTOSCALER_TARGET_WAIT_SECONDS",
        allow_negative_numbers = true
    )]
    pub(crate) target_wait_seconds: Option<f64>,
    /// spec.workerStartupSeconds: from a scale up until a new pod takes
    /// jobs (wait-target policy; default 30).
    #[arg(
        long,
        value_name = "S",
        env = "WORKERPODAUTOSCALER_WORKER_STARTUP_SECONDS",
        allow_negative_numbers = true
    )]
    pub(crate) worker_startup_seconds: Option<f64>,
}

impl SpecArgs {
    /// `base` with the fields given here replaced.
    #[must_use]
    pub(crate) fn over(&self, mut base: RawWpaSpec) -> RawWpaSpec {
        if self.min_replicas.is_some() {
            base.min_replicas = self.min_replicas;
        }
        if self.max_replicas.is_some() {
            base.max_replicas = self.max_replicas;
        }
        if self.target_messages_per_worker.is_some() {
            base.target_messages_per_worker = self.target_messages_per_worker;
        }
        if self.seconds_to_process_one_job.is_some() {
            base.seconds_to_process_one_job = self.seconds_to_process_one_job;
        }
        if self.max_disruption.is_some() {
            base.max_disruption.clone_from(&self.max_disruption);
        }
        if self.target_wait_seconds.is_some() {
            base.target_wait_seconds = self.target_wait_seconds;
        }
        if self.worker_startup_seconds.is_some() {
            base.worker_startup_seconds = self.worker_startup_seconds;
        }
        base
    }

    /// The spec these flags give alone (`watch`'s).
    #[cfg(feature = "controller")]
    #[must_use]
    pub(crate) fn raw(&self) -> RawWpaSpec {
        self.over(RawWpaSpec::default())
    }
}

/// The reference's controller-wide defaults for every WPA.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct DefaultsArgs {
    /// maxDisruption of the WorkerPodAutoScalers that set none: pods ("2")
    /// or a percentage ("25%").
    #[arg(
        long,
        value_name = "PODS_OR_PERCENT",
        env = "WORKERPODAUTOSCALER_WPA_DEFAULT_MAX_DISRUPTION",
        default_value = "100%",
        value_parser = max_disruption,
        allow_hyphen_values = true
    )]
    pub(crate) wpa_default_max_disruption: MaxDisruption,
    /// Seconds (or a duration: 10m) after the last scale activity before a
    /// scale down is allowed.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WORKERPODAUTOSCALER_SCALE_DOWN_DELAY_AFTER_LAST_SCALE_ACTIVITY",
        default_value = "600",
        value_parser = delay,
        allow_negative_numbers = true
    )]
    pub(crate) scale_down_delay_after_last_scale_activity: Duration,
}
