//! Watches: `GET` on a collection with `watch=true` answers a stream of
//! JSON lines, `{"type": "ADDED" | "MODIFIED" | "DELETED", "object": ...}`,
//! as the API server does.
//!
//! A watch from a `resourceVersion` replays the store's history after it,
//! then follows new changes; without one (or from `0`) it starts with the
//! current objects as `ADDED`. It ends after `timeoutSeconds` (30 minutes
//! by default), as the server closes a watch, on tokio's clock (so paused
//! time ends it too). What it does not do: `BOOKMARK` events
//! (`allowWatchBookmarks` is ignored, which clients must tolerate) and 410
//! `Gone` for a compacted version (the history is never compacted).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::routing::{Target, query_param};
use crate::server::Shared;
use crate::store::Change;

/// One open watch.
struct WatchState {
    shared: Arc<Shared>,
    /// Bumped whenever the store changes.
    changed: watch::Receiver<u64>,
    target: Target,
    /// Index into the history of the next change to look at.
    cursor: usize,
    /// Only changes above this resourceVersion.
    since: u64,
    /// Events ready to send.
    pending: VecDeque<Value>,
    deadline: tokio::time::Instant,
}

/// Whether a change is of the watched collection.
fn matches(target: &Target, change: &Change) -> bool {
    change.key.gv == target.gv
        && change.key.resource == target.resource
        && target
            .namespace
            .as_ref()
            .is_none_or(|ns| *ns == change.key.namespace)
}

impl WatchState {
    /// The next event line, waiting for one; `None` once the watch ends.
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                let mut line = event.to_string();
                line.push('\n');
                return Some((Ok(Bytes::from(line)), self));
            }
            {
                let store = self.shared.store();
                while let Some(change) = store.history.get(self.cursor) {
                    self.cursor += 1;
                    if change.rv > self.since && matches(&self.target, change) {
                        self.pending
                            .push_back(json!({"type": change.type_, "object": change.object}));
                    }
                }
            }
            if !self.pending.is_empty() {
                continue;
            }
            tokio::select! {
                changed = self.changed.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(self.deadline) => return None,
            }
        }
    }
}

/// The streamed answer to a watch request.
pub(crate) fn watch_response(shared: &Arc<Shared>, target: Target, query: &str) -> Response {
    let timeout = query_param(query, "timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let requested = query_param(query, "resourceVersion").and_then(|s| s.parse::<u64>().ok());
    let store = shared.store();
    let mut pending = VecDeque::new();
    let since = match requested {
        Some(rv) if rv > 0 => rv,
        _ => {
            // No version: the current objects first, as ADDED.
            let objects =
                store.objects_of(&target.gv, &target.resource, target.namespace.as_deref());
            for (_, object) in objects {
                pending.push_back(json!({"type": "ADDED", "object": object}));
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
    let stream = futures::stream::unfold(state, WatchState::next);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
