//! Cache configurations per route kind, and the key format
//! `<REDIS_KEY_PREFIX><type>:<path>:<variant>`. Path and variant are canonical: built from the
//! parsed request (see [`super::request::CachedRequest`]), so every spelling of one resource
//! (`members/0042`, `members/%34%32`, `limit=05`, `limit=%2B5`) has one key.

use serde::Serialize;

use crate::config::CacheTtls;

/// The cache configurations of the seeds' middleware (STATISTICS, ANALYTICS, MEMBER,
/// LOOKUP), with the long-TTL variants DESIGN.md names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheKind {
    /// `statistics/*`, CACHE_STATISTICS_TTL.
    Statistics,
    /// `analytics/dashboard`, `analytics/membership`, CACHE_ANALYTICS_TTL.
    Analytics,
    /// `analytics/comprehensive`, CACHE_ANALYTICS_LONG_TTL.
    AnalyticsLong,
    /// `members/:id`, CACHE_MEMBER_TTL.
    Member,
    /// `members/by-id-number/:id_number`, CACHE_MEMBER_LONG_TTL.
    MemberByIdNumber,
    /// `lookups/*`, CACHE_LOOKUP_TTL.
    Lookup,
}

impl CacheKind {
    /// The `<type>` segment of the key.
    pub fn type_name(self) -> &'static str {
        match self {
            CacheKind::Statistics => "statistics",
            CacheKind::Analytics | CacheKind::AnalyticsLong => "analytics",
            CacheKind::Member | CacheKind::MemberByIdNumber => "member",
            CacheKind::Lookup => "lookup",
        }
    }

    /// Time to live in seconds.
    pub fn ttl(self, ttls: &CacheTtls) -> u64 {
        match self {
            CacheKind::Statistics => ttls.statistics,
            CacheKind::Analytics => ttls.analytics,
            CacheKind::AnalyticsLong => ttls.analytics_long,
            CacheKind::Member => ttls.member,
            CacheKind::MemberByIdNumber => ttls.member_long,
            CacheKind::Lookup => ttls.lookup,
        }
    }

    /// Invalidation tags of the route kinds whose entries depend on a whole area
    /// (statistics, analytics, lookups); member entries are tagged by their parsed member.
    pub fn area_tags(self) -> Vec<String> {
        match self {
            CacheKind::Statistics => vec![tags::STATISTICS.into()],
            CacheKind::Analytics | CacheKind::AnalyticsLong => vec![tags::ANALYTICS.into()],
            CacheKind::Lookup => vec![tags::LOOKUP.into()],
            CacheKind::Member | CacheKind::MemberByIdNumber => Vec::new(),
        }
    }
}

/// Tag names.
pub mod tags {
    /// Everything under `statistics/`.
    pub const STATISTICS: &str = "statistics";
    /// Everything under `analytics/`.
    pub const ANALYTICS: &str = "analytics";
    /// Everything under `lookups/`.
    pub const LOOKUP: &str = "lookup";

    /// `members/:id` of one member.
    pub fn member(id: i64) -> String {
        format!("member:{id}")
    }

    /// `members/by-id-number/:id_number` of one member.
    pub fn member_id_number(id_number: &str) -> String {
        format!("member-idn:{id_number}")
    }
}

/// Joins canonical `name=value` pairs (already parsed and in a fixed order); `default`
/// when there are none.
pub(crate) fn variant(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return "default".into();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The full cache key of a canonical path and variant.
pub fn cache_key(prefix: &str, kind: CacheKind, path: &str, variant: &str) -> String {
    format!("{prefix}{}:{path}:{variant}", kind.type_name())
}

/// Key holding a tag's version (a random value an invalidation replaces).
pub(crate) fn version_key(prefix: &str, tag: &str) -> String {
    format!("{prefix}tagver:{tag}")
}

/// Key of the set of cache keys carrying a tag.
pub(crate) fn tag_set_key(prefix: &str, tag: &str) -> String {
    format!("{prefix}tags:{tag}")
}

/// Escapes glob metacharacters so `s` matches itself in a SCAN MATCH pattern.
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_matches_the_seeds_example() {
        assert_eq!(
            cache_key(
                "membership:",
                CacheKind::Statistics,
                "/api/v1/statistics/system",
                &variant(&[])
            ),
            "membership:statistics:/api/v1/statistics/system:default"
        );
    }

    #[test]
    fn variants_join_canonical_pairs() {
        assert_eq!(variant(&[]), "default");
        assert_eq!(
            variant(&[("limit", "5".into()), ("province", "GP".into())]),
            "limit=5&province=GP"
        );
    }

    #[test]
    fn area_tags_per_kind() {
        assert_eq!(CacheKind::Statistics.area_tags(), ["statistics"]);
        assert_eq!(CacheKind::AnalyticsLong.area_tags(), ["analytics"]);
        assert!(CacheKind::Member.area_tags().is_empty());
    }

    #[test]
    fn glob_escape_neutralises_metacharacters() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
