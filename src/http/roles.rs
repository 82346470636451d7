//! finto's role API under `/roles`: list the roles, inspect one, fetch its credentials, switch
//! the active role with `PUT /roles`, and (fintors's own) get a console sign-in URL for a role
//! with `POST /roles/<alias>/console`.
//!
//! The switching route changes what every SDK on the machine uses, so it only accepts what a web
//! page cannot send without a CORS preflight (which fintors never grants): a JSON content type, a
//! small body, a known alias. So does the console route, whose answer opens the console as the
//! role.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::json::{error, json, json_response, read_json};
use super::state::AppState;
use crate::api::{
    ApiError, ConsoleRequest, RoleDescription, RoleFilter, RoleList, SwitchRequest, SwitchResponse,
    paths,
};
use crate::credentials::{Door, SwitchError};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(paths::ROLES, get(list).put(switch))
        .route(paths::ROLE, get(describe))
        .route(paths::ROLE_CREDENTIALS, get(credentials))
        .route(paths::ROLE_CONSOLE, post(console))
}

async fn list(State(state): State<Arc<AppState>>, Query(filter): Query<RoleFilter>) -> Response {
    let roles: Vec<String> = match filter.status.as_deref() {
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
    json(StatusCode::OK, &RoleList { roles })
}

async fn describe(State(state): State<Arc<AppState>>, Path(alias): Path<String>) -> Response {
    match state.registry.role(&alias) {
        Some(cache) => {
            let role = cache.role();
            json(
                StatusCode::OK,
                &RoleDescription {
                    kind: role.kind().to_owned(),
                    arn: role.arn_text(),
                    session_name: role.session_name.as_str().to_owned(),
                },
            )
        }
        None => error(StatusCode::NOT_FOUND, format!("unknown role: {alias}")),
    }
}

async fn credentials(State(state): State<Arc<AppState>>, Path(alias): Path<String>) -> Response {
    let Some(cache) = state.registry.role(&alias) else {
        return error(StatusCode::NOT_FOUND, format!("unknown role: {alias}"));
    };
    match cache.serve(Door::Imds).await {
        Ok(issued) => json_response(StatusCode::OK, issued.document.clone()),
        Err(failure) => json_response(StatusCode::BAD_GATEWAY, failure.document.clone()),
    }
}

async fn switch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let wanted: SwitchRequest = match read_json(request, "{\"alias\": \"<role>\"}", true).await {
        Ok(wanted) => wanted,
        Err(refusal) => return refusal,
    };
    match state.registry.switch(&wanted.alias).await {
        Ok(_) => json(
            StatusCode::OK,
            &SwitchResponse {
                active_role: wanted.alias,
            },
        ),
        Err(e @ (SwitchError::UnknownRole(_) | SwitchError::Removed(_))) => {
            error(StatusCode::NOT_FOUND, e)
        }
        Err(SwitchError::Sts { alias, failure }) => json(
            StatusCode::BAD_GATEWAY,
            &ApiError {
                error: format!("cannot assume role {alias}: {}", failure.error),
                code: Some(failure.error.code().to_owned()),
                message: Some(failure.error.message().to_owned()),
            },
        ),
    }
}

async fn console(
    State(state): State<Arc<AppState>>,
    Path(alias): Path<String>,
    request: Request,
) -> Response {
    let Some(cache) = state.registry.role(&alias) else {
        return error(StatusCode::NOT_FOUND, format!("unknown role: {alias}"));
    };
    let expected = "{\"destination\": \"<url or service>\", \"duration\": <seconds>}";
    let wanted: ConsoleRequest = match read_json(request, expected, true).await {
        Ok(wanted) => wanted,
        Err(refusal) => return refusal,
    };
    match state
        .federation
        .sign_in(&cache, &state.instance.region, &wanted)
        .await
    {
        Ok(mut url) if wanted.handoff => {
            let signin = url.url.take().expect("a sign-in URL");
            url.handoff = Some(paths::console_handoff(&state.handoffs.offer(signin)));
            json(StatusCode::OK, &url)
        }
        Ok(url) => json(StatusCode::OK, &url),
        Err(e) if e.is_request_error() => error(StatusCode::BAD_REQUEST, e),
        // As for the role's credentials: STS, the base credentials or the federation endpoint
        // failed upstream.
        Err(e) => error(StatusCode::BAD_GATEWAY, e),
    }
}
