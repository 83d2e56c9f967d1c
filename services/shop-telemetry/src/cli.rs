//! Settings every service takes, as flags with environment fallbacks.

use std::{fs, path::PathBuf};

use clap::Args;
use log::LevelFilter;

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Directory of the JSON-lines log file `<service>.log` (created if missing).
    #[arg(long, env = "LOG_DIR", default_value = "logs")]
    pub log_dir: PathBuf,

    /// Least severe level written: error, warn, info, debug or trace.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: LevelFilter,

    /// Enable the fault-injection API (`/admin/faults`). Off unless set: a deployment only
    /// has it when the lab profile turns it on.
    #[arg(long, env = "ENABLE_FAULTS")]
    pub enable_faults: bool,

    /// File holding a bearer token that admits non-loopback clients to the fault API.
    #[arg(long, env = "FAULT_TOKEN_FILE")]
    pub fault_token_file: Option<PathBuf>,
}

impl CommonArgs {
    /// The fault API's token, read from `--fault-token-file`.
    pub fn fault_token(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.fault_token_file else {
            return Ok(None);
        };
        let token = fs::read_to_string(path)
            .map_err(|err| format!("cannot read --fault-token-file {}: {err}", path.display()))?;
        let token = token.trim();
        if token.is_empty() {
            return Err(format!("--fault-token-file {} is empty", path.display()));
        }
        Ok(Some(token.to_owned()))
    }
}
