//! A fast, deterministic simulator of the Worker Pod Autoscaler.
//!
//! It drives the core's real [`wpa_core::reconcile`] step through simulated
//! [`wpa_core::QueueMetrics`] and [`wpa_core::ScaleTarget`] implementations
//! (futures that are always ready, polled once: no async runtime), next to
//! HPA- and KEDA-style baselines, on identical arrivals.
//!
//! The model is time-stepped: messages are FIFO buckets of `(arrival tick,
//! count)`, busy workers a calendar of counts keyed by the tick their job
//! ends, waits a histogram. A simulated day of 1,000 messages/s costs well
//! under a second.
//!
//! ```
//! use wpa_sim::{simulate, ArrivalProcess, Policy, RateShape, ServiceTime, SimConfig, Workload};
//! use wpa_core::{MaxDisruption, WpaSpec};
//!
//! let workload = Workload {
//!     rate: RateShape::Constant { per_second: 5.0 },
//!     process: ArrivalProcess::Poisson,
//!     service: ServiceTime::Fixed { seconds: 1.0 },
//! };
//! let config = SimConfig::new(workload, 3_600.0, 42);
//! let spec = WpaSpec::new(0, 20, 2, 1.0, MaxDisruption::DEFAULT)?;
//! for policy in Policy::comparison(&spec) {
//!     let outcome = simulate(&config, &policy, None)?;
//!     println!("{}: p99 wait {:.1} s, {:.0} worker-s", outcome.policy, outcome.wait_p99_s, outcome.worker_seconds);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod histogram;
mod plot;
mod policy;
mod random;
mod recommend;
mod scenarios;
mod service;
mod sim;
mod workload;

pub use error::SimError;
pub use plot::plot_svg;
pub use policy::{HpaModel, HpaSettings, KedaModel, KedaSettings};
pub use recommend::{Recommendation, recommend};
pub use scenarios::{DEFAULT_SET, Scenario, builtin};
pub use service::ServiceTime;
pub use sim::{AdapterTiming, Backend, Outcome, Policy, Sample, ScaleEvent, SimConfig, simulate};
pub use workload::{ArrivalProcess, RateShape, Trace, Workload};
