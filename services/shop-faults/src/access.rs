//! Who may use the fault API, and which requests it refuses before looking at the token.
//!
//! The token is always required: a loopback peer proves nothing (a same-host proxy, or a
//! browser tab under DNS rebinding, is a loopback peer too). A browser can still carry a
//! published token to a loopback port under a rebound name, so the API also refuses what only
//! a browser or a proxy sends: a `Host` that is not this host, an `Origin` or `Sec-Fetch-*`
//! header, and forwarding headers. labctl and curl send none of them.

use std::net::IpAddr;

use poem::{http::HeaderMap, Request};
use shop_telemetry::{
    bearer::{constant_time_eq, presented_bearer},
    host::normalise_host,
};

/// Who may use the admin API.
#[derive(Debug, Clone, Default)]
pub struct FaultAccess {
    /// Off in a deployment unless enabled: then the API refuses every call.
    pub enabled: bool,
    /// The bearer token every request must present. Enabled without one, the API refuses
    /// every call (the services refuse to start that way).
    pub token: Option<String>,
    /// Names (and addresses) the API answers to besides `localhost` and loopback
    /// addresses, normalised by [`normalise_host`].
    pub allowed_hosts: Vec<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 403: the API is off.
    Disabled,
    /// 403: enabled without a token (only a hand-built [`FaultAccess`] can be).
    NoTokenConfigured,
    /// 403: a request only a browser or a proxy makes, or one addressed to another host.
    Forbidden(String),
    /// 401: no token, or the wrong one.
    BadToken,
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Self::Disabled => {
                "fault injection is disabled on this service (start it with --enable-faults)".into()
            }
            Self::NoTokenConfigured => {
                "the fault API has no token configured (--fault-token-file), so it refuses every request".into()
            }
            Self::Forbidden(why) => why.clone(),
            Self::BadToken => "a valid `Authorization: Bearer <token>` header is required (the token of the service's --fault-token-file)".into(),
        }
    }
}

impl FaultAccess {
    /// From the settings every service takes (`--enable-faults`, `--fault-token-file`,
    /// `--admin-allowed-hosts`). Enabling faults without a token is a startup error.
    pub fn from_settings(common: &shop_telemetry::CommonArgs) -> Result<Self, String> {
        common.validate()?;
        let token = common.fault_token()?;
        let allowed_hosts = common
            .admin_allowed_hosts
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| {
                normalise_host(h).ok_or_else(|| {
                    format!("--admin-allowed-hosts: `{h}` is not a host name or address")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            enabled: common.enable_faults,
            token,
            allowed_hosts,
        })
    }

    /// Checks a request to the admin API: enabled, addressed to this host, not from a browser
    /// or through a proxy, and carrying the token.
    pub fn check(&self, req: &Request) -> Result<(), Refusal> {
        if !self.enabled {
            return Err(Refusal::Disabled);
        }
        let Some(token) = &self.token else {
            return Err(Refusal::NoTokenConfigured);
        };
        refuse_browsers_and_proxies(req.headers()).map_err(Refusal::Forbidden)?;
        self.check_host(req).map_err(Refusal::Forbidden)?;
        match presented_bearer(req) {
            Some(p) if constant_time_eq(p.as_bytes(), token.as_bytes()) => Ok(()),
            _ => Err(Refusal::BadToken),
        }
    }

    fn check_host(&self, req: &Request) -> Result<(), String> {
        let mut names = Vec::new();
        match req.headers().get("host").map(|v| v.to_str()) {
            Some(Ok(host)) => names.push(host.to_owned()),
            Some(Err(_)) => {
                return Err("the fault API refuses a `Host` header that is not text".into())
            }
            None => {}
        }
        // An absolute-form request target names a host too.
        if let Some(authority) = req.uri().authority() {
            names.push(authority.as_str().to_owned());
        }
        if names.is_empty() {
            return Err("the fault API needs a `Host` header naming this host".into());
        }
        for name in names {
            let allowed = normalise_host(&name)
                .is_some_and(|host| is_loopback_name(&host) || self.allowed_hosts.contains(&host));
            if !allowed {
                return Err(format!(
                    "the fault API answers only requests addressed to this host: `Host: {}` is not localhost, a loopback address or one of --admin-allowed-hosts",
                    excerpt(&name)
                ));
            }
        }
        Ok(())
    }
}

/// Headers only a browser (`Origin`, `Sec-Fetch-*`) or a proxy (`Forwarded`, `X-Forwarded-*`,
/// `X-Real-IP`, `Via`) adds.
fn refuse_browsers_and_proxies(headers: &HeaderMap) -> Result<(), String> {
    for name in headers.keys() {
        let name = name.as_str();
        if name == "origin" || name.starts_with("sec-fetch-") {
            return Err(format!(
                "the fault API refuses requests made by web pages (`{name}` header)"
            ));
        }
        if matches!(name, "forwarded" | "x-real-ip" | "via") || name.starts_with("x-forwarded-") {
            return Err(format!(
                "the fault API refuses proxied requests (`{name}` header)"
            ));
        }
    }
    Ok(())
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.parse::<IpAddr>().is_ok_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        })
}

fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_are_recognised() {
        for loopback in [
            "localhost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_name(loopback), "{loopback}");
        }
        for other in [
            "rebind.attacker.example",
            "localhost.attacker.example",
            "10.0.2.15",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_name(other), "{other}");
        }
    }

    #[test]
    fn browser_and_proxy_headers_are_named() {
        let mut headers = HeaderMap::new();
        assert_eq!(refuse_browsers_and_proxies(&headers), Ok(()));
        headers.insert("x-forwarded-host", "evil".parse().unwrap());
        assert!(refuse_browsers_and_proxies(&headers)
            .unwrap_err()
            .contains("proxied requests (`x-forwarded-host` header)"));
        let mut headers = HeaderMap::new();
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(refuse_browsers_and_proxies(&headers)
            .unwrap_err()
            .contains("web pages"));
    }
}
