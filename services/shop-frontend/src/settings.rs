use std::net::SocketAddr;

use clap::Parser;
use shop_telemetry::CommonArgs;

/// Longest `--api-timeout` accepted, in seconds.
pub const MAX_API_TIMEOUT: u64 = 300;
/// Longest `--session-timeout` accepted, in seconds (a week).
pub const MAX_SESSION_TIMEOUT: u64 = 7 * 24 * 60 * 60;

/// The shop's frontend service.
#[derive(Debug, Clone, Parser)]
#[command(name = "shop-frontend", version, about)]
pub struct Settings {
    /// Address and port to listen on: loopback unless told otherwise (e.g. `0.0.0.0:<port>`
    /// to serve other hosts).
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,

    /// Base URL of the API service (http or https).
    #[arg(long, env = "API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,

    /// Seconds one API call may take before the page fails with 502. Keep it well above the
    /// latency the lab injects into the API (1.5 s), which must slow pages, not fail them.
    #[arg(long, env = "API_TIMEOUT", default_value_t = 10)]
    pub api_timeout: u64,

    /// Seconds of inactivity after which a session and its cart are forgotten.
    #[arg(long, env = "SESSION_TIMEOUT", default_value_t = 1800)]
    pub session_timeout: u64,

    /// Most sessions (carts) held at once; when that many are live, a new cart is refused
    /// with 503 until some expire. A session is made only when a cart is first written.
    #[arg(
        long,
        env = "MAX_SESSIONS",
        default_value_t = crate::MAX_SESSIONS,
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub max_sessions: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Settings {
    /// Checks what clap cannot: the URL's scheme and the ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        api_base_url(&self.api_url)?;
        if !(1..=MAX_API_TIMEOUT).contains(&self.api_timeout) {
            anyhow::bail!(
                "--api-timeout must be between 1 and {MAX_API_TIMEOUT} seconds, got {}",
                self.api_timeout
            );
        }
        if !(1..=MAX_SESSION_TIMEOUT).contains(&self.session_timeout) {
            anyhow::bail!(
                "--session-timeout must be between 1 and {MAX_SESSION_TIMEOUT} seconds, got {}",
                self.session_timeout
            );
        }
        Ok(())
    }
}

/// The API's base URL without a trailing slash, or why it is not usable.
pub(crate) fn api_base_url(text: &str) -> anyhow::Result<String> {
    let trimmed = text.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed).ok();
    match parsed {
        Some(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Ok(trimmed.to_owned())
        }
        _ => anyhow::bail!("--api-url must be an http(s) URL, got `{text}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        let mut argv = vec!["shop-frontend"];
        argv.extend_from_slice(args);
        Settings::try_parse_from(argv).unwrap()
    }

    #[test]
    fn defaults_follow_the_run_contract() {
        let s = Settings::try_parse_from(["shop-frontend"]).unwrap();
        assert_eq!(s.listen.port(), crate::DEFAULT_PORT);
        assert!(s.listen.ip().is_loopback(), "{}", s.listen);
        assert_eq!(s.api_url, "http://127.0.0.1:8080");
        assert_eq!((s.api_timeout, s.session_timeout), (10, 1800));
        assert_eq!(s.max_sessions, crate::MAX_SESSIONS);
        s.validate().unwrap();
    }

    #[test]
    fn bad_urls_and_ranges_are_refused_with_the_flag_named() {
        for (args, expected) in [
            (
                &["--api-url", "ftp://x"][..],
                "--api-url must be an http(s) URL",
            ),
            (
                &["--api-url", "localhost:8080"],
                "--api-url must be an http(s) URL",
            ),
            (
                &["--api-url", "http://"],
                "--api-url must be an http(s) URL",
            ),
            (
                &["--api-timeout", "0"],
                "--api-timeout must be between 1 and 300",
            ),
            (
                &["--session-timeout", "0"],
                "--session-timeout must be between",
            ),
        ] {
            let err = settings(args).validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn the_base_url_loses_its_trailing_slash() {
        assert_eq!(
            api_base_url("https://api.example:8443/").unwrap(),
            "https://api.example:8443"
        );
    }
}
