//! The admin listener (`--admin-port`, 127.0.0.1 only): what the "mock metadata service" family
//! offers for automation — a health check, a yes/no status, and a way to hand fintors its base
//! credentials at run time (`POST /bootstrap/creds`), e.g. from a vault or a CI secret.
//!
//! Bootstrapped credentials are write-only: never echoed, never logged, and a malformed body is
//! answered without quoting it. With `FINTORS_ADMIN_TOKEN` set, every request must carry
//! `Authorization: Bearer <token>`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::guard::Guard;
use super::json::{error, json, read_json};
use super::state::AppState;
use crate::api::{BootstrapRequest, paths};
use crate::credentials::Bootstrap;
use crate::model::Secret;

struct Admin {
    state: Arc<AppState>,
    guard: Arc<Guard>,
    bootstrap: Arc<Bootstrap>,
    token: Option<Secret>,
}

pub fn app(
    state: Arc<AppState>,
    guard: Arc<Guard>,
    bootstrap: Arc<Bootstrap>,
    token: Option<Secret>,
) -> Router {
    let admin = Arc::new(Admin {
        state,
        guard,
        bootstrap,
        token,
    });
    Router::new()
        .route(paths::HEALTH, get(|| async { "ok" }))
        .route(paths::READY, get(status))
        .route(paths::BOOTSTRAP, post(bootstrap_credentials))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such admin route") })
        .layer(middleware::from_fn_with_state(admin.clone(), authorize))
        .with_state(admin)
}

/// A refusal, as the admin API words it: `{"error": ...}`.
pub fn refused(refusal: super::guard::Refusal) -> Response {
    error(refusal.status(), refusal.reason())
}

async fn authorize(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = admin.guard.admit(peer, &request) {
        return refused(refusal);
    }
    if let Some(token) = &admin.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !given.is_some_and(|g| token.matches(g)) {
            return error(
                StatusCode::UNAUTHORIZED,
                "this admin API requires Authorization: Bearer <FINTORS_ADMIN_TOKEN>",
            );
        }
    }
    next.run(request).await
}

/// `true` when the active role has credentials that can be served right now.
async fn status(State(admin): State<Arc<Admin>>) -> Response {
    let ready = admin
        .state
        .registry
        .active()
        .is_some_and(|a| a.cached().is_some());
    json(StatusCode::OK, &ready)
}

async fn bootstrap_credentials(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let expected = "{\"AccessKeyId\": \"...\", \"SecretAccessKey\": \"...\", \"Token\": \"...\"} \
                    (Token optional)";
    // serde's messages can quote values; only the position is safe to repeat.
    let parsed: BootstrapRequest = match read_json(request, expected, false).await {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal,
    };
    if parsed.access_key_id.trim().is_empty() || parsed.secret_access_key.expose().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "AccessKeyId and SecretAccessKey must not be empty",
        );
    }
    let token = parsed.token.filter(|t| !t.expose().is_empty());
    admin.bootstrap.set(
        parsed.access_key_id.trim(),
        &parsed.secret_access_key,
        token.as_ref(),
    );
    tracing::info!("base credentials replaced through the admin API");
    admin.state.registry.retry_pending().await;
    StatusCode::NO_CONTENT.into_response()
}
