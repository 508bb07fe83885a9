//! The TLS client configuration of `amqps://` and `https://` management
//! URLs: rustls with the ring provider, trusting the system's certificate
//! store (`SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured).

use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};

use crate::Error;

fn build(roots: RootCertStore) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Tls {
            reason: error.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The system-trusting configuration, built once per process.
pub(crate) fn system() -> Result<Arc<ClientConfig>, Error> {
    static SYSTEM: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
            if added == 0 {
                return Err(format!(
                    "no trusted CA certificate found in the system store ({} errors{}): set SSL_CERT_FILE to a PEM bundle, or give QueueConfig::tls",
                    loaded.errors.len(),
                    loaded
                        .errors
                        .first()
                        .map(|e| format!(", first: {e}"))
                        .unwrap_or_default()
                ));
            }
            build(roots).map(Arc::new).map_err(|error| error.to_string())
        })
        .clone()
        .map_err(|reason| Error::Tls { reason })
}

/// A configuration that trusts nothing, for a plain-HTTP management client
/// (the connector wants one; it is never used).
pub(crate) fn unused() -> Result<Arc<ClientConfig>, Error> {
    build(RootCertStore::empty()).map(Arc::new)
}
