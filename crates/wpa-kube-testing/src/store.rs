//! The object store, as etcd behind the API server would hold it.
//!
//! Objects are JSON values by (group/version, resource, namespace, name).
//! One global counter stamps every change as the object's
//! `metadata.resourceVersion` (a no-op write stamps nothing), and every
//! change is kept in a history that watches replay from any version.
//! Creates fill in what the server owns (`uid`, `generation`,
//! `creationTimestamp`, a name from `generateName`); writes check the
//! `resourceVersion` precondition (409 on a stale one), keep the server's
//! metadata, split `.status` from the rest for kinds with a status
//! subresource, and bump `generation` when the spec changes. Lists come in
//! pages with `limit` and `continue`, as the API server serves them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::kinds::{has_status_subresource, kind_of};
use crate::status::{Failure, Handled};
use jiff::Timestamp;

use crate::selector::LabelSelector;
use crate::{replicaset, workloads};

/// Identifies a stored object. The field order is the store's (and a
/// list's) order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    /// Group/version, `v1` for the core group.
    pub(crate) gv: String,
    /// Plural resource.
    pub(crate) resource: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl Key {
    pub(crate) fn new(gv: &str, resource: &str, namespace: &str, name: &str) -> Self {
        Key {
            gv: gv.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// One change, as a watch reports it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// The resourceVersion it was stamped with.
    pub(crate) rv: u64,
    pub(crate) key: Key,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub(crate) type_: &'static str,
    /// The object after the change (before it, for a deletion, with the
    /// deletion's resourceVersion).
    pub(crate) object: Value,
}

/// The objects, their history and the apply field owners.
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// The last resourceVersion handed out.
    pub(crate) rv: u64,
    /// Counter behind uids and generated names.
    uid: u64,
    pub(crate) objects: BTreeMap<Key, Value>,
    /// Server-side apply field owners: per object, JSON pointer -> manager.
    pub(crate) owners: BTreeMap<Key, BTreeMap<String, String>>,
    /// Every change so far, in resourceVersion order.
    pub(crate) history: Vec<Change>,
    /// See [`crate::ApiServer::set_auto_ready`].
    pub(crate) auto_ready: bool,
    /// See [`crate::ApiServer::set_replicaset_controller`].
    pub(crate) replicaset_controller: bool,
    /// Pods the emulated ReplicaSet controller created: its logical clock
    /// (one second each) and the node each goes to.
    pods_created: i64,
}

/// The logical clock's origin: 2026-01-01T00:00:00Z.
const CLOCK_ORIGIN_S: i64 = 1_767_225_600;

/// An object's `metadata.resourceVersion`.
pub(crate) fn rv_of(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

/// Sets one `metadata` field (when there is a `metadata` object).
pub(crate) fn set_meta(object: &mut Value, key: &str, value: Value) {
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        meta.insert(key.to_owned(), value);
    }
}

/// Removes a top-level field.
fn remove(object: &mut Value, field: &str) {
    if let Value::Object(map) = object {
        map.remove(field);
    }
}

impl Store {
    /// The objects of one resource, in one namespace or all, in key order.
    pub(crate) fn objects_of<'a>(
        &'a self,
        gv: &'a str,
        resource: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.objects.iter().filter(move |(key, _)| {
            key.gv == gv && key.resource == resource && namespace.is_none_or(|n| n == key.namespace)
        })
    }

    /// Removes an object: a new resourceVersion and a `DELETED` event.
    pub(crate) fn delete(&mut self, key: &Key) -> Option<Value> {
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
            key: key.clone(),
            type_,
            object,
        });
    }

    /// Stores `object` under `key` as a new version and records the event.
    pub(crate) fn commit(&mut self, key: &Key, mut object: Value, type_: &'static str) -> Value {
        let rv = self.next_rv();
        set_meta(&mut object, "resourceVersion", json!(rv.to_string()));
        if self.auto_ready {
            workloads::auto_ready(&key.resource, &mut object);
        }
        self.objects.insert(key.clone(), object.clone());
        self.record(key, type_, object.clone());
        object
    }

    /// Creates an object of `resource` in `namespace`: its name (or one from
    /// `generateName`), the server's metadata and defaults; 409 when the
    /// name is taken.
    pub(crate) fn create(
        &mut self,
        gv: &str,
        resource: &str,
        namespace: &str,
        object: Value,
    ) -> Handled {
        self.create_at(gv, resource, namespace, object, None)
    }

    /// [`Store::create`], stamped `created` instead of the fixed creation
    /// time (the emulated controller's pods, on its logical clock).
    fn create_at(
        &mut self,
        gv: &str,
        resource: &str,
        namespace: &str,
        mut object: Value,
        created: Option<String>,
    ) -> Handled {
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
        let key = Key::new(gv, resource, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(Failure(
                409,
                format!("{resource} \"{name}\" already exists"),
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
            json!(created.unwrap_or_else(|| "2026-01-01T00:00:00Z".to_owned())),
        );
        object["apiVersion"] = json!(gv);
        object["kind"] = json!(kind_of(resource));
        workloads::default_replicas(resource, &mut object);
        let created = self.commit(&key, object, "ADDED");
        self.sync_pods(&key);
        Ok(created)
    }

    /// The emulated ReplicaSet controller ([`crate::replicaset`]): the pods
    /// `key`'s workload selects, brought to its `spec.replicas`.
    fn sync_pods(&mut self, key: &Key) {
        if !self.replicaset_controller || !workloads::has_scale_subresource(&key.resource) {
            return;
        }
        let Some(workload) = self.objects.get(key).cloned() else {
            return;
        };
        let replicas = workload
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(1);
        let (keys, pods): (Vec<Key>, Vec<Value>) = self
            .objects_of("v1", "pods", Some(&key.namespace))
            .filter(|(_, pod)| replicaset::is_active(pod) && replicaset::selects(&workload, pod))
            .map(|(key, pod)| (key.clone(), pod.clone()))
            .unzip();
        if pods.len() > replicas {
            let order = replicaset::deletion_order(&pods, self.clock(1));
            for &victim in order.iter().take(pods.len() - replicas) {
                self.delete(&keys[victim]);
            }
        }
        for _ in pods.len()..replicas {
            self.pods_created += 1;
            let node = format!("node-{}", self.pods_created % 3);
            let at = self.clock(0);
            let pod = replicaset::new_pod(&workload, &node, at);
            let _ = self.create_at("v1", "pods", &key.namespace, pod, Some(at.to_string()));
        }
    }

    /// The logical clock, `ahead` seconds after the last pod created.
    fn clock(&self, ahead: i64) -> Timestamp {
        Timestamp::from_second(CLOCK_ORIGIN_S + self.pods_created + ahead)
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Applies `change` to the stored object at `key` as a write of
    /// `subresource`, with optimistic concurrency on `resourceVersion`.
    pub(crate) fn write(
        &mut self,
        key: &Key,
        subresource: Option<&str>,
        precondition: Option<String>,
        change: impl FnOnce(&mut Value) -> Result<(), Failure>,
    ) -> Handled {
        let Some(current) = self.objects.get(key).cloned() else {
            return Err(Failure::not_found(&key.resource, &key.name));
        };
        if let Some(expected) = precondition.filter(|rv| !rv.is_empty())
            && rv_of(&current) != Some(expected.as_str())
        {
            return Err(Failure(
                409,
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                    key.resource, key.name
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
                    None => remove(&mut next, "status"),
                }
            }
            _ if has_status_subresource(&key.resource) => {
                match current.get("status") {
                    Some(status) => next["status"] = status.clone(),
                    None => remove(&mut next, "status"),
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
        let replicas_changed = next.pointer("/spec/replicas") != current.pointer("/spec/replicas");
        let written = self.commit(key, next, "MODIFIED");
        if replicas_changed {
            self.sync_pods(key);
        }
        Ok(written)
    }

    /// A list, in pages when the client asks for them (`limit`, then
    /// `continue`), as the API server does: the informers of kube-rs list
    /// 500 objects per page. The continue token names the last key and the
    /// first page's resourceVersion; later pages read the current objects
    /// (the real server reads a consistent snapshot, or answers 410 once it
    /// has expired: neither is emulated).
    pub(crate) fn list(
        &self,
        gv: &str,
        resource: &str,
        namespace: Option<&str>,
        limit: Option<&str>,
        token: Option<&str>,
        label_selector: Option<&str>,
    ) -> Handled {
        let selector = match label_selector {
            Some(raw) => {
                let text: String = form_urlencoded::parse(format!("s={raw}").as_bytes())
                    .map(|(_, value)| value.into_owned())
                    .next()
                    .unwrap_or_default();
                LabelSelector::parse(&text)
                    .map_err(|why| Failure(400, format!("labelSelector {text:?}: {why}")))?
            }
            None => LabelSelector::default(),
        };
        let limit = match limit {
            Some(limit) => Some(
                limit
                    .parse::<usize>()
                    .map_err(|_| Failure(400, format!("limit: not a count: {limit}")))?,
            ),
            None => None,
        };
        let (rv, after) = match token.filter(|c| !c.is_empty()) {
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
                (rv, Some((namespace, name)))
            }
            None => (self.rv, None),
        };
        let mut items = self
            .objects_of(gv, resource, namespace)
            .filter(|(key, object)| {
                after.is_none_or(|last| (key.namespace.as_str(), key.name.as_str()) > last)
                    && selector.matches(object)
            });
        let page: Vec<(&Key, &Value)> = match limit {
            Some(limit) if limit > 0 => items.by_ref().take(limit).collect(),
            _ => items.by_ref().collect(),
        };
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if let (Some((key, _)), true) = (page.last(), items.next().is_some()) {
            // A namespace is a DNS label (no dots); a name may hold dots,
            // so it goes last.
            metadata["continue"] = json!(format!("{rv}.{}.{}", key.namespace, key.name));
        }
        Ok(json!({
            "kind": format!("{}List", kind_of(resource)),
            "apiVersion": gv,
            "metadata": metadata,
            "items": page.into_iter().map(|(_, object)| object.clone()).collect::<Vec<_>>(),
        }))
    }
}
