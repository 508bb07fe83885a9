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

/// Keeps of a cached object only what a reconcile reads (its name, the
/// spec's replicas, the available replicas): a reflector caches every
/// Deployment and ReplicaSet of the cluster, and their pod templates and
/// `kubectl apply` annotations are most of their size.
fn strip_metadata(metadata: &mut kube::api::ObjectMeta) {
    metadata.annotations = None;
    metadata.labels = None;
    metadata.managed_fields = None;
    metadata.owner_references = None;
    metadata.finalizers = None;
}

fn strip_deployment(deployment: &mut Deployment) {
    strip_metadata(&mut deployment.metadata);
    let spec = &mut deployment.spec;
    spec.template = Default::default();
    spec.selector = Default::default();
    spec.strategy = None;
    if let Some(status) = deployment.status.as_mut() {
        status.conditions = None;
    }
}

fn strip_replica_set(replica_set: &mut ReplicaSet) {
    strip_metadata(&mut replica_set.metadata);
    let spec = &mut replica_set.spec;
    spec.template = None;
    spec.selector = Default::default();
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
