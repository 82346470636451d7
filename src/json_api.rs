//! JSON in and out for the role API and the admin API: the same refusals (content type, size)
//! and the same `{"error": "..."}` shape everywhere.
//!
//! State-changing routes accept only `application/json`, which a web page cannot send cross-site
//! without a CORS preflight that fintors never grants, and only small bodies.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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

pub fn json_value(status: StatusCode, value: serde_json::Value) -> Response {
    json_response(status, value.to_string())
}

pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    json_value(status, json!({ "error": message.to_string() }))
}

/// The body of a state-changing request: JSON content type, at most [`MAX_BODY_BYTES`].
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
    axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| too_large())
}
