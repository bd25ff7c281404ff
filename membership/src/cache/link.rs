//! The connection to Redis: one multiplexed connection to a standalone server or to the
//! master found through Sentinels.
//!
//! In Sentinel mode it follows a failover on its own, by two routes (no Rust client does
//! both): a subscription to `+switch-master` on the Sentinels, and re-resolution whenever
//! a command fails with a connection error or a READONLY / MASTERDOWN reply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisConnectionInfo, RedisError};

use crate::config::{ApiConfig, RedisTarget};

/// Errors reaching Redis.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No Sentinel named a reachable master.
    #[error("no Sentinel named a reachable master for {master_name}: {detail}")]
    NoMaster {
        /// Master name.
        master_name: String,
        /// What each Sentinel said.
        detail: String,
    },
    /// A Redis command or connection failed.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// The call did not finish in time.
    #[error("redis: timed out after {0:?}")]
    Timeout(Duration),
}

/// Whether an error means the connection or the master is no longer the right one.
pub(crate) fn needs_reconnect(e: &LinkError) -> bool {
    match e {
        LinkError::Redis(r) => {
            r.is_io_error()
                || r.is_timeout()
                || r.is_connection_dropped()
                || r.is_connection_refusal()
                || matches!(r.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
        }
        LinkError::NoMaster { .. } | LinkError::Timeout(_) => true,
    }
}

/// A Redis server incarnation: its `run_id`, new at every start of the process. An entry
/// stored on one incarnation is not trusted on another (a promoted replica or a server
/// restarted from its AOF/RDB may hold data from before an invalidation it lost).
pub type ServerId = Arc<str>;

/// The `run_id` of the server behind `con`.
async fn server_id(con: &mut MultiplexedConnection) -> Result<ServerId, LinkError> {
    let info: String = redis::cmd("INFO").arg("server").query_async(con).await?;
    info.lines()
        .find_map(|l| l.trim().strip_prefix("run_id:"))
        .map(|id| Arc::from(id.trim()))
        .ok_or_else(|| {
            LinkError::Redis(RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "INFO server has no run_id",
            )))
        })
}

/// The shared connection.
pub struct RedisLink {
    target: RedisTarget,
    password: Option<String>,
    db: i64,
    timeout: Duration,
    /// Address, connection and the server's `run_id` (its incarnation).
    current: RwLock<Option<(String, MultiplexedConnection, ServerId)>>,
    connecting: tokio::sync::Mutex<()>,
    master_changes: AtomicU64,
    last_master: RwLock<Option<String>>,
    /// Bumped by every reset: a connection made while a reset happened is discarded.
    generation: AtomicU64,
    /// The master a `+switch-master` announced, tried before asking the Sentinels.
    announced: RwLock<Option<(String, u16)>>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("target", &self.target)
            .finish()
    }
}

async fn open(
    host: &str,
    port: u16,
    password: Option<&str>,
    db: i64,
    timeout: Duration,
) -> Result<MultiplexedConnection, LinkError> {
    let mut info = RedisConnectionInfo::default().set_db(db);
    if let Some(pw) = password {
        info = info.set_password(pw);
    }
    let client = redis::Client::open(
        (host.to_string(), port)
            .into_connection_info()?
            .set_redis_settings(info),
    )?;
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    tokio::time::timeout(
        timeout * 2,
        client.get_multiplexed_async_connection_with_config(&cfg),
    )
    .await
    .map_err(|_| LinkError::Timeout(timeout * 2))?
    .map_err(LinkError::from)
}

impl RedisLink {
    /// A link for the configured target; connects lazily.
    pub fn new(cfg: &ApiConfig) -> Arc<Self> {
        Self::with(
            cfg.redis.clone(),
            cfg.redis_password.clone(),
            cfg.redis_db,
            cfg.redis_timeout,
        )
    }

    /// A link to `target` (connects lazily); `timeout` bounds every connect and command.
    pub fn with(
        target: RedisTarget,
        password: Option<String>,
        db: i64,
        timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            target,
            password,
            db,
            timeout,
            current: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            master_changes: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            announced: RwLock::new(None),
            last_master: RwLock::new(None),
        })
    }

    /// The command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `standalone` or `sentinel`.
    pub fn mode(&self) -> &'static str {
        match self.target {
            RedisTarget::Standalone { .. } => "standalone",
            RedisTarget::Sentinel { .. } => "sentinel",
        }
    }

    /// Address of the server in use (the master in Sentinel mode), once connected.
    pub fn address(&self) -> Option<String> {
        self.last_master
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many times the master address changed after the first connection.
    pub fn master_changes(&self) -> u64 {
        self.master_changes.load(Ordering::Relaxed)
    }

    /// A connection to the current server and that server's incarnation, connecting (and
    /// resolving the master) if needed.
    pub async fn connection_with_id(&self) -> Result<(MultiplexedConnection, ServerId), LinkError> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        // One task connects; the others wait and take its connection.
        let _guard = self.connecting.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        // A reset while we resolve and connect means our answer may already be stale
        // (Sentinels still voting for the old master): try again, a bounded number of times.
        let mut attempts = 0;
        let con = loop {
            attempts += 1;
            let generation = self.generation.load(Ordering::SeqCst);
            let (host, port) = self.resolve().await?;
            let mut con =
                open(&host, port, self.password.as_deref(), self.db, self.timeout).await?;
            let id = tokio::time::timeout(self.timeout, server_id(&mut con))
                .await
                .map_err(|_| LinkError::Timeout(self.timeout))??;
            if self.generation.load(Ordering::SeqCst) == generation || attempts >= 3 {
                let addr = format!("{host}:{port}");
                self.note_master(&addr);
                *self.current.write().unwrap_or_else(|p| p.into_inner()) =
                    Some((addr, con.clone(), Arc::clone(&id)));
                break (con, id);
            }
        };
        Ok(con)
    }

    fn cached(&self) -> Option<(MultiplexedConnection, ServerId)> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .map(|(_, c, id)| (c.clone(), Arc::clone(id)))
    }

    fn note_master(&self, addr: &str) {
        let mut last = self.last_master.write().unwrap_or_else(|p| p.into_inner());
        if last.as_deref().is_some_and(|l| l != addr) {
            self.master_changes.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                "redis master is now {addr} (was {})",
                last.as_deref().unwrap_or("-")
            );
        }
        *last = Some(addr.to_string());
    }

    /// Drops the connection so the next call reconnects (and re-resolves the master).
    pub fn reset(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Runs `f` on a connection, bounded by the timeout; resets the link when the error
    /// says the connection or the master is no longer right.
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, LinkError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        Ok(self.run_with_id(|con, _| f(con)).await?.0)
    }

    /// [`RedisLink::run`], with the incarnation of the server it runs on given to `f` and
    /// returned.
    pub async fn run_with_id<T, F, Fut>(&self, f: F) -> Result<(T, ServerId), LinkError>
    where
        F: FnOnce(MultiplexedConnection, ServerId) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let result = async {
            let (con, id) = self.connection_with_id().await?;
            let v = tokio::time::timeout(self.timeout, f(con, Arc::clone(&id)))
                .await
                .map_err(|_| LinkError::Timeout(self.timeout))?
                .map_err(LinkError::from)?;
            Ok((v, id))
        }
        .await;
        if let Err(e) = &result {
            if needs_reconnect(e) {
                self.reset();
            }
        }
        result
    }

    /// The address to connect to: the configured server, or the master named by the most
    /// Sentinels (ties broken by the highest `config-epoch`), checked to really be in role
    /// master. Right after a failover the leader Sentinel keeps naming the old master
    /// (already with the new epoch) until `+failover-end`, and the old master still claims
    /// the role, so neither the first answer nor the highest epoch alone is safe.
    async fn resolve(&self) -> Result<(String, u16), LinkError> {
        let (sentinels, master_name) = match &self.target {
            RedisTarget::Standalone { host, port } => return Ok((host.clone(), *port)),
            RedisTarget::Sentinel {
                sentinels,
                master_name,
            } => (sentinels, master_name),
        };
        let announced = self
            .announced
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((h, p)) = announced {
            if self.is_master(&h, p).await.unwrap_or(false) {
                return Ok((h, p));
            }
        }
        let asks = sentinels.iter().map(|(host, port)| async move {
            let answer = async {
                let mut s = open(host, *port, None, 0, self.timeout).await?;
                let flat: Vec<String> = redis::cmd("SENTINEL")
                    .arg("MASTER")
                    .arg(master_name)
                    .query_async(&mut s)
                    .await?;
                let field = |k: &str| {
                    flat.chunks(2)
                        .find(|c| c.len() == 2 && c[0] == k)
                        .map(|c| c[1].clone())
                };
                let ip = field("ip").unwrap_or_default();
                let port: u16 = field("port").and_then(|p| p.parse().ok()).unwrap_or(0);
                let epoch: u64 = field("config-epoch")
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(0);
                Ok::<_, LinkError>((ip, port, epoch))
            }
            .await;
            (format!("{host}:{port}"), answer)
        });
        let answers = futures_util::future::join_all(asks).await;
        let mut detail = Vec::new();
        let mut candidates: Vec<(String, u16, u64)> = Vec::new();
        for (sentinel, a) in answers {
            match a {
                Ok((ip, port, epoch)) if port > 0 => candidates.push((ip, port, epoch)),
                Ok(_) => detail.push(format!("{sentinel} does not know {master_name}")),
                Err(e) => detail.push(format!("{sentinel}: {e}")),
            }
        }
        let mut ranked: Vec<(String, u16, usize, u64)> = Vec::new();
        for (ip, port, epoch) in candidates {
            match ranked.iter_mut().find(|r| r.0 == ip && r.1 == port) {
                Some(r) => {
                    r.2 += 1;
                    r.3 = r.3.max(epoch);
                }
                None => ranked.push((ip, port, 1, epoch)),
            }
        }
        ranked.sort_by(|a, b| b.2.cmp(&a.2).then(b.3.cmp(&a.3)));
        for (mh, mp, _votes, epoch) in ranked {
            // A Sentinel can lag behind a failover: confirm the role.
            let role = self.is_master(&mh, mp).await;
            match role {
                Ok(true) => return Ok((mh, mp)),
                Ok(false) => detail.push(format!("{mh}:{mp} (epoch {epoch}) is not a master")),
                Err(e) => detail.push(format!("{mh}:{mp} (epoch {epoch}): {e}")),
            }
        }
        Err(LinkError::NoMaster {
            master_name: master_name.clone(),
            detail: detail.join("; "),
        })
    }

    /// Whether `host:port` answers ROLE as a master.
    async fn is_master(&self, host: &str, port: u16) -> Result<bool, LinkError> {
        let mut m = open(host, port, self.password.as_deref(), self.db, self.timeout).await?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut m).await?;
        Ok(matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master"))
    }

    /// In Sentinel mode, starts a task that listens for `+switch-master` on every
    /// Sentinel at once (a failover's leader may announce it a second after the others)
    /// and resets the link when the announced master is not the one in use; `on_switch`
    /// runs after each such reset. Sentinels that go away are re-subscribed. Aborting the
    /// returned task stops every subscription. `None` in standalone mode.
    pub fn watch_sentinels(
        self: &Arc<Self>,
        on_switch: impl Fn() + Send + Sync + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let RedisTarget::Sentinel {
            sentinels,
            master_name,
        } = self.target.clone()
        else {
            return None;
        };
        let link = Arc::downgrade(self);
        let timeout = self.timeout;
        let on_switch = Arc::new(on_switch);
        Some(tokio::spawn(async move {
            let mut set = tokio::task::JoinSet::new();
            for (host, port) in sentinels {
                let (link, master_name, on_switch) =
                    (link.clone(), master_name.clone(), Arc::clone(&on_switch));
                set.spawn(async move {
                    loop {
                        let sub = async {
                            let client =
                                redis::Client::open((host.clone(), port).into_connection_info()?)?;
                            let mut ps =
                                tokio::time::timeout(timeout * 4, client.get_async_pubsub())
                                    .await
                                    .map_err(|_| LinkError::Timeout(timeout * 4))??;
                            ps.subscribe("+switch-master").await?;
                            Ok::<_, LinkError>(ps)
                        }
                        .await;
                        if let Ok(mut ps) = sub {
                            let mut stream = ps.on_message();
                            while let Some(msg) = stream.next().await {
                                let payload: String = msg.get_payload().unwrap_or_default();
                                // "<name> <old-ip> <old-port> <new-ip> <new-port>"
                                let parts: Vec<&str> = payload.split_whitespace().collect();
                                if parts.len() != 5 || parts[0] != master_name {
                                    continue;
                                }
                                let Some(link) = link.upgrade() else { return };
                                let new = format!("{}:{}", parts[3], parts[4]);
                                if let Ok(p) = parts[4].parse::<u16>() {
                                    *link.announced.write().unwrap_or_else(|e| e.into_inner()) =
                                        Some((parts[3].to_string(), p));
                                }
                                if link.address().as_deref() != Some(new.as_str()) {
                                    tracing::info!(
                                        "+switch-master from {host}:{port}: {master_name} -> {new}"
                                    );
                                    link.reset();
                                    on_switch();
                                }
                            }
                        }
                        if link.strong_count() == 0 {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                });
            }
            while set.join_next().await.is_some() {}
        }))
    }
}
