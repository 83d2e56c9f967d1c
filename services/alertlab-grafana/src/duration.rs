//! Duration strings as the files use them.

/// Parses the restricted duration grammar of the timing profiles, `[<n>h][<n>m][<n>s]` with at
/// least one part and no leading zeros (`30s`, `1m`, `1m30s`, `0s`), into seconds. This is
/// exactly what `grafana/profile.nix` accepts (`builtins.match` with
/// `((0|[1-9][0-9]*)h)?((0|[1-9][0-9]*)m)?((0|[1-9][0-9]*)s)?`).
pub fn parse_profile_duration(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut seconds = 0u64;
    for (unit, factor) in [('h', 3600u64), ('m', 60), ('s', 1)] {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 || !rest[digits..].starts_with(unit) {
            continue;
        }
        let number = &rest[..digits];
        if number.len() > 1 && number.starts_with('0') {
            return None;
        }
        seconds = seconds.checked_add(number.parse::<u64>().ok()?.checked_mul(factor)?)?;
        rest = &rest[digits + 1..];
    }
    rest.is_empty().then_some(seconds)
}

/// Parses a Prometheus duration (`model.ParseDuration`: units `y w d h m s ms`, largest first,
/// each at most once, e.g. `1h30m`, `10s`, `500ms`) into milliseconds. Grafana parses group
/// intervals and notification timings this way.
pub fn parse_prometheus_duration(text: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1_000),
    ];
    // Order in which units may follow each other (ms after s).
    const ORDER: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    if text == "0" {
        return Some(0);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total = 0u64;
    let mut last_rank: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, factor) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        let rank = ORDER.iter().position(|u| u == unit)?;
        if last_rank.is_some_and(|r| r >= rank) {
            return None;
        }
        last_rank = Some(rank);
        total = total.checked_add(number.checked_mul(*factor)?)?;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_durations() {
        assert_eq!(parse_profile_duration("30s"), Some(30));
        assert_eq!(parse_profile_duration("1m"), Some(60));
        assert_eq!(parse_profile_duration("1m30s"), Some(90));
        assert_eq!(parse_profile_duration("2h"), Some(7200));
        assert_eq!(parse_profile_duration("0s"), Some(0));
        for bad in [
            "", "30", "s", "030s", "1.5m", "500ms", "1d", "30s1m", "1m 30s", "m30s",
        ] {
            assert_eq!(parse_profile_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse_prometheus_duration("10s"), Some(10_000));
        assert_eq!(parse_prometheus_duration("1m30s"), Some(90_000));
        assert_eq!(parse_prometheus_duration("500ms"), Some(500));
        assert_eq!(parse_prometheus_duration("1h"), Some(3_600_000));
        assert_eq!(parse_prometheus_duration("4h"), Some(14_400_000));
        assert_eq!(parse_prometheus_duration("0"), Some(0));
        for bad in ["", "10", "s", "30s1m", "1.5m", "10 s", "-10s"] {
            assert_eq!(parse_prometheus_duration(bad), None, "{bad:?}");
        }
    }
}
