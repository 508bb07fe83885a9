//! A throwaway `nats-server` with JetStream for tests, benches and
//! examples.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wpa_poller::testing::{start_on_free_ports, wait_until_serving};

/// A `nats-server -js -sd <temp dir> -a 127.0.0.1 -p <free port> -m <free
/// port>` child process, killed on drop (its store directory removed).
///
/// The store directory outlives [`NatsServer::restart`]: streams and
/// consumers (file storage) survive a restart, as on a real deployment.
/// A missing `nats-server` binary is an error that says how to install it:
/// tests must fail on it, never skip.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    monitor_port: u16,
    dir: PathBuf,
    config: Option<PathBuf>,
}

fn temp_dir() -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "wpa-nats-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl NatsServer {
    /// Starts a server on free ports and waits until it listens there
    /// (its own listeners, not another server's: [`wait_until_serving`]).
    pub fn start() -> io::Result<Self> {
        Self::start_inner(None)
    }

    /// Starts a server with these lines of configuration (for example an
    /// `authorization { ... }` block) on top of the flags.
    pub fn start_with_config(config: &str) -> io::Result<Self> {
        Self::start_inner(Some(config))
    }

    /// Starts a server that requires TLS on its client port, with this
    /// certificate and key (PEM files): clients connect to `tls://`
    /// ([`NatsServer::uri`] with the scheme changed) or upgrade from
    /// `nats://` as its INFO asks.
    pub fn start_tls(certificate: &Path, key: &Path) -> io::Result<Self> {
        Self::start_inner(Some(&format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n}}\n",
            certificate.display().to_string(),
            key.display().to_string(),
        )))
    }

    fn start_inner(config: Option<&str>) -> io::Result<Self> {
        let dir = temp_dir()?;
        let config = match config {
            Some(text) => {
                let path = dir.join("nats.conf");
                std::fs::write(&path, text)?;
                Some(path)
            }
            None => None,
        };
        let mut server = NatsServer {
            child: None,
            port: 0,
            monitor_port: 0,
            dir,
            config,
        };
        start_on_free_ports(|[port, monitor_port]| {
            [server.port, server.monitor_port] = [port, monitor_port];
            server.spawn()
        })?;
        Ok(server)
    }

    /// The client port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The monitoring (HTTP) port.
    #[must_use]
    pub fn monitor_port(&self) -> u16 {
        self.monitor_port
    }

    /// `nats://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `nats://127.0.0.1:<port>/<stream>/<consumer>`.
    #[must_use]
    pub fn uri(&self, stream: &str, consumer: &str) -> String {
        format!("nats://127.0.0.1:{}/{stream}/{consumer}", self.port)
    }

    /// The JetStream store directory.
    #[must_use]
    pub fn store_dir(&self) -> &Path {
        &self.dir
    }

    /// The body of `GET <path>` on the monitoring port (`/subsz?subs=1`,
    /// `/connz`, `/jsz?consumers=1`).
    pub fn monitor(&self, path: &str) -> io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.monitor_port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        match response.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
                Ok(body.to_owned())
            }
            _ => Err(io::Error::other(format!(
                "GET {path}: unexpected response {:?}",
                response.chars().take(200).collect::<String>()
            ))),
        }
    }

    /// Kills the server (SIGKILL: no clean shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports, with the same store.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> io::Result<()> {
        let mut command = Command::new("nats-server");
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        command
            .arg("-js")
            .arg("-sd")
            .arg(&self.dir)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command.spawn().map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "cannot run `nats-server` ({error}): install it (Debian: apt-get install -y nats-server)"
                ),
            )
        })?;
        // Its own listener: another server may hold a port until this one
        // fails to bind it. A child that exited stays for `stop` to reap.
        let started =
            wait_until_serving(&mut child, &[self.port, self.monitor_port], "nats-server");
        self.child = Some(child);
        started
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
