//! What a listener serves. The IMDS listener's [`App`] is the IMDS routes and fintors's API
//! behind the front door (the guard, then the IMDS session check), with a fast path for what
//! SDKs ask over and over in front of the router; the container listener's is its routes with a
//! fast path for cached credentials; the admin listener serves a plain router; all through the
//! same [`App::call`]. Every listener reads repeated slashes in a path as one.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use super::access_log::{self, AccessLog, Entry};
use super::guard::{Guard, Refusal};
use super::state::AppState;
use super::{
    console, container, imds, metadata, mfa, reload, retry, roles, simulate, status, sync,
};
use crate::credentials::Door;
use crate::ec2::container_tokens::ContainerKey;

/// The IMDS listener: the access log (if any), then the front door, then the routes; and the
/// fast path for cached credentials in front of it all, which logs its answers too.
pub fn imds_app(state: Arc<AppState>, guard: Arc<Guard>, log: Option<Arc<AccessLog>>) -> App {
    let router = imds::router()
        .merge(metadata::router())
        .merge(roles::router())
        .merge(status::router())
        .merge(mfa::router())
        .merge(reload::router())
        .merge(retry::router())
        .merge(sync::router())
        .merge(simulate::router())
        .merge(console::router())
        .fallback(|uri: axum::http::Uri| async move { imds::unrouted(uri) })
        .layer(middleware::from_fn_with_state(
            (guard.clone(), state.clone()),
            front_door,
        ))
        .with_state(state.clone());
    let router = match &log {
        Some(log) => router.layer(middleware::from_fn_with_state(
            log.clone(),
            access_log::record,
        )),
        None => router,
    };
    App {
        router,
        fast: Some(Fast::Imds(Arc::new(FastPath { state, guard, log }))),
        refuse: imds::refused,
    }
}

/// The container listener: its routes, and a fast path for cached credentials in front.
pub fn container_app(state: Arc<AppState>, guard: Arc<Guard>, key: ContainerKey) -> App {
    let endpoint = container::Endpoint::new(state, guard, key);
    App {
        router: container::router(&endpoint),
        fast: Some(Fast::Container(endpoint)),
        refuse: container::refused,
    }
}

/// What a listener serves: a router, optionally a fast path tried before it, and how it words
/// a refusal made before any route runs (a connection from another user).
#[derive(Clone)]
pub struct App {
    router: Router,
    fast: Option<Fast>,
    refuse: fn(Refusal) -> Response,
}

/// A listener's fast path.
#[derive(Clone)]
enum Fast {
    Imds(Arc<FastPath>),
    Container(Arc<container::Endpoint>),
}

impl Fast {
    fn answer<B>(&self, request: &hyper::Request<B>, peer: SocketAddr) -> Option<Response> {
        match self {
            Fast::Imds(imds) => imds.answer(request, peer),
            Fast::Container(endpoint) => endpoint.cached(request, peer),
        }
    }
}

impl App {
    /// A plain router whose refusals are worded by `refuse`.
    pub fn new(router: Router, refuse: fn(Refusal) -> Response) -> Self {
        App {
            router,
            fast: None,
            refuse,
        }
    }

    /// What the fast path alone answers to `request` (`None`: it leaves it to the router), for
    /// the tests that hold the fast path to the routes' answers and check it takes what it should.
    pub fn fast_answer<B>(
        &self,
        request: &hyper::Request<B>,
        peer: SocketAddr,
    ) -> Option<Response> {
        self.fast.as_ref()?.answer(request, peer)
    }

    /// The same app without its fast path: every request goes through the router. For the
    /// tests that hold the fast path to the routes' answers.
    pub fn routed_only(&self) -> Self {
        App {
            fast: None,
            ..self.clone()
        }
    }

    /// The answer to every request on a connection the listener turned away.
    pub fn refusal(&self, refusal: Refusal) -> Response {
        (self.refuse)(refusal)
    }

    /// Answers `request` from `peer`: what the accept loop does for each request (and what the
    /// fuzz targets do, with in-memory bodies).
    pub fn call<B>(
        &self,
        mut request: hyper::Request<B>,
        peer: SocketAddr,
    ) -> impl std::future::Future<Output = Response> + Send + use<B>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        // The fast path first, on the path as sent: a path it recognizes has no `//` and is
        // `latest`'s (an alias holds no `/`), so only the other requests pay for normalizing,
        // and are offered to it again when that changed their path.
        let fast = |request: &hyper::Request<B>| self.fast.as_ref()?.answer(request, peer);
        let mut fast_answer = fast(&request);
        if fast_answer.is_none() {
            let collapsed = collapse_slashes(&mut request);
            if dated_as_latest(&mut request) || collapsed {
                fast_answer = fast(&request);
            }
        }
        let answer = match fast_answer {
            Some(response) => Answer::Fast(response),
            None => {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                Answer::Routed(self.router.clone().oneshot(request))
            }
        };
        async move {
            match answer {
                Answer::Fast(response) => response,
                Answer::Routed(routed) => match routed.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
            }
        }
    }
}

/// Reads `//latest//api/token` as `/latest/api/token`, for every route and the fast path alike:
/// Java v2 joins an endpoint that ends in `/` (as `fintors env` prints it, for AWS CLI v2.9) with
/// `/latest/meta-data/...`, and path-joining clients elsewhere do the same.
/// Whether it changed the path.
fn collapse_slashes<B>(request: &mut hyper::Request<B>) -> bool {
    let path = request.uri().path();
    if !path.contains("//") {
        return false;
    }
    let mut target = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && target.ends_with('/')) {
            target.push(c);
        }
    }
    set_path(request, target);
    true
}

/// Reads a dated version's tree (`/2009-04-04/meta-data/...`) as `latest`'s, for every route
/// and the fast path alike, with the same token rules: every version serves the same instance.
/// The common case, `/latest/...`, costs one comparison. Whether it changed the path.
fn dated_as_latest<B>(request: &mut hyper::Request<B>) -> bool {
    let path = request.uri().path();
    if path.starts_with("/latest/") {
        return false;
    }
    match crate::ec2::as_latest(path) {
        Some(latest) => {
            set_path(request, latest);
            true
        }
        None => false,
    }
}

/// Gives `request` the path `target`, keeping its query.
fn set_path<B>(request: &mut hyper::Request<B>, mut target: String) {
    let uri = request.uri();
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    // A collapsed or re-versioned valid path is still a valid path.
    parts.path_and_query = target.parse().ok();
    if let Ok(changed) = axum::http::Uri::from_parts(parts) {
        *request.uri_mut() = changed;
    }
}

enum Answer<F> {
    Fast(Response),
    Routed(F),
}

/// The answers SDKs ask for over and over, given without the router: a token, the credentials
/// listing, cached credentials. It answers only what it can answer exactly as the routes would
/// (past the guard and the session check; for credentials, a known role with servable ones) and
/// leaves everything else, refusals included, to the router, so there is one place that decides
/// each case. The router's layers cost a boxed future and an allocation or two each; on the
/// three requests an SDK process makes, they were a third of the work.
struct FastPath {
    state: Arc<AppState>,
    guard: Arc<Guard>,
    /// What it answers is logged like what the router answers.
    log: Option<Arc<AccessLog>>,
}

/// What the fast path answers.
enum FastRoute<'a> {
    /// `PUT /latest/api/token`.
    Token,
    /// `GET /latest/meta-data/iam/security-credentials[/]`.
    Listing,
    /// `GET .../security-credentials[-extended]/ALIAS`.
    Credentials { alias: &'a str, extended: bool },
}

impl<'a> FastRoute<'a> {
    fn of<B>(request: &'a hyper::Request<B>) -> Option<Self> {
        let path = request.uri().path();
        match *request.method() {
            axum::http::Method::PUT => (path == crate::ec2::TOKEN_PATH).then_some(FastRoute::Token),
            axum::http::Method::GET => {
                let listing = path
                    .strip_prefix(crate::ec2::CREDENTIALS_PATH)
                    .is_some_and(|rest| rest.is_empty() || rest == "/");
                if listing {
                    return Some(FastRoute::Listing);
                }
                let (alias, extended) = crate::ec2::credentials_alias(path)?;
                Some(FastRoute::Credentials { alias, extended })
            }
            _ => None,
        }
    }
}

impl FastPath {
    fn answer<B>(&self, request: &hyper::Request<B>, peer: SocketAddr) -> Option<Response> {
        let route = FastRoute::of(request)?;
        self.guard.check(peer, request).ok()?;
        // The clock read once: the session check and the cache both judge by it.
        let now = self.state.clock.seconds();
        let remaining = imds::check_session(&self.state, request, now).ok()?;
        let mut response = match route {
            FastRoute::Token => imds::token(&self.state, request.headers(), now),
            FastRoute::Listing => imds::listing(&self.state),
            FastRoute::Credentials { alias, extended } => {
                let cache = self.state.registry.role(alias)?;
                let issued = cache.serve_cached_at(Door::Imds, now)?;
                imds::credentials_document(&issued, extended)
            }
        };
        if let Some(remaining) = remaining {
            imds::report_token_ttl(&mut response, remaining);
        }
        if let Some(log) = &self.log {
            log.record(Entry::of(request, peer).answered(&response));
        }
        Some(response)
    }
}

/// Every request passes here first: the guard (other hosts, foreign `Host` headers), then the
/// IMDS session check. One middleware rather than two, because each layer costs the hot path a
/// boxed future.
async fn front_door(
    State((guard, state)): State<(Arc<Guard>, Arc<AppState>)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = guard.admit(peer, &request) {
        return imds::refused(refusal);
    }
    let remaining = match imds::session(&state, &request) {
        Ok(remaining) => remaining,
        Err(unauthorized) => return unauthorized.into_response(),
    };
    let mut response = next.run(request).await;
    if let Some(remaining) = remaining {
        imds::report_token_ttl(&mut response, remaining);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_slashes_in_a_path_read_as_one_and_the_query_is_kept() {
        let mut request = hyper::Request::get("//latest//meta-data///iam/?a=b//c")
            .body(())
            .unwrap();
        collapse_slashes(&mut request);
        assert_eq!(request.uri(), "/latest/meta-data/iam/?a=b//c");
        let mut absolute = hyper::Request::get("http://169.254.169.254//latest/")
            .body(())
            .unwrap();
        collapse_slashes(&mut absolute);
        assert_eq!(absolute.uri(), "http://169.254.169.254/latest/");
    }
}
