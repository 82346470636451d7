//! The whole main-port service (guard, IMDS session check, access log, every route) on any
//! request: method, target, headers, body and peer from the input, written as text (see
//! `fintors_fuzz::WireRequest`).
//!
//! Besides never panicking, for every request: no CORS headers; only the statuses the routes
//! produce (never a 500); a peer, a browser's request or an authority the guard must refuse
//! gets 403 (the authority being an absolute-form target's own, else the one `Host` header's),
//! and no or two `Host` headers 400; credentials anywhere only with a valid token when IMDSv2 is
//! required; no IMDS token for a proxied request.

#![no_main]

use std::sync::LazyLock;

use axum::http::{Method, StatusCode, header};
use fintors::ec2::{TOKEN_HEADER, TOKEN_PATH};
use fintors_fuzz::{FAKE_SECRET, daemon, host_allowed, parse_wire, peer_allowed};
use libfuzzer_sys::fuzz_target;

/// `FUZZ_DEBUG=1`: print each request's outcome (for reading a crash or a seed).
static DEBUG: LazyLock<bool> = LazyLock::new(|| std::env::var_os("FUZZ_DEBUG").is_some());

/// Every status the main service answers with.
const STATUSES: [u16; 9] = [200, 400, 401, 403, 404, 405, 413, 415, 502];

fuzz_target!(
    init: fintors_fuzz::no_imds(),
    |data: &[u8]| {
        let d = daemon();
        let Some(wire) = parse_wire(data, d) else {
            return;
        };
        let request = &wire.request;
        let hosts = request.headers().get_all(header::HOST).iter().count();
        // RFC 9112 §3.2.2: an absolute-form target's authority wins over the Host header.
        let host_ok = match request.uri().authority() {
            Some(authority) => host_allowed(authority.as_str().as_bytes()),
            None => request
                .headers()
                .get(header::HOST)
                .is_some_and(|h| host_allowed(h.as_bytes())),
        };
        let browser = request.headers().contains_key(header::ORIGIN)
            || request
                .headers()
                .get_all("sec-fetch-site")
                .iter()
                .any(|site| site.as_bytes() != b"none");
        // No authority at all (no Host, no absolute-form target) is as malformed as two Hosts.
        let malformed = hosts > 1 || (hosts == 0 && request.uri().authority().is_none());
        let peer_ok = peer_allowed(wire.peer.ip());
        // What the guard lets through, in its order: peer, browser, exactly one Host, authority.
        let admitted = peer_ok && !browser && !malformed && host_ok;
        let token_ok = request
            .headers()
            .get(TOKEN_HEADER)
            .is_some_and(|t| d.token_valid(t.as_bytes()));
        let path = request.uri().path().to_owned();
        let token_request = request.method() == Method::PUT && path == TOKEN_PATH;
        let proxied = request.headers().contains_key("x-forwarded-for");
        let app = if wire.imdsv2_required { &d.app_v2 } else { &d.app };

        let method = wire.request.method().clone();
        let (parts, body) = d.send(app, wire.request, wire.peer);
        let status = parts.status;
        if *DEBUG {
            eprintln!("{method} {path} from {} -> {status}", wire.peer);
        }

        for name in parts.headers.keys() {
            assert!(
                !name.as_str().starts_with("access-control-"),
                "CORS header {name} on {path}"
            );
        }
        assert!(
            STATUSES.contains(&status.as_u16()),
            "unexpected status {status} for {path}"
        );
        if peer_ok && !browser && malformed {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} without exactly one Host");
        } else if !admitted {
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{path} answered despite peer_ok={peer_ok} host_ok={host_ok} browser={browser}"
            );
        }
        let has_credentials = body
            .windows(FAKE_SECRET.len())
            .any(|w| w == FAKE_SECRET.as_bytes());
        if has_credentials {
            assert!(admitted, "credentials for a refused client");
            // Under --imdsv2-required, no GET without a valid token reveals credentials, on IMDS
            // or the role API (a server-side request forgery could make such a GET).
            assert!(
                !wire.imdsv2_required || token_ok,
                "credentials on {path} without a valid token under --imdsv2-required"
            );
        }
        if token_request && proxied {
            assert_ne!(status, StatusCode::OK, "an IMDS token for a proxied request");
        }
    }
);
