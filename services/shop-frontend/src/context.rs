//! What the frontend's operations share: the API client, the sessions, the metrics, and the
//! rules for answering and logging an API failure.

use poem::{
    http::{header, StatusCode},
    Request,
};
use poem_openapi::payload::Response;
use shop_telemetry::ErrorBody;

use crate::{
    api_client::{ApiClient, ApiError},
    metrics::{FrontendMetrics, Page},
    sessions::{presented_id, Session, Sessions},
};

/// What a client is told when the API fails; the cause goes to the log only.
pub const UPSTREAM_FAILURE: &str = "the shop's API is unavailable; try again shortly";

#[derive(Clone)]
pub struct Context {
    pub api: ApiClient,
    pub sessions: Sessions,
    pub metrics: FrontendMetrics,
}

/// An API call that did not give a page what it needed.
pub enum Failure {
    /// The API refused the request (4xx): passed on with its status and message.
    Refused(StatusCode, ErrorBody),
    /// The API is unreachable, timed out or failed: already logged as `page_error`.
    Upstream(ErrorBody),
}

impl Context {
    /// The request's session, created when it has none (or an expired one).
    pub fn session(&self, req: &Request) -> Session {
        self.sessions.resolve(presented_id(req.headers()))
    }

    /// Counts a successful render and logs it.
    pub fn rendered(&self, page: Page, session: &Session) {
        self.metrics.page_view(page);
        log::info!(
            event = "page_rendered", page = page.as_str(), session = session.tag();
            "rendered the {} page", page.as_str()
        );
    }

    /// Sorts an API failure: a refusal is the client's business (never an error here); the
    /// API failing is, and is logged at error as `page_error` for the lab's alert.
    pub fn failure(&self, page: Page, session: &Session, err: ApiError) -> Failure {
        if let ApiError::Client { status, message } = err {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            return Failure::Refused(status, ErrorBody::new(message));
        }
        log_upstream_failure(page, session, &err);
        Failure::Upstream(ErrorBody::new(UPSTREAM_FAILURE))
    }
}

pub fn log_upstream_failure(page: Page, session: &Session, err: &ApiError) {
    let cause = err.to_string();
    log::error!(
        event = "page_error", page = page.as_str(), session = session.tag(), cause = cause.as_str();
        "the {} page failed: {cause}", page.as_str()
    );
}

/// Wraps a response so that a new session's cookie is set.
pub fn with_session<T>(inner: T, session: &Session) -> Response<T> {
    let response = Response::new(inner);
    if session.is_new {
        response.header(header::SET_COOKIE, session.set_cookie())
    } else {
        response
    }
}
