//! The knee search as a pure function of a "measure this rate" callback: double the rate
//! from the start rate until a step misses the SLO (or the max rate passes), bisect
//! geometrically between the last pass and the first miss down to the resolution, then
//! confirm the knee by running it again, stepping down 10% once if that misses.
//!
//! [`search`] does no I/O of its own; `plan::run` hands it a callback that loads the API,
//! and the tests hand it synthetic response curves.

use std::future::Future;

use super::{PlanOptions, Step};

/// Which part of the search a step belongs to (it is also [`Step::phase`]).
pub(crate) const RAMP: &str = "ramp";
/// A bisection step between the last pass and the first miss.
pub(crate) const BISECT: &str = "bisect";
/// A re-run of the knee (or 90% of it after a miss).
pub(crate) const CONFIRM: &str = "confirm";

/// Confirmation runs at most (the knee, then 90% of it).
const CONFIRM_TRIES: usize = 2;

/// Outcome of a search.
#[derive(Debug, Clone)]
pub(crate) struct Knee {
    /// Every step in the order it was run.
    pub steps: Vec<Step>,
    /// Highest rate that met the SLO and was confirmed.
    pub knee_rps: Option<f64>,
}

impl Knee {
    /// Whether a confirmation run met the SLO (a knee is only ever a confirmed one).
    pub(crate) fn confirmed(&self) -> bool {
        self.knee_rps.is_some()
    }
}

/// Runs the search. `measure(phase, rate)` runs one step at `rate` offered requests per
/// second and says whether it met the SLO ([`Step::ok`]); its first error ends the search.
/// Uses `start_rate`, `max_rate` and `resolution` of `o` (checked by the caller:
/// positive, `max_rate >= start_rate`, `resolution > 1`).
pub(crate) async fn search<E, F, Fut>(o: &PlanOptions, mut measure: F) -> Result<Knee, E>
where
    F: FnMut(&'static str, f64) -> Fut,
    Fut: Future<Output = Result<Step, E>>,
{
    let mut steps = Vec::new();
    let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = o.start_rate;
    loop {
        let s = measure(RAMP, rate).await?;
        let ok = s.ok;
        steps.push(s);
        if ok {
            lo = Some(rate);
            if rate >= o.max_rate {
                break;
            }
            rate = (rate * 2.0).min(o.max_rate);
        } else {
            hi = Some(rate);
            break;
        }
    }
    if let (Some(l), Some(h)) = (lo, hi) {
        let (mut l, mut h) = (l, h);
        while h / l > o.resolution {
            let mid = (l * h).sqrt();
            let s = measure(BISECT, mid).await?;
            if s.ok {
                l = mid;
            } else {
                h = mid;
            }
            steps.push(s);
        }
        lo = Some(l);
    }
    let mut knee_rps = None;
    if let Some(l) = lo {
        let mut candidate = l;
        for _ in 0..CONFIRM_TRIES {
            let s = measure(CONFIRM, candidate).await?;
            let ok = s.ok;
            steps.push(s);
            if ok {
                knee_rps = Some(candidate);
                break;
            }
            candidate *= 0.9;
        }
    }
    Ok(Knee { steps, knee_rps })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::convert::Infallible;

    use super::*;

    fn opts(start_rate: f64, max_rate: f64, resolution: f64) -> PlanOptions {
        PlanOptions {
            slo_p99_us: 1000,
            max_error_rate: 0.01,
            step_s: 1.0,
            start_rate,
            max_rate,
            resolution,
            warmup_s: 0.0,
            members: 10,
            project_members: Vec::new(),
            max_in_flight: 10,
        }
    }

    fn step(phase: &'static str, rate: f64, ok: bool) -> Step {
        Step {
            phase,
            offered_rps: rate,
            achieved_rps: rate,
            p50_us: 100,
            p99_us: if ok { 500 } else { 5000 },
            error_rate: 0.0,
            hit_rate: None,
            ok,
        }
    }

    /// Runs the search against `curve(phase, rate, call index) -> ok`.
    fn run(o: &PlanOptions, curve: impl Fn(&str, f64, usize) -> bool) -> Knee {
        let calls = RefCell::new(0usize);
        let fut = search(o, |phase, rate| {
            let n = calls.replace_with(|n| *n + 1);
            let s = step(phase, rate, curve(phase, rate, n));
            async move { Ok::<_, Infallible>(s) }
        });
        match block_on(fut) {
            Ok(k) => k,
            Err(e) => match e {},
        }
    }

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn phases(k: &Knee) -> Vec<(&str, f64)> {
        k.steps.iter().map(|s| (s.phase, s.offered_rps)).collect()
    }

    #[test]
    fn bisection_finds_the_knee_of_a_monotone_curve() {
        let k = run(&opts(100.0, 100_000.0, 1.1), |_, r, _| r <= 1000.0);
        let ramp: Vec<f64> = k
            .steps
            .iter()
            .filter(|s| s.phase == RAMP)
            .map(|s| s.offered_rps)
            .collect();
        assert_eq!(ramp, [100.0, 200.0, 400.0, 800.0, 1600.0]);
        // The bracket 800-1600 narrows below the resolution around the knee.
        let knee = k.knee_rps.unwrap();
        assert!(k.confirmed());
        assert!(knee <= 1000.0 && knee * 1.1 > 1000.0, "{knee}");
        // Bisection steps are geometric means, and alternate sides of the true knee.
        let bisect: Vec<f64> = k
            .steps
            .iter()
            .filter(|s| s.phase == BISECT)
            .map(|s| s.offered_rps)
            .collect();
        assert!((bisect[0] - (800.0f64 * 1600.0).sqrt()).abs() < 1e-9);
        assert!(bisect.len() >= 3, "{bisect:?}");
        // Exactly one confirmation, at the knee.
        assert_eq!(phases(&k).last(), Some(&(CONFIRM, knee)));
        assert_eq!(k.steps.iter().filter(|s| s.phase == CONFIRM).count(), 1);
    }

    #[test]
    fn a_failed_confirmation_steps_down_ten_percent() {
        // The knee at 400 passes on the ramp but not when re-run; 360 holds.
        let k = run(&opts(100.0, 1000.0, 2.5), |phase, r, _| {
            if phase == CONFIRM {
                r <= 380.0
            } else {
                r <= 500.0
            }
        });
        assert_eq!(
            phases(&k),
            [
                (RAMP, 100.0),
                (RAMP, 200.0),
                (RAMP, 400.0),
                (RAMP, 800.0),
                (CONFIRM, 400.0),
                (CONFIRM, 360.0)
            ]
        );
        assert_eq!(k.knee_rps, Some(360.0));
        assert!(k.confirmed());
    }

    #[test]
    fn two_failed_confirmations_leave_no_knee() {
        let k = run(&opts(100.0, 1000.0, 2.5), |phase, r, _| {
            phase != CONFIRM && r <= 500.0
        });
        assert_eq!(k.steps.iter().filter(|s| s.phase == CONFIRM).count(), 2);
        assert_eq!(k.knee_rps, None);
        assert!(!k.confirmed());
    }

    #[test]
    fn a_miss_at_the_start_rate_ends_the_search() {
        let k = run(&opts(100.0, 1000.0, 1.1), |_, _, _| false);
        assert_eq!(phases(&k), [(RAMP, 100.0)]);
        assert_eq!(k.knee_rps, None);
        assert!(!k.confirmed());
    }

    #[test]
    fn a_noisy_miss_below_the_knee_narrows_the_bracket_from_above() {
        // The true knee is 1000, but the first bisection step (~1131) and, by noise, the
        // second (~951) miss: the search trusts each step and settles below it.
        let k = run(&opts(100.0, 100_000.0, 1.1), |phase, r, n| {
            r <= 1000.0 && !(phase == BISECT && n == 6)
        });
        let bisect: Vec<(f64, bool)> = k
            .steps
            .iter()
            .filter(|s| s.phase == BISECT)
            .map(|s| (s.offered_rps, s.ok))
            .collect();
        assert!(!bisect[0].1 && !bisect[1].1, "{bisect:?}");
        assert!((bisect[1].0 - (800.0f64 * bisect[0].0).sqrt()).abs() < 1e-9);
        let knee = k.knee_rps.unwrap();
        assert!(knee >= 800.0 && knee < bisect[1].0, "{knee}");
        assert!(k.confirmed());
    }

    #[test]
    fn a_curve_that_never_saturates_stops_at_the_max_rate() {
        let k = run(&opts(100.0, 1000.0, 1.1), |_, _, _| true);
        assert_eq!(
            phases(&k),
            [
                (RAMP, 100.0),
                (RAMP, 200.0),
                (RAMP, 400.0),
                (RAMP, 800.0),
                (RAMP, 1000.0),
                (CONFIRM, 1000.0)
            ]
        );
        assert_eq!(k.knee_rps, Some(1000.0));
        assert!(k.confirmed());
    }

    #[test]
    fn the_search_stays_bounded_in_steps() {
        // Ramp: at most log2(max/start) + 2 steps; bisection: at most
        // log(2)/log(resolution) + 1; confirmation: at most 2.
        for (start, max, res) in [
            (1.0f64, 1e9f64, 1.001f64),
            (10.0, 1e6, 1.05),
            (5.0, 5.0, 1.5),
        ] {
            let bound = (max / start).log2().ceil() as usize
                + 2
                + (2f64.ln() / f64::ln(res)).ceil() as usize
                + 1
                + CONFIRM_TRIES;
            for knee in [start, start * 3.7, max / 2.9, max] {
                let k = run(&opts(start, max, res), |_, r, _| r <= knee);
                assert!(k.steps.len() <= bound, "{} > {bound}", k.steps.len());
            }
        }
    }

    #[test]
    fn the_first_error_ends_the_search() {
        let calls = RefCell::new(0usize);
        let o = opts(100.0, 1000.0, 1.1);
        let fut = search(&o, |phase, rate| {
            let n = calls.replace_with(|n| *n + 1);
            async move {
                if n == 2 {
                    Err("load failed")
                } else {
                    Ok(step(phase, rate, true))
                }
            }
        });
        assert_eq!(block_on(fut).unwrap_err(), "load failed");
        assert_eq!(*calls.borrow(), 3);
    }
}
