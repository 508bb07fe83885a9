//! `workerpodautoscaler watch`, the built binary, against a real beanstalkd
//! driven by a plain TCP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use wpa_beanstalkd::testing::BeanstalkdServer;

mod common;

use common::{BIN, Watch};

/// One raw beanstalkd command and its reply line (plus body, for `OK`).
fn raw(stream: &mut TcpStream, command: &[u8]) -> String {
    stream.write_all(command).unwrap();
    let mut reply = Vec::new();
    let mut byte = [0_u8; 1];
    while !reply.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).unwrap();
        reply.push(byte[0]);
    }
    let line = String::from_utf8(reply).unwrap();
    if let Some(len) = line.strip_prefix("OK ") {
        let len: usize = len.trim().parse().unwrap();
        let mut body = vec![0_u8; len + 2];
        stream.read_exact(&mut body).unwrap();
        return String::from_utf8(body).unwrap();
    }
    line
}

#[test]
fn scales_up_from_zero_on_the_first_message_and_stops_on_sigterm() {
    let server = BeanstalkdServer::start()
        .expect("beanstalkd must be installed (Debian: apt-get install -y beanstalkd)");
    let watch = Watch::start(&server.uri("e2e"), &[], |_| {});

    // First decision: the empty queue at 0 replicas.
    let first = watch.next(Duration::from_secs(10));
    assert_eq!(first["queueMessages"], 0);
    assert_eq!(first["currentReplicas"], 0);
    assert_eq!(first["desiredReplicas"], 0);
    assert_eq!(first["scaleOperation"], "none");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    for key in ["idleWorkers", "messagesSentPerMinute", "reason"] {
        assert!(first.get(key).is_some(), "{key} missing in {first}");
    }

    // The watch is now blocked in reserve-with-timeout (long poll 20 s).
    let mut client = TcpStream::connect(server.address()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !raw(&mut client, b"stats-tube e2e\r\n").contains("current-waiting: 1") {
        assert!(Instant::now() < deadline, "watch never waited on the tube");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(raw(&mut client, b"use e2e\r\n"), "USING e2e\r\n");
    let put_at = Instant::now();
    let inserted = raw(&mut client, b"put 123 0 60 5\r\nhello\r\n");
    let id = inserted
        .trim()
        .strip_prefix("INSERTED ")
        .unwrap()
        .to_owned();

    let up = watch.next(Duration::from_secs(5));
    let latency = put_at.elapsed();
    assert_eq!(up["scaleOperation"], "scale-up", "{up}");
    assert_eq!(up["queueMessages"], 1);
    assert_eq!(up["currentReplicas"], 0);
    assert_eq!(up["desiredReplicas"], 1);
    assert!(latency < Duration::from_secs(5), "{latency:?}");

    // The job is intact: ready, same priority, still first in line.
    let stats = raw(&mut client, format!("stats-job {id}\r\n").as_bytes());
    assert!(stats.contains("state: ready"), "{stats}");
    assert!(stats.contains("pri: 123"), "{stats}");
    assert_eq!(
        raw(&mut client, b"peek-ready\r\n"),
        format!("FOUND {id} 5\r\n")
    );

    assert_eq!(watch.terminate(), 0);
}

#[test]
fn bad_uri_or_spec_is_exit_status_2_with_one_line() {
    for args in [
        &[
            "--queue-uri",
            "beanstalk://host:notaport/t",
            "--target-messages-per-worker",
            "1",
        ][..],
        &[
            "--queue-uri",
            "ftp://host/t",
            "--target-messages-per-worker",
            "1",
        ],
        &[
            "--queue-uri",
            "beanstalk://host/t",
            "--target-messages-per-worker",
            "0",
        ],
        &[
            "--queue-uri",
            "beanstalk://host/t",
            "--target-messages-per-worker",
            "1",
            "--max-disruption",
            "abc",
        ],
    ] {
        let output = Command::new(BIN)
            .args(["watch", "--min-replicas", "0", "--max-replicas", "3"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("workerpodautoscaler watch: "),
            "{stderr}"
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn flags_come_from_the_environment_too() {
    let output = Command::new(BIN)
        .args(["watch", "--min-replicas", "0", "--max-replicas", "3"])
        .env("WORKERPODAUTOSCALER_QUEUE_URI", "beanstalk://host/t")
        .env("WORKERPODAUTOSCALER_TARGET_MESSAGES_PER_WORKER", "-4")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("targetMessagesPerWorker must be at least 1, got -4"),
        "{stderr}"
    );
}
