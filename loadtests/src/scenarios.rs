//! The scenarios of the API contract, as goose scenarios whose transactions record every
//! request in the shared [`Recorder`](crate::Recorder).
//!
//! - dashboard user: statistics and analytics;
//! - member lookup user: `members/{id}` and `members/by-id-number/{id_number}` with
//!   Zipf-skewed popularity;
//! - lookup user: reference data;
//! - writer: member updates (their invalidations are part of what is measured).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::prelude::*;

use crate::mix::{unit, Zipf};
use crate::recorder::Recorder;

/// What the scenarios need to know about the data behind the API.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// Member ids run from 1 to this (popularity follows Zipf over the ids).
    pub(crate) members: usize,
    /// ID numbers of some members, most popular first.
    pub(crate) id_numbers: Vec<String>,
    /// Zipf exponent.
    pub(crate) zipf_s: f64,
}

/// One weighted request of a scenario: route template and a path generator.
struct Req {
    route: &'static str,
    path: Box<dyn Fn() -> String + Send + Sync>,
}

/// Sends one request through goose, reads the body, records it in µs.
async fn send(
    user: &mut GooseUser,
    rec: &Recorder,
    route: &'static str,
    method: GooseMethod,
    path: String,
    body: Option<String>,
) -> TransactionResult {
    let started = Instant::now();
    let mut rb = user.get_request_builder(&method, &path)?;
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b);
    }
    let goose = user
        .request(
            GooseRequest::builder()
                .method(method)
                .path(path.as_str())
                .name(route)
                .set_request_builder(rb)
                .build(),
        )
        .await?;
    match goose.response {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let cache = resp
                .headers()
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let _ = resp.bytes().await;
            rec.record(route, cache.as_deref(), Some(status), started.elapsed());
        }
        Err(_) => rec.record(route, None, None, started.elapsed()),
    }
    Ok(())
}

type TxFuture<'r> = Pin<Box<dyn Future<Output = TransactionResult> + Send + 'r>>;

fn transaction<F>(name: &str, f: F) -> Transaction
where
    F: for<'r> Fn(&'r mut GooseUser) -> TxFuture<'r> + Send + Sync + 'static,
{
    Transaction::new(Arc::new(f)).set_name(name)
}

fn get_tx(rec: &Arc<Recorder>, req: Req) -> Transaction {
    let rec = Arc::clone(rec);
    let req = Arc::new(req);
    transaction(req.route, move |user| {
        let (rec, req) = (Arc::clone(&rec), Arc::clone(&req));
        Box::pin(
            async move { send(user, &rec, req.route, GooseMethod::Get, (req.path)(), None).await },
        )
    })
}

fn fixed(route: &'static str) -> Req {
    Req {
        route,
        path: Box::new(move || route.to_string()),
    }
}

/// One scenario requesting only `path` (calibration against another load tool on the
/// same route).
pub(crate) fn single(rec: &Arc<Recorder>, path: &str) -> Result<Scenario, GooseError> {
    let route: &'static str = Box::leak(path.to_string().into_boxed_str());
    Ok(scenario!("SingleRoute").register_transaction(get_tx(rec, fixed(route))))
}

/// Scenario weights (percent of users) and think time.
#[derive(Debug, Clone)]
pub struct Mix {
    /// Share of users that write (0-100); the rest split over the three reader kinds.
    pub writer_percent: usize,
    /// Think time between transactions, min and max. Writers think ten times longer
    /// (a person editing records, not a script).
    pub think: (Duration, Duration),
}

/// Builds the scenarios.
pub(crate) fn scenarios(
    rec: &Arc<Recorder>,
    cat: &Catalog,
    mix: &Mix,
) -> Result<Vec<Scenario>, GooseError> {
    let zipf = Arc::new(Zipf::new(cat.members, cat.zipf_s));
    let idn_zipf = Arc::new(Zipf::new(cat.id_numbers.len().max(1), cat.zipf_s));
    let readers = 100 - mix.writer_percent.min(100);
    let think = |s: Scenario| -> Result<Scenario, GooseError> {
        if mix.think.1.is_zero() {
            Ok(s)
        } else {
            s.set_wait_time(mix.think.0, mix.think.1)
        }
    };
    let mut out = Vec::new();
    if readers > 0 {
        let dashboard = scenario!("DashboardUser")
            .set_weight((readers * 40 / 100).max(1))?
            .register_transaction(get_tx(rec, fixed("/api/v1/statistics/system")).set_weight(3)?)
            .register_transaction(get_tx(rec, fixed("/api/v1/analytics/dashboard")).set_weight(3)?)
            .register_transaction(get_tx(rec, fixed("/api/v1/statistics/demographics")))
            .register_transaction(get_tx(rec, fixed("/api/v1/statistics/membership-trends")))
            .register_transaction(get_tx(rec, fixed("/api/v1/statistics/ward-membership")))
            .register_transaction(get_tx(rec, fixed("/api/v1/analytics/membership")))
            .register_transaction(get_tx(rec, fixed("/api/v1/analytics/comprehensive")));
        out.push(think(dashboard)?);
        let z = Arc::clone(&zipf);
        let by_id = Req {
            route: "/api/v1/members/{id}",
            path: Box::new(move || format!("/api/v1/members/{}", z.sample())),
        };
        let mut lookup = scenario!("MemberLookupUser")
            .set_weight((readers * 40 / 100).max(1))?
            .register_transaction(get_tx(rec, by_id).set_weight(3)?);
        if !cat.id_numbers.is_empty() {
            let (ids, z) = (Arc::new(cat.id_numbers.clone()), Arc::clone(&idn_zipf));
            let by_idn = Req {
                route: "/api/v1/members/by-id-number/{id_number}",
                path: Box::new(move || {
                    format!("/api/v1/members/by-id-number/{}", ids[z.sample() - 1])
                }),
            };
            lookup = lookup.register_transaction(get_tx(rec, by_idn));
        }
        out.push(think(lookup)?);
        let lookups = scenario!("LookupUser")
            .set_weight((readers * 20 / 100).max(1))?
            .register_transaction(get_tx(rec, fixed("/api/v1/lookups/provinces")))
            .register_transaction(get_tx(rec, fixed("/api/v1/lookups/municipalities")))
            .register_transaction(get_tx(rec, fixed("/api/v1/lookups/statuses")))
            .register_transaction(get_tx(rec, fixed("/api/v1/lookups/wards")));
        out.push(think(lookups)?);
    }
    if mix.writer_percent > 0 {
        let (rec2, z) = (Arc::clone(rec), Arc::clone(&zipf));
        let write = transaction("update member", move |user| {
            let (rec, id) = (Arc::clone(&rec2), z.sample());
            // Mostly name changes (member keys only); one in ten a status change, which
            // also invalidates statistics and analytics.
            let body = if unit() < 0.9 {
                format!(
                    r#"{{"first_name":"Load{}"}}"#,
                    crate::mix::random() % 100_000
                )
            } else {
                format!(
                    r#"{{"status":"{}"}}"#,
                    if unit() < 0.5 { "active" } else { "inactive" }
                )
            };
            Box::pin(async move {
                send(
                    user,
                    &rec,
                    "PUT /api/v1/members/{id}",
                    GooseMethod::Put,
                    format!("/api/v1/members/{id}"),
                    Some(body),
                )
                .await
            })
        });
        let writer = scenario!("WriterUser")
            .set_weight(mix.writer_percent)?
            .register_transaction(write);
        out.push(if mix.think.1.is_zero() {
            writer
        } else {
            writer.set_wait_time(mix.think.0 * 10, mix.think.1 * 10)?
        });
    }
    Ok(out)
}
