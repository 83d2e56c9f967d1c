//! The fault API's token in tests: the services refuse `--enable-faults` without
//! `--fault-token-file`, and every fault API request must present the token.

use std::{path::PathBuf, sync::OnceLock};

/// The token the test services are started with.
pub const FAULT_TOKEN: &str = "alertlab-test-fault-token";

/// A file holding [`FAULT_TOKEN`], beside the test binary (the build's own directory, not a
/// shared one like /tmp). Written to a private name and renamed, so test processes running
/// at the same time never read a half-written file.
pub fn fault_token_file() -> PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let dir = exe.parent().expect("the test binary's directory");
        let path = dir.join("alertlab-test-fault-token");
        let private = dir.join(format!("alertlab-test-fault-token.{}", std::process::id()));
        std::fs::write(&private, format!("{FAULT_TOKEN}\n"))
            .and_then(|()| std::fs::rename(&private, &path))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    })
    .clone()
}

/// `Authorization` header value for the fault API.
pub fn fault_bearer() -> String {
    format!("Bearer {FAULT_TOKEN}")
}
