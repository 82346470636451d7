//! `POST /fintors/reload` (what `fintors reload` sends): re-reads the configuration into the
//! running daemon (see [`crate::credentials::reload`]) and says what changed.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;

use super::json::{error, json, read_json_body};
use super::state::AppState;
use crate::api::{ReloadReport, paths};

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(paths::RELOAD, post(reload))
}

/// With a JSON content type (the body is ignored), so no web page can trigger it cross-site.
async fn reload(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if let Err(refusal) = read_json_body(request).await {
        return refusal;
    }
    match state.reloader.reload().await {
        Ok(report) => json(
            StatusCode::OK,
            &ReloadReport {
                config: report.config.display().to_string(),
                added: report.roles.added,
                removed: report.roles.removed,
                changed: report.roles.changed,
                active_role: report.roles.active,
                need_restart: report.need_restart.iter().map(|s| s.to_string()).collect(),
            },
        ),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            format!("configuration rejected, the running one is kept: {e}"),
        ),
    }
}
