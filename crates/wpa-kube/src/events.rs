//! Kubernetes Events (`events.k8s.io/v1`) about a `WorkerPodAutoScaler`.

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use wpa_core::{Plan, ScaleOperation};

use crate::crd::WorkerPodAutoScaler;
use crate::error::{Call, Error};

/// Event reasons, PascalCase as Kubernetes expects.
pub mod reason {
    /// The target was scaled up.
    pub const SCALED_UP: &str = "ScaledUp";
    /// The target was scaled down.
    pub const SCALED_DOWN: &str = "ScaledDown";
    /// The spec cannot be acted on.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Scaling the target failed.
    pub const SCALE_FAILED: &str = "ScaleFailed";
}

/// Publishes Events about WorkerPodAutoScalers, as `reporter`.
#[derive(Clone)]
pub struct WpaEvents {
    recorder: Recorder,
}

impl std::fmt::Debug for WpaEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WpaEvents").finish_non_exhaustive()
    }
}

/// The Event a reconcile step deserves, if any: one per scale up or down,
/// carrying the core's reason.
#[must_use]
pub fn scale_event(plan: &Plan) -> Option<Event> {
    let (reason, action) = match plan.operation {
        ScaleOperation::ScaleUp => (reason::SCALED_UP, "ScaleUp"),
        ScaleOperation::ScaleDown => (reason::SCALED_DOWN, "ScaleDown"),
        ScaleOperation::None | ScaleOperation::ScaleDownHeld(_) => return None,
    };
    Some(Event {
        type_: EventType::Normal,
        reason: reason.to_owned(),
        note: Some(truncate(format!(
            "{} -> {} replicas: {}",
            plan.replicas.current, plan.decision.desired_replicas, plan.decision
        ))),
        action: action.to_owned(),
        secondary: None,
    })
}

/// The Warning Event for a spec that cannot be acted on.
#[must_use]
pub fn invalid_spec_event(error: &Error) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason::INVALID_SPEC.to_owned(),
        note: Some(truncate(error.to_string())),
        action: "Validate".to_owned(),
        secondary: None,
    }
}

/// The Warning Event for a failed scale.
#[must_use]
pub fn scale_failed_event(error: &Error) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason::SCALE_FAILED.to_owned(),
        note: Some(truncate(error.to_string())),
        action: "Scale".to_owned(),
        secondary: None,
    }
}

/// Events notes are limited to 1 kB.
fn truncate(mut note: String) -> String {
    const MAX: usize = 1000;
    if note.len() > MAX {
        let mut end = MAX;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    note
}

impl WpaEvents {
    /// Events reported as `controller` (e.g. `workerpodautoscaler`) from
    /// `instance` (e.g. the pod name).
    #[must_use]
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: controller.to_owned(),
            instance,
        };
        WpaEvents {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes `event` about `wpa`.
    pub async fn publish(&self, wpa: &WorkerPodAutoScaler, event: &Event) -> Result<(), Error> {
        let reference = wpa.object_ref(&());
        let namespace = reference.namespace.clone().unwrap_or_default();
        let name = reference.name.clone().unwrap_or_default();
        self.recorder.publish(event, &reference).await.map_err(|e| {
            Call {
                verb: "create",
                kind: "Event",
                namespace: &namespace,
                name: &name,
            }
            .error(e)
        })
    }
}
