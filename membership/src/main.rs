//! `membership-api`: configured by environment variables (see the README), serves until
//! Ctrl-C or SIGTERM.

use std::process::ExitCode;

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,membership=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cfg = match membership::ApiConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cfg));
    // `serve` returns at most SHUTDOWN_GRACE_MS after the signal with every connection
    // closed, but requests it cut off may leave database calls running on the blocking
    // pool (a query, or a write waiting up to SQLite's 5 s busy timeout, one after another
    // behind the writer lock). Dropping the runtime waits for every one of them: that was
    // the shutdown overshooting the grace under load. Their clients are gone and a write
    // not committed yet rolls back (SQLite journal), so exit without waiting.
    runtime.shutdown_background();
    code
}

async fn run(cfg: membership::ApiConfig) -> ExitCode {
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    match membership::serve(cfg, |_| {}, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
