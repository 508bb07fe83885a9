//! What the double emulates of the workload kinds (Deployments,
//! ReplicaSets, StatefulSets): `spec.replicas` defaulting to 1, the
//! `/scale` subresource (an `autoscaling/v1` `Scale` whose writes change
//! `spec.replicas` only), and, when asked, the controllers' work: with
//! auto-ready on, every write sets `.status` to `spec.replicas` ready
//! pods at once.

use serde_json::{Value, json};

/// Kinds with a `/scale` subresource.
pub(crate) fn has_scale_subresource(resource: &str) -> bool {
    matches!(resource, "deployments" | "replicasets" | "statefulsets")
}

/// On create: `spec.replicas` is 1 when absent, as the API server's
/// defaulting sets it.
pub(crate) fn default_replicas(resource: &str, object: &mut Value) {
    if has_scale_subresource(resource) && object.pointer("/spec/replicas").is_none() {
        json_patch::merge(object, &json!({"spec": {"replicas": 1}}));
    }
}

/// Auto-ready: the status of a workload follows its `spec.replicas`
/// (replicas, ready, available, updated), as if every pod started
/// instantly.
pub(crate) fn auto_ready(resource: &str, object: &mut Value) {
    if !has_scale_subresource(resource) {
        return;
    }
    let replicas = object
        .pointer("/spec/replicas")
        .cloned()
        .unwrap_or(json!(1));
    json_patch::merge(
        object,
        &json!({"status": {
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "updatedReplicas": replicas,
        }}),
    );
}

/// The `Scale` of a workload.
pub(crate) fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
        },
    })
}

/// The merge patch a write of `scale` makes to its workload: its
/// `spec.replicas` and nothing else. A replaced `Scale` without one means
/// 0 (the field is omitted when zero); a patch without one changes
/// nothing.
pub(crate) fn scale_write(scale: &Value, replace: bool) -> Value {
    match scale.pointer("/spec/replicas") {
        Some(replicas) => json!({"spec": {"replicas": replicas}}),
        None if replace => json!({"spec": {"replicas": 0}}),
        None => json!({}),
    }
}
