//! A throwaway beanstalkd server for tests, benches and examples.

use std::io;
use std::process::{Child, Command, Stdio};
use wpa_poller::testing::{start_on_free_ports, wait_until_serving};

/// A `beanstalkd -l 127.0.0.1 -p <free port>` child process, killed on drop.
///
/// A missing `beanstalkd` binary is an error that says how to install it:
/// tests must fail on it, never skip.
#[derive(Debug)]
pub struct BeanstalkdServer {
    child: Option<Child>,
    port: u16,
}

impl BeanstalkdServer {
    /// Starts a server on a free port and waits until it listens there
    /// (its own listener, not another server's: [`wait_until_serving`]).
    pub fn start() -> io::Result<Self> {
        let mut server = BeanstalkdServer {
            child: None,
            port: 0,
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

    /// `beanstalk://127.0.0.1:<port>/<tube>`.
    #[must_use]
    pub fn uri(&self, tube: &str) -> String {
        format!("beanstalk://127.0.0.1:{}/{tube}", self.port)
    }

    /// Kills the server (all jobs are lost: no binlog).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port; an error when it cannot
    /// bind it.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> io::Result<()> {
        let mut child = Command::new("beanstalkd")
            .args(["-l", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!(
                        "cannot run `beanstalkd` ({error}): install it (Debian: apt-get install -y beanstalkd)"
                    ),
                )
            })?;
        // Its own listener: another server may hold a port until this one
        // fails to bind it. A child that exited stays for `stop` to reap.
        let started = wait_until_serving(&mut child, &[self.port], "beanstalkd");
        self.child = Some(child);
        started
    }
}

impl Drop for BeanstalkdServer {
    fn drop(&mut self) {
        self.stop();
    }
}
