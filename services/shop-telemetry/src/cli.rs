//! Settings every service takes, as flags with environment fallbacks.

use std::{fs, path::PathBuf};

use clap::Args;
use log::LevelFilter;

use crate::{
    host::normalise_host,
    logging::{self, LogSize, LoggingError, Rotation},
    server::ConnectionLimits,
};

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Directory of the JSON-lines log file `<service>.log` (created if missing).
    #[arg(long, env = "LOG_DIR", default_value = "logs")]
    pub log_dir: PathBuf,

    /// Least severe level written: error, warn, info, debug or trace.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: LevelFilter,

    /// Enable the fault-injection API (`/admin/faults`). Off unless set: a deployment only
    /// has it when the lab profile turns it on. Needs --fault-token-file.
    #[arg(long, env = "ENABLE_FAULTS")]
    pub enable_faults: bool,

    /// File holding the bearer token every fault API request must present
    /// (`Authorization: Bearer <token>`).
    #[arg(long, env = "FAULT_TOKEN_FILE")]
    pub fault_token_file: Option<PathBuf>,

    /// Host names the fault API answers to besides `localhost` and loopback addresses
    /// (comma-separated; any port): this host's names and addresses, for clients on other
    /// hosts. A request naming another host in its `Host` header is refused (DNS rebinding).
    #[arg(long, env = "ADMIN_ALLOWED_HOSTS", value_delimiter = ',', value_parser = host)]
    pub admin_allowed_hosts: Vec<String>,

    #[command(flatten)]
    pub connections: ConnectionLimits,

    #[command(flatten)]
    pub log_rotation: LogRotationArgs,
}

impl Default for CommonArgs {
    /// The flags' defaults: logs under `logs` at `info`, fault injection off.
    fn default() -> Self {
        Self {
            log_dir: PathBuf::from("logs"),
            log_level: LevelFilter::Info,
            enable_faults: false,
            fault_token_file: None,
            admin_allowed_hosts: Vec::new(),
            connections: ConnectionLimits::default(),
            log_rotation: LogRotationArgs::default(),
        }
    }
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

    /// Refuses settings that contradict each other; run before the logger exists, so a bad
    /// setting is one plain line on stderr.
    pub fn validate(&self) -> Result<(), String> {
        self.connections.validate()?;
        if self.enable_faults && self.fault_token_file.is_none() {
            return Err(
                "--enable-faults needs --fault-token-file: the fault API always requires its bearer token"
                    .into(),
            );
        }
        self.fault_token().map(|_| ())
    }

    /// The fault API's token, read from `--fault-token-file` (its first line).
    pub fn fault_token(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.fault_token_file else {
            return Ok(None);
        };
        let token = fs::read_to_string(path)
            .map_err(|err| format!("cannot read --fault-token-file {}: {err}", path.display()))?;
        let token = token.lines().next().unwrap_or("").trim();
        if token.is_empty() {
            return Err(format!("--fault-token-file {} is empty", path.display()));
        }
        Ok(Some(token.to_owned()))
    }
}

/// A host name or address (a port is ignored), normalised.
fn host(text: &str) -> Result<String, String> {
    normalise_host(text).ok_or_else(|| format!("`{text}` is not a host name or address"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn parse(args: &[&str]) -> Result<CommonArgs, String> {
        let cli = Cli::try_parse_from(std::iter::once("service").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.common.validate()?;
        Ok(cli.common)
    }

    #[test]
    fn faults_need_a_token_file_and_allowed_hosts_are_host_names() {
        assert!(parse(&["--enable-faults"])
            .unwrap_err()
            .contains("--enable-faults needs --fault-token-file"));
        assert!(
            parse(&["--enable-faults", "--fault-token-file", "/no/such/file"])
                .unwrap_err()
                .contains("cannot read --fault-token-file /no/such/file")
        );
        let hosts = parse(&["--admin-allowed-hosts", "Shop.Example,192.168.1.2:8080"]).unwrap();
        assert_eq!(hosts.admin_allowed_hosts, ["shop.example", "192.168.1.2"]);
        assert!(parse(&["--admin-allowed-hosts", "http://shop/"])
            .unwrap_err()
            .contains("`http://shop/` is not a host name or address"));
        assert_eq!(parse(&[]).unwrap().connections, ConnectionLimits::default());
    }
}
