//! One command-line vocabulary, checked on the built binary: the poll
//! interval rule, `-v`, `--log-format json` and colour are the same in
//! `run` and `watch`, and logs go to stderr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, Logged, free_port, write_kubeconfig};
use serde_json::{Value, json};
use wpa_kube_testing::ApiServer;

const INTERVALS: [&str; 4] = [
    "--sqs-short-poll-interval",
    "--sqs-long-poll-interval",
    "--beanstalk-short-poll-interval",
    "--beanstalk-long-poll-interval",
];

/// A loopback port nothing listens on: connections are refused at once.
fn closed_port() -> u16 {
    free_port()
}

fn watch_args(uri: &str) -> Vec<String> {
    [
        "watch",
        "--queue-uri",
        uri,
        "--min-replicas",
        "0",
        "--max-replicas",
        "3",
        "--target-messages-per-worker",
        "1",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Every line parsed as JSON (a line that is not is a failure).
fn records(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect()
}

fn level(record: &Value) -> &str {
    record["level"].as_str().unwrap_or_default()
}

fn message(record: &Value) -> &str {
    record["fields"]["message"].as_str().unwrap_or_default()
}

#[test]
fn poll_intervals_follow_one_rule_in_run_and_watch() {
    let watch = watch_args("beanstalk://127.0.0.1:1/t");
    let run = vec!["run".to_owned(), "--leader-elect=false".to_owned()];
    for (base, flags) in [
        (&run, [&INTERVALS[..], &["--resync-period"]].concat()),
        (&watch, INTERVALS.to_vec()),
    ] {
        for flag in flags {
            for (value, reason) in [
                ("0", "at least 1 second"),
                ("0s", "at least 1 second"),
                ("500ms", "at least 1 second"),
                ("-1", "must not be negative"),
                ("1500ms", "whole seconds"),
                ("soon", "expected seconds"),
            ] {
                for separate in [false, true] {
                    let mut command = Command::new(BIN);
                    command.args(base);
                    if separate {
                        command.args([flag, value]);
                    } else {
                        command.arg(format!("{flag}={value}"));
                    }
                    let output = command.output().unwrap();
                    let stderr = String::from_utf8(output.stderr).unwrap();
                    let what = format!("{} {flag} {value}: {stderr}", base[0]);
                    assert_eq!(output.status.code(), Some(2), "{what}");
                    assert!(stderr.contains(flag), "{what}");
                    assert!(stderr.contains(reason), "{what}");
                    assert!(output.stdout.is_empty(), "{what}");
                }
            }
        }
        // From the environment, the same rule and the flag's name.
        let output = Command::new(BIN)
            .args(base)
            .env("WORKERPODAUTOSCALER_SQS_SHORT_POLL_INTERVAL", "0")
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--sqs-short-poll-interval"), "{stderr}");
        assert!(stderr.contains("at least 1 second"), "{stderr}");
    }
}

/// `run` against the API double with one WPA on a beanstalkd that refuses
/// connections, logging at `-v verbosity` in `format`.
fn run_logging(server: &ApiServer, verbosity: &str, format: &str) -> Logged {
    let kubeconfig = write_kubeconfig(&server.url(), &format!("v{verbosity}-{format}"));
    Logged::spawn(
        Command::new(BIN)
            .args(["run", "--leader-elect=false", "--queue-services=beanstalkd"])
            .args(["--beanstalk-short-poll-interval=1", "--resync-period=1"])
            .args(["-v", verbosity, "--log-format", format])
            .arg("--metrics-port=127.0.0.1:0")
            .arg(format!("--kube-config={}", kubeconfig.display()))
            .env("WORKERPODAUTOSCALER_BEANSTALK_LONG_POLL_INTERVAL", "1")
            .env_remove("RUST_LOG")
            .env_remove("WORKERPODAUTOSCALER_V")
            .env_remove("WORKERPODAUTOSCALER_LOG_FORMAT"),
    )
}

fn watch_logging(verbosity: &str, format: &str, port: u16) -> Logged {
    Logged::spawn(
        Command::new(BIN)
            .args(watch_args(&format!("beanstalk://127.0.0.1:{port}/t")))
            .args(["--beanstalk-short-poll-interval", "1"])
            .args(["-v", verbosity, "--log-format", format])
            .env_remove("RUST_LOG")
            .env_remove("WORKERPODAUTOSCALER_V")
            .env_remove("WORKERPODAUTOSCALER_LOG_FORMAT"),
    )
}

async fn double_with_a_wpa_on(port: u16) -> ApiServer {
    let server = ApiServer::start().await.unwrap();
    server
        .insert(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "worker", "namespace": "jobs"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}, "template": {}}
        }))
        .unwrap();
    server
        .insert(json!({
            "apiVersion": "k8s.practo.dev/v1", "kind": "WorkerPodAutoScaler",
            "metadata": {"name": "w", "namespace": "jobs"},
            "spec": {"minReplicas": 0, "maxReplicas": 10, "deploymentName": "worker",
                     "queueURI": format!("beanstalk://127.0.0.1:{port}/jobs"),
                     "targetMessagesPerWorker": 2}
        }))
        .unwrap();
    server
}

/// `-v 1` is info and `-v 2` debug in both subcommands, the clients' own
/// debug output filtered alike; and with `--log-format json` every stderr
/// line is one JSON object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v_means_the_same_in_run_and_watch_and_json_logs_are_json_lines() {
    let port = closed_port();
    let server = double_with_a_wpa_on(port).await;
    for verbosity in ["1", "2"] {
        for subcommand in ["run", "watch"] {
            let mut logged = match subcommand {
                "run" => run_logging(&server, verbosity, "json"),
                _ => watch_logging(verbosity, "json", port),
            };
            let failed = |line: &str| {
                serde_json::from_str::<Value>(line)
                    .is_ok_and(|record| message(&record) == "queue poll failed")
            };
            assert!(
                logged.until(Duration::from_secs(30), failed),
                "{subcommand} -v {verbosity}: no poll failure logged: {:#?}",
                logged.seen
            );
            let records = records(&logged.seen);
            let what = format!("{subcommand} -v {verbosity}: {records:#?}");
            assert!(records.iter().any(|r| level(r) == "WARN"), "{what}");
            assert!(records.iter().any(|r| level(r) == "INFO"), "{what}");
            let debug = |r: &&Value| matches!(level(r), "DEBUG" | "TRACE");
            if verbosity == "1" {
                assert!(!records.iter().any(|r| debug(&r)), "{what}");
            } else {
                // The poller announces itself at debug before its first poll.
                assert!(
                    records
                        .iter()
                        .filter(debug)
                        .any(|r| r["target"] == "wpa_poller"),
                    "{what}"
                );
            }
            for record in records.iter().filter(debug) {
                let target = record["target"].as_str().unwrap();
                for noisy in ["hyper", "kube", "tower", "h2", "rustls", "aws_"] {
                    assert!(!target.starts_with(noisy), "{what}");
                }
            }
        }
    }
}

#[test]
fn a_fatal_error_of_run_is_a_json_record_on_stderr() {
    let mut logged = Logged::spawn(
        Command::new(BIN)
            .args(["run", "--leader-elect=false", "--log-format=json"])
            .args(["--kube-config", "/nonexistent/kubeconfig.yaml"])
            .env_remove("RUST_LOG"),
    );
    assert_eq!(logged.exit_code(Duration::from_secs(30)), 1);
    let records = records(&logged.seen);
    assert!(
        records
            .iter()
            .any(|r| level(r) == "ERROR"
                && message(r).contains("loading the Kubernetes configuration")),
        "{records:#?}"
    );
    for record in &records {
        assert!(record["timestamp"].is_string(), "{record}");
    }
}

fn has_ansi(lines: &[String]) -> bool {
    lines.iter().any(|line| line.contains('\u{1b}'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_on_a_pipe_have_no_colour() {
    let mut run = Logged::spawn(
        Command::new(BIN)
            .args(["run", "--leader-elect=false"])
            .args(["--kube-config", "/nonexistent/kubeconfig.yaml"])
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR"),
    );
    assert_eq!(run.exit_code(Duration::from_secs(30)), 1);
    assert!(
        run.seen
            .iter()
            .any(|line| line.contains("ERROR") && line.contains("Kubernetes configuration")),
        "{:#?}",
        run.seen
    );
    assert!(!has_ansi(&run.seen), "{:#?}", run.seen);

    let mut watch = watch_logging("2", "text", closed_port());
    assert!(watch.until(Duration::from_secs(30), |line| {
        line.contains("queue poll failed")
    }));
    assert!(watch.seen.iter().any(|line| line.contains("DEBUG")));
    assert!(!has_ansi(&watch.seen), "{:#?}", watch.seen);
}

/// The same `run` on a terminal (a pseudo-terminal from `script`) is
/// coloured, unless NO_COLOR says otherwise.
#[test]
fn text_logs_on_a_terminal_are_coloured_unless_no_color() {
    for (no_color, coloured) in [(None, true), (Some("1"), false)] {
        let mut command = Command::new("script");
        command
            .args(["-q", "-e", "-c"])
            .arg(format!(
                "'{BIN}' run --leader-elect=false --kube-config /nonexistent/kubeconfig.yaml"
            ))
            .arg("/dev/null")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let output = command
            .output()
            .expect("script (util-linux) runs the command on a pseudo-terminal");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Kubernetes configuration"), "{text:?}");
        assert_eq!(
            text.contains('\u{1b}'),
            coloured,
            "NO_COLOR={no_color:?}: {text:?}"
        );
    }
}
