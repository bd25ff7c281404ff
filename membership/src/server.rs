//! The HTTP server: our own accept loop on hyper 1 in place of `axum::serve`, which has
//! no header-read timeout, no idle timeout and no connection cap (a few thousand clients
//! holding half-sent requests took the API to its open-files limit).
//!
//! - **Header-read timeout** (`HTTP_HEADER_READ_TIMEOUT_MS`): a client has this long to
//!   send a request's headers, counted from the accept for a connection's first request
//!   and from the first byte for later ones. Half-sent, trickled or never-sent headers
//!   (slowloris) get the connection closed.
//! - **Idle timeout** (`HTTP_IDLE_TIMEOUT_MS`): a keep-alive connection may wait this long
//!   for the first byte of its next request.
//! - **Connection cap** (`HTTP_MAX_CONNECTIONS`): see [`run`] for what happens at the cap,
//!   and [`fitting_cap`] for how it is kept below the open-files limit.
//! - **Accept errors** (`EMFILE` and the like) never end the loop and never make it spin:
//!   it backs off (5 ms doubling to 1 s) and keeps serving the connections it has.
//! - **Graceful shutdown**: on the signal the listener is closed, connections without a
//!   request in flight are closed at once, requests in flight may finish within
//!   `SHUTDOWN_GRACE_MS`, and then whatever is left is cut: [`run`] returns at most the
//!   grace after the signal, with every connection closed.
//!
//! Why not hyper's own `http1::Builder::header_read_timeout`: in hyper 1.12 its timer is
//! armed whenever the connection waits for a request head, and that includes an idle
//! keep-alive connection waiting for its next request (`State::idle` sets `notify_read`
//! when a header timeout is configured, so the dispatcher polls `poll_read_head` at once,
//! which starts the timer). It therefore closes keep-alive connections after the *header*
//! timeout of idleness: one timer cannot give slowloris 5 s and idle keep-alive 60 s. Both
//! timeouts are kept here instead, per connection, from what its IO (bytes read) and its
//! service (request started, response body finished) observe; hyper's is disabled.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

use crate::config::ApiConfig;

/// Descriptors kept free for everything but client connections (stdio, the runtime, the
/// listener, SQLite's files, Redis connections, a refused connection's brief one), or half
/// the limit when that is smaller.
pub(crate) const FD_RESERVE: u64 = 256;

/// Shortest pause after a failed accept.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause after failed accepts in a row.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Repeated warnings (refusals at the cap, failed accepts) at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The server's limits, from [`ApiConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// HTTP_HEADER_READ_TIMEOUT_MS.
    pub header_read_timeout: Duration,
    /// HTTP_IDLE_TIMEOUT_MS.
    pub idle_timeout: Duration,
    /// HTTP_MAX_CONNECTIONS (before [`fitting_cap`]).
    pub max_connections: usize,
    /// SHUTDOWN_GRACE_MS.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// The limits a configuration sets.
    pub fn from_config(cfg: &ApiConfig) -> Self {
        Self {
            header_read_timeout: cfg.http_header_read_timeout,
            idle_timeout: cfg.http_idle_timeout,
            max_connections: cfg.http_max_connections,
            shutdown_grace: cfg.shutdown_grace,
        }
    }
}

/// This process's soft limit of open files (`RLIMIT_NOFILE`); `None` when unlimited or
/// unknown.
pub(crate) fn open_files_limit() -> Option<u64> {
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, _)) if soft != rlimit::INFINITY => Some(soft),
        _ => None,
    }
}

/// The connection cap that fits an open-files limit: `wanted`, lowered if need be to leave
/// [`FD_RESERVE`] descriptors (or half the limit, when smaller) for everything else, so
/// that client connections alone can never exhaust the process's descriptors. At least 1.
pub(crate) fn fitting_cap(wanted: usize, open_files_limit: Option<u64>) -> usize {
    let Some(limit) = open_files_limit else {
        return wanted;
    };
    let reserve = FD_RESERVE.min(limit / 2);
    let room = usize::try_from(limit - reserve).unwrap_or(usize::MAX);
    wanted.min(room).max(1)
}

/// Serves `router` on `listener` until `shutdown` resolves, then shuts down gracefully
/// within `limits.shutdown_grace` (see the module doc); returns when every connection is
/// closed.
///
/// **At the connection cap** a new connection is accepted, answered
/// `503 Service Unavailable` (`retry-after: 1`, `connection: close`) when its send buffer
/// takes it, and closed at once, rather than left unaccepted until a slot frees. Left in
/// the kernel's accept queue, a client would wait with no answer and no timeout of ours
/// running (it looks connected), the queue would fill and then drop SYNs, and a client
/// could not tell a busy server from a dead one; refused at once, it learns in one round
/// trip and can retry or fail over, and a load test counts the refusal as an error instead
/// of hiding it in latency. The cost is one descriptor for a moment, which [`FD_RESERVE`]
/// covers. Refusals are logged (at most one warning per 10 s, with their count).
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let fd_limit = open_files_limit();
    let cap = fitting_cap(limits.max_connections, fd_limit);
    if cap < limits.max_connections {
        tracing::warn!(
            "HTTP_MAX_CONNECTIONS={} does not fit the open-files limit {}: capping connections at {cap}",
            limits.max_connections,
            fd_limit.unwrap_or_default()
        );
    }
    let permits = Arc::new(Semaphore::new(cap));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http = http1::Builder::new();
    // Our own timeouts replace it (module doc); `None` also keeps hyper from warning that
    // its 30 s default has no timer.
    http.header_read_timeout(None).keep_alive(true);
    let mut tasks = JoinSet::new();
    let mut refused = Throttled::default();
    let mut failed = Throttled::default();
    let mut backoff = Duration::ZERO;
    let mut paused_until: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => report_task(done),
            () = tokio::time::sleep_until(paused_until.unwrap_or_else(Instant::now)),
                if paused_until.is_some() => paused_until = None,
            accepted = listener.accept(), if paused_until.is_none() => match accepted {
                Ok((stream, _)) => {
                    if backoff > Duration::ZERO {
                        tracing::info!("accepting connections again");
                        backoff = Duration::ZERO;
                    }
                    match Arc::clone(&permits).try_acquire_owned() {
                        Ok(permit) => {
                            // Small JSON responses: no Nagle delay.
                            let _ = stream.set_nodelay(true);
                            tasks.spawn(connection(
                                stream,
                                router.clone(),
                                http.clone(),
                                limits,
                                stop_rx.clone(),
                                permit,
                            ));
                        }
                        Err(_) => {
                            refuse(&stream);
                            drop(stream);
                            if let Some(n) = refused.note() {
                                tracing::warn!(
                                    "{cap} connections open (HTTP_MAX_CONNECTIONS): refused {n} new connection(s) with 503 since the last report"
                                );
                            }
                        }
                    }
                }
                // The client gave up before we took its connection: nothing to do.
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM...: the listener stays readable, so
                    // retrying at once would spin. Pause, keep serving, try again.
                    backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                    paused_until = Some(Instant::now() + backoff);
                    if let Some(n) = failed.note() {
                        tracing::warn!(
                            "accept failed ({e}); {n} failure(s) since the last report; retrying in up to {ACCEPT_BACKOFF_MAX:?} while serving the open connections"
                        );
                    }
                }
            },
        }
    }

    // Graceful shutdown, bounded by the grace.
    let signalled = Instant::now();
    drop(listener);
    let grace = limits.shutdown_grace;
    tracing::info!(
        "shutdown signal: stopped accepting; {} connection(s) open: those without a request in flight close now, requests in flight get up to {grace:?}",
        cap - permits.available_permits()
    );
    stop_tx.send_replace(true);
    let drained = tokio::time::timeout_at(signalled + grace, async {
        while let Some(done) = tasks.join_next().await {
            report_task(done);
        }
    })
    .await
    .is_ok();
    if !drained {
        tracing::warn!(
            "connections still open {grace:?} after the shutdown signal; stopping anyway"
        );
        // Aborting drops each connection (closing its socket); the wait is at most one
        // poll per task.
        tasks.shutdown().await;
    }
}

/// Serves one connection until it ends, times out, or shutdown closes it.
async fn connection(
    stream: TcpStream,
    router: Router,
    http: http1::Builder,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let track = Arc::new(Track::new(Instant::now()));
    let io = TokioIo::new(Observed {
        stream,
        track: Arc::clone(&track),
    });
    let service = ConnService {
        router,
        track: Arc::clone(&track),
    };
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    // While a request is in flight no timeout runs; the timer then only checks back this
    // often, which is never later than a timeout that starts in between would end.
    let recheck = limits.header_read_timeout.min(limits.idle_timeout);
    let timer = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(timer);
    let mut draining = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            // (An error means the server is gone: shut down as well.)
            _ = stop.wait_for(|stopping| *stopping), if !draining => {
                if !track.in_flight() {
                    // Idle, or headers not complete: nothing was accepted from this client,
                    // it can retry elsewhere.
                    return;
                }
                draining = true;
                // The request in flight finishes; its response says `connection: close`.
                conn.as_mut().graceful_shutdown();
            }
            () = &mut timer => {
                let now = Instant::now();
                match track.deadline(&limits) {
                    Some((at, what)) if at <= now => {
                        tracing::debug!("closing a connection: {what} timeout");
                        return;
                    }
                    Some((at, _)) => timer.as_mut().reset(at),
                    None => timer.as_mut().reset(now + recheck),
                }
            }
        }
    }
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepted; its first request's headers are not complete (header timeout from accept).
    Opened,
    /// Waiting for the first byte of its next request (idle timeout).
    Idle,
    /// Part of a later request's headers came (header timeout from that first byte).
    Head,
    /// A request is in flight: headers parsed, response not finished (no timeout).
    Busy,
}

#[derive(Debug)]
struct Activity {
    phase: Phase,
    since: Instant,
    in_flight: usize,
}

/// A connection's activity, updated by its IO and its service.
#[derive(Debug)]
struct Track(Mutex<Activity>);

impl Track {
    fn new(now: Instant) -> Self {
        Self(Mutex::new(Activity {
            phase: Phase::Opened,
            since: now,
            in_flight: 0,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Activity> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bytes_read(&self) {
        let mut a = self.lock();
        if a.phase == Phase::Idle {
            a.phase = Phase::Head;
            a.since = Instant::now();
        }
    }

    fn request_started(&self) {
        let mut a = self.lock();
        a.in_flight += 1;
        a.phase = Phase::Busy;
    }

    fn request_done(&self) {
        let mut a = self.lock();
        a.in_flight = a.in_flight.saturating_sub(1);
        if a.in_flight == 0 {
            // Bytes of a pipelined next request already buffered by hyper get the idle
            // timeout rather than the header one: a bound either way.
            a.phase = Phase::Idle;
            a.since = Instant::now();
        }
    }

    fn in_flight(&self) -> bool {
        self.lock().in_flight > 0
    }

    /// When the current phase times out, and which timeout that is.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        let a = self.lock();
        match a.phase {
            Phase::Opened | Phase::Head => Some((a.since + limits.header_read_timeout, "header")),
            Phase::Idle => Some((a.since + limits.idle_timeout, "idle")),
            Phase::Busy => None,
        }
    }
}

/// The TCP stream, noting when bytes arrive.
struct Observed {
    stream: TcpStream,
    track: Arc<Track>,
}

impl AsyncRead for Observed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.track.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Observed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The router, noting when each request starts and when its response is finished.
#[derive(Clone)]
struct ConnService {
    router: Router,
    track: Arc<Track>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        // Called once the request's headers are parsed.
        let in_flight = InFlight::new(Arc::clone(&self.track));
        let router = self.router.clone();
        Box::pin(async move {
            let resp = tower::ServiceExt::oneshot(router, req).await?;
            Ok(resp.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A request in flight until dropped (with its response body, or with the handler when
/// the connection goes first).
struct InFlight(Arc<Track>);

impl InFlight {
    fn new(track: Arc<Track>) -> Self {
        track.request_started();
        Self(track)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_done();
    }
}

/// A response body that ends its request's time in flight when hyper is done with it.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Best effort, without waiting: a 503 for a connection over the cap. What the client
/// already sent is read first, so that closing sends FIN rather than RST (which could
/// discard the 503 before the client reads it).
fn refuse(stream: &TcpStream) {
    let mut sink = [0u8; 4096];
    for _ in 0..4 {
        match stream.try_read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let body = r#"{"error":{"status":503,"message":"too many connections"}}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// Accept errors about one connection rather than the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

fn report_task(done: Result<(), JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("a connection task panicked: {e}");
        }
    }
}

/// Counts events; says when to report them (the first at once, then at most every
/// [`REPORT_EVERY`], with the count since the last report).
#[derive(Debug, Default)]
struct Throttled {
    count: u64,
    last: Option<Instant>,
}

impl Throttled {
    fn note(&mut self) -> Option<u64> {
        self.count += 1;
        let now = Instant::now();
        if self.last.is_some_and(|l| now - l < REPORT_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_a_reserve_below_the_open_files_limit() {
        assert_eq!(fitting_cap(10_000, None), 10_000);
        assert_eq!(fitting_cap(10_000, Some(20_000)), 10_000);
        assert_eq!(fitting_cap(10_000, Some(1024)), 1024 - FD_RESERVE as usize);
        assert_eq!(fitting_cap(10_000, Some(64)), 32);
        assert_eq!(fitting_cap(10_000, Some(1)), 1);
        assert_eq!(fitting_cap(4, Some(64)), 4);
    }

    #[test]
    fn phases_time_out_with_their_own_timeout() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
            shutdown_grace: Duration::ZERO,
        };
        let t0 = Instant::now();
        let t = Track::new(t0);
        assert_eq!(
            t.deadline(&limits),
            Some((t0 + limits.header_read_timeout, "header"))
        );
        t.bytes_read(); // the first request's headers keep the accept-time deadline
        assert_eq!(
            t.deadline(&limits).unwrap().0,
            t0 + limits.header_read_timeout
        );
        let t = Arc::new(t);
        let request = InFlight::new(Arc::clone(&t));
        assert!(t.in_flight() && t.deadline(&limits).is_none());
        let idle_from = Instant::now();
        drop(request);
        assert!(!t.in_flight());
        let (at, what) = t.deadline(&limits).unwrap();
        assert_eq!(what, "idle");
        assert!(at >= idle_from + limits.idle_timeout);
        t.bytes_read();
        assert_eq!(t.deadline(&limits).unwrap().1, "header");
    }

    #[test]
    fn reports_are_throttled() {
        let mut t = Throttled::default();
        assert_eq!(t.note(), Some(1));
        assert_eq!(t.note(), None);
        assert_eq!(t.note(), None);
        t.last = Instant::now().checked_sub(REPORT_EVERY);
        assert_eq!(t.note(), Some(3));
    }
}
