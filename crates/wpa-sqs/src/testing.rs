//! A throwaway `moto_server` (PyPI `moto[server]`), a real SQS-protocol
//! endpoint on a free loopback port, for tests and benchmarks.
//!
//! `moto_server` must be on `PATH`: a missing binary panics with an install
//! hint, so tests that need it fail loudly instead of skipping.

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
    /// Starts one on a free port and waits until it listens.
    ///
    /// # Panics
    /// When `moto_server` cannot be started or does not listen within 60 s.
    #[must_use]
    pub fn start() -> MotoServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap_or_else(|error| panic!("no free loopback port: {error}"));
        MotoServer::start_on(port)
    }

    /// Starts one on `port` (to restart a stopped server at the same address).
    ///
    /// # Panics
    /// As [`MotoServer::start`].
    #[must_use]
    pub fn start_on(port: u16) -> MotoServer {
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
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto_server exited with {status} before listening on {port}");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
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

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
