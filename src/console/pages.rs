//! The handlers of the Keys, key view and Command pages: pick and check the node, talk to
//! it, wrap what `keys`, `view` and `command` render in the layout.

use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::command;
use super::feed::Kind;
use super::keys::{self, ScanQuery};
use super::server::Shared;
use super::view::{self, ViewQuery};
use crate::report::escape;

/// Whether the query string names a node.
fn names_node(uri: &Uri) -> bool {
    uri.query()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv.starts_with("node=") && kv.len() > 5)
}

/// `uri` with `node=<default>` in place of an empty or missing one, when a node can be
/// chosen.
fn with_default_node(sh: &Shared, uri: &Uri) -> Option<String> {
    let node = sh.default_node()?;
    let enc: String = form_urlencoded::byte_serialize(node.as_bytes()).collect();
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("node="))
        .collect();
    Some(if rest.is_empty() {
        format!("{}?node={enc}", uri.path())
    } else {
        format!("{}?node={enc}&{}", uri.path(), rest.join("&"))
    })
}

/// A form choosing the data node to browse.
fn node_picker(sh: &Shared, current: &str) -> String {
    let Some(snap) = sh.feed.snapshot() else {
        return String::new();
    };
    let mut h = String::from(
        "<form method=\"get\" action=\"/keys\" id=\"node-form\"><label>Node <select name=\"node\">",
    );
    for n in &snap.nodes {
        h.push_str(&format!(
            "<option value=\"{}\"{}>{} ({}, {})</option>",
            escape(&n.addr),
            if n.addr == current { " selected" } else { "" },
            escape(&n.name),
            escape(&n.addr),
            escape(&n.role)
        ));
    }
    h.push_str("</select></label> <button>Browse</button></form>");
    h
}

/// `GET /keys?node&pattern&cursor&count&type`: one page of the SCAN browser.
pub(crate) async fn keys(State(sh): State<Shared>, uri: Uri) -> Response {
    if !names_node(&uri) {
        return match with_default_node(&sh, &uri) {
            Some(to) => Redirect::to(&to).into_response(),
            None => sh.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "/keys",
                "no topology snapshot yet; try again in a moment",
            ),
        };
    }
    let q = match Query::<ScanQuery>::try_from_uri(&uri) {
        Ok(Query(q)) => q,
        Err(e) => return sh.error(StatusCode::BAD_REQUEST, "/keys", &e.body_text()),
    };
    let (mut con, sentinel) = match sh.connect(&q.node).await {
        Ok(c) => c,
        Err(e) => return sh.error(StatusCode::BAD_REQUEST, "/keys", &e),
    };
    if sentinel {
        return sh.error(
            StatusCode::BAD_REQUEST,
            "/keys",
            &format!("{} is a Sentinel; Sentinels hold no keys", q.node),
        );
    }
    let body = match keys::scan_page(&mut con, &q).await {
        Ok(page) => format!(
            "{}{}",
            node_picker(&sh, &q.node),
            keys::render_page(&q, &page)
        ),
        Err(e) => format!(
            "{}<div class=\"error\">SCAN on {} failed: {}</div>",
            node_picker(&sh, &q.node),
            escape(&q.node),
            escape(&e.to_string())
        ),
    };
    sh.page("/keys", "Keys", &body).into_response()
}

/// `GET /key?node&k=<hex>&cursor&start`: one key's value, size-capped.
pub(crate) async fn key(State(sh): State<Shared>, Query(q): Query<ViewQuery>) -> Response {
    let Some(key) = view::unhex(&q.k) else {
        return sh.error(
            StatusCode::BAD_REQUEST,
            "/keys",
            "the key must be hex-encoded (k=...)",
        );
    };
    let (mut con, sentinel) = match sh.connect(&q.node).await {
        Ok(c) => c,
        Err(e) => return sh.error(StatusCode::BAD_REQUEST, "/keys", &e),
    };
    if sentinel {
        return sh.error(StatusCode::BAD_REQUEST, "/keys", "Sentinels hold no keys");
    }
    match view::detail(&mut con, &key, &q).await {
        Ok(d) => sh
            .page("/keys", "Key", &view::render_detail(&q, &key, &d))
            .into_response(),
        Err(e) => sh.error(
            StatusCode::BAD_GATEWAY,
            "/keys",
            &format!("reading the key failed: {e}"),
        ),
    }
}

/// What the command form posts.
#[derive(Debug, Deserialize)]
pub(crate) struct CommandForm {
    node: String,
    line: String,
}

/// The command form, with `result` under it.
fn command_page(sh: &Shared, node: &str, line: &str, result: &str) -> String {
    let mut options = String::new();
    if let Some(snap) = sh.feed.snapshot() {
        let all = snap
            .nodes
            .iter()
            .map(|n| (&n.addr, &n.name, n.role.as_str()))
            .chain(
                snap.sentinels
                    .iter()
                    .map(|s| (&s.addr, &s.name, "sentinel")),
            );
        for (addr, name, role) in all {
            options.push_str(&format!(
                "<option value=\"{}\"{}>{} ({}, {})</option>",
                escape(addr),
                if addr == node { " selected" } else { "" },
                escape(name),
                escape(addr),
                escape(role)
            ));
        }
    }
    format!(
        "<form method=\"post\" action=\"/command\" id=\"command-form\"><label>Node <select name=\"node\" id=\"command-node\">{options}</select></label> <input class=\"wide\" type=\"text\" name=\"line\" id=\"command-line\" value=\"{}\" placeholder=\"INFO replication\" autofocus autocomplete=\"off\"> <button id=\"command-run\">Run</button></form><p class=\"note\">{}</p>{result}",
        escape(line),
        if sh.opts.allow_write {
            "Writes are allowed (--allow-write): every command but those that would hang or change the console's connection runs."
        } else {
            "Read-only: only commands on the read-only allow-list run. Start the console with --allow-write for anything else."
        }
    )
}

/// `GET /command`: the empty form (the master preselected).
pub(crate) async fn command_form(State(sh): State<Shared>) -> Response {
    let node = sh.default_node().unwrap_or_default();
    sh.page("/command", "Command", &command_page(&sh, &node, "", ""))
        .into_response()
}

/// `POST /command`: checks the line against the allow-list and runs it.
pub(crate) async fn command_run(State(sh): State<Shared>, Form(f): Form<CommandForm>) -> Response {
    let page = |status: StatusCode, result: String| {
        (
            status,
            sh.page(
                "/command",
                "Command",
                &command_page(&sh, &f.node, &f.line, &result),
            ),
        )
            .into_response()
    };
    let args = match command::parse(&f.line) {
        Ok(a) => a,
        Err(e) => {
            return page(
                StatusCode::BAD_REQUEST,
                format!(
                    "<div class=\"error\" id=\"parse-error\">{}</div>",
                    escape(&e)
                ),
            )
        }
    };
    let known = match sh.feed.snapshot() {
        None => Err("no topology snapshot yet; try again in a moment".to_string()),
        Some(s) => s
            .knows(&f.node)
            .ok_or_else(|| format!("{} is not a node of the watched topology", f.node)),
    };
    let sentinel = match known {
        Ok(s) => s,
        Err(e) => {
            return page(
                StatusCode::BAD_REQUEST,
                format!("<div class=\"error\">{}</div>", escape(&e)),
            )
        }
    };
    if let Err(refusal) = command::check(&args, sh.opts.allow_write, sentinel) {
        return page(
            StatusCode::FORBIDDEN,
            format!(
                "<div class=\"error\" id=\"refusal\">refused: {}</div>",
                escape(&refusal.to_string())
            ),
        );
    }
    let (mut con, _) = match sh.connect(&f.node).await {
        Ok(c) => c,
        Err(e) => {
            return page(
                StatusCode::BAD_GATEWAY,
                format!("<div class=\"error\">{}</div>", escape(&e)),
            )
        }
    };
    if command::check(&args, false, sentinel).is_err() {
        // Outside the read-only allow-list: on the events page for everyone to see.
        sh.feed.push(
            Kind::Console,
            "console",
            "command",
            format!("{}: {}", f.node, command::loggable(&args)),
        );
    }
    match command::run(&mut con, &args).await {
        Ok(v) => page(
            StatusCode::OK,
            command::render_reply(&command::redact(&args, v)),
        ),
        Err(e) => page(
            StatusCode::OK,
            format!(
                "<div class=\"error\" id=\"reply-error\">(error) {}</div>",
                escape(&e.to_string())
            ),
        ),
    }
}
