//! Stopping the services' binaries in tests the way systemd does.

use std::process::{Child, Command, ExitStatus};

/// Sends SIGTERM to `child` and waits for it to exit.
///
/// Uses the shell's `kill` builtin: a `kill` program is not on PATH everywhere (not in a Nix
/// build sandbox, whose coreutils has none).
///
/// # Panics
/// When the signal cannot be sent or waiting fails.
pub fn terminate(child: &mut Child) -> ExitStatus {
    send_signal(child.id(), "TERM");
    child.wait().expect("wait for the child")
}

/// Sends the signal named `signal` (`TERM`, `HUP`, ...) to process `pid`, with the shell's
/// `kill` builtin (see [`terminate`]).
///
/// # Panics
/// When the signal cannot be sent.
pub fn send_signal(pid: u32, signal: &str) {
    let sent = Command::new("sh")
        .args([
            "-c",
            "kill -s \"$1\" \"$2\"",
            "sh",
            signal,
            &pid.to_string(),
        ])
        .status()
        .expect("run sh to send a signal");
    assert!(sent.success(), "could not send SIG{signal} to {pid}");
}
