//! The JSON API bodies: the same bytes as the body of `PUT /roles`, `PUT /mfa` and the admin
//! API's `POST /bootstrap/creds`, each sent through the real routers with the right host and
//! content type (the parsing is inline in the handlers, so the handlers are what is fuzzed).
//!
//! Besides never panicking: each route answers only its documented statuses; `PUT /roles`
//! changes the active role exactly when it answers 200; `PUT /mfa` calls STS only for a
//! six-digit code; and `/bootstrap/creds` never echoes any part of a body it refuses.

#![no_main]

use std::sync::atomic::Ordering;

use axum::http::{Method, StatusCode};
use fintors::http::MAX_BODY_BYTES;
use fintors_fuzz::{ALIASES, BOUND, daemon, json_request, loopback_peer};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(
    init: fintors_fuzz::no_imds(),
    |data: &[u8]| {
        let d = daemon();
        let json: Option<Value> = serde_json::from_slice(data).ok();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|v| v.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let too_large = data.len() > MAX_BODY_BYTES;

        // PUT /roles
        let before = d.active_alias();
        let (parts, body) = d.send(
            &d.app,
            json_request(Method::PUT, "/roles", BOUND, data),
            loopback_peer(),
        );
        let after = d.active_alias();
        match parts.status {
            StatusCode::OK => {
                let answer: Value = serde_json::from_slice(&body).expect("a JSON answer");
                let alias = answer["active_role"].as_str().expect("active_role");
                assert!(ALIASES.contains(&alias), "switched to unknown role {alias}");
                assert_eq!(after.as_deref(), Some(alias), "200 but the active role is {after:?}");
                assert_eq!(field("alias").as_deref(), Some(alias));
            }
            StatusCode::BAD_GATEWAY => {
                // Only the roles the fake STS refuses.
                assert!(matches!(field("alias").as_deref(), Some("broken" | "mfa")));
                assert_eq!(before, after, "a failed switch changed the active role");
            }
            StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::PAYLOAD_TOO_LARGE => {
                assert_eq!(before, after, "a refused switch changed the active role");
            }
            other => panic!("PUT /roles answered {other}"),
        }
        assert_eq!(too_large, parts.status == StatusCode::PAYLOAD_TOO_LARGE);

        // PUT /mfa
        let calls = d.sts_http_calls.load(Ordering::SeqCst);
        let (parts, _) = d.send(
            &d.app,
            json_request(Method::PUT, "/mfa", BOUND, data),
            loopback_peer(),
        );
        let sts_calls = d.sts_http_calls.load(Ordering::SeqCst) - calls;
        match parts.status {
            StatusCode::BAD_GATEWAY => {
                assert_eq!(sts_calls, 1, "a 502 without exactly one STS call");
                let code = field("code").expect("a code");
                assert!(
                    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
                    "STS was asked with the code {code:?}"
                );
            }
            StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::PAYLOAD_TOO_LARGE => {
                assert_eq!(sts_calls, 0, "STS was called for a refused request");
            }
            other => panic!("PUT /mfa answered {other}"),
        }

        // Admin: POST /bootstrap/creds
        let (parts, body) = d.send(
            &d.admin,
            json_request(Method::POST, "/bootstrap/creds", fintors_fuzz::ADMIN_BOUND, data),
            loopback_peer(),
        );
        match parts.status {
            StatusCode::NO_CONTENT => assert!(body.is_empty()),
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => {
                let answer: Value = serde_json::from_slice(&body).expect("a JSON answer");
                let message = without_digits(answer["error"].as_str().expect("an error"));
                assert!(
                    BOOTSTRAP_REFUSALS.iter().any(|m| without_digits(m) == message),
                    "/bootstrap/creds answered a message of its own making: {message:?}"
                );
            }
            other => panic!("POST /bootstrap/creds answered {other}"),
        }
    }
);

/// Everything `/bootstrap/creds` may say when it refuses a body (numbers aside): fixed text only,
/// because the body holds secrets.
const BOOTSTRAP_REFUSALS: [&str; 3] = [
    "invalid request body (at line 0 column 0); expected {\"AccessKeyId\": \"...\", \
     \"SecretAccessKey\": \"...\", \"Token\": \"...\"} (Token optional)",
    "AccessKeyId and SecretAccessKey must not be empty",
    "request body is larger than 0 bytes",
];

fn without_digits(s: &str) -> String {
    s.chars().filter(|c| !c.is_ascii_digit()).collect()
}
