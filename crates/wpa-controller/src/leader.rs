//! Leader election on a `coordination.k8s.io/v1` Lease.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use tokio::sync::watch;

use crate::Error;

/// Where the Lease lives and how long it lasts.
#[derive(Debug, Clone)]
pub struct LeaderElectionConfig {
    /// The Lease's name. Default `workerpodautoscaler`.
    pub lease_name: String,
    /// Its namespace (the controller's own, `POD_NAMESPACE`).
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease lasts without renewal. Default 15 s.
    pub duration: Duration,
    /// Renewal this long before expiry. Default 5 s.
    pub grace: Duration,
}

impl LeaderElectionConfig {
    /// The defaults for `identity` in `namespace`.
    #[must_use]
    pub fn new(namespace: &str, identity: &str) -> Self {
        LeaderElectionConfig {
            lease_name: "workerpodautoscaler".to_owned(),
            namespace: namespace.to_owned(),
            identity: identity.to_owned(),
            duration: Duration::from_secs(15),
            grace: Duration::from_secs(5),
        }
    }
}

/// A running leader election: [`LeaderElection::leader`] says whether this
/// replica holds the Lease. Dropping it (or [`LeaderElection::release`])
/// gives the Lease up.
#[derive(Debug)]
pub struct LeaderElection {
    state: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
}

impl LeaderElection {
    /// Starts competing for the Lease (created if missing).
    pub async fn start(client: Client, config: &LeaderElectionConfig) -> Result<Self, Error> {
        let seconds = |d: Duration| d.as_secs().max(1);
        let params = LeaseParams::new(
            config.identity.clone(),
            seconds(config.duration),
            seconds(config.grace),
        )
        .with_field_manager(format!("workerpodautoscaler-{}", config.identity));
        let manager = LeaseManagerBuilder::new(client, config.lease_name.clone())
            .with_namespace(config.namespace.clone())
            .with_parameters(params)
            .build()
            .await
            .map_err(|e| Error::LeaderElection(e.to_string()))?;
        let (state, task) = manager.watch().await;
        Ok(LeaderElection { state, task })
    }

    /// A receiver of the leadership state.
    #[must_use]
    pub fn leader(&self) -> watch::Receiver<bool> {
        self.state.clone()
    }

    /// Gives the Lease up and waits for the release to be written.
    pub async fn release(self) -> Result<(), Error> {
        let LeaderElection { state, task } = self;
        drop(state);
        match task.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::LeaderElection(e.to_string())),
            Err(e) => Err(Error::LeaderElection(e.to_string())),
        }
    }
}
