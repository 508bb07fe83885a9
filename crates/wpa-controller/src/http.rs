//! `/metrics`, `/status`, `/healthz` and `/readyz` on the metrics port.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{Error, Health, Metrics};

/// Binds `address` (`":8787"` means all interfaces, as in Go) and serves
/// until `shutdown` turns true. Returns the bound address and the task.
pub async fn serve_http(
    address: &str,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let bind = if address.starts_with(':') {
        format!("0.0.0.0{address}")
    } else {
        address.to_owned()
    };
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|source| Error::Bind {
            address: address.to_owned(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Bind {
        address: address.to_owned(),
        source,
    })?;
    let ready = Arc::clone(&health);
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = Arc::clone(&metrics);
                async move {
                    (
                        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/status", get(|| async { "OK" }))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.is_ready();
                async move {
                    if ready {
                        (StatusCode::OK, "ok").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced").into_response()
                    }
                }
            }),
        );
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!("metrics server: {error}");
        }
    });
    Ok((local, task))
}
