//! Refuses request bodies above a size limit with 413, whether or not they declare a
//! Content-Length (a chunked body is read up to the limit, then refused), and bodies that do
//! not arrive in time with 408: a client that sends a head and then stalls would otherwise
//! hold its connection (and a place under the connection cap) for as long as it likes.

use std::time::Duration;

use poem::{
    http::{header, StatusCode},
    Body, Endpoint, IntoResponse, Middleware, Request, Response, Result,
};

use crate::errors::json_error;

/// 64 KiB: far above any valid request of the shop.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// How long a whole request body may take to arrive: the shop's bodies are a few hundred
/// bytes.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    max_bytes: usize,
    read_timeout: Duration,
}

impl BodyLimit {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }

    pub fn with_read_timeout(self, read_timeout: Duration) -> Self {
        Self {
            read_timeout,
            ..self
        }
    }
}

impl Default for BodyLimit {
    fn default() -> Self {
        Self::new(DEFAULT_BODY_LIMIT)
    }
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint {
            inner,
            limit: *self,
        }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
    limit: BodyLimit,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let BodyLimit {
            max_bytes,
            read_timeout,
        } = self.limit;
        if declared.is_some_and(|length| length > max_bytes as u64) {
            return Ok(too_large(max_bytes));
        }
        // Read here, whatever the length, so the deadline covers every body.
        let body = req.take_body();
        match tokio::time::timeout(read_timeout, body.into_bytes_limit(max_bytes)).await {
            Ok(Ok(bytes)) => req.set_body(Body::from(bytes)),
            Ok(Err(_)) => return Ok(too_large(max_bytes)),
            Err(_) => {
                return Ok(json_error(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within {} s",
                        read_timeout.as_secs_f64()
                    ),
                ))
            }
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

fn too_large(max_bytes: usize) -> Response {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than the limit of {max_bytes} bytes"),
    )
}
