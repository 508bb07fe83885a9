//! `workerpodautoscaler watch`, the built binary, against a real Redis list
//! driven by a plain RESP client: the wake-up at zero replicas decides the
//! scale up at once and leaves the message where it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use wpa_redis::testing::RedisServer;

mod common;

use common::Watch;

/// One RESP command; its reply's first line (and a bulk string's body).
fn command(stream: &mut BufReader<TcpStream>, args: &[&str]) -> String {
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request += &format!("${}\r\n{arg}\r\n", arg.len());
    }
    stream.get_mut().write_all(request.as_bytes()).unwrap();
    let mut line = String::new();
    stream.read_line(&mut line).unwrap();
    if let Some(len) = line
        .strip_prefix('$')
        .and_then(|l| l.trim().parse::<usize>().ok())
    {
        let mut body = String::new();
        while body.len() < len + 2 {
            stream.read_line(&mut body).unwrap();
        }
        return body.trim_end().to_owned();
    }
    line.trim_end().to_owned()
}

#[test]
fn scales_up_from_zero_on_the_first_message_without_taking_it() {
    let server = RedisServer::start()
        .expect("redis-server must be installed (Debian: apt-get install -y redis-server)");
    let watch = Watch::start(&server.uri("0/list/e2e"), &[], |_| {});
    let first = watch.next(Duration::from_secs(10));
    assert_eq!(first["queueMessages"], 0);
    assert_eq!(first["desiredReplicas"], 0);

    let mut client = BufReader::new(TcpStream::connect(server.address()).unwrap());
    // The watch blocks in BLMOVE on the list (a blocked client).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !command(&mut client, &["INFO", "clients"]).contains("blocked_clients:1") {
        assert!(Instant::now() < deadline, "watch never blocked on the list");
        std::thread::sleep(Duration::from_millis(10));
    }
    let put_at = Instant::now();
    assert_eq!(
        command(&mut client, &["LPUSH", "e2e", "first", "second"]),
        ":2"
    );
    let up = watch.until(Duration::from_secs(5), |d| {
        d["scaleOperation"] == "scale-up"
    });
    let latency = put_at.elapsed();
    assert_eq!(up["queueMessages"], 2, "{up}");
    assert_eq!(up["desiredReplicas"], 1, "{up}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    // Both messages are still there, in order: a worker's BRPOP gets the
    // first one pushed.
    assert_eq!(command(&mut client, &["LLEN", "e2e"]), ":2");
    assert_eq!(command(&mut client, &["RPOP", "e2e"]), "first");
    assert_eq!(command(&mut client, &["RPOP", "e2e"]), "second");
    assert_eq!(watch.terminate(), 0);
}
