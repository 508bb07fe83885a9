//! Writing a `WorkerPodAutoScaler`'s status through the status subresource.

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Map, Value};

use crate::crd::{WorkerPodAutoScaler, WorkerPodAutoScalerStatus};
use crate::error::{Call, Error};

/// The JSON merge patch that turns `old` into `new` on the status
/// subresource, or `None` when they are equal (nothing to write). Keys
/// present in `old` and absent from `new` are removed (`null`).
#[must_use]
pub fn status_patch(
    old: Option<&WorkerPodAutoScalerStatus>,
    new: &WorkerPodAutoScalerStatus,
) -> Option<Value> {
    if old == Some(new) || (old.is_none() && *new == WorkerPodAutoScalerStatus::default()) {
        return None;
    }
    let as_map = |status: &WorkerPodAutoScalerStatus| match serde_json::to_value(status) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut patch = as_map(new);
    if let Some(old) = old {
        for key in as_map(old).keys() {
            if !patch.contains_key(key) {
                patch.insert(key.clone(), Value::Null);
            }
        }
    }
    let mut body = Map::new();
    body.insert("status".to_owned(), Value::Object(patch));
    Some(Value::Object(body))
}

/// Writes `new` as the status of `wpa` (merge patch on `/status`) unless it
/// equals the status `wpa` already has. Returns whether a write was made.
pub async fn write_status(
    client: &Client,
    wpa: &WorkerPodAutoScaler,
    new: &WorkerPodAutoScalerStatus,
) -> Result<bool, Error> {
    let Some(patch) = status_patch(wpa.status.as_ref(), new) else {
        return Ok(false);
    };
    let namespace = wpa.namespace().unwrap_or_default();
    let name = wpa.name_any();
    let api: Api<WorkerPodAutoScaler> = Api::namespaced(client.clone(), &namespace);
    let call = Call {
        verb: "patch",
        kind: "WorkerPodAutoScaler status",
        namespace: &namespace,
        name: &name,
    };
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| call.error(e))?;
    Ok(true)
}
