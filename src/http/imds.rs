//! IMDS's session tokens and the instance profile's credentials, as real clients expect them
//! (the rest of the metadata tree is [`super::metadata`]).
//!
//! Session handling follows EC2: `PUT /latest/api/token` hands out IMDSv2 tokens; a request that
//! carries one must carry a valid one (401 otherwise) and is told the token's remaining lifetime;
//! a request without one is served as IMDSv1 unless `--imdsv2-required`. Every response comes
//! from `Server: EC2ws`, as `text/plain`, or as EC2's HTML page for a 400, 401 or 404, because
//! that is what the SDKs and metadata readers were written against.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{self, HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, put};

use super::guard::Refusal;
use super::state::AppState;
use crate::credentials::{Door, Issued};
use crate::ec2::document::{IamInfo, error_page, render};
use crate::ec2::instance::DEFAULT_ACCOUNT;
use crate::ec2::tokens::{MAX_TTL, MIN_TTL, TokenError};
use crate::ec2::{CREDENTIALS_PATH, EXTENDED_CREDENTIALS_PATH};

pub const TOKEN_HEADER: HeaderName = HeaderName::from_static(crate::ec2::TOKEN_HEADER);
pub const TTL_HEADER: HeaderName = HeaderName::from_static(crate::ec2::TTL_HEADER);
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            crate::ec2::TOKEN_PATH,
            put(issue_token)
                .options(token_options)
                .fallback(token_wrong_method),
        )
        .route_both(CREDENTIALS_PATH, get(active_role))
        .route(
            &format!("{CREDENTIALS_PATH}/{{alias}}"),
            get(role_credentials),
        )
        .route_both(EXTENDED_CREDENTIALS_PATH, get(active_role))
        .route(
            &format!("{EXTENDED_CREDENTIALS_PATH}/{{alias}}"),
            get(role_credentials_extended),
        )
        .route_both("/latest/meta-data/iam/info", get(iam_info))
}

/// Clients ask for directories with and without the trailing slash; both must answer alike.
pub(super) trait RouteBoth {
    fn route_both(self, path: &str, handler: MethodRouter<Arc<AppState>>) -> Self;
}

impl RouteBoth for Router<Arc<AppState>> {
    fn route_both(self, path: &str, handler: MethodRouter<Arc<AppState>>) -> Self {
        self.route(path, handler.clone())
            .route(&format!("{path}/"), handler)
    }
}

/// An IMDS answer: `text/plain` from `EC2ws`, as real EC2 sends (some tools check the server
/// name to tell they are on an instance).
/// Built by hand rather than from a tuple, whose header values are parsed and checked on every
/// call: this is every cached credential's answer.
pub fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(header::SERVER, HeaderValue::from_static("EC2ws"));
    response
}

/// An error as EC2 words it: its HTML page, from `EC2ws`.
pub fn ec2_error(status: StatusCode) -> Response {
    let page = error_page(
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
    );
    let mut response = text(status, page);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

pub fn not_found() -> Response {
    ec2_error(StatusCode::NOT_FOUND)
}

/// What answers a path no route serves: EC2's page, or for fintors's own API a line of text its
/// clients can print.
pub fn unrouted(uri: axum::http::Uri) -> Response {
    if crate::api::paths::in_api(uri.path()) {
        text(StatusCode::NOT_FOUND, "404 - Not Found: no such route")
    } else {
        not_found()
    }
}

/// The guard's refusal, as the IMDS listener words it.
pub fn refused(refusal: Refusal) -> Response {
    let status = refusal.status();
    text(
        status,
        format!(
            "{} - {}: {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default(),
            refusal.reason()
        ),
    )
}

/// A request under `/latest/` without a valid session token where one is needed: a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized {
    /// Whether the request was for fintors's own API, which is answered in plain text (its
    /// clients print the body), not with EC2's page.
    api: bool,
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        if self.api {
            text(StatusCode::UNAUTHORIZED, "")
        } else {
            ec2_error(StatusCode::UNAUTHORIZED)
        }
    }
}

/// The IMDS session check, for everything under `/latest/` except the token route, for the
/// role API's credentials (a server-side request forgery that can make a GET could otherwise
/// read them there, which is what `--imdsv2-required` is meant to stop), and under
/// `--imdsv2-required` for all of fintors's API but the browser's console handoff: `Ok(Some(n))`
/// for a valid token with `n` seconds left, `Ok(None)` for an IMDSv1 request (or any other path),
/// `Unauthorized` when the token is invalid, or missing under `--imdsv2-required`.
pub fn session<B>(
    state: &AppState,
    request: &http::Request<B>,
) -> Result<Option<u32>, Unauthorized> {
    check_session(state, request, state.clock.seconds()).map_err(|why| {
        if let Some(why) = why {
            tracing::debug!("refused IMDS session token: {why}");
        }
        Unauthorized {
            api: crate::api::paths::in_api(request.uri().path()),
        }
    })
}

/// [`session`] without the log line, at `now` (Unix seconds, the state's clock); the error says
/// why a token was refused (`None`: no token where one is required).
pub fn check_session<B>(
    state: &AppState,
    request: &http::Request<B>,
    now: i64,
) -> Result<Option<u32>, Option<TokenError>> {
    let path = request.uri().path();
    let in_session = (path.starts_with("/latest/") && path != crate::ec2::TOKEN_PATH)
        || crate::api::paths::grants_a_role(path)
        || (state.imdsv2_required && crate::api::paths::in_api(path));
    if !in_session {
        return Ok(None);
    }
    match request.headers().get(TOKEN_HEADER) {
        Some(token) => token
            .to_str()
            .map_err(|_| TokenError::Malformed)
            .and_then(|t| state.tokens.verify(t, now))
            .map(Some)
            .map_err(Some),
        None if state.imdsv2_required => Err(None),
        None => Ok(None),
    }
}

/// Tells an IMDSv2 client how long its token has left, as EC2 does on every answer.
pub fn report_token_ttl(response: &mut Response, remaining: u32) {
    response
        .headers_mut()
        .insert(TTL_HEADER, HeaderValue::from(remaining));
}

async fn issue_token(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    token(&state, &headers, state.clock.seconds())
}

/// `PUT /latest/api/token`'s answer to a request with `headers` at `now` (Unix seconds, the
/// state's clock); the route's and the fast path's.
pub fn token(state: &AppState, headers: &HeaderMap, now: i64) -> Response {
    // Real IMDS refuses tokens to anything that came through a proxy: a token obtained by a
    // proxied request could be replayed from elsewhere.
    if headers.contains_key(X_FORWARDED_FOR) {
        return text(StatusCode::FORBIDDEN, "");
    }
    let ttl = headers
        .get(TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|ttl| (MIN_TTL..=MAX_TTL).contains(ttl));
    let Some(ttl) = ttl else {
        return ec2_error(StatusCode::BAD_REQUEST);
    };
    let token = state.tokens.issue(ttl, now);
    let mut response = text(StatusCode::OK, token);
    response
        .headers_mut()
        .insert(TTL_HEADER, HeaderValue::from(ttl));
    response
}

async fn token_options() -> Response {
    token_allow(StatusCode::OK)
}

async fn token_wrong_method() -> Response {
    token_allow(StatusCode::METHOD_NOT_ALLOWED)
}

fn token_allow(status: StatusCode) -> Response {
    let mut response = text(status, "");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("OPTIONS, PUT"));
    response
}

async fn active_role(State(state): State<Arc<AppState>>) -> Response {
    listing(&state)
}

/// The credentials listing: the instance profile's role name, the active alias (no trailing
/// newline, as EC2); the route's and the fast path's.
pub fn listing(state: &AppState) -> Response {
    match state.registry.active() {
        Some(active) => text(StatusCode::OK, active.role().alias.to_string()),
        None => not_found(),
    }
}

async fn role_credentials(state: State<Arc<AppState>>, alias: Path<String>) -> Response {
    credentials(state, alias, false).await
}

async fn role_credentials_extended(state: State<Arc<AppState>>, alias: Path<String>) -> Response {
    credentials(state, alias, true).await
}

async fn credentials(
    State(state): State<Arc<AppState>>,
    Path(alias): Path<String>,
    extended: bool,
) -> Response {
    // A reader may take the name from iam/info's instance profile instead of the listing:
    // that name is the active role's too.
    let named = || {
        state
            .registry
            .active()
            .filter(|active| profile_name(active.role()) == alias)
    };
    let Some(cache) = state.registry.role(&alias).or_else(named) else {
        return not_found();
    };
    match cache.serve(Door::Imds).await {
        Ok(issued) => credentials_document(&issued, extended),
        // EC2 reports a role it cannot assume as a 200 document with the error's code.
        Err(failure) => text(StatusCode::OK, failure.document.clone()),
    }
}

/// The name `iam/info` gives the instance profile of `role`: its role name (of its ARN), or its
/// alias when it has no ARN (a credential command's).
fn profile_name(role: &crate::model::Role) -> &str {
    role.arn
        .as_ref()
        .map_or(role.alias.as_str(), |arn| arn.role_name())
}

/// The credential document (or its `-extended` variant) for issued credentials.
pub fn credentials_document(issued: &Issued, extended: bool) -> Response {
    let document = if extended {
        &issued.extended_document
    } else {
        &issued.document
    };
    text(StatusCode::OK, document.clone())
}

async fn iam_info(State(state): State<Arc<AppState>>) -> Response {
    let Some(active) = state.registry.active() else {
        return not_found();
    };
    let last_updated = active
        .cached()
        .map(|c| c.fetched_at)
        .unwrap_or_else(|| state.clock.now());
    let info = match &active.role().arn {
        Some(arn) => IamInfo::new(arn, last_updated),
        None => {
            let account = state.account_arn();
            IamInfo::named(
                account.as_ref().map_or("aws", |a| a.partition()),
                account.as_ref().map_or(DEFAULT_ACCOUNT, |a| a.account_id()),
                profile_name(active.role()),
                last_updated,
            )
        }
    };
    text(StatusCode::OK, render(&info))
}
