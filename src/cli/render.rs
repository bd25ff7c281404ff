//! Terminal rendering of statuses and connection details.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::topology::{ConnectionInfo, StatusReport, TeardownReport};

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// One row per node: name, role, address, pid, offset, lag and what it sees.
pub(super) fn status_table(status: &StatusReport) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header(vec![
        "node",
        "started as",
        "role",
        "address",
        "pid",
        "offset",
        "lag (bytes)",
        "detail",
    ]);
    for n in &status.nodes {
        let detail = if let Some(v) = &n.sentinel {
            format!(
                "master {} [{}], {} replicas, {} other sentinels",
                opt(v.master.as_deref()),
                v.master_flags,
                v.healthy_replicas.len(),
                v.other_sentinels
            )
        } else if let Some(f) = &n.following {
            format!(
                "following {f} (link {})",
                if n.link_up == Some(true) {
                    "up"
                } else {
                    "DOWN"
                }
            )
        } else if let Some(e) = &n.error {
            e.clone()
        } else {
            String::new()
        };
        t.add_row(vec![
            n.name.clone(),
            n.kind.to_string(),
            n.role.clone(),
            n.address.clone(),
            opt(n.pid),
            opt(n.offset),
            opt(n.lag_bytes),
            detail,
        ]);
    }
    format!(
        "topology '{}' ({} backend), master {}\n{t}",
        status.name,
        status.backend,
        opt(status.current_master.as_deref())
    )
}

/// What a client needs, plus the same as environment variables for the membership API.
pub(super) fn connection_block(c: &ConnectionInfo) -> String {
    let pw = c.password.as_deref().unwrap_or("(none)");
    let mut out = format!(
        "connection:\n  master      {}\n  sentinels   {}\n  master name {}\n  password    {pw}\n",
        c.master,
        c.sentinels.join(","),
        c.master_name
    );
    if let Some(url) = &c.console {
        out.push_str(&format!("  console     {url}\n"));
    }
    out.push_str(&format!(
        "environment:\n  REDIS_SENTINELS={} REDIS_MASTER_NAME={}",
        c.sentinels.join(","),
        c.master_name
    ));
    if let Some(p) = &c.password {
        out.push_str(&format!(" REDIS_PASSWORD={p}"));
    }
    out
}

/// A one-line summary of a teardown.
pub(super) fn teardown_line(r: &TeardownReport) -> String {
    let killed = r
        .nodes
        .iter()
        .filter(|(_, o)| *o == crate::topology::StopOutcome::Killed)
        .count();
    let mut s = format!(
        "{} nodes stopped in {} ms ({killed} needed SIGKILL)",
        r.nodes.len(),
        r.elapsed_ms
    );
    if !r.ports_still_open.is_empty() {
        s.push_str(&format!("; PORTS STILL OPEN: {:?}", r.ports_still_open));
    }
    if !r.containers_left.is_empty() {
        s.push_str(&format!(
            "; STILL PRESENT: {}",
            r.containers_left.join(", ")
        ));
    }
    s
}
