//! `GET /fintors/console/<nonce>`: the browser's way to a console sign-in URL. `fintors console`
//! opens this loopback link rather than the sign-in URL itself, because an opener's and a
//! browser's command lines can be read by every user of the machine (`/proc/PID/cmdline`), and
//! the sign-in URL opens the console as the role for 15 minutes. The link works once, for a
//! minute, and, like every route, only for this user's processes; it answers with a redirect to
//! the sign-in URL that no cache or referrer keeps.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::json::error;
use super::state::AppState;
use crate::api::paths;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(paths::CONSOLE_HANDOFF, get(hand_off))
}

async fn hand_off(State(state): State<Arc<AppState>>, Path(nonce): Path<String>) -> Response {
    match state.handoffs.take(&nonce) {
        Some(url) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, url.expose()),
                (header::CACHE_CONTROL, "no-store"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "this console link was used already or has expired: run `fintors console` again",
        ),
    }
}
