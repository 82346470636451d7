//! Assembles the HTTP service: IMDS and the role API on one port, behind the guard, the IMDS
//! session check and the access log, and serves it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::access_log::{self, AccessLog};
use crate::clock::Clock;
use crate::guard::Guard;
use crate::imds;
use crate::metadata::Instance;
use crate::mfa::{self, MfaSessions};
use crate::registry::Registry;
use crate::reload::{self, Reloader};
use crate::roles_api;
use crate::status;
use crate::tokens::Tokens;

/// Where the container credentials endpoint is, for the status report.
pub struct ContainerInfo {
    pub url: String,
    pub token_file: std::path::PathBuf,
}

/// What the request handlers share.
pub struct AppState {
    pub reloader: Arc<Reloader>,
    pub container: Option<ContainerInfo>,
    pub mfa: Arc<MfaSessions>,
    pub registry: Arc<Registry>,
    pub instance: Instance,
    pub tokens: Arc<Tokens>,
    pub clock: Clock,
    pub imdsv2_required: bool,
}

/// The whole service: the access log (if any), then the front door, then the routes.
pub fn app(state: Arc<AppState>, guard: Arc<Guard>, log: Option<Arc<AccessLog>>) -> Router {
    let router = imds::router()
        .merge(roles_api::router())
        .merge(status::router())
        .merge(mfa::router())
        .merge(reload::router())
        .fallback(|| async { imds::not_found() })
        .layer(middleware::from_fn_with_state(
            (guard, state.clone()),
            front_door,
        ))
        .with_state(state);
    match log {
        Some(log) => router.layer(middleware::from_fn_with_state(log, access_log::record)),
        None => router,
    }
}

/// Every request passes here first: the guard (other hosts, foreign `Host` headers), then the
/// IMDS session check. One middleware rather than two, because each layer costs the hot path a
/// boxed future.
async fn front_door(
    State((guard, state)): State<(Arc<Guard>, Arc<AppState>)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = guard.admit(peer, &request) {
        return refusal.into_response();
    }
    let remaining = match imds::session(&state, &request) {
        Ok(remaining) => remaining,
        Err(unauthorized) => return unauthorized.into_response(),
    };
    let mut response = next.run(request).await;
    if let Some(remaining) = remaining {
        imds::report_token_ttl(&mut response, remaining);
    }
    response
}

/// Requests must arrive whole within this time, including the next one on a kept-alive
/// connection: a slow or idle client cannot hold a connection (and a file descriptor) forever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once per listener; more wait in the kernel's backlog until one closes.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long requests in flight get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish.
///
/// A hand-written accept loop rather than `axum::serve`, for the limits above: axum::serve has
/// no header timeout and no connection cap.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait for connections to close, don't spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, "connection closed: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still running after {} s; stopping anyway",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    Ok(())
}
