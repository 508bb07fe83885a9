//! The `WorkerPodAutoScaler` custom resource (`k8s.practo.dev/v1`) and its
//! CustomResourceDefinition.
//!
//! Field names and status keys are the reference's, so existing objects and
//! dashboards work unchanged. The spec is deserialized leniently (every
//! field optional, integers as i64) so that a malformed object reaches
//! [`WorkerPodAutoScalerSpec::validate`] and gets a precise error instead of
//! breaking a watch; the CRD's schema refuses most such objects at the API
//! server in the first place.

use std::time::{Duration, SystemTime};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceValidation, JSONSchemaProps,
};
use kube::{CustomResource, CustomResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wpa_core::{MaxDisruption, Observation, RawWpaSpec, WpaSpec, WpaStatus};

use crate::busy_probe::{BusyProbe, BusyProbeSpec};
use crate::error::{Error, TargetKind};

/// The spec of a `WorkerPodAutoScaler`, with the reference's field names.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "k8s.practo.dev",
    version = "v1",
    kind = "WorkerPodAutoScaler",
    plural = "workerpodautoscalers",
    singular = "workerpodautoscaler",
    shortname = "wpa",
    shortname = "wpas",
    namespaced,
    status = "WorkerPodAutoScalerStatus",
    schema = "disabled",
    printcolumn = r#"{"name":"Deployment","type":"string","jsonPath":".spec.deploymentName"}"#,
    printcolumn = r#"{"name":"Min","type":"integer","jsonPath":".spec.minReplicas"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","jsonPath":".spec.maxReplicas"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".status.DesiredReplicas"}"#,
    printcolumn = r#"{"name":"Messages","type":"integer","jsonPath":".status.CurrentMessages"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WorkerPodAutoScalerSpec {
    /// `minReplicas` (required, int32 >= 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i64>,
    /// `maxReplicas` (required, int32 >= 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i64>,
    /// `queueURI` (required): the SQS queue URL, `beanstalk://host:port/tube`,
    /// or a Redis, RabbitMQ or NATS JetStream queue (`redis://`, `amqp://`,
    /// `nats://`).
    #[serde(rename = "queueURI", default, skip_serializing_if = "Option::is_none")]
    pub queue_uri: Option<String>,
    /// `targetMessagesPerWorker` (required, int32 >= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_messages_per_worker: Option<i64>,
    /// `deploymentName`: the Deployment to scale (exactly one of this and
    /// `replicaSetName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
    /// `replicaSetName`: the ReplicaSet to scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_set_name: Option<String>,
    /// `maxDisruption`: pods (`"2"`) or percent (`"25%"`) one scale down may
    /// remove; absent means `--wpa-default-max-disruption`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_disruption: Option<String>,
    /// `secondsToProcessOneJob`: enables the arrival-rate floor when > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_to_process_one_job: Option<f64>,
    /// `targetWaitSeconds` (ours, optional): the wait 99% of messages should
    /// stay under. Set, it selects the wait-target policy
    /// ([`wpa_core::wait_target`]) and needs `secondsToProcessOneJob`;
    /// absent, the reference's rules decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_wait_seconds: Option<f64>,
    /// `workerStartupSeconds` (ours, optional): seconds from a scale up until
    /// a new pod takes jobs (default 30). Used only with `targetWaitSeconds`,
    /// where it is also how long a scale down waits after the last scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_startup_seconds: Option<f64>,
    /// `busyProbe` (ours, optional): idle-first scale down, asking each pod
    /// whether it is busy right before a scale down ([`crate::BusyProbe`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_probe: Option<BusyProbeSpec>,
}

/// The status of a `WorkerPodAutoScaler`: the reference's capitalised keys,
/// plus `Conditions` (ours) for invalid specs and stale metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerPodAutoScalerStatus {
    /// Visible plus in-flight messages at the last reconcile.
    #[serde(
        rename = "CurrentMessages",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_messages: Option<i64>,
    /// When `CurrentMessages` was read (RFC 3339; wait-target WPAs only):
    /// the wait-target policy reads the backlog's growth since then, and
    /// a restarted controller finds it here.
    #[serde(
        rename = "CurrentMessagesTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_messages_time: Option<String>,
    /// The target's `spec.replicas` at the last reconcile.
    #[serde(
        rename = "CurrentReplicas",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_replicas: Option<i64>,
    /// The target's `status.availableReplicas` at the last reconcile.
    #[serde(
        rename = "AvailableReplicas",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub available_replicas: Option<i64>,
    /// The computed desired count (even when a scale down was held).
    #[serde(
        rename = "DesiredReplicas",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub desired_replicas: Option<i64>,
    /// When the autoscaler last changed the replicas (RFC 3339).
    #[serde(
        rename = "LastScaleTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_scale_time: Option<String>,
    /// Conditions: `Valid` (is the spec usable) and `QueueMetricsFresh`.
    #[serde(rename = "Conditions", default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<WpaCondition>,
}

/// One status condition, in the Kubernetes convention.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WpaCondition {
    /// The condition's name (`Valid`, `QueueMetricsFresh`).
    #[serde(rename = "type")]
    pub type_: String,
    /// `"True"`, `"False"` or `"Unknown"`.
    pub status: String,
    /// A PascalCase reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What is wrong and how to fix it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// The object a `WorkerPodAutoScaler` scales.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetRef {
    /// Deployment or ReplicaSet.
    pub kind: TargetKind,
    /// Its name, in the WPA's namespace.
    pub name: String,
}

/// A spec that passed every check: what the controller runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedSpec {
    /// The decision parameters.
    pub spec: WpaSpec,
    /// The object to scale.
    pub target: TargetRef,
    /// `queueURI`, unparsed (the queue adapters own its syntax).
    pub queue_uri: String,
    /// `busyProbe`: scale downs are idle-first.
    pub busy_probe: Option<BusyProbe>,
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(String::as_str).filter(|name| !name.is_empty())
}

impl WorkerPodAutoScalerSpec {
    /// The fields the decision core checks, as it wants them.
    #[must_use]
    pub fn to_raw(&self) -> RawWpaSpec {
        RawWpaSpec {
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            target_messages_per_worker: self.target_messages_per_worker,
            seconds_to_process_one_job: self.seconds_to_process_one_job,
            max_disruption: self.max_disruption.clone(),
            target_wait_seconds: self.target_wait_seconds,
            worker_startup_seconds: self.worker_startup_seconds,
        }
    }

    /// The scale target: exactly one of `deploymentName` / `replicaSetName`.
    pub fn target(&self) -> Result<TargetRef, Error> {
        match (
            non_empty(self.deployment_name.as_ref()),
            non_empty(self.replica_set_name.as_ref()),
        ) {
            (Some(deployment), Some(replica_set)) => Err(Error::BothTargets {
                deployment: deployment.to_owned(),
                replica_set: replica_set.to_owned(),
            }),
            (None, None) => Err(Error::NoTarget),
            (Some(name), None) => Ok(TargetRef {
                kind: TargetKind::Deployment,
                name: name.to_owned(),
            }),
            (None, Some(name)) => Ok(TargetRef {
                kind: TargetKind::ReplicaSet,
                name: name.to_owned(),
            }),
        }
    }

    /// Checks the whole spec: target names, `queueURI`, then every field the
    /// core checks (`maxDisruption` absent takes `default_max_disruption`).
    pub fn validate(&self, default_max_disruption: MaxDisruption) -> Result<ValidatedSpec, Error> {
        let target = self.target()?;
        let queue_uri = non_empty(self.queue_uri.as_ref())
            .ok_or(Error::MissingQueueUri)?
            .to_owned();
        let spec = self.to_raw().validate(default_max_disruption)?;
        let busy_probe = self
            .busy_probe
            .as_ref()
            .map(BusyProbeSpec::validate)
            .transpose()?;
        Ok(ValidatedSpec {
            spec,
            target,
            queue_uri,
            busy_probe,
        })
    }
}

/// Formats a time as the API server does for `metav1.Time`: RFC 3339, UTC,
/// whole seconds.
#[must_use]
pub fn format_time(time: SystemTime) -> String {
    let seconds = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    match jiff::Timestamp::from_second(seconds) {
        Ok(timestamp) => timestamp.to_string(),
        Err(_) => jiff::Timestamp::UNIX_EPOCH.to_string(),
    }
}

/// Formats a time as RFC 3339, UTC, with milliseconds: for
/// `CurrentMessagesTime`, whose age divides the backlog's growth (whole
/// seconds would stretch a 20 s step by up to a second).
#[must_use]
pub fn format_time_millis(time: SystemTime) -> String {
    let millis = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |m| -m),
    };
    match jiff::Timestamp::from_millisecond(millis) {
        Ok(timestamp) => timestamp.to_string(),
        Err(_) => jiff::Timestamp::UNIX_EPOCH.to_string(),
    }
}

/// Parses an RFC 3339 time; `None` if it does not parse.
#[must_use]
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let timestamp: jiff::Timestamp = text.parse().ok()?;
    let seconds = timestamp.as_second();
    let nanos = u32::try_from(timestamp.subsec_nanosecond()).unwrap_or(0);
    if seconds >= 0 {
        let seconds = u64::try_from(seconds).ok()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
    } else {
        let seconds = seconds.unsigned_abs();
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(seconds))
    }
}

impl WorkerPodAutoScalerStatus {
    /// `LastScaleTime` as a time; an unparsable value counts as absent.
    #[must_use]
    pub fn last_scale_time(&self) -> Option<SystemTime> {
        self.last_scale_time.as_deref().and_then(parse_time)
    }

    /// The last step's observation: `CurrentMessages` and
    /// `CurrentMessagesTime`, if both are there and valid.
    #[must_use]
    pub fn last_observation(&self) -> Option<Observation> {
        let messages = u32::try_from(self.current_messages?).ok()?;
        let at = parse_time(self.current_messages_time.as_deref()?)?;
        Some(Observation { messages, at })
    }

    /// This status with `CurrentMessagesTime` set to `read_at` (`None`:
    /// removed).
    #[must_use]
    pub fn with_messages_read_at(mut self, read_at: Option<SystemTime>) -> Self {
        self.current_messages_time = read_at.map(format_time_millis);
        self
    }

    /// This status with the reference fields set from a reconcile step.
    /// Conditions are kept.
    #[must_use]
    pub fn with_core(&self, status: &WpaStatus) -> Self {
        WorkerPodAutoScalerStatus {
            current_messages: Some(i64::from(status.current_messages)),
            current_replicas: Some(i64::from(status.current_replicas)),
            available_replicas: Some(i64::from(status.available_replicas)),
            desired_replicas: Some(i64::from(status.desired_replicas)),
            current_messages_time: self.current_messages_time.clone(),
            last_scale_time: match status.last_scale_time {
                // Keep the stored text when the instant is unchanged, so an
                // equal status compares equal whatever its formatting.
                Some(time) if self.last_scale_time() == Some(time) => self.last_scale_time.clone(),
                Some(time) => Some(format_time(time)),
                None => None,
            },
            conditions: self.conditions.clone(),
        }
    }

    /// This status with condition `type_` set; its transition time moves
    /// only when its status changes.
    #[must_use]
    pub fn with_condition(
        &self,
        type_: &str,
        status: bool,
        reason: &str,
        message: &str,
        now: SystemTime,
    ) -> Self {
        let status_text = if status { "True" } else { "False" };
        let mut next = self.clone();
        let previous = next.conditions.iter().position(|c| c.type_ == type_);
        let last_transition_time = match previous.map(|i| &next.conditions[i]) {
            Some(old) if old.status == status_text => old.last_transition_time.clone(),
            _ => Some(format_time(now)),
        };
        let condition = WpaCondition {
            type_: type_.to_owned(),
            status: status_text.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            last_transition_time,
        };
        match previous {
            Some(index) => next.conditions[index] = condition,
            None => next.conditions.push(condition),
        }
        next
    }
}

/// The OpenAPI v3 schema of the resource: the reference's fields and its
/// `oneOf` on the target names, plus what the reference lacks: non-negative
/// bounds, `targetMessagesPerWorker >= 1`, a `maxDisruption` pattern; and
/// the optional wait-target fields (`targetWaitSeconds`,
/// `workerStartupSeconds`), with the bounds the core checks.
#[must_use]
pub fn openapi_schema() -> serde_json::Value {
    let int32 = |description: &str, minimum: i64| {
        json!({
            "type": "integer",
            "format": "int32",
            "minimum": minimum,
            "maximum": 2_147_483_647_i64,
            "description": description,
        })
    };
    let count = |description: &str| json!({"type": "integer", "format": "int32", "minimum": 0, "description": description});
    json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["minReplicas", "maxReplicas", "queueURI", "targetMessagesPerWorker"],
                "oneOf": [
                    {"required": ["deploymentName"]},
                    {"required": ["replicaSetName"]}
                ],
                "properties": {
                    "deploymentName": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Name of the Deployment to scale, in the same namespace as the WorkerPodAutoScaler. Set exactly one of deploymentName and replicaSetName."
                    },
                    "replicaSetName": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Name of the ReplicaSet to scale, in the same namespace as the WorkerPodAutoScaler. Set exactly one of deploymentName and replicaSetName."
                    },
                    "maxDisruption": {
                        "type": "string",
                        "pattern": "^[0-9]+%?$",
                        "description": "How many pods one scale down may remove: a number of pods (\"2\") or a percentage of the current replicas (\"25%\"). Default: the controller's --wpa-default-max-disruption (\"100%\")."
                    },
                    "maxReplicas": int32("Maximum number of workers.", 0),
                    "minReplicas": int32("Minimum number of workers.", 0),
                    "queueURI": {
                        "type": "string",
                        "minLength": 1,
                        "pattern": "^(https?|beanstalk|rediss?|amqps?|nats|tls)://[^\\s]+$",
                        "description": "Full URL of the queue: https://sqs.<region>.amazonaws.com/<account>/<name>, beanstalk://host:port/tube, redis[s]://[user:password@]host[:port]/[db/]list|stream|celery|sidekiq|rq|bullmq/..., amqp[s]://[user:password@]host[:port]/<vhost>/<queue>, or nats://[user:password@]host[:port]/<stream>/<consumer> (tls:// for NATS over TLS). The adapter of the scheme checks the rest and reports what is wrong on the WPA."
                    },
                    "targetMessagesPerWorker": int32("Messages one worker should have queued; the desired workers are the queued messages divided by this.", 1),
                    "secondsToProcessOneJob": {
                        "type": "number",
                        "format": "float",
                        "minimum": 0,
                        "description": "Seconds one job takes; with the queue's arrival rate it sets a floor on the workers. 0 or absent disables it."
                    },
                    "targetWaitSeconds": {
                        "type": "number",
                        "format": "double",
                        "exclusiveMinimum": true,
                        "minimum": 0,
                        "maximum": 86_400,
                        "description": "Optional: the wait, in seconds, that 99% of messages should stay under before a worker takes them. Set, it selects the wait-target policy: the fewest workers that meet this target for the measured arrival rate, the messages in flight and the backlog, scaling up at once and down only when the pool is larger than 25% more load would need (and never removing more pods than are known not to hold a message). Requires secondsToProcessOneJob > 0. Absent, the reference's rules (targetMessagesPerWorker) decide."
                    },
                    "workerStartupSeconds": {
                        "type": "number",
                        "format": "double",
                        "minimum": 0,
                        "maximum": 86_400,
                        "description": "Optional, used only with targetWaitSeconds: seconds from a scale up until a new pod takes jobs (scheduling, image pull, start). The policy adds pods early enough for it, and a scale down waits this long after the last scale instead of the controller's --scale-down-delay-after-last-scale-activity. Default 30."
                    },
                    "busyProbe": crate::busy_probe::schema()
                }
            },
            "status": {
                "type": "object",
                "properties": {
                    "CurrentMessages": count("Visible plus in-flight messages at the last reconcile."),
                    "CurrentMessagesTime": {
                        "type": "string",
                        "format": "date-time",
                        "description": "When CurrentMessages was read (wait-target WPAs only): the backlog's growth since then is an input of the policy."
                    },
                    "CurrentReplicas": count("The target's spec.replicas at the last reconcile."),
                    "AvailableReplicas": count("The target's available replicas at the last reconcile."),
                    "DesiredReplicas": count("The desired workers computed at the last reconcile."),
                    "LastScaleTime": {
                        "type": "string",
                        "format": "date-time",
                        "description": "When the autoscaler last changed the target's replicas."
                    },
                    "Conditions": {
                        "type": "array",
                        "description": "Valid: whether the spec can be acted on; QueueMetricsFresh: whether the queue was polled recently.",
                        "items": {
                            "type": "object",
                            "required": ["type", "status"],
                            "properties": {
                                "type": {"type": "string"},
                                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                                "reason": {"type": "string"},
                                "message": {"type": "string"},
                                "lastTransitionTime": {"type": "string", "format": "date-time"}
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The CustomResourceDefinition `workerpodautoscalers.k8s.practo.dev`.
pub fn crd() -> Result<CustomResourceDefinition, Error> {
    let mut crd = WorkerPodAutoScaler::crd();
    let schema: JSONSchemaProps = serde_json::from_value(openapi_schema())
        .map_err(|error| Error::Serialize(error.to_string()))?;
    for version in &mut crd.spec.versions {
        version.schema = Some(CustomResourceValidation {
            open_api_v3_schema: Some(schema.clone()),
        });
    }
    Ok(crd)
}

/// The CRD as YAML, as `workerpodautoscaler crd` prints it. The schema is
/// written from [`openapi_schema`] as is, so integer bounds stay integers.
pub fn crd_yaml() -> Result<String, Error> {
    let mut value =
        serde_json::to_value(crd()?).map_err(|error| Error::Serialize(error.to_string()))?;
    if let Some(versions) = value
        .pointer_mut("/spec/versions")
        .and_then(serde_json::Value::as_array_mut)
    {
        for version in versions {
            version["schema"] = json!({ "openAPIV3Schema": openapi_schema() });
        }
    }
    // Keys in one order whatever serde_json's features (another crate in
    // the build may turn on `preserve_order`), so the output is stable.
    value.sort_all_objects();
    serde_norway::to_string(&value).map_err(|error| Error::Serialize(error.to_string()))
}
