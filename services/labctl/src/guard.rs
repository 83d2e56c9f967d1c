//! What every control endpoint labctl serves checks before a handler runs (traffic's
//! `--control-listen`, `labctl scenario serve`), and how it is served.
//!
//! - `Host` must name this machine: a loopback address or `localhost` (any port), the address
//!   the endpoint listens on, or a name given with `--allowed-host`. A page that makes the
//!   browser resolve its own domain to 127.0.0.1 (DNS rebinding) sends its domain: refused.
//! - Requests a browser makes are refused whatever they carry: any `Origin` (every
//!   cross-origin write and every rebinding request has one) or `Sec-Fetch-*` header.
//!   Forwarded requests (`Forwarded`, `X-Forwarded-*`) are refused too: a proxy in front
//!   would hide who asks.
//! - With a token, every path but `/healthz` needs `Authorization: Bearer <token>` (compared
//!   in constant time).
//! - Bodies over [`MAX_BODY`] are refused with 413, with or without a Content-Length.
//! - At most [`MAX_CONNECTIONS`] connections are served at once (more wait in the kernel's
//!   backlog), and a connection silent for [`IDLE_TIMEOUT`] is closed.
//!
//! Every refusal is a JSON `{"error": ...}` saying what was wrong.

use std::{
    fs, io,
    net::{IpAddr, SocketAddr},
    path::Path,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use anyhow::{anyhow, Context as _};
use poem::{
    http::StatusCode,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    web::{Json, LocalAddr, RemoteAddr},
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};
use serde_json::json;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};

/// Largest request body accepted (the control requests are a few bytes of JSON).
pub const MAX_BODY: usize = 4 * 1024;
/// Connections served at once; a control endpoint has one client at a time in practice.
pub const MAX_CONNECTIONS: usize = 16;
/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bearer token, never printed.
#[derive(Clone)]
pub struct Token(Arc<Vec<u8>>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads a token file (surrounding whitespace trimmed); `flag` names it in errors.
    pub fn from_file(flag: &str, path: &Path) -> anyhow::Result<Self> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("{flag}: cannot read {}", path.display()))?;
        let token = text.trim();
        if token.len() < 16 {
            return Err(anyhow!(
                "{flag}: the token in {} is shorter than 16 characters",
                path.display()
            ));
        }
        Ok(Self(Arc::new(token.as_bytes().to_vec())))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Equal to `offered`, in time that does not depend on where they differ.
    pub fn matches(&self, offered: &[u8]) -> bool {
        let expected = self.0.as_slice();
        let mut difference = u8::from(expected.len() != offered.len());
        for (i, byte) in expected.iter().enumerate() {
            difference |= byte ^ offered.get(i).copied().unwrap_or(0);
        }
        difference == 0
    }
}

/// Which requests an endpoint accepts.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Host names (lower case) accepted besides loopback addresses and `localhost`.
    allowed_hosts: Vec<String>,
    token: Option<Token>,
}

impl Policy {
    /// `listen`'s address is accepted as a Host when it is a specific one.
    pub fn new(listen: SocketAddr, allowed_hosts: &[String], token: Option<Token>) -> Self {
        let mut hosts: Vec<String> = allowed_hosts
            .iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
            hosts.push(listen.ip().to_string());
        }
        Self {
            allowed_hosts: hosts,
            token,
        }
    }

    /// Why `request` is refused, or None.
    pub fn refusal(&self, request: &Request) -> Option<(StatusCode, String)> {
        let Some(host) = request.header("host") else {
            return Some((StatusCode::BAD_REQUEST, "a Host header is required".into()));
        };
        if !self.host_allowed(host) {
            return Some((
                StatusCode::FORBIDDEN,
                format!(
                    "Host `{}` is not accepted: this endpoint answers to localhost, loopback addresses{}",
                    crate::http::excerpt(host),
                    if self.allowed_hosts.is_empty() {
                        String::new()
                    } else {
                        format!(" and {}", self.allowed_hosts.join(", "))
                    }
                ),
            ));
        }
        let headers = request.headers();
        if headers.contains_key("origin")
            || headers.keys().any(|k| k.as_str().starts_with("sec-fetch-"))
        {
            return Some((
                StatusCode::FORBIDDEN,
                "requests from web pages (with an Origin or Sec-Fetch-* header) are refused".into(),
            ));
        }
        if headers.contains_key("forwarded")
            || headers
                .keys()
                .any(|k| k.as_str().starts_with("x-forwarded-"))
        {
            return Some((
                StatusCode::FORBIDDEN,
                "forwarded requests (Forwarded, X-Forwarded-*) are refused".into(),
            ));
        }
        if let Some(token) = &self.token {
            if request.uri().path() != "/healthz" {
                let offered = request
                    .header("authorization")
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim);
                match offered {
                    None => {
                        return Some((
                            StatusCode::UNAUTHORIZED,
                            "missing `Authorization: Bearer <token>`".into(),
                        ))
                    }
                    Some(offered) if !token.matches(offered.as_bytes()) => {
                        return Some((StatusCode::UNAUTHORIZED, "wrong token".into()))
                    }
                    Some(_) => {}
                }
            }
        }
        None
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        // `[::1]:9098`, `127.0.0.1:9098`, `name:9098`, or without the port.
        let name = if let Some(rest) = host.strip_prefix('[') {
            match rest.split_once(']') {
                Some((inside, after)) if after.is_empty() || is_port_suffix(after) => inside,
                _ => return false,
            }
        } else {
            match host.rsplit_once(':') {
                Some((name, port))
                    if !name.contains(':') && is_port_suffix(&format!(":{port}")) =>
                {
                    name
                }
                Some(_) => return false,
                None => host.as_str(),
            }
        };
        let name = name.trim_end_matches('.');
        if name == "localhost" {
            return true;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            if ip.is_loopback() {
                return true;
            }
        }
        self.allowed_hosts.iter().any(|h| h == name)
    }
}

fn is_port_suffix(text: &str) -> bool {
    text.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut response = (status, Json(json!({ "error": message }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            "Bearer".parse().expect("a valid header"),
        );
    }
    response
}

/// The middleware applying a [`Policy`] and the body limit.
pub struct Guard(pub Policy);

impl<E: Endpoint> Middleware<E> for Guard {
    type Output = GuardEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        GuardEndpoint {
            inner,
            policy: self.0.clone(),
        }
    }
}

pub struct GuardEndpoint<E> {
    inner: E,
    policy: Policy,
}

impl<E: Endpoint> Endpoint for GuardEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut request: Request) -> Result<Self::Output> {
        if let Some((status, message)) = self.policy.refusal(&request) {
            return Ok(refuse(status, &message));
        }
        let too_large = request
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > MAX_BODY as u64);
        let body = if too_large {
            None
        } else {
            request.take_body().into_bytes_limit(MAX_BODY).await.ok()
        };
        let Some(body) = body else {
            return Ok(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is over {MAX_BODY} bytes (or unreadable)"),
            ));
        };
        request.set_body(body);
        match self.inner.call(request).await {
            Ok(output) => Ok(output.into_response()),
            Err(err) => Ok(err.into_response()),
        }
    }
}

/// A TCP acceptor that serves at most `max` connections at once.
pub struct LimitedAcceptor {
    inner: TcpAcceptor,
    permits: Arc<Semaphore>,
}

impl LimitedAcceptor {
    /// Binds `addr` (failing at once if it cannot).
    pub async fn bind(addr: SocketAddr, max: usize) -> io::Result<Self> {
        let inner = TcpListener::bind(addr).into_acceptor().await?;
        Ok(Self {
            inner,
            permits: Arc::new(Semaphore::new(max.max(1))),
        })
    }

    /// The address it is bound to (port 0 resolved).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        Acceptor::local_addr(&self.inner)
            .first()
            .and_then(|a| a.as_socket_addr().copied())
    }
}

impl Acceptor for LimitedAcceptor {
    type Io = LimitedStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        Acceptor::local_addr(&self.inner)
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("connection limit closed"))?;
        let (stream, local, remote, scheme) = self.inner.accept().await?;
        Ok((
            LimitedStream {
                stream,
                _permit: permit,
            },
            local,
            remote,
            scheme,
        ))
    }
}

/// A connection holding one of the acceptor's permits until it is dropped.
pub struct LimitedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> Policy {
        Policy::new(
            "127.0.0.1:9097".parse().unwrap(),
            &allowed.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            None,
        )
    }

    #[test]
    fn hosts_naming_this_machine_are_accepted_and_others_refused() {
        let p = policy(&["Lab.Example."]);
        for host in [
            "localhost",
            "localhost:9097",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.0.0.1:19097",
            "127.8.9.10:9097",
            "[::1]:9097",
            "[::1]",
            "lab.example:9097",
            "lab.example.",
        ] {
            assert!(p.host_allowed(host), "{host} refused");
        }
        for host in [
            "rebind.attacker.example:9097",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:9097",
            "10.0.2.15:9097",
            "[::2]:9097",
            "[::1]x",
            "localhost:",
            "localhost:abc",
            "localhost:9097:1",
            "",
        ] {
            assert!(!p.host_allowed(host), "{host} accepted");
        }
    }

    #[test]
    fn a_specific_listen_address_is_an_accepted_host() {
        let p = Policy::new("10.0.2.15:9098".parse().unwrap(), &[], None);
        assert!(p.host_allowed("10.0.2.15:9098"));
        let any = Policy::new("0.0.0.0:9098".parse().unwrap(), &[], None);
        assert!(!any.host_allowed("0.0.0.0:9098"));
    }

    #[test]
    fn tokens_compare_whole() {
        let dir = std::env::temp_dir().join(format!("labctl-guard-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        fs::write(&file, "  0123456789abcdef0123\n").unwrap();
        let token = Token::from_file("--token-file", &file).unwrap();
        assert!(token.matches(b"0123456789abcdef0123"));
        for wrong in [
            &b"0123456789abcdef012"[..],
            b"0123456789abcdef01234",
            b"0123456789abcdef0124",
            b"",
        ] {
            assert!(!token.matches(wrong));
        }
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        fs::write(&file, "short").unwrap();
        let err = Token::from_file("--token-file", &file).unwrap_err();
        assert!(err.to_string().contains("shorter than 16"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
