//! One key's value, size-capped: whatever the key holds, a page is small.
//!
//! - A string is read with `GETRANGE` up to [`STRING_CAP`] (64 KiB); `STRLEN` tells its
//!   size. A complete one is tried, in this order, as one of our cache entries (the
//!   membership crate's envelope: server `run_id`, tag versions, body raw or LZ4), as JSON
//!   (an object or an array, pretty-printed in its own key order), as UTF-8 text, and is
//!   otherwise shown as a hex dump of its first KiB. A cut one is text or binary.
//! - A hash or a set: one page of `HSCAN`/`SSCAN` with `COUNT` [`PAGE`], repeated like the
//!   key browser's pages until it holds [`PAGE`] elements or the cursor is back at 0
//!   (`SCAN`'s `COUNT` is a hint: a page may hold a few more, and a small listpack-encoded
//!   one comes whole); `cursor` in the query is the `HSCAN`/`SSCAN` cursor.
//! - A list or a sorted set: [`PAGE`] elements by index (`LRANGE`, `ZRANGE .. WITHSCORES`);
//!   `cursor` in the query is the index of the first element shown.
//! - A stream: [`STREAM_PAGE`] entries with `XRANGE`; `start` in the query is the ID of the
//!   last entry already shown (the page starts after it).
//!
//! Each element is shown up to [`ELEMENT_CAP`] bytes.

use std::fmt::Write as _;

use membership::cache::codec;
use redis::aio::MultiplexedConnection;
use redis::{ErrorKind, RedisError, RedisResult, Value};

use super::keys::{human_bytes, human_ttl, int, link, printable, text};
use crate::report::escape;

/// How much of a string is read.
pub(crate) const STRING_CAP: usize = 64 * 1024;

/// Elements of a hash, set, list or sorted set per page.
pub(crate) const PAGE: usize = 100;

/// Entries of a stream per page.
pub(crate) const STREAM_PAGE: usize = 50;

/// How much of one element is shown.
pub(crate) const ELEMENT_CAP: usize = 1024;

/// How much of a string's start a hex dump shows.
const DUMP_CAP: usize = 1024;

/// The most `HSCAN`/`SSCAN` calls one page makes.
const MAX_SCANS: u32 = 16;

/// The largest decompressed body a cache entry may claim to be decoded (a corrupt size
/// prefix must not make the console allocate gigabytes).
const MAX_DECODED: usize = 16 * 1024 * 1024;

/// The value page's query (`/key?node=..&k=..&cursor=..&start=..`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub(crate) struct ViewQuery {
    /// `host:port` of the data node.
    pub(crate) node: String,
    /// The key, hex-encoded ([`hex`]).
    pub(crate) k: String,
    /// Hash and set: the `HSCAN`/`SSCAN` cursor; list and sorted set: the index of the
    /// first element shown.
    #[serde(default)]
    pub(crate) cursor: u64,
    /// Stream: the ID of the last entry already shown (`None`: from the start).
    #[serde(default)]
    pub(crate) start: Option<String>,
}

/// Bytes as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The bytes of a hex string (either case); `None` when it is not hex.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(p[0])? * 16 + digit(p[1])?) as u8)
        })
        .collect()
}

/// Bytes cut to [`ELEMENT_CAP`], with the length they had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clip {
    /// The first bytes.
    pub(crate) bytes: Vec<u8>,
    /// The full length.
    pub(crate) len: usize,
}

impl Clip {
    fn new(mut bytes: Vec<u8>) -> Self {
        let len = bytes.len();
        bytes.truncate(ELEMENT_CAP);
        Self { bytes, len }
    }
}

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamEntry {
    /// Its ID.
    pub(crate) id: String,
    /// Its fields and values.
    pub(crate) fields: Vec<(Clip, Clip)>,
}

/// The part of a value a page shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// The key does not exist (any more).
    Missing,
    /// A string's first [`STRING_CAP`] bytes.
    String {
        /// The bytes read.
        head: Vec<u8>,
    },
    /// One `HSCAN` page.
    Hash {
        /// Fields and values.
        fields: Vec<(Clip, Clip)>,
        /// The cursor to go on from; 0: the last page.
        next_cursor: u64,
    },
    /// One `SSCAN` page.
    Set {
        /// Members.
        members: Vec<Clip>,
        /// The cursor to go on from; 0: the last page.
        next_cursor: u64,
    },
    /// Elements `offset..` of a list.
    List {
        /// Index of the first element.
        offset: u64,
        /// The elements.
        items: Vec<Clip>,
    },
    /// Members `offset..` of a sorted set by rank.
    Zset {
        /// Rank of the first member.
        offset: u64,
        /// Members and their scores as the server wrote them.
        members: Vec<(Clip, String)>,
    },
    /// Entries of a stream.
    Stream {
        /// The entries.
        entries: Vec<StreamEntry>,
        /// The ID to go on after, when the page was full.
        next: Option<String>,
    },
    /// A type this console has no viewer for (a module's).
    Other,
}

/// What the page tells about a key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Detail {
    /// `TYPE` (`none`: missing).
    pub(crate) kind: String,
    /// `PTTL`: milliseconds left, -1 without expiry, -2 gone.
    pub(crate) ttl_ms: i64,
    /// `MEMORY USAGE`, when told.
    pub(crate) memory: Option<i64>,
    /// `OBJECT ENCODING`, when told.
    pub(crate) encoding: Option<String>,
    /// `STRLEN`/`HLEN`/`LLEN`/`SCARD`/`ZCARD`/`XLEN`.
    pub(crate) size: Option<u64>,
    /// The page of the value.
    pub(crate) body: Body,
}

/// Reads the key's header and one capped page of its value.
pub(crate) async fn detail(
    con: &mut MultiplexedConnection,
    key: &[u8],
    q: &ViewQuery,
) -> RedisResult<Detail> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors()
        .cmd("TYPE")
        .arg(key)
        .cmd("PTTL")
        .arg(key)
        // Sampled (Redis's default): exact is O(n) on a large collection.
        .cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .cmd("OBJECT")
        .arg("ENCODING")
        .arg(key);
    let head: Vec<RedisResult<Value>> = pipe.query_async(&mut *con).await?;
    let mut head = head.into_iter().map(Result::ok);
    let mut next = || head.next().flatten();
    let kind = next()
        .and_then(|v| text(&v))
        .unwrap_or_else(|| "none".into());
    let ttl_ms = next().and_then(|v| int(&v)).unwrap_or(-2);
    let memory = next().and_then(|v| int(&v));
    let encoding = next().and_then(|v| text(&v));
    let (size, body) = match kind.as_str() {
        "none" => (None, Body::Missing),
        "string" => {
            let (len, head): (u64, Vec<u8>) = redis::pipe()
                .cmd("STRLEN")
                .arg(key)
                .cmd("GETRANGE")
                .arg(key)
                .arg(0)
                .arg(STRING_CAP - 1)
                .query_async(&mut *con)
                .await?;
            (Some(len), Body::String { head })
        }
        "hash" => {
            let len = size_of(con, "HLEN", key).await?;
            let (flat, next_cursor) = scan_collection(con, "HSCAN", key, q.cursor, 2).await?;
            (
                Some(len),
                Body::Hash {
                    fields: pairs(flat),
                    next_cursor,
                },
            )
        }
        "set" => {
            let len = size_of(con, "SCARD", key).await?;
            let (flat, next_cursor) = scan_collection(con, "SSCAN", key, q.cursor, 1).await?;
            let members = flat.into_iter().map(Clip::new).collect();
            (
                Some(len),
                Body::Set {
                    members,
                    next_cursor,
                },
            )
        }
        "list" => {
            let len = size_of(con, "LLEN", key).await?;
            let items: Vec<Vec<u8>> = redis::cmd("LRANGE")
                .arg(key)
                .arg(q.cursor)
                .arg(
                    q.cursor
                        .saturating_add(PAGE as u64 - 1)
                        .min(i64::MAX as u64),
                )
                .query_async(&mut *con)
                .await?;
            let items = items.into_iter().map(Clip::new).collect();
            (
                Some(len),
                Body::List {
                    offset: q.cursor,
                    items,
                },
            )
        }
        "zset" => {
            let len = size_of(con, "ZCARD", key).await?;
            let reply: Value = redis::cmd("ZRANGE")
                .arg(key)
                .arg(q.cursor)
                .arg(
                    q.cursor
                        .saturating_add(PAGE as u64 - 1)
                        .min(i64::MAX as u64),
                )
                .arg("WITHSCORES")
                .query_async(&mut *con)
                .await?;
            (
                Some(len),
                Body::Zset {
                    offset: q.cursor,
                    members: scored(reply),
                },
            )
        }
        "stream" => {
            let len = size_of(con, "XLEN", key).await?;
            let from = match q.start.as_deref().filter(|s| !s.is_empty()) {
                None => "-".to_string(),
                Some(id) => after(id).ok_or_else(|| {
                    RedisError::from((
                        ErrorKind::Client,
                        "not a stream entry ID",
                        format!("start={id}: expected <ms>-<seq>"),
                    ))
                })?,
            };
            let reply: Value = redis::cmd("XRANGE")
                .arg(key)
                .arg(&from)
                .arg("+")
                .arg("COUNT")
                .arg(STREAM_PAGE)
                .query_async(&mut *con)
                .await?;
            let entries = stream_entries(reply);
            let next = (entries.len() == STREAM_PAGE)
                .then(|| entries.last().map(|e| e.id.clone()))
                .flatten();
            (Some(len), Body::Stream { entries, next })
        }
        _ => (None, Body::Other),
    };
    Ok(Detail {
        kind,
        ttl_ms,
        memory,
        encoding,
        size,
        body,
    })
}

/// A size command's reply (`HLEN` and the like).
async fn size_of(con: &mut MultiplexedConnection, cmd: &str, key: &[u8]) -> RedisResult<u64> {
    redis::cmd(cmd).arg(key).query_async(con).await
}

/// `HSCAN`/`SSCAN` from `cursor` with `COUNT` [`PAGE`] until [`PAGE`] elements (of `width`
/// reply items each) were found, the cursor is back at 0 or [`MAX_SCANS`] calls were made.
/// Returns the flat reply items and the cursor to go on from.
async fn scan_collection(
    con: &mut MultiplexedConnection,
    cmd: &str,
    key: &[u8],
    mut cursor: u64,
    width: usize,
) -> RedisResult<(Vec<Vec<u8>>, u64)> {
    let mut flat = Vec::new();
    for _ in 0..MAX_SCANS {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd(cmd)
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(PAGE)
            .query_async(&mut *con)
            .await?;
        flat.extend(batch);
        cursor = next;
        if cursor == 0 || flat.len() >= PAGE * width {
            break;
        }
    }
    Ok((flat, cursor))
}

/// `[f1, v1, f2, v2, ..]` as clipped pairs.
fn pairs(flat: Vec<Vec<u8>>) -> Vec<(Clip, Clip)> {
    let mut it = flat.into_iter();
    let mut out = Vec::new();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        out.push((Clip::new(f), Clip::new(v)));
    }
    out
}

/// A reply item's bytes (bulk or status string; a number as its text).
fn bytes_of(v: Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::VerbatimString { text, .. } => text.into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Double(d) => d.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

/// `ZRANGE .. WITHSCORES`: flat `[m, s, ..]` (RESP2) or `[[m, s], ..]` (RESP3).
fn scored(reply: Value) -> Vec<(Clip, String)> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut it = items.into_iter();
    while let Some(item) = it.next() {
        let (m, s) = match item {
            Value::Array(pair) => {
                let mut pair = pair.into_iter();
                match (pair.next(), pair.next()) {
                    (Some(m), Some(s)) => (m, s),
                    _ => continue,
                }
            }
            m => match it.next() {
                Some(s) => (m, s),
                None => break,
            },
        };
        let score = String::from_utf8_lossy(&bytes_of(s)).into_owned();
        out.push((Clip::new(bytes_of(m)), score));
    }
    out
}

/// `XRANGE`'s reply: `[[id, [f1, v1, ..]], ..]`.
fn stream_entries(reply: Value) -> Vec<StreamEntry> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|e| {
            let Value::Array(parts) = e else {
                return None;
            };
            let mut parts = parts.into_iter();
            let id = String::from_utf8_lossy(&bytes_of(parts.next()?)).into_owned();
            let fields = match parts.next() {
                Some(Value::Array(flat)) => pairs(flat.into_iter().map(bytes_of).collect()),
                Some(Value::Map(m)) => m
                    .into_iter()
                    .map(|(f, v)| (Clip::new(bytes_of(f)), Clip::new(bytes_of(v))))
                    .collect(),
                _ => Vec::new(),
            };
            Some(StreamEntry { id, fields })
        })
        .collect()
}

/// The smallest stream ID after `id` (`<ms>-<seq>`), so that paging works on every
/// Redis version (the exclusive `(` range needs 6.2).
fn after(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    Some(match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.checked_add(1)?),
    })
}

/// What a string (or a cache entry's body) is shown as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shown {
    /// JSON, pretty-printed.
    Json(String),
    /// UTF-8 text.
    Text(String),
    /// Anything else: its first [`DUMP_CAP`] bytes.
    Binary(Vec<u8>),
}

impl Shown {
    fn name(&self) -> &'static str {
        match self {
            Shown::Json(_) => "json",
            Shown::Text(_) => "text",
            Shown::Binary(_) => "binary",
        }
    }
}

/// How a string value is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StringView {
    /// One of our cache entries.
    CacheEntry {
        /// The `run_id` of the server it was stored on.
        server: String,
        /// Its tag versions.
        versions: Vec<String>,
        /// The encoded body's size and, when LZ4-compressed, the decoded size.
        compressed: Option<(usize, usize)>,
        /// The decoded body's size.
        body_len: usize,
        /// The body (its first [`STRING_CAP`] bytes).
        shown: Shown,
    },
    /// Any other string.
    Plain(Shown),
}

impl StringView {
    /// The `data-viewer` name.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            StringView::CacheEntry { .. } => "cache-entry",
            StringView::Plain(s) => s.name(),
        }
    }
}

/// Classifies a string's bytes; `complete` when they are the whole value.
pub(crate) fn classify(bytes: &[u8], complete: bool) -> StringView {
    if complete {
        if let Some(entry) = cache_entry(bytes) {
            return entry;
        }
    }
    StringView::Plain(shown(bytes, complete))
}

/// One of our cache entries, when `stored` is one whose body decodes.
fn cache_entry(stored: &[u8]) -> Option<StringView> {
    let entry = codec::decode_entry(stored).ok()?;
    if codec::is_compressed(entry.body) {
        let size = entry.body.get(1..5)?;
        let size = u32::from_le_bytes(size.try_into().ok()?) as usize;
        if size > MAX_DECODED {
            return None;
        }
    }
    let body = codec::decode(entry.body).ok()?;
    let compressed = codec::is_compressed(entry.body).then_some((entry.body.len(), body.len()));
    let shown = if body.len() > STRING_CAP {
        shown(&body[..STRING_CAP], false)
    } else {
        shown(&body, true)
    };
    Some(StringView::CacheEntry {
        server: entry.server.to_string(),
        versions: entry.versions.iter().map(|v| v.to_string()).collect(),
        compressed,
        body_len: body.len(),
        shown,
    })
}

/// JSON (a complete object or array), text (UTF-8 without control characters but
/// newlines and tabs; a cut one may end inside a character) or binary.
fn shown(bytes: &[u8], complete: bool) -> Shown {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if complete
        && matches!(first, Some(b'{' | b'['))
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        if let Ok(s) = std::str::from_utf8(bytes) {
            return Shown::Json(pretty_json(s));
        }
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => Some(s),
        Err(e) if !complete && e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    match text {
        Some(s)
            if s.chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')) =>
        {
            Shown::Text(s.to_string())
        }
        _ => Shown::Binary(bytes[..bytes.len().min(DUMP_CAP)].to_vec()),
    }
}

/// Valid JSON re-indented by two spaces, keys in their stored order (transcoded from
/// the parser to serde_json's pretty printer without building a map).
fn pretty_json(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() * 2);
    let mut de = serde_json::Deserializer::from_str(s);
    let mut ser = serde_json::Serializer::pretty(&mut out);
    match serde_transcode::transcode(&mut de, &mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_else(|_| s.to_string()),
        Err(_) => s.to_string(),
    }
}

/// `xxd`-like: offset, 16 bytes in hex, the printable ones.
fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, line) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}  ", i * 16);
        for j in 0..16 {
            match line.get(j) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if j == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        out.extend(line.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

/// A clipped element, escaped, with its full size when it was cut.
fn clip_html(c: &Clip) -> String {
    let mut s = escape(&printable(&c.bytes));
    if c.len > c.bytes.len() {
        let _ = write!(
            s,
            r#"<span class="cut"> … (first {} of {} bytes)</span>"#,
            c.bytes.len(),
            c.len
        );
    }
    s
}

/// The number with thousands separators.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A shown string (or body) as HTML.
fn shown_html(h: &mut String, s: &Shown, total: usize) {
    match s {
        Shown::Json(p) | Shown::Text(p) => {
            let _ = write!(h, r#"<pre class="value">{}</pre>"#, escape(p));
        }
        Shown::Binary(b) => {
            let _ = write!(
                h,
                r#"<div class="note">binary: the first {} of {} bytes in hex</div><pre class="value">{}</pre>"#,
                thousands(b.len() as u64),
                thousands(total as u64),
                escape(&hex_dump(b))
            );
        }
    }
}

/// One page of a collection: `#value[data-viewer]`, a note, and the `#elements` table
/// (cells are HTML already).
fn elements(
    h: &mut String,
    viewer: &str,
    note: &str,
    headers: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) {
    let _ = write!(
        h,
        r#"<div id="value" data-viewer="{viewer}"><div class="note">{note}</div><table class="grid" id="elements"><thead><tr>"#
    );
    for th in headers {
        let _ = write!(h, "<th>{th}</th>");
    }
    h.push_str("</tr></thead><tbody>");
    for row in rows {
        h.push_str("<tr>");
        for cell in row {
            let _ = write!(h, "<td>{cell}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div>");
}

/// The value page: the key's header, its value's page and the link to the next one.
pub(crate) fn render_detail(q: &ViewQuery, key: &[u8], d: &Detail) -> String {
    let mut h = String::new();
    let hex_key = hex(key);
    let _ = write!(
        h,
        r#"<h2 id="key-name" data-key-hex="{hex_key}">{}</h2>"#,
        escape(&printable(key))
    );
    let (mem, mem_title) = match d.memory {
        Some(m) => (human_bytes(m), format!("{m} bytes")),
        None => ("?".into(), "not reported".into()),
    };
    let _ = write!(
        h,
        r#"<table class="grid" id="key-header" data-type="{kind}"><tbody><tr><th>Type</th><td>{kind}</td></tr><tr><th>TTL</th><td title="{ttl_ms} ms">{ttl}</td></tr><tr><th>Memory</th><td title="{mem_title}">{mem}</td></tr><tr><th>Encoding</th><td>{enc}</td></tr><tr><th>Size</th><td id="key-size">{size}</td></tr></tbody></table>"#,
        kind = escape(&d.kind),
        ttl_ms = d.ttl_ms,
        ttl = human_ttl(d.ttl_ms),
        enc = escape(d.encoding.as_deref().unwrap_or("?")),
        size = d.size.map(thousands).unwrap_or_else(|| "?".into()),
    );
    let size = d.size.unwrap_or(0);
    let page_link = |cursor: u64, start: &str| {
        let cursor = if cursor == 0 {
            String::new()
        } else {
            cursor.to_string()
        };
        link(
            "/key",
            &[
                ("node", &q.node),
                ("k", &hex_key),
                ("cursor", &cursor),
                ("start", start),
            ],
        )
    };
    let mut next: Option<String> = None;
    match &d.body {
        Body::Missing => {
            h.push_str(r#"<div id="value" data-viewer="none"><div class="note" id="missing">key no longer exists</div></div>"#);
        }
        Body::Other => {
            let _ = write!(
                h,
                r#"<div id="value" data-viewer="other"><div class="note">no viewer for type {}; try the command line</div></div>"#,
                escape(&d.kind)
            );
        }
        Body::String { head } => {
            let complete = head.len() as u64 >= size;
            let view = classify(head, complete);
            let _ = write!(h, r#"<div id="value" data-viewer="{}">"#, view.name());
            if !complete {
                let _ = write!(
                    h,
                    r#"<div class="note" id="value-cut">first 64 KiB of {} bytes</div>"#,
                    thousands(size)
                );
            }
            match &view {
                StringView::CacheEntry {
                    server,
                    versions,
                    compressed,
                    body_len,
                    shown,
                } => {
                    let _ = write!(
                        h,
                        r#"<table class="grid" id="cache-entry"><tbody><tr><th>Server run_id</th><td>{}</td></tr><tr><th>Tag versions</th><td>{}</td></tr><tr><th>Body</th><td id="cache-body">{}</td></tr></tbody></table>"#,
                        escape(server),
                        if versions.is_empty() {
                            "none".into()
                        } else {
                            escape(&versions.join(", "))
                        },
                        match compressed {
                            Some((from, to)) => format!(
                                "LZ4 compressed, {} → {} bytes",
                                thousands(*from as u64),
                                thousands(*to as u64)
                            ),
                            None => format!("raw, {} bytes", thousands(*body_len as u64)),
                        },
                    );
                    if *body_len > STRING_CAP {
                        let _ = write!(
                            h,
                            r#"<div class="note">first 64 KiB of {} decoded bytes</div>"#,
                            thousands(*body_len as u64)
                        );
                    }
                    shown_html(&mut h, shown, *body_len);
                }
                StringView::Plain(shown) => shown_html(&mut h, shown, size as usize),
            }
            h.push_str("</div>");
        }
        Body::Hash {
            fields,
            next_cursor,
        } => {
            let note = format!(
                "{} of {} fields (HSCAN cursor {} → {})",
                fields.len(),
                thousands(size),
                q.cursor,
                next_cursor
            );
            let rows = fields.iter().map(|(f, v)| vec![clip_html(f), clip_html(v)]);
            elements(&mut h, "hash", &note, &["Field", "Value"], rows);
            next = (*next_cursor != 0).then(|| page_link(*next_cursor, ""));
        }
        Body::Set {
            members,
            next_cursor,
        } => {
            let note = format!(
                "{} of {} members (SSCAN cursor {} → {})",
                members.len(),
                thousands(size),
                q.cursor,
                next_cursor
            );
            let rows = members.iter().map(|m| vec![clip_html(m)]);
            elements(&mut h, "set", &note, &["Member"], rows);
            next = (*next_cursor != 0).then(|| page_link(*next_cursor, ""));
        }
        Body::List { offset, items } => {
            let end = offset + items.len() as u64;
            let note = format!(
                "elements {}–{} of {}",
                offset,
                end.saturating_sub(1),
                thousands(size)
            );
            let rows = (*offset..)
                .zip(items)
                .map(|(i, e)| vec![i.to_string(), clip_html(e)]);
            elements(&mut h, "list", &note, &["Index", "Element"], rows);
            next = (!items.is_empty() && end < size).then(|| page_link(end, ""));
        }
        Body::Zset { offset, members } => {
            let end = offset + members.len() as u64;
            let note = format!(
                "ranks {}–{} of {}",
                offset,
                end.saturating_sub(1),
                thousands(size)
            );
            let rows = (*offset..)
                .zip(members)
                .map(|(i, (m, s))| vec![i.to_string(), clip_html(m), escape(s)]);
            elements(&mut h, "zset", &note, &["Rank", "Member", "Score"], rows);
            next = (!members.is_empty() && end < size).then(|| page_link(end, ""));
        }
        Body::Stream { entries, next: id } => {
            let note = format!(
                "{} of {} entries{}",
                entries.len(),
                thousands(size),
                match q.start.as_deref().filter(|s| !s.is_empty()) {
                    Some(s) => format!(" after {}", escape(s)),
                    None => String::new(),
                }
            );
            let rows = entries.iter().map(|e| {
                let fields: Vec<String> = e
                    .fields
                    .iter()
                    .map(|(f, v)| format!("{} = {}", clip_html(f), clip_html(v)))
                    .collect();
                vec![escape(&e.id), fields.join("<br>")]
            });
            elements(&mut h, "stream", &note, &["ID", "Fields"], rows);
            next = id.as_deref().map(|id| page_link(0, id));
        }
    }
    if let Some(href) = next {
        let _ = write!(
            h,
            r#"<a class="button" id="next-page" href="{}">next page</a>"#,
            escape(&href)
        );
    } else if !matches!(d.body, Body::String { .. } | Body::Missing | Body::Other) {
        h.push_str(r#"<div class="note" id="end-of-value">end of the value</div>"#);
    }
    let _ = write!(
        h,
        r#" <a class="button" id="back-to-keys" href="{}">keys</a>"#,
        escape(&link("/keys", &[("node", &q.node)]))
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache entry as the membership crate's `encode_entry` writes it (the format at the
    /// top of its `codec.rs`): `v`, the field count, each field with its length byte, then
    /// the body as `codec::encode` writes it.
    fn entry(server: &str, versions: &[&str], body: &[u8], threshold: usize) -> Vec<u8> {
        let mut out = vec![b'v', u8::try_from(versions.len() + 1).unwrap()];
        for f in std::iter::once(&server).chain(versions) {
            out.push(u8::try_from(f.len()).unwrap());
            out.extend_from_slice(f.as_bytes());
        }
        out.extend(codec::encode(body, threshold));
        out
    }

    fn query(node: &str, key: &[u8]) -> ViewQuery {
        serde_json::from_value(serde_json::json!({ "node": node, "k": hex(key) })).unwrap()
    }

    /// A big JSON body that compresses well.
    fn members_json() -> Vec<u8> {
        let members: Vec<_> = (0..500)
            .map(|i| serde_json::json!({ "id": i, "ward": "Ward 12", "status": "active" }))
            .collect();
        serde_json::to_vec(&serde_json::json!({ "members": members })).unwrap()
    }

    #[test]
    fn hex_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&all)).unwrap(), all);
        assert_eq!(hex(b"\x00\xffA"), "00ff41");
        assert_eq!(unhex("00FF41").unwrap(), b"\x00\xffA");
        assert_eq!(unhex("").unwrap(), b"");
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("+1"), None);
    }

    #[test]
    fn strings_are_classified() {
        // Our cache entries, raw and LZ4-compressed.
        let raw = entry("run1", &["3f2a", "b7"], br#"{"id":1,"a":[]}"#, 1024);
        match classify(&raw, true) {
            StringView::CacheEntry {
                server,
                versions,
                compressed: None,
                body_len: 15,
                shown: Shown::Json(p),
            } => {
                assert_eq!(server, "run1");
                assert_eq!(versions, ["3f2a", "b7"]);
                assert_eq!(p, "{\n  \"id\": 1,\n  \"a\": []\n}");
            }
            other => panic!("{other:?}"),
        }
        let body = members_json();
        let lz4 = entry("run2", &[], &body, 1024);
        assert!(lz4.len() < body.len() / 4);
        match classify(&lz4, true) {
            StringView::CacheEntry {
                compressed: Some((from, to)),
                shown: Shown::Json(_),
                ..
            } => assert_eq!((from, to), (lz4.len() - 7, body.len())),
            other => panic!("{other:?}"),
        }
        // A cut entry cannot be decoded: it is shown as what it looks like.
        assert_eq!(classify(&lz4[..100], false).name(), "binary");

        // JSON keeps its key order; numbers are shown as parsed.
        assert_eq!(
            classify(br#" {"z":1.50,"a":{"s":"x,\"}:y"}} "#, true),
            StringView::Plain(Shown::Json(
                "{\n  \"z\": 1.5,\n  \"a\": {\n    \"s\": \"x,\\\"}:y\"\n  }\n}".into()
            ))
        );
        // Not JSON: a bare number is text, a cut object too.
        assert_eq!(
            classify(b"42", true),
            StringView::Plain(Shown::Text("42".into()))
        );
        assert_eq!(classify(br#"{"a":"#, false).name(), "text");
        assert_eq!(classify(br#"{"a":"#, true).name(), "text");
        assert_eq!(
            classify("caf\u{e9}\nline".as_bytes(), true),
            StringView::Plain(Shown::Text("caf\u{e9}\nline".into()))
        );
        // A cut in the middle of a character is still text.
        assert_eq!(
            classify(&"\u{e9}\u{e9}".as_bytes()[..3], false),
            StringView::Plain(Shown::Text("\u{e9}".into()))
        );
        // Binary: the first KiB.
        let bin: Vec<u8> = (0..4096u32).map(|i| (i % 256) as u8).collect();
        assert_eq!(
            classify(&bin, true),
            StringView::Plain(Shown::Binary(bin[..1024].to_vec()))
        );
        assert_eq!(classify(b"a\x00b", true).name(), "binary");
        // Something that starts like an entry but is not one.
        assert_eq!(classify(b"value", true).name(), "text");
    }

    #[test]
    fn a_hex_dump_looks_like_xxd() {
        assert_eq!(
            hex_dump(b"v\x02\x04run1ABCDEFGHIJKLMN"),
            "00000000  76 02 04 72 75 6e 31 41  42 43 44 45 46 47 48 49  |v..run1ABCDEFGHI|\n\
             00000010  4a 4b 4c 4d 4e                                    |JKLMN|\n"
        );
    }

    #[test]
    fn stream_ids_continue_after_the_last() {
        assert_eq!(after("1700000000000-0").unwrap(), "1700000000000-1");
        assert_eq!(after(&format!("5-{}", u64::MAX)).unwrap(), "6-0");
        assert_eq!(after("nope"), None);
        assert_eq!(after("1-x"), None);
    }

    #[test]
    fn rendering_escapes_keys_and_values() {
        let key = b"<script>k</script>";
        let q = query("h:1", key);
        let d = Detail {
            kind: "hash".into(),
            ttl_ms: -1,
            memory: Some(100),
            encoding: Some("listpack".into()),
            size: Some(1),
            body: Body::Hash {
                fields: vec![(
                    Clip::new(b"<script>f</script>".to_vec()),
                    Clip::new(vec![b'<'; 2000]),
                )],
                next_cursor: 0,
            },
        };
        let h = render_detail(&q, key, &d);
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;script&gt;k&lt;/script&gt;"));
        assert!(h.contains("&lt;script&gt;f&lt;/script&gt;"));
        assert!(h.contains("(first 1024 of 2000 bytes)"));
        assert!(h.contains(r#"data-viewer="hash""#));
        assert!(h.contains(r#"id="end-of-value""#));
        assert!(!h.contains("next-page"));

        let d = Detail {
            kind: "string".into(),
            size: Some(20),
            body: Body::String {
                head: b"<script>alert(1)</script>".to_vec(),
            },
            ..d
        };
        let h = render_detail(&q, key, &d);
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[tokio::test]
    async fn every_viewer_on_a_real_server() {
        let server = testkit::RedisServer::start();
        let mut con = server.con().await;
        let node = server.addr();
        let body = members_json();
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg("big").arg(vec![b'x'; 200_000]).ignore();
        pipe.cmd("SET")
            .arg("json")
            .arg(r#"{"b":2,"a":[1,2]}"#)
            .ignore();
        pipe.cmd("SET").arg("text").arg("hello <world>").ignore();
        pipe.cmd("SET")
            .arg("bin")
            .arg(&b"\x00\x01\x02\xff"[..])
            .ignore();
        pipe.cmd("SET")
            .arg("membership:member:/api/v1/members/1:default")
            .arg(entry("0123abcd", &["v1", "v2"], &body, 1024))
            .arg("EX")
            .arg(900)
            .ignore();
        pipe.cmd("SET")
            .arg("membership:lookup:/api/v1/lookups/wards:default")
            .arg(entry("0123abcd", &["v3"], br#"[{"ward":1}]"#, 1024))
            .ignore();
        for chunk in (0..5000).collect::<Vec<_>>().chunks(500) {
            let mut hset = redis::cmd("HSET");
            hset.arg("hash");
            for i in chunk {
                hset.arg(format!("f{i}")).arg(i);
            }
            pipe.add_command(hset).ignore();
        }
        pipe.cmd("HSET")
            .arg("small-hash")
            .arg("a")
            .arg("1")
            .arg("b")
            .arg(vec![b'y'; 3000])
            .ignore();
        let mut rpush = redis::cmd("RPUSH");
        rpush.arg("list");
        for i in 0..250 {
            rpush.arg(format!("item {i}"));
        }
        pipe.add_command(rpush).ignore();
        let mut sadd = redis::cmd("SADD");
        sadd.arg("set");
        for i in 0..30 {
            sadd.arg(format!("m{i}"));
        }
        pipe.add_command(sadd).ignore();
        let mut zadd = redis::cmd("ZADD");
        zadd.arg("zset");
        for i in 0..150 {
            zadd.arg(i as f64 / 2.0).arg(format!("z{i:03}"));
        }
        pipe.add_command(zadd).ignore();
        for i in 0..120 {
            pipe.cmd("XADD")
                .arg("stream")
                .arg(format!("1000-{i}"))
                .arg("n")
                .arg(i)
                .ignore();
        }
        let () = pipe.query_async(&mut con).await.unwrap();

        async fn view(con: &mut MultiplexedConnection, q: &ViewQuery) -> (Detail, String) {
            let key = unhex(&q.k).unwrap();
            let d = detail(con, &key, q).await.unwrap();
            let h = render_detail(q, &key, &d);
            (d, h)
        }

        // A 200 KB string: only its first 64 KiB.
        let (d, h) = view(&mut con, &query(&node, b"big")).await;
        assert_eq!(
            (d.kind.as_str(), d.size, d.ttl_ms),
            ("string", Some(200_000), -1)
        );
        assert!(d.memory.unwrap() > 200_000);
        assert_eq!(d.encoding.as_deref(), Some("raw"));
        let Body::String { head } = &d.body else {
            panic!()
        };
        assert_eq!(head.len(), STRING_CAP);
        assert!(h.contains(r#"data-viewer="text""#));
        assert!(h.contains("first 64 KiB of 200,000 bytes"));

        let (_, h) = view(&mut con, &query(&node, b"json")).await;
        assert!(h.contains(r#"data-viewer="json""#));
        assert!(
            h.contains("{\n  &quot;b&quot;: 2,\n  &quot;a&quot;: [\n    1,\n    2\n  ]\n}"),
            "{h}"
        );
        let (_, h) = view(&mut con, &query(&node, b"text")).await;
        assert!(h.contains(r#"data-viewer="text""#) && h.contains("hello &lt;world&gt;"));
        let (_, h) = view(&mut con, &query(&node, b"bin")).await;
        assert!(h.contains(r#"data-viewer="binary""#) && h.contains("00 01 02 ff"));

        // Our cache entries: LZ4-compressed and raw.
        let key = b"membership:member:/api/v1/members/1:default";
        let (d, h) = view(&mut con, &query(&node, key)).await;
        assert!(d.ttl_ms > 890_000);
        assert!(h.contains(r#"data-viewer="cache-entry""#), "{h}");
        assert!(h.contains("0123abcd") && h.contains("v1, v2"));
        assert!(
            h.contains("LZ4 compressed, ")
                && h.contains(&format!(" → {} bytes", thousands(body.len() as u64)))
        );
        assert!(h.contains("&quot;ward&quot;: &quot;Ward 12&quot;"));
        let (_, h) = view(
            &mut con,
            &query(&node, b"membership:lookup:/api/v1/lookups/wards:default"),
        )
        .await;
        assert!(h.contains(r#"data-viewer="cache-entry""#) && h.contains("raw, 12 bytes"));

        // A 5,000-field hash: one page and a link to the next; the pages cover it all.
        let mut q = query(&node, b"hash");
        let (d, h) = view(&mut con, &q).await;
        assert_eq!((d.kind.as_str(), d.size), ("hash", Some(5000)));
        let Body::Hash {
            fields,
            next_cursor,
        } = &d.body
        else {
            panic!()
        };
        assert!(!fields.is_empty() && fields.len() < 200, "{}", fields.len());
        assert_ne!(*next_cursor, 0);
        assert!(h.contains(r#"data-viewer="hash""#));
        assert!(h.contains(&format!(
            r#"<a class="button" id="next-page" href="/key?node={}&amp;k={}&amp;cursor={next_cursor}">"#,
            node.replace(':', "%3A"),
            hex(b"hash")
        )), "{h}");
        let mut seen = std::collections::HashSet::new();
        let mut pages = 0;
        loop {
            let d = detail(&mut con, b"hash", &q).await.unwrap();
            let Body::Hash {
                fields,
                next_cursor,
            } = d.body
            else {
                panic!()
            };
            seen.extend(fields.into_iter().map(|(f, _)| f.bytes));
            pages += 1;
            if next_cursor == 0 {
                break;
            }
            q.cursor = next_cursor;
        }
        assert_eq!(seen.len(), 5000);
        assert!(pages >= 25);

        // A small hash comes whole, each element cut to 1 KiB.
        let (_, h) = view(&mut con, &query(&node, b"small-hash")).await;
        assert!(h.contains("(first 1024 of 3000 bytes)") && h.contains(r#"id="end-of-value""#));

        // A list by index: 100, 100, then the last 50.
        let mut q = query(&node, b"list");
        let (d, h) = view(&mut con, &q).await;
        let Body::List { offset: 0, items } = &d.body else {
            panic!()
        };
        assert_eq!(items.len(), PAGE);
        assert!(h.contains(r#"data-viewer="list""#) && h.contains("cursor=100"));
        q.cursor = 200;
        let (d, h) = view(&mut con, &q).await;
        let Body::List { offset: 200, items } = &d.body else {
            panic!()
        };
        assert_eq!(
            (items.len(), items[0].bytes.as_slice()),
            (50, &b"item 200"[..])
        );
        assert!(!h.contains("next-page") && h.contains(r#"id="end-of-value""#));

        let (d, h) = view(&mut con, &query(&node, b"set")).await;
        let Body::Set {
            members,
            next_cursor: 0,
        } = &d.body
        else {
            panic!()
        };
        assert_eq!((members.len(), d.size), (30, Some(30)));
        assert!(h.contains(r#"data-viewer="set""#));

        // A sorted set by rank, with scores.
        let mut q = query(&node, b"zset");
        q.cursor = 100;
        let (d, h) = view(&mut con, &q).await;
        let Body::Zset {
            offset: 100,
            members,
        } = &d.body
        else {
            panic!()
        };
        assert_eq!(members.len(), 50);
        assert_eq!(
            (members[0].0.bytes.as_slice(), members[0].1.as_str()),
            (&b"z100"[..], "50")
        );
        assert!(h.contains(r#"data-viewer="zset""#) && !h.contains("next-page"));

        // A stream, 50 entries a page, continuing after the last one shown.
        let mut q = query(&node, b"stream");
        let (d, h) = view(&mut con, &q).await;
        let Body::Stream { entries, next } = &d.body else {
            panic!()
        };
        assert_eq!((entries.len(), next.as_deref()), (50, Some("1000-49")));
        assert!(h.contains(r#"data-viewer="stream""#) && h.contains("start=1000-49"));
        let mut all = Vec::new();
        loop {
            let d = detail(&mut con, b"stream", &q).await.unwrap();
            let Body::Stream { entries, next } = d.body else {
                panic!()
            };
            all.extend(entries.into_iter().map(|e| e.id));
            match next {
                Some(id) => q.start = Some(id),
                None => break,
            }
        }
        let expected: Vec<String> = (0..120).map(|i| format!("1000-{i}")).collect();
        assert_eq!(all, expected);
        q.start = Some("garbage".into());
        assert!(detail(&mut con, b"stream", &q).await.is_err());

        // A key that is gone.
        let (d, h) = view(&mut con, &query(&node, b"no-such-key")).await;
        assert_eq!((d.kind.as_str(), &d.body), ("none", &Body::Missing));
        assert!(h.contains(r#"data-viewer="none""#) && h.contains("key no longer exists"));
    }
}
