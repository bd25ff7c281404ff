//! Routes, server-sent events, start and stop.
//!
//! Every page is rendered on the server; `/sse/topology` and `/sse/events` push rendered
//! fragments that `console.js` swaps in. `/api/*` gives the same data as JSON.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use redis::aio::MultiplexedConnection;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::feed::{Event, Feed, Kind};
use super::page::{self, Frame};
use super::topology::split_addr;
use super::{auth, events, reports, topology, ConsoleError, Options};
use crate::report::escape;
use crate::topology::probe;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    /// The token every request must carry.
    pub(crate) token: Arc<String>,
    /// The name of the cookie that carries it.
    pub(crate) cookie: Arc<String>,
    /// What the console shows.
    pub(crate) feed: Feed,
    /// How it was started.
    pub(crate) opts: Arc<Options>,
    /// Turns true when the console stops (ends the SSE streams).
    pub(crate) stop: watch::Receiver<bool>,
}

impl Shared {
    fn frame(&self) -> (Option<String>, bool) {
        (
            self.feed.current_target().map(|t| t.name),
            self.opts.allow_write,
        )
    }

    /// A whole page.
    pub(crate) fn page(&self, active: &str, title: &str, body: &str) -> Html<String> {
        let (topology, allow_write) = self.frame();
        page::layout(
            &Frame {
                topology: topology.as_deref(),
                allow_write,
            },
            active,
            title,
            body,
        )
    }

    /// A page with `status` and an error message.
    pub(crate) fn error(&self, status: StatusCode, active: &str, msg: &str) -> Response {
        (
            status,
            self.page(
                active,
                "Error",
                &format!("<div class=\"error\" id=\"error\">{}</div>", escape(msg)),
            ),
        )
            .into_response()
    }

    /// A connection to node `addr`, which must be one the console shows (the console is
    /// not a proxy to arbitrary addresses); `Ok((con, is_sentinel))`.
    pub(crate) async fn connect(
        &self,
        addr: &str,
    ) -> Result<(MultiplexedConnection, bool), String> {
        let snap = self
            .feed
            .snapshot()
            .ok_or("no topology snapshot yet; try again in a moment")?;
        let sentinel = snap
            .knows(addr)
            .ok_or_else(|| format!("{addr} is not a node of the watched topology"))?;
        let target = self.feed.current_target().ok_or("no topology is watched")?;
        let pw = if sentinel {
            target.sentinel_password
        } else {
            target.password
        };
        let (host, port) = split_addr(addr).ok_or_else(|| format!("bad address {addr}"))?;
        // Commands may take up to their own 5 s limit; connecting may not.
        let con = probe::connect_with(
            &host,
            port,
            &crate::topology::Login::password(pw),
            Duration::from_secs(2),
            super::command::TIMEOUT + Duration::from_secs(1),
        )
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        Ok((con, sentinel))
    }

    /// The master as the Sentinels name it, else the first data node.
    pub(crate) fn default_node(&self) -> Option<String> {
        let snap = self.feed.snapshot()?;
        snap.master
            .clone()
            .or_else(|| snap.nodes.first().map(|n| n.addr.clone()))
    }
}

/// A running console. Dropping it stops it.
pub(crate) struct Console {
    addr: SocketAddr,
    token: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Console {
    /// Listens on `opts.bind:opts.port` and starts watching what `feed` is told to watch.
    pub(crate) async fn start(opts: Options, feed: Feed) -> Result<Console, ConsoleError> {
        if let Some(r) = &opts.reports {
            if !r.is_dir() {
                return Err(ConsoleError::Reports(r.clone()));
            }
        }
        let addr = SocketAddr::new(opts.bind, opts.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ConsoleError::Bind {
                addr,
                hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                    " (pick another port with --port, or 0 for any free one)"
                } else {
                    ""
                },
                source,
            })?;
        let local = listener.local_addr().map_err(|source| ConsoleError::Bind {
            addr,
            source,
            hint: "",
        })?;
        let token = opts.token.clone().unwrap_or_else(auth::new_token);
        let (stop, stop_rx) = watch::channel(false);
        let refresh = opts.refresh;
        let shared = Shared {
            token: Arc::new(token.clone()),
            cookie: Arc::new(auth::cookie_name(local.port())),
            feed: feed.clone(),
            opts: Arc::new(opts),
            stop: stop_rx.clone(),
        };
        let app = router(shared);
        let mut shutdown = stop_rx.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("console server ended: {e}");
            }
        });
        let watcher = super::watch::start(feed, refresh, stop_rx);
        Ok(Console {
            addr: local,
            token,
            stop,
            tasks: vec![server, watcher],
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to open, token included (loopback when it listens on every address).
    pub(crate) fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else if self.addr.is_ipv6() {
            format!("[{}]", self.addr.ip())
        } else {
            self.addr.ip().to_string()
        };
        format!("http://{host}:{}/?token={}", self.addr.port(), self.token)
    }

    /// Stops serving and watching; waits up to 3 s for both to end.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/", get(|| async { Redirect::to("/topology") }))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .route("/topology", get(topology_page))
        .route("/api/topology", get(topology_json))
        .route("/sse/topology", get(topology_sse))
        .route("/events", get(events_page))
        .route("/api/events", get(events_json))
        .route("/sse/events", get(events_sse))
        .route("/failover", post(failover))
        .route("/reports", get(reports_page))
        .route("/reports/view", get(report_view))
        .route("/keys", get(super::pages::keys))
        .route("/key", get(super::pages::key))
        .route(
            "/command",
            get(super::pages::command_form).post(super::pages::command_run),
        )
        .layer(axum::middleware::map_response(headers))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::require,
        ))
        .with_state(shared)
}

/// No caching, no framing, no referrer; a strict content policy unless the handler set
/// its own.
async fn headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; form-action 'self'; frame-ancestors 'none'",
            ),
        );
    }
    res
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        page::CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        page::JS,
    )
}

const WAITING: &str = "<div id=\"topology-fragment\" data-master=\"\" data-masters=\"\"><p class=\"note\">Waiting for the first snapshot of the topology ...</p></div>";

fn topology_fragment(sh: &Shared) -> String {
    match sh.feed.snapshot() {
        Some(s) => topology::render(&s, sh.opts.allow_write),
        None => WAITING.to_string(),
    }
}

async fn topology_page(State(sh): State<Shared>) -> Html<String> {
    let body = format!(
        "<div id=\"topology\">{}</div><p class=\"note\">Polled every {} ms and at once after any Sentinel event.</p>",
        topology_fragment(&sh),
        sh.opts.refresh.as_millis()
    );
    sh.page("/topology", "Topology", &body)
}

async fn topology_json(State(sh): State<Shared>) -> Response {
    match sh.feed.snapshot() {
        Some(s) => Json(s.as_ref().clone()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no snapshot yet\n").into_response(),
    }
}

/// SSE data may not hold carriage returns; line feeds become separate `data:` lines.
fn sse(event: &str, data: &str) -> SseEvent {
    SseEvent::default()
        .event(event)
        .data(data.replace('\r', ""))
}

async fn topology_sse(
    State(sh): State<Shared>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = sh.feed.snapshots();
    let stream =
        futures_util::stream::unfold((rx, sh, true), |(mut rx, mut sh, first)| async move {
            if !first {
                let mut stop = sh.stop.clone();
                tokio::select! {
                    r = rx.changed() => r.ok()?,
                    _ = stop.wait_for(|s| *s) => return None,
                }
            }
            rx.borrow_and_update();
            let html = topology_fragment(&sh);
            sh.stop.borrow_and_update();
            Some((Ok(sse("topology", &html)), (rx, sh, false)))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn events_page(State(sh): State<Shared>) -> Html<String> {
    sh.page("/events", "Events", &events::page(&sh.feed))
}

#[derive(Debug, Deserialize)]
struct After {
    #[serde(default)]
    after: u64,
}

async fn events_json(State(sh): State<Shared>, Query(q): Query<After>) -> Json<Vec<Event>> {
    Json(sh.feed.since(q.after))
}

/// The state of one `/sse/events` stream.
struct EventStream {
    sh: Shared,
    backlog: std::collections::VecDeque<Event>,
    live: broadcast::Receiver<Event>,
    last_id: u64,
    tick: tokio::time::Interval,
    drill: watch::Receiver<u64>,
    counts: String,
}

async fn events_sse(
    State(sh): State<Shared>,
    Query(q): Query<After>,
    headers: axum::http::HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // Subscribe before reading the backlog, so nothing falls between them.
    let live = sh.feed.subscribe();
    // A reconnecting page says what it has seen last (`Last-Event-ID`); a page older
    // than this console (it restarted: ids begin again) starts over.
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut after = q.after.max(resumed);
    if after > sh.feed.last_id() {
        after = 0;
    }
    let mut drill = sh.feed.drill_changes();
    drill.borrow_and_update();
    let st = EventStream {
        backlog: sh.feed.since(after).into(),
        counts: events::counts(sh.feed.drill().as_ref()),
        sh,
        live,
        last_id: after,
        tick: tokio::time::interval(Duration::from_millis(250)),
        drill,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            let fault = || st.sh.feed.drill().and_then(|d| d.fault_at_ms);
            if let Some(ev) = st.backlog.pop_front() {
                if ev.id <= st.last_id {
                    continue;
                }
                st.last_id = ev.id;
                let row = events::row(&ev, fault());
                return Some((Ok(sse("ev", &row).id(ev.id.to_string())), st));
            }
            let mut stop = st.sh.stop.clone();
            tokio::select! {
                r = st.live.recv() => match r {
                    Ok(ev) => st.backlog.push_back(ev),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        st.backlog = st.sh.feed.since(st.last_id).into();
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = st.tick.tick() => {
                    let c = events::counts(st.sh.feed.drill().as_ref());
                    if c != st.counts {
                        st.counts = c.clone();
                        return Some((Ok(sse("counts", &c)), st));
                    }
                }
                r = st.drill.changed() => {
                    r.ok()?;
                    return Some((Ok(sse("drill", "reload")), st));
                }
                _ = stop.wait_for(|s| *s) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn failover(State(sh): State<Shared>) -> Response {
    if !sh.opts.allow_write {
        return sh.error(
            StatusCode::FORBIDDEN,
            "/topology",
            "refused: this console is read-only; start it with --allow-write to use the failover button",
        );
    }
    let Some(target) = sh.feed.current_target() else {
        return sh.error(StatusCode::CONFLICT, "/topology", "no topology is watched");
    };
    let mut errors = Vec::new();
    for addr in &target.sentinels {
        let Some((host, port)) = split_addr(addr) else {
            continue;
        };
        let con = probe::connect(
            &host,
            port,
            &crate::topology::Login::password(target.sentinel_password.clone()),
            Duration::from_secs(2),
        )
        .await;
        let answer = match con {
            Ok(mut c) => {
                redis::cmd("SENTINEL")
                    .arg("FAILOVER")
                    .arg(&target.master_name)
                    .query_async::<String>(&mut c)
                    .await
            }
            Err(e) => Err(e),
        };
        let name = target.name_of(addr);
        match answer {
            Ok(_) => {
                sh.feed.push(
                    Kind::Console,
                    "console",
                    "failover",
                    format!(
                        "SENTINEL FAILOVER {} accepted by {name}",
                        target.master_name
                    ),
                );
                return Redirect::to("/events").into_response();
            }
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    sh.error(
        StatusCode::BAD_GATEWAY,
        "/topology",
        &format!(
            "no Sentinel accepted SENTINEL FAILOVER: {}",
            errors.join("; ")
        ),
    )
}

async fn reports_page(State(sh): State<Shared>) -> Html<String> {
    sh.page(
        "/reports",
        "Reports",
        &reports::page(sh.opts.reports.as_deref()),
    )
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    f: String,
}

async fn report_view(State(sh): State<Shared>, Query(q): Query<ReportQuery>) -> Response {
    let Some(dir) = sh.opts.reports.as_deref() else {
        return sh.error(StatusCode::NOT_FOUND, "/reports", "no reports directory");
    };
    let Some(path) = reports::resolve(dir, &q.f) else {
        return sh.error(
            StatusCode::NOT_FOUND,
            "/reports",
            &format!("{} is not a report in {}", q.f, dir.display()),
        );
    };
    // Read off the async workers, and no more than can be shown (HTML whole, up to the
    // same cap).
    let read = tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut buf = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(reports::VIEW_CAP as u64 + 1).read_to_end(&mut buf))
            .map(|_| buf)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    })
    .await
    .unwrap_or_else(|e| Err(format!("reading the report failed: {e}")));
    let bytes = match read {
        Ok(b) => b,
        Err(e) => return sh.error(StatusCode::INTERNAL_SERVER_ERROR, "/reports", &e),
    };
    if q.f.ends_with(".html") {
        // Our HTML reports are self-contained (inline styles, SVG); no script may run.
        return (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                ),
            ],
            bytes,
        )
            .into_response();
    }
    sh.page("/reports", &q.f, &reports::view_text(&q.f, &bytes))
        .into_response()
}
