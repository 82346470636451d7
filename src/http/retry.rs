//! `POST /fintors/retry` (what `fintors login` and `logout` send when they are done): the
//! credentials of a login that is gone stop being served, then every role that is failing, and
//! the active one if it has nothing cached, asks STS again now rather than after its backoff
//! (so a logout is in force, and a login used, before the command returns). The answer is the
//! status report once those attempts are done, so the client can say at once whether the login
//! fixed things.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;

use super::json::{json, read_json_body};
use super::state::AppState;
use super::status;
use crate::api::paths;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(paths::RETRY, post(retry))
}

/// With a JSON content type (the body is ignored), so no web page can trigger it cross-site.
async fn retry(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if let Err(refusal) = read_json_body(request).await {
        return refusal;
    }
    state.reloader.forget_logged_out().await;
    state.registry.retry_pending().await;
    json(StatusCode::OK, &status::report(&state))
}
