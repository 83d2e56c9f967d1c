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
    let sent = Command::new("sh")
        .args(["-c", "kill -TERM \"$1\"", "sh", &child.id().to_string()])
        .status()
        .expect("run sh to send SIGTERM");
    assert!(sent.success(), "could not send SIGTERM to {}", child.id());
    child.wait().expect("wait for the child")
}
