//! The built-in models' workload: writers adding unique values to the model's own Redis
//! set (so every acknowledged write can be looked for afterwards) and readers reading its
//! size, all through the model's link, each operation recorded on the drill clock.

use std::sync::Arc;
use std::time::Duration;

use membership::{LinkError, RedisLink};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::DrillSection;
use crate::drill::clock::Clock;
use crate::drill::history::{Op, OpKind, Outcome, Tally};

/// The set a client whose keys start with `prefix` writes to.
pub(crate) fn set_key(prefix: &str) -> String {
    format!("{prefix}set")
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
        key: String,
    ) -> Self {
        let key: Arc<str> = key.into();
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for w in 0..d.writers {
            let (link, rx, tally, key) = (
                Arc::clone(&link),
                rx.clone(),
                Arc::clone(&tally),
                Arc::clone(&key),
            );
            let (rate, wait, wait_ms) = (d.write_rate, d.wait_replicas, d.wait_timeout_ms);
            tasks.push(tokio::spawn(async move {
                run_client(rx, rate, |seq| {
                    let (link, tally, key) =
                        (Arc::clone(&link), Arc::clone(&tally), Arc::clone(&key));
                    async move {
                        let value = format!("w{w}-{seq}");
                        let invoke_us = clock.now_us();
                        let (v, key) = (value.clone(), Arc::clone(&key));
                        let res = link
                            .run(|mut con| async move {
                                let mut p = redis::pipe();
                                p.cmd("SADD").arg(&*key).arg(&v);
                                if wait == 0 {
                                    let (_,): (i64,) = p.query_async(&mut con).await?;
                                    return Ok(Ok(i64::from(wait)));
                                }
                                // The SADD's own error is a refusal (and resets the link on
                                // READONLY); an error of the WAIT after it (`-UNBLOCKED` when
                                // the master is demoted meanwhile) leaves the SADD applied.
                                p.cmd("WAIT").arg(wait).arg(wait_ms).ignore_errors();
                                let mut replies: Vec<redis::Value> =
                                    p.query_async(&mut con).await?;
                                let waited = replies.pop();
                                replies.pop().map(redis::Value::extract_error).transpose()?;
                                Ok(match waited {
                                    Some(redis::Value::Int(n)) => Ok(n),
                                    Some(redis::Value::ServerError(e)) => Err(format!("WAIT: {e}")),
                                    other => Err(format!("WAIT answered {other:?}")),
                                })
                            })
                            .await;
                        let (outcome, error) = match res {
                            Ok(Ok(acked)) if acked >= i64::from(wait) => (Outcome::Ok, None),
                            Ok(Ok(acked)) => (
                                Outcome::Unknown,
                                Some(format!("WAIT confirmed {acked}/{wait} replicas")),
                            ),
                            Ok(Err(waited)) => (Outcome::Unknown, Some(waited)),
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
            let (link, rx, key) = (Arc::clone(&link), rx.clone(), Arc::clone(&key));
            let client_no = 1000 + r;
            let rate = d.read_rate;
            tasks.push(tokio::spawn(async move {
                run_client(rx, rate, |_| {
                    let (link, key) = (Arc::clone(&link), Arc::clone(&key));
                    async move {
                        let invoke_us = clock.now_us();
                        let res = link
                            .run(|mut con| async move {
                                redis::cmd("SCARD")
                                    .arg(&*key)
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
