//! An in-process Kubernetes API server double, at the HTTP level.
//!
//! [`ApiServer::start`] serves on `127.0.0.1` (a free port) and
//! [`ApiServer::client`] builds a real [`kube::Client`] pointed at it, so
//! tests drive the production code path end to end: request building,
//! serialization, status codes, watch streams.
//!
//! It behaves like the API server where the autoscaler depends on it:
//!
//! - any namespaced resource under `/api/v1` or `/apis/{group}/{version}`
//!   (Deployments, ReplicaSets, WorkerPodAutoScalers, Leases, Events, ...):
//!   list (one namespace or all, in pages with `limit` and `continue`), get, create (`generateName` included),
//!   replace, patch (JSON merge, strategic merge treated as merge, JSON
//!   patch, server-side apply with field-ownership conflicts), delete;
//! - `watch=true` streams of JSON events from a `resourceVersion` (or the
//!   current objects as `ADDED` first when none is given), `timeoutSeconds`
//!   honoured;
//! - one global, increasing `resourceVersion`; a write carrying a stale
//!   `metadata.resourceVersion` gets 409 `Conflict`; a missing object 404;
//! - the `/status` subresource (writes change only `.status`) and the
//!   `/scale` subresource of Deployments and ReplicaSets (an
//!   `autoscaling/v1` `Scale`); writes to the main resource of a kind with
//!   a status subresource keep its `.status`;
//! - injectable faults ([`Fault`]): any status code (429, 5xx, 403, 409)
//!   for matching requests, or a concurrent write just before a request;
//! - a log of every request ([`ApiServer::requests`]).
//!
//! What it does not do: authentication, admission, schema validation,
//! label or field selectors, garbage collection, controllers (nothing moves
//! a Deployment's status unless [`ApiServer::set_auto_ready`] is on, and
//! nothing makes or removes its pods unless
//! [`ApiServer::set_replicaset_controller`] is: then a scale deletes pods in
//! the ReplicaSet controller's order, [`replicaset`]).
//!
//! The modules, one job each: `server` (the [`ApiServer`] handle and its
//! HTTP listener), `routing` (URL layout and verbs), `store` (objects,
//! resource versions, lists), `patch` (merge, JSON patch, server-side
//! apply), `watch` (event streams), `workloads` (Deployment and ReplicaSet
//! behaviour: `/scale`, auto-ready), `faults`, `kinds` (resource names) and
//! `status` (error bodies).

mod faults;
mod kinds;
mod patch;
pub mod replicaset;
mod routing;
mod selector;
mod server;
mod status;
mod store;
mod watch;
mod workloads;

pub use faults::{Fault, FaultAction};
pub use kinds::plural;
pub use server::{ApiServer, RecordedRequest};

/// Why the double could not start or a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding 127.0.0.1 failed.
    #[error("binding the API double on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The URL could not be parsed (cannot happen for a bound address).
    #[error("API double URL {0:?} is invalid")]
    Url(String),
    /// Building the kube client failed.
    #[error("building a kube client for the API double: {0}")]
    Client(#[source] kube::Error),
    /// An object given to [`ApiServer::insert`] lacks a field.
    #[error("object lacks {0}")]
    BadObject(&'static str),
}
