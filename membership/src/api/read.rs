//! Read routes: statistics, analytics, members and lookups (cached), plus the uncached
//! member, application and leadership listings.

use axum::extract::{Path, State};
use axum::Json as AxumJson;
use serde::Deserialize;
use serde_json::Value;

use super::error::{parse_id, ApiError};
use super::extract::Query;
use super::params::{
    check_range, IdNumber, MemberId, Membership, Municipalities, Plain, Trends, WardMembership,
    Wards,
};
use super::AppState;
use crate::cache::request::Parsed;
use crate::db::queries::{self, Member};
use crate::db::writes::check_status;

type Reply<T = Value> = Result<AxumJson<T>, ApiError>;

/// `GET statistics/system`.
pub(crate) async fn system(State(s): State<AppState>, _: Parsed<Plain>) -> Reply {
    Ok(AxumJson(s.db.read(queries::system_statistics).await?))
}

/// `GET statistics/demographics`.
pub(crate) async fn demographics(State(s): State<AppState>, _: Parsed<Plain>) -> Reply {
    Ok(AxumJson(s.db.read(queries::demographics).await?))
}

/// `GET statistics/ward-membership?limit=1..100&province=CODE`.
pub(crate) async fn ward_membership(
    State(s): State<AppState>,
    Parsed(p): Parsed<WardMembership>,
) -> Reply {
    Ok(AxumJson(
        s.db.read(move |c| queries::ward_membership(c, p.limit, p.province.as_deref()))
            .await?,
    ))
}

/// `GET statistics/membership-trends?months=1..24`.
pub(crate) async fn trends(State(s): State<AppState>, Parsed(p): Parsed<Trends>) -> Reply {
    Ok(AxumJson(
        s.db.read(move |c| queries::membership_trends(c, p.months))
            .await?,
    ))
}

/// `GET analytics/dashboard`.
pub(crate) async fn dashboard(State(s): State<AppState>, _: Parsed<Plain>) -> Reply {
    Ok(AxumJson(s.db.read(queries::analytics_dashboard).await?))
}

/// `GET analytics/membership?group_by=province|municipality|status|gender|age&status=..`.
pub(crate) async fn membership(State(s): State<AppState>, Parsed(p): Parsed<Membership>) -> Reply {
    Ok(AxumJson(
        s.db.read(move |c| queries::analytics_membership(c, p.group_by, p.status.as_deref()))
            .await?,
    ))
}

/// `GET analytics/comprehensive`.
pub(crate) async fn comprehensive(State(s): State<AppState>, _: Parsed<Plain>) -> Reply {
    Ok(AxumJson(s.db.read(queries::analytics_comprehensive).await?))
}

/// `GET members/:id`.
pub(crate) async fn member(
    State(s): State<AppState>,
    Parsed(MemberId(id)): Parsed<MemberId>,
) -> Reply<Member> {
    Ok(AxumJson(
        s.db.read(move |c| queries::member_by_id(c, id)).await?,
    ))
}

/// `GET members/by-id-number/:id_number`.
pub(crate) async fn member_by_id_number(
    State(s): State<AppState>,
    Parsed(IdNumber(idn)): Parsed<IdNumber>,
) -> Reply<Member> {
    Ok(AxumJson(
        s.db.read(move |c| queries::member_by_id_number(c, &idn))
            .await?,
    ))
}

/// Query of the paged listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    page: Option<u32>,
    page_size: Option<u32>,
    ward_id: Option<i64>,
    status: Option<String>,
}

fn page(p: &PageParams) -> Result<(u32, u32), ApiError> {
    let page = p.page.unwrap_or(1);
    if page == 0 || page > 1_000_000 {
        return Err(ApiError::bad_request(format!(
            "page: must be between 1 and 1000000 (got {page})"
        )));
    }
    Ok((
        page,
        check_range("page_size", p.page_size.unwrap_or(20), 1, 100)?,
    ))
}

/// `GET members?page&page_size&ward_id&status` (not cached).
pub(crate) async fn list_members(State(s): State<AppState>, Query(p): Query<PageParams>) -> Reply {
    let (pg, size) = page(&p)?;
    if let Some(st) = &p.status {
        check_status(st)?;
    }
    Ok(AxumJson(
        s.db.read(move |c| queries::list_members(c, p.ward_id, p.status.as_deref(), pg, size))
            .await?,
    ))
}

/// `GET applications?status&page&page_size` (not cached).
pub(crate) async fn list_applications(
    State(s): State<AppState>,
    Query(p): Query<PageParams>,
) -> Reply {
    let (pg, size) = page(&p)?;
    if p.ward_id.is_some() {
        return Err(ApiError::bad_request(
            "ward_id: not a filter of applications",
        ));
    }
    if let Some(st) = &p.status {
        if !["pending", "approved", "rejected"].contains(&st.as_str()) {
            return Err(ApiError::bad_request(format!(
                "status: must be pending, approved or rejected (got {st:?})"
            )));
        }
    }
    Ok(AxumJson(
        s.db.read(move |c| queries::applications(c, p.status.as_deref(), pg, size))
            .await?,
    ))
}

/// `GET wards/:ward_id/leadership` (not cached).
pub(crate) async fn leadership(State(s): State<AppState>, Path(raw): Path<String>) -> Reply {
    let id = parse_id(&raw, "ward id")?;
    Ok(AxumJson(
        s.db.read(move |c| queries::ward_leadership(c, id)).await?,
    ))
}

/// `GET lookups/provinces`.
pub(crate) async fn provinces(State(s): State<AppState>, _: Parsed<Plain>) -> Reply {
    Ok(AxumJson(s.db.read(queries::provinces).await?))
}

/// `GET lookups/municipalities?province_id=`.
pub(crate) async fn municipalities(
    State(s): State<AppState>,
    Parsed(p): Parsed<Municipalities>,
) -> Reply {
    Ok(AxumJson(
        s.db.read(move |c| queries::municipalities(c, p.province_id))
            .await?,
    ))
}

/// `GET lookups/wards?municipality_id=`.
pub(crate) async fn wards(State(s): State<AppState>, Parsed(p): Parsed<Wards>) -> Reply {
    Ok(AxumJson(
        s.db.read(move |c| queries::wards(c, p.municipality_id))
            .await?,
    ))
}

/// `GET lookups/statuses`.
pub(crate) async fn statuses(State(s): State<AppState>, _: Parsed<Plain>) -> Reply {
    Ok(AxumJson(s.db.read(queries::statuses).await?))
}
