#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The manifests in deploy/ read as an operator expects: least-privilege
//! RBAC, a non-root Deployment, the metrics port.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

fn documents(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

fn verbs(rules: &Value, group: &str, resource: &str) -> Vec<String> {
    let mut verbs: Vec<String> = rules
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| {
            rule["apiGroups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == group)
                && rule["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r == resource)
        })
        .flat_map(|rule| {
            rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
        })
        .collect();
    verbs.sort();
    verbs
}

#[test]
fn rbac_grants_exactly_the_verbs_used() {
    let docs = documents("rbac.yaml");
    let cluster_role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    let rules = &cluster_role["rules"];
    assert_eq!(
        verbs(rules, "k8s.practo.dev", "workerpodautoscalers"),
        ["list", "watch"]
    );
    assert_eq!(
        verbs(rules, "k8s.practo.dev", "workerpodautoscalers/status"),
        ["patch"]
    );
    assert_eq!(
        verbs(rules, "apps", "deployments"),
        ["list", "watch"],
        "never a full-object update"
    );
    assert_eq!(verbs(rules, "apps", "replicasets"), ["list", "watch"]);
    assert_eq!(verbs(rules, "apps", "deployments/scale"), ["get", "update"]);
    assert_eq!(verbs(rules, "apps", "replicasets/scale"), ["get", "update"]);
    assert_eq!(verbs(rules, "events.k8s.io", "events"), ["create", "patch"]);
    let text = serde_json::to_string(rules).unwrap();
    assert!(!text.contains('*'), "no wildcards");

    let role = docs.iter().find(|d| d["kind"] == "Role").unwrap();
    assert_eq!(
        verbs(&role["rules"], "coordination.k8s.io", "leases"),
        ["create", "get", "patch"]
    );
    for binding in docs
        .iter()
        .filter(|d| d["kind"].as_str().unwrap().ends_with("Binding"))
    {
        assert_eq!(binding["subjects"][0]["name"], "workerpodautoscaler");
    }
}

#[test]
fn deployment_runs_non_root_with_probes_on_the_metrics_port() {
    let docs = documents("deployment.yaml");
    let deployment = &docs[0];
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "workerpodautoscaler");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["ports"][0]["containerPort"], 8787);
    assert_eq!(container["args"][0], "run");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");

    let service = &documents("service.yaml")[0];
    assert_eq!(service["spec"]["ports"][0]["port"], 8787);
    let monitor = &documents("servicemonitor.yaml")[0];
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(
        documents("serviceaccount.yaml")[0]["kind"],
        "ServiceAccount"
    );
}

#[test]
fn kustomization_lists_every_manifest() {
    let kustomization = &documents("kustomization.yaml")[0];
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for file in [
        "crd.yaml",
        "serviceaccount.yaml",
        "rbac.yaml",
        "deployment.yaml",
        "service.yaml",
        "servicemonitor.yaml",
    ] {
        assert!(
            listed.contains(&file),
            "{file} missing from kustomization.yaml"
        );
    }
}
