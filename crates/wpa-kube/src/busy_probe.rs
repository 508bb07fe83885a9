//! `spec.busyProbe`: how the controller asks a worker pod whether it is
//! busy, right before an idle-first scale down.
//!
//! The contract a worker implements: answer `GET http://<pod IP>:<port><path>`
//! with status 200 and the body `idle` while it holds no job, anything
//! else while it does (`busy` by convention). No answer within the timeout,
//! another status or another body all count as busy, so a worker that
//! does not implement the probe, or is too loaded to answer, is never
//! removed because of it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// The default `path`.
pub const DEFAULT_PATH: &str = "/busy";

/// The default `timeoutSeconds`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest `timeoutSeconds`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// `spec.busyProbe` as written (every field optional, so that a malformed
/// object reaches validation and gets a precise error).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusyProbeSpec {
    /// The container port: a number, or the name of a port of the pod's
    /// containers (as a Kubernetes probe's `port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Value>,
    /// The HTTP path (default `/busy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Seconds a pod has to answer (default 1, at most 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
}

/// Which port of the pod to ask.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProbePort {
    /// A port number.
    Number(u16),
    /// The name of a container port (`spec.containers[].ports[].name`).
    Name(String),
}

/// A validated `spec.busyProbe`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BusyProbe {
    /// The port.
    pub port: ProbePort,
    /// The path, starting with `/`.
    pub path: String,
    /// How long a pod has to answer.
    pub timeout: Duration,
}

fn invalid(field: &'static str, message: String) -> Error {
    Error::InvalidBusyProbe { field, message }
}

/// Whether `name` is a valid port name (an IANA service name: 1 to 15
/// lowercase letters, digits and dashes, with a letter, not starting or
/// ending with a dash, no two dashes in a row), as Kubernetes requires.
fn is_port_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

impl BusyProbeSpec {
    /// Checks every field.
    pub fn validate(&self) -> Result<BusyProbe, Error> {
        let port = match &self.port {
            None => {
                return Err(invalid(
                    "port",
                    "is required: the container port (a number, or a port name) where the worker answers".to_owned(),
                ));
            }
            Some(Value::Number(number)) => match number.as_u64().map(u16::try_from) {
                Some(Ok(port)) if port > 0 => ProbePort::Number(port),
                _ => {
                    return Err(invalid(
                        "port",
                        format!("{number} is not a port number (1 to 65535)"),
                    ));
                }
            },
            Some(Value::String(name)) if is_port_name(name) => ProbePort::Name(name.clone()),
            Some(Value::String(name)) => match name.parse::<u16>() {
                Ok(port) if port > 0 => ProbePort::Number(port),
                _ => {
                    return Err(invalid(
                        "port",
                        format!(
                            "{name:?} is neither a port number nor a port name (1 to 15 lowercase letters, digits and dashes)"
                        ),
                    ));
                }
            },
            Some(other) => {
                return Err(invalid(
                    "port",
                    format!("{other} is neither a port number nor a port name"),
                ));
            }
        };
        let path = self.path.as_deref().unwrap_or(DEFAULT_PATH);
        if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_whitespace() || b < 0x20) {
            return Err(invalid(
                "path",
                format!("{path:?} must start with / and hold no spaces"),
            ));
        }
        let timeout = match self.timeout_seconds {
            None => DEFAULT_TIMEOUT,
            Some(seconds) if seconds > 0.0 && seconds <= MAX_TIMEOUT.as_secs_f64() => {
                Duration::from_secs_f64(seconds)
            }
            Some(seconds) => {
                return Err(invalid(
                    "timeoutSeconds",
                    format!("{seconds} is not within (0, 60]"),
                ));
            }
        };
        Ok(BusyProbe {
            port,
            path: path.to_owned(),
            timeout,
        })
    }
}

/// The OpenAPI schema of `spec.busyProbe`.
pub(crate) fn schema() -> Value {
    serde_json::json!({
        "type": "object",
        "required": ["port"],
        "description": "Optional: idle-first scale down. Right before a scale down the controller asks each pod of the target GET http://<pod IP>:<port><path>; a pod answering 200 with the body \"idle\" may be removed, any other answer (or none within timeoutSeconds) counts as busy. A scale down then removes only idle pods (maxDisruption no longer applies), which the controller marks with the lowest controller.kubernetes.io/pod-deletion-cost so that the ReplicaSet removes them first.",
        "properties": {
            "port": {
                "x-kubernetes-int-or-string": true,
                "description": "The container port: a number, or the name of a container port."
            },
            "path": {
                "type": "string",
                "pattern": "^/[^\\s]*$",
                "description": "The HTTP path. Default /busy."
            },
            "timeoutSeconds": {
                "type": "number",
                "format": "double",
                "exclusiveMinimum": true,
                "minimum": 0,
                "maximum": 60,
                "description": "Seconds a pod has to answer; no answer counts as busy. Default 1."
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe(value: Value) -> Result<BusyProbe, Error> {
        serde_json::from_value::<BusyProbeSpec>(value)
            .map_err(|e| invalid("port", e.to_string()))?
            .validate()
    }

    #[test]
    fn numbers_names_and_defaults() {
        let p = probe(json!({"port": 8080})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.port, ProbePort::Number(8080));
        assert_eq!(p.path, "/busy");
        assert_eq!(p.timeout, Duration::from_secs(1));
        let p = probe(json!({"port": "busy", "path": "/healthz/busy", "timeoutSeconds": 0.25}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.port, ProbePort::Name("busy".to_owned()));
        assert_eq!(p.timeout, Duration::from_millis(250));
        assert_eq!(
            probe(json!({"port": "9000"})).map(|p| p.port).ok(),
            Some(ProbePort::Number(9000))
        );
    }

    #[test]
    fn bad_fields_say_which_and_why() {
        let message = |v: Value| probe(v).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message(json!({})).contains("spec.busyProbe.port is required"));
        assert!(message(json!({"port": 0})).contains("not a port number"));
        assert!(message(json!({"port": 70000})).contains("not a port number"));
        assert!(message(json!({"port": "Busy_Port"})).contains("neither a port number"));
        assert!(message(json!({"port": 1, "path": "busy"})).contains("must start with /"));
        assert!(message(json!({"port": 1, "timeoutSeconds": 0})).contains("(0, 60]"));
        assert!(message(json!({"port": 1, "timeoutSeconds": 61})).contains("(0, 60]"));
    }
}
