//! The drill workload: writers adding unique values to one Redis set (so every
//! acknowledged write can be looked for afterwards) and readers reading its size, all
//! through a Sentinel-aware client, each operation recorded on the drill clock.

use std::sync::Arc;
use std::time::Duration;

use membership::{LinkError, RedisLink, RedisTarget};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::clock::Clock;
use super::history::{Op, OpKind, Outcome, Tally};
use crate::config::DrillSection;

/// The key the workload writes to.
pub(crate) const SET_KEY: &str = "harness:drill:set";

/// A Sentinel-aware client for the topology (standalone when it has no Sentinels).
pub(crate) fn client(
    sentinels: &[(String, u16)],
    master: (String, u16),
    master_name: &str,
    password: Option<String>,
    timeout: Duration,
) -> Arc<RedisLink> {
    let target = if sentinels.is_empty() {
        RedisTarget::Standalone {
            host: master.0,
            port: master.1,
        }
    } else {
        RedisTarget::Sentinel {
            sentinels: sentinels.to_vec(),
            master_name: master_name.to_string(),
        }
    };
    RedisLink::with(target, password, 0, timeout)
}

/// Classifies an error: refusals by the server or by the network before sending are
/// `Failed`; anything that may have been applied is `Unknown`.
fn classify(e: &LinkError) -> Outcome {
    match e {
        LinkError::Timeout(_) => Outcome::Unknown,
        LinkError::NoMaster { .. } => Outcome::Failed,
        LinkError::Redis(r) => {
            // A server error (NOREPLICAS, READONLY, ...), also inside a pipeline, where
            // redis-rs reports unknown codes as `Extension`: the command was refused.
            if r.is_connection_refusal()
                || r.code().is_some()
                || matches!(
                    r.kind(),
                    redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
                )
            {
                Outcome::Failed
            } else {
                Outcome::Unknown
            }
        }
    }
}

/// Running workload tasks.
pub(crate) struct Workload {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Vec<Op>>>,
}

impl Workload {
    /// Starts `d.writers` writers and `d.readers` readers on `link`; every write's outcome
    /// is also counted in `tally`.
    pub(crate) fn start(
        link: Arc<RedisLink>,
        clock: Clock,
        d: &DrillSection,
        tally: Arc<Tally>,
    ) -> Self {
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for w in 0..d.writers {
            let (link, rx, tally) = (Arc::clone(&link), rx.clone(), Arc::clone(&tally));
            let (rate, wait, wait_ms) = (d.write_rate, d.wait_replicas, d.wait_timeout_ms);
            tasks.push(tokio::spawn(async move {
                run_client(rx, rate, |seq| {
                    let (link, tally) = (Arc::clone(&link), Arc::clone(&tally));
                    async move {
                        let value = format!("w{w}-{seq}");
                        let invoke_us = clock.now_us();
                        let v = value.clone();
                        let res = link
                            .run(|mut con| async move {
                                let mut p = redis::pipe();
                                p.cmd("SADD").arg(SET_KEY).arg(&v);
                                if wait > 0 {
                                    p.cmd("WAIT").arg(wait).arg(wait_ms);
                                    let (_, acked): (i64, i64) = p.query_async(&mut con).await?;
                                    Ok(acked)
                                } else {
                                    let (_,): (i64,) = p.query_async(&mut con).await?;
                                    Ok(i64::from(wait))
                                }
                            })
                            .await;
                        let (outcome, error) = match res {
                            Ok(acked) if acked >= i64::from(wait) => (Outcome::Ok, None),
                            Ok(acked) => (
                                Outcome::Unknown,
                                Some(format!("WAIT confirmed {acked}/{wait} replicas")),
                            ),
                            Err(e) => (classify(&e), Some(e.to_string())),
                        };
                        tally.record(outcome);
                        Op {
                            kind: OpKind::Write,
                            client: w,
                            value: Some(value),
                            invoke_us,
                            complete_us: clock.now_us(),
                            outcome,
                            error,
                        }
                    }
                })
                .await
            }));
        }
        for r in 0..d.readers {
            let (link, rx) = (Arc::clone(&link), rx.clone());
            let client_no = 1000 + r;
            let rate = d.read_rate;
            tasks.push(tokio::spawn(async move {
                run_client(rx, rate, |_| {
                    let link = Arc::clone(&link);
                    async move {
                        let invoke_us = clock.now_us();
                        let res = link
                            .run(|mut con| async move {
                                redis::cmd("SCARD")
                                    .arg(SET_KEY)
                                    .query_async::<i64>(&mut con)
                                    .await
                            })
                            .await;
                        let (outcome, error) = match res {
                            Ok(_) => (Outcome::Ok, None),
                            Err(e) => (classify(&e), Some(e.to_string())),
                        };
                        Op {
                            kind: OpKind::Read,
                            client: client_no,
                            value: None,
                            invoke_us,
                            complete_us: clock.now_us(),
                            outcome,
                            error,
                        }
                    }
                })
                .await
            }));
        }
        Self { stop, tasks }
    }

    /// Stops every client and returns all operations.
    pub(crate) async fn stop(self) -> Vec<Op> {
        let _ = self.stop.send(true);
        let mut ops = Vec::new();
        for t in self.tasks {
            ops.extend(t.await.unwrap_or_default());
        }
        ops.sort_by_key(|o| o.invoke_us);
        ops
    }
}

/// Issues `op(seq)` at `rate` per second until `stop` turns true; an operation that takes
/// longer than the period delays the next (no pile-up).
async fn run_client<F, Fut>(mut stop: watch::Receiver<bool>, rate: u32, mut op: F) -> Vec<Op>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Op>,
{
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return out,
        }
        if *stop.borrow() {
            return out;
        }
        out.push(op(seq).await);
        seq += 1;
    }
}

/// Reads every value of the set after healing, retrying for up to `timeout`.
pub(crate) async fn final_read(link: &RedisLink, timeout: Duration) -> Option<Vec<String>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let res = link
            .run(|mut con| async move {
                redis::cmd("SMEMBERS")
                    .arg(SET_KEY)
                    .query_async::<Vec<String>>(&mut con)
                    .await
            })
            .await;
        match res {
            Ok(v) => return Some(v),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(_) => return None,
        }
    }
}
