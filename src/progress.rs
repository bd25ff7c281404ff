//! Progress for long phases: numbered step lines, and a bar for timed load phases (a
//! plain line every 10 s when stderr is not a terminal, so CI logs show it too).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use loadtests::Recorder;

/// Where progress goes (stderr).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    tty: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// Progress on stderr, with bars when it is a terminal.
    pub(crate) fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Prints `[n/total] msg`.
    pub(crate) fn step(&self, n: usize, total: usize, msg: &str) {
        eprintln!("[{n}/{total}] {msg}");
    }

    /// Prints an indented line under the current step.
    pub(crate) fn note(&self, msg: &str) {
        eprintln!("      {msg}");
    }

    /// Shows a bar over `seconds` fed by `rec`'s request count until finished.
    pub(crate) fn load_bar(&self, seconds: u64, rec: &Arc<Recorder>) -> Ticker {
        let bar = if self.tty {
            let b = ProgressBar::with_draw_target(Some(seconds), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("  {bar:30} {pos:>3}/{len} s  {msg}")
                    .expect("valid template"),
            );
            b
        } else {
            ProgressBar::hidden()
        };
        let (rec, b, tty) = (Arc::clone(rec), bar.clone(), self.tty);
        let task = tokio::spawn(async move {
            let mut last = (0u64, 0u64);
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let secs = rec.started().elapsed().as_secs();
                let n = rec.count();
                let msg = format!(
                    "{n} requests, {:.0} req/s",
                    n as f64 / rec.started().elapsed().as_secs_f64().max(0.001)
                );
                if tty {
                    b.set_position(secs.min(seconds));
                    b.set_message(msg);
                } else if secs >= last.0 + 10 && n != last.1 {
                    eprintln!("  {secs}/{seconds} s: {msg}");
                    last = (secs, n);
                }
            }
        });
        Ticker { task, bar }
    }
}

/// A running progress display; [`Ticker::finish`] removes it.
pub(crate) struct Ticker {
    task: tokio::task::JoinHandle<()>,
    bar: ProgressBar,
}

impl Ticker {
    /// Stops updating and clears the bar.
    pub(crate) fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
