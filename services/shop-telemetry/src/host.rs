//! Host names as the `Host` header and the settings give them.

/// A `Host` value (or a configured name) without its port, lower-case, without a trailing
/// dot, IPv6 without brackets; None when it is not a plausible host.
pub fn normalise_host(text: &str) -> Option<String> {
    let text = text.trim();
    let host = if let Some(rest) = text.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        address.parse::<std::net::Ipv6Addr>().ok()?;
        address
    } else if text.parse::<std::net::Ipv6Addr>().is_ok() {
        // A configured IPv6 address without brackets.
        text
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) if is_port(port) => host,
            Some(_) => return None,
            None => text,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let plausible = if host.contains(':') {
        host.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    plausible.then_some(host)
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_compared_without_port_case_or_trailing_dot() {
        for (given, expected) in [
            ("localhost:8080", Some("localhost")),
            ("LocalHost.", Some("localhost")),
            ("127.0.0.1:8083", Some("127.0.0.1")),
            ("[::1]:8080", Some("::1")),
            ("::1", Some("::1")),
            ("shop.example.internal:8082", Some("shop.example.internal")),
            ("evil.example:80:80", None),
            ("[::1", None),
            ("a b", None),
            ("", None),
        ] {
            assert_eq!(normalise_host(given).as_deref(), expected, "{given}");
        }
    }
}
