//! Results of several load generators as one run: the serialized HDR histograms are added
//! together, so every percentile of the merged results is exact (never an average of
//! percentiles). Counts, statuses, stale reads and instances are summed; the duration is
//! the longest of the parts (they ran at the same time).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::recorder::{self, assemble, decode, hist, Assembled};
use crate::{LoadResults, RouteLatency, Second, StaleReport};

/// Why results could not be merged.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no results to merge")]
    Empty,
    /// A part lacks its histograms (written by an older version).
    #[error(
        "results {part} carry no histograms (written before merging existed); run the load again"
    )]
    NoHistograms {
        /// Which part (1-based).
        part: usize,
    },
    /// A histogram does not decode.
    #[error("results {part}: {what}: {detail}")]
    Corrupt {
        /// Which part (1-based).
        part: usize,
        /// Which histogram.
        what: String,
        /// The decoder's message.
        detail: String,
    },
    /// The parts were counted differently.
    #[error("results {part} differ from results 1 in {what}: {a:?} vs {b:?}")]
    Mismatch {
        /// Which part (1-based).
        part: usize,
        /// What differs.
        what: &'static str,
        /// Part 1's value.
        a: String,
        /// This part's value.
        b: String,
    },
}

fn add(into: &mut Histogram<u64>, part: usize, what: &str, enc: &str) -> Result<(), MergeError> {
    let corrupt = |detail: String| MergeError::Corrupt {
        part,
        what: what.to_string(),
        detail,
    };
    let h = decode(enc).map_err(corrupt)?;
    into.add(&h).map_err(|e| corrupt(format!("{e:?}")))
}

/// Merges `parts` (one [`LoadResults`] per load generator) into one.
pub fn merge(parts: &[LoadResults]) -> Result<LoadResults, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    if parts.len() == 1 {
        return Ok(first.clone());
    }
    let mut all = hist();
    let mut routes: BTreeMap<(String, String), (crate::CacheClass, Histogram<u64>)> =
        BTreeMap::new();
    let mut instances: BTreeMap<String, (Vec<&crate::InstanceFigures>, Histogram<u64>)> =
        BTreeMap::new();
    let mut statuses = BTreeMap::new();
    let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
    let mut stale: BTreeMap<String, crate::StaleRoute> = BTreeMap::new();
    let mut examples = Vec::new();
    let mut generators = 0;
    for (i, p) in parts.iter().enumerate() {
        let part = i + 1;
        for (what, a, b) in [
            ("model", &first.model, &p.model),
            (
                "cache-status vocabulary",
                &first.hit_rate_definition,
                &p.hit_rate_definition,
            ),
        ] {
            if a != b {
                return Err(MergeError::Mismatch {
                    part,
                    what,
                    a: a.clone(),
                    b: b.clone(),
                });
            }
        }
        if p.hdr.all.is_empty() || p.hdr.routes.len() != p.routes.len() {
            return Err(MergeError::NoHistograms { part });
        }
        add(&mut all, part, "all requests", &p.hdr.all)?;
        for (r, enc) in p.routes.iter().zip(&p.hdr.routes) {
            let e = routes
                .entry((r.route.clone(), r.cache.clone()))
                .or_insert_with(|| (r.class, hist()));
            add(&mut e.1, part, &format!("{} {}", r.route, r.cache), enc)?;
        }
        for (inst, enc) in p.instances.iter().zip(&p.hdr.instances) {
            let e = instances
                .entry(inst.host.clone())
                .or_insert_with(|| (Vec::new(), hist()));
            e.0.push(inst);
            add(&mut e.1, part, &format!("instance {}", inst.host), enc)?;
        }
        for (s, n) in &p.statuses {
            *statuses.entry(*s).or_insert(0) += n;
        }
        for s in &p.timeline {
            let e = seconds.entry(s.t).or_insert_with(|| Second {
                t: s.t,
                ..Default::default()
            });
            e.requests += s.requests;
            e.hits += s.hits;
            e.misses += s.misses;
            e.bypasses += s.bypasses;
            e.errors += s.errors;
            // Per-second percentiles are not serialized: the highest part's stands.
            e.p50_us = e.p50_us.max(s.p50_us);
            e.p99_us = e.p99_us.max(s.p99_us);
        }
        for r in &p.stale.routes {
            let e = stale
                .entry(r.route.clone())
                .or_insert_with(|| crate::StaleRoute {
                    route: r.route.clone(),
                    ..Default::default()
                });
            e.checked += r.checked;
            e.violations += r.violations;
            e.cross_instance += r.cross_instance;
            e.unjudged += r.unjudged;
        }
        examples.extend(p.stale.examples.iter().cloned());
        generators += p.generators.max(1);
    }
    examples.truncate(10);
    let rows: Vec<RouteLatency> = routes
        .iter()
        .map(|((route, cache), (class, h))| recorder::summary(route, cache, *class, h))
        .collect();
    let hdr = crate::HdrSet {
        all: recorder::encode(&all),
        routes: routes.values().map(|(_, h)| recorder::encode(h)).collect(),
        instances: instances
            .values()
            .map(|(_, h)| recorder::encode(h))
            .collect(),
    };
    let method = parts
        .iter()
        .map(|p| p.stale.method.clone())
        .find(|m| !m.is_empty())
        .unwrap_or_default();
    Ok(assemble(Assembled {
        model: &first.model,
        duration_s: parts.iter().map(|p| p.duration_s).fold(0.0, f64::max),
        all: &all,
        statuses,
        routes: rows,
        timeline: seconds.into_values().collect(),
        instances: instances
            .values()
            .map(|(ps, h)| recorder::instance_from(ps, h))
            .collect(),
        stale: StaleReport {
            method,
            routes: stale.into_values().collect(),
            examples,
        },
        hdr,
        definition: first.hit_rate_definition.clone(),
        generators,
        windows: first
            .hit_split
            .as_ref()
            .map(|h| h.windows.clone())
            .unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Recorder;
    use std::time::Duration;

    /// Two generators' samples merged equal one recorder that saw them all.
    #[test]
    fn merging_equals_recording_everything_in_one() {
        let (a, b, one) = (Recorder::new(), Recorder::new(), Recorder::new());
        for i in 1..=4000u64 {
            let (cache, us) = if i % 3 == 0 {
                ("MISS", 5000 + i)
            } else {
                ("HIT", 100 + i % 900)
            };
            let part = if i % 2 == 0 { &a } else { &b };
            // Skewed halves: averaging their percentiles would be wrong.
            let us = if i % 2 == 0 { us * 7 } else { us };
            for r in [part, &one] {
                r.record("/x", Some(cache), Some(200), Duration::from_micros(us));
            }
        }
        b.record("/y", None, Some(503), Duration::from_millis(3));
        one.record("/y", None, Some(503), Duration::from_millis(3));
        let d = Duration::from_secs(2);
        let m = merge(&[a.results("closed", d), b.results("closed", d)]).unwrap();
        let o = one.results("closed", d);
        assert_eq!(m.routes, o.routes);
        assert_eq!((m.p50_us, m.p99_us), (o.p50_us, o.p99_us));
        assert_eq!(
            (m.requests, m.errors, m.hit_rate),
            (o.requests, o.errors, o.hit_rate)
        );
        assert_eq!(m.statuses, o.statuses);
        assert_eq!(m.generators, 2);
        assert_eq!(m.instances[0].p99_us, o.instances[0].p99_us);
    }

    #[test]
    fn parts_without_histograms_or_with_another_vocabulary_are_refused() {
        let r = Recorder::new();
        r.record("/x", Some("HIT"), Some(200), Duration::from_micros(10));
        let good = r.results("closed", Duration::from_secs(1));
        let mut old = good.clone();
        old.hdr = Default::default();
        assert_eq!(
            merge(&[good.clone(), old]).unwrap_err(),
            MergeError::NoHistograms { part: 2 }
        );
        let mut other = good.clone();
        other.hit_rate_definition = "x".into();
        assert!(merge(&[good, other])
            .unwrap_err()
            .to_string()
            .contains("cache-status vocabulary"));
    }
}
