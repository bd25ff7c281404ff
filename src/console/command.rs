//! The command line: a line parsed like a shell's, checked against the read-only
//! allow-list, sent on a short-lived connection of the console's with a deadline, its
//! reply shown like `redis-cli` shows it, secrets (`CONFIG GET *pass*`) redacted.
//!
//! Read-only mode (the default) lets through only commands that read, subcommand by
//! subcommand (`CONFIG GET` but not `CONFIG SET`), and on a Sentinel only its read-only
//! `SENTINEL` subcommands, `PING`, `INFO` and `ROLE`. `--allow-write` lets through the
//! rest, but never what would change the connection's state (`SUBSCRIBE`, `MULTI`,
//! `SELECT`, `AUTH`, ...) or block it (`BLPOP`, `XREAD .. BLOCK`, ...): those belong in
//! `redis-cli`.

use std::fmt::Write as _;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{ErrorKind, RedisError, Value};

use crate::report::escape;

/// How long a command may take to answer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// The most reply elements shown.
const MAX_ELEMENTS: usize = 1000;

/// The most reply text shown.
const MAX_TEXT: usize = 256 * 1024;

/// Splits a line into arguments, like a shell: spaces separate them; `"double"` quotes
/// understand `\"`, `\\`, `\n`, `\r`, `\t` and `\xHH` (ASCII only, since arguments are
/// text); `'single'` quotes only `\'`; outside quotes a backslash takes the next character
/// as is. Quoted and unquoted parts next to each other make one argument; `""` is an empty
/// one.
pub(crate) fn parse(line: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut arg = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '"' => loop {
                    match chars.next() {
                        None => return Err("unterminated double quote".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            None => return Err("unterminated double quote".into()),
                            Some('n') => arg.push('\n'),
                            Some('r') => arg.push('\r'),
                            Some('t') => arg.push('\t'),
                            Some('x') => {
                                let hex: String = chars.by_ref().take(2).collect();
                                arg.push(ascii(&hex)?);
                            }
                            Some(c) => arg.push(c),
                        },
                        Some(c) => arg.push(c),
                    }
                },
                '\'' => loop {
                    match chars.next() {
                        None => return Err("unterminated single quote".into()),
                        Some('\'') => break,
                        Some('\\') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            arg.push('\'');
                        }
                        Some(c) => arg.push(c),
                    }
                },
                '\\' => match chars.next() {
                    Some(c) => arg.push(c),
                    None => arg.push('\\'),
                },
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
    if args.is_empty() {
        return Err("empty command".into());
    }
    Ok(args)
}

/// The character of a `\\xHH` escape: two hex digits of an ASCII character.
fn ascii(hex: &str) -> Result<char, String> {
    if hex.len() != 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("\\x{hex}: two hex digits expected"));
    }
    match u8::from_str_radix(hex, 16) {
        Ok(b) if b.is_ascii() => Ok(b as char),
        _ => Err(format!(
            "\\x{hex} is not ASCII: the command line sends text only"
        )),
    }
}

/// Why a command is not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub(crate) String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// Commands read-only mode lets through whatever their arguments.
const READ_ONLY: &[&str] = &[
    "PING",
    "ECHO",
    "INFO",
    "ROLE",
    "TIME",
    "DBSIZE",
    "LASTSAVE",
    "GET",
    "MGET",
    "STRLEN",
    "GETRANGE",
    "EXISTS",
    "TYPE",
    "TTL",
    "PTTL",
    "EXPIRETIME",
    "PEXPIRETIME",
    "SCAN",
    "RANDOMKEY",
    "BITCOUNT",
    "BITPOS",
    "GETBIT",
    "HGET",
    "HMGET",
    "HLEN",
    "HEXISTS",
    "HSTRLEN",
    "HSCAN",
    "HRANDFIELD",
    "LLEN",
    "LINDEX",
    "LRANGE",
    "LPOS",
    "SCARD",
    "SISMEMBER",
    "SMISMEMBER",
    "SSCAN",
    "SRANDMEMBER",
    "ZCARD",
    "ZSCORE",
    "ZMSCORE",
    "ZRANK",
    "ZREVRANK",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZREVRANGEBYSCORE",
    "ZRANGEBYLEX",
    "ZREVRANGEBYLEX",
    "ZREVRANGE",
    "ZRANDMEMBER",
    "ZSCAN",
    "XLEN",
    "XRANGE",
    "XREVRANGE",
    "XPENDING",
];

/// Container commands read-only mode lets through with these subcommands only (`HELP`
/// too); a bare `COMMAND` is allowed.
const READ_ONLY_SUB: &[(&str, &[&str])] = &[
    ("XINFO", &["STREAM", "GROUPS", "CONSUMERS"]),
    ("OBJECT", &["ENCODING", "FREQ", "IDLETIME", "REFCOUNT"]),
    ("MEMORY", &["USAGE", "STATS", "DOCTOR"]),
    ("CONFIG", &["GET"]),
    ("CLIENT", &["LIST", "INFO", "GETNAME", "ID"]),
    ("SLOWLOG", &["GET", "LEN"]),
    ("LATENCY", &["LATEST", "HISTORY", "DOCTOR"]),
    ("COMMAND", &["COUNT", "INFO", "DOCS", "LIST"]),
    (
        "PUBSUB",
        &[
            "CHANNELS",
            "NUMSUB",
            "NUMPAT",
            "SHARDCHANNELS",
            "SHARDNUMSUB",
        ],
    ),
    ("FUNCTION", &["LIST"]),
    ("ACL", &["WHOAMI"]),
];

/// A Sentinel's read-only `SENTINEL` subcommands.
const SENTINEL_READ_ONLY: &[&str] = &[
    "MASTERS",
    "MASTER",
    "REPLICAS",
    "SLAVES",
    "SENTINELS",
    "GET-MASTER-ADDR-BY-NAME",
    "CKQUORUM",
    "MYID",
    "INFO-CACHE",
    "PENDING-SCRIPTS",
];

/// Commands that change the connection's state (or take it over): never run on the
/// console's connection.
const STATEFUL: &[&str] = &[
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
    "SYNC",
    "PSYNC",
    "REPLCONF",
    "RESET",
    "SELECT",
    "AUTH",
    "HELLO",
    "QUIT",
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "READONLY",
    "READWRITE",
    "ASKING",
];

/// `CLIENT` subcommands that change the connection's state.
const STATEFUL_CLIENT: &[&str] = &["REPLY", "TRACKING", "CACHING"];

/// Commands that block the connection until data arrives.
const BLOCKING: &[&str] = &[
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BLMOVE",
    "BLMPOP",
    "BZPOPMIN",
    "BZPOPMAX",
    "BZMPOP",
    "WAIT",
    "WAITAOF",
];

/// Whether the command may run: `Err` says why not, naming the command. `sentinel`: the
/// connection is to a Sentinel. Case-insensitive.
pub(crate) fn check(args: &[String], allow_write: bool, sentinel: bool) -> Result<(), Refusal> {
    let Some(first) = args.first() else {
        return Err(Refusal("empty command".into()));
    };
    let name = first.to_ascii_uppercase();
    let sub = args.get(1).map(|s| s.to_ascii_uppercase());
    let with_sub = |s: &Option<String>| match s {
        Some(s) => format!("{name} {s}"),
        None => name.clone(),
    };
    let shared = "not on the console's short-lived connections; use redis-cli for it";
    if STATEFUL.contains(&name.as_str())
        || (name == "CLIENT" && sub.as_deref().is_some_and(|s| STATEFUL_CLIENT.contains(&s)))
    {
        let what = if name == "CLIENT" {
            with_sub(&sub)
        } else {
            name.clone()
        };
        return Err(Refusal(format!(
            "{what} changes the connection's state ({shared})"
        )));
    }
    let blocks_stream = matches!(name.as_str(), "XREAD" | "XREADGROUP")
        && args.iter().skip(1).any(|a| a.eq_ignore_ascii_case("BLOCK"));
    if BLOCKING.contains(&name.as_str()) || blocks_stream {
        return Err(Refusal(format!("{name} blocks ({shared})")));
    }
    if allow_write {
        return Ok(());
    }
    let refuse = |what: String, list: &str| {
        Err(Refusal(format!(
            "{what} is not in the {list}read-only allow-list; start the console with --allow-write to run it"
        )))
    };
    if sentinel {
        return match name.as_str() {
            "PING" | "INFO" | "ROLE" => Ok(()),
            "SENTINEL"
                if sub
                    .as_deref()
                    .is_some_and(|s| SENTINEL_READ_ONLY.contains(&s)) =>
            {
                Ok(())
            }
            "SENTINEL" => refuse(with_sub(&sub), "Sentinel's "),
            _ => refuse(name.clone(), "Sentinel's "),
        };
    }
    if READ_ONLY.contains(&name.as_str()) {
        return bounded(&name, args).map_err(Refusal);
    }
    if let Some((_, subs)) = READ_ONLY_SUB.iter().find(|(n, _)| *n == name) {
        return match sub.as_deref() {
            None if name == "COMMAND" => Ok(()),
            Some(s) if s == "HELP" || subs.contains(&s) => Ok(()),
            _ => refuse(with_sub(&sub), ""),
        };
    }
    refuse(name, "")
}

/// Whether a config parameter (or an argument naming one) holds a secret.
fn secret(name: &[u8]) -> bool {
    let n = String::from_utf8_lossy(name).to_ascii_lowercase();
    n.contains("pass") || n.contains("auth") || n.contains("secret") || n.contains("key-file")
}

/// The reply of `CONFIG GET` with the values of secret parameters (`requirepass`,
/// `masterauth`, TLS key passwords ...) replaced; any other reply unchanged.
pub(crate) fn redact(args: &[String], v: Value) -> Value {
    let config_get = args.len() >= 2
        && args[0].eq_ignore_ascii_case("CONFIG")
        && args[1].eq_ignore_ascii_case("GET");
    if !config_get {
        return v;
    }
    let hidden = || Value::SimpleString("(redacted)".into());
    let name_of = |k: &Value| match k {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    };
    match v {
        Value::Map(pairs) => Value::Map(
            pairs
                .into_iter()
                .map(|(k, val)| {
                    let val = if secret(&name_of(&k)) { hidden() } else { val };
                    (k, val)
                })
                .collect(),
        ),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut it = items.into_iter();
            while let Some(k) = it.next() {
                let val = it.next();
                let s = secret(&name_of(&k));
                out.push(k);
                if let Some(val) = val {
                    out.push(if s { hidden() } else { val });
                }
            }
            Value::Array(out)
        }
        other => other,
    }
}

/// The line as the event log shows it: every argument after the command name hidden
/// when one of them names a secret (`CONFIG SET masterauth ...`, `ACL SETUSER ...`).
pub(crate) fn loggable(args: &[String]) -> String {
    let acl = args.first().is_some_and(|a| a.eq_ignore_ascii_case("ACL"));
    if acl || args.iter().skip(1).any(|a| secret(a.as_bytes())) {
        let keep = if acl { 2 } else { 3 }.min(args.len());
        format!("{} … (arguments hidden)", args[..keep].join(" "))
    } else {
        args.join(" ")
    }
}

/// Most elements a read-only read may ask for: the console reads a reply whole before it
/// caps what it shows (at [`MAX_ELEMENTS`]).
const MAX_ASK: i64 = MAX_ELEMENTS as i64;

/// In read-only mode, refuses a read that could return more than [`MAX_ASK`] elements,
/// saying what to ask instead.
fn bounded(name: &str, args: &[String]) -> Result<(), String> {
    let int = |i: usize| args.get(i).and_then(|a| a.parse::<i64>().ok());
    let after = |word: &str| {
        args.iter()
            .position(|a| a.eq_ignore_ascii_case(word))
            .map(|i| i + 1)
    };
    let too_many = |hint: &str| {
        Err(format!(
            "{name} as written could return more than {MAX_ASK} elements, which the console would read whole; {hint} (or use the Keys page)"
        ))
    };
    let within = |n: Option<i64>| n.is_some_and(|n| (0..=MAX_ASK).contains(&n));
    let by_index = |start: Option<i64>, stop: Option<i64>| match (start, stop) {
        (Some(a), Some(b)) => a >= 0 && b >= 0 && b - a < MAX_ASK,
        _ => true, // malformed: Redis says so
    };
    match name {
        "LRANGE" | "ZREVRANGE" if !by_index(int(2), int(3)) => {
            too_many("ask for a window of non-negative indexes, e.g. 0 999")
        }
        "ZRANGE" => {
            let by = args
                .iter()
                .skip(4)
                .any(|a| a.eq_ignore_ascii_case("BYSCORE") || a.eq_ignore_ascii_case("BYLEX"));
            if by {
                match after("LIMIT") {
                    Some(i) if within(int(i + 1)) => Ok(()),
                    _ => too_many("add LIMIT offset count with a count of at most 1000"),
                }
            } else if !by_index(int(2), int(3)) {
                too_many("ask for a window of non-negative indexes, e.g. 0 999")
            } else {
                Ok(())
            }
        }
        "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" | "ZRANGEBYLEX" | "ZREVRANGEBYLEX" => {
            match after("LIMIT") {
                Some(i) if within(int(i + 1)) => Ok(()),
                _ => too_many("add LIMIT offset count with a count of at most 1000"),
            }
        }
        "XRANGE" | "XREVRANGE" => match after("COUNT") {
            Some(i) if within(int(i)) => Ok(()),
            _ => too_many("add COUNT n with n at most 1000"),
        },
        "SRANDMEMBER" | "HRANDFIELD" | "ZRANDMEMBER"
            if int(2).is_some_and(|n| n.abs() > MAX_ASK) =>
        {
            too_many("ask for at most 1000")
        }
        "SCAN" | "HSCAN" | "SSCAN" | "ZSCAN" => match after("COUNT") {
            Some(i) if !within(int(i)) => too_many("use a COUNT of at most 1000"),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Sends the command and returns its reply; a server error is an `Err`, and so is no
/// reply within [`TIMEOUT`].
pub(crate) async fn run(
    con: &mut MultiplexedConnection,
    args: &[String],
) -> redis::RedisResult<Value> {
    let Some((name, rest)) = args.split_first() else {
        return Err(RedisError::from((ErrorKind::Client, "empty command")));
    };
    let mut cmd = redis::cmd(name);
    for a in rest {
        cmd.arg(a);
    }
    match tokio::time::timeout(TIMEOUT, cmd.query_async::<Value>(con)).await {
        Ok(reply) => reply,
        Err(_) => Err(RedisError::from((
            ErrorKind::Io,
            "no reply in time",
            format!("{name} did not answer within {} s", TIMEOUT.as_secs()),
        ))),
    }
}

/// Builds the reply's text within the caps.
struct Out {
    text: String,
    elements: usize,
    cut: bool,
}

impl Out {
    fn line(&mut self, prefix: &str, s: &str) {
        if self.cut {
            return;
        }
        if self.text.len() + prefix.len() + s.len() + 1 > MAX_TEXT {
            self.cut = true;
            return;
        }
        self.text.push_str(prefix);
        self.text.push_str(s);
        self.text.push('\n');
    }
}

/// A bulk string like `redis-cli` writes it: quoted with escapes, or as is when it is
/// multi-line text (`INFO`, `CLIENT LIST`).
fn bulk(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.contains('\n') => s.trim_end_matches(['\r', '\n']).replace("\r\n", "\n"),
        _ => {
            let mut q = String::from("\"");
            for chunk in b.utf8_chunks() {
                for c in chunk.valid().chars() {
                    match c {
                        '"' => q.push_str("\\\""),
                        '\\' => q.push_str("\\\\"),
                        '\n' => q.push_str("\\n"),
                        '\r' => q.push_str("\\r"),
                        '\t' => q.push_str("\\t"),
                        c if c.is_control() => {
                            let _ = write!(q, "\\x{:02x}", c as u32);
                        }
                        c => q.push(c),
                    }
                }
                for x in chunk.invalid() {
                    let _ = write!(q, "\\x{x:02x}");
                }
            }
            q.push('"');
            q
        }
    }
}

/// Writes `v` into `out`, its first line after `prefix`, nested lines indented by `indent`.
fn write_value(out: &mut Out, v: &Value, prefix: &str, indent: usize) {
    if out.cut {
        return;
    }
    // Elements are the leaves: an array of 1,000 numbers is shown whole.
    if !matches!(
        v,
        Value::Array(_)
            | Value::Set(_)
            | Value::Map(_)
            | Value::Push { .. }
            | Value::Attribute { .. }
    ) {
        if out.elements >= MAX_ELEMENTS {
            out.cut = true;
            return;
        }
        out.elements += 1;
    }
    let items = |out: &mut Out, items: &[Value], mark: char| {
        if items.is_empty() {
            out.line(
                prefix,
                if mark == '~' {
                    "(empty set)"
                } else {
                    "(empty array)"
                },
            );
            return;
        }
        let width = items.len().to_string().len();
        for (i, item) in items.iter().enumerate() {
            let label = format!("{:>width$}{mark} ", i + 1);
            let p = if i == 0 {
                format!("{prefix}{label}")
            } else {
                format!("{}{label}", " ".repeat(indent))
            };
            write_value(out, item, &p, indent + label.len());
        }
    };
    match v {
        Value::Nil => out.line(prefix, "(nil)"),
        Value::Int(i) => out.line(prefix, &format!("(integer) {i}")),
        Value::BulkString(b) => {
            let s = bulk(b);
            let mut lines = s.split('\n');
            out.line(prefix, lines.next().unwrap_or(""));
            let pad = " ".repeat(indent);
            for l in lines {
                out.line(&pad, l);
            }
        }
        Value::SimpleString(s) => out.line(prefix, s),
        Value::Okay => out.line(prefix, "OK"),
        Value::Array(a) => items(out, a, ')'),
        Value::Set(a) => items(out, a, '~'),
        Value::Push { kind, data } => {
            out.line(prefix, &format!("(push {kind:?})"));
            items(out, data, ')');
        }
        Value::Map(m) => {
            if m.is_empty() {
                out.line(prefix, "(empty hash)");
                return;
            }
            let width = m.len().to_string().len();
            for (i, (k, val)) in m.iter().enumerate() {
                let label = format!("{:>width$}# ", i + 1);
                let p = if i == 0 {
                    format!("{prefix}{label}")
                } else {
                    format!("{}{label}", " ".repeat(indent))
                };
                let key = match k {
                    Value::BulkString(b) => bulk(b),
                    Value::SimpleString(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                write_value(out, val, &format!("{p}{key} => "), indent + label.len());
            }
        }
        Value::Attribute { data, .. } => write_value(out, data, prefix, indent),
        Value::Double(d) => out.line(prefix, &format!("(double) {d}")),
        Value::Boolean(b) => out.line(prefix, &format!("({b})")),
        Value::VerbatimString { text, .. } => {
            let text = text.trim_end_matches(['\r', '\n']).replace("\r\n", "\n");
            let mut lines = text.split('\n');
            out.line(prefix, lines.next().unwrap_or(""));
            let pad = " ".repeat(indent);
            for l in lines {
                out.line(&pad, l);
            }
        }
        Value::ServerError(e) => out.line(prefix, &format!("(error) {e}")),
        other => out.line(prefix, &format!("{other:?}")),
    }
}

/// The reply as HTML, like `redis-cli` shows it, cut at 1,000 elements or 256 KiB with
/// a note.
pub(crate) fn render_reply(v: &Value) -> String {
    let mut out = Out {
        text: String::new(),
        elements: 0,
        cut: false,
    };
    write_value(&mut out, v, "", 0);
    let mut h = format!(
        r#"<pre class="value" id="reply">{}</pre>"#,
        escape(out.text.trim_end_matches('\n'))
    );
    if out.cut {
        let _ = write!(
            h,
            r#"<div class="note" id="reply-cut">reply cut: only the first {} elements or {} KiB are shown</div>"#,
            MAX_ELEMENTS,
            MAX_TEXT / 1024
        );
    }
    h
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn config_get_hides_secret_values_in_both_protocols() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let flat = Value::Array(vec![
            bulk("requirepass"),
            bulk("hunter2"),
            bulk("maxmemory"),
            bulk("0"),
            bulk("masterauth"),
            bulk("hunter2"),
        ]);
        let out = render_reply(&redact(&args("CONFIG GET *"), flat.clone()));
        assert!(!out.contains("hunter2"), "{out}");
        assert!(
            out.contains("maxmemory") && out.contains("(redacted)"),
            "{out}"
        );
        let map = Value::Map(vec![(bulk("requirepass"), bulk("hunter2"))]);
        assert!(!render_reply(&redact(&args("config get requirepass"), map)).contains("hunter2"));
        // Other commands are left alone.
        assert_eq!(redact(&args("MGET requirepass"), flat.clone()), flat);
    }

    #[test]
    fn reads_that_could_return_too_much_are_refused_read_only() {
        let ok = |l: &str| check(&args(l), false, false).is_ok();
        assert!(ok("LRANGE l 0 999"));
        assert!(!ok("LRANGE l 0 -1"));
        assert!(!ok("LRANGE l 0 1000"));
        assert!(ok("ZRANGE z 0 10 WITHSCORES"));
        assert!(!ok("ZRANGE z 0 -1"));
        assert!(!ok("ZRANGE z 0 +inf BYSCORE"));
        assert!(ok("ZRANGE z 0 +inf BYSCORE LIMIT 0 100"));
        assert!(!ok("ZRANGEBYSCORE z -inf +inf"));
        assert!(!ok("XRANGE s - +"));
        assert!(ok("XRANGE s - + COUNT 50"));
        assert!(!ok("SRANDMEMBER s -100000000"));
        assert!(ok("SRANDMEMBER s 5"));
        assert!(!ok("SCAN 0 COUNT 10000000"));
        assert!(ok("SCAN 0 MATCH a* COUNT 100"));
        let e = check(&args("LRANGE l 0 -1"), false, false).unwrap_err();
        assert!(e.to_string().contains("LRANGE"), "{e}");
        // With --allow-write it is the user's call.
        assert!(check(&args("LRANGE l 0 -1"), true, false).is_ok());
    }

    #[test]
    fn logged_lines_hide_secret_arguments() {
        assert_eq!(loggable(&args("SET k v")), "SET k v");
        assert_eq!(
            loggable(&args("CONFIG SET masterauth hunter2")),
            "CONFIG SET masterauth … (arguments hidden)"
        );
        assert_eq!(
            loggable(&args("ACL SETUSER bob >pw")),
            "ACL SETUSER … (arguments hidden)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        parse(line).unwrap()
    }

    fn allowed(line: &str, allow_write: bool, sentinel: bool) -> bool {
        check(&args(line), allow_write, sentinel).is_ok()
    }

    #[test]
    fn lines_split_like_a_shell() {
        assert_eq!(args("GET key"), ["GET", "key"]);
        assert_eq!(args("  set  a   b  "), ["set", "a", "b"]);
        assert_eq!(args(r#"SET "a key" 'it''s'"#), ["SET", "a key", "its"]);
        assert_eq!(
            args(r#"ECHO "say \"hi\"\n\\" '\'q\''"#),
            ["ECHO", "say \"hi\"\n\\", "'q'"]
        );
        assert_eq!(args(r#"ECHO "" x"y"z"#), ["ECHO", "", "xyz"]);
        assert_eq!(args(r#"GET "\x41\x7e""#), ["GET", "A~"]);
        assert_eq!(args(r"GET a\ b"), ["GET", "a b"]);
        assert_eq!(args("GET 'a \"b\"'"), ["GET", "a \"b\""]);
        assert!(parse(r#"GET "open"#).unwrap_err().contains("unterminated"));
        assert!(parse("GET 'open").unwrap_err().contains("unterminated"));
        assert!(parse(r#"GET "\xff""#).is_err());
        assert!(parse(r#"GET "\xg1""#).is_err());
        assert!(parse(r#"GET "\x+1""#).is_err());
        assert!(parse(r#"GET "\x4""#).is_err());
        assert_eq!(parse("").unwrap_err(), "empty command");
        assert_eq!(parse("   \t ").unwrap_err(), "empty command");
    }

    #[test]
    fn read_only_mode_lets_reads_through_only() {
        for line in [
            "PING",
            "get k",
            "Info replication",
            "SCAN 0 MATCH * COUNT 10",
            "ZRANGE z 0 99 WITHSCORES",
            "config get maxmemory",
            "CONFIG GET *",
            "OBJECT ENCODING k",
            "memory usage k",
            "CLIENT LIST",
            "xinfo stream s",
            "COMMAND",
            "command count",
            "ACL WHOAMI",
            "SLOWLOG GET 10",
            "config help",
        ] {
            assert!(allowed(line, false, false), "{line}");
        }
        for line in [
            "FLUSHALL",
            "flushdb",
            "SET k v",
            "DEL k",
            "KEYS *",
            "EVAL 'return 1' 0",
            "CONFIG SET maxmemory 1",
            "config resetstat",
            "CONFIG",
            "ACL LIST",
            "CLIENT KILL ID 1",
            "SHUTDOWN",
            "DEBUG SLEEP 1",
            "OBJECT",
            "SENTINEL MASTERS",
            "ZRANGESTORE d z 0 -1",
        ] {
            assert!(!allowed(line, false, false), "{line}");
        }
        let r = check(&args("flushall"), false, false).unwrap_err();
        assert_eq!(
            r.to_string(),
            "FLUSHALL is not in the read-only allow-list; start the console with --allow-write to run it"
        );
        let r = check(&args("config set maxmemory 1"), false, false).unwrap_err();
        assert!(
            r.0.starts_with("CONFIG SET is not in the read-only allow-list"),
            "{r}"
        );
        assert!(check(&args("ACL LIST"), false, false)
            .unwrap_err()
            .0
            .starts_with("ACL LIST "));
    }

    #[test]
    fn a_sentinel_has_its_own_allow_list() {
        for line in [
            "SENTINEL MASTERS",
            "sentinel get-master-addr-by-name mymaster",
            "SENTINEL replicas mymaster",
            "SENTINEL CKQUORUM mymaster",
            "PING",
            "INFO",
            "ROLE",
        ] {
            assert!(allowed(line, false, true), "{line}");
        }
        for line in [
            "SENTINEL FAILOVER mymaster",
            "SENTINEL SET mymaster quorum 1",
            "SENTINEL RESET *",
            "SENTINEL",
            "GET k",
        ] {
            assert!(!allowed(line, false, true), "{line}");
        }
        let r = check(&args("sentinel failover mymaster"), false, true).unwrap_err();
        assert!(r.0.starts_with("SENTINEL FAILOVER is not in the Sentinel's read-only allow-list; start the console with --allow-write"), "{r}");
        assert!(allowed("SENTINEL FAILOVER mymaster", true, true));
    }

    #[test]
    fn write_mode_still_keeps_the_connection_usable() {
        assert!(allowed("FLUSHALL", true, false));
        assert!(allowed("set k v", true, false));
        assert!(allowed("CONFIG SET maxmemory 1mb", true, false));
        assert!(allowed("XREAD COUNT 1 STREAMS s 0", true, false));
        for line in [
            "SUBSCRIBE ch",
            "psubscribe *",
            "MONITOR",
            "SELECT 1",
            "AUTH pw",
            "HELLO 3",
            "QUIT",
            "RESET",
            "MULTI",
            "CLIENT REPLY OFF",
            "client tracking on",
            "SYNC",
            "PSYNC ? -1",
        ] {
            for (w, s) in [(true, false), (false, false), (true, true)] {
                let r = check(&args(line), w, s).unwrap_err();
                assert!(
                    r.0.contains("changes the connection's state"),
                    "{line}: {r}"
                );
            }
        }
        for line in [
            "BLPOP q 0",
            "brpop q 1",
            "BZPOPMIN z 0",
            "BLMOVE a b LEFT RIGHT 0",
            "XREAD BLOCK 0 STREAMS s $",
            "xreadgroup group g c block 10 streams s >",
            "WAIT 1 0",
        ] {
            let r = check(&args(line), true, false).unwrap_err();
            assert!(r.0.contains(" blocks "), "{line}: {r}");
        }
        assert!(check(&args("blpop q 0"), true, false)
            .unwrap_err()
            .0
            .starts_with("BLPOP blocks"));
    }

    #[test]
    fn replies_render_like_redis_cli() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(
            render_reply(&Value::Nil),
            r#"<pre class="value" id="reply">(nil)</pre>"#
        );
        assert!(render_reply(&Value::Int(7)).contains(">(integer) 7<"));
        assert!(render_reply(&Value::Okay).contains(">OK<"));
        assert!(render_reply(&bulk("a\"b\x01")).contains(r#">&quot;a\&quot;b\x01&quot;<"#));
        assert!(render_reply(&bulk("## Server\r\nredis_version:7\r\n"))
            .contains(">## Server\nredis_version:7<"));
        let nested = Value::Array(vec![
            bulk("a"),
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
            Value::Array(vec![]),
        ]);
        assert!(
            render_reply(&nested).contains(
                ">1) &quot;a&quot;\n2) 1) (integer) 1\n   2) (integer) 2\n3) (empty array)<"
            ),
            "{}",
            render_reply(&nested)
        );
        let map = Value::Map(vec![(bulk("k"), bulk("v"))]);
        assert!(render_reply(&map).contains("1# &quot;k&quot; =&gt; &quot;v&quot;"));
        let h = render_reply(&bulk("<script>alert(1)</script>"));
        assert!(!h.contains("<script>") && h.contains("&lt;script&gt;"));
        assert!(!h.contains("reply-cut"));

        // Capped by elements and by size, with a note.
        let many = Value::Array((0..5000).map(Value::Int).collect());
        let h = render_reply(&many);
        assert!(h.contains("(integer) 999<") && !h.contains("(integer) 1000"));
        assert!(h.contains(r#"id="reply-cut""#));
        let huge = Value::Array((0..100).map(|_| bulk(&"x".repeat(10_000))).collect());
        let h = render_reply(&huge);
        assert!(h.len() < MAX_TEXT + 1000 && h.contains(r#"id="reply-cut""#));
    }

    #[tokio::test]
    async fn commands_run_on_a_real_server() {
        let server = testkit::RedisServer::start();
        let mut con = server.con().await;
        let v = run(&mut con, &args("SET k \"hello world\"")).await.unwrap();
        assert_eq!(v, Value::Okay);
        let v = run(&mut con, &args("get K")).await.unwrap();
        assert_eq!(v, Value::Nil);
        let v = run(&mut con, &args("GET k")).await.unwrap();
        assert!(render_reply(&v).contains("&quot;hello world&quot;"));
        let v = run(&mut con, &args("CONFIG GET maxmemory-policy"))
            .await
            .unwrap();
        assert!(render_reply(&v).contains("maxmemory-policy"));
        // A server error is an Err.
        let e = run(&mut con, &args("NOSUCHCOMMAND x")).await.unwrap_err();
        assert!(
            e.to_string().to_lowercase().contains("unknown command"),
            "{e}"
        );
        let e = run(&mut con, &args("LPUSH k x")).await.unwrap_err();
        assert!(e.to_string().contains("WRONGTYPE"), "{e}");
        // The connection is still fine after errors.
        assert_eq!(
            run(&mut con, &args("PING")).await.unwrap(),
            Value::SimpleString("PONG".into())
        );
    }

    #[tokio::test]
    async fn a_command_that_does_not_answer_times_out() {
        let server = testkit::RedisServer::start();
        // The connection's own response timeout (500 ms by default) must not come first.
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        let mut con = redis::Client::open(format!("redis://{}/", server.addr()))
            .unwrap()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap();
        let mut other = server.con().await;
        let () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(TIMEOUT.as_millis() as u64 + 2000)
            .arg("ALL")
            .query_async(&mut other)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let e = run(&mut con, &args("GET k")).await.unwrap_err();
        assert!(e.to_string().contains("did not answer within 5 s"), "{e}");
        assert!(started.elapsed() >= TIMEOUT && started.elapsed() < TIMEOUT * 2);
        // The paused server is killed when `server` drops.
    }
}
