//! The container credentials endpoint (`--ecs-port`): the same credentials in the form the SDKs'
//! ECS/container provider reads from `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
//!
//! It needs no root and no metadata address: any SDK can use it from a shell that exports two
//! variables (`fintors env --ecs`), and so can a container given the token file. It listens on
//! 127.0.0.1 only, behind the same guard as IMDS, and every request must carry the authorization
//! token, compared in constant time. The token lives in a 0600 file in the state directory,
//! without a trailing newline (the Rust SDK rejects one), and survives restarts.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::cache::{Attempt, RoleCache};
use crate::document::timestamp;
use crate::guard::Guard;
use crate::model::Secret;
use crate::server::AppState;
use crate::state::{StateDir, StateError, random_bytes};

pub const TOKEN_FILE: &str = "container-token";
const TOKEN_LEN: usize = 64;

/// Loads (or creates) the authorization token: 64 hex characters, no newline.
pub fn load_token(state: &StateDir) -> Result<Secret, StateError> {
    let token = state.secret(TOKEN_FILE, TOKEN_LEN, "container token", || {
        random_bytes(TOKEN_LEN / 2)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes()
    })?;
    Ok(Secret::new(String::from_utf8_lossy(&token).into_owned()))
}

struct Endpoint {
    state: Arc<AppState>,
    guard: Arc<Guard>,
    token: Secret,
}

pub fn app(state: Arc<AppState>, guard: Arc<Guard>, token: Secret) -> Router {
    let endpoint = Arc::new(Endpoint {
        state,
        guard,
        token,
    });
    Router::new()
        .route("/creds", get(active_credentials))
        .route("/creds/{alias}", get(role_credentials))
        .fallback(|| async { json_response(StatusCode::NOT_FOUND, "NotFound", "no such path") })
        .layer(middleware::from_fn_with_state(endpoint.clone(), authorize))
        .with_state(endpoint)
}

fn json_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "Code": code, "Message": message }).to_string(),
    )
        .into_response()
}

async fn authorize(
    State(endpoint): State<Arc<Endpoint>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = endpoint.guard.admit(peer, &request) {
        return refusal.into_response();
    }
    // The SDKs send the token verbatim, without a "Bearer" scheme.
    match request.headers().get(header::AUTHORIZATION) {
        None => json_response(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "an Authorization header with the token from the container token file is required",
        ),
        Some(given) if endpoint.token.matches(given.as_bytes()) => next.run(request).await,
        Some(_) => json_response(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "wrong authorization token",
        ),
    }
}

async fn active_credentials(State(endpoint): State<Arc<Endpoint>>) -> Response {
    match endpoint.state.registry.active() {
        Some(cache) => serve(&cache).await,
        None => json_response(
            StatusCode::NOT_FOUND,
            "NoActiveRole",
            "no role is active: run `fintors use ROLE`",
        ),
    }
}

async fn role_credentials(
    State(endpoint): State<Arc<Endpoint>>,
    Path(alias): Path<String>,
) -> Response {
    match endpoint.state.registry.role(&alias) {
        Some(cache) => serve(&cache).await,
        None => json_response(
            StatusCode::NOT_FOUND,
            "NoSuchRole",
            &format!("unknown role: {alias}"),
        ),
    }
}

async fn serve(cache: &Arc<RoleCache>) -> Response {
    match cache.get(Attempt::RespectBackoff).await {
        Ok(issued) => {
            let c = &issued.credentials;
            let role = cache.role();
            let body = json!({
                "AccessKeyId": c.access_key_id,
                "SecretAccessKey": c.secret_access_key.expose(),
                "Token": c.session_token.expose(),
                "Expiration": timestamp(c.expiration),
                "AccountId": role.arn.account_id(),
                "RoleArn": role.arn.as_str(),
            });
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Err(failure) => json_response(
            StatusCode::BAD_GATEWAY,
            &failure.error.code,
            &failure.error.message,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_hex_without_newline_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let token = load_token(&state).unwrap();
        assert_eq!(token.expose().len(), 64);
        assert!(token.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(load_token(&state).unwrap(), token);
        let on_disk = std::fs::read(state.file(TOKEN_FILE)).unwrap();
        assert!(!on_disk.ends_with(b"\n"));
    }
}
