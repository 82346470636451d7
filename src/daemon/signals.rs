//! Signals: SIGINT and SIGTERM stop the daemon gracefully (its listeners drain), SIGHUP reopens
//! the access log (the reload on SIGHUP is the reloader's own, in `credentials`).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::DaemonError;
use crate::http::access_log::AccessLog;

/// Reopens the access log at every SIGHUP, after logrotate moved it (beside the reload).
pub(super) fn reopen_on_sighup(log: Arc<AccessLog>) -> Result<(), DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).map_err(|reason| DaemonError::Signals { reason })?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            log.reopen().await;
        }
    });
    Ok(())
}

/// A token cancelled at the first SIGINT or SIGTERM; every listener stops on it.
pub(super) fn shutdown_on_signals() -> Result<CancellationToken, DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = |kind| signal(kind).map_err(|reason| DaemonError::Signals { reason });
    let mut term = signals(SignalKind::terminate())?;
    let mut int = signals(SignalKind::interrupt())?;
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        }
        cancel.cancel();
    });
    Ok(token)
}
