//! Durations on the command line (`90s`, `5m`, `1m30s`, `500ms`, or plain seconds) and in
//! output (`1m05s`).

use std::time::Duration;

use alertlab_grafana::duration::parse_prometheus_duration;
use anyhow::anyhow;

/// Parses a duration flag; `flag` names it in the error.
pub fn parse(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    parse_prometheus_duration(text)
        .map(Duration::from_millis)
        .ok_or_else(|| anyhow!("{flag}: `{text}` is not a duration (e.g. 90s, 5m, 1m30s)"))
}

/// Like [`parse`], and at least one second.
pub fn parse_positive(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let d = parse(flag, text)?;
    if d < Duration::from_secs(1) {
        return Err(anyhow!("{flag} must be at least 1s, got `{text}`"));
    }
    Ok(d)
}

/// Like [`parse`], and at least 100 ms (poll intervals).
pub fn parse_interval(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let d = parse(flag, text)?;
    if d < Duration::from_millis(100) {
        return Err(anyhow!("{flag} must be at least 100ms, got `{text}`"));
    }
    Ok(d)
}

/// `45s`, `2m05s`, `1h02m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Seconds between two instants of wall-clock time, never negative.
pub fn secs_between(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> f64 {
    ((to - from).num_milliseconds().max(0) as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_take_prometheus_durations_or_seconds() {
        assert_eq!(parse("--for", "90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("--for", "1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("--for", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse("--for", "soon").unwrap_err().to_string(),
            "--for: `soon` is not a duration (e.g. 90s, 5m, 1m30s)"
        );
        assert!(parse_positive("--for", "0s").is_err());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(125)), "2m05s");
        assert_eq!(human(Duration::from_secs(3720)), "1h02m");
    }
}
