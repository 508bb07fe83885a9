//! The double as a running server: the [`ApiServer`] handle a test holds,
//! its HTTP listener on `127.0.0.1`, kube clients pointed at it, direct
//! access to the store (as another client, or `kubectl`, would change it),
//! faults to inject and the log of every request received.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::Method;
use serde_json::Value;
use tokio::sync::watch;

use crate::Error;
use crate::faults::Fault;
use crate::kinds::plural;
use crate::routing::{handle, is_watch};
use crate::store::{Key, Store};

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
        is_watch(&self.query)
    }
}

/// What the handler, the watches and the [`ApiServer`] handle share.
pub(crate) struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Vec<Fault>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// The store's resourceVersion after each change: wakes the watches.
    pub(crate) changed: watch::Sender<u64>,
}

/// Locks, ignoring poison: a panic while holding a lock leaves data that is
/// still consistent enough for a test double.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Vec<Fault>> {
        lock(&self.faults)
    }

    /// Appends to the request log.
    pub(crate) fn record(&self, request: RecordedRequest) {
        lock(&self.requests).push(request);
    }

    /// Wakes the watches (call without holding the store's lock).
    pub(crate) fn notify(&self) {
        let rv = self.store().rv;
        self.changed.send_replace(rv);
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
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
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

    /// A real kube client whose requests go straight into this double's
    /// router, without sockets: for tests on paused tokio time, where a
    /// loopback packet still in the kernel lets the clock run ahead (tokio
    /// advances a paused clock whenever the runtime is idle). Everything
    /// above the transport (kube's request building, serialization, status
    /// codes, watch streams) is the production path; kube's retry of 429,
    /// 503 and 504 is off, as with [`ApiServer::client_without_retry`].
    #[must_use]
    pub fn in_process_client(&self) -> kube::Client {
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&self.shared));
        kube::Client::new(app, "default")
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
        let resource = plural(kind);
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        let result = self
            .shared
            .store()
            .create(&gv, &resource, &namespace, object);
        self.shared.notify();
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
            .store()
            .objects
            .get(&Key::new(api_version, resource, namespace, name))
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
        let key = Key::new(api_version, resource, namespace, name);
        let mut store = self.shared.store();
        let Some(mut object) = store.objects.get(&key).cloned() else {
            return false;
        };
        change(&mut object);
        store.commit(&key, object, "MODIFIED");
        drop(store);
        self.shared.notify();
        true
    }

    /// Deletes a stored object. Returns whether it existed.
    pub fn delete(&self, api_version: &str, resource: &str, namespace: &str, name: &str) -> bool {
        let key = Key::new(api_version, resource, namespace, name);
        let deleted = self.shared.store().delete(&key).is_some();
        self.shared.notify();
        deleted
    }

    /// Every stored object of `resource` in `namespace` (all namespaces
    /// when `None`).
    #[must_use]
    pub fn list(&self, api_version: &str, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        self.shared
            .store()
            .objects_of(api_version, resource, namespace)
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Injects a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults().push(fault);
    }

    /// When on, a Deployment's or ReplicaSet's status follows its
    /// `spec.replicas` at once (replicas, ready, available), as if every
    /// pod started instantly.
    pub fn set_auto_ready(&self, on: bool) {
        self.shared.store().auto_ready = on;
    }

    /// When on, the double also does the ReplicaSet controller's part of a
    /// scale: a Deployment's or ReplicaSet's `spec.replicas` changing
    /// creates pods (running and ready at once) or deletes the ones the
    /// controller would pick, in its order (`pod-deletion-cost` included;
    /// see the `replicaset` module for the rules and what is emulated).
    pub fn set_replicaset_controller(&self, on: bool) {
        self.shared.store().replicaset_controller = on;
    }

    /// Every request received so far, in order.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// The current global resourceVersion.
    #[must_use]
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv
    }
}
