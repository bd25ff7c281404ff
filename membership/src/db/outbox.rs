//! The cache invalidation outbox (transactional outbox pattern).
//!
//! Every write records the tags it makes stale in its own transaction ([`record`]). After
//! commit the writer applies them to Redis and removes its rows; when Redis cannot be
//! reached the rows stay, durable and visible to every API instance on the database, and
//! whichever instance reaches Redis first drains them. Until a tag's row is gone no
//! instance serves a HIT for that tag ([`Outbox::pending`]).
//!
//! Checking for pending rows is on the path of every cached read, so it is cheap:
//! `PRAGMA data_version` on a connection of its own tells whether anyone committed since the
//! last look, and only then is the table read again.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, Transaction};

use super::DbError;

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Rows recorded by one write: their ids and tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// Row ids (one per tag).
    pub ids: Vec<i64>,
    /// The tags.
    pub tags: Vec<String>,
}

/// Records `tags` in the outbox inside the write's transaction `tx`. A tag already pending
/// gets a new row (and id), so a drain that read the older row cannot remove this one.
pub(crate) fn record(tx: &Transaction<'_>, tags: &[String]) -> Result<Recorded, DbError> {
    let now = now_ms();
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO cache_outbox (tag, created_ms) VALUES (?1, ?2) RETURNING id",
    )?;
    let mut ids = Vec::with_capacity(tags.len());
    for t in tags {
        ids.push(stmt.query_row(params![t, now], |r| r.get(0))?);
    }
    Ok(Recorded {
        ids,
        tags: tags.to_vec(),
    })
}

#[derive(Debug)]
struct Seen {
    /// `PRAGMA data_version` when `tags` was read.
    version: i64,
    tags: Arc<HashSet<String>>,
}

/// The outbox as the cache sees it: which tags are pending, and removal of applied rows.
pub(crate) struct Outbox {
    /// Reads `data_version` and the pending tags; never writes, so every commit by another
    /// connection (this process's writer included) moves its `data_version`.
    check: Mutex<(Connection, Option<Seen>)>,
    /// Removes applied rows and reads rows to drain (on the blocking pool).
    write: Mutex<Connection>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    /// Opens the outbox's two connections to the database at `path`.
    pub fn open(path: &Path) -> Result<Arc<Self>, DbError> {
        let check = super::open_connection(path)?;
        // The check runs on the request path: never wait long for a lock (a failure counts
        // as "pending", which only costs a bypass).
        check.busy_timeout(std::time::Duration::from_millis(50))?;
        Ok(Arc::new(Self {
            check: Mutex::new((check, None)),
            write: Mutex::new(super::open_connection(path)?),
        }))
    }

    /// The tags with a row in the outbox. Cheap when nothing was committed since the last
    /// call. An error reading the database counts as "everything pending" (`None`).
    pub fn pending(&self) -> Option<Arc<HashSet<String>>> {
        let mut g = self.check.lock().unwrap_or_else(|p| p.into_inner());
        let (con, seen) = &mut *g;
        let version: i64 = match con
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("cannot read the cache outbox: {e}");
                return None;
            }
        };
        if let Some(s) = seen.as_ref().filter(|s| s.version == version) {
            return Some(Arc::clone(&s.tags));
        }
        let tags = con
            .prepare_cached("SELECT tag FROM cache_outbox")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<HashSet<String>>>()
            });
        match tags {
            Ok(tags) => {
                let tags = Arc::new(tags);
                *seen = Some(Seen {
                    version,
                    tags: Arc::clone(&tags),
                });
                Some(tags)
            }
            Err(e) => {
                tracing::warn!("cannot read the cache outbox: {e}");
                None
            }
        }
    }

    /// Rows recorded at least `min_age_ms` ago (at most `limit`): what a drain applies.
    pub async fn older_than(
        self: &Arc<Self>,
        min_age_ms: i64,
        limit: usize,
    ) -> Result<Recorded, DbError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let con = me.write.lock().unwrap_or_else(|p| p.into_inner());
            let mut stmt = con.prepare_cached(
                "SELECT id, tag FROM cache_outbox WHERE created_ms <= ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![now_ms() - min_age_ms, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let (ids, tags) = rows.into_iter().unzip();
            Ok(Recorded { ids, tags })
        })
        .await
        .expect("outbox task panicked")
    }

    /// Removes applied rows by id (rows re-recorded meanwhile have new ids and stay).
    pub async fn remove(self: &Arc<Self>, ids: Vec<i64>) -> Result<(), DbError> {
        if ids.is_empty() {
            return Ok(());
        }
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut con = me.write.lock().unwrap_or_else(|p| p.into_inner());
            let tx = con.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut stmt = tx.prepare_cached("DELETE FROM cache_outbox WHERE id = ?1")?;
                for id in ids {
                    stmt.execute([id])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .expect("outbox task panicked")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let con = super::super::open_connection(&path).unwrap();
        super::super::schema::migrate(&con).unwrap();
        (dir, path)
    }

    #[tokio::test]
    async fn pending_follows_commits_of_other_connections() {
        let (_dir, path) = db();
        let outbox = Outbox::open(&path).unwrap();
        assert!(outbox.pending().unwrap().is_empty());
        let mut writer = super::super::open_connection(&path).unwrap();
        let tx = writer.transaction().unwrap();
        let first = record(&tx, &["member:1".into(), "statistics".into()]).unwrap();
        tx.commit().unwrap();
        let p = outbox.pending().unwrap();
        assert!(p.contains("member:1") && p.contains("statistics"), "{p:?}");

        // Re-recording a pending tag gives it a new id: removing the old rows keeps it.
        let tx = writer.transaction().unwrap();
        let second = record(&tx, &["member:1".into()]).unwrap();
        tx.commit().unwrap();
        assert!(second.ids[0] > first.ids[0]);
        outbox.remove(first.ids).await.unwrap();
        assert_eq!(
            *outbox.pending().unwrap(),
            HashSet::from(["member:1".to_string()])
        );
        let rows = outbox.older_than(0, 100).await.unwrap();
        assert_eq!(rows.ids, second.ids);
        outbox.remove(rows.ids).await.unwrap();
        assert!(outbox.pending().unwrap().is_empty());
    }
}
