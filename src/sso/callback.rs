//! The loopback listener of a browser sign-in, bound on 127.0.0.1 before the browser opens. It
//! answers two requests, and only from processes of this user (on Linux, the kernel is asked
//! who holds the connecting socket, as the daemon asks):
//!
//! - `GET /start/NONCE`, once: a redirect to the authorize page. The browser is given this
//!   link rather than the authorize URL, so that the sign-in's `state` and challenge are never
//!   on a command line, which every user of the machine can read.
//! - `GET /oauth/callback?code=..&state=..` (or `?error=..&state=..`): the browser's return.
//!   Only one with this sign-in's state (compared in constant time) is taken, an error too;
//!   any other is answered and ignored, so a web page cannot end or steer the sign-in.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

use super::SsoError;
use crate::model::Secret;

pub const CALLBACK_PATH: &str = "/oauth/callback";
const START_PATH: &str = "/start/";

/// A bound listener, waiting to be given its sign-in.
pub struct Callback {
    listener: tokio::net::TcpListener,
    port: u16,
    nonce: String,
}

/// What the browser came back with: the code, or why there is none.
type Outcome = Result<Secret, SsoError>;

/// What the listener's connections share.
struct Waiting {
    authorize_url: String,
    nonce: String,
    state: String,
    started: Mutex<bool>,
    outcome: tokio::sync::mpsc::Sender<Outcome>,
}

impl Callback {
    pub async fn bind() -> Result<Callback, SsoError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(SsoError::Listen)?;
        let port = listener.local_addr().map_err(SsoError::Listen)?.port();
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        Ok(Callback {
            listener,
            port,
            nonce: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// Where the browser comes back to, port included.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// The link the browser is given: it works once.
    pub fn start_link(&self) -> String {
        format!("http://127.0.0.1:{}{START_PATH}{}", self.port, self.nonce)
    }

    /// Serves until the browser comes back (or `limit` passes): its code, or why not.
    pub async fn wait(
        self,
        authorize_url: String,
        state: &str,
        limit: Duration,
    ) -> Result<Secret, SsoError> {
        let (outcome, mut outcomes) = tokio::sync::mpsc::channel(1);
        let waiting = Arc::new(Waiting {
            authorize_url,
            nonce: self.nonce,
            state: state.to_owned(),
            started: Mutex::new(false),
            outcome,
        });
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                Some(outcome) = outcomes.recv() => return outcome,
                () = &mut deadline => return Err(SsoError::TimedOut(limit.as_secs() / 60)),
                accepted = self.listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let local = stream.local_addr().ok();
                    if !local.is_some_and(|local| own_user(peer, local)) {
                        continue;
                    }
                    let waiting = waiting.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let waiting = waiting.clone();
                            async move {
                                let request: Request<hyper::body::Incoming> = request;
                                Ok::<_, std::convert::Infallible>(answer(&waiting, request.method(), request.uri()))
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    }
}

/// Whether the connection from `peer` (to `local`) was made by a process of this user.
#[cfg(target_os = "linux")]
fn own_user(peer: SocketAddr, local: SocketAddr) -> bool {
    let me = crate::platform::users::effective_uid();
    crate::platform::sockets::find(peer, local)
        .ok()
        .flatten()
        .and_then(|socket| socket.held_by())
        == Some(me)
}

/// No system but Linux tells a socket's owner: the nonce and the state guard the sign-in.
#[cfg(not(target_os = "linux"))]
fn own_user(_: SocketAddr, _: SocketAddr) -> bool {
    true
}

fn answer(waiting: &Waiting, method: &hyper::Method, uri: &hyper::Uri) -> Response<Full<Bytes>> {
    let path = uri.path();
    if method != hyper::Method::GET {
        return page(StatusCode::METHOD_NOT_ALLOWED, "Only GET is answered here.");
    }
    if let Some(nonce) = path.strip_prefix(START_PATH) {
        let mut started = waiting.started.lock().expect("poisoned");
        if *started || !crate::model::Secret::new(&waiting.nonce).matches(nonce.as_bytes()) {
            return page(
                StatusCode::NOT_FOUND,
                "This sign-in link has been used. Run `fintors login` again.",
            );
        }
        *started = true;
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(hyper::header::LOCATION, &waiting.authorize_url)
            .header(hyper::header::CACHE_CONTROL, "no-store")
            .header("Referrer-Policy", "no-referrer")
            .body(Full::new(Bytes::new()))
            .expect("a valid response");
    }
    if path != CALLBACK_PATH {
        return page(StatusCode::NOT_FOUND, "Nothing here.");
    }
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // Only an answer to this sign-in counts, an error included: a page that sends the browser
    // here with another state (or none) cannot end or steer it.
    let ours =
        param("state").is_some_and(|state| Secret::new(&waiting.state).matches(state.as_bytes()));
    if !ours {
        return page(
            StatusCode::BAD_REQUEST,
            "This is not the sign-in fintors is waiting for.",
        );
    }
    let outcome = match (param("error"), param("code")) {
        (Some(error), _) => {
            let said = param("error_description").unwrap_or(error);
            // Someone else's words, for a terminal: printable characters only, short.
            let printable: String = said.chars().filter(|c| !c.is_control()).collect();
            Err(SsoError::Denied(crate::model::text::one_line(
                &printable, 60,
            )))
        }
        (None, Some(code)) => Ok(Secret::new(code)),
        (None, None) => {
            return page(
                StatusCode::BAD_REQUEST,
                "No code and no error: nothing to do.",
            );
        }
    };
    let (status, text) = match &outcome {
        Ok(_) => (
            StatusCode::OK,
            "Signed in to IAM Identity Center. You can close this tab and return to the terminal.",
        ),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            "The sign-in did not complete. The terminal says why.",
        ),
    };
    let _ = waiting.outcome.try_send(outcome);
    page(status, text)
}

/// A small page that says `text`, kept out of caches and referrers (the URL held a code).
fn page(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>fintors</title></head>\
         <body><p>{text}</p></body></html>\n"
    );
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .header("Referrer-Policy", "no-referrer")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> (Waiting, tokio::sync::mpsc::Receiver<Outcome>) {
        let (outcome, outcomes) = tokio::sync::mpsc::channel(1);
        let w = Waiting {
            authorize_url: "https://oidc.example/authorize".into(),
            nonce: "n".repeat(32),
            state: "the-state".into(),
            started: Mutex::new(false),
            outcome,
        };
        (w, outcomes)
    }

    fn get(w: &Waiting, target: &str) -> StatusCode {
        answer(w, &hyper::Method::GET, &target.parse().unwrap()).status()
    }

    #[test]
    fn only_an_answer_with_this_sign_ins_state_is_taken_an_error_too() {
        let (w, mut outcomes) = waiting();
        assert_eq!(
            get(&w, "/oauth/callback?error=access_denied"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            get(&w, "/oauth/callback?error=x&state=other"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            get(&w, "/oauth/callback?code=c&state=other"),
            StatusCode::BAD_REQUEST
        );
        assert!(outcomes.try_recv().is_err(), "nothing ended the sign-in");
        assert_eq!(
            get(&w, "/oauth/callback?code=c&state=the-state"),
            StatusCode::OK
        );
        assert_eq!(outcomes.try_recv().unwrap().unwrap().expose(), "c");
    }

    #[test]
    fn a_refusal_reaches_the_terminal_without_control_characters() {
        let (w, mut outcomes) = waiting();
        get(
            &w,
            "/oauth/callback?error=access_denied&error_description=no%1B%5B2J&state=the-state",
        );
        let e = outcomes.try_recv().unwrap().unwrap_err().to_string();
        assert!(!e.contains('\u{1b}') && e.contains("(no[2J)"), "{e}");
    }

    #[test]
    fn the_start_link_works_once_and_only_with_its_nonce() {
        let (w, _) = waiting();
        assert_eq!(get(&w, "/start/wrong"), StatusCode::NOT_FOUND);
        let nonce = format!("/start/{}", "n".repeat(32));
        assert_eq!(get(&w, &nonce), StatusCode::FOUND);
        assert_eq!(get(&w, &nonce), StatusCode::NOT_FOUND);
    }
}
