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
//! a Deployment's status unless [`ApiServer::set_auto_ready`] is on).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

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

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this HTTP status and a `Status` body, without handling
    /// the request.
    Respond(u16),
    /// Bump the target object's `resourceVersion` (as if another client had
    /// written it) and then handle the request normally, so a write that
    /// carries the old version conflicts.
    ConcurrentWrite,
}

/// A fault injected into matching requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Only requests with this method (any when `None`).
    pub method: Option<Method>,
    /// Only requests whose path ends with this (e.g. `/deployments/web/scale`).
    pub path_suffix: String,
    /// What to do.
    pub action: FaultAction,
    /// How many matching requests it applies to.
    pub times: u32,
}

impl Fault {
    /// Answers `status` to the next `times` requests with `method` on a
    /// path ending in `path_suffix`.
    #[must_use]
    pub fn respond(method: Method, path_suffix: &str, status: u16, times: u32) -> Self {
        Fault {
            method: Some(method),
            path_suffix: path_suffix.to_owned(),
            action: FaultAction::Respond(status),
            times,
        }
    }

    /// A concurrent write before the next `times` requests with `method` on
    /// a path ending in `path_suffix`.
    #[must_use]
    pub fn concurrent_write(method: Method, path_suffix: &str, times: u32) -> Self {
        Fault {
            method: Some(method),
            path_suffix: path_suffix.to_owned(),
            action: FaultAction::ConcurrentWrite,
            times,
        }
    }
}

/// One request the double received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: Method,
    /// Path, without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body, parsed as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The status code answered.
    pub status: u16,
    /// When it arrived (tokio's clock: paused time in a paused test).
    pub at: tokio::time::Instant,
}

impl RecordedRequest {
    /// Whether this is a watch request.
    #[must_use]
    pub fn is_watch(&self) -> bool {
        query_param(&self.query, "watch").is_some_and(|v| v == "true" || v == "1")
    }
}

/// Identifies a stored object: group/version ("v1" for the core group),
/// plural resource, namespace, name.
type Key = (String, String, String, String);

/// The store key of an object: (apiVersion, resource, namespace, name).
fn key(api_version: &str, resource: &str, namespace: &str, name: &str) -> Key {
    (
        api_version.to_owned(),
        resource.to_owned(),
        namespace.to_owned(),
        name.to_owned(),
    )
}

#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    gv: String,
    resource: String,
    namespace: String,
    type_: &'static str,
    object: Value,
}

#[derive(Debug, Default)]
struct Store {
    rv: u64,
    uid: u64,
    objects: BTreeMap<Key, Value>,
    /// Server-side apply field owners: per object, JSON pointer -> manager.
    owners: BTreeMap<Key, BTreeMap<String, String>>,
    history: Vec<Change>,
    faults: Vec<Fault>,
    requests: Vec<RecordedRequest>,
    auto_ready: bool,
}

struct Shared {
    store: Mutex<Store>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock poisons it; the data is still
        // consistent enough for a test double.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The running double. Dropping it stops the server.
pub struct ApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The plural resource name of a kind, as the API server spells it.
#[must_use]
pub fn plural(kind: &str) -> String {
    match kind {
        "Endpoints" => "endpoints".to_owned(),
        kind => {
            let lower = kind.to_ascii_lowercase();
            if lower.ends_with('s') {
                format!("{lower}es")
            } else if let Some(stem) = lower.strip_suffix('y') {
                format!("{stem}ies")
            } else {
                format!("{lower}s")
            }
        }
    }
}

/// Kinds whose main resource ignores `.status` on writes (they have a
/// status subresource).
fn has_status_subresource(resource: &str) -> bool {
    matches!(
        resource,
        "deployments" | "replicasets" | "statefulsets" | "workerpodautoscalers" | "pods"
    )
}

fn has_scale_subresource(resource: &str) -> bool {
    matches!(resource, "deployments" | "replicasets" | "statefulsets")
}

fn kind_of(resource: &str) -> String {
    match resource {
        "deployments" => "Deployment".to_owned(),
        "replicasets" => "ReplicaSet".to_owned(),
        "statefulsets" => "StatefulSet".to_owned(),
        "workerpodautoscalers" => "WorkerPodAutoScaler".to_owned(),
        "leases" => "Lease".to_owned(),
        "events" => "Event".to_owned(),
        "pods" => "Pod".to_owned(),
        other => {
            let singular = other.strip_suffix('s').unwrap_or(other);
            let mut chars = singular.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        }
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

struct Failure(u16, String);

impl Failure {
    fn not_found(resource: &str, name: &str) -> Self {
        Failure(404, format!("{resource} \"{name}\" not found"))
    }
}

type Handled = Result<Value, Failure>;

fn json_response(code: u16, value: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(target) = target {
                for (key, value) in patch {
                    if value.is_null() {
                        target.remove(key);
                    } else {
                        merge(target.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// JSON patch (RFC 6902): add, replace, remove, test.
fn json_patch(target: &mut Value, ops: &Value) -> Result<(), Failure> {
    let bad = |message: &str| Failure(422, message.to_owned());
    let ops = ops
        .as_array()
        .ok_or_else(|| bad("JSON patch must be an array"))?;
    for op in ops {
        let kind = op["op"].as_str().ok_or_else(|| bad("op missing"))?;
        let path = op["path"].as_str().ok_or_else(|| bad("path missing"))?;
        let (parent, last) = path.rsplit_once('/').ok_or_else(|| bad("bad path"))?;
        let last = last.replace("~1", "/").replace("~0", "~");
        match kind {
            "test" => {
                if target.pointer(path) != Some(&op["value"]) {
                    return Err(bad("test failed"));
                }
            }
            "remove" => {
                let parent = target.pointer_mut(parent).ok_or_else(|| bad("no parent"))?;
                match parent {
                    Value::Object(map) => {
                        map.remove(&last).ok_or_else(|| bad("nothing to remove"))?;
                    }
                    Value::Array(items) => {
                        let index: usize = last.parse().map_err(|_| bad("bad index"))?;
                        if index >= items.len() {
                            return Err(bad("index out of range"));
                        }
                        items.remove(index);
                    }
                    _ => return Err(bad("parent is not a container")),
                }
            }
            "add" | "replace" => {
                let value = op["value"].clone();
                let parent = target.pointer_mut(parent).ok_or_else(|| bad("no parent"))?;
                match parent {
                    Value::Object(map) => {
                        if kind == "replace" && !map.contains_key(&last) {
                            return Err(bad("nothing to replace"));
                        }
                        map.insert(last, value);
                    }
                    Value::Array(items) if last == "-" => items.push(value),
                    Value::Array(items) => {
                        let index: usize = last.parse().map_err(|_| bad("bad index"))?;
                        if kind == "replace" {
                            let slot = items.get_mut(index).ok_or_else(|| bad("bad index"))?;
                            *slot = value;
                        } else if index <= items.len() {
                            items.insert(index, value);
                        } else {
                            return Err(bad("index out of range"));
                        }
                    }
                    _ => return Err(bad("parent is not a container")),
                }
            }
            other => return Err(bad(&format!("unsupported op {other}"))),
        }
    }
    Ok(())
}

/// The leaf fields an apply patch sets, as JSON pointers (metadata,
/// apiVersion and kind excluded).
fn leaves(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                if prefix.is_empty() && matches!(key.as_str(), "metadata" | "apiVersion" | "kind") {
                    continue;
                }
                leaves(value, &format!("{prefix}/{key}"), out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn rv_of(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

fn set_meta(object: &mut Value, key: &str, value: Value) {
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        meta.insert(key.to_owned(), value);
    }
}

/// A parsed request path.
#[derive(Debug, Clone)]
struct Target {
    gv: String,
    resource: String,
    /// `None`: all namespaces.
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ((*version).to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let owned = |s: &&str| (*s).to_owned();
    match rest {
        [resource] => Some(Target {
            gv,
            resource: (*resource).to_owned(),
            namespace: None,
            name: None,
            subresource: None,
        }),
        ["namespaces", namespace, resource, tail @ ..] if tail.len() <= 2 => Some(Target {
            gv,
            resource: (*resource).to_owned(),
            namespace: Some((*namespace).to_owned()),
            name: tail.first().map(owned),
            subresource: tail.get(1).map(owned),
        }),
        _ => None,
    }
}

impl Store {
    /// The objects of one resource, in one namespace or all, in key order.
    fn objects_of<'a>(
        &'a self,
        api_version: &'a str,
        resource: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.objects.iter().filter(move |((gv, r, ns, _), _)| {
            gv == api_version && r == resource && namespace.is_none_or(|n| n == ns)
        })
    }

    /// Removes an object: a new resourceVersion and a `DELETED` event.
    fn delete(&mut self, key: &Key) -> Option<Value> {
        let mut object = self.objects.remove(key)?;
        self.owners.remove(key);
        let rv = self.next_rv();
        set_meta(&mut object, "resourceVersion", json!(rv.to_string()));
        self.record(key, "DELETED", object.clone());
        Some(object)
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, key: &Key, type_: &'static str, object: Value) {
        self.history.push(Change {
            rv: self.rv,
            gv: key.0.clone(),
            resource: key.1.clone(),
            namespace: key.2.clone(),
            type_,
            object,
        });
    }

    /// Stores `object` under `key` as a new version and records the event.
    fn commit(&mut self, key: &Key, mut object: Value, type_: &'static str) -> Value {
        let rv = self.next_rv();
        set_meta(&mut object, "resourceVersion", json!(rv.to_string()));
        if self.auto_ready && has_scale_subresource(&key.1) {
            let replicas = object
                .pointer("/spec/replicas")
                .cloned()
                .unwrap_or(json!(1));
            merge(
                &mut object,
                &json!({"status": {
                    "replicas": replicas,
                    "readyReplicas": replicas,
                    "availableReplicas": replicas,
                    "updatedReplicas": replicas,
                }}),
            );
        }
        self.objects.insert(key.clone(), object.clone());
        self.record(key, type_, object.clone());
        object
    }

    fn create(&mut self, target: &Target, namespace: &str, mut object: Value) -> Handled {
        if !object.is_object() {
            return Err(Failure(400, "body must be an object".to_owned()));
        }
        if !object.get("metadata").is_some_and(Value::is_object) {
            object["metadata"] = json!({});
        }
        let name = match object.pointer("/metadata/name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => match object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
            {
                Some(prefix) => {
                    self.uid += 1;
                    format!("{prefix}{:05x}", self.uid)
                }
                None => return Err(Failure(422, "metadata.name is required".to_owned())),
            },
        };
        let key: Key = (
            target.gv.clone(),
            target.resource.clone(),
            namespace.to_owned(),
            name.clone(),
        );
        if self.objects.contains_key(&key) {
            return Err(Failure(
                409,
                format!("{} \"{name}\" already exists", target.resource),
            ));
        }
        self.uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uid);
        set_meta(&mut object, "name", json!(name));
        set_meta(&mut object, "namespace", json!(namespace));
        set_meta(&mut object, "uid", json!(uid));
        set_meta(&mut object, "generation", json!(1));
        set_meta(
            &mut object,
            "creationTimestamp",
            json!("2026-01-01T00:00:00Z"),
        );
        object["apiVersion"] = json!(target.gv);
        object["kind"] = json!(kind_of(&target.resource));
        if has_scale_subresource(&target.resource) && object.pointer("/spec/replicas").is_none() {
            merge(&mut object, &json!({"spec": {"replicas": 1}}));
        }
        Ok(self.commit(&key, object, "ADDED"))
    }

    /// Applies `change` to the stored object at `key` as a write of
    /// `subresource`, with optimistic concurrency on `resourceVersion`.
    fn write(
        &mut self,
        key: &Key,
        subresource: Option<&str>,
        precondition: Option<String>,
        change: impl FnOnce(&mut Value) -> Result<(), Failure>,
    ) -> Handled {
        let Some(current) = self.objects.get(key).cloned() else {
            return Err(Failure::not_found(&key.1, &key.3));
        };
        if let Some(expected) = precondition.filter(|rv| !rv.is_empty())
            && rv_of(&current) != Some(expected.as_str())
        {
            return Err(Failure(
                409,
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                    key.1, key.3
                ),
            ));
        }
        let mut next = current.clone();
        change(&mut next)?;
        // Identity and bookkeeping stay the server's.
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            if let Some(value) = current.pointer(&format!("/metadata/{field}")) {
                set_meta(&mut next, field, value.clone());
            }
        }
        next["apiVersion"] = current["apiVersion"].clone();
        next["kind"] = current["kind"].clone();
        match subresource {
            Some("status") => {
                // Only .status changes.
                let status = next.get("status").cloned();
                next = current.clone();
                match status {
                    Some(status) => next["status"] = status,
                    None => {
                        if let Value::Object(map) = &mut next {
                            map.remove("status");
                        }
                    }
                }
            }
            _ if has_status_subresource(&key.1) => {
                match current.get("status") {
                    Some(status) => next["status"] = status.clone(),
                    None => {
                        if let Value::Object(map) = &mut next {
                            map.remove("status");
                        }
                    }
                }
                if next.get("spec") != current.get("spec") {
                    let generation = current
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    set_meta(&mut next, "generation", json!(generation + 1));
                }
            }
            _ => {}
        }
        if next == current {
            // No-op writes do not bump the resourceVersion, like the server.
            return Ok(current);
        }
        Ok(self.commit(key, next, "MODIFIED"))
    }

    /// Server-side apply: conflicts on fields owned by another manager with
    /// a different value, unless forced; creates the object when absent.
    fn apply(
        &mut self,
        target: &Target,
        key: &Key,
        patch: &Value,
        manager: &str,
        force: bool,
    ) -> Handled {
        let mut fields = Vec::new();
        leaves(patch, "", &mut fields);
        if let Some(current) = self.objects.get(key) {
            let owners = self.owners.get(key);
            for (pointer, value) in &fields {
                let owner = owners.and_then(|owners| owners.get(pointer));
                if let Some(owner) = owner
                    && owner != manager
                    && current.pointer(pointer) != Some(value)
                    && !force
                {
                    return Err(Failure(
                        409,
                        format!(
                            "Apply failed with 1 conflict: conflict with \"{owner}\": {pointer}"
                        ),
                    ));
                }
            }
        }
        let result = if self.objects.contains_key(key) {
            self.write(key, target.subresource.as_deref(), None, |object| {
                merge(object, patch);
                Ok(())
            })?
        } else {
            let mut object = patch.clone();
            merge(&mut object, &json!({"metadata": {"name": key.3}}));
            self.create(target, &key.2, object)?
        };
        let owners = self.owners.entry(key.clone()).or_default();
        for (pointer, _) in fields {
            owners.insert(pointer, manager.to_owned());
        }
        Ok(result)
    }

    /// A merge or JSON patch takes ownership of what it sets (an "Update"
    /// manager) and releases what it removes.
    fn disown(&mut self, key: &Key, patch: &Value, manager: &str) {
        let mut fields = Vec::new();
        leaves(patch, "", &mut fields);
        let owners = self.owners.entry(key.clone()).or_default();
        for (pointer, value) in fields {
            if value.is_null() {
                owners.retain(|owned, _| !owned.starts_with(&pointer));
            } else {
                owners.insert(pointer, manager.to_owned());
            }
        }
    }

    /// A list, in pages when the client asks for them (`limit`, then
    /// `continue`), as the API server does: the informers of kube-rs list
    /// 500 objects per page. The continue token names the last key and the
    /// first page's resourceVersion; later pages read the current objects
    /// (the real server reads a consistent snapshot, or answers 410 once it
    /// has expired: neither is emulated).
    fn list(&self, target: &Target, query: &str) -> Result<Value, Failure> {
        let limit = match query_param(query, "limit") {
            Some(limit) => Some(
                limit
                    .parse::<usize>()
                    .map_err(|_| Failure(400, format!("limit: not a count: {limit}")))?,
            ),
            None => None,
        };
        let (rv, after) = match query_param(query, "continue").filter(|c| !c.is_empty()) {
            Some(token) => {
                let bad = || {
                    Failure(
                        400,
                        format!("continue: not a token of this server: {token}"),
                    )
                };
                let (rv, last) = token.split_once('.').ok_or_else(bad)?;
                let (namespace, name) = last.split_once('.').ok_or_else(bad)?;
                let rv = rv.parse::<u64>().map_err(|_| bad())?;
                (rv, Some((namespace.to_owned(), name.to_owned())))
            }
            None => (self.rv, None),
        };
        let mut items = self
            .objects_of(&target.gv, &target.resource, target.namespace.as_deref())
            .filter(|((_, _, namespace, name), _)| {
                after
                    .as_ref()
                    .is_none_or(|(ns, n)| (namespace, name) > (ns, n))
            });
        let page: Vec<(&Key, &Value)> = match limit {
            Some(limit) if limit > 0 => items.by_ref().take(limit).collect(),
            _ => items.by_ref().collect(),
        };
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if let (Some((key, _)), true) = (page.last(), items.next().is_some()) {
            // A namespace is a DNS label (no dots); a name may hold dots,
            // so it goes last.
            metadata["continue"] = json!(format!("{rv}.{}.{}", key.2, key.3));
        }
        Ok(json!({
            "kind": format!("{}List", kind_of(&target.resource)),
            "apiVersion": target.gv,
            "metadata": metadata,
            "items": page.into_iter().map(|(_, object)| object.clone()).collect::<Vec<_>>(),
        }))
    }
}

fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
        },
    })
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let headers: HeaderMap = request.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match axum::body::to_bytes(request.into_body(), 64 << 20).await {
        Ok(bytes) => bytes,
        Err(_) => Bytes::new(),
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);

    let mut record = RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        body: body.clone(),
        status: 200,
        at: tokio::time::Instant::now(),
    };

    // Faults first.
    let fault = {
        let mut store = shared.lock();
        let found = store.faults.iter_mut().find(|fault| {
            fault.times > 0
                && fault.method.as_ref().is_none_or(|m| *m == method)
                && path.ends_with(&fault.path_suffix)
        });
        found.map(|fault| {
            fault.times -= 1;
            fault.action.clone()
        })
    };
    match fault {
        Some(FaultAction::Respond(code)) => {
            record.status = code;
            shared.lock().requests.push(record);
            let message = format!("injected fault: {code} on {method} {path}");
            return json_response(code, &status_body(code, reason_of(code), &message));
        }
        Some(FaultAction::ConcurrentWrite) => {
            if let Some(target) = parse_path(&path)
                && let (Some(ns), Some(name)) = (&target.namespace, &target.name)
            {
                let key = (
                    target.gv.clone(),
                    target.resource.clone(),
                    ns.clone(),
                    name.clone(),
                );
                let mut store = shared.lock();
                if let Some(object) = store.objects.get(&key).cloned() {
                    let mut object = object;
                    merge(
                        &mut object,
                        &json!({"metadata": {"annotations": {"test/concurrent-write": store.rv.to_string()}}}),
                    );
                    store.commit(&key, object, "MODIFIED");
                    let rv = store.rv;
                    drop(store);
                    shared.changed.send_replace(rv);
                }
            }
        }
        None => {}
    }

    let Some(target) = parse_path(&path) else {
        record.status = 404;
        shared.lock().requests.push(record);
        return json_response(
            404,
            &status_body(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
    };

    let watching = query_param(&query, "watch").is_some_and(|v| v == "true" || v == "1");
    if method == Method::GET && target.name.is_none() && watching {
        shared.lock().requests.push(record);
        return watch_response(&shared, target, &query);
    }

    let result = {
        let mut store = shared.lock();
        let result = dispatch(
            &mut store,
            &method,
            &target,
            &query,
            content_type.as_deref(),
            body,
        );
        record.status = match &result {
            Ok(_) => {
                if method == Method::POST {
                    201
                } else {
                    200
                }
            }
            Err(Failure(code, _)) => *code,
        };
        store.requests.push(record.clone());
        result
    };
    shared.changed.send_replace(shared.lock().rv);
    match result {
        Ok(value) => json_response(record.status, &value),
        Err(Failure(code, message)) => {
            json_response(code, &status_body(code, reason_of(code), &message))
        }
    }
}

fn dispatch(
    store: &mut Store,
    method: &Method,
    target: &Target,
    query: &str,
    content_type: Option<&str>,
    body: Value,
) -> Handled {
    let Some(namespace) = target.namespace.clone() else {
        if *method == Method::GET {
            return store.list(target, query);
        }
        return Err(Failure(
            405,
            "cluster-scoped writes are not supported by the double".to_owned(),
        ));
    };
    let Some(name) = target.name.clone() else {
        return match *method {
            Method::GET => store.list(target, query),
            Method::POST => store.create(target, &namespace, body),
            _ => Err(Failure(405, format!("{method} on a collection"))),
        };
    };
    let key: Key = (
        target.gv.clone(),
        target.resource.clone(),
        namespace,
        name.clone(),
    );
    let sub = target.subresource.as_deref();
    match sub {
        None | Some("status") => {}
        Some("scale") if has_scale_subresource(&target.resource) => {}
        Some(other) => {
            return Err(Failure(
                404,
                format!("no subresource {other} on {}", target.resource),
            ));
        }
    }
    let scale = sub == Some("scale");
    let present = |store: &Store| {
        store
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| Failure::not_found(&target.resource, &name))
    };
    let respond = |object: Value| if scale { scale_of(&object) } else { object };
    match *method {
        Method::GET => present(store).map(respond),
        Method::DELETE => store
            .delete(&key)
            .ok_or_else(|| Failure::not_found(&target.resource, &name)),
        Method::PUT => {
            let precondition = rv_of(&body).map(str::to_owned);
            if scale {
                let replicas = body.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
                store
                    .write(&key, None, precondition, |object| {
                        merge(object, &json!({"spec": {"replicas": replicas}}));
                        Ok(())
                    })
                    .map(respond)
            } else {
                store.write(&key, sub, precondition, |object| {
                    let mut body = body;
                    // Server-owned metadata survives a replace.
                    if let (Some(Value::Object(old)), Some(Value::Object(new))) =
                        (object.get("metadata").cloned(), body.get_mut("metadata"))
                    {
                        for (k, v) in old {
                            new.entry(k).or_insert(v);
                        }
                    }
                    *object = body;
                    Ok(())
                })
            }
        }
        Method::PATCH => {
            let precondition = rv_of(&body).map(str::to_owned);
            let manager = query_param(query, "fieldManager")
                .unwrap_or("unknown")
                .to_owned();
            let content_type = content_type.unwrap_or("");
            if content_type.starts_with("application/apply-patch") {
                if scale {
                    return Err(Failure(
                        415,
                        "apply on scale is not supported by the double".to_owned(),
                    ));
                }
                let force = query_param(query, "force") == Some("true");
                return store.apply(target, &key, &body, &manager, force);
            }
            let patch = if scale {
                // A patch to a Scale only carries spec.replicas over.
                match body.pointer("/spec/replicas") {
                    Some(replicas) => json!({"spec": {"replicas": replicas}}),
                    None => json!({}),
                }
            } else {
                body
            };
            let result = if content_type.starts_with("application/json-patch") {
                store.write(&key, sub, None, |object| json_patch(object, &patch))
            } else if content_type.starts_with("application/merge-patch")
                || content_type.starts_with("application/strategic-merge-patch")
            {
                store.write(&key, sub, precondition, |object| {
                    merge(object, &patch);
                    Ok(())
                })
            } else {
                Err(Failure(
                    415,
                    format!("unsupported patch type {content_type:?}"),
                ))
            }?;
            store.disown(&key, &patch, &manager);
            Ok(respond(result))
        }
        _ => Err(Failure(405, format!("{method} not supported"))),
    }
}

struct WatchState {
    shared: Arc<Shared>,
    changed: watch::Receiver<u64>,
    target: Target,
    /// Index into the history of the next change to look at.
    cursor: usize,
    /// Only changes above this resourceVersion.
    since: u64,
    pending: std::collections::VecDeque<Value>,
    deadline: tokio::time::Instant,
}

fn matches(target: &Target, change: &Change) -> bool {
    change.gv == target.gv
        && change.resource == target.resource
        && target
            .namespace
            .as_ref()
            .is_none_or(|ns| *ns == change.namespace)
}

fn watch_response(shared: &Arc<Shared>, target: Target, query: &str) -> Response {
    let timeout = query_param(query, "timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let requested = query_param(query, "resourceVersion").and_then(|s| s.parse::<u64>().ok());
    let store = shared.lock();
    let mut pending = std::collections::VecDeque::new();
    let since = match requested {
        Some(rv) if rv > 0 => rv,
        _ => {
            // No version: the current objects first, as ADDED.
            let list = store.list(&target, "").unwrap_or_default();
            if let Some(items) = list["items"].as_array() {
                for item in items {
                    pending.push_back(json!({"type": "ADDED", "object": item}));
                }
            }
            store.rv
        }
    };
    let cursor = store.history.partition_point(|change| change.rv <= since);
    drop(store);
    let state = WatchState {
        shared: Arc::clone(shared),
        changed: shared.changed.subscribe(),
        target,
        cursor,
        since,
        pending,
        deadline: tokio::time::Instant::now() + Duration::from_secs(timeout),
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                let mut line = event.to_string();
                line.push('\n');
                return Some((Ok::<_, Infallible>(Bytes::from(line)), state));
            }
            {
                let store = state.shared.lock();
                while let Some(change) = store.history.get(state.cursor) {
                    state.cursor += 1;
                    if change.rv > state.since && matches(&state.target, change) {
                        state
                            .pending
                            .push_back(json!({"type": change.type_, "object": change.object}));
                    }
                }
            }
            if !state.pending.is_empty() {
                continue;
            }
            let deadline = state.deadline;
            tokio::select! {
                changed = state.changed.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

impl ApiServer {
    /// Starts the double on `127.0.0.1`, on a free port.
    pub async fn start() -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            changed,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("API double stopped: {error}");
            }
        });
        Ok(ApiServer { shared, addr, task })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client configuration pointing at this double (plain HTTP,
    /// namespace `default`, kube's default retry of 429/503/504 on).
    pub fn config(&self) -> Result<kube::Config, Error> {
        let url = self.url();
        let uri = url.parse().map_err(|_| Error::Url(url.clone()))?;
        let mut config = kube::Config::new(uri);
        config.default_namespace = "default".to_owned();
        config.read_timeout = Some(Duration::from_secs(30));
        Ok(config)
    }

    /// A real kube client talking to this double, built from
    /// [`ApiServer::config`].
    pub fn client(&self) -> Result<kube::Client, Error> {
        kube::Client::try_from(self.config()?).map_err(Error::Client)
    }

    /// A real kube client without kube's transparent retry of 429, 503
    /// and 504, so that those statuses reach the caller.
    pub fn client_without_retry(&self) -> Result<kube::Client, Error> {
        let mut config = self.config()?;
        config.default_retry = false;
        kube::Client::try_from(config).map_err(Error::Client)
    }

    /// Creates an object, as `kubectl create` would; its `apiVersion`,
    /// `kind`, `metadata.name` and `metadata.namespace` (default `default`)
    /// say where. Returns the stored object.
    pub fn insert(&self, object: Value) -> Result<Value, Error> {
        let gv = object["apiVersion"]
            .as_str()
            .ok_or(Error::BadObject("apiVersion"))?
            .to_owned();
        let kind = object["kind"].as_str().ok_or(Error::BadObject("kind"))?;
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        let target = Target {
            gv,
            resource: plural(kind),
            namespace: Some(namespace.clone()),
            name: None,
            subresource: None,
        };
        let result = self.shared.lock().create(&target, &namespace, object);
        self.notify();
        result.map_err(|_| Error::BadObject("a unique metadata.name"))
    }

    /// The stored object, if any.
    #[must_use]
    pub fn get(
        &self,
        api_version: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        self.shared
            .lock()
            .objects
            .get(&key(api_version, resource, namespace, name))
            .cloned()
    }

    /// Changes a stored object in place (as another client would: a new
    /// `resourceVersion`, a `MODIFIED` watch event). Returns whether it
    /// existed.
    pub fn modify(
        &self,
        api_version: &str,
        resource: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> bool {
        let key = key(api_version, resource, namespace, name);
        let mut store = self.shared.lock();
        let Some(mut object) = store.objects.get(&key).cloned() else {
            return false;
        };
        change(&mut object);
        store.commit(&key, object, "MODIFIED");
        drop(store);
        self.notify();
        true
    }

    /// Deletes a stored object. Returns whether it existed.
    pub fn delete(&self, api_version: &str, resource: &str, namespace: &str, name: &str) -> bool {
        let deleted = self
            .shared
            .lock()
            .delete(&key(api_version, resource, namespace, name))
            .is_some();
        self.notify();
        deleted
    }

    /// Every stored object of `resource` in `namespace` (all namespaces
    /// when `None`).
    #[must_use]
    pub fn list(&self, api_version: &str, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        self.shared
            .lock()
            .objects_of(api_version, resource, namespace)
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Injects a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// When on, a Deployment's or ReplicaSet's status follows its
    /// `spec.replicas` at once (replicas, ready, available), as if every
    /// pod started instantly.
    pub fn set_auto_ready(&self, on: bool) {
        self.shared.lock().auto_ready = on;
    }

    /// Every request received so far, in order.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// The current global resourceVersion.
    #[must_use]
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    fn notify(&self) {
        let rv = self.shared.lock().rv;
        self.shared.changed.send_replace(rv);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural("Deployment"), "deployments");
        assert_eq!(plural("WorkerPodAutoScaler"), "workerpodautoscalers");
        assert_eq!(plural("Lease"), "leases");
        assert_eq!(plural("Policy"), "policies");
        assert_eq!(plural("Status"), "statuses");
    }

    #[test]
    fn paths() {
        let t = parse_path("/apis/apps/v1/namespaces/ns/deployments/web/scale").unwrap();
        assert_eq!(t.gv, "apps/v1");
        assert_eq!(t.resource, "deployments");
        assert_eq!(t.namespace.as_deref(), Some("ns"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("scale"));
        let t = parse_path("/api/v1/pods").unwrap();
        assert_eq!(t.gv, "v1");
        assert!(t.namespace.is_none());
        assert!(parse_path("/version").is_none());
    }

    #[test]
    fn merge_patch_removes_nulls() {
        let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge(&mut v, &json!({"a": null, "b": {"c": 5}}));
        assert_eq!(v, json!({"b": {"c": 5, "d": 3}}));
    }

    #[test]
    fn json_patch_ops() {
        let mut v = json!({"spec": {"replicas": 1}, "l": [1, 2]});
        json_patch(
            &mut v,
            &json!([
                {"op": "test", "path": "/spec/replicas", "value": 1},
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "add", "path": "/l/-", "value": 9},
                {"op": "remove", "path": "/l/0"}
            ]),
        )
        .ok()
        .unwrap();
        assert_eq!(v, json!({"spec": {"replicas": 3}, "l": [2, 9]}));
    }
}
