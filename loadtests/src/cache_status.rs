//! What a response says about the cache: a header, and which of its values mean a hit, a
//! miss or a bypass. Every HTTP cache has its own vocabulary (nginx's
//! `$upstream_cache_status`, Varnish's `Age`, a CDN's `cf-cache-status`), so the mapping is
//! configurable, with presets for the common ones.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How one response counts towards the hit rate.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CacheClass {
    /// Served from the cache.
    Hit,
    /// Fetched from the origin (and stored).
    Miss,
    /// The cache was skipped.
    Bypass,
    /// A value the vocabulary does not name: reported, not counted.
    Other,
    /// No cache status at all (an uncached route, an error, no response): not counted.
    #[default]
    None,
}

impl CacheClass {
    /// Lower-case name, as in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheClass::Hit => "hit",
            CacheClass::Miss => "miss",
            CacheClass::Bypass => "bypass",
            CacheClass::Other => "other",
            CacheClass::None => "none",
        }
    }
}

/// The cache-status vocabulary: `cache_status: {header: X-Cache, hit: [HIT, STALE],
/// miss: [MISS, EXPIRED], bypass: [BYPASS]}`. Values match case-insensitively. A header
/// holding a comma-separated list (one entry per cache layer, as CDNs write it) is a hit
/// when any entry is a hit (some layer served it), else a miss when any is a miss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheVocab {
    /// The response header that carries the status.
    pub header: String,
    /// Values that mean a hit.
    #[serde(default)]
    pub hit: Vec<String>,
    /// Values that mean a miss.
    #[serde(default)]
    pub miss: Vec<String>,
    /// Values that mean the cache was bypassed.
    #[serde(default)]
    pub bypass: Vec<String>,
    /// A header giving the response's age in seconds (Varnish, RFC 9111 `Age`): used when
    /// the status header is absent; above 0 is a hit, 0 a miss.
    #[serde(default)]
    pub age_header: Option<String>,
}

/// Errors of a vocabulary.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VocabError {
    /// An unknown preset name.
    #[error("unknown cache-status preset {name:?}: expected one of {}", PRESETS.join(", "))]
    UnknownPreset {
        /// The name given.
        name: String,
    },
    /// A rule is broken.
    #[error("{0}")]
    Invalid(String),
}

/// Names of the built-in presets.
pub const PRESETS: [&str; 5] = ["ours", "nginx", "varnish", "cdn", "cloudflare"];

fn list(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for CacheVocab {
    /// Our API's vocabulary.
    fn default() -> Self {
        Self::preset("ours").expect("the built-in preset exists")
    }
}

impl CacheVocab {
    /// A built-in vocabulary:
    /// - `ours`: `X-Cache: HIT | MISS | BYPASS`;
    /// - `nginx`: `X-Cache: $upstream_cache_status`, where STALE, UPDATING and
    ///   REVALIDATED are served from the cache and EXPIRED is fetched;
    /// - `varnish`: `X-Cache: HIT | MISS | PASS`, else `Age` (above 0: hit);
    /// - `cdn`: `X-Cache` lists such as `HIT, MISS` (TCP_HIT and friends too);
    /// - `cloudflare`: `cf-cache-status` (DYNAMIC: not cacheable, not counted).
    pub fn preset(name: &str) -> Result<Self, VocabError> {
        let v = |header: &str, hit: &[&str], miss: &[&str], bypass: &[&str], age: bool| Self {
            header: header.to_string(),
            hit: list(hit),
            miss: list(miss),
            bypass: list(bypass),
            age_header: age.then(|| "Age".to_string()),
        };
        Ok(match name {
            "ours" => v("X-Cache", &["HIT"], &["MISS"], &["BYPASS"], false),
            "nginx" => v(
                "X-Cache",
                &["HIT", "STALE", "UPDATING", "REVALIDATED"],
                &["MISS", "EXPIRED"],
                &["BYPASS"],
                false,
            ),
            "varnish" => v("X-Cache", &["HIT"], &["MISS"], &["PASS", "BYPASS"], true),
            "cdn" => v(
                "X-Cache",
                &["HIT", "TCP_HIT", "TCP_MEM_HIT", "REFRESH_HIT", "STALE"],
                &["MISS", "TCP_MISS", "TCP_REFRESH_MISS", "EXPIRED"],
                &["PASS", "BYPASS"],
                false,
            ),
            "cloudflare" => v(
                "cf-cache-status",
                &["HIT", "STALE", "UPDATING", "REVALIDATED"],
                &["MISS", "EXPIRED"],
                &["BYPASS"],
                false,
            ),
            other => {
                return Err(VocabError::UnknownPreset {
                    name: other.to_string(),
                })
            }
        })
    }

    /// Checks the rules: a header name, at least one hit and one miss value, no value in
    /// two lists.
    pub fn validate(&self) -> Result<(), VocabError> {
        let bad = |m: String| Err(VocabError::Invalid(m));
        if self.header.trim().is_empty()
            || reqwest::header::HeaderName::from_bytes(self.header.as_bytes()).is_err()
        {
            return bad(format!("header {:?} is not a header name", self.header));
        }
        if self.hit.is_empty() || self.miss.is_empty() {
            return bad("needs at least one hit value and one miss value".into());
        }
        let all: Vec<String> = [&self.hit, &self.miss, &self.bypass]
            .into_iter()
            .flatten()
            .map(|s| s.to_ascii_uppercase())
            .collect();
        for (i, a) in all.iter().enumerate() {
            if all[..i].contains(a) {
                return bad(format!("{a:?} is listed twice"));
            }
        }
        Ok(())
    }

    fn class_of_token(&self, t: &str) -> CacheClass {
        let is = |l: &[String]| l.iter().any(|v| v.eq_ignore_ascii_case(t));
        if is(&self.hit) {
            CacheClass::Hit
        } else if is(&self.miss) {
            CacheClass::Miss
        } else if is(&self.bypass) {
            CacheClass::Bypass
        } else {
            CacheClass::Other
        }
    }

    /// The class of a status header value (`None`: the header was absent).
    pub fn classify(&self, value: Option<&str>, age: Option<&str>) -> CacheClass {
        match value.map(str::trim) {
            Some(v) if v.contains(',') => {
                let classes: Vec<CacheClass> = v
                    .split(',')
                    .map(|t| self.class_of_token(t.trim()))
                    .collect();
                [CacheClass::Hit, CacheClass::Miss, CacheClass::Bypass]
                    .into_iter()
                    .find(|c| classes.contains(c))
                    .unwrap_or(CacheClass::Other)
            }
            Some(v) => self.class_of_token(v),
            None => match age.and_then(|a| a.trim().parse::<u64>().ok()) {
                Some(0) => CacheClass::Miss,
                Some(_) => CacheClass::Hit,
                None => CacheClass::None,
            },
        }
    }

    /// The class and the raw value (or `Age: N` when only the age header spoke) of a
    /// response.
    pub fn read(&self, headers: &reqwest::header::HeaderMap) -> (CacheClass, Option<String>) {
        let value = headers
            .get(self.header.as_str())
            .and_then(|v| v.to_str().ok());
        let age = match (&self.age_header, value) {
            (Some(h), None) => headers.get(h.as_str()).and_then(|v| v.to_str().ok()),
            _ => None,
        };
        let class = self.classify(value, age);
        let raw = match (value, age) {
            (Some(v), _) => Some(v.to_string()),
            (None, Some(a)) => Some(format!("Age: {}", a.trim())),
            (None, None) => None,
        };
        (class, raw)
    }

    /// How the hit rate is counted, in words, for the reports.
    pub fn definition(&self) -> String {
        let join = |l: &[String]| {
            if l.is_empty() {
                "-".to_string()
            } else {
                l.join(", ")
            }
        };
        let mut s = format!(
            "hit rate = hits / (hits + misses + bypasses) over responses carrying {}; hit: {}; miss: {}; bypass: {}",
            self.header,
            join(&self.hit),
            join(&self.miss),
            join(&self.bypass)
        );
        if let Some(a) = &self.age_header {
            s.push_str(&format!(
                "; without {}, {a} above 0 is a hit and 0 a miss",
                self.header
            ));
        }
        s.push_str("; other values are reported, not counted");
        s
    }
}

impl fmt::Display for CacheVocab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.definition())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_counts_what_it_served_from_its_cache() {
        let n = CacheVocab::preset("nginx").unwrap();
        for v in ["HIT", "STALE", "UPDATING", "REVALIDATED", "hit"] {
            assert_eq!(n.classify(Some(v), None), CacheClass::Hit, "{v}");
        }
        assert_eq!(n.classify(Some("EXPIRED"), None), CacheClass::Miss);
        assert_eq!(n.classify(Some("BYPASS"), None), CacheClass::Bypass);
        assert_eq!(n.classify(Some("WEIRD"), None), CacheClass::Other);
        assert_eq!(n.classify(None, None), CacheClass::None);
        // Ours does not know STALE: reported, not counted.
        let ours = CacheVocab::default();
        assert_eq!(ours.classify(Some("STALE"), None), CacheClass::Other);
    }

    #[test]
    fn lists_and_age() {
        let cdn = CacheVocab::preset("cdn").unwrap();
        assert_eq!(cdn.classify(Some("MISS, HIT"), None), CacheClass::Hit);
        assert_eq!(cdn.classify(Some("MISS, MISS"), None), CacheClass::Miss);
        let v = CacheVocab::preset("varnish").unwrap();
        assert_eq!(v.classify(None, Some("12")), CacheClass::Hit);
        assert_eq!(v.classify(None, Some("0")), CacheClass::Miss);
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("age", "3".parse().unwrap());
        assert_eq!(v.read(&h), (CacheClass::Hit, Some("Age: 3".into())));
        let cf = CacheVocab::preset("cloudflare").unwrap();
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("cf-cache-status", "DYNAMIC".parse().unwrap());
        assert_eq!(cf.read(&h), (CacheClass::Other, Some("DYNAMIC".into())));
    }

    #[test]
    fn bad_vocabularies_are_named() {
        assert_eq!(
            CacheVocab::preset("squid").unwrap_err().to_string(),
            "unknown cache-status preset \"squid\": expected one of ours, nginx, varnish, cdn, cloudflare"
        );
        let mut v = CacheVocab::default();
        v.miss.push("hit".into());
        assert!(v
            .validate()
            .unwrap_err()
            .to_string()
            .contains("\"HIT\" is listed twice"));
        v = CacheVocab::default();
        v.header = "bad header".into();
        assert!(v.validate().is_err());
        for p in PRESETS {
            CacheVocab::preset(p).unwrap().validate().unwrap();
        }
    }
}
