//! One listener's accept loop: who the connection comes from (another local user's gets a
//! refusal for every request, [`super::owner`]), a header read timeout, a cap on open
//! connections (at the cap a new connection replaces the oldest idle one), and graceful
//! shutdown. What it serves is an [`App`], the same for every listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
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
            let stranger = users.and_then(|users| {
                let local = stream.local_addr().ok()?;
                users.admit(peer, local).err()
            });
            if let Some(stranger) = stranger {
                warn_refused(peer, stranger);
            }
            let busy_marker = tracked.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let busy = Busy::mark(&busy_marker);
                let response = match stranger {
                    None => Either::Left(app.call(request, peer)),
                    Some(_) => Either::Right(std::future::ready(app.refusal(Refusal::OtherUser))),
                };
                async move {
                    let response = response.await;
                    drop(busy);
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .max_buf_size(MAX_REQUEST_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            let connection = watcher.watch(connection);
            tokio::select! {
                result = connection => if let Err(e) = result {
                    tracing::debug!(%peer, "connection closed: {e}");
                },
                () = tracked.evict.notified() => {
                    tracing::debug!(%peer, "idle connection closed to make room for a new one");
                }
            }
            open.remove(id);
            drop(slot);
        });
    }
    drop(listener);
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
}

#[derive(Default)]
struct Tracked {
    /// Requests in flight on the connection.
    busy: AtomicUsize,
    evict: tokio::sync::Notify,
}

impl OpenConnections {
    fn add(&self) -> (u64, Arc<Tracked>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked::default());
        self.lock().insert(id, tracked.clone());
        (id, tracked)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Asks the oldest connection with no request in flight to close. Removing it from the map
    /// here keeps a burst of evictions from picking the same one twice.
    fn evict_oldest_idle(&self) {
        let mut by_age = self.lock();
        let idle = by_age
            .iter()
            .find(|(_, t)| t.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        if let Some(tracked) = idle.and_then(|id| by_age.remove(&id)) {
            tracked.evict.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Tracked>>> {
        self.by_age.lock().expect("connection map poisoned")
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
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A listener with room for three connections and a header timeout nobody waits for; `/slow`
    /// answers only once `release` is notified.
    async fn small_server(release: Arc<tokio::sync::Notify>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", get(|| async { "ok" })).route(
            "/slow",
            get(move || async move {
                release.notified().await;
                "slow"
            }),
        );
        let limits = Limits {
            max_connections: 3,
            header_read_timeout: Duration::from_secs(600),
            users: None,
        };
        let app = App::new(app, crate::http::imds::refused);
        tokio::spawn(serve(listener, app, limits, CancellationToken::new()));
        addr
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
}
