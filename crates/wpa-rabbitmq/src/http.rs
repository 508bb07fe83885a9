//! The management API side: `GET /api/queues/{vhost}/{queue}` on hyper,
//! over a pooled keep-alive connection (HTTP or HTTPS).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use wpa_poller::Backoff;

use crate::amqp::Counters;
use crate::management::{self, MAX_REPLY_BYTES, QUEUE_COLUMNS, QueueStats};
use crate::{Error, RabbitUri};

/// Timeouts and retries of management requests.
#[derive(Debug, Clone)]
pub(crate) struct HttpConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) call_timeout: Duration,
    pub(crate) attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The management client of one queue.
pub(crate) struct ManagementClient {
    /// `GET` target: the absolute URL with the columns asked.
    url: String,
    /// The same without the query, for errors.
    shown: String,
    tls: bool,
    authorization: HeaderValue,
    config: HttpConfig,
    counters: Arc<Counters>,
    client: Option<HttpClient>,
}

impl std::fmt::Debug for ManagementClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementClient")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

/// How one attempt failed.
enum Attempt {
    /// Worth another attempt (connection refused or reset).
    Retry(String),
    /// Final.
    Fail(Error),
}

impl ManagementClient {
    pub(crate) fn new(uri: &RabbitUri, config: HttpConfig, counters: Arc<Counters>) -> Self {
        let management = uri.management();
        let shown = format!(
            "{}{}",
            management.base(),
            management.queue_path(uri.vhost(), uri.queue())
        );
        let credentials = uri.management_credentials();
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            credentials.user(),
            credentials.password()
        ));
        let mut authorization = HeaderValue::from_str(&format!("Basic {token}"))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        authorization.set_sensitive(true);
        ManagementClient {
            url: format!("{shown}?columns={QUEUE_COLUMNS}"),
            shown,
            tls: management.is_tls(),
            authorization,
            config,
            counters,
            client: None,
        }
    }

    fn client(&mut self) -> Result<&HttpClient, Error> {
        if self.client.is_none() {
            let tls = match (&self.config.tls, self.tls) {
                (Some(tls), _) => Arc::clone(tls),
                (None, true) => crate::tls::system()?,
                (None, false) => crate::tls::unused()?,
            };
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(self.config.connect_timeout));
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(Arc::unwrap_or_clone(tls))
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            let client = Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(1)
                .build(connector);
            self.client = Some(client);
        }
        self.client
            .as_ref()
            .ok_or_else(|| Error::ManagementRequest {
                url: self.shown.clone(),
                reason: "no client".to_owned(),
            })
    }

    /// One `GET /api/queues/{vhost}/{queue}`: `None` when the queue (or the
    /// vhost) does not exist.
    pub(crate) async fn queue_stats(&mut self) -> Result<Option<QueueStats>, Error> {
        let uri: Uri = self.url.parse().map_err(|error| Error::ManagementRequest {
            url: self.shown.clone(),
            reason: format!("not a URL: {error}"),
        })?;
        let attempts = self.config.attempts.max(1);
        let mut backoff = Backoff::new(self.config.initial_backoff, self.config.max_backoff);
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff.next_delay()).await;
            }
            match self.attempt(&uri).await {
                Ok(stats) => return Ok(stats),
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Retry(reason)) => {
                    tracing::debug!(url = %self.shown, attempt, %reason, "management request failed");
                    last = reason;
                }
            }
        }
        Err(Error::ManagementRequest {
            url: self.shown.clone(),
            reason: format!("{last} ({attempts} attempts)"),
        })
    }

    async fn attempt(&mut self, uri: &Uri) -> Result<Option<QueueStats>, Attempt> {
        let timeout = self.config.call_timeout;
        let shown = self.shown.clone();
        let request = Request::get(uri.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(Empty::<Bytes>::new())
            .map_err(|error| {
                Attempt::Fail(Error::ManagementRequest {
                    url: shown.clone(),
                    reason: error.to_string(),
                })
            })?;
        let counters = Arc::clone(&self.counters);
        let client = self.client().map_err(Attempt::Fail)?;
        Counters::bump(&counters.management_gets);
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|error| Attempt::Retry(describe(&error)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_REPLY_BYTES)
                .collect()
                .await
                .map_err(|error| Attempt::Retry(format!("reading the reply: {error}")))?
                .to_bytes();
            Ok::<_, Attempt>((status, body))
        };
        let (status, body) = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(Attempt::Fail(Error::Timeout {
                    address: shown,
                    operation: "GET /api/queues",
                    timeout,
                }));
            }
        };
        match status {
            StatusCode::OK => QueueStats::from_json(&body)
                .map(Some)
                .map_err(Attempt::Fail),
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(Attempt::Fail(Error::ManagementUnauthorized {
                    url: shown,
                    status: status.as_u16(),
                    reason: management::error_reason(&body),
                }))
            }
            status => Err(Attempt::Fail(Error::ManagementStatus {
                url: shown,
                status: status.as_u16(),
                body: management::error_reason(&body),
            })),
        }
    }
}

/// A hyper client error with its causes (hyper's own message is terse).
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
