//! Token files for the services' shared secrets (`--payment-token-file`,
//! `--fault-token-file`), as a deployment gives them: a file of its own, readable by its owner
//! only, removed when the test drops it.

use std::{
    collections::hash_map::RandomState,
    fs,
    hash::{BuildHasher, Hasher},
    os::unix::fs::PermissionsExt,
    path::PathBuf,
};

/// A token and the file that holds it.
pub struct TokenFile {
    pub path: PathBuf,
    pub token: String,
    _dir: tempfile::TempDir,
}

/// A fresh random token (`<name>-<32 hex digits>`) in a file of its own.
pub fn token_file(name: &str) -> TokenFile {
    let dir = tempfile::tempdir().expect("a temporary directory for a token file");
    let token = format!("{name}-{:016x}{:016x}", random_u64(), random_u64());
    let path = dir.path().join(name);
    fs::write(&path, format!("{token}\n")).expect("the token file is written");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 0600");
    TokenFile {
        path,
        token,
        _dir: dir,
    }
}

/// Randomness enough for a test's secret (std's per-process random hash keys).
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
