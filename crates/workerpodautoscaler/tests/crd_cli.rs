#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `workerpodautoscaler crd` prints exactly deploy/crd.yaml.

use std::process::Command;

#[test]
fn crd_prints_the_shipped_crd() {
    let output = Command::new(env!("CARGO_BIN_EXE_workerpodautoscaler"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/crd.yaml"
    ))
    .unwrap();
    assert_eq!(
        printed, shipped,
        "deploy/crd.yaml is stale: workerpodautoscaler crd > deploy/crd.yaml"
    );
    assert!(printed.contains("name: workerpodautoscalers.k8s.practo.dev"));
}
