//! What to run: the queue service, the controller's and adapters' timing,
//! the run's settings, and the policy to simulate.

use std::time::Duration;

use serde::Serialize;
use wpa_core::WpaSpec;

use crate::error::{SimError, invalid};
use crate::policy::{HpaSettings, KedaSettings};
use crate::workload::Workload;

/// Which queue the workers read, and so what the WPA's adapter can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Amazon SQS: counts by short poll, arrival rate and idleness from
    /// CloudWatch windows in the past.
    Sqs,
    /// beanstalkd: real-time counts from `stats-tube`, idle workers from
    /// `current-waiting`, no arrival rate.
    Beanstalkd,
    /// A Redis list read by `BRPOP` workers (no processing list): only the
    /// waiting messages are seen (what a worker holds is not), idleness only
    /// when nothing waits and, without a counter, no arrival rate.
    RedisList,
    /// RabbitMQ: ready + unacknowledged from the management API, sampled
    /// every 5 s and shown 2.4 s later; idle consumers (one per pod,
    /// prefetch 1, manual acks) from the same sample; the publish rate.
    Rabbitmq,
    /// NATS JetStream, a pull consumer: real-time pending and ack-pending,
    /// the waiting pull requests as idle workers, the stream's sequence as
    /// the arrival counter.
    Nats,
}

impl Backend {
    /// Every backend, by `--backend` name.
    pub const ALL: [(Backend, &'static str); 5] = [
        (Backend::Sqs, "sqs"),
        (Backend::Beanstalkd, "beanstalkd"),
        (Backend::RedisList, "redis"),
        (Backend::Rabbitmq, "rabbitmq"),
        (Backend::Nats, "nats"),
    ];

    /// Its `--backend` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        Backend::ALL
            .iter()
            .find(|(backend, _)| *backend == self)
            .map_or("sqs", |(_, name)| name)
    }
}

/// The WPA controller's and adapters' timing (the reference's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdapterTiming {
    /// `--resync-period`: how often the controller decides (20 s).
    pub resync_s: f64,
    /// When in each resync period the controller runs, after the poller
    /// (10 s: the two loops are independent; half a period on average).
    pub resync_offset_s: f64,
    /// `--sqs-short-poll-interval` / `--beanstalk-short-poll-interval` (20 s).
    pub short_poll_s: f64,
    /// `--sqs-long-poll-interval` / `--beanstalk-long-poll-interval` (20 s).
    pub long_poll_s: f64,
    /// How long a CloudWatch answer is cached (60 s).
    pub cloudwatch_cache_s: f64,
}

impl Default for AdapterTiming {
    fn default() -> Self {
        AdapterTiming {
            resync_s: 20.0,
            resync_offset_s: 10.0,
            short_poll_s: 20.0,
            long_poll_s: 20.0,
            cloudwatch_cache_s: 60.0,
        }
    }
}

/// Everything about a run except the policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimConfig {
    /// Arrivals and service times.
    pub workload: Workload,
    /// Simulated seconds.
    pub horizon_s: f64,
    /// Seed of every random draw: same seed, same result.
    pub seed: u64,
    /// The queue service.
    pub backend: Backend,
    /// Seconds from a scale up until a new pod takes jobs (30 s).
    pub startup_delay_s: f64,
    /// `terminationGracePeriodSeconds` (30 s): a removed busy worker
    /// finishes its job if it can within this, else the job is interrupted.
    pub grace_period_s: f64,
    /// SQS visibility timeout (30 s): an interrupted job's message becomes
    /// visible again this long after the kill. On beanstalkd the closed
    /// connection releases the job at once, whatever this says.
    pub visibility_timeout_s: f64,
    /// Ready workers at the start; `None`: enough for the rate at time 0
    /// (`ceil(rate * mean service time)`), within the policy's bounds.
    pub initial_replicas: Option<u32>,
    /// WPA controller and adapter timing.
    pub adapter: AdapterTiming,
    /// Points of the time series kept for plots (0: none).
    pub series_points: usize,
}

impl SimConfig {
    /// A configuration with the defaults above.
    #[must_use]
    pub fn new(workload: Workload, horizon_s: f64, seed: u64) -> Self {
        SimConfig {
            workload,
            horizon_s,
            seed,
            backend: Backend::Sqs,
            startup_delay_s: 30.0,
            grace_period_s: 30.0,
            visibility_timeout_s: 30.0,
            initial_replicas: None,
            adapter: AdapterTiming::default(),
            series_points: 0,
        }
    }

    /// Checks the workload and every time.
    pub fn validate(&self) -> Result<(), SimError> {
        self.workload.validate()?;
        if !(self.horizon_s.is_finite()
            && self.horizon_s >= 1.0
            && self.horizon_s <= 366.0 * 86_400.0)
        {
            return Err(invalid(
                "horizon",
                format!("must be between 1 s and 366 days, got {} s", self.horizon_s),
            ));
        }
        let times = [
            ("startup delay", self.startup_delay_s),
            ("grace period", self.grace_period_s),
            ("visibility timeout", self.visibility_timeout_s),
            ("resync offset", self.adapter.resync_offset_s),
            ("CloudWatch cache", self.adapter.cloudwatch_cache_s),
        ];
        for (what, value) in times {
            if !(value.is_finite() && (0.0..=86_400.0).contains(&value)) {
                return Err(invalid(
                    what,
                    format!("must be between 0 and 86400 s, got {value}"),
                ));
            }
        }
        let periods = [
            ("resync period", self.adapter.resync_s),
            ("short poll interval", self.adapter.short_poll_s),
            ("long poll interval", self.adapter.long_poll_s),
        ];
        for (what, value) in periods {
            if !(value.is_finite() && (0.001..=86_400.0).contains(&value)) {
                return Err(invalid(
                    what,
                    format!("must be between 0.001 and 86400 s, got {value}"),
                ));
            }
        }
        Ok(())
    }
}

/// An autoscaling policy to simulate.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// The WPA: the core's `reconcile` with this spec and
    /// `--scale-down-delay-after-last-scale-activity`. A spec with a wait
    /// target runs the wait-target policy (`WAIT` in tables), else the
    /// reference's rules (`WPA`).
    Wpa {
        /// The WorkerPodAutoScaler spec.
        spec: WpaSpec,
        /// Scale-down delay after the last scale activity (600 s).
        scale_down_delay: Duration,
        /// Idle-first scale down (`busyProbe`): the pods' busy signal is
        /// read before each scale down, which removes only idle pods, as
        /// the controller's `pod-deletion-cost` makes the ReplicaSet do.
        idle_first: bool,
    },
    /// An HPA on the queue length as an external AverageValue metric.
    Hpa(HpaSettings),
    /// KEDA's queue scaler with its HPA.
    Keda(KedaSettings),
    /// The limit: an ideal reactive scaler that sees every message the tick
    /// it arrives, starts one pod per waiting message (up to
    /// `max_replicas`) and removes only pods without a job. Only the
    /// start-up delay stands between it and zero wait.
    Ideal {
        /// The most pods it runs.
        max_replicas: u32,
    },
}

impl Policy {
    /// A short name for tables: `WPA`, `WAIT` (each with `+IDLE` when
    /// idle-first), `HPA`, `KEDA` or `LIMIT`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Wpa {
                spec, idle_first, ..
            } => match (spec.wait_target().is_some(), idle_first) {
                (false, false) => "WPA",
                (false, true) => "WPA+IDLE",
                (true, false) => "WAIT",
                (true, true) => "WAIT+IDLE",
            },
            Policy::Hpa(_) => "HPA",
            Policy::Keda(_) => "KEDA",
            Policy::Ideal { .. } => "LIMIT",
        }
    }

    /// The WPA with `spec` (the reference's rules, whatever its wait
    /// target) and the reference's default delay, then the HPA- and
    /// KEDA-style baselines a user would configure for the same workers.
    #[must_use]
    pub fn comparison(spec: &WpaSpec) -> [Policy; 3] {
        let reference = spec.without_wait_target();
        [
            Policy::Wpa {
                spec: reference,
                scale_down_delay: wpa_core::DEFAULT_SCALE_DOWN_DELAY,
                idle_first: false,
            },
            Policy::Hpa(HpaSettings::like_wpa(&reference)),
            Policy::Keda(KedaSettings::like_wpa(&reference)),
        ]
    }

    /// This policy with idle-first scale down (a WPA; others unchanged).
    #[must_use]
    pub fn idle_first(self) -> Policy {
        match self {
            Policy::Wpa {
                spec,
                scale_down_delay,
                ..
            } => Policy::Wpa {
                spec,
                scale_down_delay,
                idle_first: true,
            },
            other => other,
        }
    }

    /// The WPA of [`Policy::comparison`] as is and idle-first, its HPA and
    /// KEDA, then the wait-target policy on `spec` (its own wait target, or
    /// `target_wait_s` when it has none, with `startup_s` as
    /// `workerStartupSeconds`) as is and idle-first, then the limit.
    pub fn comparison_with_wait_target(
        spec: &WpaSpec,
        target_wait_s: f64,
        startup_s: f64,
    ) -> Result<[Policy; 7], SimError> {
        let [wpa, hpa, keda] = Policy::comparison(spec);
        let wait_spec = match spec.wait_target() {
            Some(_) => *spec,
            None => spec.with_wait_target(target_wait_s, startup_s)?,
        };
        let wait = Policy::Wpa {
            spec: wait_spec,
            scale_down_delay: wpa_core::DEFAULT_SCALE_DOWN_DELAY,
            idle_first: false,
        };
        let wpa_idle_first = wpa.clone().idle_first();
        let wait_idle_first = wait.clone().idle_first();
        Ok([
            wpa,
            wpa_idle_first,
            hpa,
            keda,
            wait,
            wait_idle_first,
            Policy::Ideal {
                max_replicas: spec.max_replicas(),
            },
        ])
    }

    /// `(min, max)` replicas the policy keeps the Deployment within.
    pub(super) fn bounds(&self) -> (u32, u32) {
        match self {
            Policy::Wpa { spec, .. } => (spec.min_replicas(), spec.max_replicas()),
            Policy::Hpa(hpa) => (hpa.min_replicas, hpa.max_replicas),
            Policy::Keda(keda) => (keda.min_replica_count, keda.hpa.max_replicas),
            Policy::Ideal { max_replicas } => (0, *max_replicas),
        }
    }
}
