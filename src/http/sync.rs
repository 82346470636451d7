//! `POST /fintors/sync` (`fintors sync`): every Identity Center session of the configuration
//! lists its accounts and roles again now, and the roles follow; the answer says what each
//! listing found and what changed, once it is done, or after `SYNC_WAIT` that it is still
//! under way (a large organisation at the portal's pace), the listing going on.

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
use crate::credentials::registry::Reloaded;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(paths::SYNC, post(sync))
}

/// With a JSON content type (the body is ignored), so no web page can trigger it cross-site.
async fn sync(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if let Err(refusal) = read_json_body(request).await {
        return refusal;
    }
    let reloader = state.reloader.clone();
    let listing = tokio::spawn(async move { reloader.sync().await });
    let synced = tokio::time::timeout(SYNC_WAIT, listing).await;
    let (roles, still_listing) = match synced {
        Ok(Ok(synced)) => (synced.roles, false),
        Ok(Err(crashed)) => std::panic::resume_unwind(crashed.into_panic()),
        Err(_) => (Reloaded::default(), true),
    };
    json(
        StatusCode::OK,
        &SyncReport {
            identity_center: discovery_reports(&state),
            added: roles.added,
            removed: roles.removed,
            active_role: state.registry.active().map(|a| a.role().alias.to_string()),
            still_listing,
        },
    )
}

/// How long the answer waits for the listing: well within the client's 30 s.
const SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(25);
