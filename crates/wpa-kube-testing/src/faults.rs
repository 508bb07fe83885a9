//! Injected faults: what the double does instead of, or just before,
//! serving a matching request. It can answer any status code without
//! touching the store, as an overloaded (429, 503), failing (500) or
//! forbidding (403) API server would; or write the object first, as a
//! concurrent client would, so that the request's `resourceVersion` is
//! stale and its write conflicts (409).

use axum::http::Method;
use serde_json::json;

use crate::routing::parse_path;
use crate::store::{Key, Store};

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

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.times > 0
            && self.method.as_ref().is_none_or(|m| m == method)
            && path.ends_with(&self.path_suffix)
    }
}

/// The action of the first fault (in injection order) matching a request,
/// using up one of its times.
pub(crate) fn take(faults: &mut [Fault], method: &Method, path: &str) -> Option<FaultAction> {
    let fault = faults
        .iter_mut()
        .find(|fault| fault.matches(method, path))?;
    fault.times -= 1;
    Some(fault.action.clone())
}

/// The concurrent write of [`FaultAction::ConcurrentWrite`]: an annotation
/// changes on the object the path names (if it exists). Returns whether
/// the store changed.
pub(crate) fn concurrent_write(store: &mut Store, path: &str) -> bool {
    let Some(target) = parse_path(path) else {
        return false;
    };
    let (Some(namespace), Some(name)) = (&target.namespace, &target.name) else {
        return false;
    };
    let key = Key::new(&target.gv, &target.resource, namespace, name);
    let Some(mut object) = store.objects.get(&key).cloned() else {
        return false;
    };
    json_patch::merge(
        &mut object,
        &json!({"metadata": {"annotations": {"test/concurrent-write": store.rv.to_string()}}}),
    );
    store.commit(&key, object, "MODIFIED");
    true
}
