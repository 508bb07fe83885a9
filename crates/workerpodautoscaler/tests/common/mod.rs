//! `workerpodautoscaler watch` as a child process whose JSON decision lines
//! the tests read (shared by the beanstalkd and SQS end-to-end tests).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_workerpodautoscaler");

/// A running `watch`, killed when dropped.
pub struct Watch {
    pub child: Child,
    pub lines: mpsc::Receiver<Value>,
}

impl Watch {
    /// `watch` for `uri` with spec min 0, max 10, 2 messages per worker,
    /// plus `extra` arguments; configure the command further in `setup`.
    pub fn start(uri: &str, extra: &[&str], setup: impl FnOnce(&mut Command)) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(["watch", "--queue-uri", uri, "--min-replicas", "0"])
            .args(["--max-replicas", "10", "--target-messages-per-worker", "2"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        setup(&mut command);
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let value: Value = serde_json::from_str(&line).expect("stdout line is JSON");
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Watch { child, lines }
    }

    /// The next decision line, within `within`.
    pub fn next(&self, within: Duration) -> Value {
        self.lines
            .recv_timeout(within)
            .expect("no decision line in time")
    }

    /// The first decision line that satisfies `wanted`, within `within`.
    pub fn until(&self, within: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .expect("no matching decision line in time");
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Sends SIGTERM and returns the exit code (within 5 s).
    pub fn terminate(mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited, not killed by a signal");
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A kubeconfig for the API double at `url`, written to a temporary file.
pub fn write_kubeconfig(url: &str, tag: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("wpa-cli-{tag}-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {url}\n\
             users:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: double\n    user: u\n\
             current-context: c\n"
        ),
    )
    .unwrap();
    path
}

/// A child process whose stderr lines are read as they come, killed when
/// dropped.
pub struct Logged {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
}

impl Logged {
    /// Spawns `command` with stderr piped (stdout discarded).
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Logged {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads stderr until a line satisfies `wanted` (true) or `within`
    /// passes or stderr closes (false).
    pub fn until(&mut self, within: Duration, wanted: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = wanted(&line);
                    self.seen.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// The port `run --metrics-port=127.0.0.1:0` bound, from its start-up
    /// line: the kernel picks it, so no other test can take it first.
    pub fn metrics_port(&mut self, within: Duration) -> u16 {
        let starting = |line: &str| line.contains("controller starting");
        assert!(
            self.until(within, starting),
            "no start-up line: {:?}",
            self.seen
        );
        let line = self.seen.iter().rev().find(|l| starting(l)).unwrap();
        let address = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("address="))
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        address
            .parse::<std::net::SocketAddr>()
            .unwrap_or_else(|e| panic!("{address:?}: {e}"))
            .port()
    }

    /// Waits for the process to exit (within `within`) and reads the rest
    /// of stderr; its exit code.
    pub fn exit_code(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        };
        self.until(Duration::from_secs(5), |_| false);
        status.code().expect("exited, not killed by a signal")
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
