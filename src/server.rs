//! Assembles the HTTP service: IMDS and the role API on one port, behind the guard, the IMDS
//! session check and the access log, and serves it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

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

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
