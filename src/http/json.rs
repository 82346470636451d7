//! JSON in and out for the role API and the admin API: the same refusals (content type, size)
//! and the same `{"error": "..."}` shape everywhere.
//!
//! State-changing routes accept only `application/json`, which a web page cannot send cross-site
//! without a CORS preflight that fintors never grants, and only small bodies.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::listener::{Connection, HEADER_READ_TIMEOUT};
use crate::api::ApiError;

/// Requests are `{"alias":"..."}` or a set of credentials; anything much larger is not one.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

pub fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

/// `message` as JSON.
pub fn json<T: Serialize>(status: StatusCode, message: &T) -> Response {
    json_response(
        status,
        serde_json::to_string(message).expect("API messages serialize"),
    )
}

/// A refusal: `{"error": "..."}`.
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    json(status, &ApiError::new(message.to_string()))
}

/// The JSON body of a state-changing request as a `T` (see [`read_json_body`]); a body that is
/// not one is answered 400 with `expected`, the shape it should have. serde's own message is
/// passed on only when `quote` allows, since it can quote values (secrets, in a bootstrap body).
pub async fn read_json<T: DeserializeOwned>(
    request: Request,
    expected: &str,
    quote: bool,
) -> Result<T, Response> {
    let body = read_json_body(request).await?;
    serde_json::from_slice(&body).map_err(|e| {
        let why = if quote {
            format!("{e}")
        } else {
            format!("at line {} column {}", e.line(), e.column())
        };
        error(
            StatusCode::BAD_REQUEST,
            format!("invalid request body ({why}); expected {expected}"),
        )
    })
}

/// The body of a state-changing request: JSON content type, at most [`MAX_BODY_BYTES`], within
/// the listener's deadline (a stalled body is 408, and its connection evictable meanwhile).
pub async fn read_json_body(request: Request) -> Result<Bytes, Response> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type {:?} is not accepted; send Content-Type: application/json \
                 (curl: -H 'Content-Type: application/json')",
                content_type
            ),
        ));
    }
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let connection = request.extensions().get::<Connection>().cloned();
    let _waiting = connection.as_ref().map(Connection::waiting_for_body);
    let deadline = connection.map_or(HEADER_READ_TIMEOUT, |c| c.body_deadline());
    match tokio::time::timeout(
        deadline,
        axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES),
    )
    .await
    {
        Ok(body) => body.map_err(|_| too_large()),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                deadline.as_secs_f32()
            ),
        )),
    }
}
