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
use serde::Deserialize;

use crate::guard::Guard;
use crate::json_api::{error, json_value, read_json_body};
use crate::model::Secret;
use crate::server::AppState;
use crate::sts::Bootstrap;

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
        .route("/healthz", get(|| async { "ok" }))
        .route("/status", get(status))
        .route("/bootstrap/creds", post(bootstrap_credentials))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such admin route") })
        .layer(middleware::from_fn_with_state(admin.clone(), authorize))
        .with_state(admin)
}

async fn authorize(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = admin.guard.admit(peer, &request) {
        return refusal.into_response();
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
    json_value(StatusCode::OK, serde_json::Value::Bool(ready))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BootstrapRequest {
    #[serde(rename = "AccessKeyId")]
    access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: String,
    #[serde(rename = "Token", default)]
    token: Option<String>,
}

async fn bootstrap_credentials(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let body = match read_json_body(request).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    // serde's messages can quote values; only the position is safe to repeat.
    let parsed: BootstrapRequest = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid body at line {} column {}: expected {{\"AccessKeyId\": \"...\", \
                     \"SecretAccessKey\": \"...\", \"Token\": \"...\"}} (Token optional)",
                    e.line(),
                    e.column()
                ),
            );
        }
    };
    if parsed.access_key_id.trim().is_empty() || parsed.secret_access_key.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "AccessKeyId and SecretAccessKey must not be empty",
        );
    }
    let token = parsed.token.filter(|t| !t.is_empty()).map(Secret::new);
    admin.bootstrap.set(
        parsed.access_key_id.trim(),
        &Secret::new(parsed.secret_access_key),
        token.as_ref(),
    );
    tracing::info!("base credentials replaced through the admin API");
    admin.state.registry.retry_pending();
    StatusCode::NO_CONTENT.into_response()
}
