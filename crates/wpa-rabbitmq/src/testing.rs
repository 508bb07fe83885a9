//! A throwaway RabbitMQ node for tests, benches and examples.
//!
//! Each [`RabbitMqServer`] is a node of its own: a unique node name, its
//! own `epmd` on a free port, free loopback ports for AMQP, the
//! management API and Erlang distribution, and a temporary directory for
//! its database, logs, config and Erlang cookie (as `HOME`). It starts in
//! 5 to 15 seconds, so a test binary should share one node between its
//! tests (each with its own queue or vhost).
//!
//! The node runs under a small `sh` watchdog that holds the read end of a
//! pipe from this process: when the server is dropped, or this process
//! exits without dropping it (a `static`), the pipe closes and the watchdog
//! kills the node's process group and its `epmd`, then removes the
//! directory. A missing `rabbitmq-server` is an error that names the
//! Debian package: tests must fail on it, never skip.

use std::fmt::Write as _;
use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use wpa_poller::testing::free_ports;

/// What a test node is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// `collect_statistics_interval`: how often queues report the counts
    /// the management API serves. RabbitMQ's default is 5 s; tests use
    /// 250 ms by default.
    pub stats_interval: Duration,
    /// The granularity, in seconds, of the management database's most
    /// recent samples (`management.sample_retention_policies.*`): the
    /// counts it serves are the latest sample. RabbitMQ's default is 5;
    /// tests use 1. With 250 ms and 1 s a change shows in the management
    /// API 0.5 to 1.7 s later; with RabbitMQ's defaults 2 to 8 s later.
    pub sample_seconds: u32,
    /// Longest wait for the node to accept AMQP and management
    /// connections. Default 120 s (a loaded 2-core machine takes 10-20 s).
    pub start_timeout: Duration,
    /// Also listen with TLS (AMQPS and HTTPS management, on ports of their
    /// own) with these PEM files: a server certificate for `127.0.0.1` and
    /// the CA that signed it ([`RabbitMqServer::ca_certificate`]; the tests
    /// make them with `wpa_poller::testing::TestCertificates`). Default
    /// `None`.
    pub tls: Option<TlsFiles>,
}

/// The PEM files of a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate.
    pub certificate: PathBuf,
    /// Its private key (PKCS#8, as rcgen writes it, or PKCS#1/SEC1).
    pub key: PathBuf,
    /// The CA that signed the certificate.
    pub ca: PathBuf,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            stats_interval: Duration::from_millis(250),
            sample_seconds: 1,
            start_timeout: Duration::from_secs(120),
            tls: None,
        }
    }
}

impl ServerOptions {
    /// RabbitMQ's own statistics settings (5 s and 5 s): what a production
    /// node runs with.
    #[must_use]
    pub fn rabbitmq_defaults() -> Self {
        ServerOptions {
            stats_interval: Duration::from_secs(5),
            sample_seconds: 5,
            ..ServerOptions::default()
        }
    }
}

/// A RabbitMQ node with the management plugin on free loopback ports,
/// killed on drop. `guest`/`guest` is the administrator.
#[derive(Debug)]
pub struct RabbitMqServer {
    dir: PathBuf,
    node: String,
    amqp_port: u16,
    management_port: u16,
    dist_port: u16,
    epmd_port: u16,
    /// AMQPS and HTTPS management ports, with `ServerOptions::tls`.
    tls_ports: Option<(u16, u16)>,
    options: ServerOptions,
    program: PathBuf,
    epmd: PathBuf,
    watchdog: Option<(Child, ChildStdin)>,
}

/// The watchdog: starts `epmd` and the node, each in its own process group
/// (`setsid`), waits for a line or the end of its stdin (or a signal), then
/// kills both groups and removes the directory unless the line was `keep`
/// (a restart). dash's `kill` takes no `--`: `kill -KILL -<pgid>`.
const WATCHDOG: &str = r#"
keep=
epmd_pid=
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill -KILL "-$server_pid" 2>/dev/null
  [ -n "$epmd_pid" ] && kill -KILL "-$epmd_pid" 2>/dev/null
  wait 2>/dev/null
  [ "$keep" = keep ] || rm -rf "$WPA_DIR"
  exit 0
}
trap cleanup HUP INT TERM
setsid "$WPA_EPMD" -port "$ERL_EPMD_PORT" </dev/null >>"$WPA_DIR/epmd.log" 2>&1 &
epmd_pid=$!
i=0
until "$WPA_EPMD" -port "$ERL_EPMD_PORT" -names >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -gt 400 ] && break; sleep 0.05
done
setsid "$WPA_RABBITMQ_SERVER" </dev/null >>"$WPA_DIR/server.log" 2>&1 &
server_pid=$!
read -r keep || true
cleanup
"#;

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The `rabbitmq-server` start script to run: `$WPA_RABBITMQ_SERVER`, else
/// Debian's `/usr/lib/rabbitmq/bin/rabbitmq-server` (the `/usr/sbin` one
/// switches to the `rabbitmq` user when run as root), else the one on
/// `PATH`.
fn server_program() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("WPA_RABBITMQ_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let debian = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
    if debian.is_file() {
        return Ok(debian.to_owned());
    }
    on_path("rabbitmq-server").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "cannot find `rabbitmq-server`: install it (Debian: apt-get install -y rabbitmq-server), or set WPA_RABBITMQ_SERVER to its start script",
        )
    })
}

fn epmd_program() -> io::Result<PathBuf> {
    on_path("epmd").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "cannot find `epmd`: install Erlang (Debian: apt-get install -y erlang-base, a dependency of rabbitmq-server)",
        )
    })
}

impl RabbitMqServer {
    /// Starts a node with [`ServerOptions::default`] and waits until it
    /// accepts AMQP and management connections.
    pub fn start() -> io::Result<Self> {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a node with `options`.
    pub fn start_with(options: ServerOptions) -> io::Result<Self> {
        static NODES: AtomicU32 = AtomicU32::new(0);
        let program = server_program()?;
        let epmd = epmd_program()?;
        let [
            amqp_port,
            management_port,
            dist_port,
            epmd_port,
            tls,
            tls_management,
        ] = free_ports()?;
        let sequence = NODES.fetch_add(1, Ordering::Relaxed);
        let node = format!("wpa-{}-{sequence}-{amqp_port}", std::process::id());
        let dir = std::env::temp_dir().join(&node);
        std::fs::create_dir_all(&dir)?;
        let mut server = RabbitMqServer {
            node: format!("{node}@localhost"),
            amqp_port,
            management_port,
            dist_port,
            epmd_port,
            tls_ports: None,
            options,
            program,
            epmd,
            watchdog: None,
            dir,
        };
        if server.options.tls.is_some() {
            server.tls_ports = Some((tls, tls_management));
        }
        server.write_config()?;
        server.spawn()?;
        Ok(server)
    }

    fn write_config(&self) -> io::Result<()> {
        let sample = self.options.sample_seconds.max(1);
        let mut config = format!(
            "listeners.tcp.default = 127.0.0.1:{}\n\
             management.tcp.ip = 127.0.0.1\n\
             management.tcp.port = {}\n\
             collect_statistics_interval = {}\n\
             management.sample_retention_policies.global.minute = {sample}\n\
             management.sample_retention_policies.global.hour = 60\n\
             management.sample_retention_policies.global.day = 1200\n\
             management.sample_retention_policies.basic.minute = {sample}\n\
             management.sample_retention_policies.basic.hour = 60\n\
             management.sample_retention_policies.detailed.10 = {sample}\n",
            self.amqp_port,
            self.management_port,
            self.options.stats_interval.as_millis().max(1),
        );
        if let (Some((amqps, https)), Some(files)) = (self.tls_ports, &self.options.tls) {
            let file = |path: &Path| path.display().to_string();
            let _ = write!(
                config,
                "listeners.ssl.default = 127.0.0.1:{amqps}\n\
                 ssl_options.cacertfile = {ca}\n\
                 ssl_options.certfile = {cert}\n\
                 ssl_options.keyfile = {key}\n\
                 ssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n\
                 management.ssl.ip = 127.0.0.1\n\
                 management.ssl.port = {https}\n\
                 management.ssl.cacertfile = {ca}\n\
                 management.ssl.certfile = {cert}\n\
                 management.ssl.keyfile = {key}\n",
                ca = file(&files.ca),
                cert = file(&files.certificate),
                key = file(&files.key),
            );
        }
        std::fs::write(self.dir.join("rabbitmq.conf"), config)?;
        std::fs::write(self.dir.join("enabled_plugins"), "[rabbitmq_management].\n")
    }

    fn spawn(&mut self) -> io::Result<()> {
        let dir = &self.dir;
        let (child, stdin) = {
            let mut command = Command::new("sh");
            command
                .args(["-c", WATCHDOG])
                .env("WPA_DIR", dir)
                .env("WPA_EPMD", &self.epmd)
                .env("WPA_RABBITMQ_SERVER", &self.program)
                .env("HOME", dir)
                .env("ERL_EPMD_PORT", self.epmd_port.to_string())
                .env("RABBITMQ_NODENAME", &self.node)
                .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
                .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
                .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
                .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
                .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
                .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
                .env("RABBITMQ_LOG_BASE", dir.join("log"))
                .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"))
                .env("RABBITMQ_LOGS", "-")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            let mut child = command.spawn().map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot run `sh` for the RabbitMQ watchdog: {error}"),
                )
            })?;
            let Some(stdin) = child.stdin.take() else {
                let _ = child.kill();
                return Err(io::Error::other("the watchdog has no stdin"));
            };
            (child, stdin)
        };
        self.watchdog = Some((child, stdin));
        self.wait_until_up()
    }

    fn wait_until_up(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.options.start_timeout;
        loop {
            let amqp = TcpStream::connect(("127.0.0.1", self.amqp_port)).is_ok()
                && self
                    .amqps_port()
                    .is_none_or(|port| TcpStream::connect(("127.0.0.1", port)).is_ok());
            // This node's answer, not another test's that took a port
            // between its pick and this node's bind (a node that cannot
            // bind its AMQP listener stops before the management plugin
            // starts).
            let node = format!("\"node\":\"{}\"", self.node);
            if amqp
                && matches!(self.admin("GET", "/api/overview", None),
                    Ok((200, body)) if body.contains(&node))
            {
                return Ok(());
            }
            if let Some((child, _)) = self.watchdog.as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(io::Error::other(format!(
                    "the RabbitMQ watchdog exited with {status}; log: {}",
                    self.log_tail()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "RabbitMQ did not accept AMQP and management connections within {:?}; log: {}",
                        self.options.start_timeout,
                        self.log_tail()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines the node logged.
    #[must_use]
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The AMQP port.
    #[must_use]
    pub fn amqp_port(&self) -> u16 {
        self.amqp_port
    }

    /// The management API's port.
    #[must_use]
    pub fn management_port(&self) -> u16 {
        self.management_port
    }

    /// The AMQPS port, with [`ServerOptions::tls`].
    #[must_use]
    pub fn amqps_port(&self) -> Option<u16> {
        self.tls_ports.map(|(amqps, _)| amqps)
    }

    /// The HTTPS management port, with [`ServerOptions::tls`].
    #[must_use]
    pub fn management_tls_port(&self) -> Option<u16> {
        self.tls_ports.map(|(_, https)| https)
    }

    /// The PEM file of the CA that signed the server's certificate, with
    /// [`ServerOptions::tls`].
    #[must_use]
    pub fn ca_certificate(&self) -> Option<PathBuf> {
        self.options.tls.as_ref().map(|files| files.ca.clone())
    }

    /// `amqps://guest:guest@127.0.0.1:<amqps>/<vhost>/<queue>?management=https://127.0.0.1:<https>`,
    /// with [`ServerOptions::tls`].
    #[must_use]
    pub fn tls_uri(&self, vhost: &str, queue: &str) -> Option<String> {
        let (amqps, https) = self.tls_ports?;
        Some(format!(
            "amqps://guest:guest@127.0.0.1:{amqps}/{}/{}?management=https://127.0.0.1:{https}",
            utf8_percent_encode(vhost, NON_ALPHANUMERIC),
            utf8_percent_encode(queue, NON_ALPHANUMERIC),
        ))
    }

    /// `http://127.0.0.1:<management port>`.
    #[must_use]
    pub fn management_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.management_port)
    }

    /// The node name (`wpa-...@localhost`).
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The statistics interval the node runs with.
    #[must_use]
    pub fn stats_interval(&self) -> Duration {
        self.options.stats_interval
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/<vhost>/<queue>?management=...`,
    /// names percent-encoded.
    #[must_use]
    pub fn uri(&self, vhost: &str, queue: &str) -> String {
        self.uri_as("guest", "guest", vhost, queue)
    }

    /// The same URI with other credentials.
    #[must_use]
    pub fn uri_as(&self, user: &str, password: &str, vhost: &str, queue: &str) -> String {
        format!(
            "amqp://{}:{}@127.0.0.1:{}/{}/{}?management={}",
            utf8_percent_encode(user, NON_ALPHANUMERIC),
            utf8_percent_encode(password, NON_ALPHANUMERIC),
            self.amqp_port,
            utf8_percent_encode(vhost, NON_ALPHANUMERIC),
            utf8_percent_encode(queue, NON_ALPHANUMERIC),
            self.management_url()
        )
    }

    /// One management API request as `guest` (a blocking HTTP/1.1 exchange
    /// on a fresh connection): the status and the body.
    pub fn admin(&self, method: &str, path: &str, body: Option<&str>) -> io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.management_port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let body = body.unwrap_or("");
        let mut request = String::new();
        let _ = write!(
            request,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.management_port,
            body.len()
        );
        stream.write_all(request.as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| io::Error::other(format!("not an HTTP response: {response:.200}")))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    fn admin_ok(&self, method: &str, path: &str, body: Option<&str>) -> io::Result<()> {
        match self.admin(method, path, body)? {
            (200..=299, _) => Ok(()),
            (status, body) => Err(io::Error::other(format!(
                "{method} {path} answered {status}: {body:.300}"
            ))),
        }
    }

    /// Creates a vhost (and gives `guest` every permission on it).
    pub fn add_vhost(&self, vhost: &str) -> io::Result<()> {
        let name = utf8_percent_encode(vhost, NON_ALPHANUMERIC).to_string();
        self.admin_ok("PUT", &format!("/api/vhosts/{name}"), None)?;
        self.set_permissions(vhost, "guest", ".*", ".*", ".*")
    }

    /// Creates (or updates) a user with `tags` (`""`, `"monitoring"`,
    /// `"management"`, `"administrator"`, comma-separated).
    pub fn add_user(&self, user: &str, password: &str, tags: &str) -> io::Result<()> {
        let name = utf8_percent_encode(user, NON_ALPHANUMERIC).to_string();
        let body = format!(
            "{{\"password\":{},\"tags\":{}}}",
            json_string(password),
            json_string(tags)
        );
        self.admin_ok("PUT", &format!("/api/users/{name}"), Some(&body))
    }

    /// Sets a user's `configure`, `write` and `read` regular expressions on
    /// a vhost (`"^$"` matches nothing).
    pub fn set_permissions(
        &self,
        vhost: &str,
        user: &str,
        configure: &str,
        write: &str,
        read: &str,
    ) -> io::Result<()> {
        let path = format!(
            "/api/permissions/{}/{}",
            utf8_percent_encode(vhost, NON_ALPHANUMERIC),
            utf8_percent_encode(user, NON_ALPHANUMERIC)
        );
        let body = format!(
            "{{\"configure\":{},\"write\":{},\"read\":{}}}",
            json_string(configure),
            json_string(write),
            json_string(read)
        );
        self.admin_ok("PUT", &path, Some(&body))
    }

    /// Deletes a queue (its messages with it).
    pub fn delete_queue(&self, vhost: &str, queue: &str) -> io::Result<()> {
        let path = format!(
            "/api/queues/{}/{}",
            utf8_percent_encode(vhost, NON_ALPHANUMERIC),
            utf8_percent_encode(queue, NON_ALPHANUMERIC)
        );
        self.admin_ok("DELETE", &path, None)
    }

    /// Kills the node (`SIGKILL`: a crash; durable queues and persistent
    /// messages survive on disk).
    pub fn stop(&mut self) {
        self.stop_keeping(true);
    }

    fn stop_keeping(&mut self, keep: bool) {
        if let Some((mut child, mut stdin)) = self.watchdog.take() {
            if keep {
                let _ = stdin.write_all(b"keep\n");
            }
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Whether the node runs (it was not stopped).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.watchdog.is_some()
    }

    /// Starts the node again, on the same ports and with the same data.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop_keeping(true);
        self.spawn()
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Drop for RabbitMqServer {
    fn drop(&mut self) {
        let was_running = self.watchdog.is_some();
        self.stop_keeping(false);
        if !was_running {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
