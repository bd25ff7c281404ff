//! The SQLite schema, applied by a versioned migration on start.

use rusqlite::Connection;

const V1: &str = r#"
CREATE TABLE provinces (
    id   INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);
CREATE TABLE municipalities (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    province_id INTEGER NOT NULL REFERENCES provinces(id)
);
CREATE INDEX municipalities_province ON municipalities(province_id);
CREATE TABLE wards (
    id              INTEGER PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    municipality_id INTEGER NOT NULL REFERENCES municipalities(id)
);
CREATE INDEX wards_municipality ON wards(municipality_id);
CREATE TABLE membership_statuses (
    code        TEXT PRIMARY KEY,
    description TEXT NOT NULL
);
CREATE TABLE members (
    id          INTEGER PRIMARY KEY,
    id_number   TEXT NOT NULL UNIQUE,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    gender      TEXT NOT NULL CHECK (gender IN ('female', 'male', 'other')),
    birth_date  TEXT NOT NULL,
    join_date   TEXT NOT NULL,
    ward_id     INTEGER NOT NULL REFERENCES wards(id),
    status      TEXT NOT NULL REFERENCES membership_statuses(code),
    email       TEXT,
    phone       TEXT,
    updated_at  TEXT NOT NULL
);
CREATE INDEX members_ward ON members(ward_id);
CREATE INDEX members_status ON members(status);
CREATE INDEX members_join_date ON members(join_date);
CREATE TABLE membership_applications (
    id            INTEGER PRIMARY KEY,
    id_number     TEXT NOT NULL,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    gender        TEXT NOT NULL,
    birth_date    TEXT NOT NULL,
    ward_id       INTEGER NOT NULL REFERENCES wards(id),
    email         TEXT,
    phone         TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    submitted_at  TEXT NOT NULL,
    decided_at    TEXT,
    reason        TEXT,
    member_id     INTEGER REFERENCES members(id) ON DELETE SET NULL
);
CREATE INDEX applications_status ON membership_applications(status);
CREATE TABLE ward_leadership (
    ward_id   INTEGER NOT NULL REFERENCES wards(id),
    role      TEXT NOT NULL,
    member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    since     TEXT NOT NULL,
    PRIMARY KEY (ward_id, role)
);
CREATE INDEX leadership_member ON ward_leadership(member_id);
"#;

/// The cache invalidation outbox: the tags each write makes stale, recorded in the write's
/// own transaction and removed once applied to Redis (one row per tag; AUTOINCREMENT so an
/// id is never reused).
const V2: &str = r#"
CREATE TABLE cache_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tag        TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);
"#;

/// Applies the migrations the database has not had yet (`PRAGMA user_version`, now 2).
pub fn migrate(con: &Connection) -> rusqlite::Result<()> {
    let version: i64 = con.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 1 {
        con.execute_batch(&format!("BEGIN; {V1} PRAGMA user_version = 1; COMMIT;"))?;
    }
    if version < 2 {
        con.execute_batch(&format!("BEGIN; {V2} PRAGMA user_version = 2; COMMIT;"))?;
    }
    Ok(())
}
