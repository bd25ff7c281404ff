//! The cached routes' requests in canonical form ([`CachedRequest`]): parsed and validated
//! once, by the cache layer, and then used by the handler. Defaults are filled in, so
//! `ward-membership` and `ward-membership?limit=10` are one key, and numbers are parsed, so
//! `limit=05`, `limit=%35` and `limit=%2B5` are `limit=5`.

use axum::extract::rejection::RawPathParamsRejection;
use axum::http::Uri;
use serde::Deserialize;

use super::error::{parse_id, ApiError};
use super::extract::NoParams;
use crate::cache::keys::{tags, variant, CacheKind};
use crate::cache::request::CachedRequest;
use crate::db::generate::valid_id_number;
use crate::db::queries::GroupBy;
use crate::db::writes::check_status;

/// Province codes accepted by `province=` filters.
pub(crate) const PROVINCE_CODES: [&str; 9] =
    ["EC", "FS", "GP", "KZN", "LP", "MP", "NC", "NW", "WC"];

impl From<RawPathParamsRejection> for ApiError {
    fn from(r: RawPathParamsRejection) -> Self {
        ApiError::new(r.status(), r.body_text())
    }
}

/// Deserializes the query of `uri` into `T`; unknown, repeated or mistyped parameters are
/// 400 errors naming the problem.
fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|r| ApiError::new(r.status(), r.body_text()))
}

fn param<'a>(params: &[(&str, &'a str)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .unwrap_or_default()
}

/// `v` if it lies in `lo..=hi`, else a 400 naming `name` and the range.
pub(crate) fn check_range(name: &str, v: u32, lo: u32, hi: u32) -> Result<u32, ApiError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::bad_request(format!(
            "{name}: must be between {lo} and {hi} (got {v})"
        )))
    }
}

fn positive(name: &str, v: Option<i64>) -> Result<Option<i64>, ApiError> {
    match v {
        Some(n) if n <= 0 => Err(ApiError::bad_request(format!(
            "{name}: must be a positive integer (got {n})"
        ))),
        other => Ok(other),
    }
}

/// A route without parameters: any query parameter is rejected.
#[derive(Debug, Clone, Copy)]
pub struct Plain;

impl CachedRequest for Plain {
    type Rejection = ApiError;
    fn parse(_: &[(&str, &str)], uri: &Uri) -> Result<Self, ApiError> {
        query::<NoParams>(uri).map(|_| Plain)
    }
}

/// `statistics/ward-membership?limit=1..100&province=CODE`.
#[derive(Debug, Clone)]
pub struct WardMembership {
    /// Wards to list (default 10).
    pub limit: u32,
    /// Only this province.
    pub province: Option<String>,
}

impl CachedRequest for WardMembership {
    type Rejection = ApiError;
    fn parse(_: &[(&str, &str)], uri: &Uri) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            limit: Option<u32>,
            province: Option<String>,
        }
        let raw: Raw = query(uri)?;
        let limit = check_range("limit", raw.limit.unwrap_or(10), 1, 100)?;
        if let Some(code) = &raw.province {
            if !PROVINCE_CODES.contains(&code.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "province: must be one of {} (got {code:?})",
                    PROVINCE_CODES.join(", ")
                )));
            }
        }
        Ok(Self {
            limit,
            province: raw.province,
        })
    }
    fn variant(&self) -> String {
        let mut pairs = vec![("limit", self.limit.to_string())];
        pairs.extend(self.province.clone().map(|p| ("province", p)));
        variant(&pairs)
    }
}

/// `statistics/membership-trends?months=1..24`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trends {
    /// Months back (default 6).
    pub months: u32,
}

impl CachedRequest for Trends {
    type Rejection = ApiError;
    fn parse(_: &[(&str, &str)], uri: &Uri) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            months: Option<u32>,
        }
        let raw: Raw = query(uri)?;
        Ok(Self {
            months: check_range("months", raw.months.unwrap_or(6), 1, 24)?,
        })
    }
    fn variant(&self) -> String {
        variant(&[("months", self.months.to_string())])
    }
}

/// `analytics/membership?group_by=province|municipality|status|gender|age&status=..`.
#[derive(Debug, Clone)]
pub(crate) struct Membership {
    /// Dimension (default province).
    pub group_by: GroupBy,
    /// Only this status.
    pub status: Option<String>,
}

impl CachedRequest for Membership {
    type Rejection = ApiError;
    fn parse(_: &[(&str, &str)], uri: &Uri) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            group_by: Option<GroupBy>,
            status: Option<String>,
        }
        let raw: Raw = query(uri)?;
        if let Some(st) = &raw.status {
            check_status(st)?;
        }
        Ok(Self {
            group_by: raw.group_by.unwrap_or(GroupBy::Province),
            status: raw.status,
        })
    }
    fn variant(&self) -> String {
        let mut pairs = vec![("group_by", self.group_by.as_str().to_string())];
        pairs.extend(self.status.clone().map(|s| ("status", s)));
        variant(&pairs)
    }
}

/// `lookups/municipalities?province_id=`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Municipalities {
    /// Only this province.
    pub province_id: Option<i64>,
}

impl CachedRequest for Municipalities {
    type Rejection = ApiError;
    fn parse(_: &[(&str, &str)], uri: &Uri) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            province_id: Option<i64>,
        }
        let raw: Raw = query(uri)?;
        Ok(Self {
            province_id: positive("province_id", raw.province_id)?,
        })
    }
    fn variant(&self) -> String {
        variant(&Vec::from_iter(
            self.province_id.map(|p| ("province_id", p.to_string())),
        ))
    }
}

/// `lookups/wards?municipality_id=`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wards {
    /// Only this municipality.
    pub municipality_id: Option<i64>,
}

impl CachedRequest for Wards {
    type Rejection = ApiError;
    fn parse(_: &[(&str, &str)], uri: &Uri) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            municipality_id: Option<i64>,
        }
        let raw: Raw = query(uri)?;
        Ok(Self {
            municipality_id: positive("municipality_id", raw.municipality_id)?,
        })
    }
    fn variant(&self) -> String {
        variant(&Vec::from_iter(
            self.municipality_id
                .map(|m| ("municipality_id", m.to_string())),
        ))
    }
}

/// `members/{id}`: the member id as a number (`0042` and `%34%32` are member 42).
#[derive(Debug, Clone, Copy)]
pub struct MemberId(pub i64);

impl CachedRequest for MemberId {
    type Rejection = ApiError;
    fn parse(params: &[(&str, &str)], uri: &Uri) -> Result<Self, ApiError> {
        query::<NoParams>(uri)?;
        parse_id(param(params, "id"), "member id").map(MemberId)
    }
    fn path(&self, route: &'static str) -> String {
        route.replace("{id}", &self.0.to_string())
    }
    fn tags(&self, _: CacheKind) -> Vec<String> {
        vec![tags::member(self.0)]
    }
}

/// `members/by-id-number/{id_number}`: a valid 13-digit ID number.
#[derive(Debug, Clone)]
pub(crate) struct IdNumber(pub String);

impl CachedRequest for IdNumber {
    type Rejection = ApiError;
    fn parse(params: &[(&str, &str)], uri: &Uri) -> Result<Self, ApiError> {
        query::<NoParams>(uri)?;
        let raw = param(params, "id_number");
        if !valid_id_number(raw) {
            return Err(ApiError::bad_request(format!(
                "invalid ID number {raw:?}: must be 13 digits with a valid date and check digit"
            )));
        }
        Ok(IdNumber(raw.to_string()))
    }
    fn path(&self, route: &'static str) -> String {
        route.replace("{id_number}", &self.0)
    }
    fn tags(&self, _: CacheKind) -> Vec<String> {
        vec![tags::member_id_number(&self.0)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<R: CachedRequest<Rejection = ApiError>>(
        params: &[(&str, &str)],
        uri: &str,
    ) -> Result<R, ApiError> {
        R::parse(params, &uri.parse().unwrap())
    }

    #[test]
    fn equivalent_spellings_share_one_variant() {
        let v = |q: &str| {
            parse::<WardMembership>(&[], &format!("/x{q}"))
                .unwrap()
                .variant()
        };
        assert_eq!(v("?limit=05"), "limit=5");
        assert_eq!(v("?limit=%35"), "limit=5");
        assert_eq!(v("?limit=%2B5"), "limit=5");
        assert_eq!(v(""), v("?limit=10"));
        assert_eq!(v("?province=G%50&limit=5"), v("?limit=5&province=GP"));
        assert_eq!(
            parse::<Trends>(&[], "/x").unwrap().variant(),
            parse::<Trends>(&[], "/x?months=6").unwrap().variant()
        );
        assert_eq!(
            parse::<Membership>(&[], "/x?status=active&group_by=gender")
                .unwrap()
                .variant(),
            "group_by=gender&status=active"
        );
    }

    #[test]
    fn members_are_canonical_numbers_and_tagged_by_them() {
        let m = parse::<MemberId>(&[("id", "0042")], "/x").unwrap();
        assert_eq!(m.path("/api/v1/members/{id}"), "/api/v1/members/42");
        assert_eq!(m.tags(CacheKind::Member), ["member:42"]);
        assert!(parse::<MemberId>(&[("id", "-1")], "/x").is_err());
        assert!(parse::<MemberId>(&[("id", "1")], "/x?x=1").is_err());
    }

    #[test]
    fn values_the_handler_rejects_are_rejected_before_any_key_exists() {
        assert!(parse::<WardMembership>(&[], "/x?limit=0").is_err());
        assert!(parse::<WardMembership>(&[], "/x?limit=5&limit=6").is_err());
        assert!(parse::<WardMembership>(&[], "/x?province=XX").is_err());
        assert!(parse::<Plain>(&[], "/x?a=1").is_err());
        assert!(parse::<Wards>(&[], "/x?municipality_id=0").is_err());
        assert!(parse::<IdNumber>(&[("id_number", "123")], "/x").is_err());
    }
}
