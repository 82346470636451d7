//! finto's role API under `/roles`: list the roles, inspect one, fetch its credentials, and switch
//! the active role with `PUT /roles`.
//!
//! The switching route changes what every SDK on the machine uses, so it only accepts what a web
//! page cannot send without a CORS preflight (which fintors never grants): a JSON content type, a
//! small body, a known alias.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::cache::Attempt;
use crate::registry::SwitchError;
use crate::server::AppState;

/// A switch request is `{"alias":"..."}`; anything much larger is not one.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/roles", get(list).put(switch))
        .route("/roles/{alias}", get(describe))
        .route("/roles/{alias}/credentials", get(credentials))
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

fn json_value(status: StatusCode, value: serde_json::Value) -> Response {
    json_response(status, value.to_string())
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    json_value(status, json!({ "error": message.to_string() }))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
}

async fn list(State(state): State<Arc<AppState>>, Query(query): Query<ListQuery>) -> Response {
    let roles: Vec<String> = match query.status.as_deref() {
        None => state.registry.aliases().map(|a| a.to_string()).collect(),
        Some("active") => state
            .registry
            .active()
            .map(|a| a.role().alias.to_string())
            .into_iter()
            .collect(),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown status filter {other:?}; the only filter is status=active"),
            );
        }
    };
    json_value(StatusCode::OK, json!({ "roles": roles }))
}

async fn describe(State(state): State<Arc<AppState>>, Path(alias): Path<String>) -> Response {
    match state.registry.role(&alias) {
        Some(cache) => {
            let role = cache.role();
            json_value(
                StatusCode::OK,
                json!({ "arn": role.arn.as_str(), "session_name": role.session_name.as_str() }),
            )
        }
        None => error(StatusCode::NOT_FOUND, format!("unknown role: {alias}")),
    }
}

async fn credentials(State(state): State<Arc<AppState>>, Path(alias): Path<String>) -> Response {
    let Some(cache) = state.registry.role(&alias) else {
        return error(StatusCode::NOT_FOUND, format!("unknown role: {alias}"));
    };
    match cache.get(Attempt::RespectBackoff).await {
        Ok(issued) => json_response(StatusCode::OK, issued.document.clone()),
        Err(failure) => json_response(StatusCode::BAD_GATEWAY, failure.document.clone()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchRequest {
    alias: String,
}

async fn switch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let body = match read_json_body(request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let wanted: SwitchRequest = match serde_json::from_slice(&body) {
        Ok(w) => w,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid request body: {e}; expected {{\"alias\": \"<role>\"}}"),
            );
        }
    };
    match state.registry.switch(&wanted.alias).await {
        Ok(_) => json_value(StatusCode::OK, json!({ "active_role": wanted.alias })),
        Err(e @ SwitchError::UnknownRole(_)) => error(StatusCode::NOT_FOUND, e),
        Err(SwitchError::Sts { alias, failure }) => json_value(
            StatusCode::BAD_GATEWAY,
            json!({
                "error": format!("cannot assume role {alias}: {}", failure.error),
                "code": failure.error.code,
                "message": failure.error.message,
            }),
        ),
    }
}

/// The body of a state-changing request: JSON content type, at most [`MAX_BODY_BYTES`].
async fn read_json_body(request: Request) -> Result<Bytes, Response> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type {:?} is not accepted; send Content-Type: application/json \
                 (curl: -H 'Content-Type: application/json')",
                content_type
            ),
        ));
    }
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| too_large())
}
