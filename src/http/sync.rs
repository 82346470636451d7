//! `POST /fintors/sync` (`fintors sync`): every Identity Center session of the configuration
//! lists its accounts and roles again now, and the roles follow; the answer says what each
//! listing found and what changed, once it is done.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;

use super::json::{json, read_json_body};
use super::state::AppState;
use super::status::discovery_reports;
use crate::api::{SyncReport, paths};

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(paths::SYNC, post(sync))
}

/// With a JSON content type (the body is ignored), so no web page can trigger it cross-site.
async fn sync(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if let Err(refusal) = read_json_body(request).await {
        return refusal;
    }
    let synced = state.reloader.sync().await;
    json(
        StatusCode::OK,
        &SyncReport {
            identity_center: discovery_reports(&state),
            added: synced.roles.added,
            removed: synced.roles.removed,
            active_role: state.registry.active().map(|a| a.role().alias.to_string()),
        },
    )
}
