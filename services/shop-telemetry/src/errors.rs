//! Every failure a client sees is JSON: `{"error": "..."}` with a 4xx or 5xx status.
//!
//! Handlers return typed `ApiResponse` enums whose error variants already carry an
//! [`ErrorBody`]. What poem itself rejects (malformed JSON, wrong content type, unknown route,
//! wrong method, oversized body) arrives here as plain text and is rewritten; 5xx texts are
//! replaced by a generic message so nothing internal leaks, and the original goes to the log.

use poem::{
    http::{header, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};
use poem_openapi::Object;
use serde::Serialize;

/// The JSON error body every service answers with.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Object)]
pub struct ErrorBody {
    /// What was wrong, in words a client can act on.
    pub error: String,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
        }
    }

    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| br#"{"error":"unknown error"}"#.to_vec())
    }
}

/// Middleware that turns every non-JSON error response into a JSON [`ErrorBody`].
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonErrors;

impl<E: Endpoint> Middleware<E> for JsonErrors {
    type Output = JsonErrorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        JsonErrorsEndpoint { inner }
    }
}

pub struct JsonErrorsEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for JsonErrorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let response = match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(err) => err.into_response(),
        };
        let status = response.status();
        if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let original = body.into_string().await.unwrap_or_default();
        let message = if status.is_server_error() {
            log::error!(
                event = "unhandled_error", method:% = method, path = path.as_str(),
                status = status.as_u16(), cause = original.as_str();
                "request failed: {original}"
            );
            "internal server error".to_owned()
        } else if original.trim().is_empty() {
            status
                .canonical_reason()
                .unwrap_or("request rejected")
                .to_lowercase()
        } else {
            original
        };
        let mut response = Response::from_parts(parts, ErrorBody::new(message).to_json().into());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8"
                .parse()
                .expect("static header"),
        );
        response.headers_mut().remove(header::CONTENT_LENGTH);
        Ok(response)
    }
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// A JSON error response outside poem-openapi (plain poem handlers, middleware).
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(ErrorBody::new(message).to_json())
}
