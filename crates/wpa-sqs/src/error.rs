//! The one error type of this crate, classified for backoff.

use std::time::Duration;

#[cfg(feature = "client")]
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Why a queue could not be set up or polled.
///
/// Every variant names the queue (or the URL) and says what to check. Use
/// [`Error::kind`] to decide how to retry: nothing here is fatal to the
/// process, and no variant is ever produced by a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The queue URL cannot be used.
    #[error("queue URL {url:?} is not usable: {reason}")]
    InvalidQueueUrl {
        /// The URL given (truncated when very long).
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The URL names no region and none is configured.
    #[error(
        "queue {queue}: its URL names no region; set AWS_REGION or give --aws-regions (the first one is used)"
    )]
    NoRegion {
        /// The queue URL.
        queue: String,
    },

    /// SQS says the queue does not exist (or the URL names another account).
    #[error(
        "queue {queue} does not exist ({operation}): check the URL, the account and the region; \
         retried with backoff in case it is being created"
    )]
    QueueDoesNotExist {
        /// The queue URL.
        queue: String,
        /// The API call that failed.
        operation: &'static str,
    },

    /// The credentials were refused or lack a permission.
    #[error(
        "queue {queue}: {operation} was denied ({code}: {message}); the role needs \
         sqs:GetQueueAttributes, sqs:ReceiveMessage and cloudwatch:GetMetricData on this queue, \
         and valid credentials"
    )]
    AccessDenied {
        /// The queue URL.
        queue: String,
        /// The API call that failed.
        operation: &'static str,
        /// The AWS error code.
        code: String,
        /// The AWS error message.
        message: String,
    },

    /// No credentials could be found or loaded.
    #[error(
        "queue {queue}: no usable AWS credentials for {operation} ({detail}); set AWS_ACCESS_KEY_ID / \
         AWS_SECRET_ACCESS_KEY, a profile, IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE) or an instance role"
    )]
    Credentials {
        /// The queue URL.
        queue: String,
        /// The API call that failed.
        operation: &'static str,
        /// What the credential chain said.
        detail: String,
    },

    /// AWS throttled the call.
    #[error("queue {queue}: {operation} was throttled ({code}); backing off")]
    Throttled {
        /// The queue URL.
        queue: String,
        /// The API call that failed.
        operation: &'static str,
        /// The AWS error code.
        code: String,
    },

    /// The endpoint could not be reached, or the call timed out.
    #[error("queue {queue}: {operation} could not reach the endpoint: {detail}")]
    Network {
        /// The queue URL.
        queue: String,
        /// The API call that failed.
        operation: &'static str,
        /// What the connector said.
        detail: String,
    },

    /// Any other error reported by the service.
    #[error("queue {queue}: {operation} failed with {code}: {message}")]
    Service {
        /// The queue URL.
        queue: String,
        /// The API call that failed.
        operation: &'static str,
        /// The AWS error code (or the HTTP status).
        code: String,
        /// The AWS error message.
        message: String,
    },

    /// The response could not be understood.
    #[error("queue {queue}: {operation} returned an unexpected response: {detail}")]
    InvalidResponse {
        /// The queue URL.
        queue: String,
        /// The API call that failed.
        operation: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

/// How an [`Error`] should be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The configuration is wrong (bad URL, no region): retrying the same
    /// input cannot help; report it and leave the queue alone.
    Config,
    /// A problem that usually needs a human (missing queue, denied
    /// permission, no credentials), but may be fixed without a restart:
    /// retry slowly.
    NeedsAttention,
    /// Transient (throttling, network, 5xx, odd response): retry with
    /// capped exponential backoff.
    Transient,
}

impl ErrorKind {
    /// The first delay of a capped exponential backoff for this kind of
    /// error (doubled per consecutive failure up to [`ErrorKind::max_backoff`]).
    #[must_use]
    pub const fn initial_backoff(self) -> Duration {
        match self {
            ErrorKind::Transient => Duration::from_secs(1),
            ErrorKind::NeedsAttention | ErrorKind::Config => Duration::from_secs(30),
        }
    }

    /// The cap of the backoff for this kind of error.
    #[must_use]
    pub const fn max_backoff(self) -> Duration {
        match self {
            ErrorKind::Transient => Duration::from_secs(60),
            ErrorKind::NeedsAttention | ErrorKind::Config => Duration::from_secs(300),
        }
    }

    /// The delay before retry number `failures` (1 for the first failure):
    /// `initial * 2^(failures-1)`, capped.
    #[must_use]
    pub fn backoff(self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(16);
        self.initial_backoff()
            .saturating_mul(1 << exponent)
            .min(self.max_backoff())
    }
}

impl Error {
    /// How this error should be retried.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidQueueUrl { .. } | Error::NoRegion { .. } => ErrorKind::Config,
            Error::QueueDoesNotExist { .. }
            | Error::AccessDenied { .. }
            | Error::Credentials { .. } => ErrorKind::NeedsAttention,
            Error::Throttled { .. }
            | Error::Network { .. }
            | Error::Service { .. }
            | Error::InvalidResponse { .. } => ErrorKind::Transient,
        }
    }

    /// Whether retrying soon may succeed.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Transient
    }

    /// Classifies an SDK error of any SQS or CloudWatch operation.
    #[cfg(feature = "client")]
    pub(crate) fn from_sdk<E, R>(queue: &str, operation: &'static str, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let queue = queue.to_owned();
        match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("Unknown").to_owned();
                let message = e.message().unwrap_or("").to_owned();
                classify_code(queue, operation, code, message)
            }
            SdkError::TimeoutError(_) => Error::Network {
                queue,
                operation,
                detail: "timed out".into(),
            },
            SdkError::DispatchFailure(failure) => {
                let detail = DisplayErrorContext(&err).to_string();
                if failure.is_user() && mentions_credentials(&detail) {
                    Error::Credentials {
                        queue,
                        operation,
                        detail,
                    }
                } else {
                    Error::Network {
                        queue,
                        operation,
                        detail,
                    }
                }
            }
            SdkError::ResponseError(_) => Error::InvalidResponse {
                queue,
                operation,
                detail: DisplayErrorContext(&err).to_string(),
            },
            // Construction failures (and future variants): most often the
            // identity (credentials) could not be resolved.
            _ => {
                let detail = DisplayErrorContext(&err).to_string();
                if mentions_credentials(&detail) {
                    Error::Credentials {
                        queue,
                        operation,
                        detail,
                    }
                } else {
                    Error::Service {
                        queue,
                        operation,
                        code: "RequestNotSent".into(),
                        message: detail,
                    }
                }
            }
        }
    }
}

#[cfg_attr(not(feature = "client"), allow(dead_code))]
fn mentions_credentials(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    lower.contains("credential") || lower.contains("identity")
}

#[cfg_attr(not(feature = "client"), allow(dead_code))]
fn classify_code(queue: String, operation: &'static str, code: String, message: String) -> Error {
    match code.as_str() {
        "QueueDoesNotExist"
        | "AWS.SimpleQueueService.NonExistentQueue"
        | "NonExistentQueue"
        | "ResourceNotFoundException" => Error::QueueDoesNotExist { queue, operation },
        "AccessDenied"
        | "AccessDeniedException"
        | "InvalidSecurity"
        | "AWS.SimpleQueueService.InvalidSecurity"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "MissingAuthenticationToken"
        | "AuthFailure"
        | "OptInRequired"
        | "KmsAccessDenied" => Error::AccessDenied {
            queue,
            operation,
            code,
            message,
        },
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown"
        | "OverLimit"
        | "KmsThrottled"
        | "LimitExceeded"
        | "LimitExceededException" => Error::Throttled {
            queue,
            operation,
            code,
        },
        _ => Error::Service {
            queue,
            operation,
            code,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        let e =
            |code: &str| classify_code("q".into(), "GetQueueAttributes", code.into(), "m".into());
        assert!(matches!(
            e("AWS.SimpleQueueService.NonExistentQueue"),
            Error::QueueDoesNotExist { .. }
        ));
        assert!(matches!(
            e("QueueDoesNotExist"),
            Error::QueueDoesNotExist { .. }
        ));
        assert!(matches!(e("AccessDenied"), Error::AccessDenied { .. }));
        assert!(matches!(
            e("InvalidClientTokenId"),
            Error::AccessDenied { .. }
        ));
        assert!(matches!(e("RequestThrottled"), Error::Throttled { .. }));
        assert!(matches!(e("ThrottlingException"), Error::Throttled { .. }));
        assert!(matches!(e("InternalError"), Error::Service { .. }));
        assert_eq!(e("AccessDenied").kind(), ErrorKind::NeedsAttention);
        assert_eq!(e("Throttling").kind(), ErrorKind::Transient);
        assert!(e("Throttling").is_transient());
    }

    #[test]
    fn backoff_is_capped_exponential() {
        let k = ErrorKind::Transient;
        assert_eq!(k.backoff(1), Duration::from_secs(1));
        assert_eq!(k.backoff(2), Duration::from_secs(2));
        assert_eq!(k.backoff(4), Duration::from_secs(8));
        assert_eq!(k.backoff(7), Duration::from_secs(60));
        assert_eq!(k.backoff(u32::MAX), Duration::from_secs(60));
        assert_eq!(k.backoff(0), Duration::from_secs(1));
        assert_eq!(
            ErrorKind::NeedsAttention.backoff(100),
            Duration::from_secs(300)
        );
    }
}
