//! The `host[:port]` part of a queue URI, which every adapter's URI has.

/// A URI's `host[:port]` or `[ipv6][:port]`, split: the host without its
/// brackets, whether it had them, and the port's text if a `:` follows.
/// What a host may hold otherwise, its default and the port's default
/// are each adapter's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort<'a> {
    /// The host, empty if none was given.
    pub host: &'a str,
    /// It was in brackets: an IPv6 address (hex digits, `:` and `.`).
    pub bracketed: bool,
    /// What follows the host's `:`, unchecked (may be empty).
    pub port: Option<&'a str>,
}

/// Splits `hostport`; a bracketed host must be non-empty and made of hex
/// digits, `:` and `.`, with nothing but `:port` after it.
pub fn split_host_port(hostport: &str) -> Result<HostPort<'_>, &'static str> {
    let Some(bracketed) = hostport.strip_prefix('[') else {
        let (host, port) = match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        };
        return Ok(HostPort {
            host,
            bracketed: false,
            port,
        });
    };
    let (host, after) = bracketed
        .split_once(']')
        .ok_or("unterminated [ in the host")?;
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    {
        return Err("invalid IPv6 host");
    }
    let port = match after {
        "" => None,
        _ => Some(
            after
                .strip_prefix(':')
                .ok_or("unexpected characters after the IPv6 host")?,
        ),
    };
    Ok(HostPort {
        host,
        bracketed: true,
        port,
    })
}

/// A port's text as a port: digits, 1 to 65535.
pub fn parse_port(text: &str) -> Result<u16, &'static str> {
    const BAD_PORT: &str = "the port must be a number from 1 to 65535";
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_PORT);
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(BAD_PORT),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hosts_ports_and_brackets() {
        let split = |text| split_host_port(text).map(|h| (h.host, h.bracketed, h.port));
        assert_eq!(split("mq:5672"), Ok(("mq", false, Some("5672"))));
        assert_eq!(split("mq"), Ok(("mq", false, None)));
        assert_eq!(split(""), Ok(("", false, None)));
        assert_eq!(split("[::1]:6379"), Ok(("::1", true, Some("6379"))));
        assert_eq!(split("[fe80::1]"), Ok(("fe80::1", true, None)));
        assert_eq!(split("[::1"), Err("unterminated [ in the host"));
        assert_eq!(split("[]:1"), Err("invalid IPv6 host"));
        assert_eq!(split("[::g]"), Err("invalid IPv6 host"));
        assert_eq!(
            split("[::1]x"),
            Err("unexpected characters after the IPv6 host")
        );
        assert_eq!(parse_port("6379"), Ok(6379));
        for bad in ["", "0", "65536", "99999999999999999999", "+1", "1a"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_port_prints_back(port in 1..=u16::MAX) {
            let printed = port.to_string();
            prop_assert_eq!(parse_port(&printed), Ok(port));
            let text = format!("[::1]:{printed}");
            let split = split_host_port(&text).unwrap();
            prop_assert_eq!((split.host, split.port), ("::1", Some(printed.as_str())));
        }
    }
}
