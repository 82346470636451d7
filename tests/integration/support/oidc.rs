//! A fake SSO OIDC on 127.0.0.1, in the wire format of botocore's `sso-oidc/2019-06-10`
//! (restJson1; errors carry their type in `__type`, which both botocore and the Rust SDK read):
//!
//! - `POST /client/register`: a client per call (`client-N`, `secret-N`), for 90 days, with the
//!   grants and redirect URIs asked for;
//! - `GET /authorize`: the sign-in page, which approves at once and redirects the browser to
//!   the client's loopback `redirect_uri` with a code and the `state` it was given;
//! - `POST /device_authorization`: a device code, polled at a 1 s interval;
//! - `POST /token`: the authorization code grant (the PKCE verifier checked against the
//!   challenge, the redirect URI against the authorize request's), the device code grant
//!   (answered by a script: `authorization_pending`, `slow_down`, then a token) and the refresh
//!   token grant (`refresh-1` and every refresh token issued since; each spent once).
//!
//! Every access token issued is added to what the fake portal accepts.

use std::sync::{Arc, Mutex};

use base64::Engine;
use sha2::Digest;

use super::{FakeServer, Request};

pub struct FakeOidc {
    pub server: FakeServer,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    clients: Vec<Client>,
    /// The client the AWS CLI registered for the caches `write_token_cache` writes.
    seeded: Option<Client>,
    codes: Vec<Code>,
    /// What the device code grant answers, in order, before it issues a token.
    device_script: Vec<&'static str>,
    refresh_tokens: Vec<String>,
    issued: usize,
    /// The lifetime of the access tokens issued, in seconds.
    expires_in: i64,
    /// The access tokens the portal accepts.
    portal: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
    pub grants: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
}

struct Code {
    code: String,
    client_id: String,
    challenge: String,
    redirect_uri: String,
    used: bool,
}

impl FakeOidc {
    /// A fake whose tokens the portal holding `portal` accepts; the refresh token `refresh-1`
    /// is good, and a device sign-in is pending once, told to slow down once, then approved.
    pub fn start(portal: Arc<Mutex<Vec<String>>>) -> FakeOidc {
        let state = Arc::new(Mutex::new(State {
            device_script: vec!["authorization_pending", "slow_down"],
            refresh_tokens: vec!["refresh-1".into()],
            expires_in: 28800,
            seeded: Some(Client {
                id: "client-1".into(),
                secret: "client-secret-1".into(),
                grants: vec![],
                redirect_uris: vec![],
                scopes: vec![],
            }),
            portal,
            ..State::default()
        }));
        let shared = state.clone();
        let server = FakeServer::start(move |r: &Request| {
            let mut state = shared.lock().unwrap();
            let base = format!("http://{}", r.header("host").unwrap_or("127.0.0.1"));
            match (r.method.as_str(), r.path()) {
                ("POST", "/client/register") => state.register(r),
                ("GET", "/authorize") => state.authorize(r),
                ("POST", "/device_authorization") => state.device(r, &base),
                ("POST", "/token") => state.token(r),
                _ => (404, "application/json", "{}".into()),
            }
        });
        FakeOidc { server, state }
    }

    /// Access tokens are issued for `seconds` from now on.
    pub fn token_lifetime(&self, seconds: i64) {
        self.state.lock().unwrap().expires_in = seconds;
    }

    /// The clients registered so far.
    pub fn clients(&self) -> Vec<Client> {
        self.state.lock().unwrap().clients.clone()
    }

    /// The `CreateToken` calls made, by grant type.
    pub fn token_calls(&self, grant: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path() == "/token" && json(r)["grantType"] == grant)
            .count()
    }

    /// Every `CreateToken` call made.
    pub fn all_token_calls(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path() == "/token")
            .count()
    }
}

fn json(r: &Request) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_default()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// An OIDC error: `error` as RFC 6749 names it, and the SDK's exception type.
fn error(status: u16, error: &str, exception: &str) -> (u16, &'static str, String) {
    (
        status,
        "application/json",
        serde_json::json!({
            "error": error,
            "error_description": format!("{error} (fake SSO OIDC)"),
            "__type": exception,
        })
        .to_string(),
    )
}

impl State {
    fn register(&mut self, r: &Request) -> (u16, &'static str, String) {
        let body = json(r);
        let n = self.clients.len() + 1;
        let client = Client {
            id: format!("client-{n}"),
            secret: format!("secret-{n}"),
            grants: strings(&body["grantTypes"]),
            redirect_uris: strings(&body["redirectUris"]),
            scopes: strings(&body["scopes"]),
        };
        let now = chrono::Utc::now().timestamp();
        let answer = serde_json::json!({
            "clientId": client.id,
            "clientSecret": client.secret,
            "clientIdIssuedAt": now,
            "clientSecretExpiresAt": now + 90 * 86400,
        });
        self.clients.push(client);
        (200, "application/json", answer.to_string())
    }

    fn client(&self, id: &str, secret: Option<&str>) -> Option<&Client> {
        self.clients
            .iter()
            .chain(&self.seeded)
            .find(|c| c.id == id && secret.is_none_or(|s| s == c.secret))
    }

    /// The sign-in page: approves at once, back to the client's loopback redirect.
    fn authorize(&mut self, r: &Request) -> (u16, &'static str, String) {
        let query = r.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let params: std::collections::HashMap<String, String> =
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        let get = |k: &str| params.get(k).cloned().unwrap_or_default();
        let redirect = get("redirect_uri");
        let Some(client) = self.client(&get("client_id"), None) else {
            return (400, "text/plain", "unknown client".into());
        };
        // Registered as http://127.0.0.1/oauth/callback: any loopback port (RFC 8252, 7.3).
        let registered = client.redirect_uris.iter().any(|u| {
            u == "http://127.0.0.1/oauth/callback"
                && redirect.starts_with("http://127.0.0.1:")
                && redirect.ends_with("/oauth/callback")
        });
        let method_ok = get("response_type") == "code" && get("code_challenge_method") == "S256";
        if !client.grants.iter().any(|g| g == "authorization_code") || !registered || !method_ok {
            return (400, "text/plain", "not a client of the code grant".into());
        }
        let code = format!("code-{}", self.codes.len() + 1);
        self.codes.push(Code {
            code: code.clone(),
            client_id: get("client_id"),
            challenge: get("code_challenge"),
            redirect_uri: redirect.clone(),
            used: false,
        });
        let back: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", &get("state"))
            .finish();
        (302, "text/plain", format!("{redirect}?{back}"))
    }

    fn device(&mut self, r: &Request, base: &str) -> (u16, &'static str, String) {
        let body = json(r);
        let (id, secret) = (
            body["clientId"].as_str().unwrap_or(""),
            body["clientSecret"].as_str().unwrap_or(""),
        );
        if self.client(id, Some(secret)).is_none() {
            return error(400, "invalid_client", "InvalidClientException");
        }
        let answer = serde_json::json!({
            "deviceCode": "device-1",
            "userCode": "ABCD-EFGH",
            "verificationUri": format!("{base}/device"),
            "verificationUriComplete": format!("{base}/device?user_code=ABCD-EFGH"),
            "expiresIn": 600,
            "interval": 1,
        });
        (200, "application/json", answer.to_string())
    }

    fn token(&mut self, r: &Request) -> (u16, &'static str, String) {
        let body = json(r);
        let text = |k: &str| body[k].as_str().unwrap_or("").to_owned();
        if self
            .client(&text("clientId"), Some(&text("clientSecret")))
            .is_none()
        {
            return error(400, "invalid_client", "InvalidClientException");
        }
        match text("grantType").as_str() {
            "authorization_code" => {
                let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(text("codeVerifier")));
                let found = self.codes.iter_mut().find(|c| {
                    c.code == text("code")
                        && !c.used
                        && c.client_id == text("clientId")
                        && c.redirect_uri == text("redirectUri")
                        && c.challenge == challenge
                });
                match found {
                    Some(code) => {
                        code.used = true;
                        self.issue()
                    }
                    None => error(400, "invalid_grant", "InvalidGrantException"),
                }
            }
            "urn:ietf:params:oauth:grant-type:device_code" => {
                if text("deviceCode") != "device-1" {
                    return error(400, "invalid_grant", "InvalidGrantException");
                }
                if self.device_script.is_empty() {
                    return self.issue();
                }
                match self.device_script.remove(0) {
                    "slow_down" => error(400, "slow_down", "SlowDownException"),
                    _ => error(
                        400,
                        "authorization_pending",
                        "AuthorizationPendingException",
                    ),
                }
            }
            "refresh_token" => {
                let given = text("refreshToken");
                match self.refresh_tokens.iter().position(|t| *t == given) {
                    Some(i) => {
                        self.refresh_tokens.remove(i);
                        self.issue()
                    }
                    None => error(400, "invalid_grant", "InvalidGrantException"),
                }
            }
            _ => error(
                400,
                "unsupported_grant_type",
                "UnsupportedGrantTypeException",
            ),
        }
    }

    /// A new access token (the first is `refreshed-access-token`, for the tests that only
    /// refresh), and a refresh token for it.
    fn issue(&mut self) -> (u16, &'static str, String) {
        self.issued += 1;
        let access = match self.issued {
            1 => "refreshed-access-token".to_owned(),
            n => format!("access-token-{n}"),
        };
        let refresh = format!("refresh-{}", self.issued + 1);
        self.refresh_tokens.push(refresh.clone());
        self.portal.lock().unwrap().push(access.clone());
        let answer = serde_json::json!({
            "accessToken": access,
            "expiresIn": self.expires_in,
            "refreshToken": refresh,
            "tokenType": "Bearer",
        });
        (200, "application/json", answer.to_string())
    }
}
