//! The connection to Redis: one multiplexed connection to a standalone server or to the
//! master found through Sentinels.
//!
//! In Sentinel mode it follows a failover on its own (no Rust client does all of this):
//!
//! - a subscription to `+switch-master` on every Sentinel: the new master once a Sentinel
//!   announces it;
//! - with [`Follow::Promotion`], also to the failover leader's `+selected-slave` and
//!   `+promoted-slave`: the named replica is asked for its ROLE (every 25 ms after
//!   selection) and the link moves as soon as it answers master. That is earlier than
//!   `+switch-master`, which the other Sentinels publish only once the leader has seen the
//!   promotion and told them, and the leader itself only once the other replicas are
//!   reconfigured;
//! - re-resolution whenever a command fails with a connection error or a READONLY /
//!   MASTERDOWN reply.
//!
//! An event only names the master to try first: the link moves to a server only when it
//! answers ROLE master at the time of the check, so a stale event cannot move it back.
//!
//! Every connection logs in with [`RedisAuth`]: data nodes (the master, a replica asked
//! for its ROLE) with `username`/`password`, Sentinels (resolution and the subscriptions)
//! with `sentinel_username`/`sentinel_password`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
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

/// Which Sentinel events move a Sentinel-aware link to a new master during a failover
/// (see [`RedisLink::watch_sentinels`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// On `+switch-master` only: once a Sentinel announces the new configuration, after
    /// the leader has seen the promotion (the leader itself announces it only after the
    /// other replicas are reconfigured).
    Announcement,
    /// Also on the leader's `+selected-slave` and `+promoted-slave`: the named replica is
    /// asked for its ROLE (every 25 ms for up to 10 s after selection) and the link moves
    /// as soon as it answers master. `+switch-master` still moves it too (other leaders,
    /// missed events).
    Promotion,
}

impl Follow {
    /// The Sentinel channels this mode subscribes to.
    fn channels(self) -> &'static [&'static str] {
        match self {
            Follow::Announcement => &["+switch-master"],
            Follow::Promotion => &["+switch-master", "+selected-slave", "+promoted-slave"],
        }
    }
}

/// How the link logs in: `AUTH [username] password` on data nodes, and separately on
/// Sentinels (whose `requirepass` is their own).
///
/// A side without a password sends no `AUTH` at all (a username alone is ignored: `AUTH`
/// always takes a password). `Debug` shows only which fields are set, never a value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisAuth {
    /// ACL user on data nodes (`None`: the `default` user).
    pub username: Option<String>,
    /// Password on data nodes (`requirepass`, or the ACL user's).
    pub password: Option<String>,
    /// ACL user on Sentinels (`None`: the `default` user).
    pub sentinel_username: Option<String>,
    /// Password on Sentinels (their own `requirepass`, not the data nodes').
    pub sentinel_password: Option<String>,
}

impl RedisAuth {
    /// A data-node password only (the `default` user; Sentinels without a password).
    pub fn password(password: Option<String>) -> Self {
        Self {
            password,
            ..Self::default()
        }
    }

    /// The login on data nodes.
    fn data_node(&self) -> Login<'_> {
        Login {
            username: self.username.as_deref(),
            password: self.password.as_deref(),
        }
    }

    /// The login on Sentinels.
    fn sentinel(&self) -> Login<'_> {
        Login {
            username: self.sentinel_username.as_deref(),
            password: self.sentinel_password.as_deref(),
        }
    }
}

impl std::fmt::Debug for RedisAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "set" } else { "unset" };
        f.debug_struct("RedisAuth")
            .field("username", &set(&self.username))
            .field("password", &set(&self.password))
            .field("sentinel_username", &set(&self.sentinel_username))
            .field("sentinel_password", &set(&self.sentinel_password))
            .finish()
    }
}

/// One side's credentials, as a connection sends them.
#[derive(Clone, Copy, Default)]
struct Login<'a> {
    username: Option<&'a str>,
    password: Option<&'a str>,
}

impl Login<'_> {
    /// `info` with this login's username and password.
    fn apply(self, mut info: RedisConnectionInfo) -> RedisConnectionInfo {
        if let Some(user) = self.username {
            info = info.set_username(user);
        }
        if let Some(pw) = self.password {
            info = info.set_password(pw);
        }
        info
    }
}

/// The mode the API's cache follows failovers with.
pub const DEFAULT_FOLLOW: Follow = Follow::Promotion;

/// How often a replica selected for promotion is asked for its ROLE.
const PROMOTION_POLL: Duration = Duration::from_millis(25);

/// How long a replica selected for promotion is watched at most.
const PROMOTION_WAIT: Duration = Duration::from_secs(10);

/// What runs after a Sentinel event reset the link.
type OnSwitch = Arc<dyn Fn() + Send + Sync>;

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
    auth: RedisAuth,
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
    login: Login<'_>,
    db: i64,
    timeout: Duration,
) -> Result<MultiplexedConnection, LinkError> {
    let info = login.apply(RedisConnectionInfo::default().set_db(db));
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
            cfg.redis_auth.clone(),
            cfg.redis_db,
            cfg.redis_timeout,
        )
    }

    /// A link to `target` (connects lazily), logging in with `auth`; `timeout` bounds every
    /// connect and command.
    pub fn with(target: RedisTarget, auth: RedisAuth, db: i64, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            target,
            auth,
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
            let mut con = open(&host, port, self.auth.data_node(), self.db, self.timeout).await?;
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
        if let Some((h, p)) = self.announced() {
            if self.is_master(&h, p).await.unwrap_or(false) {
                return Ok((h, p));
            }
        }
        let asks = sentinels.iter().map(|(host, port)| async move {
            let answer = async {
                let mut s = open(host, *port, self.auth.sentinel(), 0, self.timeout).await?;
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
        let mut m = open(host, port, self.auth.data_node(), self.db, self.timeout).await?;
        role_is_master(&mut m).await
    }

    /// The master an event named last, tried first by the next resolution.
    fn announced(&self) -> Option<(String, u16)> {
        self.announced
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes `host:port` the announced master and resets the link when that is not the
    /// address in use. Whether it reset.
    fn announce(&self, host: &str, port: u16) -> bool {
        *self.announced.write().unwrap_or_else(|p| p.into_inner()) = Some((host.to_string(), port));
        let addr = format!("{host}:{port}");
        if self.address().as_deref() == Some(addr.as_str()) {
            return false;
        }
        self.reset();
        true
    }

    /// In Sentinel mode, starts a task that listens on every Sentinel at once (a
    /// failover's leader may announce it a second after the others) and moves the link
    /// (announces the new master and resets the link when it is not the one in use) on the
    /// events `follow` names; `on_switch` runs after each such reset. Sentinels that go
    /// away are re-subscribed. Aborting the returned task stops every subscription and
    /// every replica watch. `None` in standalone mode.
    pub fn watch_sentinels(
        self: &Arc<Self>,
        follow: Follow,
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
        let on_switch: OnSwitch = Arc::new(on_switch);
        Some(tokio::spawn(async move {
            // Listeners and replica watches run in one set: dropping it (when this task is
            // aborted) aborts them all.
            let mut set = tokio::task::JoinSet::new();
            let (promotions, mut promoted) = tokio::sync::mpsc::unbounded_channel();
            for (host, port) in sentinels {
                set.spawn(listen(
                    link.clone(),
                    (host, port),
                    master_name.clone(),
                    follow,
                    promotions.clone(),
                    Arc::clone(&on_switch),
                ));
            }
            drop(promotions);
            // The replica each running watch is for: one watch per replica at a time.
            let mut watches: HashMap<tokio::task::Id, (String, u16)> = HashMap::new();
            loop {
                tokio::select! {
                    Some(replica) = promoted.recv() => {
                        if !watches.values().any(|r| *r == replica) {
                            let watch = watch_promotion(
                                link.clone(),
                                replica.clone(),
                                Arc::clone(&on_switch),
                            );
                            watches.insert(set.spawn(watch).id(), replica);
                        }
                    }
                    done = set.join_next_with_id() => match done {
                        None => return,
                        Some(Ok((id, ()))) => {
                            watches.remove(&id);
                        }
                        Some(Err(e)) => {
                            watches.remove(&e.id());
                        }
                    },
                }
            }
        }))
    }
}

/// Whether the server behind `con` answers ROLE as a master.
async fn role_is_master(con: &mut MultiplexedConnection) -> Result<bool, LinkError> {
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(con).await?;
    Ok(matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master"))
}

/// A subscription to `channels` on the Sentinel at `host:port`, logged in as `login`.
async fn subscribe(
    host: &str,
    port: u16,
    login: Login<'_>,
    channels: &[&str],
    timeout: Duration,
) -> Result<redis::aio::PubSub, LinkError> {
    let info = login.apply(RedisConnectionInfo::default());
    let client = redis::Client::open(
        (host.to_string(), port)
            .into_connection_info()?
            .set_redis_settings(info),
    )?;
    let mut ps = tokio::time::timeout(timeout * 4, client.get_async_pubsub())
        .await
        .map_err(|_| LinkError::Timeout(timeout * 4))??;
    ps.subscribe(channels).await?;
    Ok(ps)
}

/// Follows the Sentinel at `sentinel` for as long as the link lives, re-subscribing 200 ms
/// after a lost connection: `+switch-master` moves the link; a replica named by
/// `+selected-slave` or `+promoted-slave` is sent to `promotions` to be watched.
async fn listen(
    link: Weak<RedisLink>,
    sentinel: (String, u16),
    master_name: String,
    follow: Follow,
    promotions: tokio::sync::mpsc::UnboundedSender<(String, u16)>,
    on_switch: OnSwitch,
) {
    let (host, port) = sentinel;
    // The link's settings, copied: the listener must not keep the link alive.
    let Some((timeout, auth)) = link.upgrade().map(|l| (l.timeout, l.auth.clone())) else {
        return;
    };
    loop {
        let subscribed = subscribe(&host, port, auth.sentinel(), follow.channels(), timeout).await;
        if let Ok(mut ps) = subscribed {
            let mut stream = ps.on_message();
            while let Some(msg) = stream.next().await {
                let payload: String = msg.get_payload().unwrap_or_default();
                if msg.get_channel_name() != "+switch-master" {
                    if let Some(replica) = promoted_replica(&payload, &master_name) {
                        let _ = promotions.send(replica);
                    }
                    continue;
                }
                let Some((ip, new_port)) = switched_master(&payload, &master_name) else {
                    continue;
                };
                let Some(link) = link.upgrade() else { return };
                if link.announce(&ip, new_port) {
                    tracing::info!(
                        "+switch-master from {host}:{port}: {master_name} -> {ip}:{new_port}"
                    );
                    on_switch();
                }
            }
        }
        if link.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The new master of a `+switch-master` payload for `master_name`:
/// `<name> <old-ip> <old-port> <new-ip> <new-port>`.
fn switched_master(payload: &str, master_name: &str) -> Option<(String, u16)> {
    let parts: Vec<&str> = payload.split_whitespace().collect();
    match parts[..] {
        [name, _, _, ip, port] if name == master_name => Some((ip.to_string(), port.parse().ok()?)),
        _ => None,
    }
}

/// The replica of a `+selected-slave` / `+promoted-slave` payload for `master_name`:
/// `slave <ip>:<port> <ip> <port> @ <master-name> <master-ip> <master-port>`.
fn promoted_replica(payload: &str, master_name: &str) -> Option<(String, u16)> {
    let parts: Vec<&str> = payload.split_whitespace().collect();
    match parts[..] {
        ["slave", _, ip, port, "@", name, _, _] if name == master_name => {
            Some((ip.to_string(), port.parse().ok()?))
        }
        _ => None,
    }
}

/// Watches a replica the failover's leader selected or promoted: asks it for its ROLE every
/// [`PROMOTION_POLL`] (over one connection, reopened after an error) and, as soon as it
/// answers master, moves the link to it. Gives up after [`PROMOTION_WAIT`], when the link
/// is gone, or when another route announced a master meanwhile (a `+switch-master` or
/// another watch handled the failover).
async fn watch_promotion(link: Weak<RedisLink>, replica: (String, u16), on_switch: OnSwitch) {
    let (host, port) = replica;
    let deadline = tokio::time::Instant::now() + PROMOTION_WAIT;
    let Some(before) = link.upgrade().map(|l| l.announced()) else {
        return;
    };
    let mut con = None;
    loop {
        {
            let Some(link) = link.upgrade() else { return };
            if link.announced() != before {
                return;
            }
            if con.is_none() {
                let login = link.auth.data_node();
                con = open(&host, port, login, link.db, link.timeout).await.ok();
            }
            if let Some(c) = con.as_mut() {
                match role_is_master(c).await {
                    Ok(true) => {
                        if link.announce(&host, port) {
                            tracing::info!("promotion of {host}:{port}: it answers ROLE master");
                            on_switch();
                        }
                        return;
                    }
                    Ok(false) => {}
                    Err(_) => con = None,
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(PROMOTION_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_master_payloads_name_the_new_master_of_our_master_only() {
        let p = "mymaster 127.0.0.1 7000 127.0.0.1 7001";
        assert_eq!(
            switched_master(p, "mymaster"),
            Some(("127.0.0.1".into(), 7001))
        );
        assert_eq!(switched_master(p, "other"), None);
        assert_eq!(switched_master("mymaster 127.0.0.1 7000", "mymaster"), None);
        assert_eq!(
            switched_master("mymaster 127.0.0.1 7000 127.0.0.1 x", "mymaster"),
            None
        );
    }

    #[test]
    fn promotion_payloads_name_the_replica_of_our_master_only() {
        let p = "slave 127.0.0.1:7002 127.0.0.1 7002 @ mymaster 127.0.0.1 7000";
        assert_eq!(
            promoted_replica(p, "mymaster"),
            Some(("127.0.0.1".into(), 7002))
        );
        assert_eq!(promoted_replica(p, "other"), None);
        // A master's or a Sentinel's details are not a replica.
        let master = "master mymaster 127.0.0.1 7000";
        assert_eq!(promoted_replica(master, "mymaster"), None);
        let sentinel = "sentinel 0123abcd 127.0.0.1 26380 @ mymaster 127.0.0.1 7000";
        assert_eq!(promoted_replica(sentinel, "mymaster"), None);
    }

    #[test]
    fn auth_debug_names_what_is_set_but_no_secret() {
        let auth = RedisAuth {
            username: Some("app-user".into()),
            password: Some("data-secret".into()),
            sentinel_username: None,
            sentinel_password: Some("sentinel-secret".into()),
        };
        let shown = format!("{auth:?}");
        for secret in ["app-user", "data-secret", "sentinel-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains(r#"password: "set""#), "{shown}");
        assert!(shown.contains(r#"sentinel_username: "unset""#), "{shown}");
        assert_eq!(
            RedisAuth::password(Some("pw".into())),
            RedisAuth {
                password: Some("pw".into()),
                ..RedisAuth::default()
            }
        );
    }

    #[tokio::test]
    async fn standalone_links_have_no_watcher() {
        let link = RedisLink::with(
            RedisTarget::Standalone {
                host: "127.0.0.1".into(),
                port: 1,
            },
            RedisAuth::default(),
            0,
            Duration::from_millis(100),
        );
        assert!(link.watch_sentinels(Follow::Promotion, || {}).is_none());
    }
}
