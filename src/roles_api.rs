//! finto's role API under `/roles`: list the roles, inspect one, fetch its credentials, and switch
//! the active role with `PUT /roles`.
//!
//! The switching route changes what every SDK on the machine uses, so it only accepts what a web
//! page cannot send without a CORS preflight (which fintors never grants): a JSON content type, a
//! small body, a known alias.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::cache::Attempt;
use crate::json_api::{error, json_response, json_value, read_json_body};
use crate::registry::SwitchError;
use crate::server::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/roles", get(list).put(switch))
        .route("/roles/{alias}", get(describe))
        .route("/roles/{alias}/credentials", get(credentials))
}

/// Whether `path` is a role's credentials (`/roles/ALIAS/credentials`), which need an IMDS
/// session under `--imdsv2-required` like the IMDS credential paths.
pub fn is_credentials_path(path: &str) -> bool {
    path.strip_prefix("/roles/")
        .and_then(|rest| rest.strip_suffix("/credentials"))
        .is_some_and(|alias| !alias.is_empty() && !alias.contains('/'))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
}

async fn list(State(state): State<Arc<AppState>>, Query(query): Query<ListQuery>) -> Response {
    let roles: Vec<String> = match query.status.as_deref() {
        None => state
            .registry
            .aliases()
            .iter()
            .map(|a| a.to_string())
            .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_paths_are_recognised_by_shape() {
        assert!(is_credentials_path("/roles/dev/credentials"));
        assert!(is_credentials_path("/roles/d%65v/credentials"));
        for path in [
            "/roles",
            "/roles/dev",
            "/roles//credentials",
            "/roles/a/b/credentials",
        ] {
            assert!(!is_credentials_path(path), "{path}");
        }
    }
}
