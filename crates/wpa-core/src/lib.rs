//! The decision engine of the Worker Pod Autoscaler.
//!
//! Given a [`QueueSnapshot`] and a [`WpaSpec`], [`desired_replicas`] says how
//! many workers should run and which rule decided; [`scale_operation`] says
//! whether to act now. Both are pure, allocation-free and reproduce the Go
//! Worker Pod Autoscaler (practo WPA v1.6) decision for decision.
//!
//! [`QueueMetrics`] and [`ScaleTarget`] are the two sides every driver plugs
//! in; [`reconcile`] is the one step that connects them. This crate does no
//! I/O, has no async runtime, no logging and no clock: time is an argument.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use wpa_core::{desired_replicas, scale_operation, QueueSnapshot, RawWpaSpec, MaxDisruption};
//!
//! let spec = RawWpaSpec {
//!     min_replicas: Some(0),
//!     max_replicas: Some(10),
//!     target_messages_per_worker: Some(2),
//!     seconds_to_process_one_job: Some(0.03),
//!     max_disruption: Some("100%".into()),
//!     ..RawWpaSpec::default()
//! }
//! .validate(MaxDisruption::DEFAULT)?;
//!
//! let decision = desired_replicas(&spec, &QueueSnapshot::new(15), 1);
//! println!("{} because {decision}", decision.desired_replicas);
//! assert_eq!(decision.desired_replicas, 8);
//!
//! let now = SystemTime::now();
//! let operation = scale_operation(decision.desired_replicas, 1, None, Duration::from_secs(600), now);
//! assert_eq!(operation.as_str(), "scale-up");
//! # Ok::<(), wpa_core::Error>(())
//! ```

mod decision;
mod error;
pub mod idle_first;
mod reconcile;
mod scale;
mod snapshot;
mod spec;
pub mod wait_target;

pub use decision::{Decision, DecisionInputs, Limit, Rule, decide, desired_replicas};
pub use error::Error;
pub use reconcile::{
    BacklogGrowth, History, Observation, Plan, QueueMetrics, ReconcileError, ScaleTarget,
    TargetReplicas, WpaStatus, plan, plan_with_history, reconcile, reconcile_with_history,
};
pub use scale::{DEFAULT_SCALE_DOWN_DELAY, HoldReason, ScaleOperation, scale_operation};
pub use snapshot::{Idleness, QueueSnapshot};
pub use spec::{MAX_REPLICAS, MaxDisruption, RawWpaSpec, WpaSpec};
pub use wait_target::{WaitSizing, WaitTarget};
