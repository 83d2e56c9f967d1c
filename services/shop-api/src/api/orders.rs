use std::time::Duration;

use poem::Request;
use poem_openapi::{param::Path, payload::Json, ApiResponse, Object, OpenApi, Tags};
use shop_db::{models::Order, Database, DbError};
use shop_payment::{PaymentClient, PaymentMethod, PaymentRequest, PaymentResult};
use shop_telemetry::ErrorBody;

use super::{db_failure, db_failure_into, error_chain, DbFailure, OrderView};
use crate::{
    auth::{AuthError, Caller, Sessions},
    client_ip::ClientIp,
    metrics::{ApiMetrics, OrderOutcome},
    rate_limit::{Client, Limited, OrderRateLimiter, Scope},
    store::{
        self,
        orders::{NewReservation, Reservation},
    },
};

/// Attempts at recording a paid order before giving up and refunding the payment.
const COMPLETE_ATTEMPTS: u32 = 3;
const COMPLETE_RETRY_DELAY: Duration = Duration::from_millis(200);

#[derive(Tags)]
enum ApiTags {
    /// Orders: stock reservation, payment, outcome.
    Orders,
}

pub struct OrdersApi {
    db: Database,
    payment: PaymentClient,
    metrics: ApiMetrics,
    sessions: Sessions,
    client_ip: ClientIp,
    limiter: OrderRateLimiter,
}

impl OrdersApi {
    pub fn new(
        db: Database,
        payment: PaymentClient,
        metrics: ApiMetrics,
        sessions: Sessions,
        client_ip: ClientIp,
        limiter: OrderRateLimiter,
    ) -> Self {
        Self {
            db,
            payment,
            metrics,
            sessions,
            client_ip,
            limiter,
        }
    }
}

/// A new order. It belongs to the customer whose session token comes with it
/// (`Authorization: Bearer`), and to nobody without one; fields it does not know (such as
/// a `customer_email`) are refused, so nobody can order in someone else's name.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
struct CreateOrder {
    product_id: i32,
    /// 1 to 100 units.
    #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
    quantity: i32,
    payment_method: PaymentMethod,
}

/// A failed or refused order: what went wrong, and the order when one was recorded.
#[derive(Debug, Clone, Object)]
struct OrderError {
    error: String,
    order: Option<OrderView>,
}

impl OrderError {
    fn new(error: impl Into<String>, order: Option<Order>) -> Json<Self> {
        Json(Self {
            error: error.into(),
            order: order.map(Into::into),
        })
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_create")]
enum CreateResponse {
    /// Paid and completed.
    #[oai(status = 201)]
    Created(Json<OrderView>),
    /// Malformed request.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The `Authorization` header holds no valid session: log in again.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The payment was declined; the order is recorded as failed and no stock was taken.
    #[oai(status = 402)]
    PaymentDeclined(Json<OrderError>),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Not enough stock; nothing was recorded.
    #[oai(status = 409)]
    InsufficientStock(Json<ErrorBody>),
    /// Too many orders from this customer or client address, or for the whole shop; nothing
    /// was recorded. Try again after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyOrders(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database or the payment service is unavailable; no stock was taken.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
db_failure_into!(CreateResponse);

fn bad_create(err: poem::Error) -> CreateResponse {
    CreateResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_get")]
enum GetResponse {
    #[oai(status = 200)]
    Ok(Json<OrderView>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The `Authorization` header holds no valid session: log in again.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such order, or it belongs to another customer (the answer does not say which).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
db_failure_into!(GetResponse);

fn bad_get(err: poem::Error) -> GetResponse {
    GetResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

#[OpenApi(tag = "ApiTags::Orders")]
impl OrdersApi {
    /// Places an order: reserves the stock, takes the payment, completes the order. With a
    /// session token (`Authorization: Bearer`, from `POST /login`) the order is the
    /// customer's; without one it is anonymous. Orders are rate-limited per customer, per
    /// client address for anonymous orders, and for the whole shop (429 with `Retry-After`).
    #[oai(path = "/orders", method = "post")]
    async fn create(&self, req: &Request, body: Json<CreateOrder>) -> CreateResponse {
        let request = body.0;
        let customer_id = match self.sessions.caller(req).await {
            Ok(Caller::Customer(id)) => Some(id),
            Ok(Caller::Anonymous) => None,
            Err(err) => return auth_failure(err).into(),
        };
        let client = match (customer_id, self.client_ip.of(req)) {
            (Some(id), _) => Client::Customer(id),
            (None, Some(ip)) => Client::Anonymous(ip),
            (None, None) => {
                return CreateResponse::BadRequest(Json(ErrorBody::new(
                    "the client address is unknown",
                )))
            }
        };
        if let Err(limited) = self.limiter.take(client) {
            self.metrics.order(OrderOutcome::RateLimited);
            log::debug!(
                event = "order_rate_limited", scope = scope_name(limited.scope),
                customer_id = customer_id;
                "order refused: {}", limit_message(&limited)
            );
            return CreateResponse::TooManyOrders(
                Json(ErrorBody::new(limit_message(&limited))),
                retry_after_seconds(&limited),
            );
        }

        let method = request.payment_method;
        let (product_id, quantity) = (request.product_id, request.quantity);
        let reservation = self
            .db
            .run(move |conn| {
                store::orders::reserve(
                    conn,
                    &NewReservation {
                        product_id,
                        quantity,
                        customer_id,
                        payment_method: method.as_str(),
                    },
                )
            })
            .await;
        let order = match reservation {
            Ok(Reservation::Reserved(order)) => order,
            Ok(Reservation::UnknownProduct) => {
                return CreateResponse::NotFound(Json(ErrorBody::new(format!(
                    "no product with id {product_id}"
                ))))
            }
            Ok(Reservation::InsufficientStock { available }) => {
                self.metrics.order(OrderOutcome::Rejected);
                log::info!(
                    event = "order_rejected", reason = "insufficient_stock", product_id = product_id,
                    quantity = quantity, available = available;
                    "order for {quantity} x product {product_id} rejected: only {available} in stock"
                );
                return CreateResponse::InsufficientStock(Json(ErrorBody::new(format!(
                    "insufficient stock: {quantity} requested, {available} available"
                ))));
            }
            Err(err) => return db_failure(err, "reserving stock").into(),
        };

        let payment = PaymentRequest {
            order_ref: format!("order-{}", order.id),
            amount: order.total_amount,
            method,
        };
        match self.payment.authorize(&payment).await {
            Ok(PaymentResult::Authorized { transaction_id }) => {
                self.complete(order, transaction_id).await
            }
            Ok(PaymentResult::Declined { reason }) => match self.fail(order.id, &reason).await {
                Ok(failed) => CreateResponse::PaymentDeclined(OrderError::new(
                    format!("payment declined: {reason}"),
                    failed,
                )),
                Err(err) => db_failure(err, "recording a declined order").into(),
            },
            Err(err) => {
                log::error!(
                    event = "payment_unavailable", order_id = order.id, cause = error_chain(&err).as_str();
                    "payment for order {} failed: {}", order.id, error_chain(&err)
                );
                match self.fail(order.id, "payment_unavailable").await {
                    Ok(_) => CreateResponse::Unavailable(Json(ErrorBody::new(
                        "the payment service is unavailable; the order failed and no stock was taken",
                    ))),
                    Err(err) => db_failure(err, "recording a failed order").into(),
                }
            }
        }
    }

    /// One order, by the id `POST /orders` returned. A customer's order is shown only with
    /// that customer's session token; an anonymous order to whoever holds its id.
    #[oai(path = "/orders/:id", method = "get")]
    async fn get(&self, req: &Request, id: Path<uuid::Uuid>) -> GetResponse {
        let id = id.0;
        let caller = match self.sessions.caller(req).await {
            Ok(caller) => caller,
            Err(err) => return auth_failure(err).into(),
        };
        match self
            .db
            .run(move |conn| store::orders::by_public_id(conn, id))
            .await
        {
            Ok(Some(order)) if visible_to(&order, caller) => GetResponse::Ok(Json(order.into())),
            // Another customer's order is answered like a missing one: its existence is
            // nobody else's business.
            Ok(_) => GetResponse::NotFound(Json(ErrorBody::new(format!("no order with id {id}")))),
            Err(err) => db_failure(err, "reading an order").into(),
        }
    }
}

/// Who may read an order: its customer, or anyone holding the id of an anonymous one.
fn visible_to(order: &Order, caller: Caller) -> bool {
    match order.customer_id {
        None => true,
        Some(owner) => caller == Caller::Customer(owner),
    }
}

/// An authentication failure as the client sees it.
enum AuthFailure {
    Unauthorized(ErrorBody),
    Database(DbFailure),
}

fn auth_failure(err: AuthError) -> AuthFailure {
    match err {
        AuthError::InvalidSession => AuthFailure::Unauthorized(ErrorBody::new(
            "the session token is invalid or has expired: log in again (POST /login), or send no Authorization header to order anonymously",
        )),
        AuthError::Database(err) => AuthFailure::Database(db_failure(err, "checking a session")),
    }
}

macro_rules! auth_failure_into {
    ($ty:ident) => {
        impl From<AuthFailure> for $ty {
            fn from(failure: AuthFailure) -> Self {
                match failure {
                    AuthFailure::Unauthorized(body) => Self::Unauthorized(Json(body)),
                    AuthFailure::Database(failure) => failure.into(),
                }
            }
        }
    };
}
auth_failure_into!(CreateResponse);
auth_failure_into!(GetResponse);

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Customer => "customer",
        Scope::Ip => "ip",
        Scope::Global => "global",
    }
}

fn limit_message(limited: &Limited) -> String {
    let retry = retry_after_seconds(limited);
    let per_minute = limited.per_minute;
    match limited.scope {
        Scope::Customer => format!(
            "too many orders for this customer (at most {per_minute} a minute); try again in {retry} s"
        ),
        Scope::Ip => format!(
            "too many anonymous orders from this address (at most {per_minute} a minute); try again in {retry} s, or log in"
        ),
        Scope::Global => format!(
            "the shop is taking too many orders right now (at most {per_minute} a minute); try again in {retry} s"
        ),
    }
}

/// Whole seconds, at least 1 (`Retry-After` has no fractions).
fn retry_after_seconds(limited: &Limited) -> u64 {
    limited.retry_after.as_secs_f64().ceil().max(1.0) as u64
}

impl OrdersApi {
    /// Records the paid order. If that cannot be done the payment is refunded, so no customer
    /// pays for an order that is not completed; the reservation is released later.
    async fn complete(&self, order: Order, transaction_id: String) -> CreateResponse {
        let mut last_error = None;
        for attempt in 1..=COMPLETE_ATTEMPTS {
            let (id, tx) = (order.id, transaction_id.clone());
            match self
                .db
                .run(move |conn| store::orders::complete(conn, id, &tx))
                .await
            {
                Ok(Some(completed)) => {
                    self.metrics.order(OrderOutcome::Completed);
                    log::info!(
                        event = "order_completed", order_id = completed.id, product_id = completed.product_id,
                        quantity = completed.quantity, total_amount:% = completed.total_amount,
                        payment_method = completed.payment_method.as_str(), transaction_id = transaction_id.as_str();
                        "order {} completed", completed.id
                    );
                    return CreateResponse::Created(Json(completed.into()));
                }
                Ok(None) => {
                    last_error = None;
                    break;
                }
                Err(err) => {
                    last_error = Some(err);
                    if attempt < COMPLETE_ATTEMPTS {
                        tokio::time::sleep(COMPLETE_RETRY_DELAY).await;
                    }
                }
            }
        }
        self.metrics.order(OrderOutcome::Failed);
        let refunded = self.payment.refund(&transaction_id).await;
        log::error!(
            event = "order_failed", order_id = order.id, reason = "not_recorded",
            transaction_id = transaction_id.as_str(), refunded = refunded.is_ok();
            "order {} was paid but could not be completed; refund {}", order.id,
            if refunded.is_ok() { "issued" } else { "FAILED: refund by hand" }
        );
        match last_error {
            Some(err) => db_failure(err, "completing an order").into(),
            None => CreateResponse::Unavailable(Json(ErrorBody::new(
                "the order expired before the payment completed; the payment was refunded",
            ))),
        }
    }

    async fn fail(&self, order_id: i64, reason: &str) -> Result<Option<Order>, DbError> {
        let reason_owned = reason.to_owned();
        let failed = self
            .db
            .run(move |conn| store::orders::fail(conn, order_id, &reason_owned))
            .await?;
        self.metrics.order(OrderOutcome::Failed);
        log::warn!(
            event = "order_failed", order_id = order_id, reason = reason;
            "order {order_id} failed: {reason}; its stock was released"
        );
        Ok(failed)
    }
}

/// Every minute, fails orders left pending for more than two minutes and puts their stock
/// back (the API stopped mid-order, or PostgreSQL went away before the outcome was recorded).
pub async fn release_abandoned_orders(db: Database) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let cutoff = chrono::Utc::now() - chrono::Duration::minutes(2);
        match db
            .run(move |conn| store::orders::release_abandoned(conn, cutoff))
            .await
        {
            Ok(released) => {
                for order in released {
                    log::warn!(
                        event = "order_abandoned", order_id = order.id, product_id = order.product_id,
                        quantity = order.quantity;
                        "order {} was left pending; failed it and released its stock", order.id
                    );
                }
            }
            Err(err) if err.is_unavailable() => {}
            Err(err) => {
                log::error!(event = "database_error", cause = error_chain(&err).as_str(); "releasing abandoned orders failed: {}", error_chain(&err))
            }
        }
    }
}
