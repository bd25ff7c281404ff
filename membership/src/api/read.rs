//! Read routes: statistics, analytics, members and lookups (cached), plus the uncached
//! member, application and leadership listings.

use axum::extract::{Path, State};
use axum::Json as AxumJson;
use serde::Deserialize;
use serde_json::Value;

use super::error::{parse_id, ApiError};
use super::extract::{NoParams, Query};
use super::AppState;
use crate::db::generate::valid_id_number;
use crate::db::queries::{self, GroupBy, Member};
use crate::db::writes::check_status;

type Reply<T = Value> = Result<AxumJson<T>, ApiError>;

/// Province codes accepted by `province=` filters.
const PROVINCE_CODES: [&str; 9] = ["EC", "FS", "GP", "KZN", "LP", "MP", "NC", "NW", "WC"];

fn check_range(name: &str, v: u32, lo: u32, hi: u32) -> Result<u32, ApiError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::bad_request(format!(
            "{name}: must be between {lo} and {hi} (got {v})"
        )))
    }
}

/// `GET statistics/system`.
pub async fn system(State(s): State<AppState>, _: Query<NoParams>) -> Reply {
    Ok(AxumJson(s.db.read(queries::system_statistics).await?))
}

/// `GET statistics/demographics`.
pub async fn demographics(State(s): State<AppState>, _: Query<NoParams>) -> Reply {
    Ok(AxumJson(s.db.read(queries::demographics).await?))
}

/// Query of `statistics/ward-membership`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WardParams {
    limit: Option<u32>,
    province: Option<String>,
}

/// `GET statistics/ward-membership?limit=1..100&province=CODE`.
pub async fn ward_membership(State(s): State<AppState>, Query(p): Query<WardParams>) -> Reply {
    let limit = check_range("limit", p.limit.unwrap_or(10), 1, 100)?;
    if let Some(code) = &p.province {
        if !PROVINCE_CODES.contains(&code.as_str()) {
            return Err(ApiError::bad_request(format!(
                "province: must be one of {} (got {code:?})",
                PROVINCE_CODES.join(", ")
            )));
        }
    }
    Ok(AxumJson(
        s.db.read(move |c| queries::ward_membership(c, limit, p.province.as_deref()))
            .await?,
    ))
}

/// Query of `statistics/membership-trends`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendParams {
    months: Option<u32>,
}

/// `GET statistics/membership-trends?months=1..24`.
pub async fn trends(State(s): State<AppState>, Query(p): Query<TrendParams>) -> Reply {
    let months = check_range("months", p.months.unwrap_or(6), 1, 24)?;
    Ok(AxumJson(
        s.db.read(move |c| queries::membership_trends(c, months))
            .await?,
    ))
}

/// `GET analytics/dashboard`.
pub async fn dashboard(State(s): State<AppState>, _: Query<NoParams>) -> Reply {
    Ok(AxumJson(s.db.read(queries::analytics_dashboard).await?))
}

/// Query of `analytics/membership`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipParams {
    group_by: Option<GroupBy>,
    status: Option<String>,
}

/// `GET analytics/membership?group_by=province|municipality|status|gender|age&status=..`.
pub async fn membership(State(s): State<AppState>, Query(p): Query<MembershipParams>) -> Reply {
    if let Some(st) = &p.status {
        check_status(st)?;
    }
    let g = p.group_by.unwrap_or(GroupBy::Province);
    Ok(AxumJson(
        s.db.read(move |c| queries::analytics_membership(c, g, p.status.as_deref()))
            .await?,
    ))
}

/// `GET analytics/comprehensive`.
pub async fn comprehensive(State(s): State<AppState>, _: Query<NoParams>) -> Reply {
    Ok(AxumJson(s.db.read(queries::analytics_comprehensive).await?))
}

/// `GET members/:id`.
pub async fn member(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    _: Query<NoParams>,
) -> Reply<Member> {
    let id = parse_id(&raw, "member id")?;
    Ok(AxumJson(
        s.db.read(move |c| queries::member_by_id(c, id)).await?,
    ))
}

/// `GET members/by-id-number/:id_number`.
pub async fn member_by_id_number(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    _: Query<NoParams>,
) -> Reply<Member> {
    if !valid_id_number(&raw) {
        return Err(ApiError::bad_request(format!(
            "invalid ID number {raw:?}: must be 13 digits with a valid date and check digit"
        )));
    }
    Ok(AxumJson(
        s.db.read(move |c| queries::member_by_id_number(c, &raw))
            .await?,
    ))
}

/// Query of the paged listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
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
pub async fn list_members(State(s): State<AppState>, Query(p): Query<PageParams>) -> Reply {
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
pub async fn list_applications(State(s): State<AppState>, Query(p): Query<PageParams>) -> Reply {
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
pub async fn leadership(State(s): State<AppState>, Path(raw): Path<String>) -> Reply {
    let id = parse_id(&raw, "ward id")?;
    Ok(AxumJson(
        s.db.read(move |c| queries::ward_leadership(c, id)).await?,
    ))
}

/// `GET lookups/provinces`.
pub async fn provinces(State(s): State<AppState>, _: Query<NoParams>) -> Reply {
    Ok(AxumJson(s.db.read(queries::provinces).await?))
}

/// Query of `lookups/municipalities`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MunicipalityParams {
    province_id: Option<i64>,
}

/// `GET lookups/municipalities?province_id=`.
pub async fn municipalities(
    State(s): State<AppState>,
    Query(p): Query<MunicipalityParams>,
) -> Reply {
    Ok(AxumJson(
        s.db.read(move |c| queries::municipalities(c, p.province_id))
            .await?,
    ))
}

/// Query of `lookups/wards`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WardLookupParams {
    municipality_id: Option<i64>,
}

/// `GET lookups/wards?municipality_id=`.
pub async fn wards(State(s): State<AppState>, Query(p): Query<WardLookupParams>) -> Reply {
    Ok(AxumJson(
        s.db.read(move |c| queries::wards(c, p.municipality_id))
            .await?,
    ))
}

/// `GET lookups/statuses`.
pub async fn statuses(State(s): State<AppState>, _: Query<NoParams>) -> Reply {
    Ok(AxumJson(s.db.read(queries::statuses).await?))
}
