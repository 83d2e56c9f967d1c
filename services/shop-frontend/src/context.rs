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
    sessions::{presented_id, Session, Sessions, SessionsFull},
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
    /// The request's live session, if it presents one; reading needs none, so none is made.
    pub fn session(&self, req: &Request) -> Option<Session> {
        self.sessions.find(presented_id(req.headers()))
    }

    /// The session to write the request's cart to, created when it has none (or an expired
    /// one); refused when the store is full of live carts.
    pub fn session_for_cart(&self, req: &Request) -> Result<Session, SessionsFull> {
        self.sessions.find_or_create(presented_id(req.headers()))
    }

    /// Units in the visitor's cart (none without a session).
    pub fn cart_units(&self, session: Option<&Session>) -> i32 {
        session.map_or(0, |s| self.sessions.cart(s).units())
    }

    /// Counts a successful render and logs it.
    pub fn rendered(&self, page: Page, session: Option<&Session>) {
        self.metrics.page_view(page);
        log::info!(
            event = "page_rendered", page = page.as_str(), session = tag(session);
            "rendered the {} page", page.as_str()
        );
    }

    /// Sorts an API failure: a refusal is the client's business (never an error here); the
    /// API failing is, and is logged at error as `page_error` for the lab's alert.
    pub fn failure(&self, page: Page, session: Option<&Session>, err: ApiError) -> Failure {
        if let ApiError::Client { status, message } = err {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            return Failure::Refused(status, ErrorBody::new(message));
        }
        log_upstream_failure(page, session, &err);
        Failure::Upstream(ErrorBody::new(UPSTREAM_FAILURE))
    }
}

/// What logs show for a session: a prefix of its id, `-` without one.
pub fn tag(session: Option<&Session>) -> &str {
    session.map_or("-", Session::tag)
}

pub fn log_upstream_failure(page: Page, session: Option<&Session>, err: &ApiError) {
    let cause = err.to_string();
    log::error!(
        event = "page_error", page = page.as_str(), session = tag(session), cause = cause.as_str();
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
