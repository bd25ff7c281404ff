//! The Redis cache layer (the seeds' CacheService and friends).
//!
//! - [`keys`]: cache configurations per route kind, key format, invalidation tags.
//! - [`codec`]: stored value format with LZ4 compression above a threshold.
//! - `link`: the connection, standalone or through Sentinels, following failovers.
//! - `breaker`: circuit breaker so a dead Redis is not retried on every request.
//! - [`request`]: a cached route's request, parsed once into its canonical form.
//! - [`layer`]: the cache-aside tower layer (`X-Cache`, stampede protection).
//! - `invalidation`: the hooks every write fires after commit.
//! - `metrics`: per-route counters and latency histograms.
//! - [`warmup`]: warming the critical endpoints.
//!
//! Freshness (DESIGN.md, "Cache freshness"): every tag has a version in Redis, a random
//! 128-bit value that an invalidation replaces and that is never reused. An entry carries the
//! versions of its tags from when its body was computed, and a read serves it only when every
//! version is still present and equal: an entry whose bookkeeping was evicted, expired or
//! lost is unproven and becomes a MISS, under any eviction policy. Entries are also fenced to
//! the Redis server incarnation (`run_id`) they were stored on: after a failover or a restart
//! from AOF/RDB, which may have lost an invalidation, every older entry is a MISS. A computed
//! body is stored
//! only if its versions did not move meanwhile (one Lua script). Tag sets let an
//! invalidation also free the memory of what it made stale, but correctness never depends
//! on them. Writes record their tags in the database's outbox in the write's transaction;
//! while a tag has a row there (Redis was unreachable for the invalidation), no instance
//! serves it from the cache, and whichever instance reaches Redis first drains the rows.

pub(crate) mod breaker;
pub mod codec;
pub(crate) mod invalidation;
pub mod keys;
pub mod layer;
pub(crate) mod link;
pub(crate) mod metrics;
pub mod request;
pub mod warmup;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::config::ApiConfig;
use crate::db::outbox::{Outbox, Recorded};
use breaker::Breaker;
use link::{LinkError, RedisLink};
use metrics::CacheMetrics;

/// Errors of cache management operations.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// CACHE_ENABLED is false.
    #[error("the cache is disabled (CACHE_ENABLED=false)")]
    Disabled,
    /// The breaker is open after repeated Redis failures.
    #[error("redis is unavailable (circuit breaker open)")]
    Unavailable,
    /// A clear pattern was rejected.
    #[error("{0}")]
    BadPattern(String),
    /// Redis failed.
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// Result of a cache read.
#[derive(Debug)]
pub enum Lookup {
    /// The stored body.
    Hit(Bytes),
    /// Not stored, or not provably fresh; carries the tag versions to store the computed
    /// value with (`None` when they could not be established: the value is not stored).
    Miss(Option<Versions>),
    /// Redis is not used for this request.
    Bypass,
}

/// Stores `KEYS[1]` only if every tag version (`KEYS[2..n+1]`) is still present and equal
/// to the one the value was computed at (`ARGV[3..]`), keeps each version at least as long
/// as the entry, and adds the key to each tag set (`KEYS[n+2..]`).
const STORE_LUA: &str = r#"
local n = (#KEYS - 1) / 2
local ttl = tonumber(ARGV[2])
for i = 1, n do
  if redis.call('GET', KEYS[1 + i]) ~= ARGV[2 + i] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
for i = 1, n do
  local v = KEYS[1 + i]
  if redis.call('TTL', v) < ttl then redis.call('EXPIRE', v, ttl) end
  local set = KEYS[1 + n + i]
  redis.call('SADD', set, KEYS[1])
  if redis.call('TTL', set) < ttl then redis.call('EXPIRE', set, ttl) end
end
return 1
"#;

/// For each (version key, tag set) pair: set the version to the new value `ARGV[1]` (with
/// expiry `ARGV[2]`), unlink every key in the set (in batches) and drop the set. Returns the
/// number of keys removed.
const INVALIDATE_LUA: &str = r#"
local removed = 0
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2])
  local members = redis.call('SMEMBERS', KEYS[i + 1])
  for j = 1, #members, 500 do
    removed = removed + redis.call('UNLINK', unpack(members, j, math.min(j + 499, #members)))
  end
  redis.call('DEL', KEYS[i + 1])
end
return removed
"#;

/// How long invalidations are remembered so they can be re-applied after a failover
/// (asynchronous replication may have lost them on the new master).
const REPLAY_WINDOW: Duration = Duration::from_secs(60);

/// How often each instance looks for outbox rows left behind by a failed invalidation.
const DRAIN_EVERY: Duration = Duration::from_millis(250);

/// Outbox rows applied per Redis call (one short script each, well inside the timeout).
const DRAIN_BATCH: usize = 500;

/// Rows younger than this are left to the write that recorded them.
const DRAIN_MIN_AGE_MS: i64 = 500;

/// A new tag version: random, 128 bits, never reused.
fn new_version() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The versions of an entry's tags as read on one Redis server incarnation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// The server's `run_id`.
    pub server: link::ServerId,
    /// One version per tag, in the tags' order.
    pub tags: Vec<String>,
    /// The tags' version keys, in the tags' order (built once per request, reused to store).
    keys: Vec<String>,
}

/// A response shared between coalesced requests.
pub(crate) type SharedResponse = Arc<(axum::http::StatusCode, axum::http::HeaderMap, Bytes)>;
type Inflight = tokio::sync::watch::Receiver<Option<SharedResponse>>;

/// The cache service.
pub struct Cache {
    enabled: bool,
    prefix: String,
    compress_threshold: usize,
    honor_no_cache: bool,
    ttls: crate::config::CacheTtls,
    /// How long a new tag version lives (see `Cache::version_ttl`).
    version_ttl: u64,
    link: Arc<RedisLink>,
    breaker: Breaker,
    /// Per-route metrics.
    pub metrics: CacheMetrics,
    inflight: Mutex<HashMap<String, Inflight>>,
    outbox: Arc<Outbox>,
    recent: Mutex<VecDeque<(Instant, Vec<String>)>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    store_script: redis::Script,
    invalidate_script: redis::Script,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("enabled", &self.enabled)
            .field("link", &self.link)
            .finish()
    }
}

/// The first few tags, for logs.
fn summary(tags: &[String]) -> String {
    let mut s = tags.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if tags.len() > 3 {
        s.push_str(&format!(" and {} more", tags.len() - 3));
    }
    s
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    /// Builds the cache on the database's invalidation `outbox`; starts the outbox drainer
    /// and, in Sentinel mode, the Sentinel watcher, following failovers by
    /// [`link::DEFAULT_FOLLOW`] (must be called inside a tokio runtime).
    pub(crate) fn new(cfg: &ApiConfig, outbox: Arc<Outbox>) -> Arc<Self> {
        let link = RedisLink::new(cfg);
        let cache = Arc::new(Self {
            enabled: cfg.cache_enabled,
            prefix: cfg.key_prefix.clone(),
            compress_threshold: cfg.compress_threshold,
            honor_no_cache: cfg.honor_no_cache,
            ttls: cfg.ttls.clone(),
            version_ttl: Self::version_ttl(&cfg.ttls),
            link: Arc::clone(&link),
            breaker: Breaker::new(cfg.breaker_threshold, cfg.breaker_cooldown),
            metrics: CacheMetrics::default(),
            inflight: Mutex::new(HashMap::new()),
            outbox,
            recent: Mutex::new(VecDeque::new()),
            tasks: Mutex::new(Vec::new()),
            store_script: redis::Script::new(STORE_LUA),
            invalidate_script: redis::Script::new(INVALIDATE_LUA),
        });
        if cfg.cache_enabled {
            let weak: Weak<Cache> = Arc::downgrade(&cache);
            let watcher = link.watch_sentinels(link::DEFAULT_FOLLOW, move || {
                if let Some(c) = weak.upgrade() {
                    tokio::spawn(async move { c.replay_recent().await });
                }
            });
            let weak: Weak<Cache> = Arc::downgrade(&cache);
            let drainer = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(DRAIN_EVERY).await;
                    let Some(c) = weak.upgrade() else { return };
                    c.drain_outbox().await;
                }
            });
            lock(&cache.tasks).extend(watcher.into_iter().chain([drainer]));
        }
        cache
    }

    /// Whether caching is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// TTLs.
    pub fn ttls(&self) -> &crate::config::CacheTtls {
        &self.ttls
    }

    /// Whether `Cache-Control: no-cache` forces a recomputation.
    pub fn honor_no_cache(&self) -> bool {
        self.honor_no_cache
    }

    /// The connection.
    pub fn link(&self) -> &Arc<RedisLink> {
        &self.link
    }

    /// Runs a Redis call through the breaker.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, CacheError>
    where
        F: FnOnce(redis::aio::MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        Ok(self.call_id(|con, _| f(con)).await?.0)
    }

    /// [`Cache::call`], with the server incarnation given to `f` and returned.
    async fn call_id<T, F, Fut>(&self, f: F) -> Result<(T, link::ServerId), CacheError>
    where
        F: FnOnce(redis::aio::MultiplexedConnection, link::ServerId) -> Fut,
        Fut: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        if !self.breaker.allow() {
            return Err(CacheError::Unavailable);
        }
        match self.link.run_with_id(f).await {
            Ok(v) => {
                self.breaker.success();
                Ok(v)
            }
            Err(e) => {
                self.breaker.failure();
                Err(e.into())
            }
        }
    }

    fn version_keys(&self, tags: &[String]) -> Vec<String> {
        tags.iter()
            .map(|t| keys::version_key(&self.prefix, t))
            .collect()
    }

    /// How long a new version lives: as long as the longest-lived entry could.
    fn version_ttl(t: &crate::config::CacheTtls) -> u64 {
        [
            t.statistics,
            t.analytics,
            t.analytics_long,
            t.member,
            t.member_long,
            t.lookup,
            t.default,
        ]
        .into_iter()
        .max()
        .unwrap_or(86_400)
    }

    /// Whether any of `tags` has an invalidation waiting in the outbox (or the outbox
    /// cannot be read): then the cache must not be used for them.
    fn outbox_blocks(&self, tags: &[String]) -> bool {
        match self.outbox.pending() {
            None => true,
            Some(p) => !p.is_empty() && tags.iter().any(|t| p.contains(t)),
        }
    }

    /// Reads `key` and the versions of `tags` in one round trip. A HIT is served only when
    /// the entry's versions are all present and current; otherwise it is a MISS carrying
    /// the versions to store with (missing ones are created first).
    pub async fn lookup(&self, key: &str, tags: &[String], route: &'static str) -> Lookup {
        if !self.enabled || self.outbox_blocks(tags) {
            return Lookup::Bypass;
        }
        let vkeys = self.version_keys(tags);
        let vk = &vkeys;
        let res = self
            .call_id(|mut con, _| async move {
                redis::pipe()
                    .cmd("GET")
                    .arg(key)
                    .cmd("MGET")
                    .arg(vk)
                    .query_async::<(Option<Vec<u8>>, Vec<Option<String>>)>(&mut con)
                    .await
            })
            .await;
        let ((stored, versions), server) = match res {
            Ok(r) => r,
            Err(e) => {
                if !matches!(e, CacheError::Unavailable) {
                    self.metrics.event(route, metrics::Event::RedisError);
                    tracing::debug!("cache read failed, bypassing: {e}");
                }
                return Lookup::Bypass;
            }
        };
        if let Some(stored) = stored {
            match codec::decode_entry(&stored) {
                Ok(entry)
                    if entry.server == &*server
                        && versions.len() == entry.versions.len()
                        && versions
                            .iter()
                            .zip(&entry.versions)
                            .all(|(v, e)| v.as_deref() == Some(*e)) =>
                {
                    match codec::decode(entry.body) {
                        Ok(body) => return Lookup::Hit(body),
                        Err(e) => {
                            tracing::warn!("replacing undecodable cache entry {key}: {e}");
                            self.metrics.event(route, metrics::Event::RedisError);
                        }
                    }
                }
                _ => self.metrics.event(route, metrics::Event::Unproven),
            }
        }
        Lookup::Miss(self.complete_versions(vkeys, versions, server).await)
    }

    /// Reads only the versions of `tags` (for a forced refresh), creating missing ones;
    /// `None` when Redis is not usable.
    pub async fn versions(&self, tags: &[String]) -> Option<Option<Versions>> {
        if !self.enabled || self.outbox_blocks(tags) {
            return None;
        }
        let vkeys = self.version_keys(tags);
        let vk = &vkeys;
        let (read, server) = self
            .call_id(|mut con, _| async move {
                redis::cmd("MGET")
                    .arg(vk)
                    .query_async::<Vec<Option<String>>>(&mut con)
                    .await
            })
            .await
            .ok()?;
        Some(self.complete_versions(vkeys, read, server).await)
    }

    /// The versions at version keys `vkeys` as read on `server`, with the missing ones
    /// created (a fresh value each, set only if still missing, then read back on the same
    /// server). `None` if any is still missing or the server changed.
    async fn complete_versions(
        &self,
        vkeys: Vec<String>,
        read: Vec<Option<String>>,
        server: link::ServerId,
    ) -> Option<Versions> {
        if read.iter().all(Option::is_some) {
            let tags = read.into_iter().collect::<Option<Vec<String>>>()?;
            return Some(Versions {
                server,
                tags,
                keys: vkeys,
            });
        }
        let ttl = self.version_ttl;
        let mut pipe = redis::pipe();
        for (k, v) in vkeys.iter().zip(&read) {
            if v.is_none() {
                pipe.cmd("SET")
                    .arg(k)
                    .arg(new_version())
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl)
                    .ignore();
            }
        }
        pipe.cmd("MGET").arg(&vkeys);
        let ((now,), on): ((Vec<Option<String>>,), _) = self
            .call_id(|mut con, _| async move { pipe.query_async(&mut con).await })
            .await
            .ok()?;
        if on != server {
            return None;
        }
        let tags = now.into_iter().collect::<Option<Vec<String>>>()?;
        Some(Versions {
            server,
            tags,
            keys: vkeys,
        })
    }

    /// Stores `body` under `key` for `ttl` seconds with the tag `versions` it was computed
    /// at, unless a version moved or vanished meanwhile or the server is not the one they
    /// were read on. `versions` must have been read for these `tags` (their version keys
    /// are reused from it). Returns whether it was stored.
    pub async fn store(
        &self,
        key: &str,
        body: &[u8],
        ttl: u64,
        tags: &[String],
        versions: &Versions,
    ) -> Result<bool, CacheError> {
        let value = codec::encode_entry(
            &versions.server,
            &versions.tags,
            body,
            self.compress_threshold,
        );
        let mut inv = self.store_script.key(key);
        for k in &versions.keys {
            inv.key(k);
        }
        for t in tags {
            inv.key(keys::tag_set_key(&self.prefix, t));
        }
        inv.arg(value).arg(ttl);
        for v in &versions.tags {
            inv.arg(v);
        }
        let expected = Arc::clone(&versions.server);
        let (stored, _): (i64, _) = self
            .call_id(|mut con, server| async move {
                if server != expected {
                    return Ok(0);
                }
                inv.invoke_async(&mut con).await
            })
            .await?;
        Ok(stored == 1)
    }

    /// Gives each tag a new version and removes its tagged keys, now, without the outbox
    /// (writes go through `invalidation::write`). Returns the number of keys removed.
    pub async fn invalidate(&self, tags: &[String]) -> Result<u64, CacheError> {
        if tags.is_empty() {
            return Ok(0);
        }
        let mut inv = self.invalidate_script.prepare_invoke();
        for t in tags {
            inv.key(keys::version_key(&self.prefix, t));
            inv.key(keys::tag_set_key(&self.prefix, t));
        }
        inv.arg(new_version()).arg(self.version_ttl);
        self.call(|mut con| async move { inv.invoke_async::<u64>(&mut con).await })
            .await
    }

    fn remember(&self, tags: &[String]) {
        let mut r = lock(&self.recent);
        let now = Instant::now();
        while r
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > REPLAY_WINDOW)
        {
            r.pop_front();
        }
        r.push_back((now, tags.to_vec()));
    }

    /// Applies the invalidation a write recorded in the outbox, and removes its rows once
    /// applied. When Redis cannot be reached the rows stay: every instance keeps the tags
    /// out of the cache until one of them drains the outbox. Returns the number of keys
    /// removed, or `None` when deferred.
    pub(crate) async fn apply(&self, recorded: Recorded) -> Option<u64> {
        if !self.enabled {
            // Another instance on this database may cache: it drains the rows.
            return Some(0);
        }
        if recorded.tags.is_empty() {
            return Some(0);
        }
        self.remember(&recorded.tags);
        match self.invalidate(&recorded.tags).await {
            Ok(n) => {
                if let Err(e) = self.outbox.remove(recorded.ids).await {
                    tracing::warn!(
                        "invalidation applied but its outbox rows stay ({e}); they will be drained"
                    );
                }
                Some(n)
            }
            Err(e) => {
                tracing::warn!(
                    "invalidation of {} tag(s) deferred ({}): {e}; no instance serves them from the cache until the outbox is drained",
                    recorded.tags.len(),
                    summary(&recorded.tags)
                );
                None
            }
        }
    }

    /// Applies outbox rows that their writers could not apply (Redis was unreachable, or
    /// the writer died). Returns how many rows were drained.
    pub async fn drain_outbox(&self) -> usize {
        if !self.enabled || self.outbox.pending().is_some_and(|p| p.is_empty()) {
            return 0;
        }
        let mut drained = 0;
        loop {
            let rows = match self.outbox.older_than(DRAIN_MIN_AGE_MS, DRAIN_BATCH).await {
                Ok(r) if !r.ids.is_empty() => r,
                Ok(_) => return drained,
                Err(e) => {
                    tracing::warn!("cannot read the cache outbox: {e}");
                    return drained;
                }
            };
            let full = rows.ids.len() == DRAIN_BATCH;
            let mut tags = rows.tags.clone();
            tags.sort();
            tags.dedup();
            if self.invalidate(&tags).await.is_err() {
                return drained;
            }
            self.remember(&tags);
            let n = rows.ids.len();
            if let Err(e) = self.outbox.remove(rows.ids).await {
                tracing::warn!(
                    "deferred invalidations applied but not removed from the outbox: {e}"
                );
                return drained;
            }
            tracing::info!(
                "applied {n} deferred invalidation(s) from the outbox ({})",
                summary(&tags)
            );
            drained += n;
            if !full {
                return drained;
            }
        }
    }

    /// Re-applies the invalidations of the last minute (after a master switch).
    async fn replay_recent(&self) {
        let mut tags: Vec<String> = lock(&self.recent)
            .iter()
            .flat_map(|(_, t)| t.clone())
            .collect();
        tags.sort();
        tags.dedup();
        if !tags.is_empty() && self.invalidate(&tags).await.is_ok() {
            tracing::info!(
                "re-applied {} recent invalidation tag(s) on the new master",
                tags.len()
            );
        }
    }

    /// Removes every key matching `<prefix><pattern>` with SCAN + UNLINK. The pattern is a
    /// Redis glob; the prefix is escaped, so nothing outside it can match.
    pub async fn clear(&self, pattern: &str) -> Result<u64, CacheError> {
        if !self.enabled {
            return Err(CacheError::Disabled);
        }
        if pattern.is_empty()
            || pattern.len() > 200
            || pattern.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(CacheError::BadPattern(format!(
                "pattern: must be 1-200 characters without whitespace (got {pattern:?})"
            )));
        }
        let full = format!("{}{pattern}", keys::glob_escape(&self.prefix));
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let f = full.clone();
            let (next, batch): (u64, Vec<String>) = self
                .call(|mut con| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&f)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut con)
                        .await
                })
                .await?;
            // Belt and braces: never touch a key outside the prefix.
            let batch: Vec<String> = batch
                .into_iter()
                .filter(|k| k.starts_with(&self.prefix))
                .collect();
            if !batch.is_empty() {
                let n: u64 = self
                    .call(|mut con| async move {
                        redis::cmd("UNLINK").arg(&batch).query_async(&mut con).await
                    })
                    .await?;
                removed += n;
            }
            cursor = next;
            if cursor == 0 {
                return Ok(removed);
            }
        }
    }

    /// Tags waiting in the outbox, sorted (all of them when it cannot be read: `["*"]`).
    fn pending_tags(&self) -> Vec<String> {
        match self.outbox.pending() {
            Some(p) => {
                let mut v: Vec<String> = p.iter().cloned().collect();
                v.sort();
                v
            }
            None => vec!["*".into()],
        }
    }

    /// `cache/status`.
    pub async fn status(&self) -> Value {
        let dbsize: Option<u64> = if self.enabled {
            self.call(|mut con| async move { redis::cmd("DBSIZE").query_async(&mut con).await })
                .await
                .ok()
        } else {
            None
        };
        json!({
            "enabled": self.enabled,
            "mode": self.link.mode(),
            "address": self.link.address(),
            "connected": dbsize.is_some(),
            "breaker": self.breaker.state(),
            "breaker_opened_total": self.breaker.opened_total(),
            "master_changes": self.link.master_changes(),
            "pending_invalidations": self.pending_tags(),
            "db_keys": dbsize,
            "key_prefix": self.prefix,
            "ttls": self.ttls,
            "compress_threshold": self.compress_threshold,
            "hit_rate": self.metrics.hit_rate(),
        })
    }

    /// `cache/health`: reachability, role, memory, replication and hit rate.
    pub async fn health(&self) -> Value {
        if !self.enabled {
            return json!({ "status": "disabled", "enabled": false });
        }
        let started = Instant::now();
        let info = self
            .call(|mut con| async move {
                let _: String = redis::cmd("PING").query_async(&mut con).await?;
                redis::cmd("INFO").query_async::<String>(&mut con).await
            })
            .await;
        let ping_us = started.elapsed().as_micros() as u64;
        match info {
            Ok(text) => {
                let f: HashMap<&str, &str> = text
                    .lines()
                    .filter_map(|l| l.trim().split_once(':'))
                    .collect();
                let get = |k: &str| f.get(k).map(|v| v.to_string());
                let num = |k: &str| f.get(k).and_then(|v| v.parse::<u64>().ok());
                // An unreadable outbox (`None`) counts as pending, as in `pending_tags`.
                let pending = self.outbox.pending().is_none_or(|p| !p.is_empty());
                json!({
                    "status": if pending { "degraded" } else { "healthy" },
                    "reachable": true,
                    "latency_us": ping_us,
                    "address": self.link.address(),
                    "mode": self.link.mode(),
                    "redis_version": get("redis_version"),
                    "role": get("role"),
                    "replication": { "connected_replicas": num("connected_slaves"), "master_link_status": get("master_link_status") },
                    "memory": {
                        "used_bytes": num("used_memory"), "used_human": get("used_memory_human"),
                        "maxmemory_bytes": num("maxmemory"), "policy": get("maxmemory_policy"),
                    },
                    "evicted_keys": num("evicted_keys"),
                    "hit_rate": self.metrics.hit_rate(),
                    "breaker": self.breaker.state(),
                    "pending_invalidations": pending,
                })
            }
            Err(e) => json!({
                "status": "down",
                "reachable": false,
                "error": e.to_string(),
                "mode": self.link.mode(),
                "breaker": self.breaker.state(),
                "hit_rate": self.metrics.hit_rate(),
            }),
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        for h in lock(&self.tasks).drain(..) {
            h.abort();
        }
    }
}
