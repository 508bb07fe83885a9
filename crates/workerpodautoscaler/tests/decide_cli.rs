//! `workerpodautoscaler decide` as a user runs it: stdin in, stdout out,
//! exit status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

fn decide(input: &str) -> (Vec<serde_json::Value>, i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_workerpodautoscaler"))
        .arg("decide")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let lines = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (lines, output.status.code().unwrap())
}

#[test]
fn the_shipped_sample_decides_like_the_reference() {
    let sample = include_str!("../../../examples/decide.jsonl");
    let (lines, status) = decide(sample);
    assert_eq!(lines.len(), sample.lines().count());
    let desired: Vec<_> = lines
        .iter()
        .map(|line| line["desiredReplicas"].as_u64())
        .collect();
    assert_eq!(
        desired,
        [
            Some(8),
            Some(8),
            Some(5),
            Some(4),
            Some(0),
            Some(0),
            Some(8),
            Some(5),
        ]
    );
    assert_eq!(lines[0]["scaleOperation"], "scale-up");
    assert_eq!(lines[4]["scaleOperation"], "none");
    assert_eq!(lines[5]["scaleOperation"], "scale-down");
    assert_eq!(status, 0);
}

#[test]
fn a_bad_line_is_answered_in_place_and_sets_exit_status_1() {
    let good = r#"{"queueMessages":3,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":10}"#;
    let bad = r#"{"queueMessages":40,"targetMessagesPerWorker":2,"currentReplicas":3,"minReplicas":0,"maxReplicas":10,"maxDisruption":"abc"}"#;
    let (lines, status) = decide(&format!("{good}\n{bad}\n{good}\n"));
    assert_eq!(lines.len(), 3);
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("maxDisruption")
    );
    assert_eq!(lines[2]["desiredReplicas"], 3);
    assert_eq!(status, 1);
}

#[test]
fn all_good_lines_exit_zero() {
    let line = r#"{"queueMessages":3,"targetMessagesPerWorker":1,"currentReplicas":3,"minReplicas":0,"maxReplicas":10}"#;
    let (lines, status) = decide(&format!("{line}\n{line}\n"));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["scaleOperation"], "none");
    assert_eq!(status, 0);
}

#[test]
fn empty_and_garbage_lines_are_errors_in_place() {
    let good = r#"{"queueMessages":3,"targetMessagesPerWorker":1,"currentReplicas":1,"minReplicas":0,"maxReplicas":10}"#;
    let (lines, status) = decide(&format!("\n[1,2]\n{good}\n\u{1F600}\n"));
    assert_eq!(lines.len(), 4);
    assert!(lines[0]["error"].is_string());
    assert!(lines[1]["error"].is_string());
    assert_eq!(lines[2]["desiredReplicas"], 3);
    assert!(lines[3]["error"].is_string());
    assert_eq!(status, 1);
}

#[test]
fn floats_parse_exactly_at_rounding_boundaries() {
    // (0.07 * 6000) / 60 = 7.000000000000001 in float64: the reference says 8.
    let line = r#"{"queueMessages":0,"targetMessagesPerWorker":1000,"secondsToProcessOneJob":0.07,"messagesSentPerMinute":6000,"currentReplicas":20,"minReplicas":0,"maxReplicas":100}"#;
    let (lines, _) = decide(line);
    assert_eq!(lines[0]["desiredReplicas"], 8);
}

/// A program drives `decide` one line at a time: each answer arrives while
/// stdin is still open (a buffered writer that flushed only at the end
/// would leave this test waiting, and fail at its deadline).
#[test]
fn answers_each_line_while_stdin_stays_open() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use std::time::Duration;

    let mut child = Command::new(env!("CARGO_BIN_EXE_workerpodautoscaler"))
        .arg("decide")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    for (messages, desired) in [(15, 8), (4, 2), (0, 0)] {
        writeln!(
            stdin,
            r#"{{"queueMessages":{messages},"targetMessagesPerWorker":2,"currentReplicas":0,"minReplicas":0,"maxReplicas":10}}"#
        )
        .unwrap();
        stdin.flush().unwrap();
        let answer = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("an answer before stdin closes");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["desiredReplicas"], desired, "{answer}");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
}
