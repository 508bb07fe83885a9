//! The Kubernetes side of the Worker Pod Autoscaler.
//!
//! - [`WorkerPodAutoScaler`]: the custom resource (`k8s.practo.dev/v1`),
//!   with the reference's field names and capitalised status keys, and its
//!   CRD ([`crd()`], [`crd_yaml`]).
//! - [`KubeScaleTarget`]: a [`wpa_core::ScaleTarget`] for Deployments and
//!   ReplicaSets through the scale subresource, conflicts retried.
//! - [`write_status`]: status writes through the status subresource, only
//!   when something changed.
//! - [`WpaEvents`]: Events for scale ups and downs and invalid specs.
//! - [`BusyProbe`] (`spec.busyProbe`), [`victims`] (which pods a scale
//!   down removes, pure) and [`list_pods`] / [`set_deletion_cost`]: the
//!   Kubernetes side of an idle-first scale down.

mod busy_probe;
mod crd;
mod error;
mod events;
mod pods;
mod status;
mod target;
pub mod victims;

pub use busy_probe::{BusyProbe, BusyProbeSpec, DEFAULT_PATH, DEFAULT_TIMEOUT, ProbePort};
pub use crd::{
    TargetRef, ValidatedSpec, WorkerPodAutoScaler, WorkerPodAutoScalerSpec,
    WorkerPodAutoScalerStatus, WpaCondition, crd, crd_yaml, format_time, format_time_millis,
    openapi_schema, parse_time,
};
pub use error::{Error, TargetKind};
pub use events::{WpaEvents, invalid_spec_event, reason, scale_event, scale_failed_event};
pub use pods::{list_pods, set_deletion_cost};
pub use status::{status_patch, write_status};
pub use target::{KubeScaleTarget, RetryPolicy};
