//! Properties of the pure codec: no panic on any bytes, and a reply stream
//! split anywhere decodes exactly as the whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use wpa_beanstalkd::{Command, Reply, TubeName, parse_reply};
use wpa_fuzz_targets::decode_in_pieces as decode;

/// The wire form of a reply (what a server would send).
fn wire(reply: &Reply) -> Vec<u8> {
    let mut out = match reply {
        Reply::Ok(body) => format!("OK {}\r\n", body.len()).into_bytes(),
        Reply::Reserved { id, body } => format!("RESERVED {id} {}\r\n", body.len()).into_bytes(),
        Reply::Found { id, body } => format!("FOUND {id} {}\r\n", body.len()).into_bytes(),
        Reply::Inserted(id) => format!("INSERTED {id}\r\n").into_bytes(),
        Reply::Buried(Some(id)) => format!("BURIED {id}\r\n").into_bytes(),
        Reply::Kicked(Some(n)) => format!("KICKED {n}\r\n").into_bytes(),
        Reply::Watching(n) => format!("WATCHING {n}\r\n").into_bytes(),
        Reply::Using(tube) => format!("USING {tube}\r\n").into_bytes(),
        other => format!("{}\r\n", other.keyword()).into_bytes(),
    };
    if let Reply::Ok(body) | Reply::Reserved { body, .. } | Reply::Found { body, .. } = reply {
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn reply() -> impl Strategy<Value = Reply> {
    let body = proptest::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        body.clone().prop_map(Reply::Ok),
        (any::<u64>(), body.clone()).prop_map(|(id, body)| Reply::Reserved { id, body }),
        (any::<u64>(), body).prop_map(|(id, body)| Reply::Found { id, body }),
        any::<u64>().prop_map(Reply::Inserted),
        proptest::option::of(any::<u64>()).prop_map(Reply::Buried),
        proptest::option::of(any::<u64>()).prop_map(Reply::Kicked),
        any::<u64>().prop_map(Reply::Watching),
        "[a-z0-9][a-z0-9_.;$()+/-]{0,30}".prop_map(Reply::Using),
        Just(Reply::Released),
        Just(Reply::Deleted),
        Just(Reply::Touched),
        Just(Reply::Paused),
        Just(Reply::TimedOut),
        Just(Reply::DeadlineSoon),
        Just(Reply::NotFound),
        Just(Reply::NotIgnored),
        Just(Reply::ExpectedCrlf),
        Just(Reply::JobTooBig),
        Just(Reply::Draining),
        Just(Reply::OutOfMemory),
        Just(Reply::InternalError),
        Just(Reply::BadFormat),
        Just(Reply::UnknownCommand),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_reply(&bytes);
        let _ = decode(&bytes, &[]);
    }

    #[test]
    fn arbitrary_bytes_split_anywhere_decode_the_same(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        prop_assert_eq!(decode(&bytes, &cuts), decode(&bytes, &[]));
    }

    #[test]
    fn replies_round_trip_split_anywhere(
        replies in proptest::collection::vec(reply(), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        garbage in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes: Vec<u8> = replies.iter().flat_map(wire).collect();
        let (decoded, errored) = decode(&bytes, &cuts);
        prop_assert_eq!(&decoded, &replies);
        prop_assert!(!errored);
        bytes.extend_from_slice(&garbage);
        let whole = decode(&bytes, &[]);
        prop_assert_eq!(decode(&bytes, &cuts), whole.clone());
        prop_assert!(whole.0.starts_with(&replies));
    }

    #[test]
    fn every_prefix_is_incomplete_not_an_error(reply in reply()) {
        let bytes = wire(&reply);
        for end in 0..bytes.len() {
            prop_assert_eq!(parse_reply(&bytes[..end]).unwrap(), None);
        }
        prop_assert_eq!(parse_reply(&bytes).unwrap(), Some((reply, bytes.len())));
    }

    #[test]
    fn encoded_commands_are_one_line_plus_body(
        tube in "[a-zA-Z0-9_][a-zA-Z0-9_.;$()+/-]{0,50}",
        id in any::<u64>(),
        priority in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let tube: TubeName = tube.parse().unwrap();
        for command in [
            Command::Watch(&tube),
            Command::Ignore(&tube),
            Command::Use(&tube),
            Command::StatsTube(&tube),
            Command::StatsJob(id),
            Command::Release { id, priority, delay: 0 },
            Command::ReserveWithTimeout(priority),
            Command::Delete(id),
        ] {
            let mut out = Vec::new();
            command.encode(&mut out);
            prop_assert!(out.ends_with(b"\r\n"));
            prop_assert_eq!(out.windows(2).filter(|w| w == b"\r\n").count(), 1);
            prop_assert!(out.starts_with(command.name().as_bytes()));
        }
        let mut out = Vec::new();
        Command::Put { priority, delay: 0, ttr: 60, body: &body }.encode(&mut out);
        let header = format!("put {priority} 0 60 {}\r\n", body.len());
        prop_assert!(out.starts_with(header.as_bytes()));
        prop_assert_eq!(out.len(), header.len() + body.len() + 2);
    }
}

#[test]
fn malformed_replies_are_errors() {
    for bad in [
        &b"OK\r\n"[..],
        b"OK -1\r\n",
        b"OK 1 2\r\n",
        b"OK 99999999999999999999999\r\n",
        b"OK 999999999\r\n",
        b"OK 1\r\nab\r\n",
        b"RESERVED 1\r\n",
        b"INSERTED x\r\n",
        b"TIMED_OUT now\r\n",
        b"HELLO\r\n",
        b"timed_out\r\n",
        b"\r\n",
        b"TIMED_OUT\n",
        b"TIMED\rOUT\r\n",
        b"\xff\xfe",
    ] {
        assert!(
            parse_reply(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(parse_reply(&[b'A'; 2000]).is_err());
    assert_eq!(parse_reply(&[b'A'; 1000]).unwrap(), None);
}
