//! `POST /fintors/simulate` (`fintors simulate`): starts a simulated instance event or clears
//! them, and answers with every metadata entry the events in force now serve. The events
//! themselves, and EC2's bodies for them, are [`crate::ec2::events`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;

use super::json::{json, read_json};
use super::state::AppState;
use crate::api::{Simulate, paths};

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(paths::SIMULATE, post(simulate))
}

/// A JSON body only, so no web page can start an event cross-site.
async fn simulate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let simulate: Simulate =
        match read_json(request, r#"an event, e.g. {"event": "rebalance"}"#, true).await {
            Ok(simulate) => simulate,
            Err(refusal) => return refusal,
        };
    let report = state.events.apply(simulate, state.clock.now());
    json(StatusCode::OK, &report)
}
