//! A small counting HTTP proxy for the SQS benches: it forwards SQS calls
//! (JSON protocol) to an upstream server (moto), counts each by its
//! `X-Amz-Target` header, and answers CloudWatch's RPC v2 CBOR
//! `GetMetricData` itself with an empty, valid result (moto does not serve
//! it). One request per connection. Hand-written rather than built on an
//! HTTP crate: it must see and count requests byte for byte, including
//! ones a client abandons mid-flight (a cancelled long poll).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A bench step's result.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The SQS call a poll starts with.
pub const GET_ATTRIBUTES: &str = "AmazonSQS.GetQueueAttributes";
/// The SQS call of a wake-up probe.
pub const RECEIVE: &str = "AmazonSQS.ReceiveMessage";

/// Calls seen by the proxy, by operation, and the ReceiveMessage calls in
/// flight (to know when the poller blocks in a wake-up probe).
#[derive(Default)]
pub struct Counter {
    /// Calls by operation (`AmazonSQS.GetQueueAttributes`, `CloudWatch.GetMetricData`, ...).
    pub calls: Mutex<BTreeMap<String, u64>>,
    /// ReceiveMessage calls forwarded and not answered yet.
    pub receives_in_flight: AtomicU64,
    /// Polls started (GetQueueAttributes or ReceiveMessage calls).
    pub poll_starts: AtomicU64,
    /// When the last poll started.
    pub last_poll_start: Mutex<Option<Instant>>,
    /// Woken at each poll start.
    pub notify: tokio::sync::Notify,
}

impl Counter {
    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The count of one operation.
    pub fn get(&self, call: &str) -> u64 {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(call)
            .copied()
            .unwrap_or(0)
    }
}

/// A running proxy.
pub struct Proxy {
    /// Where it listens.
    pub address: SocketAddr,
    /// What it counted.
    pub counter: Arc<Counter>,
}

impl Proxy {
    /// Starts one on a free loopback port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> BenchResult<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let counter = Arc::new(Counter::default());
        let shared = Arc::clone(&counter);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = Arc::clone(&shared);
                tokio::spawn(async move {
                    // A client hanging up (a cancelled wake-up probe) is
                    // expected; anything else is reported.
                    if let Err(error) = serve(stream, upstream, &counter).await {
                        let hung_up = error.downcast_ref::<std::io::Error>().is_some_and(|e| {
                            matches!(
                                e.kind(),
                                std::io::ErrorKind::BrokenPipe
                                    | std::io::ErrorKind::ConnectionReset
                            )
                        });
                        if !hung_up {
                            eprintln!("proxy: {error}");
                        }
                    }
                });
            }
        });
        Ok(Proxy { address, counter })
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Waits until a poll starts (a GetQueueAttributes or ReceiveMessage
    /// call reaches the proxy) after this call.
    pub async fn next_poll_start(&self) -> BenchResult<()> {
        let before = self.counter.poll_starts.load(Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let notified = self.counter.notify.notified();
                if self.counter.poll_starts.load(Ordering::SeqCst) > before {
                    return;
                }
                notified.await;
            }
        })
        .await
        .map_err(|_| "no poll reached the proxy within 60 s")?;
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits an HTTP message into its head lines (without the blank line) and
/// the offset of its body.
fn split_head(message: &[u8]) -> Option<(Vec<String>, usize)> {
    let end = find(message, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&message[..end]);
    Some((head.split("\r\n").map(str::to_owned).collect(), end + 4))
}

fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines.iter().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// The head again, with `Connection: close` instead of any Connection header.
fn closing_head(lines: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let is_connection = i > 0
            && line
                .split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// One request per connection: read it, count it, answer (CloudWatch) or
/// forward to moto, then close.
async fn serve(mut client: TcpStream, upstream: SocketAddr, counter: &Counter) -> BenchResult<()> {
    let mut buffer = Vec::new();
    let (lines, body_at) = loop {
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(()); // an idle connection closed
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(split) = split_head(&buffer) {
            break split;
        }
    };
    let length: usize = header(&lines, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < body_at + length {
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err("request body cut short".into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let path = lines
        .first()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    let call = match (
        header(&lines, "x-amz-target"),
        path.rsplit_once("/operation/"),
    ) {
        (Some(target), _) => target.to_owned(),
        (None, Some((_, operation))) => format!("CloudWatch.{operation}"),
        (None, None) => format!("other {path}"),
    };
    *counter
        .calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(call.clone())
        .or_default() += 1;
    let receive = call == RECEIVE;
    if receive {
        counter.receives_in_flight.fetch_add(1, Ordering::SeqCst);
    }
    if receive || call == GET_ATTRIBUTES {
        *counter
            .last_poll_start
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        counter.poll_starts.fetch_add(1, Ordering::SeqCst);
        counter.notify.notify_waiters();
    }
    if call.starts_with("CloudWatch.") {
        // An empty GetMetricData result in RPC v2 CBOR: the map {} (0xa0).
        let response = b"HTTP/1.1 200 OK\r\nsmithy-protocol: rpc-v2-cbor\r\nContent-Type: application/cbor\r\nContent-Length: 1\r\nConnection: close\r\n\r\n\xa0";
        client.write_all(response).await?;
        client.shutdown().await?;
        return Ok(());
    }
    let forwarded = async {
        let mut moto = TcpStream::connect(upstream).await?;
        moto.write_all(&closing_head(&lines)).await?;
        moto.write_all(&buffer[body_at..body_at + length]).await?;
        let mut response = Vec::new();
        moto.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    }
    .await;
    if receive {
        counter.receives_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
    let response = forwarded?;
    let (response_lines, response_body) =
        split_head(&response).ok_or("moto sent no complete response head")?;
    client.write_all(&closing_head(&response_lines)).await?;
    client.write_all(&response[response_body..]).await?;
    client.shutdown().await?;
    Ok(())
}
