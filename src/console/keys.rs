//! The key browser: one page of a node's keyspace at a time, found with `SCAN` (never
//! `KEYS`, never the whole keyspace in memory), each key with its type, TTL and memory.
//!
//! A page is a few `SCAN` calls with `COUNT` = the page size (plus `MATCH` and `TYPE` when
//! given), repeated until the page holds at least that many keys, the cursor is back at 0,
//! or [`MAX_SCANS`] calls were made (a sparse pattern may find nothing in many calls). The
//! page keeps every key those calls returned: `SCAN` may return more than `COUNT` keys in
//! one call, and dropping some would lose them when paging on from the cursor. A page is
//! thus at most a small multiple of the page size. The keys' type, TTL and memory then
//! come in one pipelined round trip.

use std::collections::HashSet;
use std::fmt::Write as _;

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::report::escape;

/// The most `SCAN` calls one page makes.
pub(crate) const MAX_SCANS: u32 = 64;

/// The page size when none is given.
const DEFAULT_COUNT: u32 = 100;

/// The largest page size.
const MAX_COUNT: u32 = 1000;

/// The `TYPE` filters the form offers ("" = any).
const TYPES: [&str; 7] = ["", "string", "hash", "list", "set", "zset", "stream"];

/// The key browser's query (`/keys?node=..&pattern=..&cursor=..&count=..&type=..`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub(crate) struct ScanQuery {
    /// `host:port` of the data node to browse.
    pub(crate) node: String,
    /// `SCAN ... MATCH` pattern; `*` (or empty) matches every key.
    #[serde(default = "any_key")]
    pub(crate) pattern: String,
    /// `SCAN` cursor; 0 starts over.
    #[serde(default)]
    pub(crate) cursor: u64,
    /// Keys per page (clamped to 1..=1000 where used).
    #[serde(default = "default_count")]
    pub(crate) count: u32,
    /// `SCAN ... TYPE` filter; `None` or empty: any type.
    #[serde(default)]
    pub(crate) r#type: Option<String>,
}

fn any_key() -> String {
    "*".to_string()
}

fn default_count() -> u32 {
    DEFAULT_COUNT
}

impl ScanQuery {
    /// The page size, clamped to 1..=1000.
    pub(crate) fn page_size(&self) -> u32 {
        self.count.clamp(1, MAX_COUNT)
    }

    /// The `TYPE` filter, if any.
    pub(crate) fn type_filter(&self) -> Option<&str> {
        self.r#type
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// The `MATCH` pattern, unless it matches everything.
    fn match_pattern(&self) -> Option<&str> {
        Some(self.pattern.as_str()).filter(|p| !p.is_empty() && *p != "*")
    }
}

/// One key of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRow {
    /// The key's bytes.
    pub(crate) key: Vec<u8>,
    /// Its type (`none` when it vanished after the scan).
    pub(crate) kind: String,
    /// `PTTL`: milliseconds left, -1 without expiry, -2 gone.
    pub(crate) ttl_ms: i64,
    /// `MEMORY USAGE` in bytes, when the server told.
    pub(crate) memory: Option<i64>,
}

/// One page of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanPage {
    /// The keys, in the order `SCAN` returned them.
    pub(crate) rows: Vec<KeyRow>,
    /// The cursor to continue from; 0: the scan is complete.
    pub(crate) next_cursor: u64,
    /// How many `SCAN` calls the page took.
    pub(crate) scans: u32,
}

/// Reads one page of keys from `q.cursor` on (see the module's notes).
pub(crate) async fn scan_page(
    con: &mut MultiplexedConnection,
    q: &ScanQuery,
) -> redis::RedisResult<ScanPage> {
    let count = q.page_size();
    let mut cursor = q.cursor;
    let mut scans = 0;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor);
        if let Some(p) = q.match_pattern() {
            cmd.arg("MATCH").arg(p);
        }
        cmd.arg("COUNT").arg(count);
        if let Some(t) = q.type_filter() {
            cmd.arg("TYPE").arg(t);
        }
        let (next, batch): (u64, Vec<Vec<u8>>) = cmd.query_async(con).await?;
        scans += 1;
        cursor = next;
        // SCAN may return a key twice (while the table shrinks); a page shows it once.
        for k in batch {
            if seen.insert(k.clone()) {
                keys.push(k);
            }
        }
        if keys.len() >= count as usize || cursor == 0 || scans >= MAX_SCANS {
            break;
        }
    }
    let rows = describe(con, keys).await?;
    Ok(ScanPage {
        rows,
        next_cursor: cursor,
        scans,
    })
}

/// Type, TTL and memory of each key, in one pipelined round trip.
async fn describe(
    con: &mut MultiplexedConnection,
    keys: Vec<Vec<u8>>,
) -> redis::RedisResult<Vec<KeyRow>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for k in &keys {
        pipe.cmd("TYPE").arg(k);
        pipe.cmd("PTTL").arg(k);
        pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
    }
    let replies: Vec<redis::RedisResult<Value>> = pipe.query_async(con).await?;
    let mut replies = replies.into_iter();
    let mut next = || replies.next().and_then(Result::ok);
    Ok(keys
        .into_iter()
        .map(|key| {
            let kind = next()
                .and_then(|v| text(&v))
                .unwrap_or_else(|| "none".into());
            let ttl_ms = next().and_then(|v| int(&v)).unwrap_or(-2);
            let memory = next().and_then(|v| int(&v));
            KeyRow {
                key,
                kind,
                ttl_ms,
                memory,
            }
        })
        .collect())
}

/// A reply as text (status or bulk string).
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::SimpleString(s) => Some(s.clone()),
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// A reply as an integer.
pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// Bytes as readable text: valid UTF-8 as is, a backslash doubled, control and invisible
/// formatting characters and invalid bytes escaped (`\n`, `\x00`, `\u{202e}`). Not
/// HTML-escaped.
pub(crate) fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() || invisible(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Zero-width and bidirectional formatting characters, which could make one key look
/// like another.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// A TTL in milliseconds for people: "none" (-1), "gone" (-2), "850 ms", "12.3 s",
/// "4.5 min", "2.0 h", "3.1 d".
pub(crate) fn human_ttl(ms: i64) -> String {
    match ms {
        -1 => "none".into(),
        -2 => "gone".into(),
        ms if ms < 0 => "?".into(),
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1e3),
        ms if ms < 3_600_000 => format!("{:.1} min", ms as f64 / 60e3),
        ms if ms < 86_400_000 => format!("{:.1} h", ms as f64 / 3_600e3),
        ms => format!("{:.1} d", ms as f64 / 86_400e3),
    }
}

/// A byte count for people: "512 B", "1.5 KiB", "2.0 MiB", "1.1 GiB".
pub(crate) fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `path?k=v&..`, every value percent-encoded; pairs with an empty value are left out.
pub(crate) fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        s.append_pair(k, v);
    }
    format!("{path}?{}", s.finish())
}

/// The link to a page of keys from `cursor` on, with `q`'s pattern, count and type.
fn page_link(q: &ScanQuery, cursor: u64) -> String {
    let (cursor, count) = (cursor.to_string(), q.page_size().to_string());
    link(
        "/keys",
        &[
            ("node", &q.node),
            ("pattern", &q.pattern),
            ("cursor", &cursor),
            ("count", &count),
            ("type", q.type_filter().unwrap_or("")),
        ],
    )
}

/// The page: the scan form, the keys' table and the link to the next page.
pub(crate) fn render_page(q: &ScanQuery, page: &ScanPage) -> String {
    let mut h = String::new();
    let filter = q.type_filter().unwrap_or("");
    let _ = write!(
        h,
        r#"<form id="scan-form" method="get" action="/keys"><input type="hidden" name="node" value="{node}"> <label>Pattern <input name="pattern" value="{pattern}"></label> <label>Count <input name="count" type="number" min="1" max="{MAX_COUNT}" value="{count}"></label> <label>Type <select name="type">"#,
        node = escape(&q.node),
        pattern = escape(&q.pattern),
        count = q.page_size(),
    );
    let mut types: Vec<&str> = TYPES.to_vec();
    if !types.contains(&filter) {
        types.push(filter);
    }
    for t in types {
        let _ = write!(
            h,
            r#"<option value="{v}"{sel}>{label}</option>"#,
            v = escape(t),
            sel = if t == filter { " selected" } else { "" },
            label = if t.is_empty() {
                "any".into()
            } else {
                escape(t)
            },
        );
    }
    h.push_str(r#"</select></label> <button type="submit">Scan</button></form>"#);
    let _ = write!(
        h,
        r#"<div class="note" id="scan-info">{node}: {n} keys; cursor {from} → {to} in {scans} SCAN call{s}</div>"#,
        node = escape(&q.node),
        n = page.rows.len(),
        from = q.cursor,
        to = page.next_cursor,
        scans = page.scans,
        s = if page.scans == 1 { "" } else { "s" },
    );
    let _ = write!(
        h,
        r#"<table class="grid" id="keys" data-cursor="{}" data-next-cursor="{}"><thead><tr><th>Key</th><th>Type</th><th>TTL</th><th>Memory</th></tr></thead><tbody>"#,
        q.cursor, page.next_cursor
    );
    for r in &page.rows {
        let hex = super::view::hex(&r.key);
        let href = link("/key", &[("node", &q.node), ("k", &hex)]);
        let (mem, mem_title) = match r.memory {
            Some(m) => (human_bytes(m), format!("{m} bytes")),
            None => ("?".into(), "not reported".into()),
        };
        let _ = write!(
            h,
            r#"<tr data-key-hex="{hex}"><td><a href="{href}">{key}</a></td><td>{kind}</td><td title="{ttl_ms} ms">{ttl}</td><td title="{mem_title}">{mem}</td></tr>"#,
            href = escape(&href),
            key = escape(&printable(&r.key)),
            kind = escape(&r.kind),
            ttl_ms = r.ttl_ms,
            ttl = human_ttl(r.ttl_ms),
        );
    }
    h.push_str("</tbody></table>");
    if page.rows.is_empty() && page.next_cursor != 0 {
        h.push_str(r#"<div class="note" id="empty-page">no matching key on this page; the scan goes on from the next one</div>"#);
    }
    if q.cursor != 0 {
        let _ = write!(
            h,
            r#"<a class="button" id="first-page" href="{}">first page</a> "#,
            escape(&page_link(q, 0))
        );
    }
    if page.next_cursor != 0 {
        let _ = write!(
            h,
            r#"<a class="button" id="next-page" href="{}">next page</a>"#,
            escape(&page_link(q, page.next_cursor))
        );
    } else {
        h.push_str(r#"<div class="note" id="end-of-keyspace">end of keyspace</div>"#);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn query(node: &str) -> ScanQuery {
        serde_json::from_value(serde_json::json!({ "node": node })).unwrap()
    }

    /// Every key a scan from cursor 0 finds, page after page, and the number of pages.
    async fn scan_all(con: &mut MultiplexedConnection, mut q: ScanQuery) -> (Vec<KeyRow>, u32) {
        let mut rows = Vec::new();
        let mut pages = 0;
        loop {
            let page = scan_page(con, &q).await.unwrap();
            assert!(page.scans >= 1 && page.scans <= MAX_SCANS);
            pages += 1;
            rows.extend(page.rows);
            if page.next_cursor == 0 {
                return (rows, pages);
            }
            q.cursor = page.next_cursor;
        }
    }

    #[test]
    fn query_defaults_and_clamps() {
        let q = query("127.0.0.1:6380");
        assert_eq!(q.pattern, "*");
        assert_eq!((q.cursor, q.count, q.page_size()), (0, 100, 100));
        assert_eq!(q.type_filter(), None);
        let q = ScanQuery {
            count: 0,
            r#type: Some(" ".into()),
            ..q
        };
        assert_eq!(q.page_size(), 1);
        assert_eq!(q.type_filter(), None);
        assert_eq!(ScanQuery { count: 50_000, ..q }.page_size(), 1000);
        let q: ScanQuery = serde_json::from_value(
            serde_json::json!({ "node": "n:1", "type": "hash", "count": 5, "cursor": 17 }),
        )
        .unwrap();
        assert_eq!(
            (q.type_filter(), q.page_size(), q.cursor),
            (Some("hash"), 5, 17)
        );
    }

    #[test]
    fn keys_are_printable() {
        assert_eq!(printable(b"user:1"), "user:1");
        assert_eq!(printable(b"a\x00b\xffc\n"), "a\\x00b\\xffc\\n");
        assert_eq!(printable(b"back\\slash"), "back\\\\slash");
        assert_eq!(printable("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(printable("a\u{202e}b".as_bytes()), "a\\u{202e}b");
    }

    #[test]
    fn sizes_and_ttls_for_people() {
        assert_eq!(human_ttl(-1), "none");
        assert_eq!(human_ttl(-2), "gone");
        assert_eq!(human_ttl(850), "850 ms");
        assert_eq!(human_ttl(12_345), "12.3 s");
        assert_eq!(human_ttl(270_000), "4.5 min");
        assert_eq!(human_ttl(7_200_000), "2.0 h");
        assert_eq!(human_ttl(3 * 86_400_000), "3.0 d");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(2 * 1024 * 1024), "2.0 MiB");
    }

    #[test]
    fn links_percent_encode_every_value() {
        assert_eq!(
            link(
                "/keys",
                &[("node", "h:1"), ("pattern", "a b&c=*"), ("type", "")]
            ),
            "/keys?node=h%3A1&pattern=a+b%26c%3D*"
        );
    }

    #[test]
    fn a_page_renders_escaped_with_its_links() {
        let q = ScanQuery {
            pattern: "<script>*".into(),
            r#type: Some("hash".into()),
            ..query("127.0.0.1:7000")
        };
        let page = ScanPage {
            rows: vec![KeyRow {
                key: b"<script>alert(1)</script>\x00".to_vec(),
                kind: "hash".into(),
                ttl_ms: 12_345,
                memory: Some(2048),
            }],
            next_cursor: 42,
            scans: 3,
        };
        let h = render_page(&q, &page);
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\x00"));
        assert!(h.contains(r#"<form id="scan-form" method="get" action="/keys">"#));
        assert!(h.contains(r#"<option value="hash" selected>"#));
        let hex = crate::console::view::hex(&page.rows[0].key);
        assert!(h.contains(&format!(r#"<tr data-key-hex="{hex}">"#)));
        assert!(h.contains(&format!(r#"href="/key?node=127.0.0.1%3A7000&amp;k={hex}""#)));
        assert!(
            h.contains(r#"<table class="grid" id="keys" data-cursor="0" data-next-cursor="42">"#)
        );
        assert!(h.contains(r#"<a class="button" id="next-page" href="/keys?node=127.0.0.1%3A7000&amp;pattern=%3Cscript%3E*&amp;cursor=42&amp;count=100&amp;type=hash">"#), "{h}");
        assert!(h.contains("12.3 s") && h.contains("2.0 KiB") && h.contains("3 SCAN calls"));
        assert!(!h.contains("end of keyspace"));

        let last = ScanPage {
            next_cursor: 0,
            ..page
        };
        let h = render_page(&ScanQuery { cursor: 42, ..q }, &last);
        assert!(!h.contains("next-page"));
        assert!(h.contains(r#"id="end-of-keyspace""#));
        assert!(h.contains(r#"id="first-page""#));
    }

    #[tokio::test]
    async fn paging_visits_every_key_exactly_once() {
        let server = testkit::RedisServer::start();
        let mut con = server.con().await;
        let written: HashSet<Vec<u8>> =
            (0..10_000).map(|i| format!("k:{i}").into_bytes()).collect();
        let mut pipe = redis::pipe();
        for chunk in written.iter().collect::<Vec<_>>().chunks(1000) {
            let mut mset = redis::cmd("MSET");
            for k in chunk {
                mset.arg(k).arg("v");
            }
            pipe.add_command(mset).ignore();
        }
        let () = pipe.query_async(&mut con).await.unwrap();

        let (rows, pages) = scan_all(&mut con, query(&server.addr())).await;
        let keys: Vec<Vec<u8>> = rows.iter().map(|r| r.key.clone()).collect();
        let unique: HashSet<Vec<u8>> = keys.iter().cloned().collect();
        assert_eq!(keys.len(), unique.len(), "a key came twice");
        assert_eq!(unique, written);
        assert!(pages >= 50, "{pages} pages of about 100 keys");
        assert!(rows.iter().all(|r| r.kind == "string" && r.ttl_ms == -1));
        assert!(rows.iter().all(|r| r.memory.is_some_and(|m| m > 0)));
    }

    #[tokio::test]
    async fn type_and_pattern_filter_and_rows_are_described() {
        let server = testkit::RedisServer::start();
        let mut con = server.con().await;
        let mut pipe = redis::pipe();
        for i in 0..300 {
            pipe.cmd("SET").arg(format!("s:{i}")).arg(i).ignore();
        }
        for i in 0..20 {
            pipe.cmd("HSET")
                .arg(format!("h:{i}"))
                .arg("f")
                .arg(i)
                .ignore();
        }
        pipe.cmd("SET")
            .arg("user:7")
            .arg("x")
            .arg("PX")
            .arg(60_000)
            .ignore();
        pipe.cmd("RPUSH").arg("user:8").arg("a").ignore();
        let () = pipe.query_async(&mut con).await.unwrap();

        let q = ScanQuery {
            r#type: Some("hash".into()),
            ..query(&server.addr())
        };
        let (rows, _) = scan_all(&mut con, q).await;
        assert_eq!(rows.len(), 20);
        assert!(rows
            .iter()
            .all(|r| r.kind == "hash" && r.key.starts_with(b"h:")));

        let q = ScanQuery {
            pattern: "user:*".into(),
            count: 10,
            ..query(&server.addr())
        };
        let (mut rows, _) = scan_all(&mut con, q).await;
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].key.as_slice(), rows[0].kind.as_str()),
            (&b"user:7"[..], "string")
        );
        assert!(rows[0].ttl_ms > 50_000 && rows[0].ttl_ms <= 60_000);
        assert_eq!(
            (rows[1].key.as_slice(), rows[1].kind.as_str()),
            (&b"user:8"[..], "list")
        );
        assert_eq!(rows[1].ttl_ms, -1);

        // A pattern that matches nothing still ends, in pages of bounded work.
        let q = ScanQuery {
            pattern: "nothing:*".into(),
            count: 1,
            ..query(&server.addr())
        };
        let page = scan_page(&mut con, &q).await.unwrap();
        assert!(page.rows.is_empty());
        assert!(page.scans <= MAX_SCANS);
        let (rows, _) = scan_all(&mut con, q).await;
        assert!(rows.is_empty());

        // A key that vanished between SCAN and the description shows as `none`.
        let rows = describe(&mut con, vec![b"gone".to_vec(), b"user:8".to_vec()])
            .await
            .unwrap();
        assert_eq!(
            (rows[0].kind.as_str(), rows[0].ttl_ms, rows[0].memory),
            ("none", -2, None)
        );
        assert_eq!(rows[1].kind, "list");
    }
}
