//! A throwaway Redis server for tests, benches and examples.

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use wpa_poller::testing::{start_on_free_ports, wait_until_serving};

/// A `redis-server --bind 127.0.0.1 --port <free port>` child process with
/// no persistence, in its own temporary directory; killed (and the
/// directory removed) on drop.
///
/// A missing `redis-server` binary is an error that says how to install
/// it: tests must fail on it, never skip.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    tls: Option<TlsFiles>,
}

/// The PEM files of a TLS server ([`RedisServer::start_tls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate.
    pub certificate: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA that signed it (the server needs one; clients are not asked
    /// for certificates).
    pub ca: PathBuf,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl RedisServer {
    /// Starts a server on a free port and waits until it listens there
    /// (its own listener, not another server's: [`wait_until_serving`]).
    pub fn start() -> io::Result<Self> {
        Self::start_with(None)
    }

    /// Starts a server that speaks only TLS (`--port 0 --tls-port <free
    /// port>`), with `files`; `url` and `uri` are then `rediss://`.
    pub fn start_tls(files: TlsFiles) -> io::Result<Self> {
        Self::start_with(Some(files))
    }

    fn start_with(tls: Option<TlsFiles>) -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "wpa-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            tls,
        };
        start_on_free_ports(|[port]| {
            server.port = port;
            server.spawn()
        })?;
        Ok(server)
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    #[must_use]
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` for TLS), for a plain
    /// client.
    #[must_use]
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.port)
    }

    /// A queue URI on this server: `redis://127.0.0.1:<port>/<layout>`
    /// (`rediss://` for TLS), e.g. `uri("list/jobs")`.
    #[must_use]
    pub fn uri(&self, layout: &str) -> String {
        format!("{}://127.0.0.1:{}/{layout}", self.scheme(), self.port)
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        }
    }

    /// Kills the server (its data is lost: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> io::Result<()> {
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()]),
            Some(files) => command
                .args(["--bind", "127.0.0.1", "--port", "0"])
                .args(["--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&files.certificate)
                .arg("--tls-key-file")
                .arg(&files.key)
                .arg("--tls-ca-cert-file")
                .arg(&files.ca)
                .args(["--tls-auth-clients", "no"]),
        };
        let mut child = command
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning", "--logfile", ""])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot run `redis-server` ({error}): install it (Debian: apt-get install -y redis-server)"),
                )
            })?;
        // Its own listener: another server may hold a port until this one
        // fails to bind it. A child that exited stays for `stop` to reap.
        let started = wait_until_serving(&mut child, &[self.port], "redis-server");
        self.child = Some(child);
        started
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
