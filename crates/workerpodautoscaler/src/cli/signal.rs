//! Stopping on SIGTERM (what Kubernetes sends) or Ctrl-C.

use tokio::sync::watch;

/// Waits for SIGTERM or Ctrl-C and logs which came.
pub(crate) async fn terminated() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C still stops");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = terminate => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
    }
}

/// A flag that turns true on SIGTERM or Ctrl-C, for tasks that each watch
/// it (the controller, its HTTP server). Needs a tokio runtime.
pub(crate) fn shutdown() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        terminated().await;
        tx.send_replace(true);
    });
    rx
}
