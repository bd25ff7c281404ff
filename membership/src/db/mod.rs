//! The database: SQLite (embedded default) behind a small connection pool, with every
//! call run on tokio's blocking pool.
//!
//! - [`schema`]: versioned migration.
//! - [`generate`]: the deterministic data set.
//! - [`queries`]: statistics, analytics, members and lookups (real SQL aggregates).
//! - `writes`: member, application, leadership and bulk-import writes, in transactions.
//! - `outbox`: the cache invalidations each write records in its own transaction.

pub mod generate;
pub(crate) mod outbox;
pub mod queries;
pub mod schema;
pub(crate) mod writes;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

/// Errors of database operations; the API maps each to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the data (409), e.g. a duplicate ID number.
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but refers to something invalid (400).
    #[error("{0}")]
    Invalid(String),
    /// DATABASE_URL names something this build cannot open.
    #[error("{0}")]
    Unsupported(String),
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Where the data lives, parsed from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DatabaseUrl {
    /// A SQLite file (`sqlite://path`, `sqlite:path` or a bare path).
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// Parses a `DATABASE_URL` value.
    pub fn parse(url: &str) -> Result<Self, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err(DbError::Unsupported(
                "DATABASE_URL names PostgreSQL, which this build does not support yet; \
                 use a SQLite path such as sqlite://membership.db"
                    .into(),
            ));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return Err(DbError::Unsupported(format!(
                "DATABASE_URL {url:?} is neither a SQLite path nor sqlite://path"
            )));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

/// Number of read connections (SQLite in WAL mode serves readers concurrently).
const READERS: usize = 4;

/// A pool of SQLite connections: several readers and one writer.
pub struct Db {
    readers: Vec<Mutex<Connection>>,
    writer: Mutex<Connection>,
    next: AtomicUsize,
    reads: AtomicU64,
    path: PathBuf,
    outbox: Arc<outbox::Outbox>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

pub(crate) fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let con = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    con.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000;",
    )?;
    Ok(con)
}

impl Db {
    /// Opens (creating and migrating) the database; fills it with `spec` when it holds no
    /// members yet. Returns what was generated, if anything.
    pub(crate) fn open(
        url: &DatabaseUrl,
        spec: &generate::GenerateSpec,
    ) -> Result<(Arc<Db>, Option<generate::Generated>), DbError> {
        let DatabaseUrl::Sqlite(path) = url;
        let mut writer = open_connection(path)?;
        schema::migrate(&writer)?;
        let members: i64 = writer.query_row("SELECT COUNT(*) FROM members", [], |r| r.get(0))?;
        let generated = if members == 0 {
            Some(generate::generate(&mut writer, spec)?)
        } else {
            None
        };
        writer.execute_batch("ANALYZE;")?;
        let readers = (0..READERS)
            .map(|_| open_connection(path).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok((
            Arc::new(Db {
                readers,
                writer: Mutex::new(writer),
                next: AtomicUsize::new(0),
                reads: AtomicU64::new(0),
                path: path.clone(),
                outbox: outbox::Outbox::open(path)?,
            }),
            generated,
        ))
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cache invalidation outbox.
    pub(crate) fn outbox(&self) -> &Arc<outbox::Outbox> {
        &self.outbox
    }

    /// Read connections in the pool.
    pub fn readers(&self) -> usize {
        self.readers.len()
    }

    /// Number of read calls served so far (each is one request's worth of queries).
    pub fn read_count(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Runs `f` on a read connection on the blocking pool.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        let db = Arc::clone(self);
        db.reads.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let start = db.next.fetch_add(1, Ordering::Relaxed);
            // Take the first idle reader, else wait for the round-robin one.
            for i in 0..db.readers.len() {
                if let Ok(con) = db.readers[(start + i) % db.readers.len()].try_lock() {
                    return f(&con);
                }
            }
            let con = db.readers[start % db.readers.len()]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            f(&con)
        })
        .await
        .expect("database task panicked")
    }

    /// Runs `f` in a write transaction on the blocking pool; commits when it returns `Ok`.
    pub async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, DbError> + Send + 'static,
    {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut con = db.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = con.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .expect("database task panicked")
    }
}
