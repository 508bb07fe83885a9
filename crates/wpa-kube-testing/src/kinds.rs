//! Resource names, as the API server's discovery documents would give
//! them: the plural resource of a kind, the kind of a resource, and which
//! resources have a `/status` subresource.
//!
//! The double serves no discovery (`/apis` is a 404): these rules stand in
//! for it, for the kinds the autoscaler touches and the regular English
//! plurals of any other.

/// The plural resource name of a kind, as the API server spells it.
#[must_use]
pub fn plural(kind: &str) -> String {
    match kind {
        "Endpoints" => "endpoints".to_owned(),
        kind => {
            let lower = kind.to_ascii_lowercase();
            if lower.ends_with('s') {
                format!("{lower}es")
            } else if let Some(stem) = lower.strip_suffix('y') {
                format!("{stem}ies")
            } else {
                format!("{lower}s")
            }
        }
    }
}

/// The kind of a plural resource: what the server writes into `kind` (and,
/// with `List` appended, into a list's `kind`).
pub(crate) fn kind_of(resource: &str) -> String {
    match resource {
        "deployments" => "Deployment".to_owned(),
        "replicasets" => "ReplicaSet".to_owned(),
        "statefulsets" => "StatefulSet".to_owned(),
        "workerpodautoscalers" => "WorkerPodAutoScaler".to_owned(),
        "leases" => "Lease".to_owned(),
        "events" => "Event".to_owned(),
        "pods" => "Pod".to_owned(),
        other => {
            let singular = other.strip_suffix('s').unwrap_or(other);
            let mut chars = singular.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        }
    }
}

/// Kinds whose main resource ignores `.status` on writes (they have a
/// status subresource).
pub(crate) fn has_status_subresource(resource: &str) -> bool {
    matches!(
        resource,
        "deployments" | "replicasets" | "statefulsets" | "workerpodautoscalers" | "pods"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural("Deployment"), "deployments");
        assert_eq!(plural("WorkerPodAutoScaler"), "workerpodautoscalers");
        assert_eq!(plural("Lease"), "leases");
        assert_eq!(plural("Policy"), "policies");
        assert_eq!(plural("Status"), "statuses");
    }

    #[test]
    fn kinds() {
        assert_eq!(kind_of("workerpodautoscalers"), "WorkerPodAutoScaler");
        assert_eq!(kind_of("secrets"), "Secret");
        assert!(has_status_subresource("deployments"));
        assert!(!has_status_subresource("leases"));
    }
}
