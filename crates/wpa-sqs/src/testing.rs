//! A throwaway `moto_server` (PyPI `moto[server]`), a real SQS-protocol
//! endpoint on a free loopback port, for tests and benchmarks.
//!
//! `moto_server` must be on `PATH`: a missing binary panics with an install
//! hint, so tests that need it fail loudly instead of skipping.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{SqsClients, SqsOptions};

/// Clients as [`SqsClients::new`] makes them, but with fixed test
/// credentials and an environment that ignores the host's (no profile, no
/// `AWS_*` variables): for an emulator such as [`MotoServer`], named in
/// `options.endpoint`.
pub async fn test_clients(options: SqsOptions) -> SqsClients {
    let loader = aws_config::defaults(crate::behavior_version())
        .test_credentials()
        .empty_test_environment();
    SqsClients::from_loader(loader, options).await
}

/// A `moto_server` child process on 127.0.0.1, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Starts one on a free port and waits until it answers.
    ///
    /// A port found free may be taken by another test's server in the
    /// seconds before the Python process binds it (seen in CI: the SDK then
    /// spoke HTTP to a beanstalkd). `moto_server` then exits, and another
    /// port is tried.
    ///
    /// # Panics
    /// When `moto_server` cannot be started, does not answer within 60 s,
    /// or cannot bind a free port in 5 tries.
    #[must_use]
    pub fn start() -> MotoServer {
        const TRIES: u32 = 5;
        for _ in 0..TRIES {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map(|address| address.port())
                .unwrap_or_else(|error| panic!("no free loopback port: {error}"));
            if let Some(server) = MotoServer::try_start_on(port) {
                return server;
            }
        }
        panic!("moto_server exited before answering on {TRIES} free ports in a row")
    }

    /// Starts one on `port` (to restart a stopped server at the same address).
    ///
    /// # Panics
    /// As [`MotoServer::start`], and when it exits before answering (the
    /// port is taken).
    #[must_use]
    pub fn start_on(port: u16) -> MotoServer {
        MotoServer::try_start_on(port).unwrap_or_else(|| {
            panic!("moto_server exited before answering on {port}: is the port taken?")
        })
    }

    /// Starts one on `port`; `None` when it exits before answering.
    fn try_start_on(port: u16) -> Option<MotoServer> {
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start moto_server ({error}): it must be on PATH; install it with \
                     `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'` and put \
                     .venv/bin on PATH (these tests never skip)"
                )
            });
        let mut server = MotoServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        // Moto's own answer, not just a listener: another server may hold
        // the port until moto fails to bind it.
        while !answers_as_moto(port) {
            if let Ok(Some(_)) = server.child.try_wait() {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// Its port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its endpoint URL, `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it (also done on drop).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /moto-api/data.json` on `port` gets moto's answer: a 200
/// from its Werkzeug server.
fn answers_as_moto(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(2));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    let request = b"GET /moto-api/data.json HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut head = [0u8; 512];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    let head = String::from_utf8_lossy(&head[..read]).to_ascii_lowercase();
    head.starts_with("http/1.") && head.contains(" 200 ") && head.contains("werkzeug")
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
