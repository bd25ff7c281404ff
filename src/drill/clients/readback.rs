//! The final read: after healing, every value the keys of a client hold, whatever their
//! type (a string's value, a set's members, a list's elements), read from the master the
//! Sentinels name.

use std::time::Duration;

use membership::RedisLink;
use redis::Value;

/// Keys per pipelined round trip.
const BATCH: usize = 500;

/// What the keys held.
#[derive(Debug, Default)]
pub(crate) struct Read {
    /// Every string value, set member and list element.
    pub values: Vec<String>,
    /// Keys of another type, with the type.
    pub odd: Vec<(String, String)>,
}

/// Every value held by `keys`, retrying the whole read for up to `timeout`; `None` when
/// it never succeeded.
pub(crate) async fn values(link: &RedisLink, keys: &[String], timeout: Duration) -> Option<Read> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match read_all(link, keys).await {
            Ok(v) => return Some(v),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(_) => return None,
        }
    }
}

async fn read_all(link: &RedisLink, keys: &[String]) -> Result<Read, membership::LinkError> {
    let mut out = Read::default();
    for chunk in keys.chunks(BATCH) {
        let types: Vec<String> = link
            .run(|mut con| async move {
                let mut p = redis::pipe();
                for k in chunk {
                    p.cmd("TYPE").arg(k);
                }
                p.query_async(&mut con).await
            })
            .await?;
        let replies: Vec<Value> = link
            .run(|mut con| {
                let types = types.clone();
                async move {
                    let mut p = redis::pipe();
                    for (k, t) in chunk.iter().zip(&types) {
                        match t.as_str() {
                            "string" => p.cmd("GET").arg(k),
                            "set" => p.cmd("SMEMBERS").arg(k),
                            "list" => p.cmd("LRANGE").arg(k).arg(0).arg(-1),
                            // Absent, or a type no write of the protocol makes: nothing.
                            _ => p.cmd("ECHO").arg(""),
                        };
                    }
                    p.query_async(&mut con).await
                }
            })
            .await?;
        for ((v, t), k) in replies.into_iter().zip(&types).zip(chunk) {
            match t.as_str() {
                "string" | "set" | "list" => collect(v, &mut out.values),
                "none" => {}
                other => out.odd.push((k.clone(), other.to_string())),
            }
        }
    }
    Ok(out)
}

fn collect(v: Value, out: &mut Vec<String>) {
    match v {
        Value::BulkString(b) => out.push(String::from_utf8_lossy(&b).into_owned()),
        Value::SimpleString(s) => out.push(s),
        Value::Array(items) | Value::Set(items) => {
            for i in items {
                collect(i, out);
            }
        }
        _ => {}
    }
}
