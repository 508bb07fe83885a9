#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The CRD: deploy/ agrees with the generated one; the reference's example
//! object deserializes; spec validation; status conversion.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use wpa_core::{MaxDisruption, WpaStatus};
use wpa_kube::{
    BusyProbeSpec, Error, TargetKind, WorkerPodAutoScaler, WorkerPodAutoScalerSpec,
    WorkerPodAutoScalerStatus, crd_yaml, format_time, parse_time, status_patch,
};

fn deploy_crd_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crd.yaml")
}

fn yaml_to_json(text: &str) -> Value {
    serde_norway::from_str(text).expect("YAML parses")
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default()
}

/// Regenerate with `WPA_BLESS=1 cargo test -p wpa-kube --test crd`.
#[test]
fn deploy_crd_matches_generated() {
    let generated_text = crd_yaml().unwrap();
    if std::env::var_os("WPA_BLESS").is_some() {
        std::fs::write(deploy_crd_path(), &generated_text).unwrap();
    }
    let deployed_text = std::fs::read_to_string(deploy_crd_path())
        .expect("deploy/crd.yaml exists (WPA_BLESS=1 writes it)");
    let generated = yaml_to_json(&generated_text);
    let deployed = yaml_to_json(&deployed_text);

    // Names and versions, with messages that say what differs.
    for pointer in [
        "/apiVersion",
        "/kind",
        "/metadata/name",
        "/spec/group",
        "/spec/scope",
        "/spec/names",
    ] {
        assert_eq!(
            deployed.pointer(pointer),
            generated.pointer(pointer),
            "deploy/crd.yaml differs from `workerpodautoscaler crd` at {pointer}"
        );
    }
    let versions = |crd: &Value| -> Vec<(String, bool, bool)> {
        crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap().to_owned(),
                    v["served"].as_bool().unwrap(),
                    v["storage"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(versions(&deployed), versions(&generated), "versions differ");
    for (index, version) in generated["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let other = &deployed["spec"]["versions"][index];
        assert_eq!(
            other["subresources"], version["subresources"],
            "subresources differ"
        );
        let schema = "/schema/openAPIV3Schema/properties";
        for part in ["spec", "status"] {
            let fields = |v: &Value| keys(&v.pointer(schema).unwrap()[part]["properties"]);
            assert_eq!(fields(other), fields(version), "{part} fields differ");
        }
    }
    // And everything else (descriptions, validation).
    assert_eq!(
        deployed, generated,
        "deploy/crd.yaml is stale: run WPA_BLESS=1 cargo test -p wpa-kube --test crd"
    );
}

#[test]
fn crd_names_and_validation() {
    let crd = yaml_to_json(&crd_yaml().unwrap());
    assert_eq!(
        crd["metadata"]["name"],
        "workerpodautoscalers.k8s.practo.dev"
    );
    assert_eq!(crd["spec"]["group"], "k8s.practo.dev");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "WorkerPodAutoScaler");
    assert_eq!(crd["spec"]["names"]["plural"], "workerpodautoscalers");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["wpa", "wpas"]));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1");
    assert_eq!(version["subresources"]["status"], json!({}));
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(
        spec["oneOf"],
        json!([{"required": ["deploymentName"]}, {"required": ["replicaSetName"]}])
    );
    assert_eq!(spec["properties"]["minReplicas"]["minimum"], 0);
    assert_eq!(spec["properties"]["maxReplicas"]["minimum"], 0);
    assert_eq!(spec["properties"]["targetMessagesPerWorker"]["minimum"], 1);
    assert_eq!(spec["properties"]["maxDisruption"]["pattern"], "^[0-9]+%?$");
    assert_eq!(spec["properties"]["minReplicas"]["format"], "int32");
    assert_eq!(
        spec["properties"]["secondsToProcessOneJob"]["type"],
        "number"
    );
}

#[test]
fn schema_fields_are_the_rust_fields() {
    let crd = yaml_to_json(&crd_yaml().unwrap());
    let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    let full_spec = WorkerPodAutoScalerSpec {
        min_replicas: Some(0),
        max_replicas: Some(1),
        queue_uri: Some("q".into()),
        target_messages_per_worker: Some(1),
        deployment_name: Some("d".into()),
        replica_set_name: Some("r".into()),
        max_disruption: Some("1".into()),
        seconds_to_process_one_job: Some(1.0),
        target_wait_seconds: Some(30.0),
        worker_startup_seconds: Some(45.0),
        busy_probe: Some(BusyProbeSpec {
            port: Some(serde_json::json!("busy")),
            path: Some("/busy".into()),
            timeout_seconds: Some(1.0),
        }),
    };
    assert_eq!(
        keys(&serde_json::to_value(&full_spec).unwrap()),
        keys(&props["spec"]["properties"])
    );
    let probe = serde_json::to_value(full_spec.busy_probe.as_ref().unwrap()).unwrap();
    assert_eq!(
        keys(&probe),
        keys(&props["spec"]["properties"]["busyProbe"]["properties"])
    );
    let full_status = WorkerPodAutoScalerStatus {
        current_messages: Some(1),
        current_messages_time: Some("2026-01-01T00:00:00Z".into()),
        current_replicas: Some(1),
        available_replicas: Some(1),
        desired_replicas: Some(1),
        last_scale_time: Some("2026-01-01T00:00:00Z".into()),
        conditions: vec![Default::default()],
    };
    assert_eq!(
        keys(&serde_json::to_value(&full_status).unwrap()),
        keys(&props["status"]["properties"])
    );
}

/// The reference's example object.
const EXAMPLE: &str = r#"
apiVersion: k8s.practo.dev/v1
kind: WorkerPodAutoScaler
metadata:
  name: example-wpa
spec:
  minReplicas: 0
  maxReplicas: 10
  deploymentName: example-deployment
  queueURI: https://sqs.ap-south-1.amazonaws.com/{{ your_aws_account_number }}/{{ your_queue_name }}
  targetMessagesPerWorker: 2
  secondsToProcessOneJob: 0.03
  maxDisruption: "100%"
"#;

#[test]
fn reference_example_deserializes_and_validates() {
    let wpa: WorkerPodAutoScaler = serde_norway::from_str(EXAMPLE).unwrap();
    assert_eq!(wpa.metadata.name.as_deref(), Some("example-wpa"));
    assert_eq!(wpa.spec.min_replicas, Some(0));
    assert_eq!(wpa.spec.max_replicas, Some(10));
    assert_eq!(wpa.spec.target_messages_per_worker, Some(2));
    assert_eq!(wpa.spec.seconds_to_process_one_job, Some(0.03));
    assert_eq!(wpa.spec.max_disruption.as_deref(), Some("100%"));
    let valid = wpa.spec.validate(MaxDisruption::DEFAULT).unwrap();
    assert_eq!(valid.target.kind, TargetKind::Deployment);
    assert_eq!(valid.target.name, "example-deployment");
    assert!(
        valid
            .queue_uri
            .starts_with("https://sqs.ap-south-1.amazonaws.com/")
    );
    assert_eq!(valid.spec.max_replicas(), 10);
    assert_eq!(valid.spec.max_disruption(), MaxDisruption::Percent(100));
    // The shipped example in deploy/ is the same object.
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/example-wpa.yaml"),
    )
    .unwrap();
    let shipped: WorkerPodAutoScaler = serde_norway::from_str(&shipped).unwrap();
    assert_eq!(shipped.spec, wpa.spec);
}

#[test]
fn wait_target_fields_are_optional_bounded_and_described() {
    let crd = yaml_to_json(&crd_yaml().unwrap());
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let required: Vec<&str> = spec["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["targetWaitSeconds", "workerStartupSeconds"] {
        assert!(!required.contains(&field), "{field} must stay optional");
        let props = &spec["properties"][field];
        assert_eq!(props["type"], "number", "{field}");
        assert_eq!(props["maximum"], 86_400, "{field}");
        assert_eq!(props["minimum"], 0, "{field}");
    }
    // targetWaitSeconds > 0 (OpenAPI v3.0 / apiextensions: a boolean
    // exclusiveMinimum on minimum 0); workerStartupSeconds >= 0.
    assert_eq!(
        spec["properties"]["targetWaitSeconds"]["exclusiveMinimum"],
        true
    );
    assert_eq!(
        spec["properties"]["workerStartupSeconds"].get("exclusiveMinimum"),
        None
    );
    let wait = spec["properties"]["targetWaitSeconds"]["description"]
        .as_str()
        .unwrap();
    assert!(
        wait.contains("99%") && wait.contains("secondsToProcessOneJob"),
        "{wait}"
    );
    let startup = spec["properties"]["workerStartupSeconds"]["description"]
        .as_str()
        .unwrap();
    assert!(startup.contains("only with targetWaitSeconds"), "{startup}");
    assert!(startup.contains("Default 30"), "{startup}");
    assert!(
        startup.contains("--scale-down-delay-after-last-scale-activity"),
        "{startup}"
    );
    // The typed CRD (what `crd()` gives the API) keeps the bounds too.
    let typed = wpa_kube::crd().unwrap();
    let schema = typed.spec.versions[0]
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    let spec_props = schema.properties.as_ref().unwrap()["spec"]
        .properties
        .as_ref()
        .unwrap();
    let target = &spec_props["targetWaitSeconds"];
    assert_eq!(target.exclusive_minimum, Some(true));
    assert_eq!(target.minimum, Some(0.0));
    assert_eq!(target.maximum, Some(86_400.0));
    let startup = &spec_props["workerStartupSeconds"];
    assert_eq!(startup.exclusive_minimum, None);
    assert_eq!(startup.minimum, Some(0.0));
    assert_eq!(startup.maximum, Some(86_400.0));
}

#[test]
fn a_wpa_without_the_wait_target_serializes_and_decides_as_before() {
    let wpa: WorkerPodAutoScaler = serde_norway::from_str(EXAMPLE).unwrap();
    assert_eq!(wpa.spec.target_wait_seconds, None);
    assert_eq!(wpa.spec.worker_startup_seconds, None);
    // No new key, not even as null.
    let value = serde_json::to_value(&wpa.spec).unwrap();
    assert_eq!(
        keys(&value),
        [
            "deploymentName",
            "maxDisruption",
            "maxReplicas",
            "minReplicas",
            "queueURI",
            "secondsToProcessOneJob",
            "targetMessagesPerWorker"
        ]
        .map(str::to_owned)
        .into_iter()
        .collect()
    );
    let raw = wpa.spec.to_raw();
    assert_eq!(raw.target_wait_seconds, None);
    assert_eq!(raw.worker_startup_seconds, None);
    let valid = wpa.spec.validate(MaxDisruption::DEFAULT).unwrap();
    assert_eq!(
        valid.spec.wait_target(),
        None,
        "the reference's rules decide"
    );
    // Round trip: the same object back.
    let back: WorkerPodAutoScalerSpec = serde_json::from_value(value).unwrap();
    assert_eq!(back, wpa.spec);
}

#[test]
fn to_raw_passes_the_wait_target_fields() {
    let with = WorkerPodAutoScalerSpec {
        seconds_to_process_one_job: Some(2.0),
        target_wait_seconds: Some(30.0),
        worker_startup_seconds: Some(45.0),
        ..spec()
    };
    let raw = with.to_raw();
    assert_eq!(raw.target_wait_seconds, Some(30.0));
    assert_eq!(raw.worker_startup_seconds, Some(45.0));
    assert_eq!(raw.seconds_to_process_one_job, Some(2.0));
    let valid = with.validate(MaxDisruption::DEFAULT).unwrap();
    let target = valid.spec.wait_target().expect("the wait-target policy");
    assert_eq!(target.target_wait_seconds(), 30.0);
    assert_eq!(target.worker_startup_seconds(), 45.0);
    assert_eq!(target.scale_down_hold(), Duration::from_secs(45));

    // workerStartupSeconds absent: the core's default, 30 s.
    let default_startup = WorkerPodAutoScalerSpec {
        worker_startup_seconds: None,
        ..with.clone()
    };
    let valid = default_startup.validate(MaxDisruption::DEFAULT).unwrap();
    assert_eq!(
        valid.spec.wait_target().unwrap().scale_down_hold(),
        wpa_core::wait_target::DEFAULT_WORKER_STARTUP
    );

    // The camelCase keys, from JSON as the API server sends them.
    let parsed: WorkerPodAutoScalerSpec = serde_json::from_value(json!({
        "minReplicas": 0, "maxReplicas": 10, "deploymentName": "worker",
        "queueURI": "beanstalk://localhost:11300/jobs", "targetMessagesPerWorker": 2,
        "secondsToProcessOneJob": 2.0, "targetWaitSeconds": 30, "workerStartupSeconds": 45
    }))
    .unwrap();
    assert_eq!(parsed, with);
    let value = serde_json::to_value(&with).unwrap();
    assert_eq!(value["targetWaitSeconds"], 30.0);
    assert_eq!(value["workerStartupSeconds"], 45.0);
}

#[test]
fn invalid_wait_targets_get_typed_spec_errors() {
    // targetWaitSeconds without secondsToProcessOneJob (absent or 0).
    for seconds in [None, Some(0.0)] {
        let error = WorkerPodAutoScalerSpec {
            seconds_to_process_one_job: seconds,
            target_wait_seconds: Some(30.0),
            ..spec()
        }
        .validate(MaxDisruption::DEFAULT)
        .unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidSpec(wpa_core::Error::WaitTargetNeedsJobTime)
            ),
            "{error}"
        );
        assert!(error.is_spec_error());
        assert!(
            error
                .to_string()
                .contains("targetWaitSeconds needs secondsToProcessOneJob"),
            "{error}"
        );
    }
    // Out of the schema's bounds (an object the API server did not check).
    for (target, startup, field) in [
        (Some(0.0), None, "targetWaitSeconds"),
        (Some(-1.0), None, "targetWaitSeconds"),
        (Some(86_401.0), None, "targetWaitSeconds"),
        (Some(30.0), Some(-1.0), "workerStartupSeconds"),
        (Some(30.0), Some(86_401.0), "workerStartupSeconds"),
    ] {
        let error = WorkerPodAutoScalerSpec {
            seconds_to_process_one_job: Some(1.0),
            target_wait_seconds: target,
            worker_startup_seconds: startup,
            ..spec()
        }
        .validate(MaxDisruption::DEFAULT)
        .unwrap_err();
        assert!(
            matches!(
                &error,
                Error::InvalidSpec(wpa_core::Error::OutOfRange { field: f, .. }) if *f == field
            ),
            "{target:?} {startup:?}: {error}"
        );
        assert!(error.is_spec_error());
        assert!(error.to_string().contains(field), "{error}");
    }
    // The bounds themselves are accepted.
    for (target, startup) in [(1e-9, 0.0), (86_400.0, 86_400.0)] {
        let valid = WorkerPodAutoScalerSpec {
            seconds_to_process_one_job: Some(1.0),
            target_wait_seconds: Some(target),
            worker_startup_seconds: Some(startup),
            ..spec()
        }
        .validate(MaxDisruption::DEFAULT)
        .unwrap();
        assert!(valid.spec.wait_target().is_some());
    }
}

#[test]
fn shipped_wait_target_example_selects_the_policy() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/example-wpa-wait-target.yaml"),
    )
    .unwrap();
    let wpa: WorkerPodAutoScaler = serde_norway::from_str(&text).unwrap();
    let valid = wpa.spec.validate(MaxDisruption::DEFAULT).unwrap();
    let target = valid.spec.wait_target().expect("targetWaitSeconds is set");
    assert!(target.target_wait_seconds() > 0.0);
    assert!(wpa.spec.worker_startup_seconds.is_some());
    assert!(valid.spec.seconds_to_process_one_job() > 0.0);
    // Every key it sets is in the CRD's schema.
    let crd = yaml_to_json(&crd_yaml().unwrap());
    let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let raw: Value = serde_norway::from_str(&text).unwrap();
    for key in keys(&raw["spec"]) {
        assert!(props.get(&key).is_some(), "{key} is not in the CRD");
    }
}

fn spec() -> WorkerPodAutoScalerSpec {
    WorkerPodAutoScalerSpec {
        min_replicas: Some(0),
        max_replicas: Some(10),
        queue_uri: Some("beanstalk://localhost:11300/jobs".into()),
        target_messages_per_worker: Some(2),
        deployment_name: Some("worker".into()),
        ..Default::default()
    }
}

#[test]
fn exactly_one_target_name() {
    let both = WorkerPodAutoScalerSpec {
        replica_set_name: Some("rs".into()),
        ..spec()
    };
    let error = both.validate(MaxDisruption::DEFAULT).unwrap_err();
    assert!(matches!(error, Error::BothTargets { .. }), "{error}");
    assert!(error.is_spec_error());
    assert!(error.to_string().contains("set exactly one"));

    let neither = WorkerPodAutoScalerSpec {
        deployment_name: None,
        ..spec()
    };
    assert!(matches!(
        neither.validate(MaxDisruption::DEFAULT),
        Err(Error::NoTarget)
    ));
    let empty = WorkerPodAutoScalerSpec {
        deployment_name: Some(String::new()),
        ..spec()
    };
    assert!(matches!(
        empty.validate(MaxDisruption::DEFAULT),
        Err(Error::NoTarget)
    ));

    let replica_set = WorkerPodAutoScalerSpec {
        deployment_name: None,
        replica_set_name: Some("rs".into()),
        ..spec()
    };
    let valid = replica_set.validate(MaxDisruption::DEFAULT).unwrap();
    assert_eq!(valid.target.kind, TargetKind::ReplicaSet);
}

#[test]
fn malformed_specs_get_typed_errors() {
    let no_queue = WorkerPodAutoScalerSpec {
        queue_uri: None,
        ..spec()
    };
    assert!(matches!(
        no_queue.validate(MaxDisruption::DEFAULT),
        Err(Error::MissingQueueUri)
    ));

    let bad_disruption = WorkerPodAutoScalerSpec {
        max_disruption: Some("abc".into()),
        ..spec()
    };
    let error = bad_disruption.validate(MaxDisruption::DEFAULT).unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidSpec(wpa_core::Error::UnparsableMaxDisruption { .. })
    ));
    assert!(error.to_string().contains("maxDisruption \"abc\""));

    let zero_target = WorkerPodAutoScalerSpec {
        target_messages_per_worker: Some(0),
        ..spec()
    };
    assert!(matches!(
        zero_target.validate(MaxDisruption::DEFAULT),
        Err(Error::InvalidSpec(
            wpa_core::Error::TargetMessagesPerWorkerTooSmall { value: 0 }
        ))
    ));

    let negative_max = WorkerPodAutoScalerSpec {
        max_replicas: Some(-1),
        ..spec()
    };
    assert!(matches!(
        negative_max.validate(MaxDisruption::DEFAULT),
        Err(Error::InvalidSpec(wpa_core::Error::Negative {
            field: "maxReplicas",
            ..
        }))
    ));

    // Absent required fields deserialize (so a watch never breaks) and are
    // refused by validation.
    let sparse: WorkerPodAutoScalerSpec =
        serde_json::from_value(json!({"deploymentName": "w", "queueURI": "q"})).unwrap();
    assert!(matches!(
        sparse.validate(MaxDisruption::DEFAULT),
        Err(Error::InvalidSpec(wpa_core::Error::Missing {
            field: "minReplicas"
        }))
    ));

    // The default maxDisruption applies when absent.
    let valid = spec().validate(MaxDisruption::Absolute(3)).unwrap();
    assert_eq!(valid.spec.max_disruption(), MaxDisruption::Absolute(3));
}

#[test]
fn status_keys_are_capitalised_and_time_is_rfc3339() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let core = WpaStatus {
        current_messages: 15,
        current_replicas: 1,
        available_replicas: 1,
        desired_replicas: 8,
        last_scale_time: Some(now),
    };
    let status = WorkerPodAutoScalerStatus::default().with_core(&core);
    let value = serde_json::to_value(&status).unwrap();
    assert_eq!(
        value,
        json!({
            "CurrentMessages": 15,
            "CurrentReplicas": 1,
            "AvailableReplicas": 1,
            "DesiredReplicas": 8,
            "LastScaleTime": "2027-01-15T08:00:00Z",
        })
    );
    assert_eq!(status.last_scale_time(), Some(now));
    assert_eq!(
        parse_time("2027-01-15T08:00:00.5+00:00"),
        Some(now + Duration::from_millis(500))
    );
    assert_eq!(parse_time("yesterday"), None);
    assert_eq!(format_time(now), "2027-01-15T08:00:00Z");

    // Same instant, other spelling: kept as stored, so no write.
    let stored = WorkerPodAutoScalerStatus {
        last_scale_time: Some("2027-01-15T08:00:00+00:00".into()),
        ..status.clone()
    };
    let again = stored.with_core(&core);
    assert_eq!(again, stored);
    assert_eq!(status_patch(Some(&stored), &again), None);
}

/// `CurrentMessages` and `CurrentMessagesTime` are the last observation,
/// kept through `with_core`, gone when either is missing or bad.
#[test]
fn the_last_observation_lives_in_the_status() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_250);
    let status = WorkerPodAutoScalerStatus {
        current_messages: Some(40),
        ..Default::default()
    };
    assert_eq!(status.last_observation(), None);
    let read = status.with_messages_read_at(Some(at));
    assert_eq!(
        read.current_messages_time.as_deref(),
        Some("2027-01-15T08:00:00.25Z")
    );
    assert_eq!(
        read.last_observation(),
        Some(wpa_core::Observation { messages: 40, at })
    );
    let core = wpa_core::WpaStatus {
        current_messages: 40,
        current_replicas: 1,
        available_replicas: 1,
        desired_replicas: 1,
        last_scale_time: None,
    };
    assert_eq!(
        read.with_core(&core).last_observation(),
        read.last_observation()
    );
    assert_eq!(
        read.clone().with_messages_read_at(None).last_observation(),
        None
    );
    let negative = WorkerPodAutoScalerStatus {
        current_messages: Some(-1),
        ..read
    };
    assert_eq!(negative.last_observation(), None);
}

#[test]
fn status_patch_only_when_changed() {
    let status = WorkerPodAutoScalerStatus {
        current_messages: Some(3),
        desired_replicas: Some(2),
        ..Default::default()
    };
    assert_eq!(status_patch(Some(&status), &status), None);
    assert_eq!(
        status_patch(None, &WorkerPodAutoScalerStatus::default()),
        None
    );
    let changed = WorkerPodAutoScalerStatus {
        current_messages: Some(4),
        desired_replicas: None,
        ..status.clone()
    };
    assert_eq!(
        status_patch(Some(&status), &changed),
        Some(json!({"status": {"CurrentMessages": 4, "DesiredReplicas": null}}))
    );
}

#[test]
fn conditions_move_their_transition_time_only_on_change() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let t1 = t0 + Duration::from_secs(60);
    let invalid = WorkerPodAutoScalerStatus::default().with_condition(
        "Valid",
        false,
        "InvalidSpec",
        "bad",
        t0,
    );
    let still = invalid.with_condition("Valid", false, "InvalidSpec", "still bad", t1);
    assert_eq!(still.conditions.len(), 1);
    assert_eq!(
        still.conditions[0].last_transition_time,
        Some(format_time(t0))
    );
    assert_eq!(still.conditions[0].message, "still bad");
    let fixed = still.with_condition("Valid", true, "Valid", "", t1);
    assert_eq!(fixed.conditions[0].status, "True");
    assert_eq!(
        fixed.conditions[0].last_transition_time,
        Some(format_time(t1))
    );
    let value = serde_json::to_value(&fixed).unwrap();
    assert_eq!(value["Conditions"][0]["type"], "Valid");
    assert_eq!(
        value["Conditions"][0]["lastTransitionTime"],
        format_time(t1)
    );
}

#[test]
fn shipped_idle_first_example_validates_its_probe() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/example-wpa-idle-first.yaml"),
    )
    .unwrap();
    let first = serde_norway::Deserializer::from_str(&text).next().unwrap();
    let raw: Value = serde::Deserialize::deserialize(first).unwrap();
    let wpa: WorkerPodAutoScaler = serde_json::from_value(raw.clone()).unwrap();
    let valid = wpa.spec.validate(MaxDisruption::DEFAULT).unwrap();
    let probe = valid.busy_probe.expect("busyProbe is set");
    assert_eq!(probe.port, wpa_kube::ProbePort::Name("busy".into()));
    assert_eq!(probe.path, "/busy");
    let crd = yaml_to_json(&crd_yaml().unwrap());
    let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for key in keys(&raw["spec"]) {
        assert!(props.get(&key).is_some(), "{key} is not in the CRD");
    }
    // The Deployment beside it names the port the probe asks.
    let deployment = serde_norway::Deserializer::from_str(&text).nth(1).unwrap();
    let deployment: Value = serde::Deserialize::deserialize(deployment).unwrap();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"],
        "busy"
    );
}
