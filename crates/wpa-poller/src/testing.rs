//! For the adapters' throwaway test servers (`wpa_*::testing`).

use std::io;
use std::net::TcpListener;

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
}
