//! The container credentials endpoint (`--ecs-port`, on by default): the same credentials in the
//! form the SDKs' ECS/container provider reads from `AWS_CONTAINER_CREDENTIALS_FULL_URI`, for
//! the active role (`/creds`) or any one role (`/creds/ROLE`).
//!
//! It is how several roles are used at once: `fintors exec`, a shell pinned with `fintors env
//! --role` and containers behind `fintors network up --containers` each name their role in the
//! URL, and all share the role's one cache. It needs no root. It listens on 127.0.0.1 only, its
//! guard admits this machine and its bridged containers ([`Guard::for_containers`]), and every
//! request must carry the token for what it asks: `/creds/ROLE` that role's, `/creds` the active
//! role's ([`crate::ec2::container_tokens`]), compared in constant time. A process or container
//! pinned to one role can read no other. Its answers and refusals are JSON, as ECS's are.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{self, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;

use super::guard::{Guard, Refusal};
use super::state::AppState;
use super::throttle::{self, Throttle};
use crate::api::paths;
use crate::credentials::{Door, Issued, RoleCache};
use crate::ec2::container_tokens::{ContainerKey, Scope};
use crate::ec2::document::ContainerError;

/// The endpoint: what its routes and its fast path share.
pub struct Endpoint {
    state: Arc<AppState>,
    guard: Arc<Guard>,
    key: ContainerKey,
}

impl Endpoint {
    pub fn new(state: Arc<AppState>, guard: Arc<Guard>, key: ContainerKey) -> Arc<Self> {
        Arc::new(Endpoint { state, guard, key })
    }

    /// Cached credentials for a GET of `/creds` or `/creds/ROLE` with the right token, answered
    /// as the routes would, without the router; anything else (refusals included) is left to it.
    pub fn cached<B>(&self, request: &http::Request<B>, peer: SocketAddr) -> Option<Response> {
        if request.method() != http::Method::GET {
            return None;
        }
        let scope = scope(request.uri().path())?;
        self.guard.check(peer, request).ok()?;
        let given = request.headers().get(header::AUTHORIZATION)?;
        if !self.key.admits(scope, given.as_bytes()) {
            return None;
        }
        let cache = match scope {
            Scope::Active => self.state.registry.active()?,
            Scope::Role(alias) => self.state.registry.role(alias)?,
        };
        let issued = cache.serve_cached(Door::Container)?;
        Some(credentials(&issued))
    }
}

pub fn router(endpoint: &Arc<Endpoint>) -> Router {
    let endpoint = endpoint.clone();
    Router::new()
        .route(paths::CONTAINER_ACTIVE, get(active_credentials))
        .route(paths::CONTAINER_ROLE, get(role_credentials))
        .fallback(|| async { json_response(StatusCode::NOT_FOUND, "NotFound", "no such path") })
        .layer(middleware::from_fn_with_state(endpoint.clone(), authorize))
        .with_state(endpoint)
}

/// A refusal, as the container endpoint words it: `{"Code": "Forbidden", "Message": ...}`.
pub fn refused(refusal: Refusal) -> Response {
    let status = refusal.status();
    let code = status
        .canonical_reason()
        .unwrap_or_default()
        .replace(' ', "");
    json_response(status, &code, refusal.reason())
}

fn json_response(status: StatusCode, code: &str, message: &str) -> Response {
    super::json::json(
        status,
        &ContainerError {
            code: code.into(),
            message: message.into(),
        },
    )
}

async fn authorize(
    State(endpoint): State<Arc<Endpoint>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = endpoint.guard.admit(peer, &request) {
        return refused(refusal);
    }
    // Any other path is a 404 whoever asks: it opens nothing.
    let Some(scope) = scope(request.uri().path()) else {
        return next.run(request).await;
    };
    // The SDKs send the token verbatim, without a "Bearer" scheme.
    match request.headers().get(header::AUTHORIZATION) {
        None => json_response(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "an Authorization header with the role's token is required (`fintors env --role ROLE`)",
        ),
        Some(given) if endpoint.key.admits(scope, given.as_bytes()) => next.run(request).await,
        Some(_) => {
            static WRONG: Throttle = Throttle::new();
            if let Some(unsaid) = WRONG.due() {
                tracing::warn!(
                    "refused a container credentials request from {peer} with a wrong token for \
                     {}{}",
                    match scope {
                        Scope::Active => "the active role".to_owned(),
                        Scope::Role(alias) => format!("role {alias}"),
                    },
                    throttle::more(unsaid)
                );
            }
            json_response(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "wrong authorization token for this role",
            )
        }
    }
}

/// What a path asks for, and so which token it needs: `/creds` the active role, `/creds/ROLE`
/// that role.
fn scope(path: &str) -> Option<Scope<'_>> {
    let rest = path.strip_prefix(paths::CONTAINER_ACTIVE)?;
    match rest.strip_prefix('/') {
        None if rest.is_empty() => Some(Scope::Active),
        Some(alias) if !alias.is_empty() && !alias.contains('/') => Some(Scope::Role(alias)),
        _ => None,
    }
}

async fn active_credentials(State(endpoint): State<Arc<Endpoint>>) -> Response {
    match endpoint.state.registry.active() {
        Some(cache) => serve(&cache).await,
        None => json_response(
            StatusCode::NOT_FOUND,
            "NoActiveRole",
            "no role is active: run `fintors use ROLE`",
        ),
    }
}

async fn role_credentials(
    State(endpoint): State<Arc<Endpoint>>,
    Path(alias): Path<String>,
) -> Response {
    match endpoint.state.registry.role(&alias) {
        Some(cache) => serve(&cache).await,
        None => json_response(
            StatusCode::NOT_FOUND,
            "NoSuchRole",
            &format!("unknown role: {alias}"),
        ),
    }
}

async fn serve(cache: &Arc<RoleCache>) -> Response {
    match cache.serve(Door::Container).await {
        Ok(issued) => credentials(&issued),
        Err(failure) => json_response(
            StatusCode::BAD_GATEWAY,
            failure.error.code(),
            failure.error.message(),
        ),
    }
}

fn credentials(issued: &Issued) -> Response {
    super::json::json_response(StatusCode::OK, issued.container_document.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_needs_the_token_of_what_it_names() {
        assert_eq!(scope("/creds"), Some(Scope::Active));
        assert_eq!(scope("/creds/ops"), Some(Scope::Role("ops")));
        assert_eq!(scope("/creds/"), None);
        assert_eq!(scope("/creds/ops/x"), None);
        assert_eq!(scope("/credsx"), None);
        assert_eq!(scope("/"), None);
    }
}
