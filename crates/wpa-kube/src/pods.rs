//! The pod calls of an idle-first scale down: one list of the target's
//! pods, and a merge patch of `pod-deletion-cost` per pod that must move.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::Selector;
use kube::{Api, Client};
use serde_json::json;

use crate::error::{Call, Error};
use crate::victims::{CostWrite, POD_DELETION_COST};

/// The pods `selector` selects in `namespace` (one list call), for the
/// workload `owner` (kind and name, for errors).
pub async fn list_pods(
    client: &Client,
    namespace: &str,
    selector: &LabelSelector,
    owner: (&str, &str),
) -> Result<Vec<Pod>, Error> {
    let call = Call {
        verb: "list pods of",
        kind: owner.0,
        namespace,
        name: owner.1,
    };
    let selector = Selector::try_from(selector.clone()).map_err(|e| Error::InvalidSelector {
        kind: owner.0.to_owned(),
        namespace: namespace.to_owned(),
        name: owner.1.to_owned(),
        message: e.to_string(),
    })?;
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels_from(&selector))
        .await
        .map_err(|e| call.error(e))?;
    Ok(list.items)
}

/// Writes one pod's deletion cost (a JSON merge patch of that annotation
/// alone).
pub async fn set_deletion_cost(
    client: &Client,
    namespace: &str,
    write: &CostWrite,
) -> Result<(), Error> {
    let call = Call {
        verb: "patch",
        kind: "Pod",
        namespace,
        name: &write.pod,
    };
    let patch = json!({"metadata": {"annotations": {POD_DELETION_COST: write.cost.to_string()}}});
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    api.patch(&write.pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| call.error(e))?;
    Ok(())
}
