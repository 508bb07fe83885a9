//! For the adapters' throwaway test servers (`wpa_*::testing`).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

#[cfg(feature = "test-certificates")]
mod certificates;
#[cfg(feature = "test-certificates")]
pub use certificates::TestCertificates;

/// `N` distinct free loopback ports: every listener is held until all are
/// read (bound and dropped one at a time, the kernel may hand out the same
/// port twice, and a server given two of them then fails on its own port).
/// Another process may still take one before the server binds it.
///
/// # Errors
///
/// The operating system refused a loopback listener.
pub fn free_ports<const N: usize>() -> io::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// Attempts at starting a server on fresh ports
/// ([`start_on_free_ports`]).
pub const START_ATTEMPTS: usize = 3;

/// Runs `start` on fresh free ports until it succeeds, at most
/// [`START_ATTEMPTS`] times while it fails with [`io::ErrorKind::AddrInUse`]:
/// another process may take a free port between its pick and the server's
/// bind, and the server then exits.
///
/// # Errors
///
/// The last error of `start`, or the operating system refused a loopback
/// listener.
pub fn start_on_free_ports<const N: usize>(
    mut start: impl FnMut([u16; N]) -> io::Result<()>,
) -> io::Result<()> {
    let mut attempt = 1;
    loop {
        match start(free_ports()?) {
            Err(error) if attempt < START_ATTEMPTS && error.kind() == io::ErrorKind::AddrInUse => {
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// How long [`wait_until_serving`] waits for a server to listen.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until `child`, the server `name`, listens on every one of `ports`
/// ([`serves`]).
///
/// # Errors
///
/// [`io::ErrorKind::AddrInUse`] when it exits first (a port taken: see
/// [`start_on_free_ports`]; or a bad configuration), or
/// [`io::ErrorKind::TimedOut`] after [`START_TIMEOUT`].
pub fn wait_until_serving(child: &mut Child, ports: &[u16], name: &str) -> io::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if serves(child.id(), ports) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{name} exited at start with {status} (a port of {ports:?} taken, or a bad configuration?)"
                ),
            ));
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{name} did not listen on {ports:?} within {START_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the server process `pid` listens on every one of `ports` on
/// loopback: its own listening sockets, not just any listener. A port
/// found free may be taken by another test's server before this one binds
/// it; a connect would then succeed and the test talk to the wrong server
/// (seen in CI with moto and a beanstalkd), while this one exits.
///
/// On Linux the listeners' owner is read from `/proc/net/tcp{,6}` and
/// `/proc/<pid>/fd`; elsewhere (no `/proc`) any listener on the port
/// counts.
#[must_use]
pub fn serves(pid: u32, ports: &[u16]) -> bool {
    if !Path::new("/proc/net/tcp").exists() {
        return ports
            .iter()
            .all(|&port| TcpStream::connect(("127.0.0.1", port)).is_ok());
    }
    let Ok(sockets) = socket_inodes(pid) else {
        return false;
    };
    ports.iter().all(|&port| {
        listening_inodes(port)
            .iter()
            .any(|inode| sockets.contains(inode))
    })
}

/// The inodes of the sockets process `pid` holds open (`socket:[N]`
/// links in `/proc/<pid>/fd`).
fn socket_inodes(pid: u32) -> io::Result<Vec<u64>> {
    let mut inodes = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        // A descriptor closed while listed is skipped, not an error.
        let Ok(target) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        let inode: Option<u64> = target
            .to_str()
            .and_then(|link| link.strip_prefix("socket:["))
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|number| number.parse().ok());
        inodes.extend(inode);
    }
    Ok(inodes)
}

/// The inodes of the TCP sockets listening on `port` (any local address).
fn listening_inodes(port: u16) -> Vec<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| listener_of(line, port))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A `/proc/net/tcp` row's inode when it is a listener (state `0A`) on
/// `port`: columns `sl local_address rem_address st ... uid timeout inode`,
/// the local address `HEXADDR:HEXPORT`.
fn listener_of(line: &str, port: u16) -> Option<u64> {
    let columns: Vec<&str> = line.split_whitespace().collect();
    let (_, local_port) = columns.get(1)?.rsplit_once(':')?;
    let listening = *columns.get(3)? == "0A";
    (listening && u16::from_str_radix(local_port, 16).ok()? == port)
        .then(|| columns.get(9)?.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn free_ports_are_distinct() {
        let ports = super::free_ports::<64>().unwrap();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        assert!(ports.iter().all(|&port| port > 0));
    }

    #[test]
    fn serves_tells_this_process_listener_from_another_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(super::serves(std::process::id(), &[port]));
        // A process that holds no socket does not serve the port, though a
        // connect to it succeeds.
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(!super::serves(other.id(), &[port]));
        other.kill().unwrap();
        other.wait().unwrap();
        // Every port must be served, and a closed one is not.
        let [closed] = super::free_ports::<1>().unwrap();
        assert!(!super::serves(std::process::id(), &[port, closed]));
        drop(listener);
        assert!(!super::serves(std::process::id(), &[port]));
    }

    #[test]
    fn listener_rows_of_proc_net_tcp() {
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
        let listening = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0";
        let connected = "   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0 20 4 30 10 -1";
        let six = "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4444 1 0 100 0 0 10 0";
        assert_eq!(super::listener_of(listening, 8080), Some(4242));
        assert_eq!(super::listener_of(listening, 8081), None);
        assert_eq!(super::listener_of(connected, 8080), None);
        assert_eq!(super::listener_of(six, 8080), Some(4444));
        assert_eq!(super::listener_of(header, 8080), None);
        assert_eq!(super::listener_of("", 8080), None);
    }

    #[test]
    fn start_on_free_ports_retries_only_taken_ports_and_at_most_the_attempts() {
        use std::io::{Error, ErrorKind};
        let mut tried = Vec::new();
        let taken = super::start_on_free_ports(|[port]: [u16; 1]| {
            tried.push(port);
            Err(Error::new(ErrorKind::AddrInUse, "taken"))
        });
        assert_eq!(taken.unwrap_err().kind(), ErrorKind::AddrInUse);
        assert_eq!(tried.len(), super::START_ATTEMPTS);
        assert!(tried.iter().all(|&port| port > 0));

        let mut calls = 0;
        let other = super::start_on_free_ports(|_: [u16; 2]| {
            calls += 1;
            Err(Error::other("bad configuration"))
        });
        assert_eq!(other.unwrap_err().to_string(), "bad configuration");
        assert_eq!(calls, 1);

        let mut calls = 0;
        super::start_on_free_ports(|_: [u16; 1]| {
            calls += 1;
            if calls == 1 {
                Err(Error::new(ErrorKind::AddrInUse, "taken"))
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(calls, 2);
    }

    #[test]
    fn wait_until_serving_says_a_server_exited_before_listening() {
        let [port] = super::free_ports::<1>().unwrap();
        let mut exits = std::process::Command::new("true").spawn().unwrap();
        let error = super::wait_until_serving(&mut exits, &[port], "true").unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
        assert!(
            error.to_string().starts_with("true exited at start"),
            "{error}"
        );
    }
}
