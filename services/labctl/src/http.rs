//! HTTP to the lab's parts, with failures turned into one line that names the target:
//! "cannot reach Grafana at http://127.0.0.1:3000: connection refused".

use std::time::Duration;

use anyhow::anyhow;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

/// A shared client: `timeout` bounds every request, connecting takes at most 3 s.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap_or_default()
}

/// A base URL without its trailing slashes.
pub fn base(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

/// Checks that a target URL is http(s), naming the flag otherwise.
pub fn check_url(flag: &str, url: &str) -> anyhow::Result<()> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(anyhow!("{flag} must be an http(s) URL, got `{url}`")),
    }
}

/// Why a request did not get an answer, in a few words.
pub fn transport_reason(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".into();
    }
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => "connection reset".into(),
                std::io::ErrorKind::TimedOut => "timed out".into(),
                _ => io.to_string(),
            };
        }
        source = cause.source();
    }
    if err.is_connect() {
        return "cannot connect".into();
    }
    if err.is_builder() {
        return "invalid URL".into();
    }
    if err.is_decode() {
        return format!("unreadable answer ({err})");
    }
    // The innermost cause is the most specific.
    let mut last = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        last = cause.to_string();
        source = cause.source();
    }
    last
}

/// Sends a request; a transport failure becomes "cannot reach <what> at <base>: <reason>".
pub async fn send(what: &str, base: &str, request: RequestBuilder) -> anyhow::Result<Response> {
    request
        .send()
        .await
        .map_err(|err| anyhow!("cannot reach {what} at {base}: {}", transport_reason(&err)))
}

/// The first line of a body, shortened, for error messages.
pub fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

/// The `error` field of a JSON error body, else the body itself.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| excerpt(body))
}

/// Fails on a non-2xx answer: 401/403 say the credentials were refused.
pub async fn expect_success(
    what: &str,
    base: &str,
    path: &str,
    response: Response,
) -> anyhow::Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(status_error(what, base, path, status, &body))
}

pub fn status_error(
    what: &str,
    base: &str,
    path: &str,
    status: StatusCode,
    body: &str,
) -> anyhow::Error {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => anyhow!(
            "{what} at {base} refused the credentials (HTTP {}): {}",
            status.as_u16(),
            error_message(body)
        ),
        _ => anyhow!(
            "{what} at {base} answered HTTP {} to {path}: {}",
            status.as_u16(),
            error_message(body)
        ),
    }
}

/// Decodes a JSON answer, naming the target when it is not the expected shape.
pub async fn json<T: DeserializeOwned>(
    what: &str,
    base: &str,
    path: &str,
    response: Response,
) -> anyhow::Result<T> {
    let text = response.text().await.map_err(|err| {
        anyhow!(
            "{what} at {base}: reading {path}: {}",
            transport_reason(&err)
        )
    })?;
    serde_json::from_str(&text).map_err(|err| {
        anyhow!(
            "{what} at {base} answered {path} with an unexpected body ({err}): {}",
            excerpt(&text)
        )
    })
}

/// GET `path` and decode the JSON answer.
pub async fn get_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    what: &str,
    base: &str,
    path: &str,
    auth: Option<(&str, &str)>,
) -> anyhow::Result<T> {
    let mut request = client.get(format!("{base}{path}"));
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = send(what, base, request).await?;
    let response = expect_success(what, base, path, response).await?;
    json(what, base, path, response).await
}

/// One line for an error and its causes.
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_by_scheme() {
        assert!(check_url("--api-url", "http://127.0.0.1:8080").is_ok());
        assert!(check_url("--api-url", "https://lab.example/").is_ok());
        let err = check_url("--api-url", "127.0.0.1:8080").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--api-url must be an http(s) URL, got `127.0.0.1:8080`"
        );
        assert!(check_url("--api-url", "http://").is_err());
    }

    #[test]
    fn error_bodies_are_reduced_to_their_message() {
        assert_eq!(error_message(r#"{"error":"nope","x":1}"#), "nope");
        assert_eq!(
            error_message(r#"{"message":"invalid username or password"}"#),
            "invalid username or password"
        );
        assert_eq!(error_message("plain\ntext"), "plain text");
        assert_eq!(excerpt(&"x".repeat(300)).chars().count(), 201);
    }
}
