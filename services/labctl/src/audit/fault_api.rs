//! `labctl audit fault-api`: each service's fault API, asked as a client on another host
//! would ask it, refuses a listing and a fault without the token and with a wrong one, refuses
//! a fault even with the token when a web page sends it (`Origin`) or when it names another
//! host (DNS rebinding), and answers a listing with the token of `--fault-token-file`. Nothing
//! is changed: every write sent must be refused.

use std::process::ExitCode;

use anyhow::anyhow;
use reqwest::StatusCode;
use serde_json::json;

use super::{args::FaultApiArgs, verdict};
use crate::{cli::Targets, http, scenario::faults::read_token};

const PATH: &str = "/admin/faults";

/// One probe: what is sent and the status it must get.
struct Probe {
    what: &'static str,
    write: bool,
    token: Option<String>,
    /// A header only a web page (or a rebound name) brings, which must be refused even with
    /// the token.
    header: Option<(&'static str, &'static str)>,
    expected: StatusCode,
}

fn probes(token: &str) -> Vec<Probe> {
    vec![
        Probe {
            what: "a listing without a token",
            write: false,
            token: None,
            header: None,
            expected: StatusCode::UNAUTHORIZED,
        },
        Probe {
            what: "a fault without a token",
            write: true,
            token: None,
            header: None,
            expected: StatusCode::UNAUTHORIZED,
        },
        Probe {
            what: "a listing with a wrong token",
            write: false,
            token: Some(format!("{token}-wrong")),
            header: None,
            expected: StatusCode::UNAUTHORIZED,
        },
        Probe {
            what: "a fault with a wrong token",
            write: true,
            token: Some(format!("wrong-{token}")),
            header: None,
            expected: StatusCode::UNAUTHORIZED,
        },
        Probe {
            what: "a fault with the token from a web page (`Origin`)",
            write: true,
            token: Some(token.to_owned()),
            header: Some(("origin", "http://rebind.attacker.example")),
            expected: StatusCode::FORBIDDEN,
        },
        Probe {
            what: "a fault with the token addressed to another host (`Host`, DNS rebinding)",
            write: true,
            token: Some(token.to_owned()),
            header: Some(("host", "rebind.attacker.example")),
            expected: StatusCode::FORBIDDEN,
        },
        Probe {
            what: "a listing with the token",
            write: false,
            token: Some(token.to_owned()),
            header: None,
            expected: StatusCode::OK,
        },
    ]
}

/// `NAME=URL`.
pub fn parse_service(spec: &str) -> anyhow::Result<(String, String)> {
    let (name, url) = spec
        .split_once('=')
        .ok_or_else(|| anyhow!("--service `{spec}`: expected NAME=URL"))?;
    http::check_url(&format!("--service {name}"), url)?;
    Ok((name.trim().to_owned(), http::base(url)))
}

pub async fn command(targets: &Targets, args: &FaultApiArgs) -> anyhow::Result<ExitCode> {
    let token = read_token(targets.fault_token_file.as_deref())?
        .ok_or_else(|| anyhow!("audit fault-api needs --fault-token-file (the token to accept)"))?;
    let services = args
        .service
        .iter()
        .map(|s| parse_service(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = http::client(std::time::Duration::from_secs(targets.timeout.max(1)));
    let mut findings = Vec::new();
    for (name, base) in &services {
        for probe in probes(&token) {
            let url = format!("{base}{PATH}");
            let mut request = if probe.write {
                // A fault that would do nothing for long, should it be accepted.
                client
                    .post(&url)
                    .json(&json!({"kind": "latency", "value": 1, "duration_seconds": 1}))
            } else {
                client.get(&url)
            };
            if let Some(token) = &probe.token {
                request = request.bearer_auth(token);
            }
            if let Some((name, value)) = probe.header {
                request = request.header(name, value);
            }
            let what = format!("the {name} service");
            let response = http::send(&what, base, request).await?;
            let status = response.status();
            if status == probe.expected {
                println!("{name}: {}: {} as it must", probe.what, status.as_u16());
            } else {
                let body = response.text().await.unwrap_or_default();
                findings.push(format!(
                    "{name} ({base}): {} answered {} ({}), not {}",
                    probe.what,
                    status.as_u16(),
                    http::error_message(&body),
                    probe.expected.as_u16()
                ));
            }
        }
    }
    verdict("fault-api", &findings)
}
