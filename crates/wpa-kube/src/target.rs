//! Scaling Deployments and ReplicaSets through the scale subresource.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::PostParams;
use kube::{Api, Client};
use wpa_core::{ScaleTarget, TargetReplicas};

use crate::error::{Call, Error, TargetKind};

/// How conflicting scale writes are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Writes tried in all before giving up with [`Error::Conflict`].
    pub attempts: u32,
    /// Wait before the second attempt; doubled each time.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 50 ms doubling to at most 1 s.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based).
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1_u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// A Deployment or ReplicaSet, scaled through its `/scale` subresource.
///
/// [`ScaleTarget::replicas`] reads the object (`spec.replicas`,
/// `status.availableReplicas`); [`ScaleTarget::apply`] reads the scale
/// subresource and writes it back with its `resourceVersion` (PUT), so a
/// concurrent change answers 409 and is re-read and retried with capped
/// backoff. The object itself is never updated.
#[derive(Clone)]
pub struct KubeScaleTarget {
    client: Client,
    kind: TargetKind,
    namespace: String,
    name: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for KubeScaleTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeScaleTarget")
            .field("kind", &self.kind)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl KubeScaleTarget {
    /// The `kind` named `name` in `namespace`, with the default retry policy.
    #[must_use]
    pub fn new(client: Client, kind: TargetKind, namespace: &str, name: &str) -> Self {
        KubeScaleTarget {
            client,
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            retry: RetryPolicy::default(),
        }
    }

    /// Replaces the retry policy for conflicts.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Deployment or ReplicaSet.
    #[must_use]
    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// The namespace.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, verb: &'static str) -> Call<'_> {
        Call {
            verb,
            kind: self.kind.as_str(),
            namespace: &self.namespace,
            name: &self.name,
        }
    }

    fn scale_call(&self, verb: &'static str) -> Call<'_> {
        Call {
            verb,
            kind: match self.kind {
                TargetKind::Deployment => "Deployment scale",
                TargetKind::ReplicaSet => "ReplicaSet scale",
            },
            namespace: &self.namespace,
            name: &self.name,
        }
    }

    fn counts(&self, spec: Option<i32>, available: Option<i32>) -> Result<TargetReplicas, Error> {
        // Kubernetes defaults an absent spec.replicas to 1.
        TargetReplicas::from_signed(
            i64::from(spec.unwrap_or(1)),
            i64::from(available.unwrap_or(0)),
        )
        .map_err(|source| Error::InvalidReplicas {
            kind: self.kind,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        })
    }

    /// Reads the object's requested and available replicas.
    pub async fn read(&self) -> Result<TargetReplicas, Error> {
        let call = self.call("get");
        match self.kind {
            TargetKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
                let object = api.get(&self.name).await.map_err(|e| call.error(e))?;
                self.counts(
                    object.spec.replicas,
                    object.status.and_then(|status| status.available_replicas),
                )
            }
            TargetKind::ReplicaSet => {
                let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.namespace);
                let object = api.get(&self.name).await.map_err(|e| call.error(e))?;
                self.counts(
                    object.spec.replicas,
                    object.status.and_then(|status| status.available_replicas),
                )
            }
        }
    }

    /// Sets `spec.replicas` through the scale subresource; returns how many
    /// writes it took (0 when the count already matched).
    pub async fn scale(&self, replicas: u32) -> Result<u32, Error> {
        let replicas = i32::try_from(replicas).map_err(|_| {
            Error::InvalidSpec(wpa_core::Error::TooLarge {
                field: "desiredReplicas",
                value: i64::from(replicas),
                max: i64::from(i32::MAX),
            })
        })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut scale = self.get_scale().await?;
            if scale.spec.as_ref().and_then(|spec| spec.replicas) == Some(replicas) {
                return Ok(attempt - 1);
            }
            scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
            scale.status = None;
            let call = self.scale_call("update");
            let result = match self.kind {
                TargetKind::Deployment => {
                    Api::<Deployment>::namespaced(self.client.clone(), &self.namespace)
                        .replace_scale(&self.name, &PostParams::default(), &scale)
                        .await
                }
                TargetKind::ReplicaSet => {
                    Api::<ReplicaSet>::namespaced(self.client.clone(), &self.namespace)
                        .replace_scale(&self.name, &PostParams::default(), &scale)
                        .await
                }
            };
            match result.map_err(|e| call.error(e)) {
                Ok(_) => return Ok(attempt),
                Err(Error::Conflict {
                    kind,
                    namespace,
                    name,
                    message,
                    ..
                }) => {
                    if attempt >= self.retry.attempts {
                        return Err(Error::Conflict {
                            kind,
                            namespace,
                            name,
                            attempts: attempt,
                            message,
                        });
                    }
                    tracing::debug!(
                        target = %self.name, namespace = %self.namespace, attempt,
                        "scale conflict, re-reading: {message}"
                    );
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                }
                Err(other) => return Err(other),
            }
        }
    }

    async fn get_scale(&self) -> Result<k8s_openapi::api::autoscaling::v1::Scale, Error> {
        let call = self.scale_call("get");
        let result = match self.kind {
            TargetKind::Deployment => {
                Api::<Deployment>::namespaced(self.client.clone(), &self.namespace)
                    .get_scale(&self.name)
                    .await
            }
            TargetKind::ReplicaSet => {
                Api::<ReplicaSet>::namespaced(self.client.clone(), &self.namespace)
                    .get_scale(&self.name)
                    .await
            }
        };
        result.map_err(|e| call.error(e))
    }
}

impl ScaleTarget for KubeScaleTarget {
    type Error = Error;

    async fn replicas(&mut self) -> Result<TargetReplicas, Error> {
        self.read().await
    }

    async fn apply(&mut self, replicas: u32) -> Result<(), Error> {
        self.scale(replicas).await.map(|_| ())
    }
}
