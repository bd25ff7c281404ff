//! The scenarios of the API contract, as goose scenarios whose transactions record every
//! request in the shared [`Recorder`](crate::Recorder).
//!
//! - dashboard user: statistics and analytics;
//! - member lookup user: `members/{id}` and `members/by-id-number/{id_number}` with
//!   Zipf-skewed popularity;
//! - lookup user: reference data;
//! - writer: member updates (their invalidations are part of what is measured), each
//!   read back at once through the cache.
//!
//! Users are spread round-robin over the API instances (hosts), and every read of a
//! member that was written during the run is judged by the stale-read checker.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::prelude::*;

use crate::cache_status::CacheClass;
use crate::mix::{unit, Zipf};
use crate::recorder::Recorder;

/// What the scenarios need to know about the data behind the API.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// Member ids run from 1 to this (popularity follows Zipf over the ids).
    pub(crate) members: usize,
    /// (id, ID number) of some members, lowest id first.
    pub(crate) id_numbers: Vec<(u64, String)>,
    /// Zipf exponent.
    pub(crate) zipf_s: f64,
}

/// A path generator: the path, and the member it reads (stale-read checked) if any.
type PathFn = Box<dyn Fn() -> (String, Option<u64>) + Send + Sync>;

/// One weighted request of a scenario: route template and a path generator.
struct Req {
    route: &'static str,
    path: PathFn,
}

/// The API instance a user was given when it started (its session data).
struct UserInstance(usize);

/// Which API instance a user talks to (0 before [`pick_host`] ran).
fn instance(user: &GooseUser) -> usize {
    user.get_session_data::<UserInstance>().map_or(0, |u| u.0)
}

/// The `first_name` of a member body (`{...}` or `{"member": {...}}`).
fn first_name(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("first_name")
        .or_else(|| v.get("member").and_then(|m| m.get("first_name")))
        .and_then(|f| f.as_str())
        .map(str::to_string)
}

/// Sends one request with the user's HTTP client (goose's), reads the body, records it in
/// µs. Returns the status and body when there was a response. `expect`: the value the
/// response must show (sent as `x-harness-expect`, for the server's logs).
///
/// For speed, the request does not go through `GooseUser::request`: that parses the URL
/// once more, formats every header and builds a record for goose's own metrics, which are
/// off (every request is recorded here instead). The path is joined to the user's base URL
/// once and handed to the client as a `Url`, so reqwest does not parse it from a string
/// again. The clock starts once the request is built.
#[allow(clippy::too_many_arguments)]
async fn send(
    user: &mut GooseUser,
    rec: &Recorder,
    route: &'static str,
    method: reqwest::Method,
    path: String,
    body: Option<String>,
    expect: Option<&str>,
) -> Result<Option<(u16, bytes::Bytes)>, Box<TransactionError>> {
    let inst = instance(user);
    let url = user.base_url.join(&path).map_err(|e| Box::new(e.into()))?;
    let started = Instant::now();
    let mut rb = user.client.request(method, url);
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b);
    }
    if let Some(e) = expect {
        rb = rb.header("x-harness-expect", e);
    }
    match rb.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let (class, raw) = rec.vocab().read(resp.headers());
            let body = resp.bytes().await.unwrap_or_default();
            rec.record_class(
                route,
                inst,
                class,
                raw.as_deref(),
                Some(status),
                started.elapsed(),
            );
            Ok(Some((status, body)))
        }
        Err(_) => {
            rec.record_class(route, inst, CacheClass::None, None, None, started.elapsed());
            Ok(None)
        }
    }
}

/// A GET of `path`; when it reads a written member, what it served is judged.
async fn get_checked(
    user: &mut GooseUser,
    rec: &Recorder,
    route: &'static str,
    path: String,
    member: Option<u64>,
    own_write: bool,
) -> TransactionResult {
    let stale = rec.stale();
    let tracked = member.filter(|m| stale.tracked(*m));
    let expect = tracked.and_then(|m| stale.expected(m));
    let sent = Instant::now();
    let resp = send(
        user,
        rec,
        route,
        reqwest::Method::GET,
        path,
        None,
        expect.as_deref(),
    )
    .await?;
    if let (Some(m), Some((200, body))) = (tracked, resp) {
        if let Some(served) = first_name(&body) {
            let inst = instance(user);
            stale.check(
                route,
                user.weighted_users_index,
                m,
                inst,
                sent,
                &served,
                own_write,
            );
        }
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
        Box::pin(async move {
            let (path, member) = (req.path)();
            get_checked(user, &rec, req.route, path, member, false).await
        })
    })
}

/// Points each user at its API instance: round-robin over the hosts within each
/// scenario (a counter per scenario, since goose itself hands users out round-robin
/// over the scenarios), so every kind of user reaches every instance.
fn pick_host(rec: &Arc<Recorder>) -> Transaction {
    let rec = Arc::clone(rec);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    transaction("pick API instance", move |user| {
        let (rec, next) = (Arc::clone(&rec), Arc::clone(&next));
        Box::pin(async move {
            let hosts = rec.hosts();
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % hosts.len().max(1);
            user.set_session_data(UserInstance(i));
            if hosts.len() > 1 {
                user.set_base_url(&hosts[i])?;
            }
            Ok(())
        })
    })
    .set_on_start()
}

fn fixed(route: &'static str) -> Req {
    Req {
        route,
        path: Box::new(move || (route.to_string(), None)),
    }
}

/// One scenario requesting only `path` (calibration against another load tool on the
/// same route).
pub(crate) fn single(rec: &Arc<Recorder>, path: &str) -> Result<Scenario, GooseError> {
    let route: &'static str = Box::leak(path.to_string().into_boxed_str());
    Ok(scenario!("SingleRoute")
        .register_transaction(pick_host(rec))
        .register_transaction(get_tx(rec, fixed(route))))
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

/// The read-back of a writer: `members/{id}` of the member it just wrote.
const MEMBER_ROUTE: &str = "/api/v1/members/{id}";

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
            .register_transaction(pick_host(rec))
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
            route: MEMBER_ROUTE,
            path: Box::new(move || {
                let id = z.sample();
                (format!("/api/v1/members/{id}"), Some(id as u64))
            }),
        };
        let mut lookup = scenario!("MemberLookupUser")
            .set_weight((readers * 40 / 100).max(1))?
            .register_transaction(pick_host(rec))
            .register_transaction(get_tx(rec, by_id).set_weight(3)?);
        if !cat.id_numbers.is_empty() {
            let (ids, z) = (Arc::new(cat.id_numbers.clone()), Arc::clone(&idn_zipf));
            let by_idn = Req {
                route: "/api/v1/members/by-id-number/{id_number}",
                path: Box::new(move || {
                    let (id, idn) = &ids[z.sample() - 1];
                    (format!("/api/v1/members/by-id-number/{idn}"), Some(*id))
                }),
            };
            lookup = lookup.register_transaction(get_tx(rec, by_idn));
        }
        out.push(think(lookup)?);
        let lookups = scenario!("LookupUser")
            .set_weight((readers * 20 / 100).max(1))?
            .register_transaction(pick_host(rec))
            .register_transaction(get_tx(rec, fixed("/api/v1/lookups/provinces")))
            .register_transaction(get_tx(rec, fixed("/api/v1/lookups/municipalities")))
            .register_transaction(get_tx(rec, fixed("/api/v1/lookups/statuses")))
            .register_transaction(get_tx(rec, fixed("/api/v1/lookups/wards")));
        out.push(think(lookups)?);
    }
    if mix.writer_percent > 0 {
        let (rec2, z) = (Arc::clone(rec), Arc::clone(&zipf));
        let write = transaction("update member", move |user| {
            let (rec, z) = (Arc::clone(&rec2), Arc::clone(&z));
            Box::pin(async move {
                // A member no one else is writing, from this generator's shard.
                let inst = instance(user);
                let Some(ticket) = (0..16).find_map(|_| rec.stale().claim(z.sample() as u64, inst))
                else {
                    return Ok(());
                };
                let id = ticket.member;
                // Every write gives first_name a unique value; one in ten also changes
                // the status, which also invalidates statistics and analytics.
                let body = if unit() < 0.9 {
                    format!(r#"{{"first_name":"{}"}}"#, ticket.value)
                } else {
                    format!(
                        r#"{{"first_name":"{}","status":"{}"}}"#,
                        ticket.value,
                        if unit() < 0.5 { "active" } else { "inactive" }
                    )
                };
                let resp = send(
                    user,
                    &rec,
                    "PUT /api/v1/members/{id}",
                    reqwest::Method::PUT,
                    format!("/api/v1/members/{id}"),
                    Some(body),
                    None,
                )
                .await;
                let acked = matches!(&resp, Ok(Some((s, _))) if (200..300).contains(s));
                rec.stale().written(ticket, acked);
                resp?;
                if acked {
                    // Read-your-writes: the writer reads its member back through the cache.
                    get_checked(
                        user,
                        &rec,
                        MEMBER_ROUTE,
                        format!("/api/v1/members/{id}"),
                        Some(id),
                        true,
                    )
                    .await?;
                }
                Ok(())
            })
        });
        let writer = scenario!("WriterUser")
            .set_weight(mix.writer_percent)?
            .register_transaction(pick_host(rec))
            .register_transaction(write);
        out.push(if mix.think.1.is_zero() {
            writer
        } else {
            writer.set_wait_time(mix.think.0 * 10, mix.think.1 * 10)?
        });
    }
    Ok(out)
}
