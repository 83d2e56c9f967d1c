//! Refuses request bodies above a size limit with 413, whether or not they declare a
//! Content-Length (a chunked body is read up to the limit, then refused).

use poem::{
    http::{header, StatusCode},
    Body, Endpoint, IntoResponse, Middleware, Request, Response, Result,
};

use crate::errors::json_error;

/// 64 KiB: far above any valid request of the shop.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    max_bytes: usize,
}

impl BodyLimit {
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes }
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
            max_bytes: self.max_bytes,
        }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
    max_bytes: usize,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(length) if length > self.max_bytes as u64 => return Ok(too_large(self.max_bytes)),
            Some(_) => {}
            None => {
                let body = req.take_body();
                match body.into_bytes_limit(self.max_bytes).await {
                    Ok(bytes) => req.set_body(Body::from(bytes)),
                    Err(_) => return Ok(too_large(self.max_bytes)),
                }
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
