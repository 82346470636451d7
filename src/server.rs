//! Assembles the HTTP service: IMDS and the role API on one port, behind the guard, the IMDS
//! session check and the access log, and serves it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;

use crate::access_log::{self, AccessLog};
use crate::clock::Clock;
use crate::guard::{self, Guard};
use crate::imds;
use crate::registry::Registry;
use crate::roles_api;
use crate::status;
use crate::tokens::Tokens;

/// What the request handlers share.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub tokens: Arc<Tokens>,
    pub clock: Clock,
    pub imdsv2_required: bool,
}

/// The whole service. Layers run outermost first: access log, guard, IMDS session, then routes.
pub fn app(state: Arc<AppState>, guard: Arc<Guard>, log: Option<Arc<AccessLog>>) -> Router {
    let router = imds::router()
        .merge(roles_api::router())
        .merge(status::router())
        .fallback(|| async { imds::not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), imds::session))
        .layer(middleware::from_fn(server_header))
        .layer(middleware::from_fn_with_state(guard, guard::check))
        .with_state(state);
    match log {
        Some(log) => router.layer(middleware::from_fn_with_state(log, access_log::record)),
        None => router,
    }
}

/// Real IMDS answers as `EC2ws`; some tools check it to tell they are on an instance.
async fn server_header(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::SERVER, HeaderValue::from_static("EC2ws"));
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
