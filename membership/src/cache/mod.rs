//! The Redis cache layer (the seeds' CacheService and friends).
//!
//! - [`keys`]: cache configurations per route kind, key format, invalidation tags.
//! - [`codec`]: stored value format with LZ4 compression above a threshold.
//! - [`link`]: the connection, standalone or through Sentinels, following failovers.
//! - [`breaker`]: circuit breaker so a dead Redis is not retried on every request.
//! - [`layer`]: the cache-aside tower layer (`X-Cache`, stampede protection).
//! - [`invalidation`]: the hooks every write fires after commit.
//! - [`metrics`]: per-route counters and latency histograms.
//! - [`warmup`]: warming the critical endpoints.
//!
//! Consistency: every entry is stored together with the tags it depends on, and only if
//! none of those tags' version counters moved since the request read them (one Lua script,
//! so a write that commits while a miss is being computed can never leave stale data
//! behind). An invalidation bumps the versions and unlinks the tagged keys (no KEYS).
//! When Redis cannot be reached for an invalidation, the tags are kept and the cache is
//! bypassed until they have been applied, so no read after a write sees older data.

pub mod breaker;
pub mod codec;
pub mod invalidation;
pub mod keys;
pub mod layer;
pub mod link;
pub mod metrics;
pub mod warmup;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::config::ApiConfig;
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
    /// Not stored; carries the tag versions read with it, to store the computed value.
    Miss(Vec<String>),
    /// Redis is not used for this request.
    Bypass,
}

/// Stores `KEYS[1]` only if every tag version (`KEYS[2..n+1]`) still equals the one read
/// before the value was computed (`ARGV[3..]`), and adds the key to each tag set.
const STORE_LUA: &str = r#"
local n = (#KEYS - 1) / 2
for i = 1, n do
  local v = redis.call('GET', KEYS[1 + i]) or '0'
  if v ~= ARGV[2 + i] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local ttl = tonumber(ARGV[2])
for i = 1, n do
  local set = KEYS[1 + n + i]
  redis.call('SADD', set, KEYS[1])
  if redis.call('TTL', set) < ttl then redis.call('EXPIRE', set, ttl) end
end
return 1
"#;

/// For each (version key, tag set) pair: bump the version, unlink every key in the set
/// (in batches) and drop the set. Returns the number of keys removed.
const INVALIDATE_LUA: &str = r#"
local removed = 0
for i = 1, #KEYS, 2 do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], 172800)
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

/// A response shared between coalesced requests.
pub type SharedResponse = Arc<(axum::http::StatusCode, axum::http::HeaderMap, Bytes)>;
type Inflight = tokio::sync::watch::Receiver<Option<SharedResponse>>;

/// The cache service.
pub struct Cache {
    enabled: bool,
    prefix: String,
    compress_threshold: usize,
    honor_no_cache: bool,
    ttls: crate::config::CacheTtls,
    link: Arc<RedisLink>,
    breaker: Breaker,
    /// Per-route metrics.
    pub metrics: CacheMetrics,
    inflight: Mutex<HashMap<String, Inflight>>,
    pending: Mutex<Vec<String>>,
    recent: Mutex<VecDeque<(Instant, Vec<String>)>>,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
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
    /// Builds the cache; in Sentinel mode starts the `+switch-master` watcher (must be
    /// called inside a tokio runtime).
    pub fn new(cfg: &ApiConfig) -> Arc<Self> {
        let link = RedisLink::new(cfg);
        let cache = Arc::new(Self {
            enabled: cfg.cache_enabled,
            prefix: cfg.key_prefix.clone(),
            compress_threshold: cfg.compress_threshold,
            honor_no_cache: cfg.honor_no_cache,
            ttls: cfg.ttls.clone(),
            link: Arc::clone(&link),
            breaker: Breaker::new(cfg.breaker_threshold, cfg.breaker_cooldown),
            metrics: CacheMetrics::default(),
            inflight: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
            recent: Mutex::new(VecDeque::new()),
            watcher: Mutex::new(None),
            store_script: redis::Script::new(STORE_LUA),
            invalidate_script: redis::Script::new(INVALIDATE_LUA),
        });
        if cfg.cache_enabled {
            let weak: Weak<Cache> = Arc::downgrade(&cache);
            let handle = link.watch_sentinels(move || {
                if let Some(c) = weak.upgrade() {
                    tokio::spawn(async move { c.replay_recent().await });
                }
            });
            *lock(&cache.watcher) = handle;
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
        if !self.breaker.allow() {
            return Err(CacheError::Unavailable);
        }
        match self.link.run(f).await {
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

    /// Reads `key` and the versions of `tags` in one round trip.
    pub async fn lookup(&self, key: &str, tags: &[String], route: &'static str) -> Lookup {
        if !self.enabled || !self.flush_pending().await {
            return Lookup::Bypass;
        }
        let vkeys = self.version_keys(tags);
        let res = self
            .call(|mut con| async move {
                redis::pipe()
                    .cmd("GET")
                    .arg(key)
                    .cmd("MGET")
                    .arg(&vkeys)
                    .query_async::<(Option<Vec<u8>>, Vec<Option<String>>)>(&mut con)
                    .await
            })
            .await;
        match res {
            Ok((Some(stored), _)) => match codec::decode(&stored) {
                Ok(body) => Lookup::Hit(body),
                Err(e) => {
                    tracing::warn!("dropping undecodable cache entry {key}: {e}");
                    self.metrics.event(route, metrics::Event::RedisError);
                    Lookup::Bypass
                }
            },
            Ok((None, versions)) => Lookup::Miss(
                versions
                    .into_iter()
                    .map(|v| v.unwrap_or_else(|| "0".into()))
                    .collect(),
            ),
            Err(e) => {
                if !matches!(e, CacheError::Unavailable) {
                    self.metrics.event(route, metrics::Event::RedisError);
                    tracing::debug!("cache read failed, bypassing: {e}");
                }
                Lookup::Bypass
            }
        }
    }

    /// Reads only the versions of `tags` (for a forced refresh); `None` when Redis is not
    /// usable.
    pub async fn versions(&self, tags: &[String]) -> Option<Vec<String>> {
        if !self.enabled || !self.flush_pending().await {
            return None;
        }
        let vkeys = self.version_keys(tags);
        self.call(|mut con| async move {
            redis::cmd("MGET")
                .arg(&vkeys)
                .query_async::<Vec<Option<String>>>(&mut con)
                .await
        })
        .await
        .ok()
        .map(|v| {
            v.into_iter()
                .map(|v| v.unwrap_or_else(|| "0".into()))
                .collect()
        })
    }

    /// Stores `body` under `key` for `ttl` seconds unless a tag moved past `versions`.
    /// Returns whether it was stored.
    pub async fn store(
        &self,
        key: &str,
        body: &[u8],
        ttl: u64,
        tags: &[String],
        versions: &[String],
    ) -> Result<bool, CacheError> {
        let value = codec::encode(body, self.compress_threshold);
        let mut inv = self.store_script.key(key);
        for k in self.version_keys(tags) {
            inv.key(k);
        }
        for t in tags {
            inv.key(keys::tag_set_key(&self.prefix, t));
        }
        inv.arg(value).arg(ttl);
        for v in versions {
            inv.arg(v);
        }
        let stored: i64 = self
            .call(|mut con| async move { inv.invoke_async(&mut con).await })
            .await?;
        Ok(stored == 1)
    }

    async fn run_invalidation(&self, tags: &[String]) -> Result<u64, CacheError> {
        let mut inv = self.invalidate_script.prepare_invoke();
        for t in tags {
            inv.key(keys::version_key(&self.prefix, t));
            inv.key(keys::tag_set_key(&self.prefix, t));
        }
        self.call(|mut con| async move { inv.invoke_async::<u64>(&mut con).await })
            .await
    }

    /// Applies invalidations that could not reach Redis earlier. Returns whether the cache
    /// may be used (nothing left pending).
    async fn flush_pending(&self) -> bool {
        let tags: Vec<String> = {
            let p = lock(&self.pending);
            if p.is_empty() {
                return true;
            }
            p.clone()
        };
        match self.run_invalidation(&tags).await {
            Ok(_) => {
                let mut p = lock(&self.pending);
                p.retain(|t| !tags.contains(t));
                tracing::info!("applied {} deferred invalidation tag(s)", tags.len());
                p.is_empty()
            }
            Err(_) => false,
        }
    }

    /// Invalidates every entry carrying one of `tags`. When Redis cannot be reached the
    /// tags are kept and the cache is bypassed until they are applied. Returns the number
    /// of keys removed, or `None` when deferred.
    pub async fn invalidate(&self, tags: Vec<String>) -> Option<u64> {
        if !self.enabled || tags.is_empty() {
            return Some(0);
        }
        {
            let mut r = lock(&self.recent);
            let now = Instant::now();
            while r
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > REPLAY_WINDOW)
            {
                r.pop_front();
            }
            r.push_back((now, tags.clone()));
        }
        match self.run_invalidation(&tags).await {
            Ok(n) => Some(n),
            Err(e) => {
                let mut p = lock(&self.pending);
                // One warning per outage; the rest while tags are already pending at debug.
                if p.is_empty() {
                    tracing::warn!(
                        "invalidation of {} tag(s) deferred ({}): {e}; the cache is bypassed until deferred invalidations apply",
                        tags.len(),
                        summary(&tags)
                    );
                } else {
                    tracing::debug!(
                        "invalidation of {} tag(s) deferred ({}): {e}",
                        tags.len(),
                        summary(&tags)
                    );
                }
                for t in tags {
                    if !p.contains(&t) {
                        p.push(t);
                    }
                }
                None
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
        if !tags.is_empty() && self.invalidate(tags.clone()).await.is_some() {
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
            "pending_invalidations": lock(&self.pending).clone(),
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
                let pending = !lock(&self.pending).is_empty();
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
        if let Some(h) = lock(&self.watcher).take() {
            h.abort();
        }
    }
}
