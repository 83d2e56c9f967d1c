//! `POST /checkout`: one API order per cart line. Completed lines leave the cart; the rest
//! stay, so the visitor can try again.
//!
//! Logging follows the lab's alert rules: a checkout that fails because a payment was declined
//! or stock was short is a warning (`checkout_failed`); only the API failing is an error
//! (`page_error`).

use poem::{http::StatusCode, Request};
use poem_openapi::{payload::Json, ApiResponse, Enum, Object, OpenApi, Tags};
use serde_json::Value;
use shop_telemetry::ErrorBody;

use crate::{
    api_client::{ApiError, NewOrder, OrderOutcome, OrderedBy},
    cart::{Cart, CartLine},
    context::{log_upstream_failure, Context, UPSTREAM_FAILURE},
    metrics::Page,
    sessions::Session,
};

#[derive(Tags)]
enum ApiTags {
    /// The session's cart and checkout.
    Cart,
}

pub struct CheckoutApi {
    ctx: Context,
}

impl CheckoutApi {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
enum PaymentMethod {
    Card,
    Paypal,
    BankTransfer,
    GiftCard,
}

impl PaymentMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Paypal => "paypal",
            Self::BankTransfer => "bank_transfer",
            Self::GiftCard => "gift_card",
        }
    }
}

/// A checkout. Its orders are the customer's when the request carries the customer's
/// session (`Authorization: Bearer <session_token>` from the API's `POST /login`), and
/// anonymous otherwise; an email in the body is refused like any unknown field.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
struct CheckoutRequest {
    payment_method: PaymentMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
enum CheckoutStatus {
    /// Every line was ordered.
    Completed,
    /// Some lines were ordered; the others stay in the cart.
    Partial,
    /// Nothing was ordered.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
enum ItemStatus {
    Completed,
    /// The payment was declined; the API recorded the order as failed.
    Declined,
    InsufficientStock,
    /// The API refused the order (unknown product, invalid session, too many orders).
    Rejected,
    /// The API failed or did not answer; the order may not have been placed.
    Unavailable,
    /// Not tried: the API had failed on an earlier line.
    NotAttempted,
}

/// One cart line's outcome.
#[derive(Debug, Clone, Object)]
struct CheckoutItem {
    product_id: i32,
    quantity: i32,
    status: ItemStatus,
    /// The API's order, when it recorded one (completed, or failed after a declined payment).
    #[oai(skip_serializing_if_is_none)]
    order: Option<Value>,
    /// Why the line was not ordered.
    #[oai(skip_serializing_if_is_none)]
    error: Option<String>,
}

#[derive(Debug, Clone, Object)]
struct CheckoutResult {
    status: CheckoutStatus,
    /// Why the checkout failed, when it did.
    #[oai(skip_serializing_if_is_none)]
    error: Option<String>,
    /// One entry per cart line, in cart order.
    orders: Vec<CheckoutItem>,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_checkout")]
enum CheckoutResponse {
    /// At least one line was ordered (`completed` or `partial`).
    #[oai(status = 201)]
    Created(Json<CheckoutResult>),
    /// Malformed request, or the cart is empty.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Every payment was declined; the cart is kept.
    #[oai(status = 402)]
    PaymentDeclined(Json<CheckoutResult>),
    /// Not enough stock; nothing was ordered and the cart is kept.
    #[oai(status = 409)]
    InsufficientStock(Json<CheckoutResult>),
    /// The API refused the orders (unknown product, an invalid or expired session: 401, too
    /// many orders: 429), passed on with its status.
    #[oai(status_range = "4XX")]
    Refused(StatusCode, Json<CheckoutResult>),
    /// The API is unreachable, timed out or failed; the cart is kept.
    #[oai(status = 503)]
    Unavailable(Json<CheckoutResult>),
}

fn bad_checkout(err: poem::Error) -> CheckoutResponse {
    CheckoutResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

/// Why nothing was ordered, most pressing first.
#[derive(Debug, Clone, Copy)]
enum FailureReason {
    ApiUnavailable,
    InsufficientStock,
    PaymentDeclined,
    /// The API refused the orders with this status.
    Rejected(StatusCode),
}

impl FailureReason {
    /// The `reason` of the `checkout_failed` log line.
    fn as_str(self) -> &'static str {
        match self {
            Self::ApiUnavailable => "api_unavailable",
            Self::InsufficientStock => "insufficient_stock",
            Self::PaymentDeclined => "payment_declined",
            Self::Rejected(_) => "rejected",
        }
    }
}

/// What placing the cart's orders gave.
#[derive(Default)]
struct Placed {
    items: Vec<CheckoutItem>,
    /// Lines that stay in the cart.
    kept: Vec<CartLine>,
    /// The first refusal's status (4xx other than 402/409).
    refusal: Option<StatusCode>,
    /// The API failure that stopped the checkout.
    api_failure: Option<ApiError>,
}

impl Placed {
    fn count(&self, status: ItemStatus) -> usize {
        self.items.iter().filter(|i| i.status == status).count()
    }

    fn push(
        &mut self,
        line: CartLine,
        status: ItemStatus,
        order: Option<Value>,
        error: Option<String>,
    ) {
        if status != ItemStatus::Completed {
            self.kept.push(line);
        }
        self.items.push(CheckoutItem {
            product_id: line.product_id,
            quantity: line.quantity,
            status,
            order,
            error,
        });
    }
}

#[OpenApi(tag = "ApiTags::Cart")]
impl CheckoutApi {
    /// Orders everything in the session's cart, one API order per product.
    #[oai(path = "/checkout", method = "post")]
    async fn checkout(&self, req: &Request, body: Json<CheckoutRequest>) -> CheckoutResponse {
        // Without a session there is no cart; checking out creates none.
        let session = self.ctx.session(req);
        // Taken out of the cart while the orders are placed, so a second checkout at the same
        // time finds it empty instead of ordering everything twice.
        let lines = session
            .as_ref()
            .map(|s| self.ctx.sessions.with_cart(s, Cart::take))
            .unwrap_or_default();
        let Some(session) = session.filter(|_| !lines.is_empty()) else {
            return CheckoutResponse::BadRequest(Json(ErrorBody::new(
                "the cart is empty: add products with POST /cart/items first",
            )));
        };
        let by = OrderedBy {
            authorization: req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            client_ip: req.remote_addr().as_socket_addr().map(|a| a.ip()),
        };
        let placed = self.place(&lines, &body.0, by).await;
        if !placed.kept.is_empty() {
            let kept = placed.kept.clone();
            self.ctx
                .sessions
                .with_cart(&session, move |cart| cart.restore(kept));
        }
        self.conclude(&session, body.0.payment_method, placed)
    }
}

impl CheckoutApi {
    async fn place(
        &self,
        lines: &[CartLine],
        request: &CheckoutRequest,
        by: OrderedBy<'_>,
    ) -> Placed {
        let mut placed = Placed::default();
        for &line in lines {
            if placed.api_failure.is_some() {
                placed.push(line, ItemStatus::NotAttempted, None, None);
                continue;
            }
            let order = NewOrder {
                product_id: line.product_id,
                quantity: line.quantity,
                payment_method: request.payment_method.as_str(),
            };
            match self.ctx.api.create_order(&order, by).await {
                Ok(OrderOutcome::Completed(order)) => {
                    placed.push(line, ItemStatus::Completed, Some(order), None)
                }
                Ok(OrderOutcome::Declined(body)) => {
                    let error = body
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("payment declined")
                        .to_owned();
                    let order = body.get("order").filter(|o| !o.is_null()).cloned();
                    placed.push(line, ItemStatus::Declined, order, Some(error));
                }
                Ok(OrderOutcome::InsufficientStock(message)) => {
                    placed.push(line, ItemStatus::InsufficientStock, None, Some(message))
                }
                Err(ApiError::Client { status, message }) => {
                    placed.refusal.get_or_insert(
                        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                    );
                    placed.push(line, ItemStatus::Rejected, None, Some(message));
                }
                Err(err) => {
                    placed.push(
                        line,
                        ItemStatus::Unavailable,
                        None,
                        Some(UPSTREAM_FAILURE.to_owned()),
                    );
                    placed.api_failure = Some(err);
                }
            }
        }
        placed
    }

    fn conclude(
        &self,
        session: &Session,
        method: PaymentMethod,
        placed: Placed,
    ) -> CheckoutResponse {
        if let Some(err) = &placed.api_failure {
            log_upstream_failure(Page::Checkout, Some(session), err);
        }
        let completed = placed.count(ItemStatus::Completed);
        let lines = placed.items.len();
        if completed > 0 {
            let status = if completed == lines {
                CheckoutStatus::Completed
            } else {
                CheckoutStatus::Partial
            };
            self.ctx.rendered(Page::Checkout, Some(session));
            log::info!(
                event = "checkout_completed", session = session.tag(),
                status = if status == CheckoutStatus::Completed { "completed" } else { "partial" },
                orders = completed, lines = lines, payment_method = method.as_str();
                "checkout placed {completed} of {lines} order(s)"
            );
            return CheckoutResponse::Created(Json(CheckoutResult {
                status,
                error: None,
                orders: placed.items,
            }));
        }
        let failure = if placed.api_failure.is_some() {
            FailureReason::ApiUnavailable
        } else if placed.count(ItemStatus::InsufficientStock) > 0 {
            FailureReason::InsufficientStock
        } else if placed.count(ItemStatus::Declined) > 0 {
            FailureReason::PaymentDeclined
        } else {
            FailureReason::Rejected(placed.refusal.unwrap_or(StatusCode::BAD_REQUEST))
        };
        let error = match failure {
            FailureReason::ApiUnavailable => {
                "the shop's API is unavailable; nothing was ordered and the cart is kept".to_owned()
            }
            FailureReason::InsufficientStock => {
                "not enough stock; nothing was ordered and the cart is kept".to_owned()
            }
            FailureReason::PaymentDeclined => {
                "the payment was declined; nothing was ordered and the cart is kept".to_owned()
            }
            FailureReason::Rejected(_) => placed
                .items
                .iter()
                .find_map(|i| i.error.clone())
                .unwrap_or_else(|| "the orders were refused".to_owned()),
        };
        let reason = failure.as_str();
        log::warn!(
            event = "checkout_failed", session = session.tag(), reason = reason, lines = lines,
            payment_method = method.as_str();
            "checkout failed ({reason}): {error}"
        );
        let result = Json(CheckoutResult {
            status: CheckoutStatus::Failed,
            error: Some(error),
            orders: placed.items,
        });
        match failure {
            FailureReason::ApiUnavailable => CheckoutResponse::Unavailable(result),
            FailureReason::InsufficientStock => CheckoutResponse::InsufficientStock(result),
            FailureReason::PaymentDeclined => CheckoutResponse::PaymentDeclined(result),
            FailureReason::Rejected(status) => CheckoutResponse::Refused(status, result),
        }
    }
}
