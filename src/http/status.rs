//! `GET /fintors/status`: what the daemon knows about itself, for `fintors status`, `fintors roles`
//! and scripts, as [`crate::api::StatusReport`]; also the answer to `POST /fintors/retry`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::json::json;
use super::state::AppState;
use crate::api::{
    CachedReport, DiscoveryReport, DoorReport, ErrorReport, MfaReport, RoleReport, ServedReport,
    SkewReport, SsoReport, StatusReport, paths,
};
use crate::credentials::sso::TokenState;
use crate::credentials::{Door, DoorUsage};
use crate::model::RoleSource;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(paths::STATUS, get(status))
}

async fn status(State(state): State<Arc<AppState>>) -> Response {
    json(StatusCode::OK, &report(&state))
}

/// What the daemon knows about itself now.
pub(super) fn report(state: &AppState) -> StatusReport {
    let active = state.registry.active();
    let now = state.clock.now();
    let roles = state
        .registry
        .caches()
        .iter()
        .map(|cache| {
            let role = cache.role();
            RoleReport {
                alias: role.alias.to_string(),
                kind: role.kind().to_owned(),
                arn: role.arn_text(),
                account_id: role.arn.as_ref().map_or("", |a| a.account_id()).to_owned(),
                role_name: role.arn.as_ref().map_or("", |a| a.role_name()).to_owned(),
                sso_session: role.permission_set().map(|set| set.sso_session.clone()),
                account_name: role
                    .permission_set()
                    .and_then(|set| set.account_name.clone()),
                via: role.via.as_ref().map(|via| via.to_string()),
                program: match &role.source {
                    RoleSource::Process(process) => Some(process.program().to_owned()),
                    _ => None,
                },
                session_name: role.session_name.as_str().to_owned(),
                region: role.region.as_ref().map(|r| r.as_str().to_owned()),
                active: active.as_ref().is_some_and(|a| Arc::ptr_eq(a, cache)),
                credentials: cache.cached().map(|c| CachedReport {
                    last_updated: c.fetched_at,
                    expiration: c.credentials.expiration,
                    refresh_at: c.refresh_at,
                }),
                last_error: cache.standing_failure().map(|f| ErrorReport {
                    code: f.error.code().to_owned(),
                    message: f.error.message().to_owned(),
                    at: f.at,
                }),
                sts_calls: cache.sts_calls(),
                attempts: cache.attempts(),
                served: ServedReport {
                    imds: door(cache.usage().of(Door::Imds, now)),
                    container: door(cache.usage().of(Door::Container, now)),
                },
            }
        })
        .collect();
    StatusReport {
        version: crate::VERSION.to_owned(),
        active_role: active.map(|a| a.role().alias.to_string()),
        pid: std::process::id(),
        process_started: crate::platform::processes::own_start(),
        clock_skew: state
            .sts_clock
            .as_ref()
            .and_then(|watch| watch.last())
            .map(|skew| SkewReport {
                seconds: skew.seconds,
                at: skew.at,
            }),
        config: state.reloader.config_path().display().to_string(),
        imdsv2_required: state.imdsv2_required,
        socket_activated: state.socket_activated,
        container_endpoint: state.container.as_ref().map(|c| c.url.clone()),
        mfa: state
            .registry
            .mfa_serials()
            .into_iter()
            .map(|serial| MfaReport {
                session_expires: state.mfa.expiry(&serial),
                serial: serial.as_str().to_owned(),
            })
            .collect(),
        sso: state
            .reloader
            .sso_logins()
            .iter()
            .map(|login| SsoReport {
                session: login.name(),
                expires: match login.token(now) {
                    TokenState::Missing => None,
                    TokenState::Valid { expires } => Some(expires),
                    TokenState::Expired { since } => Some(since),
                },
                renews_until: login.renews_until(now),
                sso_session: login.session.clone(),
                profile: login.profile.clone(),
                login_command: login.command(),
            })
            .collect(),
        identity_center: discovery_reports(state),
        roles,
    }
}

/// Each Identity Center session of the running configuration and its listing.
pub(super) fn discovery_reports(state: &AppState) -> Vec<DiscoveryReport> {
    state
        .reloader
        .discovery
        .sessions()
        .into_iter()
        .filter(|(name, _)| state.reloader.discovers(name))
        .map(|(name, session)| DiscoveryReport {
            sso_session: name,
            listed: session.listing.as_ref().map_or(0, |l| l.assignments.len()),
            listed_at: session.listing.as_ref().map(|l| l.listed_at),
            last_error: session.failure.map(|(at, error)| ErrorReport {
                code: error.code().to_owned(),
                message: error.message().to_owned(),
                at,
            }),
        })
        .collect()
}

fn door(usage: DoorUsage) -> DoorReport {
    DoorReport {
        total: usage.total,
        last_15_minutes: usage.recent,
        last_request: usage.last_at,
    }
}
