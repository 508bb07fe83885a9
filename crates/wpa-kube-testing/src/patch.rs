//! PATCH, as the API server applies it, by `Content-Type`:
//!
//! - `application/merge-patch+json`: JSON merge patch (RFC 7386);
//! - `application/strategic-merge-patch+json`: treated as a merge patch,
//!   which it is for maps and scalars (the double knows no patch
//!   strategies, so a list is replaced, never merged by key);
//! - `application/json-patch+json`: JSON patch (RFC 6902), all or nothing;
//! - `application/apply-patch+yaml`: server-side apply, with field
//!   ownership: a field another manager set to a different value conflicts
//!   (409) unless `force=true`; an absent object is created.
//!
//! Merge and JSON patches take ownership of what they set and release what
//! they remove, so a later apply by another manager conflicts on it.

use serde_json::Value;

use crate::status::{Failure, Handled};
use crate::store::{Key, Store, rv_of};
use crate::workloads;

/// A PATCH request's parameters besides the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PatchOptions<'a> {
    /// The `Content-Type`, which says what kind of patch the body is.
    pub(crate) content_type: &'a str,
    /// `fieldManager` (`unknown` when absent).
    pub(crate) manager: &'a str,
    /// `force=true`: an apply takes fields owned by other managers.
    pub(crate) force: bool,
}

/// JSON patch (RFC 6902) given as JSON: 422 when it does not parse or an
/// operation fails (then nothing is changed).
pub(crate) fn json_patch(target: &mut Value, ops: &Value) -> Result<(), Failure> {
    let ops: json_patch::Patch = serde_json::from_value(ops.clone())
        .map_err(|error| Failure(422, format!("invalid JSON patch: {error}")))?;
    json_patch::patch(target, &ops).map_err(|error| Failure(422, error.to_string()))
}

/// The leaf fields `value` sets, as JSON pointers under `prefix`
/// (top-level `metadata`, `apiVersion` and `kind` excluded).
fn leaves(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                if prefix.is_empty() && matches!(key.as_str(), "metadata" | "apiVersion" | "kind") {
                    continue;
                }
                let key = key.replace('~', "~0").replace('/', "~1");
                leaves(value, &format!("{prefix}/{key}"), out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

/// The fields a merge or JSON patch sets (with their values) or removes
/// (with `null`).
fn touched(patch: &Value, is_json_patch: bool) -> Vec<(String, Value)> {
    let mut fields = Vec::new();
    if !is_json_patch {
        leaves(patch, "", &mut fields);
        return fields;
    }
    let ops: Vec<json_patch::PatchOperation> =
        serde_json::from_value(patch.clone()).unwrap_or_default();
    for op in ops {
        match op {
            json_patch::PatchOperation::Add(json_patch::AddOperation { path, value })
            | json_patch::PatchOperation::Replace(json_patch::ReplaceOperation { path, value }) => {
                leaves(&value, &path.to_string(), &mut fields);
            }
            json_patch::PatchOperation::Remove(json_patch::RemoveOperation { path }) => {
                fields.push((path.to_string(), Value::Null));
            }
            _ => {}
        }
    }
    fields
}

impl Store {
    /// A PATCH of the object at `key` (or of its `subresource`).
    pub(crate) fn patch(
        &mut self,
        key: &Key,
        subresource: Option<&str>,
        options: PatchOptions<'_>,
        body: Value,
    ) -> Handled {
        let scale = subresource == Some("scale");
        let content_type = options.content_type;
        if content_type.starts_with("application/apply-patch") {
            if scale {
                return Err(Failure(
                    415,
                    "apply on scale is not supported by the double".to_owned(),
                ));
            }
            return self.apply(key, subresource, &body, options.manager, options.force);
        }
        let precondition = rv_of(&body).map(str::to_owned);
        let patch = if scale {
            workloads::scale_write(&body, false)
        } else {
            body
        };
        let json = content_type.starts_with("application/json-patch");
        let result = if json {
            self.write(key, subresource, None, |object| json_patch(object, &patch))
        } else if content_type.starts_with("application/merge-patch")
            || content_type.starts_with("application/strategic-merge-patch")
        {
            self.write(key, subresource, precondition, |object| {
                json_patch::merge(object, &patch);
                Ok(())
            })
        } else {
            Err(Failure(
                415,
                format!("unsupported patch type {content_type:?}"),
            ))
        }?;
        self.take_ownership(key, touched(&patch, json), options.manager);
        Ok(if scale {
            workloads::scale_of(&result)
        } else {
            result
        })
    }

    /// Server-side apply: conflicts on fields owned by another manager with
    /// a different value, unless forced; creates the object when absent.
    fn apply(
        &mut self,
        key: &Key,
        subresource: Option<&str>,
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
            self.write(key, subresource, None, |object| {
                json_patch::merge(object, patch);
                Ok(())
            })?
        } else {
            let mut object = patch.clone();
            json_patch::merge(
                &mut object,
                &serde_json::json!({"metadata": {"name": key.name}}),
            );
            self.create(&key.gv, &key.resource, &key.namespace, object)?
        };
        let owners = self.owners.entry(key.clone()).or_default();
        for (pointer, _) in fields {
            owners.insert(pointer, manager.to_owned());
        }
        Ok(result)
    }

    /// A merge or JSON patch takes ownership of what it sets (an "Update"
    /// manager) and releases what it removes (`null`).
    fn take_ownership(&mut self, key: &Key, fields: Vec<(String, Value)>, manager: &str) {
        let owners = self.owners.entry(key.clone()).or_default();
        for (pointer, value) in fields {
            if value.is_null() {
                owners.retain(|owned, _| !owned.starts_with(&pointer));
            } else {
                owners.insert(pointer, manager.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_removes_nulls() {
        let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}});
        json_patch::merge(&mut v, &json!({"a": null, "b": {"c": 5}}));
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

    #[test]
    fn a_failed_json_patch_changes_nothing() {
        let mut v = json!({"spec": {"replicas": 1}});
        let ops = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "test", "path": "/spec/replicas", "value": 1}
        ]);
        let Err(Failure(code, _)) = json_patch(&mut v, &ops) else {
            panic!("the test op should fail")
        };
        assert_eq!(code, 422);
        assert_eq!(v, json!({"spec": {"replicas": 1}}));
        assert!(json_patch(&mut v, &json!({"op": "add"})).is_err());
    }

    #[test]
    fn owned_fields_are_escaped_pointers() {
        let patch = json!({"metadata": {"name": "x"}, "spec": {"a/b": 1, "c": {"d": null}}});
        let fields = touched(&patch, false);
        assert_eq!(
            fields,
            [
                ("/spec/a~1b".to_owned(), json!(1)),
                ("/spec/c/d".to_owned(), Value::Null)
            ]
        );
        let ops = json!([{"op": "add", "path": "/spec/x", "value": {"y": 2}}, {"op": "remove", "path": "/spec/a~1b"}]);
        assert_eq!(
            touched(&ops, true),
            [
                ("/spec/x/y".to_owned(), json!(2)),
                ("/spec/a~1b".to_owned(), Value::Null)
            ]
        );
    }
}
