//! Write routes. Each commits its transaction together with the matching invalidation
//! hook's tags (the outbox), then awaits the invalidation, then answers, so no read issued
//! after the answer can see data from before the write, even when Redis was unreachable.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json as AxumJson;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{parse_id, ApiError};
use super::extract::Json;
use super::AppState;
use crate::cache::invalidation::{self, Invalidation, MemberAction};
use crate::db::queries;
use crate::db::writes::{self, MemberUpdate, NewMember};
use crate::db::DbError;

type Reply = Result<(StatusCode, AxumJson<Value>), ApiError>;

/// Most members one bulk import may carry.
pub(crate) const MAX_BULK: usize = 10_000;

/// Runs `f` as one write with its invalidation (see [`invalidation::write`]).
async fn write<T, F>(s: &AppState, f: F) -> Result<(T, Invalidation), ApiError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Transaction<'_>) -> Result<(T, Vec<String>), DbError> + Send + 'static,
{
    Ok(invalidation::write(&s.db, &s.cache, f).await?)
}

fn id_number_of(tx: &rusqlite::Transaction<'_>, id: i64) -> Result<String, DbError> {
    use rusqlite::OptionalExtension;
    tx.query_row("SELECT id_number FROM members WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| DbError::NotFound(format!("member {id} not found")))
}

/// `POST members`.
pub(crate) async fn create_member(State(s): State<AppState>, Json(m): Json<NewMember>) -> Reply {
    let (id, inv) = write(&s, move |tx| {
        let id = writes::create_member(tx, &m)?;
        let tags = invalidation::on_member_change(MemberAction::Create, id, &m.id_number, true);
        Ok((id, tags))
    })
    .await?;
    let member = s.db.read(move |c| queries::member_by_id(c, id)).await?;
    Ok((
        StatusCode::CREATED,
        AxumJson(json!({ "member": member, "invalidation": inv })),
    ))
}

/// `PUT members/:id` with the fields to change.
pub(crate) async fn update_member(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Json(u): Json<MemberUpdate>,
) -> Reply {
    let id = parse_id(&raw, "member id")?;
    let counted = u.changes_counted_fields();
    let ((), inv) = write(&s, move |tx| {
        let idn = id_number_of(tx, id)?;
        writes::update_member(tx, id, &u)?;
        let tags = invalidation::on_member_change(MemberAction::Update, id, &idn, counted);
        Ok(((), tags))
    })
    .await?;
    let member = s.db.read(move |c| queries::member_by_id(c, id)).await?;
    Ok((
        StatusCode::OK,
        AxumJson(json!({ "member": member, "invalidation": inv })),
    ))
}

/// `DELETE members/:id`.
pub(crate) async fn delete_member(State(s): State<AppState>, Path(raw): Path<String>) -> Reply {
    let id = parse_id(&raw, "member id")?;
    let ((), inv) = write(&s, move |tx| {
        let idn = id_number_of(tx, id)?;
        writes::delete_member(tx, id)?;
        let tags = invalidation::on_member_change(MemberAction::Delete, id, &idn, true);
        Ok(((), tags))
    })
    .await?;
    Ok((
        StatusCode::OK,
        AxumJson(json!({ "deleted": id, "invalidation": inv })),
    ))
}

/// `POST members/bulk-import`: a JSON array of members, imported all-or-nothing.
pub(crate) async fn bulk_import(
    State(s): State<AppState>,
    Json(items): Json<Vec<NewMember>>,
) -> Reply {
    if items.is_empty() {
        return Err(ApiError::bad_request("the import holds no members"));
    }
    if items.len() > MAX_BULK {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "at most {MAX_BULK} members per import (got {})",
                items.len()
            ),
        ));
    }
    let (ids, inv) = write(&s, move |tx| {
        let ids = writes::bulk_import(tx, &items)?;
        let tags = invalidation::on_bulk_operation();
        Ok((ids, tags))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        AxumJson(
            json!({ "imported": ids.len(), "first_id": ids.first(), "last_id": ids.last(), "invalidation": inv }),
        ),
    ))
}

/// `POST applications`.
pub(crate) async fn submit_application(
    State(s): State<AppState>,
    Json(m): Json<NewMember>,
) -> Reply {
    let (id, inv) = write(&s, move |tx| {
        let id = writes::submit_application(tx, &m)?;
        let tags = invalidation::on_membership_application_change(None);
        Ok((id, tags))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        AxumJson(json!({ "application_id": id, "status": "pending", "invalidation": inv })),
    ))
}

/// `POST applications/:id/approve`: creates the member.
pub(crate) async fn approve_application(
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Reply {
    let id = parse_id(&raw, "application id")?;
    let (member_id, inv) = write(&s, move |tx| {
        let member_id = writes::approve_application(tx, id)?;
        let idn = id_number_of(tx, member_id)?;
        let tags = invalidation::on_membership_application_change(Some((member_id, &idn)));
        Ok((member_id, tags))
    })
    .await?;
    Ok((
        StatusCode::OK,
        AxumJson(
            json!({ "application_id": id, "status": "approved", "member_id": member_id, "invalidation": inv }),
        ),
    ))
}

/// Body of a rejection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reject {
    reason: Option<String>,
}

/// `POST applications/:id/reject` with `{"reason": ...}` (may be `{}`).
pub(crate) async fn reject_application(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Json(r): Json<Reject>,
) -> Reply {
    let id = parse_id(&raw, "application id")?;
    let ((), inv) = write(&s, move |tx| {
        writes::reject_application(tx, id, r.reason.as_deref())?;
        let tags = invalidation::on_membership_application_change(None);
        Ok(((), tags))
    })
    .await?;
    Ok((
        StatusCode::OK,
        AxumJson(json!({ "application_id": id, "status": "rejected", "invalidation": inv })),
    ))
}

/// Body of a leadership change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Leader {
    member_id: i64,
}

/// `PUT wards/:ward_id/leadership/:role` with `{"member_id": ...}`.
pub(crate) async fn change_leadership(
    State(s): State<AppState>,
    Path((ward_raw, role)): Path<(String, String)>,
    Json(l): Json<Leader>,
) -> Reply {
    let ward = parse_id(&ward_raw, "ward id")?;
    let member = l.member_id;
    let r = role.clone();
    let (leaders, inv) = write(&s, move |tx| {
        let previous = writes::change_leadership(tx, ward, &r, member)?;
        let mut out = vec![(member, id_number_of(tx, member)?)];
        if let Some(p) = previous.filter(|p| *p != member) {
            out.push((p, id_number_of(tx, p)?));
        }
        let tags = invalidation::on_leadership_change(&out);
        Ok((out, tags))
    })
    .await?;
    let previous = leaders.get(1).map(|l| l.0);
    Ok((
        StatusCode::OK,
        AxumJson(
            json!({ "ward_id": ward, "role": role, "member_id": member, "previous_member_id": previous, "invalidation": inv }),
        ),
    ))
}
