//! `PUT /mfa`: a code from the user's device starts the MFA session that the roles needing MFA
//! are assumed with (see [`crate::credentials::mfa`]). The code is never logged or echoed.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::put;

use super::json::{error, json, read_json};
use super::state::AppState;
use crate::api::{ApiError, MfaRequest, MfaStarted, paths};
use crate::credentials::MfaError;
use crate::model::MfaSerial;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(paths::MFA, put(supply_code))
}

/// `PUT /mfa {"code": "123456"[, "serial": "..."]}`: starts the device's session, then assumes
/// every role that was waiting for it.
async fn supply_code(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let expected =
        "{\"code\": \"123456\"} (and \"serial\" when several MFA devices are configured)";
    // serde's message could quote the code: only its position is repeated.
    let wanted: MfaRequest = match read_json(request, expected, false).await {
        Ok(wanted) => wanted,
        Err(refusal) => return refusal,
    };
    let serials = state.registry.mfa_serials();
    let serial = match (wanted.serial, serials.as_slice()) {
        (Some(s), _) => match serials.iter().find(|k| k.as_str() == s) {
            Some(k) => k.clone(),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("no role uses the MFA device {s}"),
                );
            }
        },
        (None, [only]) => only.clone(),
        (None, []) => return error(StatusCode::BAD_REQUEST, "no configured role needs MFA"),
        (None, several) => {
            let names: Vec<&str> = several.iter().map(MfaSerial::as_str).collect();
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "several MFA devices are configured; name one with \"serial\": {}",
                    names.join(", ")
                ),
            );
        }
    };
    match state.mfa.start(&serial, &wanted.code).await {
        Ok(expires) => {
            state.registry.retry_pending().await;
            json(
                StatusCode::OK,
                &MfaStarted {
                    serial: serial.as_str().to_owned(),
                    expires,
                },
            )
        }
        Err(e @ MfaError::InvalidCode) => error(StatusCode::BAD_REQUEST, e),
        Err(MfaError::Sts(e)) => json(
            StatusCode::BAD_GATEWAY,
            &ApiError {
                error: format!("MFA session for {} refused: {e}", serial.as_str()),
                code: Some(e.code().to_owned()),
                message: Some(e.message().to_owned()),
            },
        ),
    }
}
