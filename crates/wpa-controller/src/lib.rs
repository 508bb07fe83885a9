//! The Worker Pod Autoscaler controller, as a library: what
//! `workerpodautoscaler run` runs.
//!
//! - [`Controller`]: reflectors on WorkerPodAutoScalers, Deployments and
//!   ReplicaSets; one task per WPA, reconciling on every change of its
//!   queue's snapshot, of the object itself, and at least every resync
//!   period; one poller per distinct queue URI ([`wpa_poller::Registry`]);
//!   invalid objects and API errors are reported (Event, status condition,
//!   log) and never stop the process.
//! - [`LeaderElection`]: a `coordination.k8s.io` Lease; only the holder
//!   reconciles.
//! - [`serve_http`]: `/metrics` (the reference's names), `/status`,
//!   `/healthz`, `/readyz`.
//! - [`SourceFactory`]: how a queue URI becomes a poller, so the controller
//!   does not depend on the queue adapters (and tests use a fake).

mod controller;
mod http;
mod idle_first;
mod leader;
mod limiter;
mod metrics;

pub use controller::{CONDITION_FRESH, CONDITION_VALID, Controller, ControllerConfig, Health};
#[cfg(feature = "bench")]
pub use controller::{DecisionSweep, SweepSummary};
pub use http::serve_http;
pub use leader::{LeaderElection, LeaderElectionConfig};
pub use limiter::RateLimiter;
pub use metrics::{LogCounter, Metrics, WpaLabels, WpaSample, queue_name};
pub use wpa_poller::Clock;

/// Makes the poller subscription of a queue URI.
pub trait SourceFactory: Send + Sync + 'static {
    /// Subscribes to `uri` in `registry` (starting its poller unless one
    /// runs). An error message says why the URI cannot be polled
    /// (unsupported scheme, disabled queue service, malformed URI).
    fn subscribe(
        &self,
        registry: &wpa_poller::Registry,
        uri: &str,
    ) -> Result<wpa_poller::Subscription, String>;
}

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Deployment or ReplicaSet cache never synced.
    #[error("the Deployment/ReplicaSet caches stopped before syncing")]
    CacheSync,
    /// The metrics port could not be bound.
    #[error("binding the metrics port {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error("leader election: {0}")]
    LeaderElection(String),
    /// A reconcile's write (scale or status) failed transiently: retried
    /// with backoff, never a reason to stop.
    #[error("{namespace}/{name}: a write failed transiently")]
    TransientWrite {
        /// The WPA's namespace.
        namespace: String,
        /// The WPA's name.
        name: String,
    },
}

use std::sync::Arc;

use tokio::sync::watch;

/// Runs the controller until `shutdown` turns true. With `election`, only
/// while this replica holds the Lease: it waits as a follower, reconciles
/// as the leader, stops reconciling at once if the Lease is lost (and waits
/// again), and gives the Lease up on shutdown.
pub async fn run(
    client: kube::Client,
    config: ControllerConfig,
    factory: Arc<dyn SourceFactory>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    election: Option<LeaderElectionConfig>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let Some(election) = election else {
        health.set_leader(true);
        let (controller, reflectors) =
            Controller::new(client, config, factory, metrics, Arc::clone(&health));
        let result = controller.run(shutdown).await;
        reflectors.iter().for_each(tokio::task::JoinHandle::abort);
        return result;
    };
    let lease = LeaderElection::start(client.clone(), &election).await?;
    let mut leader = lease.leader();
    // A follower is ready: it serves metrics and waits.
    health.set_ready(true);
    let result = loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break Ok(()),
            is_leader = leader.wait_for(|leader| *leader) => {
                if is_leader.is_err() {
                    break Err(Error::LeaderElection("the lease manager stopped".to_owned()));
                }
            }
        }
        tracing::info!(identity = %election.identity, "became the leader");
        health.set_leader(true);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (controller, reflectors) = Controller::new(
            client.clone(),
            config.clone(),
            Arc::clone(&factory),
            Arc::clone(&metrics),
            Arc::clone(&health),
        );
        let running = controller.run(stop_rx);
        let mut running = std::pin::pin!(running);
        let (shutting_down, finished) = tokio::select! {
            result = &mut running => {
                if let Err(error) = result {
                    tracing::error!("controller stopped: {error}");
                }
                (false, true)
            }
            _ = shutdown.wait_for(|stop| *stop) => (true, false),
            _ = leader.wait_for(|leader| !*leader) => {
                tracing::warn!(identity = %election.identity, "lost the lease: stopping reconciles");
                (false, false)
            }
        };
        stop_tx.send_replace(true);
        if !finished {
            // Finish in-flight reconciles (bounded inside `run`).
            let _ = running.await;
        }
        reflectors.iter().for_each(tokio::task::JoinHandle::abort);
        health.set_leader(false);
        if shutting_down {
            break Ok(());
        }
        if finished {
            // The controller stopped by itself (caches never synced): do not
            // spin.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    };
    // Every receiver must go for the lease manager to release.
    drop(leader);
    if let Err(error) = lease.release().await {
        tracing::warn!("releasing the lease: {error}");
    }
    result
}
