//! Writes, each in one transaction. Every write reports what it changed so the caller can
//! fire the matching cache invalidation hook after commit.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use super::generate::{valid_id_number, ROLES, STATUSES};
use super::queries::ward_exists;
use super::DbError;
use crate::dates;

/// A member to create (also one item of a bulk import, and an application's body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMember {
    /// 13-digit ID number with a valid check digit.
    pub id_number: String,
    /// First name, 1-100 characters.
    pub first_name: String,
    /// Last name, 1-100 characters.
    pub last_name: String,
    /// `female`, `male` or `other`.
    pub gender: String,
    /// `YYYY-MM-DD`, not in the future.
    pub birth_date: String,
    /// An existing ward.
    pub ward_id: i64,
    /// Status code; `active` when absent.
    #[serde(default)]
    pub status: Option<String>,
    /// Optional e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Optional phone number.
    #[serde(default)]
    pub phone: Option<String>,
}

/// Fields of a member to change; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberUpdate {
    /// New first name.
    pub first_name: Option<String>,
    /// New last name.
    pub last_name: Option<String>,
    /// New gender.
    pub gender: Option<String>,
    /// New birth date.
    pub birth_date: Option<String>,
    /// New ward.
    pub ward_id: Option<i64>,
    /// New status.
    pub status: Option<String>,
    /// New e-mail.
    pub email: Option<String>,
    /// New phone.
    pub phone: Option<String>,
}

fn invalid(msg: String) -> DbError {
    DbError::Invalid(msg)
}

fn check_name(field: &str, v: &str) -> Result<(), DbError> {
    let n = v.trim().chars().count();
    if n == 0 || n > 100 || v.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field}: must be 1-100 characters without control characters"
        )));
    }
    Ok(())
}

fn check_gender(v: &str) -> Result<(), DbError> {
    if !["female", "male", "other"].contains(&v) {
        return Err(invalid(format!(
            "gender: must be female, male or other (got {v:?})"
        )));
    }
    Ok(())
}

fn check_birth_date(v: &str) -> Result<(), DbError> {
    match dates::parse_day(v) {
        Some(d) if d <= dates::today() && d > dates::today() - 130 * 366 => Ok(()),
        Some(_) => Err(invalid(format!(
            "birth_date: {v} is not a plausible birth date"
        ))),
        None => Err(invalid(format!(
            "birth_date: must be a real date as YYYY-MM-DD (got {v:?})"
        ))),
    }
}

/// Checks a status code against the known statuses.
pub(crate) fn check_status(v: &str) -> Result<(), DbError> {
    if !STATUSES.iter().any(|s| s.0 == v) {
        let known: Vec<_> = STATUSES.iter().map(|s| s.0).collect();
        return Err(invalid(format!(
            "status: must be one of {} (got {v:?})",
            known.join(", ")
        )));
    }
    Ok(())
}

fn check_contact(email: Option<&str>, phone: Option<&str>) -> Result<(), DbError> {
    if let Some(e) = email {
        if e.len() > 254
            || !e.contains('@')
            || e.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(format!("email: {e:?} is not an e-mail address")));
        }
    }
    if let Some(p) = phone {
        let digits = p.strip_prefix('+').unwrap_or(p);
        if digits.len() < 7 || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!(
                "phone: {p:?} must be 7-15 digits, optionally after '+'"
            )));
        }
    }
    Ok(())
}

impl NewMember {
    /// Checks every field; the message names the field.
    pub fn validate(&self) -> Result<(), DbError> {
        if !valid_id_number(&self.id_number) {
            return Err(invalid(format!(
                "id_number: {:?} is not a 13-digit ID number with a valid date and check digit",
                self.id_number
            )));
        }
        check_name("first_name", &self.first_name)?;
        check_name("last_name", &self.last_name)?;
        check_gender(&self.gender)?;
        check_birth_date(&self.birth_date)?;
        if let Some(s) = &self.status {
            check_status(s)?;
        }
        check_contact(self.email.as_deref(), self.phone.as_deref())
    }
}

impl MemberUpdate {
    /// Checks every present field.
    pub fn validate(&self) -> Result<(), DbError> {
        if let Some(v) = &self.first_name {
            check_name("first_name", v)?;
        }
        if let Some(v) = &self.last_name {
            check_name("last_name", v)?;
        }
        if let Some(v) = &self.gender {
            check_gender(v)?;
        }
        if let Some(v) = &self.birth_date {
            check_birth_date(v)?;
        }
        if let Some(v) = &self.status {
            check_status(v)?;
        }
        check_contact(self.email.as_deref(), self.phone.as_deref())?;
        if self == &MemberUpdate::default() {
            return Err(invalid("the update names no field to change".into()));
        }
        Ok(())
    }

    /// Whether the update touches a field that statistics and analytics count.
    pub fn changes_counted_fields(&self) -> bool {
        self.gender.is_some()
            || self.birth_date.is_some()
            || self.ward_id.is_some()
            || self.status.is_some()
    }
}

fn today() -> String {
    dates::format_day(dates::today())
}

fn insert_member(tx: &Transaction<'_>, m: &NewMember) -> Result<i64, DbError> {
    ward_exists(tx, m.ward_id)
        .map_err(|_| invalid(format!("ward_id: ward {} does not exist", m.ward_id)))?;
    let taken: Option<i64> = tx
        .prepare_cached("SELECT id FROM members WHERE id_number = ?1")?
        .query_row([&m.id_number], |r| r.get(0))
        .optional()?;
    if let Some(id) = taken {
        return Err(DbError::Conflict(format!(
            "id_number {} already belongs to member {id}",
            m.id_number
        )));
    }
    let now = today();
    tx.prepare_cached(
        "INSERT INTO members (id_number, first_name, last_name, gender, birth_date, join_date, ward_id, \
         status, email, phone, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?6)",
    )?
    .execute(params![
        m.id_number,
        m.first_name.trim(),
        m.last_name.trim(),
        m.gender,
        m.birth_date,
        now,
        m.ward_id,
        m.status.as_deref().unwrap_or("active"),
        m.email,
        m.phone
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Creates a member; returns its id.
pub(crate) fn create_member(tx: &Transaction<'_>, m: &NewMember) -> Result<i64, DbError> {
    m.validate()?;
    insert_member(tx, m)
}

/// Applies an update to member `id`.
pub(crate) fn update_member(
    tx: &Transaction<'_>,
    id: i64,
    u: &MemberUpdate,
) -> Result<(), DbError> {
    u.validate()?;
    if let Some(w) = u.ward_id {
        ward_exists(tx, w).map_err(|_| invalid(format!("ward_id: ward {w} does not exist")))?;
    }
    let n = tx.execute(
        "UPDATE members SET first_name = COALESCE(?2, first_name), last_name = COALESCE(?3, last_name), \
         gender = COALESCE(?4, gender), birth_date = COALESCE(?5, birth_date), ward_id = COALESCE(?6, ward_id), \
         status = COALESCE(?7, status), email = COALESCE(?8, email), phone = COALESCE(?9, phone), \
         updated_at = ?10 WHERE id = ?1",
        params![
            id,
            u.first_name.as_deref().map(str::trim),
            u.last_name.as_deref().map(str::trim),
            u.gender,
            u.birth_date,
            u.ward_id,
            u.status,
            u.email,
            u.phone,
            today()
        ],
    )?;
    if n == 0 {
        return Err(DbError::NotFound(format!("member {id} not found")));
    }
    if u.ward_id.is_some() {
        // A leader who moves ward no longer leads the old one.
        tx.execute(
            "DELETE FROM ward_leadership WHERE member_id = ?1 AND ward_id <> ?2",
            params![id, u.ward_id],
        )?;
    }
    Ok(())
}

/// Deletes member `id` (and its leadership positions).
pub(crate) fn delete_member(tx: &Transaction<'_>, id: i64) -> Result<(), DbError> {
    let n = tx.execute("DELETE FROM members WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(DbError::NotFound(format!("member {id} not found")));
    }
    Ok(())
}

/// Imports members all-or-nothing; returns their ids. An error names the failing item.
pub(crate) fn bulk_import(tx: &Transaction<'_>, items: &[NewMember]) -> Result<Vec<i64>, DbError> {
    let mut ids = Vec::with_capacity(items.len());
    for (i, m) in items.iter().enumerate() {
        let at = |e: DbError| match e {
            DbError::Invalid(msg) => DbError::Invalid(format!("item {i}: {msg}")),
            DbError::Conflict(msg) => DbError::Conflict(format!("item {i}: {msg}")),
            other => other,
        };
        m.validate().map_err(at)?;
        ids.push(insert_member(tx, m).map_err(at)?);
    }
    Ok(ids)
}

/// Submits a membership application; returns its id.
pub(crate) fn submit_application(tx: &Transaction<'_>, m: &NewMember) -> Result<i64, DbError> {
    m.validate()?;
    if m.status.is_some() {
        return Err(invalid(
            "status: an application cannot choose its member status".into(),
        ));
    }
    ward_exists(tx, m.ward_id)
        .map_err(|_| invalid(format!("ward_id: ward {} does not exist", m.ward_id)))?;
    let pending: Option<i64> = tx
        .query_row(
            "SELECT id FROM membership_applications WHERE id_number = ?1 AND status = 'pending'",
            [&m.id_number],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = pending {
        return Err(DbError::Conflict(format!(
            "application {id} for this ID number is already pending"
        )));
    }
    tx.execute(
        "INSERT INTO membership_applications (id_number, first_name, last_name, gender, birth_date, ward_id, \
         email, phone, status, submitted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9)",
        params![m.id_number, m.first_name.trim(), m.last_name.trim(), m.gender, m.birth_date, m.ward_id, m.email, m.phone, today()],
    )?;
    Ok(tx.last_insert_rowid())
}

fn pending_application(tx: &Transaction<'_>, id: i64) -> Result<NewMember, DbError> {
    let row = tx
        .query_row(
            "SELECT id_number, first_name, last_name, gender, birth_date, ward_id, email, phone, status \
             FROM membership_applications WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    NewMember {
                        id_number: r.get(0)?,
                        first_name: r.get(1)?,
                        last_name: r.get(2)?,
                        gender: r.get(3)?,
                        birth_date: r.get(4)?,
                        ward_id: r.get(5)?,
                        status: None,
                        email: r.get(6)?,
                        phone: r.get(7)?,
                    },
                    r.get::<_, String>(8)?,
                ))
            },
        )
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("application {id} not found")))?;
    if row.1 != "pending" {
        return Err(DbError::Conflict(format!(
            "application {id} is already {}",
            row.1
        )));
    }
    Ok(row.0)
}

/// Approves a pending application, creating the member; returns the member id.
pub(crate) fn approve_application(tx: &Transaction<'_>, id: i64) -> Result<i64, DbError> {
    let m = pending_application(tx, id)?;
    let member_id = insert_member(tx, &m)?;
    tx.execute(
        "UPDATE membership_applications SET status = 'approved', decided_at = ?2, member_id = ?3 WHERE id = ?1",
        params![id, today(), member_id],
    )?;
    Ok(member_id)
}

/// Rejects a pending application with an optional reason.
pub(crate) fn reject_application(
    tx: &Transaction<'_>,
    id: i64,
    reason: Option<&str>,
) -> Result<(), DbError> {
    pending_application(tx, id)?;
    if let Some(r) = reason {
        if r.chars().count() > 500 {
            return Err(invalid("reason: at most 500 characters".into()));
        }
    }
    tx.execute(
        "UPDATE membership_applications SET status = 'rejected', decided_at = ?2, reason = ?3 WHERE id = ?1",
        params![id, today(), reason],
    )?;
    Ok(())
}

/// Checks a leadership role name.
pub(crate) fn check_role(role: &str) -> Result<(), DbError> {
    if !ROLES.iter().any(|r| r.0 == role) {
        let known: Vec<_> = ROLES.iter().map(|r| r.0).collect();
        return Err(invalid(format!(
            "role: must be one of {} (got {role:?})",
            known.join(", ")
        )));
    }
    Ok(())
}

/// Puts `member_id` into `role` in `ward_id`; returns the previous holder, if any.
pub(crate) fn change_leadership(
    tx: &Transaction<'_>,
    ward_id: i64,
    role: &str,
    member_id: i64,
) -> Result<Option<i64>, DbError> {
    check_role(role)?;
    ward_exists(tx, ward_id)?;
    let member: Option<(i64, String)> = tx
        .query_row(
            "SELECT ward_id, status FROM members WHERE id = ?1",
            [member_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match member {
        None => {
            return Err(invalid(format!(
                "member_id: member {member_id} does not exist"
            )))
        }
        Some((w, _)) if w != ward_id => {
            return Err(invalid(format!(
                "member_id: member {member_id} belongs to ward {w}, not {ward_id}"
            )))
        }
        Some((_, s)) if s != "active" => {
            return Err(invalid(format!(
                "member_id: member {member_id} is {s}; leaders must be active"
            )))
        }
        _ => {}
    }
    let previous: Option<i64> = tx
        .query_row(
            "SELECT member_id FROM ward_leadership WHERE ward_id = ?1 AND role = ?2",
            params![ward_id, role],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute(
        "DELETE FROM ward_leadership WHERE ward_id = ?1 AND member_id = ?2",
        params![ward_id, member_id],
    )?;
    tx.execute(
        "INSERT INTO ward_leadership (ward_id, role, member_id, since) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (ward_id, role) DO UPDATE SET member_id = excluded.member_id, since = excluded.since",
        params![ward_id, role, member_id, today()],
    )?;
    Ok(previous)
}
