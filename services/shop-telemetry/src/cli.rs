//! Settings every service takes, as flags with environment fallbacks.

use std::{fs, path::PathBuf};

use clap::Args;
use log::LevelFilter;

use crate::logging::{self, LogSize, LoggingError, Rotation};

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

    #[command(flatten)]
    pub log_rotation: LogRotationArgs,
}

/// When the log file rotates (by size, and on SIGHUP) and how many rotated files are kept.
#[derive(Debug, Clone, Args)]
pub struct LogRotationArgs {
    /// Size at which `<service>.log` rotates to `<service>.log.1`: bytes, or with a unit
    /// (KiB, MiB, GiB), 1KiB to 1GiB.
    #[arg(
        long = "log-rotate-size",
        env = "LOG_ROTATE_SIZE",
        default_value = "10MiB"
    )]
    pub size: LogSize,

    /// Rotated files kept (`<service>.log.1`, newest, to `.N`); older ones are deleted.
    #[arg(long = "log-rotate-keep", env = "LOG_ROTATE_KEEP", default_value_t = Rotation::default().keep,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub keep: u32,
}

impl Default for LogRotationArgs {
    fn default() -> Self {
        let rotation = Rotation::default();
        Self {
            size: rotation.max_size,
            keep: rotation.keep,
        }
    }
}

impl LogRotationArgs {
    pub fn rotation(&self) -> Rotation {
        Rotation {
            max_size: self.size,
            keep: self.keep,
        }
    }
}

impl CommonArgs {
    /// Installs the service's logger with these settings ([`logging::init`]).
    pub fn init_logging(&self, service: &'static str) -> Result<PathBuf, LoggingError> {
        logging::init(
            service,
            &self.log_dir,
            self.log_level,
            self.log_rotation.rotation(),
        )
    }

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
