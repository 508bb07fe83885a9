//! Errors as the API server answers them: an HTTP status and a
//! `kind: Status` body with the `reason` Kubernetes gives that code, which
//! is what kube's `Error::Api` is parsed from.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A request the double refuses: the HTTP status and the message.
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) u16, pub(crate) String);

impl Failure {
    /// 404 for a missing object.
    pub(crate) fn not_found(resource: &str, name: &str) -> Self {
        Failure(404, format!("{resource} \"{name}\" not found"))
    }

    /// The answer: the code and its `Status` body.
    pub(crate) fn into_response(self) -> Response {
        let Failure(code, message) = self;
        json_response(code, &status_body(code, reason_of(code), &message))
    }
}

/// What a verb answers: the object (or list, or `Scale`), or a refusal.
pub(crate) type Handled = Result<Value, Failure>;

/// A `Status` object of a failed request.
pub(crate) fn status_body(code: u16, reason: &str, message: &str) -> Value {
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

/// The `reason` the API server gives an HTTP status.
pub(crate) fn reason_of(code: u16) -> &'static str {
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

/// A JSON body with this status code.
pub(crate) fn json_response(code: u16, value: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}
