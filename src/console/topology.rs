//! The topology as the console shows it: every data node (role, link, offset and lag,
//! clients, memory, persistence) and every Sentinel's view (the master it names, flags,
//! config epoch, quorum, its leader vote), with disagreements between them spelled out.
//!
//! Nodes are found through the Sentinels (the master they name, the replicas and other
//! Sentinels they know) plus the names the target gives, so a node that is down still
//! shows, as down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde::Serialize;

use super::feed::now_ms;
use super::Target;
use crate::report::escape;
use crate::topology::probe::{self, pairs, parse_info, parse_kv_list};

/// One data node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct DataNode {
    /// Node name (or its address when unnamed).
    pub(crate) name: String,
    /// `host:port`.
    pub(crate) addr: String,
    /// `master`, `slave`, or `down` when it did not answer.
    pub(crate) role: String,
    /// For a replica: the master it follows.
    pub(crate) following: Option<String>,
    /// For a replica: `master_link_status` is `up`.
    pub(crate) link_up: Option<bool>,
    /// Replication offset.
    pub(crate) offset: Option<i64>,
    /// For a replica: bytes behind its master's offset.
    pub(crate) lag_bytes: Option<i64>,
    /// For a replica: seconds since its master last heard from it (the master's `lag`).
    pub(crate) lag_s: Option<i64>,
    /// `connected_clients`.
    pub(crate) clients: Option<i64>,
    /// `used_memory`, bytes.
    pub(crate) memory: Option<i64>,
    /// `maxmemory`, bytes (0: none).
    pub(crate) maxmemory: Option<i64>,
    /// AOF and RDB state in a few words.
    pub(crate) persistence: String,
    /// Why it could not be read.
    pub(crate) error: Option<String>,
}

/// One Sentinel's view.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct SentinelNode {
    /// Node name (or its address).
    pub(crate) name: String,
    /// `host:port`.
    pub(crate) addr: String,
    /// Whether it answered.
    pub(crate) reachable: bool,
    /// Its run id (`SENTINEL MYID`).
    pub(crate) myid: Option<String>,
    /// The master it names.
    pub(crate) master: Option<String>,
    /// Its flags for the master (`master`, `s_down`, `o_down`, `failover_in_progress` ...).
    pub(crate) flags: String,
    /// `config-epoch`.
    pub(crate) config_epoch: Option<i64>,
    /// `quorum`.
    pub(crate) quorum: Option<i64>,
    /// Replicas it knows.
    pub(crate) replicas: Option<i64>,
    /// Other Sentinels it knows.
    pub(crate) other_sentinels: Option<i64>,
    /// The leader it last voted for and the epoch (from `+vote-for-leader`).
    pub(crate) voted: Option<String>,
    /// Why it could not be read.
    pub(crate) error: Option<String>,
}

/// The whole picture at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Snapshot {
    /// When it was taken, ms since the Unix epoch.
    pub(crate) taken_ms: u64,
    /// Topology name.
    pub(crate) name: String,
    /// The name Sentinels monitor the master under.
    pub(crate) master_name: String,
    /// The master as most reachable Sentinels name it.
    pub(crate) master: Option<String>,
    /// Data nodes, named ones first.
    pub(crate) nodes: Vec<DataNode>,
    /// Sentinels.
    pub(crate) sentinels: Vec<SentinelNode>,
    /// The last leader elected (from `+elected-leader`), with its epoch.
    pub(crate) leader: Option<String>,
    /// Where Sentinels or nodes disagree, in words.
    pub(crate) disagreements: Vec<String>,
}

impl Snapshot {
    /// Names of the data nodes in role master.
    pub(crate) fn masters(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.role == "master")
            .map(|n| n.name.as_str())
            .collect()
    }

    /// Whether `addr` is one of the nodes this snapshot shows (data node or Sentinel),
    /// and whether it is a Sentinel.
    pub(crate) fn knows(&self, addr: &str) -> Option<bool> {
        if self.nodes.iter().any(|n| n.addr == addr) {
            Some(false)
        } else if self.sentinels.iter().any(|s| s.addr == addr) {
            Some(true)
        } else {
            None
        }
    }
}

/// Leader votes and elections heard on the Sentinels' channels, by Sentinel address.
#[derive(Debug, Clone, Default)]
pub(crate) struct Votes {
    /// Sentinel address → (voted-for run id, epoch).
    pub(crate) votes: HashMap<String, (String, String)>,
    /// (leader Sentinel address, epoch) of the last `+elected-leader`.
    pub(crate) elected: Option<(String, String)>,
}

pub(crate) use crate::config::external::split_addr;

/// Open connections by address, kept between snapshots.
#[derive(Default)]
pub(crate) struct Conns(HashMap<String, MultiplexedConnection>);

/// How one ask went: the answer, and the connection to keep.
type Asked<T> = (String, Result<T, String>, Option<MultiplexedConnection>);

/// Runs `ask` on every address at once, each within `timeout`. A kept connection that
/// fails with an error (Sentinel kills client connections of a node it reconfigures) is
/// replaced by a fresh one, asked once more, so a live node is not shown as down.
async fn ask_all<T, F, Fut>(
    conns: &mut Conns,
    addrs: &[String],
    password: Option<&str>,
    timeout: Duration,
    ask: F,
) -> Vec<(String, Result<T, String>)>
where
    F: Fn(MultiplexedConnection) -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    let once = |c: MultiplexedConnection| {
        let fut = ask(c);
        async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(Ok(v)) => Ok(Ok(v)),
                Ok(Err(e)) => Ok(Err(e.to_string())),
                Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
            }
        }
    };
    let runs = addrs.iter().map(|a| {
        let kept = conns.0.get(a).cloned();
        let once = &once;
        async move {
            if let Some(c) = kept {
                match once(c.clone()).await {
                    Ok(Ok(v)) => return (a.clone(), Ok(v), Some(c)),
                    Err(timed_out) => return (a.clone(), Err(timed_out), None),
                    Ok(Err(_)) => {}
                }
            }
            let Some((host, port)) = split_addr(a) else {
                return (a.clone(), Err(format!("bad address {a:?}")), None);
            };
            let login = crate::topology::Login::password(password.map(str::to_string));
            match probe::connect(&host, port, &login, timeout).await {
                Ok(c) => match once(c.clone()).await {
                    Ok(Ok(v)) => (a.clone(), Ok(v), Some(c)),
                    Ok(Err(e)) | Err(e) => (a.clone(), Err(e), None),
                },
                Err(e) => (a.clone(), Err(e.to_string()), None),
            }
        }
    });
    let asked: Vec<Asked<T>> = futures_util::future::join_all(runs).await;
    asked
        .into_iter()
        .map(|(a, r, c)| {
            match c {
                Some(c) => conns.0.insert(a.clone(), c),
                None => conns.0.remove(&a),
            };
            (a, r)
        })
        .collect()
}

fn num(m: &HashMap<String, String>, k: &str) -> Option<i64> {
    m.get(k).and_then(|v| v.parse().ok())
}

/// What one Sentinel answered: its view, and the addresses it knows.
struct SentinelAnswer {
    view: SentinelNode,
    replicas: Vec<String>,
    sentinels: Vec<String>,
}

async fn ask_sentinel(
    mut con: MultiplexedConnection,
    master_name: &str,
) -> redis::RedisResult<SentinelAnswer> {
    let mut p = redis::pipe();
    p.cmd("SENTINEL").arg("MYID");
    p.cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(master_name);
    p.cmd("SENTINEL").arg("MASTER").arg(master_name);
    p.cmd("SENTINEL").arg("REPLICAS").arg(master_name);
    p.cmd("SENTINEL").arg("SENTINELS").arg(master_name);
    #[allow(clippy::type_complexity)]
    let (myid, addr, master, replicas, sentinels): (
        String,
        Option<(String, String)>,
        Vec<String>,
        Vec<Vec<String>>,
        Vec<Vec<String>>,
    ) = p.query_async(&mut con).await?;
    let m = pairs(master);
    let addr_of = |r: HashMap<String, String>| Some(format!("{}:{}", r.get("ip")?, r.get("port")?));
    Ok(SentinelAnswer {
        view: SentinelNode {
            reachable: true,
            myid: Some(myid),
            master: addr.map(|(h, p)| format!("{h}:{p}")),
            flags: m.get("flags").cloned().unwrap_or_default(),
            config_epoch: num(&m, "config-epoch"),
            quorum: num(&m, "quorum"),
            replicas: num(&m, "num-slaves"),
            other_sentinels: num(&m, "num-other-sentinels"),
            ..SentinelNode::default()
        },
        replicas: replicas
            .into_iter()
            .map(pairs)
            .filter_map(addr_of)
            .collect(),
        sentinels: sentinels
            .into_iter()
            .map(pairs)
            .filter_map(addr_of)
            .collect(),
    })
}

async fn ask_node(mut con: MultiplexedConnection) -> redis::RedisResult<HashMap<String, String>> {
    let text: String = redis::cmd("INFO")
        .arg("replication")
        .arg("clients")
        .arg("memory")
        .arg("persistence")
        .query_async(&mut con)
        .await?;
    Ok(parse_info(&text))
}

fn persistence(i: &HashMap<String, String>) -> String {
    let mut parts = Vec::new();
    if i.get("loading").map(String::as_str) == Some("1") {
        parts.push("loading".to_string());
    }
    parts.push(match i.get("aof_enabled").map(String::as_str) {
        Some("1") => {
            let mut s = "AOF on".to_string();
            if i.get("aof_rewrite_in_progress").map(String::as_str) == Some("1") {
                s.push_str(" (rewriting)");
            }
            if let Some(st) = i.get("aof_last_write_status").filter(|s| *s != "ok") {
                s.push_str(&format!(" (last write {st})"));
            }
            s
        }
        _ => "AOF off".to_string(),
    });
    let mut rdb = format!(
        "RDB {}",
        i.get("rdb_last_bgsave_status")
            .map(String::as_str)
            .unwrap_or("?")
    );
    if i.get("rdb_bgsave_in_progress").map(String::as_str) == Some("1") {
        rdb.push_str(" (saving)");
    }
    if let Some(c) = i.get("rdb_changes_since_last_save") {
        rdb.push_str(&format!(", {c} changes unsaved"));
    }
    parts.push(rdb);
    parts.join(" · ")
}

/// Takes a snapshot of `target`: Sentinels first (they say which nodes exist), then
/// every data node, each with `timeout` to answer.
pub(crate) async fn take(
    target: &Target,
    conns: &mut Conns,
    votes: &Votes,
    timeout: Duration,
) -> Snapshot {
    // Sentinels: the target's, plus every one they know of.
    let mut sentinel_addrs: Vec<String> = target.sentinels.clone();
    let mut answers: BTreeMap<String, Result<SentinelAnswer, String>> = BTreeMap::new();
    for _round in 0..2 {
        let todo: Vec<String> = sentinel_addrs
            .iter()
            .filter(|a| !answers.contains_key(*a))
            .cloned()
            .collect();
        if todo.is_empty() {
            break;
        }
        let master_name = target.master_name.as_str();
        let asked = ask_all(
            conns,
            &todo,
            target.sentinel_password.as_deref(),
            timeout,
            |c| ask_sentinel(c, master_name),
        )
        .await;
        for (a, r) in asked {
            if let Ok(ans) = &r {
                for s in &ans.sentinels {
                    if !sentinel_addrs.contains(s) {
                        sentinel_addrs.push(s.clone());
                    }
                }
            }
            answers.insert(a, r);
        }
    }
    // One Sentinel known by two addresses (a hostname in the target, an IP from its
    // peers) is shown once, under the address found first.
    let mut ids = BTreeSet::new();
    for a in &sentinel_addrs {
        let id = match answers.get(a) {
            Some(Ok(ans)) => ans.view.myid.clone(),
            _ => None,
        };
        if let Some(id) = id {
            if !ids.insert(id) {
                answers.remove(a);
            }
        }
    }
    let runids: HashMap<String, String> = answers
        .iter()
        .filter_map(|(a, r)| Some((r.as_ref().ok()?.view.myid.clone()?, a.clone())))
        .collect();
    let name_of_runid = |id: &str| {
        runids
            .get(id)
            .map(|a| target.name_of(a))
            .unwrap_or_else(|| id.chars().take(8).collect())
    };

    // Data nodes: named by the target (not Sentinels), named by a Sentinel.
    let mut data: Vec<String> = target
        .names
        .iter()
        .map(|(a, _)| a.clone())
        .filter(|a| !sentinel_addrs.contains(a))
        .collect();
    for r in answers.values().flatten() {
        for a in r.view.master.iter().chain(&r.replicas) {
            if !data.contains(a) {
                data.push(a.clone());
            }
        }
    }
    let infos = ask_all(conns, &data, target.password.as_deref(), timeout, ask_node).await;
    // The masters' views of their replicas: address → (offset, lag s), and master offsets.
    let mut seen_by_master: HashMap<String, (Option<i64>, Option<i64>)> = HashMap::new();
    let mut master_offsets: HashMap<String, i64> = HashMap::new();
    for (a, r) in &infos {
        let Ok(i) = r else { continue };
        if i.get("role").map(String::as_str) != Some("master") {
            continue;
        }
        if let Some(o) = num(i, "master_repl_offset") {
            master_offsets.insert(a.clone(), o);
        }
        for (k, v) in i {
            if k.starts_with("slave") && k[5..].chars().all(|c| c.is_ascii_digit()) {
                let kv = parse_kv_list(v);
                if let (Some(ip), Some(port)) = (kv.get("ip"), kv.get("port")) {
                    seen_by_master.insert(
                        format!("{ip}:{port}"),
                        (num(&kv, "offset"), num(&kv, "lag")),
                    );
                }
            }
        }
    }
    let mut nodes = Vec::new();
    for (a, r) in infos {
        let mut n = DataNode {
            name: target.name_of(&a),
            addr: a.clone(),
            ..DataNode::default()
        };
        match r {
            Err(e) => {
                n.role = "down".into();
                n.error = Some(e);
            }
            Ok(i) => {
                n.role = i.get("role").cloned().unwrap_or_default();
                n.clients = num(&i, "connected_clients");
                n.memory = num(&i, "used_memory");
                n.maxmemory = num(&i, "maxmemory");
                n.persistence = persistence(&i);
                if n.role == "slave" {
                    let m = match (i.get("master_host"), i.get("master_port")) {
                        (Some(h), Some(p)) => Some(format!("{h}:{p}")),
                        _ => None,
                    };
                    n.link_up = Some(i.get("master_link_status").map(String::as_str) == Some("up"));
                    n.offset = num(&i, "slave_repl_offset");
                    if let (Some(mo), Some(o)) =
                        (m.as_ref().and_then(|m| master_offsets.get(m)), n.offset)
                    {
                        n.lag_bytes = Some((mo - o).max(0));
                    }
                    n.lag_s = seen_by_master.get(&a).and_then(|s| s.1);
                    n.following = m;
                } else {
                    n.offset = num(&i, "master_repl_offset");
                }
            }
        }
        nodes.push(n);
    }
    // Named nodes in the target's order, then the rest by address.
    let order = |a: &str| {
        target
            .names
            .iter()
            .position(|(x, _)| x == a)
            .unwrap_or(usize::MAX)
    };
    nodes.sort_by(|x, y| {
        order(&x.addr)
            .cmp(&order(&y.addr))
            .then(x.addr.cmp(&y.addr))
    });

    let mut sentinels: Vec<SentinelNode> = answers
        .into_iter()
        .map(|(a, r)| {
            let mut s = match r {
                Ok(ans) => ans.view,
                Err(e) => SentinelNode {
                    error: Some(e),
                    ..SentinelNode::default()
                },
            };
            s.name = target.name_of(&a);
            s.voted = votes
                .votes
                .get(&a)
                .map(|(id, epoch)| format!("{} (epoch {epoch})", name_of_runid(id)));
            s.addr = a;
            s
        })
        .collect();
    sentinels.sort_by(|x, y| {
        order(&x.addr)
            .cmp(&order(&y.addr))
            .then(x.addr.cmp(&y.addr))
    });

    let master = probe::most_named(sentinels.iter().filter_map(|s| s.master.clone()));
    let disagreements = disagreements(&nodes, &sentinels, master.as_deref(), target);
    Snapshot {
        taken_ms: now_ms(),
        name: target.name.clone(),
        master_name: target.master_name.clone(),
        master,
        nodes,
        sentinels,
        leader: votes
            .elected
            .as_ref()
            .map(|(a, epoch)| format!("{} (epoch {epoch})", target.name_of(a))),
        disagreements,
    }
}

/// Where the Sentinels disagree with each other, or the data nodes with them.
pub(crate) fn disagreements(
    nodes: &[DataNode],
    sentinels: &[SentinelNode],
    master: Option<&str>,
    target: &Target,
) -> Vec<String> {
    let mut out = Vec::new();
    let up: Vec<&SentinelNode> = sentinels.iter().filter(|s| s.reachable).collect();
    let group = |f: &dyn Fn(&SentinelNode) -> String| {
        let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &up {
            g.entry(f(s)).or_default().push(s.name.clone());
        }
        g
    };
    let describe = |g: &BTreeMap<String, Vec<String>>, what: &str| {
        g.iter()
            .map(|(v, who)| format!("{} {what} {v}", who.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let named = group(&|s| {
        s.master
            .as_deref()
            .map(|m| target.name_of(m))
            .unwrap_or_else(|| "no master".into())
    });
    if named.len() > 1 {
        out.push(format!(
            "Sentinels name different masters: {}",
            describe(&named, "name")
        ));
    }
    let epochs = group(&|s| {
        s.config_epoch
            .map(|e| e.to_string())
            .unwrap_or_else(|| "?".into())
    });
    if epochs.len() > 1 {
        out.push(format!(
            "config epochs differ: {}",
            describe(&epochs, "at epoch")
        ));
    }
    let down = group(&|s| {
        let f: BTreeSet<&str> = s
            .flags
            .split(',')
            .filter(|f| ["s_down", "o_down", "failover_in_progress"].contains(f))
            .collect();
        if f.is_empty() {
            "up".into()
        } else {
            f.into_iter().collect::<Vec<_>>().join("+")
        }
    });
    if down.len() > 1 {
        out.push(format!(
            "Sentinels see the master differently: {}",
            describe(&down, "see")
        ));
    }
    let masters: Vec<&str> = nodes
        .iter()
        .filter(|n| n.role == "master")
        .map(|n| n.name.as_str())
        .collect();
    if masters.len() > 1 {
        out.push(format!(
            "{} data nodes answer as master: {}",
            masters.len(),
            masters.join(", ")
        ));
    }
    if let Some(m) = master {
        for n in nodes.iter().filter(|n| n.role == "slave") {
            if let Some(f) = n.following.as_deref().filter(|f| *f != m) {
                out.push(format!(
                    "{} follows {} but the Sentinels name {}",
                    n.name,
                    target.name_of(f),
                    target.name_of(m)
                ));
            }
        }
        if let Some(n) = nodes
            .iter()
            .find(|n| n.addr == m && n.role != "master" && n.role != "down")
        {
            out.push(format!(
                "the Sentinels name {} as master, but it answers as {}",
                n.name, n.role
            ));
        }
    }
    out
}

fn bytes(n: Option<i64>) -> String {
    n.map(super::keys::human_bytes)
        .unwrap_or_else(|| "-".into())
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".into())
}

/// The live part of the Topology page (swapped in on every SSE update). The root element
/// carries `data-master` (the Sentinels' master) and `data-masters` (nodes in role
/// master) for scripts and tests.
pub(crate) fn render(s: &Snapshot, allow_write: bool) -> String {
    let mut h = String::new();
    let masters = s.masters().join(",");
    h.push_str(&format!(
        "<div id=\"topology-fragment\" data-master=\"{}\" data-masters=\"{}\" data-taken-ms=\"{}\">",
        escape(s.master.as_deref().unwrap_or("")),
        escape(&masters),
        s.taken_ms
    ));
    let master = s.master.as_deref().map(|m| {
        let name = s
            .nodes
            .iter()
            .find(|n| n.addr == m)
            .map(|n| n.name.as_str())
            .unwrap_or(m);
        format!("{} ({m})", escape(name))
    });
    h.push_str(&format!(
        "<p class=\"summary\">Master <b>{}</b> as the Sentinels name <code>{}</code>{}</p>",
        master.unwrap_or_else(|| "unknown".into()),
        escape(&s.master_name),
        s.leader
            .as_ref()
            .map(|l| format!(" · last elected leader: {}", escape(l)))
            .unwrap_or_default()
    ));
    if s.disagreements.is_empty() {
        h.push_str("<div class=\"ok\" id=\"agreement\">Sentinels and nodes agree.</div>");
    } else {
        h.push_str("<div class=\"disagree\" id=\"disagreements\"><b>Disagreement</b><ul>");
        for d in &s.disagreements {
            h.push_str(&format!("<li>{}</li>", escape(d)));
        }
        h.push_str("</ul></div>");
    }
    h.push_str("<h2>Data nodes</h2><table class=\"grid\" id=\"nodes\"><thead><tr><th>node</th><th>address</th><th>role</th><th>follows</th><th>link</th><th>offset</th><th>lag</th><th>clients</th><th>memory</th><th>persistence</th></tr></thead><tbody>");
    for n in &s.nodes {
        let lag = match (n.lag_bytes, n.lag_s) {
            (None, None) => "-".to_string(),
            (b, t) => format!(
                "{}{}",
                b.map(|b| format!("{b} B")).unwrap_or_default(),
                t.map(|t| format!(" · {t} s")).unwrap_or_default()
            ),
        };
        let memory = match (n.memory, n.maxmemory) {
            (Some(m), Some(max)) if max > 0 => format!("{} / {}", bytes(Some(m)), bytes(Some(max))),
            (m, _) => bytes(m),
        };
        h.push_str(&format!(
            "<tr data-node=\"{}\" data-role=\"{}\" class=\"role-{}\"><td>{}</td><td><code>{}</code></td><td class=\"role\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&n.name),
            escape(&n.role),
            escape(&n.role),
            escape(&n.name),
            escape(&n.addr),
            escape(&n.role),
            escape(&n.following.as_deref().map(|f| {
                s.nodes.iter().find(|x| x.addr == f).map(|x| x.name.clone()).unwrap_or_else(|| f.to_string())
            }).unwrap_or_else(|| "-".into())),
            match n.link_up {
                Some(true) => "up",
                Some(false) => "<b>down</b>",
                None => "-",
            },
            opt(&n.offset),
            escape(&lag),
            opt(&n.clients),
            escape(&memory),
            escape(n.error.as_deref().unwrap_or(&n.persistence)),
        ));
    }
    h.push_str("</tbody></table>");
    h.push_str("<h2>Sentinels</h2><table class=\"grid\" id=\"sentinels\"><thead><tr><th>sentinel</th><th>address</th><th>names master</th><th>flags</th><th>config epoch</th><th>quorum</th><th>replicas known</th><th>other Sentinels</th><th>voted for</th></tr></thead><tbody>");
    for x in &s.sentinels {
        let named = x
            .master
            .as_deref()
            .map(|m| {
                s.nodes
                    .iter()
                    .find(|n| n.addr == m)
                    .map(|n| n.name.clone())
                    .unwrap_or_else(|| m.to_string())
            })
            .unwrap_or_else(|| "-".into());
        let flags = if x.reachable {
            x.flags.clone()
        } else {
            format!("unreachable: {}", x.error.as_deref().unwrap_or(""))
        };
        h.push_str(&format!(
            "<tr data-sentinel=\"{}\" data-names=\"{}\" class=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"flags\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&x.name),
            escape(x.master.as_deref().unwrap_or("")),
            if x.reachable { "" } else { "role-down" },
            escape(&x.name),
            escape(&x.addr),
            escape(&named),
            escape(&flags),
            opt(&x.config_epoch),
            opt(&x.quorum),
            opt(&x.replicas),
            opt(&x.other_sentinels),
            escape(x.voted.as_deref().unwrap_or("-")),
        ));
    }
    h.push_str("</tbody></table>");
    if allow_write {
        h.push_str(&format!(
            "<form method=\"post\" action=\"/failover\" id=\"failover-form\" data-confirm=\"Ask a Sentinel to fail over {0} now?\"><button class=\"danger\" id=\"failover\">SENTINEL FAILOVER {0}</button></form>",
            escape(&s.master_name)
        ));
    }
    h.push_str("</div>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            name: "t".into(),
            sentinels: vec!["h:3".into(), "h:4".into()],
            master_name: "mymaster".into(),
            password: None,
            sentinel_password: None,
            names: vec![
                ("h:1".into(), "master".into()),
                ("h:2".into(), "replica-1".into()),
                ("h:3".into(), "sentinel-1".into()),
                ("h:4".into(), "sentinel-2".into()),
            ],
        }
    }

    fn sentinel(name: &str, master: &str, epoch: i64, flags: &str) -> SentinelNode {
        SentinelNode {
            name: name.into(),
            reachable: true,
            master: Some(master.into()),
            config_epoch: Some(epoch),
            flags: flags.into(),
            ..SentinelNode::default()
        }
    }

    fn node(name: &str, addr: &str, role: &str, following: Option<&str>) -> DataNode {
        DataNode {
            name: name.into(),
            addr: addr.into(),
            role: role.into(),
            following: following.map(Into::into),
            ..DataNode::default()
        }
    }

    #[test]
    fn agreement_has_nothing_to_say() {
        let nodes = [
            node("master", "h:1", "master", None),
            node("replica-1", "h:2", "slave", Some("h:1")),
        ];
        let s = [
            sentinel("sentinel-1", "h:1", 0, "master"),
            sentinel("sentinel-2", "h:1", 0, "master"),
        ];
        assert!(disagreements(&nodes, &s, Some("h:1"), &target()).is_empty());
    }

    #[test]
    fn split_views_are_spelled_out() {
        let nodes = [
            node("master", "h:1", "master", None),
            node("replica-1", "h:2", "master", None),
        ];
        let s = [
            sentinel("sentinel-1", "h:1", 0, "master,s_down"),
            sentinel("sentinel-2", "h:2", 1, "master"),
        ];
        let d = disagreements(&nodes, &s, Some("h:2"), &target());
        assert!(
            d[0].contains("sentinel-1 name master; sentinel-2 name replica-1"),
            "{d:?}"
        );
        assert!(d[1].contains("config epochs differ"), "{d:?}");
        assert!(d[2].contains("sentinel-1 see s_down"), "{d:?}");
        assert!(d[3].contains("2 data nodes answer as master"), "{d:?}");
    }

    #[test]
    fn a_replica_following_the_wrong_master_is_named() {
        let nodes = [
            node("master", "h:1", "slave", Some("h:2")),
            node("replica-1", "h:2", "master", None),
            node("replica-2", "h:5", "slave", Some("h:1")),
        ];
        let s = [sentinel("sentinel-1", "h:2", 1, "master")];
        let d = disagreements(&nodes, &s, Some("h:2"), &target());
        assert_eq!(
            d,
            ["replica-2 follows master but the Sentinels name replica-1"]
        );
    }

    #[test]
    fn render_marks_roles_and_escapes() {
        let snap = Snapshot {
            name: "t".into(),
            master_name: "m<x>".into(),
            master: Some("h:1".into()),
            nodes: vec![
                node("master", "h:1", "master", None),
                node("replica-1", "h:2", "slave", Some("h:1")),
            ],
            sentinels: vec![sentinel("sentinel-1", "h:1", 0, "master")],
            ..Snapshot::default()
        };
        let h = render(&snap, false);
        assert!(h.contains("data-masters=\"master\""));
        assert!(h.contains("<tr data-node=\"replica-1\" data-role=\"slave\""));
        assert!(h.contains("m&lt;x&gt;"));
        assert!(!h.contains("failover-form"));
        assert!(render(&snap, true).contains("failover-form"));
    }

    #[test]
    fn addresses_split_with_ipv6() {
        assert_eq!(
            split_addr("127.0.0.1:7000"),
            Some(("127.0.0.1".into(), 7000))
        );
        assert_eq!(split_addr("[::1]:7000"), Some(("::1".into(), 7000)));
        assert_eq!(
            split_addr("sentinel-1:26379"),
            Some(("sentinel-1".into(), 26379))
        );
        assert_eq!(split_addr("nope"), None);
    }
}
