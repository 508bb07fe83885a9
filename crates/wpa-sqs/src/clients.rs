//! AWS configuration and one pair of SQS + CloudWatch clients per region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::{Error, QueueUrl, SqsOptions, SqsQueue};

/// The SDK behaviour version this crate is built and tested against
/// (pinned, so an SDK upgrade cannot silently change retries or timeouts).
#[must_use]
pub fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// Connect timeout of every call (the pinned behaviour version's default).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The clients of one region.
#[derive(Debug, Clone)]
pub(crate) struct RegionClients {
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) cloudwatch: aws_sdk_cloudwatch::Client,
}

/// Shared AWS configuration (credentials chain, HTTP client, endpoints) and
/// a client pool keyed by region. Cheap to clone; share one between all
/// queues.
///
/// Clients for [`SqsOptions::regions`] are made up front; a queue in any
/// other region gets its clients on first use (the reference panics there).
#[derive(Debug, Clone)]
pub struct SqsClients {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sdk: SdkConfig,
    options: SqsOptions,
    endpoint_override: bool,
    default_region: Option<String>,
    by_region: Mutex<HashMap<String, RegionClients>>,
}

/// The HTTPS client of every SQS and CloudWatch client: rustls with ring
/// (the TLS stack kube uses too), and the proxy from the environment
/// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, lower case too),
/// as the Go SDK of the reference honours it. `build_https` would ignore
/// the environment; this builds the same connector with the proxy set (and
/// the builder caches one connector per timeout setting, as `build_https`
/// does, so connections are reused).
fn http_client() -> aws_sdk_sqs::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = aws_smithy_http_client::Connector::builder();
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector
            .proxy_config(ProxyConfig::from_env())
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build()
    })
}

impl SqsClients {
    /// Loads the SDK's default credential chain (environment, shared
    /// profile, web identity / IRSA, ECS container and EC2 instance roles)
    /// with a rustls (ring) HTTPS client and the pinned behaviour version.
    pub async fn new(options: SqsOptions) -> SqsClients {
        SqsClients::from_loader(aws_config::defaults(behavior_version()), options).await
    }

    /// Like [`SqsClients::new`], from a caller's loader (tests use it for
    /// fixed credentials: `aws_config::defaults(v).test_credentials()`).
    /// The HTTP client, region, timeouts and retries are set here.
    pub async fn from_loader(loader: ConfigLoader, options: SqsOptions) -> SqsClients {
        let default_region = std::env::var("AWS_REGION")
            .ok()
            .filter(|r| !r.trim().is_empty())
            .or_else(|| options.regions.first().cloned());
        let http = http_client();
        let sdk = loader
            .http_client(http)
            // A region for the credential chain itself (STS for web
            // identity); each client then gets its queue's region.
            .region(Region::new(
                default_region.clone().unwrap_or_else(|| "us-east-1".into()),
            ))
            .timeout_config(timeouts(options.request_timeout))
            .retry_config(RetryConfig::standard().with_max_attempts(options.max_attempts.max(1)))
            .load()
            .await;
        let endpoint_override = options.endpoint.is_some() || env_endpoint_override();
        let clients = SqsClients {
            inner: Arc::new(Inner {
                sdk,
                options,
                endpoint_override,
                default_region,
                by_region: Mutex::new(HashMap::new()),
            }),
        };
        for region in &clients.inner.options.regions {
            clients.region_clients(region);
        }
        clients
    }

    /// The options these clients were made with.
    #[must_use]
    pub fn options(&self) -> &SqsOptions {
        &self.inner.options
    }

    /// Whether SQS calls go to an overridden endpoint (option or
    /// environment), so that any host is accepted in queue URLs.
    #[must_use]
    pub fn endpoint_override(&self) -> bool {
        self.inner.endpoint_override
    }

    /// Regions that have clients so far.
    #[must_use]
    pub fn regions(&self) -> Vec<String> {
        let map = self
            .inner
            .by_region
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut regions: Vec<String> = map.keys().cloned().collect();
        regions.sort();
        regions
    }

    /// The region of queue URLs that name none: `AWS_REGION`, else the
    /// first of [`SqsOptions::regions`].
    #[must_use]
    pub fn default_region(&self) -> Option<&str> {
        self.inner.default_region.as_deref()
    }

    /// The SQS client of `region` (made on demand), for harnesses and
    /// tools that share this configuration.
    #[must_use]
    pub fn sqs_client(&self, region: &str) -> aws_sdk_sqs::Client {
        self.region_clients(region).sqs
    }

    /// The CloudWatch client of `region` (made on demand).
    #[must_use]
    pub fn cloudwatch_client(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        self.region_clients(region).cloudwatch
    }

    /// Parses `url` and makes its queue, with clients of its region.
    pub fn queue(&self, url: &str) -> Result<SqsQueue, Error> {
        let url = QueueUrl::parse(url, self.inner.endpoint_override)?;
        let region = match url.region() {
            Some(region) => region.to_owned(),
            None => self
                .inner
                .default_region
                .clone()
                .ok_or_else(|| Error::NoRegion {
                    queue: url.as_str().to_owned(),
                })?,
        };
        let clients = self.region_clients(&region);
        Ok(SqsQueue::from_parts(
            url,
            region,
            clients.sqs,
            clients.cloudwatch,
            &self.inner.options,
        ))
    }

    pub(crate) fn region_clients(&self, region: &str) -> RegionClients {
        let mut map = self
            .inner
            .by_region
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(clients) = map.get(region) {
            return clients.clone();
        }
        let options = &self.inner.options;
        let mut sqs = aws_sdk_sqs::config::Builder::from(&self.inner.sdk)
            .region(Region::new(region.to_owned()));
        if let Some(endpoint) = &options.endpoint {
            sqs = sqs.endpoint_url(endpoint);
        }
        let mut cloudwatch = aws_sdk_cloudwatch::config::Builder::from(&self.inner.sdk)
            .region(Region::new(region.to_owned()));
        if let Some(endpoint) = options
            .cloudwatch_endpoint
            .as_ref()
            .or(options.endpoint.as_ref())
        {
            cloudwatch = cloudwatch.endpoint_url(endpoint);
        }
        let clients = RegionClients {
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(cloudwatch.build()),
        };
        map.insert(region.to_owned(), clients.clone());
        clients
    }
}

/// Timeouts of a call that does not block on the server: a connect timeout
/// and a per-attempt timeout.
pub(crate) fn timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(attempt)
        .build()
}

/// Whether the SDK's environment overrides the SQS endpoint.
fn env_endpoint_override() -> bool {
    let ignored = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    !ignored && (set("AWS_ENDPOINT_URL_SQS") || set("AWS_ENDPOINT_URL"))
}
