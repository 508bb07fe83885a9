//! The Deployment and ReplicaSet caches a reconcile reads replicas from,
//! slimmed to what it reads.

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;
use wpa_core::TargetReplicas;
use wpa_kube::{TargetKind, TargetRef};

use crate::idle_first::PodOwners;

/// The two target caches.
#[derive(Clone)]
pub(crate) struct TargetCaches {
    pub(crate) deployments: Store<Deployment>,
    pub(crate) replica_sets: Store<ReplicaSet>,
}

impl TargetCaches {
    /// Starts both reflectors; the tasks run until aborted.
    pub(crate) fn start(client: &Client, namespace: Option<&str>) -> (Self, Vec<JoinHandle<()>>) {
        let (deployments, dep_task) = spawn_reflector(client, namespace, strip_deployment);
        let (replica_sets, rs_task) = spawn_reflector(client, namespace, strip_replica_set);
        (
            TargetCaches {
                deployments,
                replica_sets,
            },
            vec![dep_task, rs_task],
        )
    }

    /// Waits until both have listed once; an error if a reflector stopped.
    pub(crate) async fn wait_until_ready(&self) -> Result<(), crate::Error> {
        self.deployments
            .wait_until_ready()
            .await
            .map_err(|_| crate::Error::CacheSync)?;
        self.replica_sets
            .wait_until_ready()
            .await
            .map_err(|_| crate::Error::CacheSync)
    }

    /// The target's requested and available replicas, from the cache.
    pub(crate) fn replicas(
        &self,
        namespace: &str,
        target: &TargetRef,
    ) -> Result<TargetReplicas, wpa_kube::Error> {
        let (spec, available) = match target.kind {
            TargetKind::Deployment => self
                .deployments
                .get(&ObjectRef::<Deployment>::new(&target.name).within(namespace))
                .map(|d| {
                    (
                        d.spec.replicas,
                        d.status.as_ref().and_then(|s| s.available_replicas),
                    )
                }),
            TargetKind::ReplicaSet => self
                .replica_sets
                .get(&ObjectRef::<ReplicaSet>::new(&target.name).within(namespace))
                .map(|r| {
                    (
                        r.spec.replicas,
                        r.status.as_ref().and_then(|s| s.available_replicas),
                    )
                }),
        }
        .ok_or_else(|| wpa_kube::Error::NotFound {
            kind: target.kind.as_str().to_owned(),
            namespace: namespace.to_owned(),
            name: target.name.clone(),
        })?;
        TargetReplicas::from_signed(
            i64::from(spec.unwrap_or(1)),
            i64::from(available.unwrap_or(0)),
        )
        .map_err(|source| wpa_kube::Error::InvalidReplicas {
            kind: target.kind,
            namespace: namespace.to_owned(),
            name: target.name.clone(),
            source,
        })
    }
}

impl TargetCaches {
    /// What selects the target's pods (idle-first scale down): its
    /// selector, and the uids their controller may have (the target's, and
    /// for a Deployment those of its ReplicaSets).
    pub(crate) fn pod_owners(
        &self,
        namespace: &str,
        target: &TargetRef,
    ) -> Result<PodOwners, wpa_kube::Error> {
        let not_found = || wpa_kube::Error::NotFound {
            kind: target.kind.as_str().to_owned(),
            namespace: namespace.to_owned(),
            name: target.name.clone(),
        };
        let (selector, uid) = match target.kind {
            TargetKind::Deployment => {
                let deployment = self
                    .deployments
                    .get(&ObjectRef::<Deployment>::new(&target.name).within(namespace))
                    .ok_or_else(not_found)?;
                (
                    Some(deployment.spec.selector.clone()),
                    deployment.metadata.uid.clone(),
                )
            }
            TargetKind::ReplicaSet => {
                let replica_set = self
                    .replica_sets
                    .get(&ObjectRef::<ReplicaSet>::new(&target.name).within(namespace))
                    .ok_or_else(not_found)?;
                (
                    Some(replica_set.spec.selector.clone()),
                    replica_set.metadata.uid.clone(),
                )
            }
        };
        let (Some(selector), Some(uid)) = (selector, uid) else {
            return Err(not_found());
        };
        let mut uids = vec![uid.clone()];
        if target.kind == TargetKind::Deployment {
            uids.extend(
                self.replica_sets
                    .state()
                    .iter()
                    .filter(|rs| rs.metadata.namespace.as_deref() == Some(namespace))
                    .filter(|rs| {
                        rs.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|owner| owner.controller == Some(true) && owner.uid == uid)
                    })
                    .filter_map(|rs| rs.metadata.uid.clone()),
            );
        }
        Ok(PodOwners { selector, uids })
    }
}

/// An API on one namespace, or all.
pub(crate) fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Keeps of a cached object only what a reconcile reads (its name and
/// uid, the spec's replicas and selector, the available replicas, a
/// ReplicaSet's owner): a reflector caches every Deployment and ReplicaSet
/// of the cluster, and their pod templates and `kubectl apply` annotations
/// are most of their size.
fn strip_metadata(metadata: &mut kube::api::ObjectMeta) {
    metadata.annotations = None;
    metadata.labels = None;
    metadata.managed_fields = None;
    metadata.finalizers = None;
}

fn strip_deployment(deployment: &mut Deployment) {
    strip_metadata(&mut deployment.metadata);
    deployment.metadata.owner_references = None;
    let spec = &mut deployment.spec;
    spec.template = Default::default();
    spec.strategy = None;
    if let Some(status) = deployment.status.as_mut() {
        status.conditions = None;
    }
}

fn strip_replica_set(replica_set: &mut ReplicaSet) {
    strip_metadata(&mut replica_set.metadata);
    // Only the controlling owner (a Deployment) is read.
    if let Some(owners) = replica_set.metadata.owner_references.as_mut() {
        owners.retain(|owner| owner.controller == Some(true));
    }
    let spec = &mut replica_set.spec;
    spec.template = None;
    if let Some(status) = replica_set.status.as_mut() {
        status.conditions = None;
    }
}

fn spawn_reflector<K>(
    client: &Client,
    namespace: Option<&str>,
    strip: fn(&mut K),
) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api::<K>(client, namespace), watcher::Config::default()).modify(strip),
    )
    .default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(error) => tracing::warn!("watch {}: {error}", std::any::type_name::<K>()),
            }
        }
    });
    (reader, task)
}
