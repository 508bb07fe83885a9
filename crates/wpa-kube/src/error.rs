//! The one error type of this crate.

use std::fmt;

/// Which kind of object a scale target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// An `apps/v1` Deployment (`spec.deploymentName`).
    Deployment,
    /// An `apps/v1` ReplicaSet (`spec.replicaSetName`).
    ReplicaSet,
}

impl TargetKind {
    /// The kind as Kubernetes spells it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetKind::Deployment => "Deployment",
            TargetKind::ReplicaSet => "ReplicaSet",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong on the Kubernetes side of the autoscaler.
///
/// Spec errors name the CRD field so that the message can go into an Event
/// or a status condition as is; API errors name the object and say what the
/// API server answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Both `deploymentName` and `replicaSetName` are set.
    #[error(
        "spec sets both deploymentName {deployment:?} and replicaSetName {replica_set:?}: set exactly one"
    )]
    BothTargets {
        /// `spec.deploymentName`.
        deployment: String,
        /// `spec.replicaSetName`.
        replica_set: String,
    },

    /// Neither `deploymentName` nor `replicaSetName` is set (or both are empty).
    #[error("spec sets neither deploymentName nor replicaSetName: set exactly one")]
    NoTarget,

    /// `queueURI` is absent or empty.
    #[error("queueURI is required")]
    MissingQueueUri,

    /// The target's `spec.selector` cannot select its pods.
    #[error("{kind} {namespace}/{name}: its spec.selector cannot select pods: {message}")]
    InvalidSelector {
        /// The target's kind.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        message: String,
    },

    /// `busyProbe` has a field that cannot be used.
    #[error("spec.busyProbe.{field} {message}")]
    InvalidBusyProbe {
        /// The field (`port`, `path`, `timeoutSeconds`).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },

    /// `queueURI` names a queue no enabled adapter can poll.
    #[error("queueURI {uri:?}: {message}")]
    UnsupportedQueueUri {
        /// The URI.
        uri: String,
        /// Why it cannot be polled (the adapter's message).
        message: String,
    },

    /// A spec field refused by the decision core.
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] wpa_core::Error),

    /// A replica count read from the API server that the core refuses.
    #[error("{kind} {namespace}/{name} reports invalid replicas: {source}")]
    InvalidReplicas {
        /// Target kind.
        kind: TargetKind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Why the count was refused.
        #[source]
        source: wpa_core::Error,
    },

    /// The object does not exist (HTTP 404).
    #[error(
        "{kind} {namespace}/{name} not found: create it, or fix the WorkerPodAutoScaler's target name"
    )]
    NotFound {
        /// What was looked up.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },

    /// RBAC refused the request (HTTP 403).
    #[error(
        "forbidden to {verb} {kind} {namespace}/{name}: {message} (check the controller's RBAC rules)"
    )]
    Forbidden {
        /// The verb refused.
        verb: &'static str,
        /// What was accessed.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API server's message.
        message: String,
    },

    /// Still conflicting after every retry (HTTP 409).
    #[error("{kind} {namespace}/{name}: still conflicting after {attempts} attempts: {message}")]
    Conflict {
        /// What was written.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// How many writes were tried.
        attempts: u32,
        /// The API server's last message.
        message: String,
    },

    /// The API server is throttling (HTTP 429).
    #[error("API server throttled {verb} {kind} {namespace}/{name}: {message} (retried later)")]
    TooManyRequests {
        /// The verb throttled.
        verb: &'static str,
        /// What was accessed.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API server's message.
        message: String,
    },

    /// The API server failed (HTTP 5xx).
    #[error("API server error {code} on {verb} {kind} {namespace}/{name}: {message}")]
    Server {
        /// The HTTP status code.
        code: u16,
        /// The verb.
        verb: &'static str,
        /// What was accessed.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API server's message.
        message: String,
    },

    /// Any other status the API server answered with (400, 422, ...).
    #[error("API server refused {verb} {kind} {namespace}/{name} with {code}: {message}")]
    Refused {
        /// The HTTP status code.
        code: u16,
        /// The verb.
        verb: &'static str,
        /// What was accessed.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API server's message.
        message: String,
    },

    /// The API server could not be reached, or its answer not read.
    #[error("talking to the API server ({verb} {kind} {namespace}/{name}): {source}")]
    Transport {
        /// The verb.
        verb: &'static str,
        /// What was accessed.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },

    /// Serializing a manifest failed.
    #[error("serializing the CRD: {0}")]
    Serialize(String),
}

impl Error {
    /// Whether retrying the same request later may succeed (429, 5xx,
    /// transport errors, conflicts).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::TooManyRequests { .. }
                | Error::Server { .. }
                | Error::Transport { .. }
                | Error::Conflict { .. }
        )
    }

    /// Whether the error is about the WorkerPodAutoScaler's spec (the user
    /// must fix the object), as opposed to the API or the target.
    #[must_use]
    pub fn is_spec_error(&self) -> bool {
        matches!(
            self,
            Error::BothTargets { .. }
                | Error::NoTarget
                | Error::MissingQueueUri
                | Error::InvalidBusyProbe { .. }
                | Error::UnsupportedQueueUri { .. }
                | Error::InvalidSpec(_)
        )
    }
}

/// Where an API call went, to build a typed [`Error`] from a `kube::Error`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) verb: &'static str,
    pub(crate) kind: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
}

impl Call<'_> {
    /// Classifies a client error by the API server's status code.
    pub(crate) fn error(&self, error: kube::Error) -> Error {
        let kind = self.kind.to_owned();
        let namespace = self.namespace.to_owned();
        let name = self.name.to_owned();
        let verb = self.verb;
        let kube::Error::Api(status) = &error else {
            return Error::Transport {
                verb,
                kind,
                namespace,
                name,
                source: Box::new(error),
            };
        };
        let message = status.message.clone();
        match status.code {
            404 => Error::NotFound {
                kind,
                namespace,
                name,
            },
            403 => Error::Forbidden {
                verb,
                kind,
                namespace,
                name,
                message,
            },
            409 => Error::Conflict {
                kind,
                namespace,
                name,
                attempts: 1,
                message,
            },
            429 => Error::TooManyRequests {
                verb,
                kind,
                namespace,
                name,
                message,
            },
            code @ 500..=599 => Error::Server {
                code,
                verb,
                kind,
                namespace,
                name,
                message,
            },
            code => Error::Refused {
                code,
                verb,
                kind,
                namespace,
                name,
                message,
            },
        }
    }
}
