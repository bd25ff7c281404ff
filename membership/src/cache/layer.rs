//! The cache-aside middleware: a tower layer put on each cached route with its
//! [`CacheKind`] and its [`CachedRequest`] type. GET and HEAD take the same path (HEAD is
//! answered from the cache or computed as a GET, then sent without its body). Only 200
//! answers are stored, and only they carry `X-Cache` (HIT / MISS / BYPASS) and
//! `X-Cache-Key`: a rejected request or an error is not a cache result. Concurrent misses on
//! one key are coalesced: the handler runs once and the others share its response.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use tower::{Layer, Service, ServiceExt};

use super::keys::{cache_key, CacheKind};
use super::metrics::{Event, Outcome};
use super::request::{parse_parts, CachedRequest};
use super::{Cache, Lookup, SharedResponse};

/// Largest handler response the layer buffers to store.
const MAX_BODY: usize = 64 << 20;

/// The layer for one route, whose requests parse as `R`.
pub struct CacheLayer<R> {
    cache: Arc<Cache>,
    kind: CacheKind,
    route: &'static str,
    request: PhantomData<fn() -> R>,
}

impl<R> Clone for CacheLayer<R> {
    fn clone(&self) -> Self {
        Self {
            cache: Arc::clone(&self.cache),
            kind: self.kind,
            route: self.route,
            request: PhantomData,
        }
    }
}

impl<R: CachedRequest> CacheLayer<R> {
    /// Caches the route `route` (its template, used as the metrics label and the canonical
    /// path) as `kind`.
    pub fn new(cache: Arc<Cache>, kind: CacheKind, route: &'static str) -> Self {
        Self {
            cache,
            kind,
            route,
            request: PhantomData,
        }
    }
}

impl<S, R> Layer<S> for CacheLayer<R> {
    type Service = CacheService<S, R>;
    fn layer(&self, inner: S) -> Self::Service {
        CacheService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service the layer wraps a route in.
pub struct CacheService<S, R> {
    inner: S,
    layer: CacheLayer<R>,
}

impl<S: Clone, R> Clone for CacheService<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S, R> Service<Request<Body>> for CacheService<S, R>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    R: CachedRequest,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The ready inner service goes into the future; a fresh clone stays here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move { Ok(layer.handle(req, inner).await) })
    }
}

fn with_headers(mut resp: Response<Body>, outcome: Outcome, key: &str) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert("x-cache", HeaderValue::from_static(outcome.header()));
    if let Ok(v) = HeaderValue::from_str(key) {
        h.insert("x-cache-key", v);
    }
    resp
}

fn from_shared(shared: &SharedResponse) -> Response<Body> {
    let (status, headers, body) = shared.as_ref();
    let mut resp = Response::new(Body::from(body.clone()));
    *resp.status_mut() = *status;
    *resp.headers_mut() = headers.clone();
    resp
}

/// Removes the in-flight entry when the leader finishes or is cancelled.
struct InflightGuard<'a> {
    cache: &'a Cache,
    key: &'a str,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        super::lock(&self.cache.inflight).remove(self.key);
    }
}

/// A HEAD answer: the GET answer's status and headers, its length, no body.
fn headless(resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    if let Some(len) = body.size_hint().exact() {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, Body::empty())
}

impl<R: CachedRequest> CacheLayer<R> {
    async fn handle<S>(&self, req: Request<Body>, inner: S) -> Response<Body>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send,
        S::Future: Send,
    {
        let head = req.method() == Method::HEAD;
        if req.method() != Method::GET && !head {
            return call(inner, req).await;
        }
        let resp = self.handle_get(req, inner).await;
        if head {
            headless(resp)
        } else {
            resp
        }
    }

    async fn handle_get<S>(&self, req: Request<Body>, inner: S) -> Response<Body>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send,
        S::Future: Send,
    {
        let started = Instant::now();
        let cache = &self.cache;
        let (mut parts, body) = req.into_parts();
        let parsed = match parse_parts::<R>(&mut parts).await {
            Ok(p) => p,
            Err(rejection) => {
                cache.metrics.event(self.route, Event::Uncacheable);
                return rejection.into_response();
            }
        };
        let key = cache_key(
            cache.prefix(),
            self.kind,
            &parsed.path(self.route),
            &parsed.variant(),
        );
        let tags = parsed.tags(self.kind);
        parts.extensions.insert(parsed);
        // A HEAD is computed as a GET, so what is stored and shared has its body.
        parts.method = Method::GET;
        let req = Request::from_parts(parts, body);
        let refresh = cache.honor_no_cache()
            && req
                .headers()
                .get_all(header::CACHE_CONTROL)
                .iter()
                .any(|v| v.to_str().is_ok_and(|s| s.contains("no-cache")));
        let lookup = if refresh {
            match cache.versions(&tags).await {
                Some(v) => Lookup::Miss(v),
                None => Lookup::Bypass,
            }
        } else {
            cache.lookup(&key, &tags, self.route).await
        };
        let (resp, outcome) = match lookup {
            Lookup::Hit(body) => {
                let mut resp = Response::new(Body::from(body));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                (resp, Outcome::Hit)
            }
            Lookup::Bypass => {
                cache.metrics.event(self.route, Event::OriginCall);
                (call(inner, req).await, Outcome::Bypass)
            }
            Lookup::Miss(versions) => (
                self.miss(req, inner, &key, &tags, versions, refresh).await,
                Outcome::Miss,
            ),
        };
        if resp.status() != StatusCode::OK {
            cache.metrics.event(self.route, Event::Uncacheable);
            return resp;
        }
        cache.metrics.record(self.route, outcome, started.elapsed());
        with_headers(resp, outcome, &key)
    }

    /// The miss path: one request per key runs the handler and stores its response; the
    /// others arriving meanwhile wait for it and share it.
    async fn miss<S>(
        &self,
        req: Request<Body>,
        inner: S,
        key: &str,
        tags: &[String],
        versions: Option<super::Versions>,
        refresh: bool,
    ) -> Response<Body>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send,
        S::Future: Send,
    {
        let cache = &self.cache;
        // Requests coalesce only with a leader that read the same tag versions: one that
        // arrives after a write was acknowledged reads newer versions, so it never shares a
        // body its leader may have read from the database before that write. Without
        // versions (refresh, or versions not established) nothing is shared.
        let flight = match (&versions, refresh) {
            (Some(v), false) => Some(format!("{key}\n{}\n{}", v.server, v.tags.join(","))),
            _ => None,
        };
        let leader = flight.as_ref().map(|flight| {
            let mut map = super::lock(&cache.inflight);
            match map.get(flight) {
                Some(rx) => Err(rx.clone()),
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    map.insert(flight.clone(), rx);
                    Ok(tx)
                }
            }
        });
        let tx = match leader {
            Some(Err(mut rx)) => {
                cache.metrics.event(self.route, Event::Coalesced);
                loop {
                    if let Some(shared) = rx.borrow().clone() {
                        return from_shared(&shared);
                    }
                    if rx.changed().await.is_err() {
                        // The leader was cancelled: compute it ourselves.
                        cache.metrics.event(self.route, Event::OriginCall);
                        return call(inner, req).await;
                    }
                }
            }
            Some(Ok(tx)) => Some(tx),
            None => None,
        };
        let _guard = tx
            .as_ref()
            .zip(flight.as_deref())
            .map(|(_, key)| InflightGuard { cache, key });
        cache.metrics.event(self.route, Event::OriginCall);
        let resp = call(inner, req).await;
        let (parts, body) = resp.into_parts();
        let body = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("cannot buffer response of {key}: {e}");
                let mut r = Response::new(Body::from("response too large to cache"));
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return r;
            }
        };
        match (parts.status, versions) {
            (StatusCode::OK, Some(versions)) => {
                let ttl = self.kind.ttl(cache.ttls());
                match cache.store(key, &body, ttl, tags, &versions).await {
                    Ok(true) => {}
                    Ok(false) => cache.metrics.event(self.route, Event::StoreSkipped),
                    Err(e) => {
                        cache.metrics.event(self.route, Event::RedisError);
                        tracing::debug!("cache store of {key} failed: {e}");
                    }
                }
            }
            (StatusCode::OK, None) => cache.metrics.event(self.route, Event::StoreSkipped),
            _ => {}
        }
        let shared: SharedResponse = Arc::new((parts.status, parts.headers, body));
        if let Some(tx) = tx {
            let _ = tx.send(Some(Arc::clone(&shared)));
        }
        from_shared(&shared)
    }
}

async fn call<S>(inner: S, req: Request<Body>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    match inner.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}
