//! Read queries. Statistics and analytics are computed by SQL aggregates over the member
//! rows on every call, so an uncached request costs what it really costs.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::DbError;

/// A member with the names of its ward, municipality and province.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Member {
    /// Member id.
    pub id: i64,
    /// 13-digit ID number.
    pub id_number: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// `female`, `male` or `other`.
    pub gender: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// `YYYY-MM-DD`.
    pub join_date: String,
    /// Membership status code.
    pub status: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Ward id.
    pub ward_id: i64,
    /// Ward code.
    pub ward_code: String,
    /// Municipality name.
    pub municipality: String,
    /// Province code.
    pub province: String,
    /// Leadership roles held, `ward_code:role`.
    pub leadership_roles: Vec<String>,
    /// Last change, `YYYY-MM-DD`.
    pub updated_at: String,
}

const MEMBER_SELECT: &str = "SELECT m.id, m.id_number, m.first_name, m.last_name, m.gender, \
    m.birth_date, m.join_date, m.status, m.email, m.phone, m.ward_id, w.code, mu.name, p.code, m.updated_at \
    FROM members m JOIN wards w ON w.id = m.ward_id \
    JOIN municipalities mu ON mu.id = w.municipality_id JOIN provinces p ON p.id = mu.province_id";

fn member_row(r: &Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        id: r.get(0)?,
        id_number: r.get(1)?,
        first_name: r.get(2)?,
        last_name: r.get(3)?,
        gender: r.get(4)?,
        birth_date: r.get(5)?,
        join_date: r.get(6)?,
        status: r.get(7)?,
        email: r.get(8)?,
        phone: r.get(9)?,
        ward_id: r.get(10)?,
        ward_code: r.get(11)?,
        municipality: r.get(12)?,
        province: r.get(13)?,
        leadership_roles: Vec::new(),
        updated_at: r.get(14)?,
    })
}

fn with_roles(con: &Connection, mut m: Member) -> Result<Member, DbError> {
    let mut st = con.prepare_cached(
        "SELECT w.code || ':' || l.role FROM ward_leadership l JOIN wards w ON w.id = l.ward_id \
         WHERE l.member_id = ?1 ORDER BY 1",
    )?;
    m.leadership_roles = st
        .query_map([m.id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(m)
}

/// One member by id.
pub(crate) fn member_by_id(con: &Connection, id: i64) -> Result<Member, DbError> {
    let m = con
        .prepare_cached(&format!("{MEMBER_SELECT} WHERE m.id = ?1"))?
        .query_row([id], member_row)
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("member {id} not found")))?;
    with_roles(con, m)
}

/// One member by ID number.
pub(crate) fn member_by_id_number(con: &Connection, id_number: &str) -> Result<Member, DbError> {
    let m = con
        .prepare_cached(&format!("{MEMBER_SELECT} WHERE m.id_number = ?1"))?
        .query_row([id_number], member_row)
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("no member with ID number {id_number}")))?;
    with_roles(con, m)
}

/// A page of members, optionally filtered by ward and status.
pub(crate) fn list_members(
    con: &Connection,
    ward_id: Option<i64>,
    status: Option<&str>,
    page: u32,
    page_size: u32,
) -> Result<Value, DbError> {
    let filter = "WHERE (?1 IS NULL OR m.ward_id = ?1) AND (?2 IS NULL OR m.status = ?2)";
    let total: i64 = con.query_row(
        &format!("SELECT COUNT(*) FROM members m {filter}"),
        params![ward_id, status],
        |r| r.get(0),
    )?;
    let offset = i64::from(page - 1) * i64::from(page_size);
    let members: Vec<Member> = con
        .prepare_cached(&format!(
            "{MEMBER_SELECT} {filter} ORDER BY m.id LIMIT ?3 OFFSET ?4"
        ))?
        .query_map(params![ward_id, status, page_size, offset], member_row)?
        .collect::<Result<_, _>>()?;
    Ok(json!({ "page": page, "page_size": page_size, "total": total, "members": members }))
}

fn count(con: &Connection, sql: &str) -> Result<i64, DbError> {
    Ok(con.query_row(sql, [], |r| r.get(0))?)
}

fn grouped(
    con: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Map<String, Value>, DbError> {
    let mut st = con.prepare_cached(sql)?;
    let rows = st.query_map(p, |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Map::new();
    for row in rows {
        let (k, v) = row?;
        out.insert(k, json!(v));
    }
    Ok(out)
}

/// Age bucket expression over `birth_date` relative to today.
const AGE: &str =
    "(CAST(strftime('%Y', 'now') AS INTEGER) - CAST(substr(birth_date, 1, 4) AS INTEGER) \
    - (strftime('%m-%d', 'now') < substr(birth_date, 6, 5)))";

fn age_group_sql() -> String {
    format!(
        "CASE WHEN {AGE} < 25 THEN '18-24' WHEN {AGE} < 35 THEN '25-34' WHEN {AGE} < 45 THEN '35-44' \
         WHEN {AGE} < 55 THEN '45-54' WHEN {AGE} < 65 THEN '55-64' ELSE '65+' END"
    )
}

/// `GET statistics/system`.
pub fn system_statistics(con: &Connection) -> Result<Value, DbError> {
    Ok(json!({
        "total_members": count(con, "SELECT COUNT(*) FROM members")?,
        "members_by_status": grouped(con, "SELECT status, COUNT(*) FROM members GROUP BY status ORDER BY status", [])?,
        "total_wards": count(con, "SELECT COUNT(*) FROM wards")?,
        "wards_with_members": count(con, "SELECT COUNT(DISTINCT ward_id) FROM members")?,
        "total_municipalities": count(con, "SELECT COUNT(*) FROM municipalities")?,
        "total_provinces": count(con, "SELECT COUNT(*) FROM provinces")?,
        "pending_applications": count(con, "SELECT COUNT(*) FROM membership_applications WHERE status = 'pending'")?,
        "leadership_positions_filled": count(con, "SELECT COUNT(*) FROM ward_leadership")?,
    }))
}

/// `GET statistics/demographics`.
pub fn demographics(con: &Connection) -> Result<Value, DbError> {
    Ok(json!({
        "gender": grouped(con, "SELECT gender, COUNT(*) FROM members GROUP BY gender ORDER BY gender", [])?,
        "age_groups": grouped(con, &format!("SELECT {} AS g, COUNT(*) FROM members GROUP BY g ORDER BY g", age_group_sql()), [])?,
        "by_province": grouped(con, "SELECT p.code, COUNT(*) FROM members m JOIN wards w ON w.id = m.ward_id \
            JOIN municipalities mu ON mu.id = w.municipality_id JOIN provinces p ON p.id = mu.province_id \
            GROUP BY p.code ORDER BY p.code", [])?,
        "average_age": con.query_row(&format!("SELECT ROUND(AVG({AGE}), 1) FROM members"), [], |r| r.get::<_, Option<f64>>(0))?,
    }))
}

/// `GET statistics/ward-membership`: the largest wards, optionally within one province.
pub(crate) fn ward_membership(
    con: &Connection,
    limit: u32,
    province: Option<&str>,
) -> Result<Value, DbError> {
    let mut st = con.prepare_cached(
        "SELECT w.id, w.code, w.name, mu.name, p.code, COUNT(m.id) AS members, \
         SUM(m.status = 'active') AS active \
         FROM wards w JOIN municipalities mu ON mu.id = w.municipality_id \
         JOIN provinces p ON p.id = mu.province_id LEFT JOIN members m ON m.ward_id = w.id \
         WHERE (?1 IS NULL OR p.code = ?1) GROUP BY w.id ORDER BY members DESC, w.id LIMIT ?2",
    )?;
    let wards: Vec<Value> = st
        .query_map(params![province, limit], |r| {
            Ok(json!({
                "ward_id": r.get::<_, i64>(0)?, "code": r.get::<_, String>(1)?, "name": r.get::<_, String>(2)?,
                "municipality": r.get::<_, String>(3)?, "province": r.get::<_, String>(4)?,
                "members": r.get::<_, i64>(5)?, "active": r.get::<_, Option<i64>>(6)?.unwrap_or(0),
            }))
        })?
        .collect::<Result<_, _>>()?;
    Ok(json!({ "limit": limit, "province": province, "wards": wards }))
}

/// `GET statistics/membership-trends`: new members per month for the last `months` months.
pub fn membership_trends(con: &Connection, months: u32) -> Result<Value, DbError> {
    let mut st = con.prepare_cached(
        "WITH RECURSIVE mon(n, start) AS ( \
           SELECT 0, date('now', 'start of month') \
           UNION ALL SELECT n + 1, date(start, '-1 month') FROM mon WHERE n + 1 < ?1) \
         SELECT strftime('%Y-%m', mon.start), \
           (SELECT COUNT(*) FROM members WHERE join_date >= mon.start AND join_date < date(mon.start, '+1 month')), \
           (SELECT COUNT(*) FROM members WHERE join_date < date(mon.start, '+1 month')) \
         FROM mon ORDER BY mon.start",
    )?;
    let rows: Vec<Value> = st
        .query_map([months], |r| {
            Ok(
                json!({ "month": r.get::<_, String>(0)?, "new_members": r.get::<_, i64>(1)?,
                       "cumulative_members": r.get::<_, i64>(2)? }),
            )
        })?
        .collect::<Result<_, _>>()?;
    Ok(json!({ "months": months, "trend": rows }))
}

/// `GET analytics/dashboard`.
pub(crate) fn analytics_dashboard(con: &Connection) -> Result<Value, DbError> {
    let last30 = count(
        con,
        "SELECT COUNT(*) FROM members WHERE join_date >= date('now', '-30 days')",
    )?;
    let prev30 = count(
        con,
        "SELECT COUNT(*) FROM members WHERE join_date >= date('now', '-60 days') AND join_date < date('now', '-30 days')",
    )?;
    let growth = if prev30 > 0 {
        Some(((last30 - prev30) as f64 / prev30 as f64 * 1000.0).round() / 10.0)
    } else {
        None
    };
    let top: Vec<Value> = con
        .prepare_cached(
            "SELECT p.code, p.name, COUNT(*) c FROM members m JOIN wards w ON w.id = m.ward_id \
             JOIN municipalities mu ON mu.id = w.municipality_id JOIN provinces p ON p.id = mu.province_id \
             GROUP BY p.id ORDER BY c DESC LIMIT 5",
        )?
        .query_map([], |r| {
            Ok(json!({ "province": r.get::<_, String>(0)?, "name": r.get::<_, String>(1)?, "members": r.get::<_, i64>(2)? }))
        })?
        .collect::<Result<_, _>>()?;
    Ok(json!({
        "total_members": count(con, "SELECT COUNT(*) FROM members")?,
        "active_members": count(con, "SELECT COUNT(*) FROM members WHERE status = 'active'")?,
        "new_members_last_30_days": last30,
        "new_members_previous_30_days": prev30,
        "growth_percent": growth,
        "top_provinces": top,
        "applications": grouped(con, "SELECT status, COUNT(*) FROM membership_applications GROUP BY status ORDER BY status", [])?,
        "members_by_status": grouped(con, "SELECT status, COUNT(*) FROM members GROUP BY status ORDER BY status", [])?,
    }))
}

/// Dimension for `analytics/membership`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum GroupBy {
    /// Per province code.
    Province,
    /// Per municipality name.
    Municipality,
    /// Per status.
    Status,
    /// Per gender.
    Gender,
    /// Per age group.
    Age,
}

impl GroupBy {
    /// Every dimension.
    #[cfg(test)]
    const ALL: [GroupBy; 5] = [
        GroupBy::Province,
        GroupBy::Municipality,
        GroupBy::Status,
        GroupBy::Gender,
        GroupBy::Age,
    ];

    /// The name serde uses for it (lowercase).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GroupBy::Province => "province",
            GroupBy::Municipality => "municipality",
            GroupBy::Status => "status",
            GroupBy::Gender => "gender",
            GroupBy::Age => "age",
        }
    }
}

/// `GET analytics/membership`: member counts grouped by a dimension, optionally for one
/// status.
pub(crate) fn analytics_membership(
    con: &Connection,
    group_by: GroupBy,
    status: Option<&str>,
) -> Result<Value, DbError> {
    let key = match group_by {
        GroupBy::Province => "p.code".to_string(),
        GroupBy::Municipality => "mu.name".to_string(),
        GroupBy::Status => "m.status".to_string(),
        GroupBy::Gender => "m.gender".to_string(),
        GroupBy::Age => age_group_sql(),
    };
    let sql = format!(
        "SELECT {key} AS k, COUNT(*) FROM members m JOIN wards w ON w.id = m.ward_id \
         JOIN municipalities mu ON mu.id = w.municipality_id JOIN provinces p ON p.id = mu.province_id \
         WHERE (?1 IS NULL OR m.status = ?1) GROUP BY k ORDER BY k"
    );
    Ok(json!({ "group_by": group_by, "status": status, "counts": grouped(con, &sql, [status])? }))
}

/// `GET analytics/comprehensive`: the heavy report.
pub fn analytics_comprehensive(con: &Connection) -> Result<Value, DbError> {
    let provinces: Vec<Value> = con
        .prepare_cached(&format!(
            "SELECT p.code, COUNT(*), SUM(m.status = 'active'), ROUND(AVG({AGE}), 1), \
             SUM(m.gender = 'female'), SUM(m.gender = 'male'), COUNT(DISTINCT m.ward_id) \
             FROM members m JOIN wards w ON w.id = m.ward_id JOIN municipalities mu ON mu.id = w.municipality_id \
             JOIN provinces p ON p.id = mu.province_id GROUP BY p.id ORDER BY p.code"
        ))?
        .query_map([], |r| {
            Ok(json!({
                "province": r.get::<_, String>(0)?, "members": r.get::<_, i64>(1)?,
                "active": r.get::<_, i64>(2)?, "average_age": r.get::<_, Option<f64>>(3)?,
                "female": r.get::<_, i64>(4)?, "male": r.get::<_, i64>(5)?, "wards_with_members": r.get::<_, i64>(6)?,
            }))
        })?
        .collect::<Result<_, _>>()?;
    let ward_sizes = con.query_row(
        "SELECT MIN(c), MAX(c), ROUND(AVG(c), 1) FROM (SELECT COUNT(*) c FROM members GROUP BY ward_id)",
        [],
        |r| Ok(json!({ "min": r.get::<_, Option<i64>>(0)?, "max": r.get::<_, Option<i64>>(1)?, "mean": r.get::<_, Option<f64>>(2)? })),
    )?;
    let decided = con.query_row(
        "SELECT SUM(status = 'approved'), SUM(status = 'rejected') FROM membership_applications",
        [],
        |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?.unwrap_or(0),
                r.get::<_, Option<i64>>(1)?.unwrap_or(0),
            ))
        },
    )?;
    let approval_rate = if decided.0 + decided.1 > 0 {
        Some((decided.0 as f64 / (decided.0 + decided.1) as f64 * 1000.0).round() / 10.0)
    } else {
        None
    };
    Ok(json!({
        "provinces": provinces,
        "joins_by_year": grouped(con, "SELECT substr(join_date, 1, 4) y, COUNT(*) FROM members GROUP BY y ORDER BY y", [])?,
        "age_by_gender": grouped(con, &format!("SELECT gender || ' ' || {} AS k, COUNT(*) FROM members GROUP BY k ORDER BY k", age_group_sql()), [])?,
        "ward_size": ward_sizes,
        "leadership": {
            "by_role": grouped(con, "SELECT role, COUNT(*) FROM ward_leadership GROUP BY role ORDER BY role", [])?,
            "wards_fully_staffed": count(con, "SELECT COUNT(*) FROM (SELECT ward_id FROM ward_leadership GROUP BY ward_id HAVING COUNT(*) = 4)")?,
        },
        "applications": {
            "by_status": grouped(con, "SELECT status, COUNT(*) FROM membership_applications GROUP BY status ORDER BY status", [])?,
            "approval_rate_percent": approval_rate,
        },
    }))
}

fn rows_to_values(
    con: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    cols: &[&str],
) -> Result<Vec<Value>, DbError> {
    let mut st = con.prepare_cached(sql)?;
    let n = cols.len();
    let rows = st.query_map(p, |r| {
        let mut obj = Map::new();
        for (i, c) in cols.iter().enumerate().take(n) {
            let v: rusqlite::types::Value = r.get(i)?;
            obj.insert(
                (*c).to_string(),
                match v {
                    rusqlite::types::Value::Integer(i) => json!(i),
                    rusqlite::types::Value::Real(f) => json!(f),
                    rusqlite::types::Value::Text(t) => json!(t),
                    _ => Value::Null,
                },
            );
        }
        Ok(Value::Object(obj))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `GET lookups/provinces`.
pub(crate) fn provinces(con: &Connection) -> Result<Value, DbError> {
    Ok(json!(rows_to_values(
        con,
        "SELECT id, code, name FROM provinces ORDER BY id",
        [],
        &["id", "code", "name"]
    )?))
}

/// `GET lookups/municipalities`, optionally within one province.
pub(crate) fn municipalities(con: &Connection, province_id: Option<i64>) -> Result<Value, DbError> {
    Ok(json!(rows_to_values(
        con,
        "SELECT id, name, province_id FROM municipalities WHERE (?1 IS NULL OR province_id = ?1) ORDER BY id",
        [province_id],
        &["id", "name", "province_id"]
    )?))
}

/// `GET lookups/wards`, optionally within one municipality.
pub(crate) fn wards(con: &Connection, municipality_id: Option<i64>) -> Result<Value, DbError> {
    Ok(json!(rows_to_values(
        con,
        "SELECT id, code, name, municipality_id FROM wards WHERE (?1 IS NULL OR municipality_id = ?1) ORDER BY id",
        [municipality_id],
        &["id", "code", "name", "municipality_id"]
    )?))
}

/// `GET lookups/statuses`.
pub(crate) fn statuses(con: &Connection) -> Result<Value, DbError> {
    Ok(json!(rows_to_values(
        con,
        "SELECT code, description FROM membership_statuses ORDER BY code",
        [],
        &["code", "description"]
    )?))
}

/// `GET wards/:id/leadership`.
pub(crate) fn ward_leadership(con: &Connection, ward_id: i64) -> Result<Value, DbError> {
    ward_exists(con, ward_id)?;
    Ok(json!({ "ward_id": ward_id, "leadership": rows_to_values(
        con,
        "SELECT l.role, l.member_id, m.first_name || ' ' || m.last_name, l.since FROM ward_leadership l \
         JOIN members m ON m.id = l.member_id WHERE l.ward_id = ?1 ORDER BY l.role",
        [ward_id],
        &["role", "member_id", "name", "since"]
    )?}))
}

/// `GET applications`: a page of applications, optionally with one status.
pub(crate) fn applications(
    con: &Connection,
    status: Option<&str>,
    page: u32,
    page_size: u32,
) -> Result<Value, DbError> {
    let offset = i64::from(page - 1) * i64::from(page_size);
    let total: i64 = con.query_row(
        "SELECT COUNT(*) FROM membership_applications WHERE (?1 IS NULL OR status = ?1)",
        [status],
        |r| r.get(0),
    )?;
    let items = rows_to_values(
        con,
        "SELECT id, id_number, first_name, last_name, ward_id, status, submitted_at, decided_at, reason, member_id \
         FROM membership_applications WHERE (?1 IS NULL OR status = ?1) ORDER BY id LIMIT ?2 OFFSET ?3",
        params![status, page_size, offset],
        &["id", "id_number", "first_name", "last_name", "ward_id", "status", "submitted_at", "decided_at", "reason", "member_id"],
    )?;
    Ok(json!({ "page": page, "page_size": page_size, "total": total, "applications": items }))
}

/// Fails with `Invalid` when the ward does not exist.
pub(crate) fn ward_exists(con: &Connection, ward_id: i64) -> Result<(), DbError> {
    let found: Option<i64> = con
        .prepare_cached("SELECT id FROM wards WHERE id = ?1")?
        .query_row([ward_id], |r| r.get(0))
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| DbError::NotFound(format!("ward {ward_id} does not exist")))
}

#[cfg(test)]
mod tests {
    use super::GroupBy;

    #[test]
    fn group_by_as_str_is_the_serde_name() {
        for g in GroupBy::ALL {
            assert_eq!(serde_json::to_value(g).unwrap(), g.as_str(), "{g:?}");
        }
    }
}
