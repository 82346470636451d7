//! `GET /fintors/status`: what the daemon knows about itself, for `fintors status`, `fintors roles`
//! and scripts. The report type is shared by the daemon, which renders it, and the client
//! subcommands, which read it, so the two cannot drift apart.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::server::AppState;

pub const PATH: &str = "/fintors/status";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub version: String,
    pub active_role: Option<String>,
    pub imdsv2_required: bool,
    /// The container credentials endpoint's URL and token file, when it is served.
    pub container_endpoint: Option<String>,
    pub container_token_file: Option<String>,
    /// Each MFA device the roles use, and when its session expires (`None`: no session yet).
    #[serde(default)]
    pub mfa: Vec<MfaReport>,
    pub roles: Vec<RoleReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaReport {
    pub serial: String,
    pub session_expires: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleReport {
    pub alias: String,
    pub arn: String,
    pub session_name: String,
    pub active: bool,
    /// The cached credentials, if any can still be served.
    pub credentials: Option<CachedReport>,
    pub last_error: Option<ErrorReport>,
    pub sts_calls: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedReport {
    pub last_updated: DateTime<Utc>,
    pub expiration: DateTime<Utc>,
    pub refresh_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(PATH, get(status))
}

async fn status(State(state): State<Arc<AppState>>) -> Response {
    let active = state.registry.active();
    let roles = state
        .registry
        .caches()
        .iter()
        .map(|cache| {
            let role = cache.role();
            RoleReport {
                alias: role.alias.to_string(),
                arn: role.arn.to_string(),
                session_name: role.session_name.as_str().to_owned(),
                active: active.as_ref().is_some_and(|a| Arc::ptr_eq(a, cache)),
                credentials: cache.cached().map(|c| CachedReport {
                    last_updated: c.fetched_at,
                    expiration: c.credentials.expiration,
                    refresh_at: c.refresh_at,
                }),
                last_error: cache.last_failure().map(|f| ErrorReport {
                    code: f.error.code.clone(),
                    message: f.error.message.clone(),
                    at: f.at,
                }),
                sts_calls: cache.sts_calls(),
            }
        })
        .collect();
    let report = Report {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        active_role: active.map(|a| a.role().alias.to_string()),
        imdsv2_required: state.imdsv2_required,
        container_endpoint: state.container.as_ref().map(|c| c.url.clone()),
        container_token_file: state
            .container
            .as_ref()
            .map(|c| c.token_file.display().to_string()),
        mfa: state
            .registry
            .mfa_serials()
            .into_iter()
            .map(|serial| MfaReport {
                session_expires: state.mfa.expiry(&serial),
                serial: serial.as_str().to_owned(),
            })
            .collect(),
        roles,
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&report).expect("report serializes"),
    )
        .into_response()
}
