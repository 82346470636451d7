//! The API's versions (`GET /`) and the rest of the instance metadata tree under `/latest/`
//! (which every dated version reads as: `app.rs`): the instance as
//! [`crate::ec2::instance`] describes it, seen with the active role as its instance profile (its
//! region, its account), as a real instance with that profile would report.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::imds::{RouteBoth, not_found, text};
use super::state::AppState;
use crate::ec2::instance::{Context, DEFAULT_ACCOUNT, dynamic_listing, latest_listing};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(versions))
        .route_both("/latest", get(latest))
        .route_both("/latest/meta-data", get(meta_data_root))
        .route("/latest/meta-data/{*path}", get(meta_data))
        .route_both("/latest/dynamic", get(dynamic_root))
        .route("/latest/dynamic/{*path}", get(dynamic))
        .route_both("/latest/user-data", get(user_data))
        .route(
            crate::api::paths::IDENTITY_CERTIFICATE,
            get(identity_certificate),
        )
}

/// The instance seen with the active role, the instance's own values as fallback.
fn with_context<T>(state: &AppState, f: impl FnOnce(&Context) -> T) -> T {
    let instance = &state.instance;
    let active = state.registry.active();
    let role = active.as_ref().map(|a| a.role());
    // With no active role, the account is the first role's: still this user's account.
    let arn = state.account_arn();
    let arn = arn.as_ref();
    let events = state.events.current();
    let context = Context {
        instance,
        events: &events,
        region: role
            .and_then(|r| r.region.as_ref())
            .map_or(instance.region.as_str(), |r| r.as_str()),
        account_id: arn.map_or(DEFAULT_ACCOUNT, |a| a.account_id()),
        partition: arn.map_or("aws", |a| a.partition()),
    };
    f(&context)
}

fn found(body: Option<String>) -> Response {
    match body {
        Some(body) => text(StatusCode::OK, body),
        None => not_found(),
    }
}

/// `GET /`: every API version, one a line, as EC2 lists them.
async fn versions() -> Response {
    text(StatusCode::OK, crate::ec2::API_VERSIONS.join("\n"))
}

async fn latest(State(state): State<Arc<AppState>>) -> Response {
    text(StatusCode::OK, latest_listing(&state.instance))
}

async fn meta_data_root(State(state): State<Arc<AppState>>) -> Response {
    with_context(&state, |c| found(c.meta_data("")))
}

async fn meta_data(State(state): State<Arc<AppState>>, Path(path): Path<String>) -> Response {
    with_context(&state, |c| found(c.meta_data(&path)))
}

async fn dynamic_root() -> Response {
    found(dynamic_listing("").map(str::to_owned))
}

/// `/latest/dynamic/...`: the identity document, its signatures and the listings.
async fn dynamic(State(state): State<Arc<AppState>>, Path(path): Path<String>) -> Response {
    // `pkcs7` and `rsa2048` are the same SignedData here (one RSA key).
    let raw_signature = match path.trim_end_matches('/') {
        "instance-identity/document" => {
            return with_context(&state, |c| text(StatusCode::OK, c.identity_document()));
        }
        "instance-identity/signature" => true,
        "instance-identity/pkcs7" | "instance-identity/rsa2048" => false,
        _ => return found(dynamic_listing(&path).map(str::to_owned)),
    };
    let signer = match state.identity.get().await {
        Ok(signer) => signer,
        Err(why) => return unsigned(&why),
    };
    let document = with_context(&state, |c| c.identity_document());
    let signatures = signer.sign(&document, state.clock.now());
    text(
        StatusCode::OK,
        if raw_signature {
            signatures.signature.clone()
        } else {
            signatures.signed_data.clone()
        },
    )
}

/// No signing key (its file is damaged, the state directory unwritable): a 500 that says why,
/// and the same line in the log, where the user looks (with the causes at `-vv`).
fn unsigned(why: &crate::ec2::identity_signing::MakeError) -> Response {
    let line = format!("cannot sign the identity document: {why}");
    tracing::error!("{line}");
    tracing::debug!("cannot sign the identity document: {why:?}");
    text(StatusCode::INTERNAL_SERVER_ERROR, line)
}

/// `GET /fintors/identity-certificate`: the certificate that verifies the identity document's
/// signatures (fintors's own, not AWS's), PEM.
async fn identity_certificate(State(state): State<Arc<AppState>>) -> Response {
    match state.identity.get().await {
        Ok(signer) => text(StatusCode::OK, signer.certificate_pem().to_owned()),
        Err(why) => unsigned(&why),
    }
}

/// `user-data` and `user-data/` alike: the bytes as given, as an octet stream (EC2 does not
/// know what they are; cloud-init and boot scripts read them raw).
async fn user_data(State(state): State<Arc<AppState>>) -> Response {
    match state.instance.user_data.as_ref().map(std::fs::read) {
        Some(Ok(bytes)) => {
            let mut answer = text(StatusCode::OK, bytes);
            answer.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/octet-stream"),
            );
            answer
        }
        _ => not_found(),
    }
}
