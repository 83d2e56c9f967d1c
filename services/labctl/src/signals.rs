//! SIGTERM (what systemd sends) and SIGINT (Ctrl-C).

use tokio::signal::unix::{signal, SignalKind};

/// Resolves with the signal's name when the process receives SIGTERM or SIGINT.
pub async fn received() -> std::io::Result<&'static str> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}
