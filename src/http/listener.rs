//! One listener's accept loop: who the connection comes from (another local user's gets a
//! refusal for every request, [`super::owner`]), a header read timeout, a cap on open
//! connections (at the cap a new connection replaces the oldest idle one), and graceful
//! shutdown. What it serves is an [`App`], the same for every listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::App;
use super::guard::Refusal;
use super::owner::{AllowedUsers, Stranger};
use super::throttle::{self, Throttle};

/// Requests must arrive whole within this time, including the next one on a kept-alive
/// connection: a slow or idle client cannot hold a connection (and a file descriptor) forever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a connection may buffer of a request's head (hyper's floor is 8 KiB; its default,
/// ~400 KiB, times the connection cap would let a client pin hundreds of MB). IMDS requests are
/// a few hundred bytes; a longer head is answered 431 and the connection closed.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Connections open at once per listener. Past this, a new connection takes the place of the
/// oldest one with no request in flight, so idle connections (a flood of them, even) cannot lock
/// clients out, and file descriptors and memory stay bounded: an idle connection costs about
/// 15 KiB (hyper's buffers, the task), so the cap is worth 15 MiB at most. Far more than the SDK
/// clients of one workstation keep open (one each).
pub const MAX_CONNECTIONS: usize = 1024;

/// What one listener allows its clients; the daemon uses the defaults, tests shrink them.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// The local users whose connections are answered; `None`: any.
    pub users: Option<Arc<AllowedUsers>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            users: None,
        }
    }
}

/// How long requests in flight get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish.
///
/// A hand-written accept loop rather than `axum::serve`, for the limits above: axum::serve has
/// no header timeout and no connection cap.
pub async fn serve(listener: TcpListener, app: App, limits: Limits, shutdown: CancellationToken) {
    let shutdown = shutdown.cancelled_owned();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open = Arc::new(OpenConnections::default());
    let sweeper = tokio::spawn(open.clone().close_idle(limits.header_read_timeout));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait for connections to close, don't spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let watcher = graceful.watcher();
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                open.evict_oldest_idle();
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let (id, tracked) = open.add();
        let app = app.clone();
        let users = limits.users.clone();
        let header_read_timeout = limits.header_read_timeout;
        let open = open.clone();
        // Everything else happens in the connection's own task: the accept loop does no I/O
        // but accepting, so a slow lookup or a slow stderr never delays the next accept.
        tokio::spawn(async move {
            let stranger = users.and_then(|users| match stream.local_addr() {
                Ok(local) => users.admit(peer, client_destination(&stream, local)).err(),
                Err(_) => Some(Stranger::Unknown),
            });
            if let Some(stranger) = stranger {
                warn_refused(peer, stranger);
            }
            let busy_marker = tracked.clone();
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    let busy = Busy::mark(&busy_marker);
                    // Only a request with a body can stall on it; the rest (every credential GET)
                    // skip the extension's allocation.
                    if !hyper::body::Body::is_end_stream(request.body()) {
                        request.extensions_mut().insert(Connection {
                            tracked: busy_marker.clone(),
                            body_deadline: header_read_timeout,
                        });
                    }
                    let response = match stranger {
                        None => Either::Left(app.call(request, peer)),
                        Some(_) => {
                            Either::Right(std::future::ready(app.refusal(Refusal::OtherUser)))
                        }
                    };
                    async move {
                        let response = response.await;
                        drop(busy);
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
            // No hyper timer (so no header timeout of hyper's own, which would need one): its
            // header timeout re-arms a timer on every request, and a timer polled beside the
            // connection costs about as much; `close_idle` keeps the limit.
            let connection = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(None)
                .max_buf_size(MAX_REQUEST_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(watcher.watch(connection));
            loop {
                tokio::select! {
                    // In a fixed order, without the random draw of which to poll first that
                    // select! makes on every wake-up: both are polled each time, so an eviction
                    // is seen as soon as it is signalled.
                    biased;
                    result = &mut connection => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, "connection closed: {e}");
                        }
                        break;
                    }
                    () = tracked.evict.notified() => {
                        if !tracked.timed_out.swap(false, Ordering::AcqRel) {
                            tracing::debug!(%peer, "idle connection closed to make room for a new one");
                            break;
                        }
                        // A whole request may have arrived just as the limit struck: it is
                        // answered, and the sweeper looks at the connection again.
                        if tracked.busy.load(Ordering::Acquire) > 0 {
                            open.track(id, tracked.clone());
                            continue;
                        }
                        tracing::debug!(
                            %peer,
                            "connection closed: no whole request within {} s",
                            header_read_timeout.as_secs()
                        );
                        break;
                    }
                }
            }
            open.remove(id);
            drop(slot);
        });
    }
    drop(listener);
    sweeper.abort();
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still running after {} s; stopping anyway",
            DRAIN_TIMEOUT.as_secs()
        );
    }
}

/// Where the client connected to (before `network up`'s redirect), for the owner lookup.
#[cfg(target_os = "linux")]
fn client_destination(stream: &tokio::net::TcpStream, local: SocketAddr) -> SocketAddr {
    use std::os::fd::AsFd;
    crate::platform::sockets::original_destination(stream.as_fd(), local)
}

#[cfg(not(target_os = "linux"))]
fn client_destination(_: &tokio::net::TcpStream, local: SocketAddr) -> SocketAddr {
    local
}

/// One line for a refused connection, at most one per cause per [`throttle::INTERVAL`].
fn warn_refused(peer: SocketAddr, stranger: Stranger) {
    static OTHER_USER: Throttle = Throttle::new();
    static UNKNOWN: Throttle = Throttle::new();
    match stranger {
        Stranger::User(uid) => {
            if let Some(unsaid) = OTHER_USER.due() {
                tracing::warn!(
                    "refused a connection from {peer}, another user of this machine (uid {uid}): \
                     name it in allow_users to let it in{}",
                    throttle::more(unsaid)
                );
            }
        }
        Stranger::Unknown => {
            if let Some(unsaid) = UNKNOWN.due() {
                tracing::warn!(
                    "refused a connection from {peer} whose local owner cannot be found (closed \
                     before it was accepted){}",
                    throttle::more(unsaid)
                );
            }
        }
    }
}

/// The open connections of one listener, oldest first, for eviction at the cap.
#[derive(Default)]
struct OpenConnections {
    next_id: AtomicU64,
    by_age: Mutex<BTreeMap<u64, Arc<Tracked>>>,
    /// Signalled when a connection opens, for [`OpenConnections::close_idle`] waiting on none.
    opened: tokio::sync::Notify,
}

struct Tracked {
    /// Requests in flight on the connection.
    busy: AtomicUsize,
    /// Of those, the ones whose handler waits for the request's body.
    waiting_for_body: AtomicUsize,
    evict: tokio::sync::Notify,
    opened: Instant,
    /// When the latest request was answered, in nanoseconds since `opened` (0: none yet).
    answered: AtomicU64,
    /// Whether `evict` was signalled because the connection idled past the limit.
    timed_out: std::sync::atomic::AtomicBool,
}

impl Tracked {
    fn new() -> Self {
        Tracked {
            busy: AtomicUsize::new(0),
            waiting_for_body: AtomicUsize::new(0),
            evict: tokio::sync::Notify::new(),
            opened: Instant::now(),
            answered: AtomicU64::new(0),
            timed_out: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// When the connection will have been idle for `limit` (no request in flight since it
    /// opened or since its latest answer); for a connection with a request in flight, `limit`
    /// from `now`, when it is looked at again. A request waiting for its body is held
    /// to its own deadline by its handler ([`Connection`]).
    fn idle_until(&self, limit: Duration, now: Instant) -> Instant {
        if self.busy.load(Ordering::Acquire) > 0 {
            return now + limit;
        }
        let answered = Duration::from_nanos(self.answered.load(Ordering::Acquire));
        self.opened + answered + limit
    }

    /// Notes that a request was just answered.
    fn answered(&self) {
        let since_opened = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.answered.store(since_opened, Ordering::Release);
    }

    /// Nothing in flight but requests waiting for a body that has not come: an idle or a
    /// stalled connection, which may make room for a new one.
    fn evictable(&self) -> bool {
        self.busy.load(Ordering::Acquire) == self.waiting_for_body.load(Ordering::Acquire)
    }
}

/// The connection a request with a body came on, in the request's extensions: the handler that
/// reads the body says it waits ([`Connection::waiting_for_body`]) and gives up after
/// [`Connection::body_deadline`], so a client that sends a head and then stalls (a thousand of
/// them, say) neither holds a handler forever nor keeps its connection from being evicted at the
/// cap like an idle one.
#[derive(Clone)]
pub struct Connection {
    tracked: Arc<Tracked>,
    body_deadline: Duration,
}

impl Connection {
    pub fn body_deadline(&self) -> Duration {
        self.body_deadline
    }

    /// Marks the connection as waiting for a body until the guard is dropped.
    pub fn waiting_for_body(&self) -> WaitingForBody {
        self.tracked.waiting_for_body.fetch_add(1, Ordering::AcqRel);
        WaitingForBody(self.tracked.clone())
    }
}

pub struct WaitingForBody(Arc<Tracked>);

impl Drop for WaitingForBody {
    fn drop(&mut self) {
        self.0.waiting_for_body.fetch_sub(1, Ordering::AcqRel);
    }
}

impl OpenConnections {
    fn add(&self) -> (u64, Arc<Tracked>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked::new());
        self.track(id, tracked.clone());
        (id, tracked)
    }

    /// Tracks a connection: a new one, or one the sweeper let go of while a request was
    /// arriving; either way the sweeper is woken if it waits for one.
    fn track(&self, id: u64, tracked: Arc<Tracked>) {
        self.lock().insert(id, tracked);
        self.opened.notify_one();
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Asks the oldest connection with no request in flight (but ones stalled on their body)
    /// to close. Removing it from the map here keeps a burst of evictions from picking the same
    /// one twice.
    fn evict_oldest_idle(&self) {
        let mut by_age = self.lock();
        let idle = by_age
            .iter()
            .find(|(_, t)| t.evictable())
            .map(|(id, _)| *id);
        if let Some(tracked) = idle.and_then(|id| by_age.remove(&id)) {
            tracked.evict.notify_one();
        }
    }

    /// Closes every connection idle for `limit`, for as long as the listener runs: a request's
    /// head must arrive whole within `limit` of the connection opening or of its previous
    /// answer, which bounds slow and idle clients. One task per listener rather than a timer per
    /// connection: a timer polled beside each connection cost a twentieth of a cached
    /// credential's answer. It sleeps until the first connection could be due (a connection
    /// that opens later is due later), and with no connection open it waits for one, so an
    /// idle daemon does not wake.
    async fn close_idle(self: Arc<Self>, limit: Duration) {
        loop {
            let now = Instant::now();
            let mut next = None::<Instant>;
            self.lock().retain(|_, tracked| {
                let due = tracked.idle_until(limit, now);
                if due <= now {
                    tracked.timed_out.store(true, Ordering::Release);
                    tracked.evict.notify_one();
                    return false;
                }
                next = Some(next.map_or(due, |next| next.min(due)));
                true
            });
            match next {
                Some(due) => tokio::time::sleep_until(due.into()).await,
                None => self.opened.notified().await,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Tracked>>> {
        // Entries are inserted and removed whole: a panic elsewhere cannot leave the map unsound,
        // and the sweeper must not die with it (that would lift the idle limit).
        self.by_age.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks a connection busy while one of its requests is being answered.
struct Busy(Arc<Tracked>);

impl Busy {
    fn mark(tracked: &Arc<Tracked>) -> Self {
        tracked.busy.fetch_add(1, Ordering::AcqRel);
        Busy(tracked.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // Answered before no longer busy, so that the idle check never sees neither.
        self.0.answered();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A listener with room for three connections and a header timeout nobody waits for;
    /// `/slow` answers only once `release` is notified, `PUT /body` once it has read its body.
    async fn small_server(release: Arc<tokio::sync::Notify>) -> SocketAddr {
        server_with_deadline(release, Duration::from_secs(600)).await
    }

    async fn server_with_deadline(
        release: Arc<tokio::sync::Notify>,
        header_read_timeout: Duration,
    ) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/slow",
                get(move || async move {
                    release.notified().await;
                    "slow"
                }),
            )
            .route(
                "/body",
                axum::routing::put(|request: axum::extract::Request| async move {
                    match crate::http::json::read_json_body(request).await {
                        Ok(_) => "read".into_response(),
                        Err(refusal) => refusal,
                    }
                }),
            );
        let limits = Limits {
            max_connections: 3,
            header_read_timeout,
            users: None,
        };
        let app = App::new(app, crate::http::imds::refused);
        tokio::spawn(serve(listener, app, limits, CancellationToken::new()));
        addr
    }

    /// Sends the head of a JSON `PUT /body` that announces a body and never sends it.
    async fn stall_on_body(addr: SocketAddr) -> TcpStream {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"PUT /body HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                  Content-Length: 20\r\n\r\n",
            )
            .await
            .unwrap();
        stream
    }

    async fn request(stream: &mut TcpStream, path: &str) -> String {
        let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    /// Whether the server has closed `stream` (reads end of file within a moment).
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(2), stream.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// Once the server has accepted the connections already made, a new client at the cap is
    /// answered promptly rather than left in the backlog.
    async fn a_new_client_is_served(addr: SocketAddr) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut fresh = TcpStream::connect(addr).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), request(&mut fresh, "/"))
            .await
            .expect("the new client was locked out by idle connections");
        assert!(answer.ends_with("ok"), "{answer}");
    }

    /// One kept-alive request on `stream`, answered in full (`/` answers `ok`).
    async fn kept_alive(stream: &mut TcpStream) {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"ok") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the answer");
            answer.extend_from_slice(&buf[..n]);
        }
    }

    /// Long enough that a loaded machine's stalls stay well inside it.
    const LIMIT: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_connection_with_no_request_within_the_limit_is_closed() {
        let addr = server_with_deadline(Arc::default(), LIMIT).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut partial = TcpStream::connect(addr).await.unwrap();
        partial.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        tokio::time::sleep(LIMIT + Duration::from_millis(200)).await;
        assert!(closed(&mut silent).await, "a silent connection stays");
        assert!(closed(&mut partial).await, "an unfinished head stays");
    }

    #[tokio::test]
    async fn a_kept_alive_connection_is_closed_once_idle_for_the_limit_after_its_last_answer() {
        let addr = server_with_deadline(Arc::default(), LIMIT).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        // Requests every quarter limit keep it open well past the limit since it opened.
        for _ in 0..6 {
            tokio::time::sleep(LIMIT / 4).await;
            kept_alive(&mut client).await;
        }
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(LIMIT / 2, client.read(&mut byte)).await;
        assert!(
            early.is_err(),
            "closed before the limit after the last answer"
        );
        assert!(closed(&mut client).await, "still open well past the limit");
    }

    #[tokio::test]
    async fn a_request_in_flight_longer_than_the_limit_is_answered() {
        let release = Arc::new(tokio::sync::Notify::new());
        let addr = server_with_deadline(release.clone(), LIMIT).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        let answer = tokio::spawn(async move { request(&mut slow, "/slow").await });
        tokio::time::sleep(LIMIT * 2).await;
        release.notify_one();
        let answer = tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .expect("no answer")
            .unwrap();
        assert!(answer.ends_with("slow"), "{answer}");
    }

    #[tokio::test]
    async fn at_the_cap_a_new_connection_replaces_the_oldest_idle_one() {
        let addr = small_server(Arc::default()).await;
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        a_new_client_is_served(addr).await;
        assert!(
            closed(&mut idle[0]).await,
            "the oldest idle connection stays"
        );
        assert!(!closed(&mut idle[1]).await, "more than one was closed");
    }

    #[tokio::test]
    async fn a_connection_with_a_request_in_flight_is_never_evicted() {
        let release = Arc::new(tokio::sync::Notify::new());
        let addr = small_server(release.clone()).await;
        let mut busy = TcpStream::connect(addr).await.unwrap();
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut idle = Vec::new();
        for _ in 0..2 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        a_new_client_is_served(addr).await;
        assert!(closed(&mut idle[0]).await, "the oldest idle one makes room");
        release.notify_one();
        let mut response = String::new();
        busy.read_to_string(&mut response).await.unwrap();
        assert!(response.ends_with("slow"), "{response}");
    }

    #[tokio::test]
    async fn connections_stalled_on_their_bodies_are_evicted_at_the_cap_like_idle_ones() {
        let addr = small_server(Arc::default()).await;
        let mut stalled = Vec::new();
        for _ in 0..3 {
            stalled.push(stall_on_body(addr).await);
        }
        a_new_client_is_served(addr).await;
        assert!(
            closed(&mut stalled[0]).await,
            "the oldest stalled connection stays"
        );
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_within_the_deadline_is_408() {
        let addr = server_with_deadline(Arc::default(), Duration::from_millis(300)).await;
        let mut stalled = stall_on_body(addr).await;
        let mut response = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut response))
            .await
            .expect("no answer after the deadline")
            .unwrap();
        let response = String::from_utf8_lossy(&response[..n]);
        assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    }
}
