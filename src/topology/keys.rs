//! Removing exactly the keys a run wrote: `SCAN MATCH <prefix>*` and `UNLINK` on the
//! master, never `KEYS` or `FLUSH*`, then a second SCAN to count what is left.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{probe, Login};

/// What removing a run's keys did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleanup {
    /// The prefix every key of the run starts with.
    pub prefix: String,
    /// The master it was done on.
    pub master: Option<String>,
    /// Keys found under the prefix (everything the run wrote that was still there).
    pub found: u64,
    /// Keys UNLINK removed.
    pub removed: u64,
    /// Keys a second SCAN still found (should be 0).
    pub left: u64,
    /// Why it could not finish, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Cleanup {
    /// One line for terminals.
    pub fn summary(&self) -> String {
        match &self.error {
            Some(e) => format!(
                "cleanup of {}*: {} found, {} removed, FAILED: {e}",
                self.prefix, self.found, self.removed
            ),
            None => format!(
                "cleanup of {}*: {} keys found, {} removed, {} left",
                self.prefix, self.found, self.removed, self.left
            ),
        }
    }
}

/// `prefix` with SCAN's glob characters escaped, then `*`.
fn pattern(prefix: &str) -> String {
    let mut p = String::new();
    for c in prefix.chars() {
        if "*?[]\\".contains(c) {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('*');
    p
}

/// Every key under `prefix` on the node at `host:port`.
async fn scan(
    con: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> redis::RedisResult<Vec<Vec<u8>>> {
    // Keys as bytes: a client may write a key that is not UTF-8.
    let mut cursor = 0u64;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern(prefix))
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Removes every key under `prefix` on the master at `master` (`host:port`).
pub async fn remove_prefix(master: Option<&str>, login: &Login, prefix: &str) -> Cleanup {
    let mut out = Cleanup {
        prefix: prefix.to_string(),
        master: master.map(str::to_string),
        found: 0,
        removed: 0,
        left: 0,
        error: None,
    };
    let Some((host, port)) = master.and_then(crate::config::external::split_addr) else {
        out.error = Some("no master to clean up on".into());
        return out;
    };
    let run = async {
        let mut c = probe::connect(&host, port, login, Duration::from_secs(5)).await?;
        let keys = scan(&mut c, prefix).await?;
        out.found = keys.len() as u64;
        for batch in keys.chunks(500) {
            let n: u64 = redis::cmd("UNLINK").arg(batch).query_async(&mut c).await?;
            out.removed += n;
        }
        out.left = scan(&mut c, prefix).await?.len() as u64;
        Ok::<_, redis::RedisError>(())
    };
    if let Err(e) = run.await {
        out.error = Some(e.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_a_prefix_are_matched_literally() {
        assert_eq!(pattern("harness:drill:ab12:"), "harness:drill:ab12:*");
        assert_eq!(pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }
}
