//! Routing, as the API server lays out its URLs and verbs.
//!
//! `/api/v1/...` (the core group) and `/apis/{group}/{version}/...`, then
//! either `{resource}` (all namespaces: list and watch only) or
//! `namespaces/{namespace}/{resource}[/{name}[/{subresource}]]`. On a
//! collection: `GET` lists (or watches, with `watch=true`), `POST`
//! creates. On an object: `GET`, `PUT` (replace), `PATCH`, `DELETE`; the
//! `status` and `scale` subresources take `GET`, `PUT` and `PATCH`. Any
//! other path (discovery, `/version`, cluster-scoped objects) is a 404.
//!
//! Every request is recorded, after its faults are applied and with the
//! status it was answered.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::Response;
use serde_json::Value;

use crate::faults::{self, FaultAction};
use crate::patch::PatchOptions;
use crate::server::{RecordedRequest, Shared};
use crate::status::{Failure, Handled, json_response};
use crate::store::{Key, Store, rv_of};
use crate::watch::watch_response;
use crate::workloads::{self, has_scale_subresource};

/// What a request path addresses.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Group/version, `v1` for the core group.
    pub(crate) gv: String,
    /// Plural resource.
    pub(crate) resource: String,
    /// `None`: all namespaces.
    pub(crate) namespace: Option<String>,
    /// `None`: the collection.
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
}

/// The target of a path; `None` when it is not a resource path.
pub(crate) fn parse_path(path: &str) -> Option<Target> {
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

/// A query parameter's raw value (not percent-decoded: the parameters the
/// double reads never need it).
pub(crate) fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// Whether a query asks for a watch.
pub(crate) fn is_watch(query: &str) -> bool {
    query_param(query, "watch").is_some_and(|v| v == "true" || v == "1")
}

/// The one handler: every request goes through here.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(request.into_body(), 64 << 20)
        .await
        .unwrap_or_else(|_| Bytes::new());
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
    let fault = faults::take(&mut shared.faults(), &method, &path);
    match fault {
        Some(FaultAction::Respond(code)) => {
            record.status = code;
            shared.record(record);
            return Failure(code, format!("injected fault: {code} on {method} {path}"))
                .into_response();
        }
        Some(FaultAction::ConcurrentWrite) => {
            let changed = faults::concurrent_write(&mut shared.store(), &path);
            if changed {
                shared.notify();
            }
        }
        None => {}
    }

    let Some(target) = parse_path(&path) else {
        record.status = 404;
        shared.record(record);
        let message = "the server could not find the requested resource";
        return Failure(404, message.to_owned()).into_response();
    };

    if method == Method::GET && target.name.is_none() && is_watch(&query) {
        shared.record(record);
        return watch_response(&shared, target, &query);
    }

    let result = {
        let mut store = shared.store();
        let result = dispatch(
            &mut store,
            &method,
            &target,
            &query,
            content_type.as_deref(),
            body,
        );
        record.status = match &result {
            Ok(_) if method == Method::POST => 201,
            Ok(_) => 200,
            Err(Failure(code, _)) => *code,
        };
        // Recorded under the store's lock: in the order of the writes.
        shared.record(record.clone());
        result
    };
    shared.notify();
    match result {
        Ok(value) => json_response(record.status, &value),
        Err(failure) => failure.into_response(),
    }
}

/// The verbs, on a collection or an object.
fn dispatch(
    store: &mut Store,
    method: &Method,
    target: &Target,
    query: &str,
    content_type: Option<&str>,
    body: Value,
) -> Handled {
    let list = |store: &Store| {
        store.list(
            &target.gv,
            &target.resource,
            target.namespace.as_deref(),
            query_param(query, "limit"),
            query_param(query, "continue"),
            query_param(query, "labelSelector"),
        )
    };
    let Some(namespace) = target.namespace.as_deref() else {
        if *method == Method::GET {
            return list(store);
        }
        return Err(Failure(
            405,
            "cluster-scoped writes are not supported by the double".to_owned(),
        ));
    };
    let Some(name) = target.name.as_deref() else {
        return match *method {
            Method::GET => list(store),
            Method::POST => store.create(&target.gv, &target.resource, namespace, body),
            _ => Err(Failure(405, format!("{method} on a collection"))),
        };
    };
    let key = Key::new(&target.gv, &target.resource, namespace, name);
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
    let not_found = || Failure::not_found(&target.resource, name);
    match *method {
        Method::GET => store
            .objects
            .get(&key)
            .map(|object| {
                if scale {
                    workloads::scale_of(object)
                } else {
                    object.clone()
                }
            })
            .ok_or_else(not_found),
        Method::DELETE => store.delete(&key).ok_or_else(not_found),
        Method::PUT if scale => {
            let precondition = rv_of(&body).map(str::to_owned);
            let patch = workloads::scale_write(&body, true);
            store
                .write(&key, None, precondition, |object| {
                    json_patch::merge(object, &patch);
                    Ok(())
                })
                .map(|object| workloads::scale_of(&object))
        }
        Method::PUT => replace(store, &key, sub, body),
        Method::PATCH => {
            let options = PatchOptions {
                content_type: content_type.unwrap_or(""),
                manager: query_param(query, "fieldManager").unwrap_or("unknown"),
                force: query_param(query, "force") == Some("true"),
            };
            store.patch(&key, sub, options, body)
        }
        _ => Err(Failure(405, format!("{method} not supported"))),
    }
}

/// `PUT`: the body replaces the object (or its status), with its
/// `resourceVersion` as the precondition; the server-owned metadata the
/// body leaves out survives.
fn replace(store: &mut Store, key: &Key, subresource: Option<&str>, mut body: Value) -> Handled {
    let precondition = rv_of(&body).map(str::to_owned);
    store.write(key, subresource, precondition, |object| {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

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
    fn queries() {
        let query = "watch=1&resourceVersion=12&allowWatchBookmarks";
        assert!(is_watch(query));
        assert_eq!(query_param(query, "resourceVersion"), Some("12"));
        assert_eq!(query_param(query, "allowWatchBookmarks"), Some(""));
        assert_eq!(query_param(query, "limit"), None);
        assert!(!is_watch("watch=false"));
    }
}
