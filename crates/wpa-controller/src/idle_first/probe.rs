//! The busy probe over HTTP/1: `GET <path>` on one pod, under a timeout.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper::header::HOST;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The most of a body read: `idle` and `busy` are 4 bytes.
const MAX_BODY: usize = 64;

/// What a pod answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 200 with the body `idle`: holds no job.
    Idle,
    /// 200 with the body `busy`: holds a job.
    Busy,
    /// Anything else: no connection, a timeout, another status or body
    /// (why, for the log). Counts as busy.
    Unanswered(String),
}

/// Asks `address` for `path`, with `timeout` for the whole exchange.
pub(crate) async fn ask(address: SocketAddr, path: &str, timeout: Duration) -> Answer {
    match tokio::time::timeout(timeout, exchange(address, path)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(why)) => Answer::Unanswered(why),
        Err(_) => Answer::Unanswered(format!("no answer within {timeout:?}")),
    }
}

async fn exchange(address: SocketAddr, path: &str) -> Result<Answer, String> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let request = Request::get(path)
        .header(HOST, address.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("building the request: {e}"))?;
    let response = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("sending the request: {e}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    // The connection is driven beside the exchange, and dropped with it.
    let (status, body) = tokio::select! {
        result = response => result?,
        result = connection => {
            return Err(match result {
                Ok(()) => "the connection closed before an answer".to_owned(),
                Err(e) => format!("connection: {e}"),
            });
        }
    };
    Ok(read(status.as_u16(), &body))
}

/// The answer a status and body mean: only 200 with `idle` (any case,
/// surrounding whitespace ignored) is idle.
pub(crate) fn read(status: u16, body: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(body);
    let word = text.trim();
    match status {
        200 if word.eq_ignore_ascii_case("idle") => Answer::Idle,
        200 if word.eq_ignore_ascii_case("busy") => Answer::Busy,
        200 => Answer::Unanswered(format!("body {word:?} is neither idle nor busy")),
        status => Answer::Unanswered(format!("status {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_200_idle_is_idle() {
        assert_eq!(read(200, b"idle"), Answer::Idle);
        assert_eq!(read(200, b" IDLE\n"), Answer::Idle);
        assert_eq!(read(200, b"busy"), Answer::Busy);
        assert!(matches!(read(200, b"ok"), Answer::Unanswered(_)));
        assert!(matches!(read(200, b""), Answer::Unanswered(_)));
        assert!(matches!(read(503, b"idle"), Answer::Unanswered(_)));
        assert!(matches!(read(404, b""), Answer::Unanswered(_)));
    }
}
