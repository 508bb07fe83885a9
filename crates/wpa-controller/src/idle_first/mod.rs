//! Idle-first scale down, the controller's side. Right before a scale down
//! (never otherwise): one list of the target's pods, the busy probe on
//! each, and the count the ReplicaSet controller's order lets go without
//! stopping a job ([`wpa_kube::victims`]); then, right before the scale
//! write, the fewest `pod-deletion-cost` annotations that make the
//! victims the idle pods.

mod probe;

use std::net::{IpAddr, SocketAddr};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use wpa_kube::victims::{self, PodView};
use wpa_kube::{BusyProbe, ProbePort, TargetRef};

use crate::limiter::RateLimiter;
use probe::Answer;

/// Pods asked at once.
const PROBES_AT_ONCE: usize = 64;

/// What identifies a target's pods: its selector, and the uids their
/// controller may have (the target's, and for a Deployment its
/// ReplicaSets').
#[derive(Debug, Clone)]
pub(crate) struct PodOwners {
    pub(crate) selector: LabelSelector,
    pub(crate) uids: Vec<String>,
}

/// The pods of one target, as one scale down sees them.
#[derive(Debug, Clone)]
pub(crate) struct Probed {
    views: Vec<PodView>,
    /// Active pods of the target (the ReplicaSet deletes `active - replicas`).
    active: u32,
    /// The most the ReplicaSet may delete with only idle pods among them.
    removable: u32,
    /// For the log: idle, busy, unanswered.
    pub(crate) idle: u32,
    pub(crate) busy: u32,
    pub(crate) unanswered: u32,
    /// Why nothing may go whatever the pods say (a rollout).
    pub(crate) blocked: Option<String>,
}

impl Probed {
    /// Pods a scale down from `current` requested replicas may remove, for
    /// the core: the ReplicaSet deletes `active - desired`, which must stay
    /// within `removable`.
    pub(crate) fn idle_pods(&self, current: u32) -> u32 {
        current
            .saturating_add(self.removable)
            .saturating_sub(self.active)
            .min(current)
    }

    /// The annotation writes for a scale down to `replicas`.
    pub(crate) fn writes(&self, replicas: u32) -> Vec<victims::CostWrite> {
        let remove = self.active.saturating_sub(replicas).min(self.removable);
        victims::deletion_costs(&self.views, remove)
    }
}

/// Where the probe reaches `pod`; `Err`: it has an IP but no such port.
fn address(pod: &Pod, probe: &BusyProbe) -> Option<Result<SocketAddr, String>> {
    let ip: IpAddr = pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
    let port = match &probe.port {
        ProbePort::Number(port) => Ok(*port),
        ProbePort::Name(name) => pod
            .spec
            .iter()
            .flat_map(|spec| spec.containers.iter())
            .flat_map(|container| container.ports.iter().flatten())
            .find(|port| port.name.as_deref() == Some(name.as_str()))
            .and_then(|port| u16::try_from(port.container_port).ok())
            .ok_or_else(|| format!("no container port named {name:?}")),
    };
    Some(port.map(|port| SocketAddr::new(ip, port)))
}

fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.controller == Some(true))
        .map(|owner| owner.uid.as_str())
}

/// Lists the target's pods and asks each the busy probe.
pub(crate) async fn probe_pods(
    client: &Client,
    limiter: &RateLimiter,
    namespace: &str,
    target: &TargetRef,
    owners: &PodOwners,
    busy_probe: &BusyProbe,
) -> Result<Probed, wpa_kube::Error> {
    limiter.acquire().await;
    let pods = wpa_kube::list_pods(
        client,
        namespace,
        &owners.selector,
        (target.kind.as_str(), &target.name),
    )
    .await?;
    let pods: Vec<Pod> = pods
        .into_iter()
        .filter(|pod| {
            victims::is_active(pod)
                && controller_uid(pod).is_some_and(|uid| owners.uids.iter().any(|u| u == uid))
        })
        .collect();
    let mut controllers: Vec<&str> = pods.iter().filter_map(controller_uid).collect();
    controllers.sort_unstable();
    controllers.dedup();
    let blocked = (controllers.len() > 1).then(|| {
        format!(
            "the pods belong to {} ReplicaSets (a rollout): the Deployment controller splits a scale down between them",
            controllers.len()
        )
    });
    // Owned inputs: a stream of futures borrowing the pods is not Send.
    let addresses: Vec<Option<Result<SocketAddr, String>>> =
        pods.iter().map(|pod| address(pod, busy_probe)).collect();
    let answers: Vec<Option<Answer>> = futures::stream::iter(addresses)
        .map(|address| {
            let path = busy_probe.path.clone();
            let timeout = busy_probe.timeout;
            async move {
                match address? {
                    Ok(address) => Some(probe::ask(address, &path, timeout).await),
                    Err(why) => Some(Answer::Unanswered(why)),
                }
            }
        })
        .buffered(PROBES_AT_ONCE)
        .collect()
        .await;
    let (mut idle, mut busy, mut unanswered) = (0, 0, 0);
    let views: Vec<PodView> = pods
        .iter()
        .zip(&answers)
        .map(|(pod, answer)| {
            // No IP: no worker in it can have taken a job.
            let is_idle = match answer {
                None | Some(Answer::Idle) => {
                    idle += 1;
                    true
                }
                Some(Answer::Busy) => {
                    busy += 1;
                    false
                }
                Some(Answer::Unanswered(why)) => {
                    unanswered += 1;
                    tracing::debug!(
                        namespace = %namespace, pod = ?pod.metadata.name,
                        "busy probe: {why}: counted busy"
                    );
                    false
                }
            };
            PodView::of(pod, is_idle)
        })
        .collect();
    let removable = if blocked.is_some() {
        0
    } else {
        victims::removable(&views)
    };
    Ok(Probed {
        active: u32::try_from(views.len()).unwrap_or(u32::MAX),
        views,
        removable,
        idle,
        busy,
        unanswered,
        blocked,
    })
}

/// Writes the deletion costs a scale down to `replicas` needs; returns
/// how many were written. A failed write fails the scale down: it must not
/// go ahead with the victims unordered.
pub(crate) async fn mark_victims(
    client: &Client,
    limiter: &RateLimiter,
    namespace: &str,
    probed: &Probed,
    replicas: u32,
) -> Result<u32, wpa_kube::Error> {
    let mut written = 0;
    for write in probed.writes(replicas) {
        limiter.acquire().await;
        wpa_kube::set_deletion_cost(client, namespace, &write).await?;
        written += 1;
    }
    Ok(written)
}
