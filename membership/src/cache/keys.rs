//! Cache configurations per route kind, and the key format
//! `<REDIS_KEY_PREFIX><type>:<path>:<variant>` (variant = normalised query, or `default`).

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

    /// Invalidation tags of an entry at `path`: the writes that make it stale invalidate
    /// one of these. Member entries are tagged by the id or ID number in their path.
    pub fn tags(self, path: &str) -> Vec<String> {
        let last = path.rsplit('/').next().unwrap_or_default();
        match self {
            CacheKind::Statistics => vec![tags::STATISTICS.into()],
            CacheKind::Analytics | CacheKind::AnalyticsLong => vec![tags::ANALYTICS.into()],
            CacheKind::Member => vec![tags::member(last.parse().unwrap_or(-1))],
            CacheKind::MemberByIdNumber => vec![tags::member_id_number(last)],
            CacheKind::Lookup => vec![tags::LOOKUP.into()],
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

/// Sorts and joins the query's `name=value` pairs; `default` when there are none.
pub fn variant(query: Option<&str>) -> String {
    let mut pairs: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    if pairs.is_empty() {
        return "default".into();
    }
    pairs.sort_unstable();
    pairs.join("&")
}

/// The full cache key of a request.
pub fn cache_key(prefix: &str, kind: CacheKind, path: &str, query: Option<&str>) -> String {
    format!("{prefix}{}:{path}:{}", kind.type_name(), variant(query))
}

/// Key holding a tag's version counter.
pub fn version_key(prefix: &str, tag: &str) -> String {
    format!("{prefix}tagver:{tag}")
}

/// Key of the set of cache keys carrying a tag.
pub fn tag_set_key(prefix: &str, tag: &str) -> String {
    format!("{prefix}tags:{tag}")
}

/// Escapes glob metacharacters so `s` matches itself in a SCAN MATCH pattern.
pub fn glob_escape(s: &str) -> String {
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
                None
            ),
            "membership:statistics:/api/v1/statistics/system:default"
        );
    }

    #[test]
    fn query_order_does_not_change_the_key() {
        assert_eq!(variant(Some("b=2&a=1")), variant(Some("a=1&b=2")));
        assert_eq!(variant(Some("")), "default");
        assert_eq!(variant(Some("a=1&&")), "a=1");
    }

    #[test]
    fn member_tags_come_from_the_path() {
        assert_eq!(CacheKind::Member.tags("/api/v1/members/42"), ["member:42"]);
        assert_eq!(
            CacheKind::MemberByIdNumber.tags("/api/v1/members/by-id-number/9001015009087"),
            ["member-idn:9001015009087"]
        );
    }

    #[test]
    fn glob_escape_neutralises_metacharacters() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
