//! Ctrl-C, SIGTERM and SIGHUP: one process-wide handler that every command awaits
//! through [`shutdown_signal`]. It is installed before goose starts; goose then finds a
//! handler in place and leaves it alone, so an interrupted load run tears down the
//! topology instead of merely ending the load early.

use std::sync::OnceLock;

use tokio::sync::watch;

static SIGNALLED: OnceLock<watch::Sender<bool>> = OnceLock::new();

fn sender() -> &'static watch::Sender<bool> {
    SIGNALLED.get_or_init(|| {
        let (tx, _) = watch::channel(false);
        let handler_tx = tx.clone();
        if let Err(e) = ctrlc::set_handler(move || {
            if handler_tx.send_replace(true) {
                eprintln!("still stopping; every process this run started is being torn down");
            }
        }) {
            tracing::warn!("cannot install the Ctrl-C handler: {e}");
        }
        tx
    })
}

/// Installs the handler (idempotent). Call before anything else installs one.
pub(super) fn install() {
    sender();
}

/// A receiver that turns true on Ctrl-C, SIGTERM or SIGHUP.
pub(super) fn subscribe() -> watch::Receiver<bool> {
    sender().subscribe()
}

/// Whether Ctrl-C, SIGTERM or SIGHUP arrived.
pub(super) fn received() -> bool {
    *sender().borrow()
}

/// Resolves on Ctrl-C, SIGTERM or SIGHUP (immediately if one already arrived).
pub(super) async fn shutdown_signal() {
    let mut rx = sender().subscribe();
    let _ = rx.wait_for(|s| *s).await;
}
