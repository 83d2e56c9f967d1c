//! How many connections a service holds and how long it waits on a client.

use std::time::Duration;

use clap::Args;

/// Connection limits, as flags with environment fallbacks. A client that opens connections
/// and sends nothing (or sends a request head byte by byte) holds a file descriptor and a
/// task each; these settings bound both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct ConnectionLimits {
    /// Most client connections held at once. At the limit a new connection displaces the one
    /// that has waited longest without a request in progress; when every connection has a
    /// request in progress, the new one is closed at once. Keep it below the open-file limit
    /// (the NixOS units set LimitNOFILE above it).
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(1..=65_536)
    )]
    pub max_connections: u32,

    /// Seconds a client has to send a complete request head, counted from when the server
    /// starts waiting for it (the connection is accepted, or the previous response is sent).
    #[arg(
        long,
        env = "HEADER_READ_TIMEOUT",
        default_value = "10",
        value_parser = seconds
    )]
    pub header_read_timeout: Duration,

    /// Seconds a kept-alive connection may stay without a new request after a response;
    /// at most the header-read timeout, which bounds that wait too.
    #[arg(
        long,
        env = "KEEP_ALIVE_TIMEOUT",
        default_value = "5",
        value_parser = seconds
    )]
    pub keep_alive_timeout: Duration,
}

/// Far above the lab's needs (a few connections per client), far below the 1,024 open files
/// a process gets by default.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 512;

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
        }
    }
}

impl ConnectionLimits {
    /// Refuses settings that contradict each other.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        if self.header_read_timeout.is_zero() || self.keep_alive_timeout.is_zero() {
            return Err("--header-read-timeout and --keep-alive-timeout must be above 0".into());
        }
        if self.keep_alive_timeout > self.header_read_timeout {
            return Err(format!(
                "--keep-alive-timeout ({} s) must not exceed --header-read-timeout ({} s), which \
                 also bounds the wait for the next request on a kept-alive connection",
                self.keep_alive_timeout.as_secs_f64(),
                self.header_read_timeout.as_secs_f64()
            ));
        }
        Ok(())
    }
}

/// Whole or fractional seconds, 0.001 to 3600.
fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.001..=3600.0).contains(&value) {
        return Err(format!("{value} is not between 0.001 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contradictory_or_empty_limits_are_refused() {
        assert_eq!(ConnectionLimits::default().validate(), Ok(()));
        let longer_keep_alive = ConnectionLimits {
            keep_alive_timeout: Duration::from_secs(30),
            ..ConnectionLimits::default()
        };
        assert!(longer_keep_alive
            .validate()
            .unwrap_err()
            .contains("must not exceed --header-read-timeout"));
        assert!(seconds("0").is_err());
        assert!(seconds("ten").is_err());
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
    }
}
